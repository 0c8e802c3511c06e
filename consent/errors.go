package consent

import (
	"fmt"

	"github.com/privguard/privguard"
)

// FieldError is a rejected write: the input field to blame (a JSON path such as
// "notice.version"), a stable code ("notice.unknown") and a detail safe to show a client (it
// never repeats the input). It wraps [privguard.ErrInvalid], or [privguard.ErrConflict] for
// writes that contradict what is recorded.
type FieldError struct {
	Field  string
	Code   string
	Detail string
	Err    error
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("consent: %s: %s (%s)", e.Field, e.Detail, e.Code)
}

func (e *FieldError) Unwrap() error { return e.Err }

func invalid(field, code, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Code: code, Detail: fmt.Sprintf(format, args...), Err: privguard.ErrInvalid}
}

func conflict(field, code, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Code: code, Detail: fmt.Sprintf(format, args...), Err: privguard.ErrConflict}
}

// Stable codes of FieldError.
const (
	CodeRequired           = "required"
	CodeInvalid            = "invalid"
	CodePurposeUnknown     = "purpose.unknown"
	CodeNoticeUnknown      = "notice.unknown"
	CodeNoticeSuperseded   = "notice.superseded"
	CodeNoticeNotCovering  = "notice.purpose_not_covered"
	CodeNoticeImmutable    = "notice.immutable"
	CodeBasisNotAllowed    = "legal_basis.not_allowed"
	CodeSeparateRequired   = string(privguard.ReasonSeparateConsentRequired)
	CodeRecipientRequired  = "separate_consent.recipient_required"
	CodeGuardianRequired   = string(privguard.ReasonGuardianConsentRequired)
	CodeProvenanceRequired = "provenance.required"
	CodeIdempotencyReused  = "idempotency.key_reused"
)
