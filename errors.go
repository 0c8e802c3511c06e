package privguard

import "errors"

// Sentinel errors shared by every package. Packages wrap them with context
// (fmt.Errorf("...: %w", ErrNotFound)); callers test with errors.Is. The wrapped text may
// name internal things; only [Problem] values reach clients.
var (
	// ErrInvalid means the input is malformed or breaks a rule; retrying it will not help.
	ErrInvalid = errors.New("privguard: invalid input")
	// ErrNotFound means the thing asked for does not exist.
	ErrNotFound = errors.New("privguard: not found")
	// ErrConflict means the input contradicts what is already recorded (an immutable
	// notice text, an idempotency key reused for a different request).
	ErrConflict = errors.New("privguard: conflict")
	// ErrUnavailable means a dependency (store, engine) could not answer; the caller must
	// fail closed and may retry.
	ErrUnavailable = errors.New("privguard: unavailable")
	// ErrClosed means the component was shut down.
	ErrClosed = errors.New("privguard: closed")
	// ErrUnauthenticated means the caller did not prove who it is.
	ErrUnauthenticated = errors.New("privguard: unauthenticated")
	// ErrForbidden means the caller may not do this.
	ErrForbidden = errors.New("privguard: forbidden")
)
