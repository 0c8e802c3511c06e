package consent_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
)

var ctx = context.Background()

// setup opens a ledger with a fake clock and the marketing notice v1 (zh-CN and en).
func setup(t *testing.T) (*consent.Ledger, *consenttest.Clock) {
	t.Helper()
	clock := &consenttest.Clock{}
	l := consenttest.Open(t, "", consent.Config{Now: clock.Now})
	for _, lang := range []string{"zh-CN", "en"} {
		n := consenttest.MarketingNotice(1, lang)
		if lang == "en" {
			n.Text = "We will use your phone number and purchases to send you offers."
		}
		if _, _, err := l.RegisterNotice(ctx, n); err != nil {
			t.Fatalf("RegisterNotice(%s): %v", lang, err)
		}
	}
	return l, clock
}

func grant(subject privguard.SubjectID, purpose privguard.Purpose) consent.Request {
	return consent.Request{
		Subject: subject, Purpose: purpose, Action: consent.ActionGrant, Regime: privguard.RegimePIPL,
		Notice:  &consent.NoticeRef{ID: "marketing", Version: 1, Language: "zh-CN"},
		Channel: consent.ChannelApp, Method: consent.MethodExplicit,
		Evidence: consent.Evidence{UserAgent: "ExampleApp/7.2 (iOS 18)"}, IP: "203.0.113.77",
	}
}

func mustAppend(t *testing.T, l *consent.Ledger, req consent.Request) consent.Record {
	t.Helper()
	r, _, err := l.Append(ctx, req)
	if err != nil {
		t.Fatalf("Append(%s %s): %v", req.Action, req.Purpose, err)
	}
	return r
}

func check(t *testing.T, l *consent.Ledger, s privguard.SubjectID, p privguard.Purpose) consent.Status {
	t.Helper()
	st, err := l.Check(ctx, s, p)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return st
}

func wantStatus(t *testing.T, l *consent.Ledger, s privguard.SubjectID, p privguard.Purpose, allowed bool, reason privguard.Reason) {
	t.Helper()
	st := check(t, l, s, p)
	if st.Allowed != allowed || st.Reason != reason {
		t.Errorf("Check(%s) = allowed %v, %s (state %s); want allowed %v, %s", p, st.Allowed, st.Reason, st.State, allowed, reason)
	}
}

func wantFieldError(t *testing.T, err error, field, code string) {
	t.Helper()
	var fe *consent.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error = %v; want a *consent.FieldError for %s (%s)", err, field, code)
	}
	if fe.Field != field || fe.Code != code {
		t.Errorf("error names %s (%s); want %s (%s)", fe.Field, fe.Code, field, code)
	}
}

func TestGrantThenWithdrawTakesEffectOnNextCheck(t *testing.T) {
	// proves CON-07: withdrawal needs only the subject identifier and the purpose, and
	// proves DSR-02 (withdrawal without identity verification).
	l, _ := setup(t)
	const s, sms = "cust-1001", "marketing.communications.sms"
	rec := mustAppend(t, l, grant(s, sms))
	if rec.ID == "" || rec.Seq != 1 || rec.Hash == ([32]byte{}) {
		t.Fatalf("grant record = id %q seq %d hash %x; want id, seq 1 and a hash", rec.ID, rec.Seq, rec.Hash)
	}
	wantStatus(t, l, s, sms, true, privguard.ReasonConsentGiven)
	w := mustAppend(t, l, consent.Request{Subject: s, Purpose: sms, Action: consent.ActionWithdraw})
	if w.PrevHash != rec.Hash {
		t.Errorf("withdrawal prev hash = %x; want the grant's hash %x", w.PrevHash, rec.Hash)
	}
	wantStatus(t, l, s, sms, false, privguard.ReasonConsentWithdrawn)
}

func TestConsentIsPerPurpose(t *testing.T) {
	// proves CON-03: one decision per purpose; a grant for SMS is not a grant for email.
	l, _ := setup(t)
	mustAppend(t, l, grant("cust-1", "marketing.communications.sms"))
	wantStatus(t, l, "cust-1", "marketing.communications.sms", true, privguard.ReasonConsentGiven)
	wantStatus(t, l, "cust-1", "marketing.communications.email", false, privguard.ReasonConsentMissing)
	wantStatus(t, l, "cust-1", "marketing.profiling", false, privguard.ReasonConsentMissing)
	wantStatus(t, l, "cust-2", "marketing.communications.sms", false, privguard.ReasonConsentMissing)
}

