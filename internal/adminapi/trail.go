package adminapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/internal/authz"
	"github.com/privguard/privguard/internal/trail"
	"github.com/privguard/privguard/journal"
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
	if err := knownQuery(q, "from", "to", "principal", "act", "after", "limit", "format"); err != nil {
		return err
	}
	var f trail.Filter
	var err error
	if f.From, err = queryTime(q, "from"); err != nil {
		return err
	}
	if f.To, err = queryTime(q, "to"); err != nil {
		return err
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Invalid query", "from must be before to")
	}
	f.Principal, f.Act = q.Get("principal"), q.Get("act")
	if len(f.Principal) > 64 || len(f.Act) > 200 {
		return privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Invalid query", "principal or act is too long")
	}
	if a := q.Get("after"); a != "" {
		if f.After, err = strconv.ParseUint(a, 10, 63); err != nil {
			return privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Invalid query", "after: want an entry's seq")
		}
	}
	limit := 100
	if l := q.Get("limit"); l != "" {
		if limit, err = strconv.Atoi(l); err != nil || limit < 1 || limit > 1000 {
			return privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Invalid query", "limit: want 1 to 1000")
		}
	}
	store := s.trail.Store()
	switch q.Get("format") {
	case "", "json":
	case "csv":
		if _, err := journal.Verify(r.Context(), store, trail.Log); err != nil {
			return chainBroken(err)
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="privguard-admin-trail.csv"`)
		w.WriteHeader(http.StatusOK)
		if err := trail.WriteCSV(r.Context(), w, store, f); err != nil {
			s.log.Error("privguard: admin trail cut short", "err", err)
		}
		return nil
	default:
		return privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Invalid query", "format: want json or csv")
	}
	page := make([]trail.Stored, 0, min(limit, 100))
	var next uint64
	err = trail.Entries(r.Context(), store, f, func(e trail.Stored) error {
		if len(page) == limit {
			next = page[len(page)-1].Seq
			return errPageFull
		}
		page = append(page, e)
		return nil
	})
	if err != nil && err != errPageFull {
		return chainBroken(err)
	}
	out := map[string]any{"entries": page}
	if next != 0 {
		out["next"] = strconv.FormatUint(next, 10)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
