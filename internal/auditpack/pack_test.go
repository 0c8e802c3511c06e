package auditpack_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/audit"
	"github.com/privguard/privguard/disclosure"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/evidence"
	"github.com/privguard/privguard/incident"
	"github.com/privguard/privguard/internal/auditpack"
	"github.com/privguard/privguard/internal/config"
	"github.com/privguard/privguard/internal/ropa"
	"github.com/privguard/privguard/internal/trail"
	"github.com/privguard/privguard/journal"
	"github.com/privguard/privguard/journal/journaltest"
	"github.com/privguard/privguard/pia"
)

// testSigner is an Ed25519 key that signs compact JWS as consent.Ledger.SignDocument does
// (written here by hand, not with the code under test).
type testSigner struct{ key ed25519.PrivateKey }

func newSigner(seed byte) testSigner {
	return testSigner{ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))}
}
func (s testSigner) SignDocument(typ string, payload []byte) (string, error) {
	h, _ := json.Marshal(map[string]string{"alg": "EdDSA", "kid": s.ReceiptKeyID(), "typ": typ})
	in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(payload)
	return in + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(s.key, []byte(in))), nil
}
func (s testSigner) ReceiptPublicKey() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }
func (s testSigner) ReceiptKeyID() string                { return fmt.Sprintf("test-%x", s.key[:4]) }

var (
	from = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	to   = time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	now  = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
)

// fixture is a period's worth of evidence with known figures.
type fixture struct {
	store    *journaltest.Mem
	requests []dsar.Request
	gate     *disclosure.Gate
	cfg      *config.File
	pia      *pia.Registry
	// decisions is the decision log's file; incidents the register.
	decisions string
	incidents *incident.Register
}

