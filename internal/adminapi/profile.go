package adminapi

import (
	"errors"
	"net/http"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/internal/authz"
)

// The subject's profile (PIPL Art. 24, MKT-06): the tags, segments and scores the stores
// hold on the subject (dsar.Engine.Profile), labelled as derived, and the deletion of the
// ones the subject picks, as a narrow erasure request (dsar.Engine.SubmitTagDeletion).

// profileItem is one derived item as the API shows it.
type profileItem struct {
	dsar.DerivedItem
	// Derived labels the item as data the controller inferred, not data the subject gave.
	Derived bool `json:"derived"`
}

// profileView is GET /v1/subjects/{subject}/profile.
type profileView struct {
	Subject privguard.SubjectID `json:"subject"`
	Items   []profileItem       `json:"items"`
}

// profileDeleteBody is POST /v1/subjects/{subject}/profile/delete: the ids of the items to
// delete (from the profile), and how the requester's identity was verified, as in POST
// /v1/requests (none: the request waits for verification by code).
type profileDeleteBody struct {
	Items    []string      `json:"items" validate:"required,min=1,max=1000,dive,required,max=64"`
	Identity *identityBody `json:"identity" validate:"excluded_with=IdentityToken"`
	// IdentityToken is a JWS the company's app signed for its logged-in user.
	IdentityToken string `json:"identity_token" validate:"max=4096"`
}

// getProfile lists the subject's derived items across every store that can list them.
func (s *Server) getProfile(w http.ResponseWriter, r *http.Request) error {
	subject, err := s.subject(r)
	if err != nil {
		return err
	}
	if err := knownQuery(r.URL.Query()); err != nil {
		return err
	}
	items, err := s.requests.Profile(r.Context(), subject)
	if err != nil {
		return err
	}
	out := profileView{Subject: subject, Items: make([]profileItem, len(items))}
	for i, it := range items {
		out.Items[i] = profileItem{DerivedItem: it, Derived: true}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// postProfileDelete submits the deletion of the named items: 202 with the request, which
// the engine runs as any other (durable, retried, in the register). Ids the subject's
// profile does not hold now are a 422 naming them.
func (s *Server) postProfileDelete(w http.ResponseWriter, r *http.Request) error {
	subject, err := s.subject(r)
	if err != nil {
		return err
	}
	var b profileDeleteBody
	if err := s.decode(w, r, MaxConsentBody, &b); err != nil {
		return err
	}
	var identity *dsar.Identity
	switch {
	case b.IdentityToken != "":
		if s.idTokens == nil {
			return privguard.NewProblem(http.StatusUnprocessableEntity, TypeValidation, "Identity tokens are not configured",
				"set dsar.identity_token_secret_file, or verify with a code")
		}
		if vouched, err := s.idTokens.Subject(b.IdentityToken); err != nil || vouched != subject {
			// One answer for a forged token and a token for someone else: no oracle.
			return privguard.NewProblem(http.StatusForbidden, TypeIdentityNotVerified, "Identity token does not verify for this subject", "")
		}
		identity = &dsar.Identity{Method: "token"}
	case b.Identity != nil:
		if !s.may(r, authz.Attest) {
			return forbidden("identity: attesting an identity is an operator's word; " + s.roleHint(authz.Attest, "use") +
				" (an app verifies with a code or identity_token)")
		}
		var req dsar.Request
		attest(r, &req, "", b.Identity)
		identity = req.Identity
	}
	out, err := s.requests.SubmitTagDeletion(r.Context(), subject, b.Items, identity)
	var unknown *dsar.UnknownItemsError
	if errors.As(err, &unknown) {
		p := privguard.NewProblem(http.StatusUnprocessableEntity, TypeValidation, "The request breaks a rule",
			"items: these ids name no tag, segment or score held on the subject now (list the profile again)")
		p.Field = "items"
		for _, id := range unknown.IDs {
			p.Errors = append(p.Errors, privguard.FieldError{Field: "items", Rule: "not_held", Detail: id})
		}
		return p
	}
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/requests/"+out.ID)
	writeJSON(w, http.StatusAccepted, s.view(r, out))
	return nil
}
