package outreach_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
	"github.com/privguard/privguard/outreach"
)

var ctx = context.Background()

var testKey = bytes.Repeat([]byte{7}, 32)

// env is a real ledger on bbolt with the marketing notice registered, and a gate over it.
type env struct {
	t     testing.TB
	l     *consent.Ledger
	g     *outreach.Gate
	clock *consenttest.Clock
}

func newEnv(t testing.TB) *env {
	t.Helper()
	clock := &consenttest.Clock{}
	l := consenttest.Open(t, "", consent.Config{Now: clock.Now})
	if _, _, err := l.RegisterNotice(ctx, consenttest.MarketingNotice(1, "zh-CN")); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, l: l, clock: clock,
		g: &outreach.Gate{Ledger: l, PublicURL: "https://privacy.example.com/", Key: testKey, Now: clock.Now, Regime: privguard.RegimePIPL}}
}

func (e *env) record(subject privguard.SubjectID, p privguard.Purpose, a consent.Action) {
	e.t.Helper()
	req := consent.Request{Subject: subject, Purpose: p, Action: a, Regime: privguard.RegimePIPL, Channel: consent.ChannelApp, Method: consent.MethodExplicit}
	if a == consent.ActionGrant {
		req.LegalBasis, req.Notice = privguard.BasisConsent, &consent.NoticeRef{ID: "marketing", Version: 1}
	}
	if a == consent.ActionObject || a == consent.ActionRestrict {
		req.Purpose = ""
	}
	if _, _, err := e.l.Append(ctx, req); err != nil {
		e.t.Fatalf("%s %s %s: %v", a, subject, p, err)
	}
}

const (
	sms   privguard.Purpose = "marketing.communications.sms"
	email privguard.Purpose = "marketing.communications.email"
)

var smsTemplate = outreach.Template{Kind: outreach.KindMarketing, Sender: "示例商城", Text: "【示例商城】会员日全场8折。回T退订", ID: "spring-1"}

var emailTemplate = outreach.Template{Kind: outreach.KindMarketing, Sender: "Example Shop", Text: "Spring sale. {{unsubscribe_url}}", ID: "spring-mail"}

func denied(res outreach.Result) map[privguard.SubjectID][]string {
	out := map[privguard.SubjectID][]string{}
	for _, d := range res.Denied {
		out[d.Subject] = d.Reasons
	}
	return out
}

func allowedSubjects(res outreach.Result) []privguard.SubjectID {
	var out []privguard.SubjectID
	for _, a := range res.Allowed {
		out = append(out, a.Subject)
	}
	return out
}

