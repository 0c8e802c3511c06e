package consent_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
)

// TestEveryAllowResolvesToAComplete27560Record checks, over a random mix of grants,
// withdrawals and subject-level facts, that every purpose the ledger allows on the basis of
// consent resolves to a grant record whose receipt carries every ISO/IEC TS 27560
// mandatory field.
func TestEveryAllowResolvesToAComplete27560Record(t *testing.T) {
	// proves CON-04: proof of every consent event with the 27560 mandatory fields.
	l, _ := setup(t)
	rng := rand.New(rand.NewPCG(1, 2))
	purposes := []privguard.Purpose{"marketing.communications.sms", "marketing.communications.email",
		"marketing.profiling", "analytics.ab_testing", "personalize.recommendation"}
	for i := range 300 {
		s := privguard.SubjectID(fmt.Sprintf("p-%d", rng.IntN(40)))
		p := purposes[rng.IntN(len(purposes))]
		switch rng.IntN(6) {
		case 0:
			mustAppend(t, l, consent.Request{Subject: s, Purpose: p, Action: consent.ActionWithdraw})
		case 1:
			mustAppend(t, l, consent.Request{Subject: s, Action: consent.ActionPersonalisationOff})
		default:
			req := grant(s, p)
			if i%2 == 0 {
				req.Regime = privguard.RegimeGDPR
			}
			mustAppend(t, l, req)
		}
	}
	allowed := 0
	for i := range 40 {
		view, err := l.Subject(ctx, privguard.SubjectID(fmt.Sprintf("p-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		for _, ps := range view.Purposes {
			if !ps.Allowed {
				continue
			}
			allowed++
			rec, err := l.Record(ctx, ps.RecordID)
			if err != nil {
				t.Fatalf("allowed %s resolves to no record: %v", ps.Purpose, err)
			}
			signed, err := l.Receipt(ctx, rec.ID)
			if err != nil {
				t.Fatal(err)
			}
			rc, x := signed.Receipt, signed.Receipt.ISO27560
			missing := []string{}
			for name, ok := range map[string]bool{
				"notice":           x.NoticeID != "" && len(x.NoticeSHA256) == 64 && rc.Language != "",
				"purposes":         len(rc.Services) == 1 && rc.Services[0].Purposes[0].Purpose == string(ps.Purpose),
				"pi_types":         len(rc.Services[0].Purposes[0].PIICategory) > 0,
				"controllers":      len(rc.PIIControllers) == 1 && rc.PIIControllers[0].PIIController != "" && rc.PIIControllers[0].Contact != "",
				"retention":        x.Retention != "",
				"jurisdiction":     rc.Jurisdiction == "CN" || rc.Jurisdiction == "EU",
				"withdrawal":       len(x.WithdrawalMethod) > 0,
				"event_time":       rc.ConsentTimestamp > 0,
				"validity":         x.ValidUntil != "",
				"actor":            x.ActorType != "" || x.Actor != "",
				"consent_type":     rc.Services[0].Purposes[0].ConsentType != "" && x.Method != "",
				"state":            x.State == "dpv:ConsentGiven",
				"legal_basis":      x.LegalBasis == "consent",
				"chain":            len(x.RecordHash) == 64 && len(x.PrevHash) == 64,
				"collection_point": x.Channel != "",
			} {
				if !ok {
					missing = append(missing, name)
				}
			}
			if len(missing) > 0 {
				t.Errorf("receipt of %s (%s) lacks %v", rec.ID, ps.Purpose, missing)
			}
		}
	}
	if allowed < 20 {
		t.Fatalf("only %d allowed purposes in the mix; the property was barely exercised", allowed)
	}
}

func TestAudienceMatchesCheck(t *testing.T) {
	l, _ := setup(t)
	rng := rand.New(rand.NewPCG(3, 4))
	const sms = "marketing.communications.sms"
	for i := range 2000 {
		s := privguard.SubjectID(fmt.Sprintf("a-%d", i))
		switch rng.IntN(5) {
		case 0: // never recorded
		case 1:
			mustAppend(t, l, grant(s, "marketing.communications.email"))
		case 2:
			mustAppend(t, l, grant(s, sms))
			mustAppend(t, l, consent.Request{Subject: s, Action: consent.ActionObject})
		default:
			mustAppend(t, l, grant(s, sms))
		}
	}
	var list []privguard.SubjectID
	for range 5000 { // with duplicates and unknown subjects, in random order
		list = append(list, privguard.SubjectID(fmt.Sprintf("a-%d", rng.IntN(2500))))
	}
	var want []privguard.SubjectID
	for _, s := range list {
		if check(t, l, s, sms).Allowed {
			want = append(want, s)
		}
	}
	got, err := l.Audience(ctx, sms, list)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) || len(want) < 1000 {
		t.Fatalf("Audience kept %d; Check allows %d (want > 1000 for a meaningful test)", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Audience[%d] = %s; want %s (order must follow the input)", i, got[i], want[i])
		}
	}
	if _, err := l.Audience(ctx, "marketing.fax", list); !errors.Is(err, privguard.ErrInvalid) {
		t.Errorf("Audience(unknown purpose) = %v; want ErrInvalid", err)
	}
	if got, _ := l.Audience(ctx, sms, nil); len(got) != 0 {
		t.Errorf("Audience(nil) = %v", got)
	}
}

func TestShortAndLongSubjectIDs(t *testing.T) {
	dir := t.TempDir()
	clock := &consenttest.Clock{}
	ids := []privguard.SubjectID{"a", "exactly-31-bytes-long-id-000001", "exactly-32-bytes-long-id-0000001",
		privguard.SubjectID("long-" + strings.Repeat("x", 120))}
	l, closeFn := reopen(t, dir, clock)
	if _, _, err := l.RegisterNotice(ctx, consenttest.MarketingNotice(1, "zh-CN")); err != nil {
		t.Fatal(err)
	}
	for _, s := range ids {
		mustAppend(t, l, grant(s, "marketing.communications.sms"))
	}
	mustAppend(t, l, consent.Request{Subject: ids[3], Action: consent.ActionObject})
	closeFn()
	l, _ = reopen(t, dir, clock)
	for i, s := range ids {
		want := i != 3
		if st := check(t, l, s, "marketing.communications.sms"); st.Allowed != want {
			t.Errorf("Check(%d-byte id) = %+v; want allowed %v", len(s), st, want)
		}
	}
	got, _ := l.Audience(ctx, "marketing.communications.sms", ids)
	if len(got) != 3 || got[2] != ids[2] {
		t.Errorf("Audience = %v; want the first three ids", got)
	}
	if st := l.Stats(); st.Subjects != 4 {
		t.Errorf("subjects = %d; want 4", st.Subjects)
	}
}

func TestConsentCoversDescendantPurposes(t *testing.T) {
	// proves PUR-02: consent for a purpose covers its descendants, not its siblings or
	// ancestors; a later withdrawal of the parent withdraws the children, and a later
	// grant for a child counts for that child.
	infos := privguard.DefaultPurposes()
	infos = append(infos, privguard.PurposeInfo{Purpose: "marketing.communications", Description: "All marketing messages",
		Bases: map[privguard.Regime][]privguard.LegalBasis{privguard.RegimePIPL: {privguard.BasisConsent}}, DirectMarketing: true,
		Validity: privguard.DefaultConsentValidity})
	tax, err := privguard.NewTaxonomy(infos)
	if err != nil {
		t.Fatal(err)
	}
	l := consenttest.Open(t, "", consent.Config{Taxonomy: tax})
	if _, _, err := l.RegisterNotice(ctx, consenttest.MarketingNotice(1, "zh-CN")); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, grant("p-1", "marketing.communications"))
	wantStatus(t, l, "p-1", "marketing.communications.sms", true, privguard.ReasonConsentGiven)
	wantStatus(t, l, "p-1", "marketing.communications.email", true, privguard.ReasonConsentGiven)
	wantStatus(t, l, "p-1", "marketing.profiling", false, privguard.ReasonConsentMissing)
	mustAppend(t, l, consent.Request{Subject: "p-1", Purpose: "marketing.communications.sms", Action: consent.ActionWithdraw})
	wantStatus(t, l, "p-1", "marketing.communications.sms", false, privguard.ReasonConsentWithdrawn)
	wantStatus(t, l, "p-1", "marketing.communications.email", true, privguard.ReasonConsentGiven)
	mustAppend(t, l, consent.Request{Subject: "p-1", Purpose: "marketing.communications", Action: consent.ActionWithdraw})
	wantStatus(t, l, "p-1", "marketing.communications.email", false, privguard.ReasonConsentWithdrawn)
	mustAppend(t, l, grant("p-1", "marketing.communications.push"))
	wantStatus(t, l, "p-1", "marketing.communications.push", true, privguard.ReasonConsentGiven)
	wantStatus(t, l, "p-1", "marketing.communications.email", false, privguard.ReasonConsentWithdrawn)
}
