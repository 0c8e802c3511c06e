package middleware_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
	"github.com/privguard/privguard/middleware"
	"github.com/privguard/privguard/policy"
)

// assessedRoutes are one route per kind of high-impact processing, and one that names its
// assessment.
var assessedRoutes = []middleware.Route{
	// marketing.profiling decides automatically in gateTaxonomy.
	{Match: "GET /api/scores/{id}", Purpose: "marketing.profiling", Subject: middleware.Locator{Path: "id"},
		Fields: map[string]privguard.DataCategory{"score": "user.derived.rfm_score", "orders": "user.behavior.purchase_history"}},
	// Sensitive data: health data for ads (gateTaxonomy lets the purpose see it).
	{Match: "GET /api/ads/{id}", Purpose: "marketing.advertising.first_party", Subject: middleware.Locator{Path: "id"},
		Fields: map[string]privguard.DataCategory{"segments": "user.derived.segments", "inferred": "user.health.conditions"}},
	// Provision to a processor in China (PIPL: entrusting needs an assessment).
	{Match: "POST /api/share/{id}", Purpose: "third_party.sharing", Recipient: "acme-sms", Subject: middleware.Locator{Path: "id"}},
	// Provision abroad (PIPL Art. 55(4)).
	{Match: "POST /api/share-abroad/{id}", Purpose: "third_party.sharing", Recipient: "us-mailer", Subject: middleware.Locator{Path: "id"}},
	// The route names the assessment it rests on.
	{Match: "GET /api/pinned/{id}", Purpose: "marketing.profiling", PIA: "pia-narrow", Subject: middleware.Locator{Path: "id"},
		Fields: map[string]privguard.DataCategory{"score": "user.derived.rfm_score"}},
}

// routeDecisions keeps what the middleware recorded, for the assessment each decision named.
type routeDecisions struct {
	mu      sync.Mutex
	byRoute map[string]privguard.Decision
}

func (d *routeDecisions) Record(route string, _ *privguard.Input, dec *privguard.Decision) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.byRoute[route] = *dec
}

func (d *routeDecisions) of(route string) privguard.Decision {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.byRoute[route]
}

func gateTaxonomy(t *testing.T) *privguard.Taxonomy {
	t.Helper()
	infos := privguard.DefaultPurposes()
	for i := range infos {
		switch infos[i].Purpose {
		case "marketing.profiling":
			infos[i].AutomatedDecision = true
		case "marketing.advertising.first_party":
			infos[i].Categories = append(infos[i].Categories, "user.health")
		}
	}
	tax, err := privguard.NewTaxonomy(infos)
	if err != nil {
		t.Fatal(err)
	}
	return tax
}

