package adminapi

import (
	"errors"
	"net/http"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/internal/callers"
)

// confirmBody is POST /v1/callers/{name}/deletion-confirmation: the processor's
// acknowledgment that it deleted (or returned) the data.
type confirmBody struct {
	Reference string `json:"reference" validate:"required,max=500"`
}

// getCallers lists the sidecar's callers, each terminated one with its deletion
// confirmation (awaited until recorded): GET /v1/callers.
func (s *Server) getCallers(w http.ResponseWriter, r *http.Request) error {
	if err := knownQuery(r.URL.Query()); err != nil {
		return err
	}
	list, err := s.callers.List(r.Context())
	if err != nil {
		return chainBroken(err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"callers": list})
	return nil
}

// terminateCaller ends a processor's contract: POST /v1/callers/{name}/terminate.
func (s *Server) terminateCaller(w http.ResponseWriter, r *http.Request) error {
	p, _ := PrincipalFromContext(r.Context())
	st, err := s.callers.Terminate(r.Context(), r.PathValue("name"), p.Name)
	return s.callerChanged(w, st, err)
}

// confirmDeletion records a terminated processor's deletion confirmation: POST
// /v1/callers/{name}/deletion-confirmation {reference}.
func (s *Server) confirmDeletion(w http.ResponseWriter, r *http.Request) error {
	var b confirmBody
	if err := s.decode(w, r, MaxConsentBody, &b); err != nil {
		return err
	}
	p, _ := PrincipalFromContext(r.Context())
	st, err := s.callers.Confirm(r.Context(), r.PathValue("name"), p.Name, b.Reference)
	return s.callerChanged(w, st, err)
}

func (s *Server) callerChanged(w http.ResponseWriter, st callers.Status, err error) error {
	switch {
	case errors.Is(err, callers.ErrNotFound):
		return privguard.NewProblem(http.StatusNotFound, TypeNotFound, "Not found", "no such caller")
	case errors.Is(err, callers.ErrTerminated):
		return privguard.NewProblem(http.StatusConflict, TypeConflict, "Terminated already", "the caller was terminated already")
	case errors.Is(err, callers.ErrNotAwaiting):
		return privguard.NewProblem(http.StatusConflict, TypeConflict, "No confirmation awaited",
			"the caller is not terminated, or its deletion was confirmed already")
	case err != nil:
		return chainBroken(err)
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}
