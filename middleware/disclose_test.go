package middleware_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/middleware"
)

// allowAllBut allows every subject but those it names.
type allowAllBut map[privguard.SubjectID]bool

func (a allowAllBut) Facts(_ context.Context, in *privguard.Input) error {
	in.Consent.State = string(in.Subject) // lets Decide see the subject
	return nil
}

func (a allowAllBut) Decide(_ context.Context, in privguard.Input) (privguard.Decision, error) {
	if a[privguard.SubjectID(in.Consent.State)] {
		return privguard.Decision{ID: "deny-1", Effect: privguard.Deny, Reasons: []privguard.Reason{privguard.ReasonConsentMissing}}, nil
	}
	return privguard.Decision{ID: "allow-1", Effect: privguard.Allow}, nil
}

type stubDiscloser struct {
	reason privguard.Reason
	err    error
	seen   []privguard.Provision
}

func (s *stubDiscloser) Disclose(_ context.Context, p privguard.Provision) (privguard.Reason, error) {
	s.seen = append(s.seen, p)
	return s.reason, s.err
}

// Every allowed request on a route with a recipient goes through the egress gate first:
// refused or unlogged, the handler never sees it.
// proves AUD-07
func TestProvisionsPassTheGate(t *testing.T) {
	d := &stubDiscloser{}
	rec := &decisions{}
	facts := allowAllBut{"s2": true}
	mw, err := middleware.New(middleware.Config{Decider: facts, Facts: facts, Regime: privguard.RegimePIPL, Discloser: d, Recorder: rec,
		Routes: []middleware.Route{
			{Match: "POST /share/{id}", Purpose: "marketing.advertising", Recipient: "sg-crm", Subject: middleware.Locator{Path: "id"}},
			{Match: "POST /audience", Purpose: "marketing.advertising", Recipient: "sg-crm", Subjects: middleware.Locator{JSON: "ids"}},
			{Match: "GET /own/{id}", Purpose: "marketing.advertising", Subject: middleware.Locator{Path: "id"}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = append(got, r.URL.Path) }))
	send := func(method, path, body string) *httptest.ResponseRecorder {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(method, path, rd))
		return w
	}
	do := func(method, path, body string) int { return send(method, path, body).Code }

	if code := do("POST", "/share/s1", ""); code != 200 || len(d.seen) != 1 || !slices.Equal(d.seen[0].Subjects, []privguard.SubjectID{"s1"}) ||
		d.seen[0].Recipient != "sg-crm" || d.seen[0].Decision != "allow-1" {
		t.Fatalf("allowed provision: %d, %+v", code, d.seen)
	}
	// The batch is one provision of the subjects allowed.
	if code := do("POST", "/audience", `{"ids":["s1","s2","s3"]}`); code != 200 || len(d.seen) != 2 ||
		!slices.Equal(d.seen[1].Subjects, []privguard.SubjectID{"s1", "s3"}) {
		t.Fatalf("batch provision: %d, %+v", code, d.seen)
	}
	// A denied request is no provision; a route without a recipient is none either.
	if code := do("POST", "/share/s2", ""); code != 403 || len(d.seen) != 2 {
		t.Fatalf("denied request: %d, %d provisions", code, len(d.seen))
	}
	if code := do("GET", "/own/s1", ""); code != 200 || len(d.seen) != 2 {
		t.Fatalf("route without a recipient: %d, %d provisions", code, len(d.seen))
	}
	if want := "/share/s1 /audience /own/s1"; strings.Join(got, " ") != want {
		t.Fatalf("handler saw %v", got)
	}

	// Refused by the gate: 403 with its reason, recorded as a deny.
	d.reason = privguard.ReasonTransferThreshold
	got = nil
	w := send("POST", "/share/s1", "")
	if p := problem(t, w); w.Code != 403 || !slices.Equal(p.Reasons, []privguard.Reason{privguard.ReasonTransferThreshold}) {
		t.Fatalf("refused provision: %d %+v", w.Code, p)
	}
	if last := rec.last(); last.Allowed() || last.Reasons[0] != privguard.ReasonTransferThreshold {
		t.Fatalf("recorded %+v", last)
	}
	if code := do("POST", "/audience", `{"ids":["s1","s3"]}`); code != 403 {
		t.Fatalf("refused batch: %d", code)
	}
	// Not logged: 503, nothing provided.
	d.reason, d.err = "", errors.New("disk full")
	w = send("POST", "/share/s1", "")
	if p := problem(t, w); w.Code != 503 || !slices.Equal(p.Reasons, []privguard.Reason{privguard.ReasonDisclosureUnavailable}) {
		t.Fatalf("unlogged provision: %d %+v", w.Code, p)
	}
	if code := do("POST", "/audience", `{"ids":["s1","s3"]}`); code != 503 {
		t.Fatalf("unlogged batch: %d", code)
	}
	if len(got) != 0 {
		t.Fatalf("the handler saw refused provisions: %v", got)
	}
}
