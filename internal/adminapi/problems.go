package adminapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
)

// Problem type slugs (after privguard.ProblemTypePrefix). They are part of the API.
const (
	TypeUnauthenticated      = "unauthenticated"
	TypeNotFound             = "not-found"
	TypeMethodNotAllowed     = "method-not-allowed"
	TypeUnsupportedMediaType = "unsupported-media-type"
	TypeBodyTooLarge         = "body-too-large"
	TypeMalformedJSON        = "malformed-json"
	// TypeAmbiguous: a key appears twice in one object (also under case folding), a field
	// is spelled in another case than its name, or a query parameter or header is given
	// twice; a lenient reader could take it another way, so it is refused (400, field
	// names it). The sidecar uses the same type.
	TypeAmbiguous           = "ambiguous-request"
	TypeValidation          = "validation"
	TypeInvalidSubject      = "invalid-subject"
	TypeConflict            = "conflict"
	TypeUnavailable         = "unavailable"
	TypeInternal            = "internal"
	TypeIdentityNotVerified = "identity-not-verified"
	TypeTooManyAttempts     = "too-many-attempts"
	// TypeTooManyCodes: no one-time code was sent (429): too soon after the last, or the
	// request's or the subject's codes are used up. Retry-After says when, if waiting helps.
	TypeTooManyCodes     = "too-many-codes"
	TypeExtensionRefused = "extension-refused"
	TypeResultGone       = "result-gone"
	TypeForbidden        = "forbidden"
	TypeNoResult         = "no-result"
	// TypeNoAddress: a code or link cannot be sent, as no verified phone or email is
	// linked to the subject (409).
	TypeNoAddress = "no-address"
	// TypeChainBroken: a register's hash chain does not verify (it was altered in the
	// store); detail names the log and the first entry that breaks (500).
	TypeChainBroken = "chain-broken"
)

// unauthenticated is the 401; detail says what would work.
func unauthenticated(detail string) *privguard.Problem {
	return privguard.NewProblem(http.StatusUnauthorized, TypeUnauthenticated, "Authentication required", detail)
}

// forbidden is the 403; detail names the roles that may (Server.roleHint).
func forbidden(detail string) *privguard.Problem {
	return privguard.NewProblem(http.StatusForbidden, TypeForbidden, "Not allowed", detail)
}

// writeError maps err to a problem and writes it. It is the only place errors become HTTP
// answers. Internal error text is logged (it never holds personal data: errors name fields
// and codes, not values) and never sent.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) {
		return // the client went away
	}
	p, retry := s.problemOf(r, err)
	if retry {
		w.Header().Set("Retry-After", "1")
	}
	p.Write(w)
}

// problemOf maps err to the problem a client is told (writeError, and each item of an
// import); retry reports a dependency that was unavailable, where the same request may
// succeed shortly. Internal error text is logged (it never holds personal data: errors
// name fields and codes, not values) and never sent.
func (s *Server) problemOf(r *http.Request, err error) (p *privguard.Problem, retry bool) {
	var fe *consent.FieldError
	switch {
	case errors.As(err, &p):
	case errors.As(err, &fe) && errors.Is(err, privguard.ErrConflict):
		p = privguard.NewProblem(http.StatusConflict, TypeConflict, "Conflicts with what is recorded", fe.Detail)
		p.Field, p.Errors = fe.Field, []privguard.FieldError{{Field: fe.Field, Rule: fe.Code, Detail: fe.Detail}}
	case errors.As(err, &fe):
		p = privguard.NewProblem(http.StatusUnprocessableEntity, TypeValidation, "The request breaks a rule", fe.Detail)
		p.Field, p.Errors = fe.Field, []privguard.FieldError{{Field: fe.Field, Rule: fe.Code, Detail: fe.Detail}}
	case errors.Is(err, privguard.ErrNotFound):
		p = privguard.NewProblem(http.StatusNotFound, TypeNotFound, "Not found", "")
	case errors.Is(err, privguard.ErrInvalid):
		p = privguard.NewProblem(http.StatusUnprocessableEntity, TypeValidation, "The request breaks a rule", "")
	case errors.Is(err, consent.ErrOutcomeUnknown):
		s.log.Error("request failed: the store did not confirm the commit", "route", r.Pattern, "err", err)
		p = privguard.NewProblem(http.StatusServiceUnavailable, TypeUnavailable, "Temporarily unavailable",
			"the store did not confirm the write, which may or may not be recorded; retry with the same Idempotency-Key, which records it at most once")
		retry = true
	case errors.Is(err, consent.ErrStale):
		s.log.Error("request failed: the consent state is stale", "route", r.Pattern, "err", err)
		p = privguard.NewProblem(http.StatusServiceUnavailable, TypeUnavailable, "Temporarily unavailable",
			"this replica could not confirm that its consent state is current (the shared store is unreachable), so it decides nothing; nothing was recorded")
		retry = true
	case errors.Is(err, privguard.ErrUnavailable), errors.Is(err, privguard.ErrClosed),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		s.log.Error("request failed: dependency unavailable", "route", r.Pattern, "err", err)
		p = privguard.NewProblem(http.StatusServiceUnavailable, TypeUnavailable, "Temporarily unavailable",
			"nothing was recorded; retry with the same Idempotency-Key")
		retry = true
	default:
		s.log.Error("request failed", "route", r.Pattern, "err", err)
		p = privguard.NewProblem(http.StatusInternalServerError, TypeInternal, "Internal error", "")
	}
	return p, retry
}

// logRequests logs one line per request: route pattern and status. Never the path or
// query, which may name a subject. It also turns a handler panic into a 500 problem.
func (s *Server) logRequests(pattern string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			if v := recover(); v != nil {
				s.log.Error("handler panic", "route", pattern, "panic", slog.AnyValue(panicType(v)))
				if !rec.wrote {
					privguard.NewProblem(http.StatusInternalServerError, TypeInternal, "Internal error", "").Write(w)
				}
				rec.status = http.StatusInternalServerError
			}
		}()
		next.ServeHTTP(rec, r)
		s.log.Debug("request", "method", r.Method, "route", pattern, "status", rec.status)
	})
}

// panicType names a panic value's type without its content, which could hold input.
func panicType(v any) string { return fmt.Sprintf("%T", v) }

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
