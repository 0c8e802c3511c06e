package disclosure_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/disclosure"
	"github.com/privguard/privguard/journal"
	"github.com/privguard/privguard/journal/journaltest"
)

var ctx = context.Background()

var key = bytes.Repeat([]byte{7}, 32)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newGate(t *testing.T, store *journaltest.Mem, now func() time.Time, logs *bytes.Buffer, rcs ...disclosure.Recipient) *disclosure.Gate {
	t.Helper()
	cfg := disclosure.Config{Log: store, Sets: store, Key: key, Recipients: rcs, Now: now}
	if logs != nil {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	g, err := disclosure.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

func subjects(prefix string, n int) []privguard.SubjectID {
	out := make([]privguard.SubjectID, n)
	for i := range out {
		out[i] = privguard.SubjectID(fmt.Sprintf("%s-%d", prefix, i))
	}
	return out
}

func provision(recipient string, regime privguard.Regime, ss []privguard.SubjectID, cats ...privguard.DataCategory) privguard.Provision {
	return privguard.Provision{Kind: "route", Route: "POST /share", Recipient: recipient, Purpose: "marketing.advertising",
		Regime: regime, Subjects: ss, Categories: cats}
}

func entries(t *testing.T, store journal.Store) []disclosure.Entry {
	t.Helper()
	var out []disclosure.Entry
	if err := store.JournalEntries(ctx, disclosure.Log, 1, func(e journal.Entry) error {
		var d disclosure.Entry
		if err := e.Decode(&d); err != nil {
			return err
		}
		out = append(out, d)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// A recipient outside the PRC needs a current PIPL mechanism, one outside the EEA a GDPR
// one; recipients at home need none.
// proves XB-01
// proves XB-04
func TestTransferAbroadNeedsAMechanism(t *testing.T) {
	c := &clock{time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)}
	store := &journaltest.Mem{}
	sc := disclosure.Transfer{Mechanism: disclosure.StandardContract, Ref: "SC-2026-17", Date: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Expires: time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)}
	g := newGate(t, store, c.now, nil,
		disclosure.Recipient{Name: "us-ads", Country: "US"},
		disclosure.Recipient{Name: "sg-crm", Country: "SG", Transfers: []disclosure.Transfer{sc}},
		disclosure.Recipient{Name: "hk-sms", Country: "HK", Transfers: []disclosure.Transfer{{Mechanism: disclosure.SCC, Ref: "SCC-1"}}},
		disclosure.Recipient{Name: "cn-sms", Country: "CN"},
		disclosure.Recipient{Name: "de-mail", Country: "DE"},
		disclosure.Recipient{Name: "us-mail", Country: "US", Transfers: []disclosure.Transfer{{Mechanism: disclosure.SCC, Ref: "SCC-2"}}},
	)
	one := subjects("s", 1)
	for _, tc := range []struct {
		recipient string
		regime    privguard.Regime
		want      privguard.Reason
	}{
		{"us-ads", privguard.RegimePIPL, privguard.ReasonTransferNoMechanism},
		{"us-ads", privguard.RegimeGDPR, privguard.ReasonTransferNoMechanism},
		{"sg-crm", privguard.RegimePIPL, ""},
		{"hk-sms", privguard.RegimePIPL, privguard.ReasonTransferNoMechanism}, // Hong Kong is abroad; an SCC is a GDPR mechanism
		{"cn-sms", privguard.RegimePIPL, ""},
		{"cn-sms", privguard.RegimeGDPR, privguard.ReasonTransferNoMechanism},
		{"de-mail", privguard.RegimeGDPR, ""},
		{"us-mail", privguard.RegimeGDPR, ""},
		{"us-mail", privguard.RegimePIPL, privguard.ReasonTransferNoMechanism},
		{"nobody-declared", privguard.RegimePIPL, privguard.ReasonTransferNoMechanism}, // an unknown country is abroad
	} {
		got, err := g.Disclose(ctx, provision(tc.recipient, tc.regime, one))
		if err != nil || got != tc.want {
			t.Errorf("Disclose(%s, %s) = %q, %v; want %q", tc.recipient, tc.regime, got, err, tc.want)
		}
	}
	// The standard contract lapses on 1 July.
	c.t = time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	if got, _ := g.Disclose(ctx, provision("sg-crm", privguard.RegimePIPL, one)); got != privguard.ReasonTransferNoMechanism {
		t.Errorf("after the mechanism lapsed: %q; want transfer.no_mechanism", got)
	}
	// Only the provisions that went ahead are logged.
	var logged []string
	for _, e := range entries(t, store) {
		logged = append(logged, e.Recipient+"/"+string(e.Regime))
	}
	if want := "sg-crm/pipl cn-sms/pipl de-mail/gdpr us-mail/gdpr"; strings.Join(logged, " ") != want {
		t.Errorf("logged %v; want %s", logged, want)
	}
}

// Under the volume exemption, the 100,000th person exported this year is refused, people
// already counted are not, and the standard contract lets the count go on.
// proves XB-02
func TestCrossBorderThresholds(t *testing.T) {
	c := &clock{time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	store := &journaltest.Mem{}
	var logs bytes.Buffer
	exempt := disclosure.Recipient{Name: "sg-crm", Country: "SG", Transfers: []disclosure.Transfer{{Mechanism: disclosure.Exemption, Ref: "Art. 5(4)"}}}
	g := newGate(t, store, c.now, &logs, exempt)
	first := subjects("a", disclosure.ThresholdExempt-1)
	if got, err := g.Disclose(ctx, provision("sg-crm", privguard.RegimePIPL, first)); got != "" || err != nil {
		t.Fatalf("99,999 people under the exemption: %q, %v", got, err)
	}
	if n, _ := g.Counts(); n != disclosure.ThresholdExempt-1 {
		t.Fatalf("counted %d", n)
	}
	if !strings.Contains(logs.String(), "at=90%") || !strings.Contains(logs.String(), "at=80%") {
		t.Errorf("no warning at 80 %% and 90 %% of 100,000: %s", logs.String())
	}
	if got, _ := g.Disclose(ctx, provision("sg-crm", privguard.RegimePIPL, subjects("b", 1))); got != privguard.ReasonTransferThreshold {
		t.Fatalf("the 100,000th person: %q; want transfer.threshold", got)
	}
	// Someone already exported this year is not one more person.
	if got, _ := g.Disclose(ctx, provision("sg-crm", privguard.RegimePIPL, first[:10])); got != "" {
		t.Fatalf("people already counted: %q", got)
	}
	// Sensitive data is never exempt.
	if got, _ := g.Disclose(ctx, provision("sg-crm", privguard.RegimePIPL, first[:1], "user.health.condition")); got != privguard.ReasonTransferThreshold {
		t.Fatalf("sensitive data under the exemption: %q", got)
	}
	// A standard contract, recorded, lets the count pass 100,000 (a new gate: the config
	// changed), and the count is the store's.
	sc := exempt
	sc.Transfers = append(sc.Transfers, disclosure.Transfer{Mechanism: disclosure.StandardContract, Ref: "SC-1"})
	g2 := newGate(t, store, c.now, &logs, sc)
	if err := g2.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := g2.Disclose(ctx, provision("sg-crm", privguard.RegimePIPL, subjects("b", 2))); got != "" || err != nil {
		t.Fatalf("past 100,000 under a standard contract: %q, %v", got, err)
	}
	if n, _ := g2.Counts(); n != disclosure.ThresholdExempt+1 {
		t.Fatalf("counted %d; want 100,001", n)
	}
	// Sensitive data: the 10,000th person under a standard contract is refused.
	if got, _ := g2.Disclose(ctx, provision("sg-crm", privguard.RegimePIPL, subjects("a", disclosure.ThresholdSensitive-1), "user.health.condition")); got != "" {
		t.Fatalf("9,999 people's sensitive data: %q", got)
	}
	if got, _ := g2.Disclose(ctx, provision("sg-crm", privguard.RegimePIPL, subjects("c", 1), "user.health.condition")); got != privguard.ReasonTransferThreshold {
		t.Fatalf("the 10,000th person's sensitive data: %q", got)
	}
	if _, n := g2.Counts(); n != disclosure.ThresholdSensitive-1 {
		t.Fatalf("sensitive count %d", n)
	}
	// A new calendar year in China Standard Time starts a new count: 16:00 UTC on 31
	// December is midnight in Beijing.
	c.t = time.Date(2026, 12, 31, 16, 0, 0, 0, time.UTC)
	if got, _ := g.Disclose(ctx, provision("sg-crm", privguard.RegimePIPL, subjects("b", 1))); got != "" {
		t.Fatalf("the first person of 2027: %q", got)
	}
	if n, _ := store.SetSize(ctx, disclosure.SetName(privguard.RegimePIPL, 2027, false)); n != 1 {
		t.Fatalf("2027's count %d", n)
	}
}

// The log says who received what, at what scale, under which mechanism, and never who.
// proves AUD-07
func TestDisclosureLogEntries(t *testing.T) {
	store := &journaltest.Mem{}
	g := newGate(t, store, nil, nil, disclosure.Recipient{Name: "sg-crm", Country: "SG", Role: "processor",
		Transfers: []disclosure.Transfer{{Mechanism: disclosure.CACAssessment, Ref: "CAC-2026-001"}}})
	ss := []privguard.SubjectID{"13800138000", "alice@example.com", "cust-42"}
	p := provision("sg-crm", privguard.RegimePIPL, ss, "user.contact.phone_number")
	p.Decision = "d-1"
	if got, err := g.Disclose(ctx, p); got != "" || err != nil {
		t.Fatal(got, err)
	}
	es := entries(t, store)
	if len(es) != 1 {
		t.Fatalf("%d entries", len(es))
	}
	e := es[0]
	if e.Recipient != "sg-crm" || e.Country != "SG" || e.Role != "processor" || e.Purpose != "marketing.advertising" || e.People != 3 ||
		!e.Abroad || e.Transfer == nil || e.Transfer.Ref != "CAC-2026-001" || e.Decision != "d-1" || e.Route != "POST /share" {
		t.Fatalf("entry %+v", e)
	}
	var raw bytes.Buffer
	_ = store.JournalEntries(ctx, disclosure.Log, 1, func(e journal.Entry) error { raw.Write(e.Body); return nil })
	for _, s := range ss {
		if strings.Contains(raw.String(), string(s)) {
			t.Errorf("the log names a subject: %s", raw.String())
		}
	}
	if n, err := journal.Verify(ctx, store, disclosure.Log); err != nil || n != 1 {
		t.Fatalf("Verify = %d, %v", n, err)
	}
}

// failing is a store whose appends fail.
type failing struct{ *journaltest.Mem }

func (failing) AppendJournal(context.Context, string, []journal.Entry) error {
	return errors.New("disk full")
}

// A provision that cannot be logged is an error, so that it is refused.
func TestUnloggedProvisionIsAnError(t *testing.T) {
	mem := &journaltest.Mem{}
	g, err := disclosure.New(disclosure.Config{Log: failing{mem}, Sets: mem, Key: key,
		Recipients: []disclosure.Recipient{{Name: "cn-sms", Country: "CN"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	_, err = g.Disclose(ctx, provision("cn-sms", privguard.RegimePIPL, subjects("s", 1)))
	if !errors.Is(err, privguard.ErrUnavailable) {
		t.Fatalf("Disclose on a failing log = %v; want ErrUnavailable", err)
	}
}

// Concurrent provisions share writes and are all logged, in one chain.
func TestConcurrentProvisionsAllLogged(t *testing.T) {
	store := &journaltest.Mem{}
	g := newGate(t, store, nil, nil, disclosure.Recipient{Name: "cn-sms", Country: "CN"})
	const n = 200
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := g.Disclose(ctx, provision("cn-sms", privguard.RegimePIPL, subjects(fmt.Sprint(i), 1)))
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got, err := journal.Verify(ctx, store, disclosure.Log); err != nil || got != n {
		t.Fatalf("Verify = %d, %v; want %d", got, err, n)
	}
}
