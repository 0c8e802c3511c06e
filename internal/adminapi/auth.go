package adminapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	"github.com/privguard/privguard/internal/authz"

	"github.com/privguard/privguard"
)

// Principal is an authenticated caller. Its roles decide which routes it may call
// (internal/authz; a principal without roles is an "app").
type Principal struct {
	Name  string
	Roles []string
	// Purposes, if not empty, scope the principal (an entrusted processor's token, PUR-08):
	// it records and reads consent only for these purposes and their sub-purposes
	// ([Principal.Serves]).
	Purposes []privguard.Purpose
	// NoRequests keeps the principal off the data-subject request routes (/v1/requests*).
	NoRequests bool
}

// Tokens maps the SHA-256 of each bearer token to its principal. Only hashes are held, so a
// memory dump or a config file does not reveal a usable token.
type Tokens map[[32]byte]Principal

// Add registers token for p.
func (t Tokens) Add(token string, p Principal) { t[sha256.Sum256([]byte(token))] = p }

// AddHash registers a token by the hex SHA-256 of its value (as configuration stores it).
func (t Tokens) AddHash(hexSHA256 string, p Principal) error {
	b, err := hex.DecodeString(hexSHA256)
	if err != nil || len(b) != sha256.Size {
		return fmt.Errorf("token hash for %s is not 64 hex digits", p.Name)
	}
	t[[32]byte(b)] = p
	return nil
}

// lookup authenticates a bearer token. Looking up its hash in a map leaks nothing useful
// through timing: an attacker cannot steer the hash of a guess.
func (t Tokens) lookup(token string) (Principal, bool) {
	p, ok := t[sha256.Sum256([]byte(token))]
	return p, ok
}

// NewToken returns a fresh random token (256 bits, URL-safe base64 with a "pg_" prefix so
// secret scanners can find leaked ones).
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "pg_" + base64.RawURLEncoding.EncodeToString(b), nil
}

type principalKey struct{}

// PrincipalFromContext returns the caller authenticated for the request.
func PrincipalFromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// authenticate rejects requests to the route registered as pattern without a valid bearer
// token. The answer says what would work: which roles the route needs, and that configured
// tokens replace the generated one.
func (s *Server) authenticate(pattern string, next http.Handler) http.Handler {
	method, path, _ := strings.Cut(pattern, " ")
	needs := s.roleHint(path, method)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.Header.Values("Authorization")) > 1 { // two credentials: which one counts depends on the reader
			p := privguard.NewProblem(http.StatusBadRequest, TypeAmbiguous, "Repeated header", "send one Authorization header")
			p.Field = "Authorization"
			p.Write(w)
			return
		}
		h := r.Header.Get("Authorization")
		scheme, token, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || len(token) > 512 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="privguard"`)
			unauthenticated("send an Authorization: Bearer <token> header; " + needs).Write(w)
			return
		}
		p, ok := s.tokens.lookup(strings.TrimSpace(token))
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="privguard", error="invalid_token"`)
			detail := "the token is not accepted; "
			if s.tokenHint != "" {
				detail += s.tokenHint + "; "
			}
			unauthenticated(detail + needs).Write(w)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// authorize lets the principal through only if one of its roles may call the route
// registered as pattern ("POST /v1/requests/{id}/approve").
func (s *Server) authorize(pattern string, next http.Handler) http.Handler {
	method, path, _ := strings.Cut(pattern, " ")
	refused := "your token's roles do not allow this call: " + s.roleHint(path, method)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := PrincipalFromContext(r.Context())
		if !s.authz.Allow(p.Roles, path, method) {
			forbidden(refused).Write(w)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authorizeOr is authorize for a route that a principal holding permission perm may also
// call: the handler then decides, per request, which of the two the call needs.
func (s *Server) authorizeOr(pattern, perm string, next http.Handler) http.Handler {
	method, path, _ := strings.Cut(pattern, " ")
	refused := "your token's roles do not allow this call: " + s.roleHint(path, method)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := PrincipalFromContext(r.Context())
		if !s.authz.Allow(p.Roles, path, method) && !s.authz.Allow(p.Roles, perm, "use") {
			forbidden(refused).Write(w)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// mayCall reports whether the request's principal may call the route registered as
// pattern.
func (s *Server) mayCall(r *http.Request, pattern string) bool {
	method, path, _ := strings.Cut(pattern, " ")
	p, _ := PrincipalFromContext(r.Context())
	return s.authz.Allow(p.Roles, path, method)
}

// may reports whether the request's principal has permission perm (authz.Attest).
func (s *Server) may(r *http.Request, perm string) bool {
	p, _ := PrincipalFromContext(r.Context())
	return s.authz.Allow(p.Roles, perm, "use")
}

// roleHint names the roles whose tokens may do act on obj, from the policy itself
// ("this call needs a token with the role dpo or admin").
func (s *Server) roleHint(obj, act string) string {
	roles := s.authz.RolesFor(obj, act)
	if len(roles) == 0 {
		return "no role may make this call under the configured policy"
	}
	for i, r := range roles {
		if r == authz.DefaultRole {
			roles[i] = r + " (a token configured without roles)"
		}
	}
	list := roles[0]
	if n := len(roles); n > 1 {
		list = strings.Join(roles[:n-1], ", ") + " or " + roles[n-1]
	}
	return "this call needs a token with the role " + list
}
