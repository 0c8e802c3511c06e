package adminapi

import (
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/incident"
)

// MaxIncidentBody bounds an incident's report or event (room for incident.MaxSubjects
// subject ids).
const MaxIncidentBody = 1 << 20

// Problem types of the incident register.
const (
	// TypeNoticeIncomplete: a notice would lack an element the law requires (422); errors
	// name each element.
	TypeNoticeIncomplete = "notice-incomplete"
	// TypeIncidentIncomplete: the incident cannot be closed while it lacks facts, cause,
	// effects, remedial actions, categories or its assessment (409); errors name each.
	TypeIncidentIncomplete = "incident-incomplete"
)

// postIncident records an incident: POST /v1/incidents (201).
func (s *Server) postIncident(w http.ResponseWriter, r *http.Request) error {
	var rep incident.Report
	if err := s.decode(w, r, MaxIncidentBody, &rep); err != nil {
		return err
	}
	p, _ := PrincipalFromContext(r.Context())
	v, err := s.incidents.Record(r.Context(), p.Name, rep)
	if err != nil {
		return incidentProblem(err)
	}
	w.Header().Set("Location", "/v1/incidents/"+v.ID)
	writeJSON(w, http.StatusCreated, v)
	return nil
}

// postIncidentEvent applies an event to an incident: POST /v1/incidents/{id}/events.
func (s *Server) postIncidentEvent(w http.ResponseWriter, r *http.Request) error {
	var ch incident.Change
	if err := s.decode(w, r, MaxIncidentBody, &ch); err != nil {
		return err
	}
	p, _ := PrincipalFromContext(r.Context())
	v, err := s.incidents.Apply(r.Context(), r.PathValue("id"), p.Name, ch)
	if err != nil {
		return incidentProblem(err)
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// getIncident answers GET /v1/incidents/{id}: the incident, its clocks now and its
// notification tasks counted.
func (s *Server) getIncident(w http.ResponseWriter, r *http.Request) error {
	if err := knownQuery(r.URL.Query()); err != nil {
		return err
	}
	v, err := s.incidents.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return chainBroken(err)
	}
	tasks, err := s.incidents.Tasks(r.Context(), v.ID)
	if err != nil {
		return chainBroken(err)
	}
	writeJSON(w, http.StatusOK, struct {
		*incident.View
		Tasks incident.TaskCounts `json:"tasks"`
	}{v, tasks})
	return nil
}

// getIncidentNotice answers GET /v1/incidents/{id}/notices/{kind}: the authority or
// subject notice as it would be sent now, in every language (422 notice-incomplete naming
// what is missing), for the DPO to read before notifying.
func (s *Server) getIncidentNotice(w http.ResponseWriter, r *http.Request) error {
	if err := knownQuery(r.URL.Query()); err != nil {
		return err
	}
	n, err := s.incidents.Notice(r.Context(), r.PathValue("id"), r.PathValue("kind"))
	if err != nil {
		var fe *incident.FieldError
		if errors.As(err, &fe) {
			return privguard.NewProblem(http.StatusNotFound, TypeNotFound, "Not found", "no such notice: want authority or subject")
		}
		return incidentProblem(err)
	}
	writeJSON(w, http.StatusOK, n)
	return nil
}

// getIncidents serves the register: GET /v1/incidents?from=&to= (aware_at) &status=open|closed
// &overdue=true&after=SEQ&limit=N&format=json|csv. Every incident is in it, notified or not.
func (s *Server) getIncidents(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	rq, err := parseRegisterQuery(q, "status", "overdue")
	if err != nil {
		return err
	}
	f := incident.Filter{From: rq.from, To: rq.to, After: rq.after}
	switch st := q.Get("status"); st {
	case "", incident.StatusOpen, incident.StatusClosed:
		f.Status = st
	default:
		return badQuery("status", "want open or closed")
	}
	switch q.Get("overdue") {
	case "", "false":
	case "true":
		f.Overdue = true
	default:
		return badQuery("overdue", "want true or false")
	}
	return serveRegister(s, w, r, rq, s.incidents.Store(), incident.Log, "privguard-incidents.csv",
		func(out io.Writer) error { return s.incidents.WriteCSV(r.Context(), out, f) },
		func(fn func(incident.View) error) error {
			return s.incidents.List(r.Context(), f, func(v incident.View) error {
				// A page counts the subjects; their pseudonyms are in GET /v1/incidents/{id}.
				in := *v.Incident
				in.Subjects = nil
				v.Incident = &in
				return fn(v)
			})
		},
		func(v incident.View) uint64 { return v.Seq })
}

// badQuery is the 400 for a query parameter's value.
func badQuery(field, detail string) *privguard.Problem {
	p := privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Invalid query", field+": "+detail)
	p.Field = field
	return p
}

// incidentProblem maps the register's refusals to problems; other errors pass on.
func incidentProblem(err error) error {
	var fe *incident.FieldError
	var ne *incident.NoticeError
	var ge *incident.GapsError
	switch {
	case errors.As(err, &fe):
		// Bad input: the field and the rule, never the value (it may be a subject's id).
		p := privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Invalid incident", fe.Field+": "+fe.Detail)
		p.Field, p.Errors = fe.Field, []privguard.FieldError{{Field: fe.Field, Rule: "incident", Detail: fe.Detail}}
		return p
	case errors.As(err, &ne):
		p := privguard.NewProblem(http.StatusUnprocessableEntity, TypeNoticeIncomplete, "The notice would be incomplete",
			"the "+ne.Kind+" notice lacks "+strings.Join(ne.Missing, ", ")+": record them first")
		for _, m := range ne.Missing {
			p.Errors = append(p.Errors, privguard.FieldError{Field: m, Rule: "required", Detail: "required in the " + ne.Kind + " notice"})
		}
		return p
	case errors.As(err, &ge):
		p := privguard.NewProblem(http.StatusConflict, TypeIncidentIncomplete, "The incident cannot be closed",
			"the register lacks "+strings.Join(ge.Gaps, ", "))
		for _, g := range ge.Gaps {
			p.Errors = append(p.Errors, privguard.FieldError{Field: g, Rule: "required"})
		}
		return p
	case errors.Is(err, incident.ErrClosed):
		return privguard.NewProblem(http.StatusConflict, TypeConflict, "The incident is closed", "")
	}
	return chainBroken(err)
}