func TestUnknownSubjectIsUnknownAndDenied(t *testing.T) {
	// proves CON-02: default is no consent; silence is not consent.
	l, _ := setup(t)
	st := check(t, l, "never-seen", "marketing.communications.email")
	if st.State != consent.StateUnknown || st.Allowed || st.Reason != privguard.ReasonConsentMissing {
		t.Errorf("Check(unknown subject) = %+v; want unknown, not allowed, consent.missing", st)
	}
	if st.State.IRI() != "dpv:ConsentUnknown" {
		t.Errorf("state IRI = %s; want dpv:ConsentUnknown", st.State.IRI())
	}
}

func TestGrantNeedsProof(t *testing.T) {
	// proves CON-02: a grant lacking the expression method or the notice is rejected.
	l, _ := setup(t)
	cases := []struct {
		name        string
		mutate      func(*consent.Request)
		field, code string
	}{
		{"no_notice", func(r *consent.Request) { r.Notice = nil }, "notice.id", consent.CodeRequired},
		{"no_method", func(r *consent.Request) { r.Method = "" }, "method", consent.CodeRequired},
		{"gpc_is_not_a_grant", func(r *consent.Request) { r.Method = consent.MethodGPC }, "method", consent.CodeInvalid},
		{"no_channel", func(r *consent.Request) { r.Channel = "" }, "channel", consent.CodeRequired},
		{"no_regime", func(r *consent.Request) { r.Regime = "" }, "regime", consent.CodeRequired},
		{"unknown_notice_version", func(r *consent.Request) { r.Notice.Version = 9 }, "notice.version", consent.CodeNoticeUnknown},
		{"unknown_language", func(r *consent.Request) { r.Notice.Language = "fr" }, "notice.language", consent.CodeNoticeUnknown},
		{"unknown_purpose", func(r *consent.Request) { r.Purpose = "marketing.carrier_pigeon" }, "purpose", consent.CodePurposeUnknown},
		{"malformed_subject", func(r *consent.Request) { r.Subject = "a b" }, "subject", consent.CodeInvalid},
		{"imported_without_provenance", func(r *consent.Request) { r.Method = consent.MethodImported }, "evidence.proof_ref", consent.CodeProvenanceRequired},
		{"bad_ip", func(r *consent.Request) { r.IP = "not-an-ip" }, "evidence.ip", consent.CodeInvalid},
		{"purpose_not_in_notice", func(r *consent.Request) { r.Purpose = "essential.service" }, "legal_basis", consent.CodeBasisNotAllowed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := grant("cust-9", "marketing.communications.email")
			ref := *req.Notice
			req.Notice = &ref
			tc.mutate(&req)
			_, _, err := l.Append(ctx, req)
			wantFieldError(t, err, tc.field, tc.code)
			if !errors.Is(err, privguard.ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
		})
	}
	if got := l.Stats().Records; got != 0 {
		t.Errorf("%d records written by rejected requests; want 0", got)
	}
}

func TestNoLegitimateInterestsUnderPIPL(t *testing.T) {
	// proves CON-01 (ledger side): in PIPL scope only Art. 13 bases, never legitimate interests.
	l, _ := setup(t)
	req := grant("cust-3", "analytics.reporting")
	req.LegalBasis = privguard.BasisLegitimateInterest
	_, _, err := l.Append(ctx, req)
	wantFieldError(t, err, "legal_basis", consent.CodeBasisNotAllowed)
	obj := consent.Request{Subject: "cust-3", Action: consent.ActionObject, Regime: privguard.RegimePIPL, LegalBasis: privguard.BasisLegitimateInterest}
	_, _, err = l.Append(ctx, obj)
	wantFieldError(t, err, "legal_basis", consent.CodeBasisNotAllowed)

	bad := privguard.DefaultPurposes()
	bad[0].Bases[privguard.RegimePIPL] = []privguard.LegalBasis{privguard.BasisLegitimateInterest}
	if _, err := privguard.NewTaxonomy(bad); !errors.Is(err, privguard.ErrInvalid) {
		t.Errorf("NewTaxonomy with legitimate interests under PIPL = %v; want ErrInvalid", err)
	}
}

