package adminapi

import (
	"net/http"
	"strings"

	"github.com/privguard/privguard"
)

// Problem types of scoped tokens (PUR-08). They are part of the API.
const (
	// TypePurposeNotAllowed: the token is scoped to purposes (admin.tokens[].purposes) and
	// the call records or reads consent for another one, or for none (403).
	TypePurposeNotAllowed = "token.purpose_not_allowed"
	// TypeRequestsNotAllowed: the token is configured with subjects_requests: false and
	// the call is a data-subject request route (403).
	TypeRequestsNotAllowed = "token.requests_not_allowed"
)

// Scoped reports whether p is scoped to purposes.
func (p Principal) Scoped() bool { return len(p.Purposes) > 0 }

// Serves reports whether p may record and read consent for purpose: an unscoped principal
// serves every purpose, a scoped one its purposes and their sub-purposes
// ("marketing.communications" serves "marketing.communications.sms"). No principal that
// is scoped serves the empty purpose (the subject-level facts, which bind every purpose).
func (p Principal) Serves(purpose privguard.Purpose) bool {
	if !p.Scoped() {
		return true
	}
	if purpose == "" {
		return false
	}
	for _, s := range p.Purposes {
		if purpose.Within(s) {
			return true
		}
	}
	return false
}

// purposeNotAllowed is the 403 of a scoped principal asking for a purpose it does not
// serve. It names the principal's own purposes (its configuration, no personal data).
func purposeNotAllowed(p Principal, field string) *privguard.Problem {
	names := make([]string, len(p.Purposes))
	for i, s := range p.Purposes {
		names[i] = string(s)
	}
	pr := privguard.NewProblem(http.StatusForbidden, TypePurposeNotAllowed, "Purpose not allowed for this token",
		"the token is scoped to "+strings.Join(names, ", ")+"; a subject-level action or another purpose needs a token that serves it")
	pr.Field = field
	return pr
}

// scoped refuses the request routes (pattern under /v1/requests, and the subject's profile,
// whose deletions are requests) to a principal with NoRequests, and the vault's and the
// profile's routes to a scoped principal: a sealed field or a tag is not bound to a
// purpose, so opening one could read data of any purpose. The purpose checks of the
// consent routes are the handlers' (they know the purpose).
func (s *Server) scoped(pattern string, next http.Handler) http.Handler {
	_, path, _ := strings.Cut(pattern, " ")
	profile := strings.HasPrefix(path, "/v1/subjects/{subject}/profile")
	requests := path == "/v1/requests" || strings.HasPrefix(path, "/v1/requests/") || profile
	// An identifier is not bound to a purpose either: a scoped token neither reads nor
	// links a subject's phones and emails.
	vault := strings.HasPrefix(path, "/v1/vault/") || profile || strings.HasPrefix(path, "/v1/subjects/{subject}/identifiers")
	if !requests && !vault {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := PrincipalFromContext(r.Context())
		switch {
		case requests && p.NoRequests:
			privguard.NewProblem(http.StatusForbidden, TypeRequestsNotAllowed, "Requests not allowed for this token",
				"the token is configured with subjects_requests: false").Write(w)
			return
		case vault && p.Scoped():
			privguard.NewProblem(http.StatusForbidden, TypePurposeNotAllowed, "Purpose not allowed for this token",
				"the token is scoped to purposes, and the vault's fields, the profile's tags and the subjects' identifiers are not bound to one").Write(w)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// servedPurposes returns the purposes of v that p serves (all for an unscoped principal).
func servedPurposes[T any](p Principal, list []T, purpose func(T) privguard.Purpose) []T {
	if !p.Scoped() {
		return list
	}
	out := make([]T, 0, len(list))
	for _, x := range list {
		if p.Serves(purpose(x)) {
			out = append(out, x)
		}
	}
	return out
}
