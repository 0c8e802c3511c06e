package adminapi

import (
	"errors"
	"net/http"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/audit"
)

// getDecisionStats serves counts of the decision log: GET /v1/decisions/stats?from=&to=
// &purpose=&reason=&route=&decision=allow|deny. The log is read whole, one count at a
// time; a subject is never a filter here (an id in a URL reaches logs).
func (s *Server) getDecisionStats(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := knownQuery(q, "from", "to", "purpose", "reason", "route", "decision"); err != nil {
		return err
	}
	var f audit.Filter
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
	for _, p := range []struct {
		name string
		max  int
	}{{"purpose", 100}, {"reason", 100}, {"route", 300}} {
		if v := q.Get(p.name); len(v) > p.max || !printable(v) {
			bad := privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Invalid query", p.name+": too long or not printable")
			bad.Field = p.name
			return bad
		}
	}
	f.Purpose, f.Reason, f.Route = privguard.Purpose(q.Get("purpose")), privguard.Reason(q.Get("reason")), q.Get("route")
	switch d := q.Get("decision"); d {
	case "", "allow", "deny":
		f.Effect = privguard.Effect(d)
	default:
		bad := privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Invalid query", "decision: want allow or deny")
		bad.Field = "decision"
		return bad
	}
	select {
	case s.decisionScan <- struct{}{}:
		defer func() { <-s.decisionScan }()
	case <-r.Context().Done():
		return r.Context().Err()
	}
	st, err := audit.Count(r.Context(), s.decisionLog, f, 0)
	var br *audit.BreakError
	if errors.As(err, &br) {
		return privguard.NewProblem(http.StatusInternalServerError, TypeChainBroken, "The decision log's chain is broken", br.Error())
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}
