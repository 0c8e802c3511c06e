package auditpack

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/evidence"
)

// VerifyError says what is wrong with a pack: which member (or "" for the file) and how.
type VerifyError struct {
	Member string
	Detail string
}

func (e *VerifyError) Error() string {
	if e.Member == "" {
		return "audit pack: " + e.Detail
	}
	return "audit pack: " + e.Member + ": " + e.Detail
}

func bad(member, format string, args ...any) error {
	return &VerifyError{Member: member, Detail: fmt.Sprintf(format, args...)}
}

// maxMeta bounds what Verify reads whole (the statement, the summary, the heads).
const maxMeta = 64 << 20

// Open opens the pack in r (size bytes) as an evidence bundle (every member against the
// bundle's manifest) and verifies it ([Verify]).
func Open(r io.ReaderAt, size int64, pins ...ed25519.PublicKey) (*Manifest, error) {
	b, err := evidence.Open(r, size)
	if err != nil {
		var f *evidence.Failure
		if errors.As(err, &f) {
			return nil, &VerifyError{Member: f.Member, Detail: f.Problem}
		}
		return nil, bad("", "%v", err)
	}
	return Verify(b, pins...)
}

// Verify checks an audit pack opened as an evidence bundle (evidence.Open has checked
// every member against the bundle's manifest, and that none is missing, added or there
// twice): the statement's signature by the key it names (and, if pins are given, that
// the key is one of them, checked before anything else is read), that it signs exactly the bundle's members with their sizes and
// SHA-256, the summary's shape, and its figures recomputed from the registers they come
// from. It returns the statement of a pack that verifies, or a *VerifyError saying what
// does not.
func Verify(b *evidence.Bundle, pins ...ed25519.PublicKey) (*Manifest, error) {
	if b.Manifest.Kind != Kind {
		return nil, bad(evidence.ManifestName, "kind %q: not an audit pack", b.Manifest.Kind)
	}
	raw, err := b.ReadMember(StatementName, maxMeta)
	if err != nil {
		return nil, bad(StatementName, "missing: the pack was not signed, or its writing did not finish")
	}
	compact := string(bytes.TrimSpace(raw))
	// The key is in the statement: read it, then check the statement with it.
	var unverified Manifest
	if _, rest, ok := strings.Cut(compact, "."); ok {
		if p64, _, ok := strings.Cut(rest, "."); ok {
			if body, err := base64.RawURLEncoding.DecodeString(p64); err == nil {
				_ = json.Unmarshal(body, &unverified)
			}
		}
	}
	pub, err := base64.StdEncoding.DecodeString(unverified.Key.Public)
	if err != nil || len(pub) != ed25519.PublicKeySize || unverified.Key.Alg != "Ed25519" {
		return nil, bad(StatementName, "names no Ed25519 public key")
	}
	pinned, match := false, false
	for _, pin := range pins {
		if pin != nil {
			pinned, match = true, match || bytes.Equal(pub, pin)
		}
	}
	if pinned && !match {
		return nil, bad(StatementName, "signed by key %s, not by the key given", unverified.Key.KeyID)
	}
	payload, problem := evidence.VerifyJWS(compact, pub, unverified.Key.KeyID, StatementType)
	if problem != "" {
		return nil, bad(StatementName, "%s", problem)
	}
	var m Manifest
	if err := strictJSON(payload, &m); err != nil {
		return nil, bad(StatementName, "%v", err)
	}
	if m.Kind != Kind || m.Version != Version {
		return nil, bad(StatementName, "kind %q version %d: want %q version %d", m.Kind, m.Version, Kind, Version)
	}
	inBundle := slices.DeleteFunc(slices.Clone(b.Manifest.Members), func(x Member) bool { return x.Name == StatementName })
	if !slices.Equal(m.Members, inBundle) {
		return nil, bad(StatementName, "the members it signs are not the bundle's: one was changed, added or removed after signing")
	}
	if err := checkSummary(b, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// checkSummary checks summary.json against the statement and its figures against the
// registers in the pack.
func checkSummary(bundle *evidence.Bundle, m *Manifest) error {
	b, err := bundle.ReadMember(SummaryName, maxMeta)
	if err != nil {
		return bad(SummaryName, "missing")
	}
	var s Summary
	if err := strictJSON(b, &s); err != nil {
		return bad(SummaryName, "%v", err)
	}
	if !s.Period.From.Equal(m.Period.From) || !s.Period.To.Equal(m.Period.To) || !s.AsOf.Equal(m.AsOf) {
		return bad(SummaryName, "its period or time is not the statement's")
	}
	if !reflect.DeepEqual(s.Heads, m.Heads) {
		return bad(SummaryName, "its heads are not the statement's")
	}
	var heads []Head
	hb, err := bundle.ReadMember(HeadsName, maxMeta)
	if err == nil {
		err = strictJSON(hb, &heads)
	}
	if err != nil || !reflect.DeepEqual(heads, m.Heads) {
		return bad(HeadsName, "missing, or not the statement's heads")
	}
	if s.Requests != nil {
		rf, err := bundle.Member("requests.csv")
		if err != nil {
			return bad("requests.csv", "missing, but the summary has request figures")
		}
		entries, err := readRegister(rf)
		rf.Close()
		if err != nil {
			return bad("requests.csv", "%v", err)
		}
		if got := requestFigures(s.Period, entries); !reflect.DeepEqual(normalise(got), normalise(s.Requests)) {
			return bad(SummaryName, "the request figures are not those of requests.csv")
		}
	}
	if s.Consent != nil {
		cb, err := bundle.ReadMember("consent.json", maxMeta)
		var c evidence.Counts
		if err == nil {
			err = strictJSON(cb, &c)
		}
		if err != nil {
			return bad("consent.json", "missing or not the counts: %v", err)
		}
		var g, w, e, r int
		per := map[string][2]int{}
		for _, d := range c.ByDay {
			g, w, e, r = g+d.Grants, w+d.Withdrawals, e+d.Expiries, r+d.Refusals
			x := per[d.Purpose]
			per[d.Purpose] = [2]int{x[0] + d.Grants, x[1] + d.Withdrawals}
		}
		ok := g == s.Consent.Grants && w == s.Consent.Withdrawals && e == s.Consent.Expiries && r == s.Consent.Refusals && len(per) == len(s.Consent.ByPurpose)
		for p, x := range per {
			ok = ok && s.Consent.ByPurpose[p].Grants == x[0] && s.Consent.ByPurpose[p].Withdrawals == x[1]
		}
		if !ok {
			return bad(SummaryName, "the consent figures are not those of consent.json")
		}
	}
	for _, c := range []struct {
		member string
		want   int
		ok     bool
	}{
		{"disclosures.csv", figure(s.Disclosures, func(d *DisclosureFigures) int { return d.Entries }), s.Disclosures != nil},
		{"trail.csv", figure(s.Trail, func(t *TrailFigures) int { return t.Acts }), s.Trail != nil},
		{"key-events.csv", figure(s.Trail, func(t *TrailFigures) int { return t.KeyEvents }), s.Trail != nil},
		{"incidents.csv", figure(s.Incidents, func(i *IncidentFigures) int { return i.Total }), s.Incidents != nil},
	} {
		if !c.ok {
			continue
		}
		rf, err := bundle.Member(c.member)
		if err != nil {
			return bad(c.member, "missing, but the summary counts it")
		}
		n, err := csvRows(rf)
		rf.Close()
		if err != nil {
			return bad(c.member, "%v", err)
		}
		if n != c.want {
			return bad(SummaryName, "counts %d rows of %s, which has %d", c.want, c.member, n)
		}
	}
	return nil
}

func figure[T any](v *T, f func(*T) int) int {
	if v == nil {
		return 0
	}
	return f(v)
}

// normalise makes empty maps and slices of f compare equal to absent ones.
func normalise(f *RequestFigures) RequestFigures {
	out := *f
	if len(out.ByRegime) == 0 {
		out.ByRegime = nil
	}
	if len(out.ByType) == 0 {
		out.ByType = nil
	}
	if len(out.Weeks) == 0 {
		out.Weeks = nil
	}
	return out
}

// readRegister reads requests.csv back into the entries the figures need.
func readRegister(rc io.Reader) ([]dsar.RegisterEntry, error) {
	cr := csv.NewReader(&lineLimit{r: rc})
	head, err := cr.Read()
	if err != nil {
		return nil, err
	}
	if !slices.Equal(head, dsar.RegisterColumns) {
		return nil, errors.New("its columns are not the register's")
	}
	col := map[string]int{}
	for i, c := range head {
		col[c] = i
	}
	var out []dsar.RegisterEntry
	for line := 2; ; line++ {
		row, err := cr.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		e := dsar.RegisterEntry{ID: row[col["id"]], Type: dsar.Type(row[col["type"]]), Regime: privguard.Regime(row[col["regime"]])}
		if e.ReceivedAt, err = time.Parse(time.RFC3339, row[col["received_at"]]); err != nil {
			return nil, fmt.Errorf("line %d: received_at: %v", line, err)
		}
		if v := row[col["closed_at"]]; v != "" {
			if e.ClosedAt, err = time.Parse(time.RFC3339, v); err != nil {
				return nil, fmt.Errorf("line %d: closed_at: %v", line, err)
			}
		}
		if v := row[col["on_time"]]; v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("line %d: on_time: %v", line, err)
			}
			e.OnTime = &b
		}
		if e.Overdue, err = strconv.ParseBool(row[col["overdue"]]); err != nil {
			return nil, fmt.Errorf("line %d: overdue: %v", line, err)
		}
		out = append(out, e)
	}
}

// csvRows counts the data rows of a CSV member (its heading excluded).
func csvRows(rc io.Reader) (int, error) {
	cr := csv.NewReader(&lineLimit{r: rc})
	cr.FieldsPerRecord = -1
	n := -1
	for {
		_, err := cr.Read()
		if err == io.EOF {
			return max(n, 0), nil
		}
		if err != nil {
			return 0, err
		}
		n++
	}
}

func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("more than one JSON value")
	}
	return nil
}

// maxCSVLine bounds a line of a register the verifier reads: a forged member of one huge
// field is refused, not held in memory.
const maxCSVLine = 1 << 20

// lineLimit passes r through, failing once a line runs past maxCSVLine bytes.
type lineLimit struct {
	r   io.Reader
	run int
}

func (l *lineLimit) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	for _, c := range p[:n] {
		if c == '\n' {
			l.run = 0
		} else if l.run++; l.run > maxCSVLine {
			return 0, fmt.Errorf("a line is longer than %d bytes", maxCSVLine)
		}
	}
	return n, err
}