func request(id string, regime privguard.Regime, received time.Time, dueDays int, closedAfterDays int) dsar.Request {
	r := dsar.Request{ID: id, Type: dsar.TypeDeletion, Regime: regime, State: dsar.StateReceived, ReceivedAt: received}
	r.Deadline.Due = received.AddDate(0, 0, dueDays)
	if closedAfterDays >= 0 {
		r.State, r.ClosedAt = dsar.StateCompleted, received.AddDate(0, 0, closedAfterDays)
	}
	return r
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{store: &journaltest.Mem{}}
	// Week of 2026-01-05: two PIPL requests, one closed on time, one late. Week of
	// 2026-02-02: a GDPR request still open and overdue at the period's end, and one on time.
	// One before the period and one after it are left out.
	f.requests = []dsar.Request{
		request("r-early", privguard.RegimePIPL, from.AddDate(0, 0, -3), 15, 2),
		request("r1", privguard.RegimePIPL, time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC), 15, 3),
		request("r2", privguard.RegimePIPL, time.Date(2026, 1, 6, 9, 0, 0, 0, time.UTC), 15, 20),
		request("r3", privguard.RegimeGDPR, time.Date(2026, 2, 2, 9, 0, 0, 0, time.UTC), 30, -1),
		request("r4", privguard.RegimeGDPR, time.Date(2026, 2, 3, 9, 0, 0, 0, time.UTC), 30, 1),
		request("r-late", privguard.RegimeGDPR, to.AddDate(0, 0, 1), 30, -1),
	}
	at := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return at }
	g, err := disclosure.New(disclosure.Config{Log: f.store, Sets: f.store, Key: bytes.Repeat([]byte{7}, 32), Now: clock,
		Recipients: []disclosure.Recipient{{Name: "sg-crm", Country: "SG", Transfers: []disclosure.Transfer{{Mechanism: disclosure.StandardContract, Ref: "SC-1"}}},
			{Name: "cn-sms", Country: "CN"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	f.gate = g
	for i, p := range []privguard.Provision{
		{Kind: "route", Route: "POST /share", Recipient: "sg-crm", Purpose: "marketing.advertising", Regime: privguard.RegimePIPL,
			Subjects: []privguard.SubjectID{"a", "b", "c"}, Categories: []privguard.DataCategory{"user.contact.phone"}},
		{Kind: "route", Route: "POST /sms", Recipient: "cn-sms", Purpose: "marketing.sms", Regime: privguard.RegimePIPL,
			Subjects: []privguard.SubjectID{"a", "b"}},
	} {
		at = at.Add(time.Duration(i) * time.Hour)
		if reason, err := g.Disclose(ctx, p); err != nil || reason != "" {
			t.Fatalf("disclose %d: %v %v", i, reason, err)
		}
	}
	// The trail's entries, as trail.Trail appends them, on the fixture's clock.
	tr, err := journal.Open(f.store, trail.Log, clock)
	if err != nil {
		t.Fatal(err)
	}
	for _, act := range []string{"keys rotate", "POST /v1/requests/{id}/approve", "keys shred"} {
		if _, err := tr.Append(ctx, trail.Entry{Principal: "dpo", Via: "api", Act: act, Outcome: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", "dpo", "privguard.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if f.cfg, err = config.Parse(b); err != nil {
		t.Fatal(err)
	}
	// Decisions: two allowed, three denied (two consent.missing, one consent.withdrawn), and one
	// after the period.
	f.decisions = filepath.Join(t.TempDir(), "decisions.log")
	dat := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	dlog, err := audit.Open(audit.Config{Path: f.decisions, Key: bytes.Repeat([]byte{3}, 32), Now: func() time.Time { return dat }})
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range []privguard.Decision{
		{Effect: privguard.Allow, Reasons: []privguard.Reason{privguard.ReasonConsentGiven}},
		{Effect: privguard.Allow},
		{Effect: privguard.Deny, Reasons: []privguard.Reason{privguard.ReasonConsentMissing}},
		{Effect: privguard.Deny, Reasons: []privguard.Reason{privguard.ReasonConsentMissing}},
		{Effect: privguard.Deny, Reasons: []privguard.Reason{privguard.ReasonConsentWithdrawn}},
	} {
		dlog.Record("POST /sms/{id}", &privguard.Input{Subject: privguard.SubjectID(fmt.Sprint("s", i)), Purpose: "marketing.sms", Regime: privguard.RegimePIPL}, &d)
	}
	if err := dlog.Close(); err != nil {
		t.Fatal(err)
	}
	dat = to.Add(time.Hour)
	if dlog, err = audit.Open(audit.Config{Path: f.decisions, Key: bytes.Repeat([]byte{3}, 32), Now: func() time.Time { return dat }}); err != nil {
		t.Fatal(err)
	}
	dlog.Record("POST /sms/{id}", &privguard.Input{Subject: "late", Purpose: "marketing.sms"}, &privguard.Decision{Effect: privguard.Deny, Reasons: []privguard.Reason{privguard.ReasonConsentMissing}})
	dlog.Close()
	// Incidents: one in the period, never notified; one after it.
	iat := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	if f.incidents, err = incident.Open(incident.Config{Store: f.store, Now: func() time.Time { return iat }, Pseudonym: func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:8]) }}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.incidents.Record(ctx, "dpo", incident.Report{Title: "Lost laptop", Facts: "An encrypted laptop was lost.", AwareAt: iat.Add(-time.Hour),
		Severity: "general", Risk: "none", Subjects: []privguard.SubjectID{"cust-secret-1"}}); err != nil {
		t.Fatal(err)
	}
	iat = to.Add(48 * time.Hour)
	if _, err := f.incidents.Record(ctx, "dpo", incident.Report{Title: "Later", Facts: "After the period.", AwareAt: iat.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	iat = to
	if f.pia, err = pia.New(pia.Config{Store: f.store, Now: func() time.Time { return to }}); err != nil {
		t.Fatal(err)
	}
	return f
}

// consentCounts are the ledger's counts of the period (evidence.CountPeriod, tested there).
var consentCounts = evidence.Counts{Totals: evidence.Count{Grants: 3, Withdrawals: 2}, ByDay: []evidence.Count{
	{Day: "2026-01-05", Purpose: "marketing.sms", Grants: 2},
	{Day: "2026-01-06", Purpose: "marketing.sms", Grants: 1, Withdrawals: 1},
	{Day: "2026-01-06", Purpose: "*", Withdrawals: 1},
}}

func (f *fixture) config(signer auditpack.Signer) auditpack.Config {
	return auditpack.Config{
		Period: auditpack.Period{From: from, To: to}, Now: func() time.Time { return now }, Signer: signer, Controller: "Example Ltd",
		Heads: func(ctx context.Context) ([]auditpack.Head, error) {
			var heads []auditpack.Head
			for _, log := range []string{disclosure.Log, trail.Log} {
				h, err := f.store.JournalHead(ctx, log)
				if err != nil {
					return nil, err
				}
				heads = append(heads, auditpack.Head{Log: log, Seq: h.Seq, Hash: h.Hash})
			}
			return heads, nil
		},
		Sections: []auditpack.Section{
			auditpack.RecordSection{Build: func() (*ropa.Record, error) {
				return ropa.Build(f.cfg, ropa.Options{Now: func() time.Time { return to }})
			}},
			auditpack.RequestsSection{Each: func(_ context.Context, fn func(dsar.Request) error) error {
				for _, r := range f.requests {
					if err := fn(r); err != nil {
						return err
					}
				}
				return nil
			}},
			auditpack.DisclosuresSection{Store: f.store, Accounting: f.gate.Accounting, Regimes: []privguard.Regime{privguard.RegimePIPL}},
			auditpack.AssessmentsSection{Register: f.pia.Register},
			auditpack.TrailSection{Store: f.store},
			auditpack.ConsentSection{Count: func(context.Context, time.Time, time.Time) (evidence.Counts, error) { return consentCounts, nil }},
			auditpack.DecisionsSection{Path: f.decisions},
			auditpack.IncidentsSection{Register: f.incidents},
		},
	}
}

func pack(t *testing.T, cfg auditpack.Config) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := auditpack.Write(context.Background(), cfg, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func verify(b []byte, pin ed25519.PublicKey) (*auditpack.Manifest, error) {
	return auditpack.Open(bytes.NewReader(b), int64(len(b)), pin)
}

func summaryOf(t *testing.T, b []byte) *auditpack.Summary {
	t.Helper()
	var s auditpack.Summary
	if err := readJSON(b, auditpack.SummaryName, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

func TestPackFigures(t *testing.T) {
	f := newFixture(t)
	signer := newSigner(1)
	b := pack(t, f.config(signer))
	m, err := verify(b, signer.ReceiptPublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if !m.AsOf.Equal(to) || m.Key.KeyID != signer.ReceiptKeyID() || len(m.Heads) != 2 || m.Heads[0].Seq != 2 || m.Heads[1].Seq != 3 {
		t.Errorf("manifest: as of %v, key %s, heads %+v", m.AsOf, m.Key.KeyID, m.Heads)
	}
	s := summaryOf(t, b)
	rq := s.Requests
	pipl, gdpr := rq.ByRegime[privguard.RegimePIPL], rq.ByRegime[privguard.RegimeGDPR]
	if rq.Total != 4 || pipl.Total != 2 || pipl.Closed != 2 || pipl.OnTime != 1 || pipl.OnTimePct != 50 ||
		gdpr.Total != 2 || gdpr.Open != 1 || gdpr.Overdue != 1 || gdpr.OnTime != 1 || gdpr.OnTimePct != 100 {
		t.Errorf("request figures: %+v", rq)
	}
	weekOf := func(start string) auditpack.Week {
		for _, w := range rq.Weeks {
			if w.Start == start {
				return w
			}
		}
		t.Fatalf("no week %s in %+v", start, rq.Weeks)
		return auditpack.Week{}
	}
	if w := weekOf("2026-01-05"); w.Received != 2 || w.Closed != 1 || w.OnTime != 1 {
		t.Errorf("week of 2026-01-05: %+v; want 2 received, r1 closed on time on the 8th", w)
	}
	if w := weekOf("2026-01-26"); w.Closed != 1 || w.OnTime != 0 || w.OnTimePct != 0 {
		t.Errorf("week of 2026-01-26: %+v; want r2 closed late on the 26th", w)
	}
	if len(rq.Weeks) != 14 || rq.Weeks[0].Start != "2025-12-29" {
		t.Errorf("%d weeks from %s; want the 14 weeks touching Q1 2026 from Monday 2025-12-29", len(rq.Weeks), rq.Weeks[0].Start)
	}
	if d := s.Disclosures; d.Entries != 2 || d.Abroad != 1 || d.People != 5 {
		t.Errorf("disclosure figures: %+v", d)
	}
	if len(s.CrossBorder) != 1 || s.CrossBorder[0].People != 3 || s.CrossBorder[0].Year != 2026 {
		t.Errorf("cross-border: %+v", s.CrossBorder)
	}
	if s.Trail.Acts != 3 || s.Trail.KeyEvents != 2 {
		t.Errorf("trail figures: %+v", s.Trail)
	}
	if d := s.Decisions; d == nil || d.Lines != 5 || d.Allowed != 2 || d.Denied != 3 || d.DenyReasons["consent.missing"] != 2 ||
		d.DenyReasons["consent.withdrawn"] != 1 || d.DenyReasons["consent.given"] != 0 {
		t.Errorf("decision figures: %+v", d)
	}
	if c := s.Consent; c == nil || c.Grants != 3 || c.Withdrawals != 2 || c.ByPurpose["marketing.sms"].Grants != 3 || c.ByPurpose["*"].Withdrawals != 1 {
		t.Errorf("consent figures: %+v", c)
	}
	if in := s.Incidents; in == nil || in.Total != 1 || in.Notified != 0 || in.BySeverity["general"] != 1 {
		t.Errorf("incident figures: %+v", in)
	}
	if s.Record.Activities == 0 {
		t.Error("the record of processing has no activity")
	}
	csv := member(t, b, "requests.csv")
	if strings.Contains(csv, "r-early") || strings.Contains(csv, "r-late") || !strings.Contains(csv, "r3") {
		t.Errorf("requests.csv holds the requests outside the period or lacks one inside:\n%s", csv)
	}
	for _, name := range []string{"ropa.json", "ropa.csv", "disclosures.csv", "transfers.json", "assessments.json", "assessments.csv",
		"trail.csv", "key-events.csv", "heads.json", "report.zh.html", "report.en.html", "decisions.json", "incidents.csv", "incidents.json"} {
		if member(t, b, name) == "" {
			t.Errorf("%s is empty", name)
		}
	}
	for _, id := range []string{`"a"`, `"b"`, `"c"`, "cust-secret-1", `"s1"`} {
		for _, name := range []string{"disclosures.csv", "summary.json", "transfers.json", "trail.csv", "incidents.csv", "incidents.json", "decisions.json"} {
			if strings.Contains(member(t, b, name), id) {
				t.Errorf("%s names subject %s", name, id)
			}
		}
	}
}

// proves AUD-06
func TestPackIsReproducible(t *testing.T) {
	// The same period at the same heads is the same pack, byte for byte (signature included),
	// whenever it is made after the period; and its heads are those of the chains.
	f := newFixture(t)
	signer := newSigner(1)
	cfg := f.config(signer)
	a := pack(t, cfg)
	cfg.Now = func() time.Time { return now.Add(240 * time.Hour) }
	b := pack(t, cfg)
	if !bytes.Equal(a, b) {
		t.Fatal("two packs of the same period at the same heads differ")
	}
	zr, err := zip.NewReader(bytes.NewReader(a), int64(len(a)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if !f.Modified.Equal(to) {
			t.Errorf("%s is dated %v; want the period's end %v, not the clock", f.Name, f.Modified, to)
		}
	}
	// A new entry in a chain moves its head: the pack says which state it was made at.
	if _, err := f.gate.Disclose(context.Background(), privguard.Provision{Kind: "route", Route: "POST /sms", Recipient: "cn-sms",
		Purpose: "marketing.sms", Regime: privguard.RegimePIPL, Subjects: []privguard.SubjectID{"d"}}); err != nil {
		t.Fatal(err)
	}
	c := pack(t, cfg)
	m, err := verify(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := f.store.JournalHead(context.Background(), disclosure.Log)
	if m.Heads[0].Seq != h.Seq || m.Heads[0].Hash != h.Hash || bytes.Equal(a, c) {
		t.Errorf("after one more disclosure the pack's head is %+v; the chain's is %d %s", m.Heads[0], h.Seq, h.Hash)
	}
}

// proves AUD-06
func TestVerifyFindsTampering(t *testing.T) {
	f := newFixture(t)
	signer := newSigner(1)
	good := pack(t, f.config(signer))
	if _, err := verify(good, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, member string
		edit         func(name string, body []byte) (string, []byte, bool) // new name, body, keep
		extra        string
		wantMember   string
	}{
		{name: "a register changed", member: "requests.csv", wantMember: "requests.csv",
			edit: func(n string, b []byte) (string, []byte, bool) {
				return n, bytes.Replace(b, []byte("\nr1,"), []byte("\nr9,"), 1), true
			}},
		{name: "a row removed from the trail", member: "trail.csv", wantMember: "trail.csv",
			edit: func(n string, b []byte) (string, []byte, bool) {
				return n, b[:bytes.LastIndexByte(b[:len(b)-1], '\n')+1], true
			}},
		{name: "a member removed", member: "disclosures.csv", wantMember: "disclosures.csv",
			edit: func(n string, b []byte) (string, []byte, bool) { return n, b, false }},
		{name: "a member added", extra: "notes.txt", wantMember: "notes.txt"},
		{name: "the statement removed", member: auditpack.StatementName, wantMember: auditpack.StatementName,
			edit: func(n string, b []byte) (string, []byte, bool) { return n, b, false }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := rezip(t, good, tc.member, tc.edit, tc.extra)
			_, err := verify(b, nil)
			var ve *auditpack.VerifyError
			if !errors.As(err, &ve) || ve.Member != tc.wantMember {
				t.Fatalf("verify = %v; want a VerifyError on %q", err, tc.wantMember)
			}
		})
	}
	// A member changed and the bundle's manifest made to match: the signed statement says
	// otherwise.
	forged := forge(t, good, "requests.csv", func(b []byte) []byte { return bytes.Replace(b, []byte("\nr1,"), []byte("\nr9,"), 1) })
	var ve *auditpack.VerifyError
	if _, err := verify(forged, nil); !errors.As(err, &ve) || ve.Member != auditpack.StatementName {
		t.Errorf("a member changed with the manifest to match: verify = %v; want the statement to refuse it", err)
	}
	// A statement signed by the right key but altered: the signature fails.
	altered := forge(t, good, auditpack.StatementName, func(b []byte) []byte {
		parts := bytes.Split(bytes.TrimSpace(b), []byte("."))
		body, _ := base64.RawURLEncoding.DecodeString(string(parts[1]))
		body = bytes.Replace(body, []byte(`"from":"2026-01-01`), []byte(`"from":"2025-01-01`), 1)
		parts[1] = []byte(base64.RawURLEncoding.EncodeToString(body))
		return append(bytes.Join(parts, []byte(".")), '\n')
	})
	if _, err := verify(altered, nil); !errors.As(err, &ve) || ve.Member != auditpack.StatementName || !strings.Contains(err.Error(), "signature") {
		t.Errorf("an altered statement: verify = %v; want its signature refused", err)
	}
	// Another key: the pack verifies on its own, but not as the controller's.
	other := pack(t, f.config(newSigner(2)))
	if _, err := verify(other, signer.ReceiptPublicKey()); err == nil {
		t.Error("a pack signed by another key verified against the controller's key")
	}
	// Figures that are not those of the register are refused even when signed.
	cfg := f.config(signer)
	cfg.Sections = append(cfg.Sections, lyingSection{})
	if _, err := verify(pack(t, cfg), nil); err == nil || !strings.Contains(err.Error(), "request figures") {
		t.Errorf("a pack whose summary misstates the requests: verify = %v", err)
	}
}

// lyingSection adds a request to the summary that requests.csv does not hold.
type lyingSection struct{}

func (lyingSection) Name() string { return "lie" }
func (lyingSection) Write(_ context.Context, p *auditpack.Pack) error {
	st := p.Summary.Requests.ByRegime[privguard.RegimePIPL]
	st.OnTime++
	p.Summary.Requests.ByRegime[privguard.RegimePIPL] = st
	return nil
}

// failingSection fails half way, after writing a member.
type failingSection struct{}

func (failingSection) Name() string { return "failing" }
func (failingSection) Write(_ context.Context, p *auditpack.Pack) error {
	if err := p.Member("half.csv", func(w io.Writer) error { _, err := io.WriteString(w, "a,b\n"); return err }); err != nil {
		return err
	}
	return errors.New("the store went away")
}

func TestInterruptedPackIsNotAPack(t *testing.T) {
	f := newFixture(t)
	cfg := f.config(newSigner(1))
	cfg.Sections = append(cfg.Sections[:2:2], failingSection{})
	var buf bytes.Buffer
	if _, err := auditpack.Write(context.Background(), cfg, &buf); err == nil || !strings.Contains(err.Error(), "the store went away") {
		t.Fatalf("write = %v; want the section's error", err)
	}
	_, err := verify(buf.Bytes(), nil)
	if err == nil || !strings.Contains(err.Error(), "not an evidence bundle") {
		t.Errorf("verify of an interrupted pack = %v; want it refused as unfinished", err)
	}
}

func TestPackRefusesABrokenChain(t *testing.T) {
	f := newFixture(t)
	f.store.Tamper(trail.Log, func(es []journal.Entry) []journal.Entry {
		es[1].Body = []byte(`{"principal":"someone else","via":"api","act":"keys rotate","outcome":"ok"}`)
		return es
	})
	var buf bytes.Buffer
	_, err := auditpack.Write(context.Background(), f.config(newSigner(1)), &buf)
	var be *journal.BreakError
	if !errors.As(err, &be) {
		t.Fatalf("write on a broken trail = %v; want the break", err)
	}
}

func TestPackRefusesABadPeriod(t *testing.T) {
	f := newFixture(t)
	cfg := f.config(newSigner(1))
	cfg.Period = auditpack.Period{From: to, To: from}
	if _, err := auditpack.Write(context.Background(), cfg, io.Discard); err == nil {
		t.Error("a period ending before it starts was packed")
	}
}

// rezip copies the pack b, passing member through edit and adding extra.
func rezip(t *testing.T, b []byte, member string, edit func(string, []byte) (string, []byte, bool), extra string) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, f := range zr.File {
		rc, _ := f.Open()
		body, _ := io.ReadAll(rc)
		rc.Close()
		name, keep := f.Name, true
		if f.Name == member && edit != nil {
			name, body, keep = edit(f.Name, body)
		}
		if !keep {
			continue
		}
		w, _ := zw.Create(name)
		w.Write(body)
	}
	if extra != "" {
		w, _ := zw.Create(extra)
		io.WriteString(w, "added later")
	}
	zw.Close()
	return out.Bytes()
}

func member(t *testing.T, b []byte, name string) string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := zr.Open(name)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer rc.Close()
	body, _ := io.ReadAll(rc)
	return string(body)
}

func readJSON(b []byte, name string, v any) error {
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return err
	}
	rc, err := zr.Open(name)
	if err != nil {
		return err
	}
	defer rc.Close()
	return json.NewDecoder(rc).Decode(v)
}

// forge replaces member name of the pack b by edit's result and rewrites the bundle's
// manifest to match, as someone without the signing key could.
func forge(t *testing.T, b []byte, name string, edit func([]byte) []byte) []byte {
	t.Helper()
	var newBody []byte
	out := rezip(t, b, name, func(n string, body []byte) (string, []byte, bool) { newBody = edit(body); return n, newBody, true }, "")
	sum := sha256.Sum256(newBody)
	return rezip(t, out, evidence.ManifestName, func(n string, body []byte) (string, []byte, bool) {
		var m evidence.Manifest
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatal(err)
		}
		for i := range m.Members {
			if m.Members[i].Name == name {
				m.Members[i].Size, m.Members[i].SHA256 = int64(len(newBody)), hex.EncodeToString(sum[:])
			}
		}
		body, _ = json.MarshalIndent(m, "", "  ")
		return n, body, true
	}, "")
}

// hugeLineSection writes a register of one line longer than the verifier reads.
type hugeLineSection struct{}

func (hugeLineSection) Name() string { return "huge" }
func (hugeLineSection) Write(_ context.Context, p *auditpack.Pack) error {
	for _, name := range []string{"trail.csv", "key-events.csv"} {
		if err := p.Member(name, func(w io.Writer) error {
			_, err := w.Write(append([]byte("h\n"), bytes.Repeat([]byte("x"), 2<<20)...))
			return err
		}); err != nil {
			return err
		}
	}
	p.Summary.Trail = &auditpack.TrailFigures{Acts: 1, KeyEvents: 1}
	return nil
}

func TestVerifyBoundsARegistersLines(t *testing.T) {
	// A pack signed by its own key whose register is one line of megabytes: refused, not held.
	f := newFixture(t)
	cfg := f.config(newSigner(3))
	cfg.Sections = slices.DeleteFunc(cfg.Sections, func(s auditpack.Section) bool { _, ok := s.(auditpack.TrailSection); return ok })
	cfg.Sections = append(cfg.Sections, hugeLineSection{})
	if _, err := verify(pack(t, cfg), nil); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("verify = %v; want the long line refused", err)
	}
	// With the controller's key pinned, it is refused before any register is read.
	if _, err := verify(pack(t, cfg), newSigner(1).ReceiptPublicKey()); err == nil || !strings.Contains(err.Error(), "not by the key given") {
		t.Errorf("verify pinned to another key = %v", err)
	}
}
