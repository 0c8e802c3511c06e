package outreach_test

import (
	"errors"
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

// proves MKT-02
func TestGateSoftOptIn(t *testing.T) {
	tax := privguard.DefaultPurposes()
	tax = append(tax, privguard.PurposeInfo{Purpose: outreach.SoftOptInPurpose, Description: "Email about similar products to existing customers",
		Bases: map[privguard.Regime][]privguard.LegalBasis{privguard.RegimeGDPR: {privguard.BasisLegitimateInterest}}, DirectMarketing: true,
		Categories: []privguard.DataCategory{"user.contact.email"}})
	taxonomy, err := privguard.NewTaxonomy(tax)
	if err != nil {
		t.Fatal(err)
	}
	l := consenttest.Open(t, "", consent.Config{Taxonomy: taxonomy})
	if _, _, err := l.RegisterNotice(ctx, consenttest.MarketingNotice(1, "en")); err != nil {
		t.Fatal(err)
	}
	notice := &consent.NoticeRef{ID: "marketing", Version: 1}
	app := func(subject privguard.SubjectID, p privguard.Purpose, a consent.Action, r privguard.Regime, basis privguard.LegalBasis) {
		t.Helper()
		req := consent.Request{Subject: subject, Purpose: p, Action: a, Regime: r, Channel: consent.ChannelStore, Method: consent.MethodExplicit}
		if a == consent.ActionGrant {
			req.LegalBasis, req.Notice = basis, notice
		}
		if a == consent.ActionObject {
			req.Purpose = ""
		}
		if _, _, err := l.Append(ctx, req); err != nil {
			t.Fatalf("%s %s %s: %v", a, subject, p, err)
		}
	}
	gdpr, pipl, li := privguard.RegimeGDPR, privguard.RegimePIPL, privguard.BasisLegitimateInterest
	// An existing EU customer, offered the opt-out at the sale.
	app("eu-customer", outreach.SoftOptInPurpose, consent.ActionGrant, gdpr, li)
	// The same, who later objected to direct marketing.
	app("eu-objected", outreach.SoftOptInPurpose, consent.ActionGrant, gdpr, li)
	app("eu-objected", "", consent.ActionObject, gdpr, "")
	// The same, who unsubscribed from email (a link withdraws the email purpose).
	app("eu-unsubscribed", outreach.SoftOptInPurpose, consent.ActionGrant, gdpr, li)
	app("eu-unsubscribed", email, consent.ActionWithdraw, gdpr, "")
	// A PRC subject, who refused marketing email under PIPL.
	app("cn-subject", email, consent.ActionRefuse, pipl, "")
	// No sale at all.
	recipients := []privguard.SubjectID{"eu-customer", "eu-objected", "eu-unsubscribed", "cn-subject", "prospect"}

	// The ledger refuses a soft opt-in under PIPL: a PRC subject always needs consent.
	_, _, err = l.Append(ctx, consent.Request{Subject: "cn-subject", Purpose: outreach.SoftOptInPurpose, Action: consent.ActionGrant,
		Regime: pipl, LegalBasis: li, Channel: consent.ChannelStore, Method: consent.MethodExplicit, Notice: notice})
	if err == nil {
		t.Fatal("a soft opt-in under PIPL was recorded")
	}

	g := &outreach.Gate{Ledger: l, PublicURL: "https://privacy.example.com", Key: testKey}
	check := func(soft bool) outreach.Result {
		t.Helper()
		res, err := g.Check(ctx, outreach.Request{Channel: outreach.ChannelEmail, Template: emailTemplate, Recipients: recipients, SoftOptIn: soft})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if got := allowedSubjects(check(false)); len(got) != 0 {
		t.Errorf("without soft_opt_in allowed %v", got)
	}
	res := check(true)
	if got := allowedSubjects(res); !slices.Equal(got, []privguard.SubjectID{"eu-customer"}) {
		t.Errorf("soft opt-in allowed %v, want [eu-customer]", got)
	}
	if len(res.Allowed) == 1 && res.Allowed[0].Unsubscribe == nil {
		t.Error("a soft opt-in email has no unsubscribe link")
	}
	d := denied(res)
	for s, want := range map[privguard.SubjectID][]string{
		"eu-objected":     {"consent.missing", "objection.direct_marketing"},
		"eu-unsubscribed": {"consent.withdrawn"},
		"cn-subject":      {"consent.refused", outreach.ReasonSoftOptInPIPL},
		"prospect":        {"consent.missing"},
	} {
		if !slices.Equal(d[s], want) {
			t.Errorf("%s: reasons %v, want %v", s, d[s], want)
		}
	}

	// Never SMS (nor push, nor WeChat), nor a service message.
	for _, req := range []outreach.Request{
		{Channel: outreach.ChannelSMS, Template: smsTemplate, Recipients: recipients, SoftOptIn: true},
		{Channel: outreach.ChannelPush, Template: emailTemplate, Recipients: recipients, SoftOptIn: true},
		{Channel: outreach.ChannelEmail, Template: outreach.Template{Kind: outreach.KindService, Sender: "Example Shop", Text: "Your order shipped", ID: "ship"}, Recipients: recipients, SoftOptIn: true},
	} {
		var re *outreach.RuleError
		if _, err := g.Check(ctx, req); !errors.As(err, &re) || re.Rule != outreach.RuleSoftOptInChannel {
			t.Errorf("%s %s with soft_opt_in: %v, want %s", req.Channel, req.Template.Kind, err, outreach.RuleSoftOptInChannel)
		}
	}
	// A template without the unsubscribe link fails first, soft opt-in or not.
	noLink := outreach.Template{Kind: outreach.KindMarketing, Sender: "Example Shop", Text: "Spring picks", ID: "x"}
	var re *outreach.RuleError
	if _, err := g.Check(ctx, outreach.Request{Channel: outreach.ChannelEmail, Template: noLink, Recipients: recipients, SoftOptIn: true}); !errors.As(err, &re) || re.Rule != outreach.RuleRefusalMissing {
		t.Errorf("soft opt-in without the refusal method: %v", err)
	}
}
