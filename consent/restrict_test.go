package consent_test

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
	"github.com/privguard/privguard/policy"
)

const retentionGround = "会计档案管理办法 Art. 14: accounting records 30 years"

// factsOf returns in with the ledger's facts filled in.
func factsOf(t *testing.T, l *consent.Ledger, in privguard.Input) privguard.Input {
	t.Helper()
	if err := l.Facts(ctx, &in); err != nil {
		t.Fatalf("Facts: %v", err)
	}
	return in
}

func TestScopedRestriction(t *testing.T) {
	l, clock := setup(t)
	const s = "cust-scoped"
	mustAppend(t, l, grant(s, "marketing.communications.sms"))
	until := clock.Now().Add(48 * time.Hour)
	if err := l.RestrictCategories(ctx, s, []privguard.DataCategory{"user.contact"}, until, retentionGround, "retention:contacts"); err != nil {
		t.Fatalf("RestrictCategories: %v", err)
	}
	in := func(cats ...privguard.DataCategory) privguard.Input {
		return privguard.Input{Subject: s, Purpose: "marketing.communications.sms", Regime: privguard.RegimePIPL, Categories: cats}
	}
	cases := []struct {
		name string
		cats []privguard.DataCategory
		want bool
	}{
		{"descendant_restricted", []privguard.DataCategory{"user.contact.phone_number"}, true},
		{"ancestor_restricted", []privguard.DataCategory{"user"}, true},
		{"one_of_several", []privguard.DataCategory{"user.behavior.purchase_history", "user.contact.email"}, true},
		{"unrelated_allowed", []privguard.DataCategory{"user.behavior.purchase_history"}, false},
		{"no_categories", nil, false},
	}
	for _, tc := range cases {
		if got := factsOf(t, l, in(tc.cats...)).Facts.Restricted; got != tc.want {
			t.Errorf("%s: Facts(%v).Restricted = %v; want %v", tc.name, tc.cats, got, tc.want)
		}
	}
	// Check has no categories: the subject as a whole is not restricted.
	wantStatus(t, l, s, "marketing.communications.sms", true, privguard.ReasonConsentGiven)
	if got, _ := l.RestrictedCategories(ctx, s); !slices.Equal(got, []privguard.DataCategory{"user.contact"}) {
		t.Errorf("RestrictedCategories = %v; want [user.contact]", got)
	}
	hist, _ := l.History(ctx, s)
	r := hist[len(hist)-1]
	if r.Action != consent.ActionRestrict || r.Ground != retentionGround || !r.ExpiresAt.Equal(until) || r.ActorType != consent.ActorSystem {
		t.Errorf("restrict record = %+v", r)
	}
	// Idempotent: the same restriction again writes nothing; another expiry is a new one.
	if err := l.RestrictCategories(ctx, s, []privguard.DataCategory{"user.contact", "user.contact"}, until, retentionGround, "retention:contacts"); err != nil {
		t.Fatalf("RestrictCategories again: %v", err)
	}
	if again, _ := l.History(ctx, s); len(again) != len(hist) {
		t.Errorf("RestrictCategories again wrote %d records; want none", len(again)-len(hist))
	}
	if err := l.RestrictCategories(ctx, s, []privguard.DataCategory{"user.contact"}, until, "another ground", "retention:contacts"); err != nil {
		t.Fatalf("RestrictCategories (other ground): %v", err)
	}
	if again, _ := l.History(ctx, s); len(again) != len(hist)+1 {
		t.Errorf("RestrictCategories with another ground wrote %d records; want 1", len(again)-len(hist))
	}
	if v, _ := l.Subject(ctx, s); !slices.Equal(v.RestrictedCategories, []privguard.DataCategory{"user.contact"}) || v.Facts.Restricted {
		t.Errorf("Subject: restricted categories %v, restricted %v; want [user.contact], false", v.RestrictedCategories, v.Facts.Restricted)
	}
	// The restriction ends at its expiry.
	clock.Advance(49 * time.Hour)
	if factsOf(t, l, in("user.contact.phone_number")).Facts.Restricted {
		t.Error("restriction still in force after its expiry")
	}
	if got, _ := l.RestrictedCategories(ctx, s); got != nil {
		t.Errorf("RestrictedCategories after expiry = %v; want none", got)
	}
}

func TestScopedRestrictionLift(t *testing.T) {
	l, _ := setup(t)
	const s = "cust-lift"
	mustAppend(t, l, consent.Request{Subject: s, Action: consent.ActionRestrict, ActorType: consent.ActorOperator,
		Categories: []privguard.DataCategory{"user.contact", "user.behavior"}})
	in := func(c privguard.DataCategory) privguard.Input {
		return privguard.Input{Subject: s, Purpose: "marketing.communications.sms", Regime: privguard.RegimePIPL, Categories: []privguard.DataCategory{c}}
	}
	// A whole-subject lift leaves scoped restrictions in force.
	mustAppend(t, l, consent.Request{Subject: s, Action: consent.ActionLiftRestriction, ActorType: consent.ActorOperator})
	if !factsOf(t, l, in("user.contact.email")).Facts.Restricted {
		t.Error("a lift without categories lifted a scoped restriction")
	}
	mustAppend(t, l, consent.Request{Subject: s, Action: consent.ActionLiftRestriction, ActorType: consent.ActorOperator,
		Categories: []privguard.DataCategory{"user.contact"}})
	if factsOf(t, l, in("user.contact.email")).Facts.Restricted {
		t.Error("user.contact still restricted after its lift")
	}
	if !factsOf(t, l, in("user.behavior.purchase_history")).Facts.Restricted {
		t.Error("user.behavior lifted with user.contact")
	}
	// Erasure ends scoped restrictions with the data.
	mustAppend(t, l, consent.Request{Subject: s, Action: consent.ActionErase, ActorType: consent.ActorSystem})
	if got, _ := l.RestrictedCategories(ctx, s); got != nil {
		t.Errorf("after erasure: RestrictedCategories = %v; want none", got)
	}
	// A whole-subject restriction behaves as before.
	mustAppend(t, l, consent.Request{Subject: s, Action: consent.ActionRestrict, ActorType: consent.ActorOperator})
	if !factsOf(t, l, in("user.contact.email")).Facts.Restricted {
		t.Error("whole-subject restriction not in force")
	}
}