func TestExpiredConsentCountsAsAbsent(t *testing.T) {
	// proves CON-11: consent carries a validity; past it the state is expired and denied.
	l, clock := setup(t)
	rec := mustAppend(t, l, grant("cust-4", "marketing.communications.push"))
	if want := rec.Time.Add(privguard.DefaultConsentValidity); !rec.ExpiresAt.Equal(want) {
		t.Fatalf("ExpiresAt = %v; want %v", rec.ExpiresAt, want)
	}
	clock.Advance(privguard.DefaultConsentValidity - time.Second)
	wantStatus(t, l, "cust-4", "marketing.communications.push", true, privguard.ReasonConsentGiven)
	clock.Advance(time.Second)
	st := check(t, l, "cust-4", "marketing.communications.push")
	if st.State != consent.StateExpired || st.Allowed || st.Reason != privguard.ReasonConsentExpired {
		t.Errorf("after validity: %+v; want expired, denied, consent.expired", st)
	}
	// A fresh grant renews it.
	mustAppend(t, l, grant("cust-4", "marketing.communications.push"))
	wantStatus(t, l, "cust-4", "marketing.communications.push", true, privguard.ReasonConsentGiven)
}

func TestRenewedState(t *testing.T) {
	l, _ := setup(t)
	mustAppend(t, l, grant("cust-5", "marketing.communications.sms"))
	mustAppend(t, l, grant("cust-5", "marketing.communications.sms"))
	if st := check(t, l, "cust-5", "marketing.communications.sms"); st.State != consent.StateRenewed || !st.Allowed {
		t.Errorf("second grant: %+v; want renewed and allowed", st)
	}
}

func TestMaterialNoticeChangeNeedsFreshConsent(t *testing.T) {
	// proves CON-06: a material change of purpose blocks processing for the affected purpose
	// until consent cites the new version; other purposes still allow.
	l, _ := setup(t)
	mustAppend(t, l, grant("cust-6", "marketing.communications.sms"))
	mustAppend(t, l, grant("cust-6", "analytics.ab_testing"))
	v2 := consenttest.MarketingNotice(2, "zh-CN")
	v2.MaterialChange = true
	v2.AffectedPurposes = []privguard.Purpose{"marketing.communications"}
	if _, _, err := l.RegisterNotice(ctx, v2); err != nil {
		t.Fatal(err)
	}
	st := check(t, l, "cust-6", "marketing.communications.sms")
	if st.State != consent.StateInvalidated || st.Allowed || st.Reason != privguard.ReasonConsentInvalidated {
		t.Errorf("after material change: %+v; want invalidated and denied", st)
	}
	wantStatus(t, l, "cust-6", "analytics.ab_testing", true, privguard.ReasonConsentGiven)
	_, _, err := l.Append(ctx, grant("cust-6", "marketing.communications.sms"))
	wantFieldError(t, err, "notice.version", consent.CodeNoticeSuperseded)
	g := grant("cust-6", "marketing.communications.sms")
	g.Notice = &consent.NoticeRef{ID: "marketing", Version: 2, Language: "zh-CN"}
	mustAppend(t, l, g)
	wantStatus(t, l, "cust-6", "marketing.communications.sms", true, privguard.ReasonConsentGiven)
}

