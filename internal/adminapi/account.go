package adminapi

import (
	"net/http"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/internal/authz"
)

// accountBody is POST /v1/subjects/{subject}/account.
type accountBody struct {
	Event string `json:"event" validate:"required,oneof=closed service_ended"`
	// At is when the account closed or the service ended, if earlier than now.
	At *time.Time `json:"at"`
}

// accountRoute registers POST /v1/subjects/{subject}/account: the closure of a subject's
// account, or the end of the service, recorded in the ledger (close_account, end_service)
// as the time retention rules "from: account_closed" run from. It is the controller's fact
// about the subject, as erase and lift_restriction are: the route is a dpo's (and any role's
// the policy grants it), consent:controller-facts allows it too.
func (s *Server) accountRoute() {
	const pattern = "POST /v1/subjects/{subject}/account"
	s.authed = append(s.authed, pattern)
	s.mux.Handle(pattern, s.logRequests(pattern, s.authenticate(pattern,
		s.trailed(pattern, s.authorizeOr(pattern, authz.RecordFacts, s.wrap(s.postAccount))))))
	const path = "/v1/subjects/{subject}/account"
	s.mux.Handle(path, s.logRequests(path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		privguard.NewProblem(http.StatusMethodNotAllowed, TypeMethodNotAllowed, "Method not allowed", "").Write(w)
	})))
}

func (s *Server) postAccount(w http.ResponseWriter, r *http.Request) error {
	subject, err := s.subject(r)
	if err != nil {
		return err
	}
	var b accountBody
	if err := s.decode(w, r, MaxConsentBody, &b); err != nil {
		return err
	}
	principal, _ := PrincipalFromContext(r.Context())
	req := consent.Request{Subject: subject, Action: consent.ActionCloseAccount, Actor: "token:" + principal.Name,
		ActorType: consent.ActorOperator}
	if b.Event == "service_ended" {
		req.Action = consent.ActionEndService
	}
	if b.At != nil {
		if b.At.IsZero() {
			p := privguard.NewProblem(http.StatusUnprocessableEntity, TypeValidation, "The request breaks a rule", "at: a time in RFC 3339, not in the future")
			p.Field = "at"
			return p
		}
		req.EffectiveAt = b.At.UTC()
	}
	rec, _, err := s.ledger.Append(r.Context(), req)
	if err != nil {
		return err
	}
	writeRecord(w, http.StatusCreated, rec)
	return nil
}