func TestScopedRestrictionInvalid(t *testing.T) {
	l, clock := setup(t)
	cases := []struct {
		name  string
		req   consent.Request
		field string
	}{
		{"expiry_without_categories", consent.Request{Subject: "s", Action: consent.ActionRestrict, ExpiresAt: clock.Now().Add(time.Hour)}, "expires_at"},
		{"expiry_in_past", consent.Request{Subject: "s", Action: consent.ActionRestrict, Categories: []privguard.DataCategory{"user.contact"}, ExpiresAt: clock.Now().Add(-time.Hour)}, "expires_at"},
		{"ground_on_object", consent.Request{Subject: "s", Action: consent.ActionObject, Ground: "x"}, "ground"},
		{"ground_too_long", consent.Request{Subject: "s", Action: consent.ActionRestrict, Ground: string(make([]byte, consent.MaxGround+1))}, "ground"},
		{"bad_category", consent.Request{Subject: "s", Action: consent.ActionRestrict, Categories: []privguard.DataCategory{"User Contact"}}, "categories[0]"},
	}
	for _, tc := range cases {
		_, _, err := l.Append(ctx, tc.req)
		wantFieldError(t, err, tc.field, consent.CodeInvalid)
	}
}

// proves PUR-07: a restriction of categories leaves only storage and security (and legal
// claims) for those categories; other categories and purposes are unaffected.
func TestScopedRestrictionPolicy(t *testing.T) {
	l, clock := setup(t)
	eng, err := policy.New(ctx, policy.Config{})
	if err != nil {
		t.Fatalf("policy.New: %v", err)
	}
	const s = "cust-policy"
	mustAppend(t, l, grant(s, "marketing.communications.sms"))
	if err := l.RestrictCategories(ctx, s, []privguard.DataCategory{"user.contact.phone_number"}, clock.Now().Add(time.Hour), retentionGround, "retention"); err != nil {
		t.Fatalf("RestrictCategories: %v", err)
	}
	cases := []struct {
		name    string
		purpose privguard.Purpose
		cat     privguard.DataCategory
		allow   bool
	}{
		{"marketing_restricted_category_denied", "marketing.communications.sms", "user.contact.phone_number", false},
		{"storage_restricted_category_allowed", "essential.storage", "user.contact.phone_number", true},
		{"security_restricted_category_allowed", "essential.security", "user.contact.phone_number", true},
		{"marketing_unrelated_category_allowed", "marketing.communications.sms", "user.behavior.purchase_history", true},
	}
	for _, tc := range cases {
		in := factsOf(t, l, privguard.Input{Subject: s, Purpose: tc.purpose, Regime: privguard.RegimePIPL, Channel: "sms",
			Categories: []privguard.DataCategory{tc.cat}, Time: clock.Now()})
		d, err := eng.Decide(ctx, in)
		if err != nil {
			t.Fatalf("%s: Decide: %v", tc.name, err)
		}
		if d.Allowed() != tc.allow || (!tc.allow && !slices.Contains(d.Reasons, privguard.ReasonRestricted)) {
			t.Errorf("%s: Decide = allow %v, reasons %v; want allow %v (restricted when denied)", tc.name, d.Allowed(), d.Reasons, tc.allow)
		}
	}
}

// Scoped restrictions survive a snapshot (close and reopen) and are followed by another
// process's ledger on a shared store (replay of the stored record).
func TestScopedRestrictionReopen(t *testing.T) {
	dir := t.TempDir()
	clock := &consenttest.Clock{}
	l, closeL := reopen(t, dir, clock)
	until := clock.Now().Add(time.Hour)
	if err := l.RestrictCategories(ctx, "cust-r", []privguard.DataCategory{"user.contact"}, until, retentionGround, "retention"); err != nil {
		t.Fatalf("RestrictCategories: %v", err)
	}
	closeL()
	l, closeL = reopen(t, dir, clock)
	if got, _ := l.RestrictedCategories(ctx, "cust-r"); !slices.Equal(got, []privguard.DataCategory{"user.contact"}) {
		t.Errorf("after reopen: RestrictedCategories = %v; want [user.contact]", got)
	}
	if _, err := consent.Verify(ctx, mustBolt(t, dir, closeL).Consent()); err != nil {
		t.Fatalf("Verify: %v", err)
	}

	shared := consenttest.NewShared()
	a, err := consent.Open(ctx, consent.Config{Store: shared.View(), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := consent.Open(ctx, consent.Config{Store: shared.View(), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := a.RestrictCategories(ctx, "cust-f", []privguard.DataCategory{"user.behavior"}, until, retentionGround, "retention"); err != nil {
		t.Fatalf("RestrictCategories: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, _ := b.RestrictedCategories(ctx, "cust-f")
		if slices.Equal(got, []privguard.DataCategory{"user.behavior"}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("follower: RestrictedCategories = %v; want [user.behavior]", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// mustBolt closes the ledger (closeL) and opens its file for Verify.
func mustBolt(t *testing.T, dir string, closeL func()) *boltstore.DB {
	t.Helper()
	closeL()
	db, err := boltstore.Open(filepath.Join(dir, "privguard.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