func TestNoticeRegistry(t *testing.T) {
	// proves CON-13: a notice without controller contact, retention or rights channels is
	// rejected; notices are immutable and content-hashed.
	l, _ := setup(t)
	cases := []struct {
		name   string
		mutate func(*consent.Notice)
		field  string
	}{
		{"no_retention", func(n *consent.Notice) { n.Retention = "" }, "retention"},
		{"no_rights_channels", func(n *consent.Notice) { n.RightsChannels = nil }, "rights_channels"},
		{"no_controller_contact", func(n *consent.Notice) { n.Controller.Contact = "" }, "controller"},
		{"no_purposes", func(n *consent.Notice) { n.Purposes = nil }, "purposes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := consenttest.MarketingNotice(1, "zh-CN")
			n.ID = "other"
			tc.mutate(&n)
			_, _, err := l.RegisterNotice(ctx, n)
			var fe *consent.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Errorf("RegisterNotice = %v; want a field error on %s", err, tc.field)
			}
		})
	}
	n := consenttest.MarketingNotice(1, "zh-CN")
	stored, created, err := l.RegisterNotice(ctx, n)
	if err != nil || created {
		t.Fatalf("re-registering the same text: created=%v err=%v; want an idempotent no-op", created, err)
	}
	if stored.SHA256 != "" && len(stored.SHA256) != 64 {
		t.Errorf("sha256 = %q", stored.SHA256)
	}
	n.Text += " changed"
	_, _, err = l.RegisterNotice(ctx, n)
	if !errors.Is(err, privguard.ErrConflict) {
		t.Errorf("changing a registered text: %v; want ErrConflict", err)
	}
	list, err := l.Notices(ctx, "marketing")
	if err != nil || len(list) != 2 || list[0].Language != "en" || list[1].Language != "zh-CN" {
		t.Errorf("Notices = %d entries, %v; want en and zh-CN of version 1", len(list), err)
	}
}

func TestSeparateConsentIsBoundToRecipient(t *testing.T) {
	// proves CON-12: separate consent is its own type bound to a recipient; a general grant
	// never satisfies it.
	l, _ := setup(t)
	req := grant("cust-7", "third_party.sharing")
	_, _, err := l.Append(ctx, req)
	wantFieldError(t, err, "separate", consent.CodeSeparateRequired)
	req.Separate = true
	_, _, err = l.Append(ctx, req)
	wantFieldError(t, err, "recipient", consent.CodeRecipientRequired)
	req.Recipient = &consent.Recipient{Name: "Acme Ads Co", Contact: "dpo@acme-ads.example", Purpose: "lookalike audiences",
		Method: "hashed phone match", Categories: []privguard.DataCategory{"user.contact.phone_number"}}
	rec := mustAppend(t, l, req)
	if rec.SeparateScope != privguard.SeparateProvide {
		t.Errorf("scope = %q; want %q", rec.SeparateScope, privguard.SeparateProvide)
	}
	st, _ := l.CheckRecipient(ctx, "cust-7", "third_party.sharing", "Acme Ads Co")
	if !st.Allowed {
		t.Errorf("CheckRecipient(Acme) = %+v; want allowed", st)
	}
	st, _ = l.CheckRecipient(ctx, "cust-7", "third_party.sharing", "Other Co")
	if st.Allowed || st.Reason != privguard.ReasonSeparateConsentRequired {
		t.Errorf("CheckRecipient(Other) = %+v; want separate_consent.required", st)
	}
	wantStatus(t, l, "cust-7", "third_party.sharing", false, privguard.ReasonSeparateConsentRequired)
	mustAppend(t, l, consent.Request{Subject: "cust-7", Purpose: "third_party.sharing", Action: consent.ActionWithdraw})
	st, _ = l.CheckRecipient(ctx, "cust-7", "third_party.sharing", "Acme Ads Co")
	if st.Allowed || st.Reason != privguard.ReasonConsentWithdrawn {
		t.Errorf("after withdrawal: %+v; want withdrawn", st)
	}
}

func TestMinorNeedsGuardianConsent(t *testing.T) {
	// proves SEN-01 (ledger side): under 14 (PIPL) a consent needs a guardian-consent record
	// with the guardian's identity and verification method.
	l, _ := setup(t)
	mustAppend(t, l, consent.Request{Subject: "kid-1", Action: consent.ActionDeclareAge, AgeBand: consent.Age13})
	_, _, err := l.Append(ctx, grant("kid-1", "marketing.communications.push"))
	wantFieldError(t, err, "guardian", consent.CodeGuardianRequired)
	g := grant("kid-1", "marketing.communications.push")
	g.Method = consent.MethodGuardian
	g.Guardian = &consent.Guardian{Reference: "parent-77", Relationship: "mother", VerificationMethod: "id-card+sms-otp",
		VerifiedAt: time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)}
	rec := mustAppend(t, l, g)
	if rec.Guardian == nil || rec.AgeBand != consent.Age13 {
		t.Errorf("record = guardian %v age %q; want guardian evidence and age 13", rec.Guardian, rec.AgeBand)
	}
	wantStatus(t, l, "kid-1", "marketing.communications.push", true, privguard.ReasonConsentGiven)

	// An adult grant recorded before the age was known stops counting once it is.
	mustAppend(t, l, grant("kid-2", "marketing.communications.push"))
	mustAppend(t, l, consent.Request{Subject: "kid-2", Action: consent.ActionDeclareAge, AgeBand: consent.Age0to12})
	wantStatus(t, l, "kid-2", "marketing.communications.push", false, privguard.ReasonGuardianConsentRequired)

	// GDPR: 15-year-olds are minors at the default age of 16, not under PIPL.
	eu := grant("teen-1", "marketing.communications.email")
	eu.Regime, eu.AgeBand = privguard.RegimeGDPR, consent.Age15
	_, _, err = l.Append(ctx, eu)
	wantFieldError(t, err, "guardian", consent.CodeGuardianRequired)
	cn := grant("teen-1", "marketing.communications.email")
	cn.AgeBand = consent.Age15
	mustAppend(t, l, cn)
}