// proves AUD-04 (through the middleware): each kind of high-impact route is refused (403,
// the reason in the problem) without an impact assessment, served with a current one (the
// decision naming it), refused once its review date passes and when it does not cover the
// route's categories or recipient; a rejected assessment never covers, and a route that
// names an assessment rests on that one only.
func TestMiddlewareImpactAssessmentGate(t *testing.T) {
	tax := gateTaxonomy(t)
	ledger := consenttest.Open(t, "", consent.Config{Taxonomy: tax})
	notice := consenttest.MarketingNotice(1, "zh-CN")
	notice.Purposes = append(notice.Purposes, "sensitive.processing")
	if _, _, err := ledger.RegisterNotice(ctx, notice); err != nil {
		t.Fatal(err)
	}
	grant := func(p privguard.Purpose, separate bool, recipient string) {
		t.Helper()
		req := consent.Request{Subject: "c-1", Purpose: p, Action: consent.ActionGrant, Regime: privguard.RegimePIPL,
			Notice: &consent.NoticeRef{ID: "marketing", Version: 1}, Channel: consent.ChannelApp, Method: consent.MethodExplicit, Separate: separate}
		if recipient != "" {
			req.Recipient = &consent.Recipient{Name: recipient, Contact: "dpo@" + recipient + ".example", Purpose: "SMS delivery",
				Method: "API", Categories: []privguard.DataCategory{"user.contact.phone_number"}}
		}
		if _, _, err := ledger.Append(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	grant("marketing.profiling", false, "")
	grant("marketing.advertising.first_party", false, "")
	grant("sensitive.processing", true, "")
	grant("third_party.sharing", true, "acme-sms")
	grant("third_party.sharing", true, "us-mailer")

	day := func(s string) time.Time {
		d, err := time.Parse(time.DateOnly, s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	full := policy.Assessment{ID: "pia-2026", Conclusion: "approved", Date: day("2026-01-01"), Review: day("2027-01-01"),
		Purposes: []privguard.Purpose{"marketing", "third_party.sharing"}, Categories: []privguard.DataCategory{"user.derived", "user.behavior", "user.health"},
		Recipients: []string{"acme-sms", "us-mailer"}}
	rejected := full
	rejected.ID, rejected.Conclusion = "pia-rejected", "rejected"
	narrow := full
	narrow.ID, narrow.Categories, narrow.Recipients = "pia-narrow", []privguard.DataCategory{"user.behavior"}, []string{"acme-sms"}
	recipients := []policy.Recipient{{Name: "acme-sms", Country: "CN", Role: "processor"}, {Name: "us-mailer", Country: "US", Role: "processor"}}
	var mu sync.Mutex
	now := day("2026-06-01")
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	setDay := func(s string) { mu.Lock(); defer mu.Unlock(); now = day(s).Add(10 * time.Hour) }

	type stack struct {
		handler http.Handler
		rec     *routeDecisions
	}
	stacks := map[string]stack{}
	for name, list := range map[string][]policy.Assessment{"none": nil, "full": {full, narrow}, "rejected": {rejected}, "narrow": {narrow}} {
		engine, err := policy.New(ctx, policy.Config{Taxonomy: tax, Assessments: list, Recipients: recipients, Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		rec := &routeDecisions{byRoute: map[string]privguard.Decision{}}
		mw, err := middleware.New(middleware.Config{Routes: assessedRoutes, Decider: engine, Facts: ledger, Regime: privguard.RegimePIPL, Recorder: rec})
		if err != nil {
			t.Fatal(err)
		}
		stacks[name] = stack{mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"score": 7, "orders": ["o-1"], "segments": ["vip"], "inferred": "diabetes"}`))
		})), rec}
	}
	requests := map[string]struct{ method, path, route string }{
		"automated_decision": {"GET", "/api/scores/c-1", "GET /api/scores/{id}"},
		"sensitive":          {"GET", "/api/ads/c-1", "GET /api/ads/{id}"},
		"provision":          {"POST", "/api/share/c-1", "POST /api/share/{id}"},
		"cross_border":       {"POST", "/api/share-abroad/c-1", "POST /api/share-abroad/{id}"},
		"pinned":             {"GET", "/api/pinned/c-1", "GET /api/pinned/{id}"},
	}
	cases := []struct {
		stack, day, request string
		want                privguard.Reason // "" for served
		used                string
	}{
		{"none", "2026-06-01", "automated_decision", privguard.ReasonPIARequired, ""},
		{"none", "2026-06-01", "sensitive", privguard.ReasonPIARequired, ""},
		{"none", "2026-06-01", "provision", privguard.ReasonPIARequired, ""},
		{"none", "2026-06-01", "cross_border", privguard.ReasonPIARequired, ""},
		{"full", "2026-06-01", "automated_decision", "", "pia-2026"},
		{"full", "2026-06-01", "sensitive", "", "pia-2026"},
		{"full", "2026-06-01", "provision", "", "pia-2026"},
		{"full", "2026-06-01", "cross_border", "", "pia-2026"},
		{"full", "2026-06-01", "pinned", privguard.ReasonPIANotCovering, ""}, // pia-narrow leaves out user.derived
		{"full", "2027-01-01", "automated_decision", privguard.ReasonPIAExpired, ""},
		{"full", "2027-01-01", "provision", privguard.ReasonPIAExpired, ""},
		{"rejected", "2026-06-01", "automated_decision", privguard.ReasonPIARequired, ""},
		{"rejected", "2026-06-01", "cross_border", privguard.ReasonPIARequired, ""},
		{"narrow", "2026-06-01", "automated_decision", privguard.ReasonPIANotCovering, ""}, // a category
		{"narrow", "2026-06-01", "sensitive", privguard.ReasonPIANotCovering, ""},
		{"narrow", "2026-06-01", "cross_border", privguard.ReasonPIANotCovering, ""}, // the recipient
	}
	for _, tc := range cases {
		setDay(tc.day)
		s := stacks[tc.stack]
		req := requests[tc.request]
		w := httptest.NewRecorder()
		s.handler.ServeHTTP(w, httptest.NewRequest(req.method, req.path, nil))
		d := s.rec.of(req.route)
		if tc.want == "" {
			if w.Code != http.StatusOK || d.Assessment != tc.used {
				t.Errorf("%s on %s, %s: %d (assessment %q) %s; want 200 on %s", tc.stack, tc.day, tc.request, w.Code, d.Assessment, w.Body, tc.used)
			}
			continue
		}
		if w.Code != http.StatusForbidden {
			t.Errorf("%s on %s, %s: %d %s; want 403 %s", tc.stack, tc.day, tc.request, w.Code, w.Body, tc.want)
			continue
		}
		if p := problem(t, w); !slices.Equal(p.Reasons, []privguard.Reason{tc.want}) {
			t.Errorf("%s on %s, %s: reasons %v; want [%s]", tc.stack, tc.day, tc.request, p.Reasons, tc.want)
		}
	}
}
