package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Defaults of decision_log.
const (
	// DefaultDecisionLogMaxSize is the active file's size at which it is closed into a
	// segment: 256 MiB.
	DefaultDecisionLogMaxSize ByteSize = 256 << 20
	// MinDecisionLogRetention is the shortest retention the file may set, and the
	// default: operation logs are kept at least six months (CSL Art. 21(3), AUD-03),
	// counted as 184 days. The validator's tag on DecisionLog.Retention says the same.
	MinDecisionLogRetention = 4416 * time.Hour
)

// DecisionLog configures the decision log (<data>/decisions.log): its segments and how
// long they are kept.
type DecisionLog struct {
	// MaxSize is the active file's size at which it is closed into a numbered segment
	// ("256MiB", "1GiB"; at least 1MiB). Default DefaultDecisionLogMaxSize.
	MaxSize ByteSize `yaml:"max_size" validate:"omitempty,min=1048576"`
	// Retention is how long a closed segment is kept after its last line ("4416h"); whole
	// segments are deleted past it. At least, and by default, MinDecisionLogRetention.
	Retention *Duration `yaml:"retention" validate:"omitempty,min=4416h"`
}

// Size returns the segment size in force.
func (d DecisionLog) Size() int64 {
	if d.MaxSize == 0 {
		return int64(DefaultDecisionLogMaxSize)
	}
	return int64(d.MaxSize)
}

// Keep returns the retention in force.
func (d DecisionLog) Keep() time.Duration {
	if d.Retention == nil {
		return MinDecisionLogRetention
	}
	return d.Retention.Duration
}

// ByteSize is a size in bytes written as "256MiB" (KiB, MiB, GiB, TiB; KB, MB, GB, TB are
// powers of 1000; a bare number is bytes).
type ByteSize int64

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*b = v
	return nil
}

// ParseByteSize parses a size such as "256MiB".
func ParseByteSize(s string) (ByteSize, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size such as 256MiB or 1GiB", s)
	}
	return ByteSize(n * mult), nil
}

// decisionLogHint says why the retention has a floor.
func decisionLogHint(ns, tag string) string {
	if ns == "decision_log.retention" && tag == "min" {
		return " (184 days: operation logs are kept at least six months, CSL Art. 21(3))"
	}
	return ""
}