func TestObjectionToDirectMarketingIsAbsolute(t *testing.T) {
	// proves DSR-13 (recorded side): after an objection every direct-marketing purpose is
	// denied, with nothing but the subject identifier asked; non-marketing purposes are not.
	l, _ := setup(t)
	for _, p := range []privguard.Purpose{"marketing.communications.sms", "marketing.profiling", "analytics.ab_testing"} {
		mustAppend(t, l, grant("cust-8", p))
	}
	mustAppend(t, l, consent.Request{Subject: "cust-8", Action: consent.ActionObject})
	wantStatus(t, l, "cust-8", "marketing.communications.sms", false, privguard.ReasonObjectionDirectMarketing)
	wantStatus(t, l, "cust-8", "marketing.profiling", false, privguard.ReasonObjectionDirectMarketing)
	wantStatus(t, l, "cust-8", "marketing.communications.email", false, privguard.ReasonObjectionDirectMarketing)
	wantStatus(t, l, "cust-8", "analytics.ab_testing", true, privguard.ReasonConsentGiven)
	// A later, explicit opt-in for one channel counts for that channel only.
	mustAppend(t, l, grant("cust-8", "marketing.communications.email"))
	wantStatus(t, l, "cust-8", "marketing.communications.email", true, privguard.ReasonConsentGiven)
	wantStatus(t, l, "cust-8", "marketing.communications.sms", false, privguard.ReasonObjectionDirectMarketing)
}

func TestSubjectLevelFacts(t *testing.T) {
	// proves PUR-07 (ledger side): restricted means storage and security only.
	l, _ := setup(t)
	for _, p := range []privguard.Purpose{"marketing.communications.sms", "personalize.recommendation", "marketing.advertising.first_party"} {
		mustAppend(t, l, grant("cust-9", p))
	}
	mustAppend(t, l, consent.Request{Subject: "cust-9", Action: consent.ActionPersonalisationOff})
	wantStatus(t, l, "cust-9", "personalize.recommendation", false, privguard.ReasonPersonalisationOff)
	wantStatus(t, l, "cust-9", "marketing.communications.sms", true, privguard.ReasonConsentGiven)
	mustAppend(t, l, consent.Request{Subject: "cust-9", Action: consent.ActionPersonalisationOn})
	wantStatus(t, l, "cust-9", "personalize.recommendation", true, privguard.ReasonConsentGiven)

	gpc := mustAppend(t, l, consent.Request{Subject: "cust-9", Action: consent.ActionGPCOptOut})
	if gpc.Method != consent.MethodGPC || !gpc.Evidence.GPC {
		t.Errorf("GPC record method %q gpc %v; want gpc", gpc.Method, gpc.Evidence.GPC)
	}
	wantStatus(t, l, "cust-9", "marketing.advertising.first_party", false, privguard.ReasonGPCOptOut)
	wantStatus(t, l, "cust-9", "marketing.communications.sms", true, privguard.ReasonConsentGiven)

	mustAppend(t, l, consent.Request{Subject: "cust-9", Action: consent.ActionRestrict})
	wantStatus(t, l, "cust-9", "marketing.communications.sms", false, privguard.ReasonRestricted)
	if st := check(t, l, "cust-9", "essential.storage"); st.Reason == privguard.ReasonRestricted {
		t.Errorf("storage is blocked by restriction: %+v", st)
	}
	mustAppend(t, l, consent.Request{Subject: "cust-9", Action: consent.ActionLiftRestriction, ActorType: consent.ActorOperator})
	wantStatus(t, l, "cust-9", "marketing.communications.sms", true, privguard.ReasonConsentGiven)
}

