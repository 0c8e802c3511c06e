package config

import (
	"strings"
	"testing"
	"time"
)

func TestDecisionLogRetentionFloor(t *testing.T) {
	// proves AUD-03: the validator rejects a decision-log (operation log) retention under six months.
	for _, tc := range []struct {
		name, yaml string
		wantErr    string // "" means valid
		keep       time.Duration
		size       int64
	}{
		{name: "default", yaml: "", keep: 4416 * time.Hour, size: 256 << 20},
		{name: "six_months_exactly", yaml: "decision_log: {retention: 4416h}", keep: 4416 * time.Hour, size: 256 << 20},
		{name: "a_year_and_1gib", yaml: "decision_log: {retention: 8784h, max_size: 1GiB}", keep: 8784 * time.Hour, size: 1 << 30},
		{name: "an_hour_short", yaml: "decision_log: {retention: 4415h}", wantErr: "decision_log.retention: must be at least 4416h (184 days"},
		{name: "thirty_days", yaml: "decision_log: {retention: 720h}", wantErr: "decision_log.retention: must be at least 4416h"},
		{name: "zero", yaml: "decision_log: {retention: 0s}", wantErr: "decision_log.retention: must be at least 4416h"},
		{name: "size_too_small", yaml: "decision_log: {max_size: 4KiB}", wantErr: "decision_log.max_size: must be at least 1048576"},
		{name: "size_not_a_size", yaml: "decision_log: {max_size: lots}", wantErr: `"lots" is not a size`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse([]byte(tc.yaml))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse(%q) = %v; want an error with %q", tc.yaml, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.DecisionLog.Keep() != tc.keep || f.DecisionLog.Size() != tc.size {
				t.Errorf("Parse(%q): retention %v, size %d; want %v, %d", tc.yaml, f.DecisionLog.Keep(), f.DecisionLog.Size(), tc.keep, tc.size)
			}
		})
	}
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{"256MiB": 256 << 20, "1GiB": 1 << 30, "10MB": 10e6, "4096": 4096, "2 KiB": 2048, "7B": 7} {
		if got, err := ParseByteSize(in); err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1MiB", "1.5GiB", "MiB", "99999999999TiB"} {
		if _, err := ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q) succeeded; want an error", in)
		}
	}
}
