package adminapi

import (
	"context"
	"io"
	"net/http"
	"strings"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/internal/authz"
	"github.com/privguard/privguard/internal/trail"
)

// probes are never trailed: they are polled every few seconds and change nothing.
var probes = map[string]bool{"GET /healthz": true, "GET /readyz": true, "GET /metrics": true}

// trailed writes the call to the admin trail once it is answered: who (principal and
// roles), what (the route and its path values, a subject as its keyed hash), how it ended.
// An app's routine calls (its subjects' choices, the vault, requests for its users) are
// left out — the ledger and the request register hold them — unless refused; every call by
// any other role is in, reads included (an auditor's reading is an act too).
func (s *Server) trailed(pattern string, next http.Handler) http.Handler {
	if s.trail == nil || probes[pattern] {
		return next
	}
	_, path, _ := strings.Cut(pattern, " ")
	var names []string
	for _, seg := range strings.Split(path, "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			names = append(names, strings.TrimSuffix(strings.Trim(seg, "{}"), "..."))
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		p, _ := PrincipalFromContext(r.Context())
		if onlyApp(p.Roles) && rec.status != http.StatusForbidden {
			return
		}
		s.trailAct(r.Context(), p, pattern, s.targets(r, names), rec.status)
	})
}

// trailedLink is trailed for a route whose credential is a one-time link (the access
// package's download): the act is named for the link's holder.
func (s *Server) trailedLink(pattern string, next http.Handler) http.Handler {
	if s.trail == nil {
		return next
	}
	inner := s.trailed(pattern, next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithValue(r.Context(), principalKey{}, Principal{Name: "download-link", Roles: []string{"subject-link"}})
		inner.ServeHTTP(w, r.WithContext(ctx))
	})
}

func (s *Server) targets(r *http.Request, names []string) map[string]string {
	if len(names) == 0 {
		return nil
	}
	t := make(map[string]string, len(names))
	for _, n := range names {
		v := r.PathValue(n)
		if n == "subject" {
			v = s.trail.Subject(v)
		} else if len(v) > 128 {
			v = v[:128]
		}
		t[n] = v
	}
	return t
}

func (s *Server) trailAct(ctx context.Context, p Principal, act string, target map[string]string, status int) {
	outcome := "ok"
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		outcome = "refused"
	case status >= 500:
		outcome = "failed"
	case status >= 400:
		outcome = "invalid"
	}
	// The answer is sent; the trail is written even if the client has gone.
	_ = s.trail.Record(context.WithoutCancel(ctx), trail.Entry{Principal: p.Name, Roles: p.Roles, Via: "api", Act: act,
		Target: target, Status: status, Outcome: outcome})
}

// onlyApp reports a principal with no role but app.
func onlyApp(roles []string) bool {
	for _, r := range roles {
		if r != authz.DefaultRole {
			return false
		}
	}
	return true
}

// getTrail serves the admin trail: GET /v1/trail?from=&to=&principal=&act=&after=&limit=
// &format=json|csv.
func (s *Server) getTrail(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	rq, err := parseRegisterQuery(q, "principal", "act")
	if err != nil {
		return err
	}
	f := trail.Filter{From: rq.from, To: rq.to, After: rq.after, Principal: q.Get("principal"), Act: q.Get("act")}
	if len(f.Principal) > 64 || len(f.Act) > 200 {
		return privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Invalid query", "principal or act is too long")
	}
	store := s.trail.Store()
	return serveRegister(s, w, r, rq, store, trail.Log, "privguard-admin-trail.csv",
		func(out io.Writer) error { return trail.WriteCSV(r.Context(), out, store, f) },
		func(fn func(trail.Stored) error) error { return trail.Entries(r.Context(), store, f, fn) },
		func(e trail.Stored) uint64 { return e.Seq })
}