func TestWithdrawEverything(t *testing.T) {
	l, _ := setup(t)
	mustAppend(t, l, grant("cust-10", "marketing.communications.sms"))
	mustAppend(t, l, grant("cust-10", "analytics.ab_testing"))
	mustAppend(t, l, consent.Request{Subject: "cust-10", Action: consent.ActionWithdraw})
	wantStatus(t, l, "cust-10", "marketing.communications.sms", false, privguard.ReasonConsentWithdrawn)
	wantStatus(t, l, "cust-10", "analytics.ab_testing", false, privguard.ReasonConsentWithdrawn)
}

func TestIdempotencyKey(t *testing.T) {
	l, _ := setup(t)
	req := grant("cust-11", "marketing.communications.sms")
	req.IdempotencyKey = "k-1"
	first, replayed, err := l.Append(ctx, req)
	if err != nil || replayed {
		t.Fatalf("first Append: replayed=%v err=%v", replayed, err)
	}
	again, replayed, err := l.Append(ctx, req)
	if err != nil || !replayed || again.ID != first.ID || again.Hash != first.Hash {
		t.Fatalf("retry: id %s replayed=%v err=%v; want the first record %s replayed", again.ID, replayed, err, first.ID)
	}
	req.Purpose = "marketing.communications.email"
	_, _, err = l.Append(ctx, req)
	wantFieldError(t, err, "Idempotency-Key", consent.CodeIdempotencyReused)
	if got := l.Stats().Records; got != 1 {
		t.Errorf("records = %d; want 1", got)
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	clock := &consenttest.Clock{}
	func() {
		l, close := reopen(t, dir, clock)
		defer close()
		if _, _, err := l.RegisterNotice(ctx, consenttest.MarketingNotice(1, "zh-CN")); err != nil {
			t.Fatal(err)
		}
		mustAppend(t, l, grant("cust-12", "marketing.communications.sms"))
		mustAppend(t, l, grant("cust-12", "marketing.communications.email"))
		mustAppend(t, l, consent.Request{Subject: "cust-12", Purpose: "marketing.communications.email", Action: consent.ActionWithdraw})
		mustAppend(t, l, consent.Request{Subject: "cust-12", Action: consent.ActionPersonalisationOff})
	}()
	l, _ := reopen(t, dir, clock)
	wantStatus(t, l, "cust-12", "marketing.communications.sms", true, privguard.ReasonConsentGiven)
	wantStatus(t, l, "cust-12", "marketing.communications.email", false, privguard.ReasonConsentWithdrawn)
	if st := check(t, l, "cust-12", "marketing.profiling"); !st.Facts.PersonalisationOff {
		t.Errorf("facts after restart = %+v; want personalisation off", st.Facts)
	}
	if got := l.Stats().Records; got != 4 {
		t.Errorf("records after restart = %d; want 4", got)
	}
	r := mustAppend(t, l, grant("cust-12", "marketing.communications.push"))
	if r.Seq != 5 {
		t.Errorf("next seq after restart = %d; want 5", r.Seq)
	}
}

func TestExpireDueRecordsExpiry(t *testing.T) {
	// proves CON-11: expiry is recorded in the ledger as its own event.
	l, clock := setup(t)
	mustAppend(t, l, grant("cust-13", "marketing.communications.sms"))
	mustAppend(t, l, grant("cust-14", "marketing.communications.sms"))
	if n, err := l.ExpireDue(ctx, 0); n != 0 || err != nil {
		t.Fatalf("ExpireDue before validity ended = %d, %v; want 0", n, err)
	}
	clock.Advance(privguard.DefaultConsentValidity)
	mustAppend(t, l, grant("cust-14", "marketing.communications.sms")) // renewed in time for the sweep
	n, err := l.ExpireDue(ctx, 0)
	if n != 1 || err != nil {
		t.Fatalf("ExpireDue = %d, %v; want 1", n, err)
	}
	hist, _ := l.History(ctx, "cust-13")
	if last := hist[len(hist)-1]; last.Action != consent.ActionExpire || last.ActorType != consent.ActorSystem {
		t.Errorf("last record = %s by %s; want expire by system", last.Action, last.ActorType)
	}
	if st := check(t, l, "cust-13", "marketing.communications.sms"); st.State != consent.StateExpired {
		t.Errorf("state = %s; want expired", st.State)
	}
	wantStatus(t, l, "cust-14", "marketing.communications.sms", true, privguard.ReasonConsentGiven)
	if n, _ := l.ExpireDue(ctx, 0); n != 0 {
		t.Errorf("second sweep wrote %d; want 0", n)
	}
}

func TestSuppressionSurvivesErasure(t *testing.T) {
	// proves DSR-13: after an objection all marketing is denied, and a minimal suppression
	// entry (a keyed hash, no identifier in the clear) survives the subject's erasure.
	dir := t.TempDir()
	clock := &consenttest.Clock{}
	l, closeFn := reopen(t, dir, clock)
	if _, _, err := l.RegisterNotice(ctx, consenttest.MarketingNotice(1, "zh-CN")); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, grant("cust-15", "marketing.communications.sms"))
	mustAppend(t, l, grant("cust-15", "analytics.ab_testing"))
	mustAppend(t, l, consent.Request{Subject: "cust-15", Action: consent.ActionObject})
	mustAppend(t, l, consent.Request{Subject: "cust-15", Action: consent.ActionErase, ActorType: consent.ActorSystem})
	wantStatus(t, l, "cust-15", "analytics.ab_testing", false, privguard.ReasonConsentWithdrawn)
	wantStatus(t, l, "cust-15", "marketing.communications.email", false, privguard.ReasonObjectionDirectMarketing)
	if ok, err := l.Suppressed(ctx, "cust-15"); !ok || err != nil {
		t.Errorf("Suppressed after erasure = %v, %v; want true", ok, err)
	}
	if ok, _ := l.Suppressed(ctx, "cust-16"); ok {
		t.Error("a subject that never objected is suppressed")
	}
	closeFn()
	db, err := bolt.Open(filepath.Join(dir, "privguard.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	entries := 0
	db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("consent.suppression")).ForEach(func(k, v []byte) error {
			entries++
			if len(k) != 32 || bytes.Contains(k, []byte("cust-15")) {
				t.Errorf("suppression key %q is not a 32-byte keyed hash", k)
			}
			return nil
		})
	})
	db.Close()
	if entries != 1 {
		t.Errorf("suppression entries = %d; want 1", entries)
	}
	l, _ = reopen(t, dir, clock)
	if ok, _ := l.Suppressed(ctx, "cust-15"); !ok {
		t.Error("suppression lost across restart")
	}
	wantStatus(t, l, "cust-15", "marketing.communications.sms", false, privguard.ReasonObjectionDirectMarketing)
}

