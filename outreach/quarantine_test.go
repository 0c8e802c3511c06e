package outreach_test

import (
	"slices"
	"testing"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
	"github.com/privguard/privguard/outreach"
)

// grantFrom records a marketing SMS grant for subject with the given channel, method and
// evidence, first-hand (Append) or imported (Import).
func grantFrom(t *testing.T, l *consent.Ledger, subject privguard.SubjectID, imported bool, ch consent.Channel, m consent.Method, ev consent.Evidence) {
	t.Helper()
	req := consent.Request{Subject: subject, Purpose: sms, Action: consent.ActionGrant, Regime: privguard.RegimePIPL,
		Channel: ch, Method: m, LegalBasis: privguard.BasisConsent, Notice: &consent.NoticeRef{ID: "marketing", Version: 1}, Evidence: ev}
	if imported {
		out := make([]consent.Result, 1)
		l.Import(ctx, []consent.Request{req}, out)
		if out[0].Err != nil {
			t.Fatalf("import %s: %v", subject, out[0].Err)
		}
		return
	}
	if _, _, err := l.Append(ctx, req); err != nil {
		t.Fatalf("append %s: %v", subject, err)
	}
}

// proves MKT-11
func TestGateQuarantinesPartnerGrantsWithoutProof(t *testing.T) {
	shared := consenttest.NewShared()
	l, err := consent.Open(ctx, consent.Config{Store: shared.View()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if _, _, err := l.RegisterNotice(ctx, consenttest.MarketingNotice(1, "zh-CN")); err != nil {
		t.Fatal(err)
	}
	partner := consent.Evidence{CollectedBy: "third_party"}
	proven := consent.Evidence{CollectedBy: "third_party", ProofRef: "s3://partner/proofs/42", ContractRef: "DPA-2026-07"}
	// A partner's grant relayed through the consent API without its proof or contract.
	grantFrom(t, l, "u-partner", false, consent.ChannelImport, consent.MethodExplicit, partner)
	grantFrom(t, l, "u-partner-api", false, consent.ChannelAPI, consent.MethodExplicit, partner)
	grantFrom(t, l, "u-partner-noproof", false, consent.ChannelAPI, consent.MethodExplicit, consent.Evidence{CollectedBy: "third_party", ContractRef: "DPA-2026-07"})
	// The same partner's grant imported with its proof and contract.
	grantFrom(t, l, "u-proven", true, "", "", proven)
	// A first-party grant.
	grantFrom(t, l, "u-own", false, consent.ChannelApp, consent.MethodExplicit, consent.Evidence{})
	// Quarantined first, then the proof arrives.
	grantFrom(t, l, "u-later", false, consent.ChannelImport, consent.MethodExplicit, partner)
	grantFrom(t, l, "u-later", true, "", "", proven)

	subjects := []privguard.SubjectID{"u-partner", "u-partner-api", "u-partner-noproof", "u-proven", "u-own", "u-later"}
	want := []privguard.SubjectID{"u-proven", "u-own", "u-later"}
	check := func(t *testing.T, l *consent.Ledger) {
		g := &outreach.Gate{Ledger: l, PublicURL: "https://privacy.example.com", Key: testKey}
		res, err := g.Check(ctx, outreach.Request{Channel: outreach.ChannelSMS, Template: smsTemplate, Recipients: subjects})
		if err != nil {
			t.Fatal(err)
		}
		if got := allowedSubjects(res); !slices.Equal(got, want) {
			t.Errorf("allowed %v, want %v", got, want)
		}
		d := denied(res)
		for _, s := range []privguard.SubjectID{"u-partner", "u-partner-api", "u-partner-noproof"} {
			if !slices.Equal(d[s], []string{outreach.ReasonQuarantineNoProof}) {
				t.Errorf("%s: reasons %v, want [%s]", s, d[s], outreach.ReasonQuarantineNoProof)
			}
		}
		// A service message rests on the contract, not on the partner's consent.
		svc := outreach.Template{Kind: outreach.KindService, Sender: "示例商城", Text: "【示例商城】您的订单已发货", ID: "ship"}
		res, err = g.Check(ctx, outreach.Request{Channel: outreach.ChannelSMS, Template: svc, Recipients: subjects})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Denied) != 0 {
			t.Errorf("service message denied %v", res.Denied)
		}
	}
	t.Run("live", func(t *testing.T) { check(t, l) })
	// Another process rebuilds its state from the stored records (the replay path).
	t.Run("replayed", func(t *testing.T) {
		other, err := consent.Open(ctx, consent.Config{Store: shared.View()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { other.Close() })
		check(t, other)
	})
}
