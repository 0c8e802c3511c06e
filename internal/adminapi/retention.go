package adminapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/dsar"
)

// RetentionRunner plans and starts retention runs (the sweeper; see package retention) and
// reports on them.
type RetentionRunner interface {
	// Run plans a run now. A dry run changes nothing and returns its report at once; a real
	// run is started as a durable retention request whose id is returned with the report so
	// far. While a run is open, Run returns that run's id with dsar.ErrRetentionRunning.
	Run(ctx context.Context, dryRun bool) (id string, report any, err error)
	// Report returns the report of run id as it stands (privguard.ErrNotFound if there is
	// no such run).
	Report(ctx context.Context, id string) (any, error)
}

// retentionRunBody is POST /v1/retention/runs's body: {"dry_run": false} starts a real
// run, which changes the stores, so it must be said.
type retentionRunBody struct {
	DryRun *bool `json:"dry_run" validate:"required"`
}

// MaxRetentionBody bounds POST /v1/retention/runs's body.
const MaxRetentionBody = 1 << 10

// postRetentionRun answers POST /v1/retention/runs: 200 with the report of a dry run, 202
// with the started run (Location: its report), 409 while another run is open.
func (s *Server) postRetentionRun(w http.ResponseWriter, r *http.Request) error {
	var b retentionRunBody
	if err := s.decode(w, r, MaxRetentionBody, &b); err != nil {
		return err
	}
	id, rep, err := s.retention.Run(r.Context(), *b.DryRun)
	if errors.Is(err, dsar.ErrRetentionRunning) {
		w.Header().Set("Location", "/v1/retention/runs/"+id)
		return privguard.NewProblem(http.StatusConflict, TypeConflict, "A retention run is open",
			"run "+id+" has not finished; follow it at /v1/retention/runs/"+id)
	}
	if err != nil {
		return err
	}
	if *b.DryRun {
		writeJSON(w, http.StatusOK, rep)
		return nil
	}
	w.Header().Set("Location", "/v1/retention/runs/"+id)
	writeJSON(w, http.StatusAccepted, rep)
	return nil
}

// getRetentionRun answers GET /v1/retention/runs/{id}: the run's report as it stands.
func (s *Server) getRetentionRun(w http.ResponseWriter, r *http.Request) error {
	if err := knownQuery(r.URL.Query()); err != nil {
		return err
	}
	rep, err := s.retention.Report(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// subjectRequest serves h only for data-subject requests: a retention run (which lists the
// subjects it erases) is not one, and is read and run only through /v1/retention/runs and
// its roles — an app may follow its own requests, not the controller's sweeps.
func (s *Server) subjectRequest(h handler) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if req, err := s.requests.Get(r.Context(), r.PathValue("id")); err == nil && req.Type == dsar.TypeRetention {
			return privguard.NewProblem(http.StatusNotFound, TypeNotFound, "Not found", "a retention run is at /v1/retention/runs/"+req.ID)
		}
		return h(w, r)
	}
}