func TestControllerFactsNeedAnOperatorOrSystem(t *testing.T) {
	// erase, expire and lift_restriction are the controller's acts: a record of one that
	// says (or defaults to saying) the subject did it is refused.
	l, _ := setup(t)
	mustAppend(t, l, grant("cust-30", "marketing.communications.sms"))
	for _, tc := range []struct {
		req consent.Request
		ok  bool
	}{
		{consent.Request{Subject: "cust-30", Action: consent.ActionLiftRestriction}, false},
		{consent.Request{Subject: "cust-30", Action: consent.ActionErase, ActorType: consent.ActorSubject}, false},
		{consent.Request{Subject: "cust-30", Action: consent.ActionExpire, Purpose: "marketing.communications.sms", ActorType: consent.ActorGuardian}, false},
		{consent.Request{Subject: "cust-30", Action: consent.ActionLiftRestriction, ActorType: consent.ActorOperator}, true},
		{consent.Request{Subject: "cust-30", Action: consent.ActionErase, ActorType: consent.ActorSystem}, true},
	} {
		_, _, err := l.Append(ctx, tc.req)
		var fe *consent.FieldError
		if tc.ok != (err == nil) || (!tc.ok && (!errors.As(err, &fe) || fe.Field != "actor_type")) {
			t.Errorf("Append(%s by %q) = %v; want ok=%v (else an actor_type error)", tc.req.Action, tc.req.ActorType, err, tc.ok)
		}
	}
}
