package audit

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/internal/csvsafe"
)

// Filter selects lines of the log. The zero Filter selects every line.
type Filter struct {
	// From ≤ time < To; a zero bound is open.
	From, To time.Time
	// Purpose selects the purpose and the purposes below it ("marketing" selects
	// "marketing.communications.sms").
	Purpose privguard.Purpose
	// Reason selects lines with that reason code among theirs.
	Reason privguard.Reason
	// Route selects one route (the route table's pattern, "GET /api/profiles/{id}").
	Route string
	// Effect selects allow or deny.
	Effect privguard.Effect
	// Subject selects one subject by its pseudonym ([Pseudonym]), never by its id.
	Subject string
}

// Match reports whether the parsed line v is selected.
func (f *Filter) Match(v *fastjson.Value) bool {
	if f.Purpose != "" {
		p := v.GetStringBytes("purpose")
		if string(p) != string(f.Purpose) && !(len(p) > len(f.Purpose) && p[len(f.Purpose)] == '.' && string(p[:len(f.Purpose)]) == string(f.Purpose)) {
			return false
		}
	}
	if f.Route != "" && string(v.GetStringBytes("route")) != f.Route {
		return false
	}
	if f.Effect != "" && string(v.GetStringBytes("effect")) != string(f.Effect) {
		return false
	}
	if f.Subject != "" && string(v.GetStringBytes("subject")) != f.Subject {
		return false
	}
	if f.Reason != "" {
		found := false
		for _, r := range v.GetArray("reasons") {
			if b, err := r.StringBytes(); err == nil && string(b) == string(f.Reason) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	if !f.From.IsZero() || !f.To.IsZero() {
		t, err := time.Parse(time.RFC3339Nano, string(v.GetStringBytes("time")))
		if err != nil || (!f.From.IsZero() && t.Before(f.From)) || (!f.To.IsZero() && !t.Before(f.To)) {
			return false
		}
	}
	return true
}

// Query calls fn for every line of the log at path that f selects, in order, checking the
// chain as it reads ([Walk]: a *BreakError ends it).
func Query(path string, f Filter, fn func(*Line) error) error {
	return Walk(path, func(l *Line) error {
		if !f.Match(l.Value) {
			return nil
		}
		return fn(l)
	})
}

// CSVHeader is the heading of [WriteCSV], in Chinese and English.
var CSVHeader = []string{"时间 / Time (UTC)", "决定 / Decision", "决定编号 / Decision ID", "策略版本 / Revision", "实例 / Replica",
	"路由 / Route", "主体假名 / Subject pseudonym", "目的 / Purpose", "数据类别 / Categories", "法域 / Regime", "理由 / Reasons",
	"义务 / Obligations", "同意状态 / Consent state", "影响评估 / Assessment", "文件 / File", "行 / Line", "哈希 / Hash"}

// WriteCSV writes the lines f selects as CSV (UTF-8 with a BOM, cells defused): a
// *BreakError ends it where the chain breaks.
func WriteCSV(w io.Writer, path string, f Filter) error {
	cw := csvsafe.NewWriter(w)
	if err := cw.Write(CSVHeader...); err != nil {
		return err
	}
	err := Query(path, f, func(l *Line) error {
		v := l.Value
		s := func(k string) string { return string(v.GetStringBytes(k)) }
		return cw.Write(s("time"), s("effect"), s("decision_id"), s("revision"), s("replica"), s("route"), s("subject"), s("purpose"),
			joined(v, "categories"), s("regime"), joined(v, "reasons"), joined(v, "obligations"), s("consent_state"), s("assessment"),
			l.File, strconv.FormatInt(l.N, 10), hex.EncodeToString(l.Sum[:]))
	})
	if err != nil {
		return err
	}
	return cw.Flush()
}

func joined(v *fastjson.Value, key string) string {
	var parts []string
	for _, x := range v.GetArray(key) {
		if b, err := x.StringBytes(); err == nil {
			parts = append(parts, string(b))
		}
	}
	return strings.Join(parts, " ")
}

// DefaultMaxKeys bounds the distinct values counted per dimension of [Stats]; the rest
// are counted under [OtherKey].
const DefaultMaxKeys = 10_000

// OtherKey counts the values past the bound of distinct values.
const OtherKey = "(other)"

// Stats are counts of decisions: lines selected, by purpose, reason, route, decision and
// day (UTC).
type Stats struct {
	Scanned    int64            `json:"scanned"` // lines read
	Lines      int64            `json:"lines"`   // lines selected
	ByDecision map[string]int64 `json:"by_decision"`
	ByPurpose  map[string]int64 `json:"by_purpose"`
	ByReason   map[string]int64 `json:"by_reason"`
	// DenyReasons counts the reasons of the denials only.
	DenyReasons map[string]int64 `json:"deny_reasons"`
	ByRoute     map[string]int64 `json:"by_route"`
	ByDay       map[string]int64 `json:"by_day"`
}

// counter counts distinct byte-string keys without a string per line.
type counter struct {
	m   map[string]*int64
	max int
}

func (c *counter) add(k []byte) {
	if p, ok := c.m[string(k)]; ok {
		*p++
		return
	}
	key := OtherKey
	if len(c.m) < c.max {
		key = string(k)
	}
	if p, ok := c.m[key]; ok {
		*p++
		return
	}
	n := int64(1)
	c.m[key] = &n
}

func (c *counter) out() map[string]int64 {
	out := make(map[string]int64, len(c.m))
	for k, p := range c.m {
		out[k] = *p
	}
	return out
}

// Count counts the lines of the log at path that f selects, reading it once in constant
// memory (beside the distinct values, at most maxKeys per dimension; zero means
// DefaultMaxKeys), checking the chain as it reads: a *BreakError if it breaks, ctx's
// error if it ends first.
func Count(ctx context.Context, path string, f Filter, maxKeys int) (*Stats, error) {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	var st Stats
	cs := make([]counter, 6)
	for i := range cs {
		cs[i] = counter{m: map[string]*int64{}, max: maxKeys}
	}
	decision, purpose, reason, route, day, denied := &cs[0], &cs[1], &cs[2], &cs[3], &cs[4], &cs[5]
	err := Walk(path, func(l *Line) error {
		st.Scanned++
		if st.Scanned%65536 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		v := l.Value
		if !f.Match(v) {
			return nil
		}
		st.Lines++
		effect := v.GetStringBytes("effect")
		decision.add(effect)
		purpose.add(v.GetStringBytes("purpose"))
		route.add(v.GetStringBytes("route"))
		deny := string(effect) == string(privguard.Deny)
		for _, r := range v.GetArray("reasons") {
			if b, err := r.StringBytes(); err == nil {
				reason.add(b)
				if deny {
					denied.add(b)
				}
			}
		}
		t := v.GetStringBytes("time")
		if i := bytes.IndexByte(t, 'T'); i > 0 {
			t = t[:i]
		}
		day.add(t)
		return nil
	})
	if err != nil {
		return nil, err
	}
	st.ByDecision, st.ByPurpose, st.ByReason, st.ByRoute, st.ByDay = decision.out(), purpose.out(), reason.out(), route.out(), day.out()
	st.DenyReasons = denied.out()
	return &st, nil
}

// Sorted returns m's keys, largest count first (then by key).
func Sorted(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			if m[a] > m[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	return keys
}
