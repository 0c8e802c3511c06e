package adminapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/privguard/privguard/pia"
)

// AssessmentRegister reads the register of impact assessments. pia.Registry implements it.
type AssessmentRegister interface {
	Register(ctx context.Context) (*pia.Register, error)
}

// getAssessments answers GET /v1/assessments: the register of impact assessments, every
// version the configuration declares or the journal recorded with its status today, and
// the state of the journal's chain. ?status=expired,due_for_review keeps those statuses;
// ?format=csv answers CSV (cells defused). Auditors and DPOs read it; apps do not.
func (s *Server) getAssessments(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := onceQuery(q); err != nil {
		return err
	}
	for k := range q {
		if k != "status" && k != "format" {
			return queryProblem(k, "unknown parameter; the register takes status and format")
		}
	}
	var statuses []pia.Status
	for _, v := range strings.Split(q.Get("status"), ",") {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		st, err := pia.ParseStatus(v)
		if err != nil {
			return queryProblem("status", strings.TrimPrefix(err.Error(), "pia: "))
		}
		statuses = append(statuses, st)
	}
	format := q.Get("format")
	if format != "" && format != "json" && format != "csv" {
		return queryProblem("format", "want json or csv")
	}
	reg, err := s.assessments.Register(r.Context())
	if err != nil {
		return err
	}
	reg.Filter(statuses...)
	if format == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="privguard-assessments.csv"`)
		if !reg.Log.Verified {
			// The CSV has no room for it: say so in a header the DPO's tools can read.
			w.Header().Set("X-Privguard-Register-Break", sanitizeHeader(reg.Log.Break))
		}
		w.WriteHeader(http.StatusOK)
		return pia.WriteCSV(w, reg)
	}
	writeJSON(w, http.StatusOK, reg)
	return nil
}

// sanitizeHeader keeps s to what a header value may hold.
func sanitizeHeader(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r >= 0x7f {
			return '?'
		}
		return r
	}, s)
}
