package incident_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/incident"
	"github.com/privguard/privguard/journal/journaltest"
)

// FuzzRecordAndApply feeds the register reports and changes as an API body would carry
// them: whatever they hold, the register never panics, refuses with its typed errors, and
// what it accepts reads back.
func FuzzRecordAndApply(f *testing.F) {
	rep, _ := json.Marshal(complete())
	f.Add(rep, []byte(`{"kind":"assess","severity":"较大","risk":"high"}`))
	f.Add(rep, []byte(`{"kind":"notify-subjects"}`))
	f.Add(rep, []byte(`{"kind":"notify-authority","authority":"sa","at":"2026-11-02T07:00:00Z"}`))
	f.Add([]byte(`{"title":"x","facts":"y","aware_at":"2026-11-02T08:00:00Z","subjects":["a","a",""]}`), []byte(`{"kind":"close"}`))
	f.Add([]byte(`{"title":"=cmd","facts":"\u0000","aware_at":"1969-01-01T00:00:00Z","subject_count":-5}`), []byte(`{"kind":"update","subjects":["\u202e"]}`))
	f.Fuzz(func(t *testing.T, report, change []byte) {
		c := &clock{now: t0.Add(time.Hour)}
		r := openRegister(t, &journaltest.Mem{}, c, nil)
		ctx := context.Background()
		var rp incident.Report
		if json.Unmarshal(report, &rp) != nil {
			return
		}
		v, err := r.Record(ctx, "dpo", rp)
		if err != nil {
			var fe *incident.FieldError
			if !errors.As(err, &fe) || !errors.Is(err, privguard.ErrInvalid) {
				t.Fatalf("Record = %v; want a FieldError", err)
			}
			return
		}
		var ch incident.Change
		if json.Unmarshal(change, &ch) == nil {
			_, err := r.Apply(ctx, v.ID, "dpo", ch)
			var fe *incident.FieldError
			var ne *incident.NoticeError
			var ge *incident.GapsError
			if err != nil && !errors.As(err, &fe) && !errors.As(err, &ne) && !errors.As(err, &ge) && !errors.Is(err, incident.ErrClosed) {
				t.Fatalf("Apply = %v; want a typed refusal", err)
			}
		}
		if _, err := r.Get(ctx, v.ID); err != nil {
			t.Fatalf("Get after Record = %v", err)
		}
		var buf discard
		if err := r.WriteCSV(ctx, &buf, incident.Filter{}); err != nil {
			t.Fatal(err)
		}
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
