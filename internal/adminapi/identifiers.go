package adminapi

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/identity"
	"github.com/privguard/privguard/vault"
)

// identifierBody is POST /v1/subjects/{subject}/identifiers. Verified means the app
// attests that it verified the address itself (the link's evidence is then
// "app:<principal>"); otherwise the link waits for a code (…/{hash}/code, …/{hash}/verify).
type identifierBody struct {
	Type     identity.Type `json:"type"`
	Value    string        `json:"value"`
	Verified bool          `json:"verified"`
}

// identifierRoutes registers the identity links of subjects (Config.Identities).
func (s *Server) identifierRoutes(authed func(string, handler)) []string {
	authed("POST /v1/subjects/{subject}/identifiers", s.postIdentifier)
	authed("GET /v1/subjects/{subject}/identifiers", s.getIdentifiers)
	authed("DELETE /v1/subjects/{subject}/identifiers/{hash}", s.deleteIdentifier)
	authed("POST /v1/subjects/{subject}/identifiers/{hash}/code", s.sendIdentifierCode)
	authed("POST /v1/subjects/{subject}/identifiers/{hash}/verify", s.verifyIdentifier)
	return []string{"/v1/subjects/{subject}/identifiers", "/v1/subjects/{subject}/identifiers/{hash}",
		"/v1/subjects/{subject}/identifiers/{hash}/code", "/v1/subjects/{subject}/identifiers/{hash}/verify"}
}

// identifierProblem is the 422 of a bad type or value, naming the field (never the value).
func identifierProblem(err error, prefix string) error {
	var e *identity.Error
	if !errors.As(err, &e) {
		return err
	}
	p := privguard.NewProblem(http.StatusUnprocessableEntity, TypeValidation, "The request breaks a rule", prefix+e.Field+": "+e.Reason)
	p.Field = prefix + e.Field
	p.Errors = []privguard.FieldError{{Field: p.Field, Rule: "identifier", Detail: e.Reason}}
	return p
}

func (s *Server) postIdentifier(w http.ResponseWriter, r *http.Request) error {
	subject, err := s.subject(r)
	if err != nil {
		return err
	}
	var b identifierBody
	if err := s.decode(w, r, MaxConsentBody, &b); err != nil {
		return err
	}
	by := ""
	if b.Verified {
		principal, _ := PrincipalFromContext(r.Context())
		by = principal.Name
	}
	l, err := s.identities.Add(r.Context(), subject, b.Type, b.Value, by)
	if errors.Is(err, privguard.ErrConflict) {
		p := privguard.NewProblem(http.StatusConflict, TypeConflict, "Linked to another subject", "this identifier is linked to another subject; remove it there first")
		p.Field = "value"
		return p
	}
	if errors.Is(err, vault.ErrShredded) {
		return privguard.NewProblem(http.StatusGone, TypeVaultShredded, "Subject's keys were shredded",
			"the subject was erased: no address can be kept for it")
	}
	if err != nil {
		return identifierProblem(err, "")
	}
	writeJSON(w, http.StatusCreated, l)
	return nil
}

func (s *Server) getIdentifiers(w http.ResponseWriter, r *http.Request) error {
	subject, err := s.subject(r)
	if err != nil {
		return err
	}
	links, err := s.identities.Links(r.Context(), subject)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"subject": subject, "identifiers": links})
	return nil
}

// link returns the subject's link named by the path, or a 404 problem.
func (s *Server) link(r *http.Request) (identity.Link, error) {
	subject, err := s.subject(r)
	if err != nil {
		return identity.Link{}, err
	}
	l, err := s.identities.Get(r.Context(), subject, r.PathValue("hash"))
	if errors.Is(err, privguard.ErrNotFound) {
		return identity.Link{}, privguard.NewProblem(http.StatusNotFound, TypeNotFound, "Not found", "the subject has no identifier of this hash")
	}
	return l, err
}

func (s *Server) deleteIdentifier(w http.ResponseWriter, r *http.Request) error {
	l, err := s.link(r)
	if err != nil {
		return err
	}
	if err := s.identities.Remove(r.Context(), l.Subject, l.Type, l.Hash); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// sendIdentifierCode sends a code to verify the link: bounded per link (identity's
// CodeSendsPerDay, CodeResendInterval) and per subject, with the codes of its requests
// (Config.CodesPerSubject a day).
func (s *Server) sendIdentifierCode(w http.ResponseWriter, r *http.Request) error {
	l, err := s.link(r)
	if err != nil {
		return err
	}
	if l.Type.Channel() == "" {
		return privguard.NewProblem(http.StatusConflict, TypeConflict, "Cannot be sent to",
			fmt.Sprintf("a %s cannot be sent a code; the app can attest it (\"verified\": true)", l.Type))
	}
	if l.Verified {
		return privguard.NewProblem(http.StatusConflict, TypeConflict, "Verified already", "")
	}
	now := s.now()
	if wait, ok := s.codes.reserve(l.Subject, now); !ok {
		return tooManyCodes(w, wait, fmt.Sprintf("this subject was sent %d codes in the last %s", s.codes.max, CodeSubjectWindow))
	}
	lang := ""
	if q := r.URL.Query().Get("lang"); q == "en" || q == "zh-CN" {
		lang = q
	}
	expires, err := s.identities.SendCode(r.Context(), l.Subject, l.Hash, lang)
	if err != nil {
		s.codes.release(l.Subject, now)
	}
	var limit *identity.CodeLimitError
	switch {
	case errors.As(err, &limit):
		return tooManyCodes(w, limit.RetryAfter, fmt.Sprintf("an identifier is sent at most %d codes a day, %s apart",
			identity.CodeSendsPerDay, identity.CodeResendInterval))
	case errors.Is(err, identity.ErrCodeBudget):
		return privguard.NewProblem(http.StatusTooManyRequests, TypeTooManyAttempts, "Too many wrong codes",
			fmt.Sprintf("this identifier had %d wrong codes and can no longer be verified by code", identity.CodeGuessBudget))
	case errors.Is(err, privguard.ErrConflict):
		return privguard.NewProblem(http.StatusConflict, TypeConflict, "Verified already", "")
	case err != nil:
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"sent": true, "channel": l.Type.Channel(), "to": l.Masked,
		"expires_at": expires, "expires_in_seconds": int(identity.CodeTTL.Seconds())})
	return nil
}

func (s *Server) verifyIdentifier(w http.ResponseWriter, r *http.Request) error {
	l, err := s.link(r)
	if err != nil {
		return err
	}
	var b codeBody
	if err := s.decode(w, r, MaxConsentBody, &b); err != nil {
		return err
	}
	out, err := s.identities.VerifyCode(r.Context(), l.Subject, l.Hash, b.Code)
	switch {
	case errors.Is(err, identity.ErrCodeBudget):
		return privguard.NewProblem(http.StatusTooManyRequests, TypeTooManyAttempts, "Too many wrong codes",
			fmt.Sprintf("this identifier had %d wrong codes and can no longer be verified by code", identity.CodeGuessBudget))
	case errors.Is(err, identity.ErrNoAttempts):
		return privguard.NewProblem(http.StatusTooManyRequests, TypeTooManyAttempts, "Too many wrong codes", "ask for a new code")
	case errors.Is(err, identity.ErrBadCode), errors.Is(err, identity.ErrNotNotified):
		return privguard.NewProblem(http.StatusForbidden, TypeIdentityNotVerified, "Wrong or expired code", "")
	case err != nil:
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