// proves MKT-01
func TestGateChannelConsent(t *testing.T) {
	e := newEnv(t)
	e.record("c-sms", sms, consent.ActionGrant)
	e.record("c-email", email, consent.ActionGrant)
	res, err := e.g.Check(ctx, outreach.Request{Channel: "sms", Template: smsTemplate, Recipients: []privguard.SubjectID{"c-sms", "c-email", "c-unknown"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := allowedSubjects(res); !slices.Equal(got, []privguard.SubjectID{"c-sms"}) {
		t.Fatalf("allowed %v, want c-sms alone (consent to the channel)", got)
	}
	d := denied(res)
	if !slices.Equal(d["c-email"], []string{"consent.missing"}) || !slices.Equal(d["c-unknown"], []string{"consent.missing"}) {
		t.Fatalf("denied %v, want consent.missing for email-only and unknown", d)
	}
}

// proves MKT-04
func TestGateWithdrawalObjectionRestriction(t *testing.T) {
	e := newEnv(t)
	for _, s := range []privguard.SubjectID{"c-ok", "c-withdrew", "c-objected", "c-restricted"} {
		e.record(s, sms, consent.ActionGrant)
	}
	e.record("c-withdrew", sms, consent.ActionWithdraw)
	e.record("c-objected", "", consent.ActionObject)
	e.record("c-restricted", "", consent.ActionRestrict)
	list := []privguard.SubjectID{"c-ok", "c-withdrew", "c-objected", "c-restricted", ""}
	res, err := e.g.Check(ctx, outreach.Request{Channel: "sms", Template: smsTemplate, Recipients: list})
	if err != nil {
		t.Fatal(err)
	}
	if got := allowedSubjects(res); !slices.Equal(got, []privguard.SubjectID{"c-ok"}) {
		t.Fatalf("allowed %v, want c-ok", got)
	}
	d := denied(res)
	for s, want := range map[privguard.SubjectID]string{"c-withdrew": "consent.withdrawn", "c-objected": "objection.direct_marketing",
		"c-restricted": string(privguard.ReasonRestricted), "": outreach.ReasonSubjectInvalid} {
		if !slices.Contains(d[s], want) {
			t.Errorf("%q denied for %v, want %s", s, d[s], want)
		}
	}
	// The service message needs no marketing consent, but a restriction holds it back too.
	svc := outreach.Template{Kind: outreach.KindService, Sender: "示例商城", Text: "【示例商城】您的订单已发货", ID: "ship"}
	res, err = e.g.Check(ctx, outreach.Request{Channel: "sms", Template: svc, Recipients: list[:4]})
	if err != nil {
		t.Fatal(err)
	}
	if got := allowedSubjects(res); !slices.Equal(got, []privguard.SubjectID{"c-ok", "c-withdrew", "c-objected"}) {
		t.Fatalf("service allowed %v, want all but the restricted", got)
	}
	if res.Allowed[0].Unsubscribe != nil {
		t.Fatalf("a service message got an unsubscribe link: %+v", res.Allowed[0].Unsubscribe)
	}
}

func TestGateRefusesFailingTemplate(t *testing.T) {
	e := newEnv(t)
	bad := smsTemplate
	bad.Text = "【示例商城】会员日全场8折"
	_, err := e.g.Check(ctx, outreach.Request{Channel: "sms", Template: bad, Recipients: []privguard.SubjectID{"c-1"}})
	var re *outreach.RuleError
	if !errors.As(err, &re) || re.Rule != outreach.RuleRefusalMissing {
		t.Fatalf("Check = %v, want refusal_missing", err)
	}
	g := *e.g
	g.PublicURL = ""
	if _, err := g.Check(ctx, outreach.Request{Channel: "sms", Template: smsTemplate}); !errors.Is(err, privguard.ErrInvalid) {
		t.Fatalf("Check without a public URL = %v, want ErrInvalid", err)
	}
	g = *e.g
	g.Key = []byte("short")
	if _, err := g.Check(ctx, outreach.Request{Channel: "sms", Template: smsTemplate}); err == nil {
		t.Fatal("Check with a short key = nil")
	}
}

// links checks the unsubscribe values of res and returns each subject's token.
func links(t *testing.T, res outreach.Result) map[privguard.SubjectID]string {
	t.Helper()
	out := map[privguard.SubjectID]string{}
	for _, a := range res.Allowed {
		u := a.Unsubscribe
		if u == nil {
			t.Fatalf("no unsubscribe link for %s", a.Subject)
		}
		tok, ok := strings.CutPrefix(u.URL, "https://privacy.example.com/v1/outreach/unsubscribe/")
		if !ok || tok == "" || u.ListUnsubscribe != "<"+u.URL+">" || u.ListUnsubscribePost != "List-Unsubscribe=One-Click" {
			t.Fatalf("unsubscribe %+v", u)
		}
		out[a.Subject] = tok
	}
	return out
}

func post(h http.Handler, token, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", outreach.UnsubscribePath+token, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func get(h http.Handler, token string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", outreach.UnsubscribePath+token, nil))
	return w
}

func status(t *testing.T, l *consent.Ledger, s privguard.SubjectID, p privguard.Purpose) consent.Status {
	t.Helper()
	st, err := l.Check(ctx, s, p)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// proves MKT-04
func TestOneClickUnsubscribe(t *testing.T) {
	e := newEnv(t)
	for _, s := range []privguard.SubjectID{"c-1", "c-2"} {
		e.record(s, email, consent.ActionGrant)
		e.record(s, sms, consent.ActionGrant)
	}
	res, err := e.g.Check(ctx, outreach.Request{Channel: "email", Template: emailTemplate, Recipients: []privguard.SubjectID{"c-1", "c-2"}})
	if err != nil {
		t.Fatal(err)
	}
	tok := links(t, res)
	h := e.g.UnsubscribeHandler(nil)

	// A mail scanner's GET shows the confirm page and changes nothing.
	if w := get(h, tok["c-1"]); w.Code != 200 || !strings.Contains(w.Body.String(), `name="List-Unsubscribe" value="One-Click"`) {
		t.Fatalf("GET = %d %s", w.Code, w.Body)
	}
	if !status(t, e.l, "c-1", email).Allowed {
		t.Fatal("a GET unsubscribed")
	}
	// A POST without the one-click body does nothing either.
	if w := post(h, tok["c-1"], "x=y"); w.Code != 400 || !status(t, e.l, "c-1", email).Allowed {
		t.Fatalf("POST without List-Unsubscribe=One-Click = %d", w.Code)
	}
	w := post(h, tok["c-1"], url.Values{"List-Unsubscribe": {"One-Click"}}.Encode())
	if w.Code != 200 {
		t.Fatalf("one-click POST = %d %s", w.Code, w.Body)
	}
	if st := status(t, e.l, "c-1", email); st.Allowed || st.Reason != privguard.ReasonConsentWithdrawn {
		t.Fatalf("after the click c-1 email is %+v, want withdrawn", st)
	}
	// Only that subject and that channel.
	if !status(t, e.l, "c-1", sms).Allowed || !status(t, e.l, "c-2", email).Allowed {
		t.Fatal("the click withdrew another channel or another subject")
	}
	// The withdrawal is the subject's, with the channel and template as evidence.
	hist, err := e.l.History(ctx, "c-1")
	if err != nil {
		t.Fatal(err)
	}
	last := hist[len(hist)-1]
	if last.Action != consent.ActionWithdraw || last.Purpose != email || last.ActorType != consent.ActorSubject ||
		last.Evidence.UIScreen != "outreach/unsubscribe/email/spring-mail" {
		t.Fatalf("record %+v", last)
	}
	// The next send leaves c-1 out at once.
	res, err = e.g.Check(ctx, outreach.Request{Channel: "email", Template: emailTemplate, Recipients: []privguard.SubjectID{"c-1", "c-2"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := allowedSubjects(res); !slices.Equal(got, []privguard.SubjectID{"c-2"}) {
		t.Fatalf("allowed after the click %v", got)
	}
}

func TestUnsubscribeTokens(t *testing.T) {
	e := newEnv(t)
	for _, s := range []privguard.SubjectID{"c-1", "c-2"} {
		e.record(s, email, consent.ActionGrant)
	}
	list := []privguard.SubjectID{"c-1", "c-2"}
	res, err := e.g.Check(ctx, outreach.Request{Channel: "email", Template: emailTemplate, Recipients: list})
	if err != nil {
		t.Fatal(err)
	}
	tok := links(t, res)
	again, err := e.g.Check(ctx, outreach.Request{Channel: "email", Template: emailTemplate, Recipients: list})
	if err != nil {
		t.Fatal(err)
	}
	tok2 := links(t, again)
	// Unlinkable: two links of one subject for one message share no prefix beyond chance.
	if tok["c-1"] == tok2["c-1"] || commonPrefix(tok["c-1"], tok2["c-1"]) > 3 || commonPrefix(tok["c-1"], tok["c-2"]) > 3 {
		t.Fatalf("tokens look linkable: %s %s %s", tok["c-1"], tok2["c-1"], tok["c-2"])
	}
	h := e.g.UnsubscribeHandler(nil)
	one := url.Values{"List-Unsubscribe": {"One-Click"}}.Encode()
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	other := &outreach.Gate{Ledger: e.l, PublicURL: "https://x.example", Key: bytes.Repeat([]byte{8}, 32), Now: e.clock.Now}
	otherRes, err := other.Check(ctx, outreach.Request{Channel: "email", Template: emailTemplate, Recipients: list})
	if err != nil {
		t.Fatal(err)
	}
	forged := strings.TrimPrefix(otherRes.Allowed[1].Unsubscribe.URL, "https://x.example/v1/outreach/unsubscribe/")
	// Cross-subject: c-2's token spliced with c-1's nonce.
	spliced := tok["c-1"][:32] + tok["c-2"][32:]
	for name, bad := range map[string]string{
		"tampered start": flip(tok["c-2"], 0), "tampered middle": flip(tok["c-2"], len(tok["c-2"])/2),
		"tampered end": flip(tok["c-2"], len(tok["c-2"])-1), "truncated": tok["c-2"][:len(tok["c-2"])-4],
		"another key": forged, "spliced": spliced, "garbage": "not-a-token", "long": strings.Repeat("A", 4000),
	} {
		if w := post(h, bad, one); w.Code != 400 || !strings.Contains(w.Body.String(), "Invalid link") {
			t.Errorf("%s: POST = %d %s", name, w.Code, w.Body)
		}
		if w := get(h, bad); w.Code != 400 {
			t.Errorf("%s: GET = %d", name, w.Code)
		}
	}
	if !status(t, e.l, "c-1", email).Allowed || !status(t, e.l, "c-2", email).Allowed {
		t.Fatal("a bad token withdrew someone")
	}
	// Replayed: the first click withdraws; after a new grant, the same link changes nothing.
	if w := post(h, tok["c-1"], one); w.Code != 200 {
		t.Fatalf("first POST = %d", w.Code)
	}
	e.record("c-1", email, consent.ActionGrant)
	if w := post(h, tok["c-1"], one); w.Code != 400 || !strings.Contains(w.Body.String(), "Invalid link") {
		t.Fatalf("replayed POST = %d %s", w.Code, w.Body)
	}
	if !status(t, e.l, "c-1", email).Allowed {
		t.Fatal("a replayed link withdrew the new consent")
	}
	// Expired: a year and a day later the link of the second send no longer works.
	e.clock.Advance(366 * 24 * time.Hour)
	if w := post(h, tok2["c-2"], one); w.Code != 400 || !status(t, e.l, "c-2", email).Allowed {
		t.Fatalf("expired POST = %d", w.Code)
	}
}

func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}
