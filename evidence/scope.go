package evidence

import (
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
)

// Scope is what an export holds: every record of one subject (Subject set), or the
// records of one purpose in a period (Purpose, From ≤ time < To), subjects pseudonymous.
type Scope struct {
	Subject privguard.SubjectID `json:"subject,omitempty"`
	Purpose privguard.Purpose   `json:"purpose,omitempty"`
	From    time.Time           `json:"from,omitzero"`
	To      time.Time           `json:"to,omitzero"`
}

// ScopeError is a filter that does not make a [Scope]: Field names it (subject, purpose,
// from, to) and Problem says why. It wraps privguard.ErrInvalid.
type ScopeError struct {
	Field, Problem string
}

func (e *ScopeError) Error() string { return e.Field + ": " + e.Problem }
func (e *ScopeError) Unwrap() error { return privguard.ErrInvalid }

// ParseScope makes a scope of the filters as given on the command line or in a query: a
// subject; or a purpose, from and to, each an RFC 3339 time or a date (midnight UTC), the
// period being from ≤ time < to. A *ScopeError names the filter that is wrong.
func ParseScope(subject, purpose, from, to string) (Scope, error) {
	s := Scope{Subject: privguard.SubjectID(subject), Purpose: privguard.Purpose(purpose)}
	var err error
	if s.From, err = parseTime("from", from); err != nil {
		return s, err
	}
	if s.To, err = parseTime("to", to); err != nil {
		return s, err
	}
	return s, s.Validate()
}

func parseTime(field, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if len(v) <= 64 {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return t.UTC(), nil
		}
		if t, err := time.Parse(time.DateOnly, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, &ScopeError{Field: field, Problem: "want an RFC 3339 time or a date such as 2026-03-01"}
}

// Validate reports whether s is one of the two scopes; a *ScopeError says what is wrong.
func (s Scope) Validate() error {
	switch {
	case s.Subject != "" && (s.Purpose != "" || !s.From.IsZero() || !s.To.IsZero()):
		return &ScopeError{Field: "subject", Problem: "give a subject, or a purpose with from and to, not both"}
	case s.Subject != "":
		if s.Subject.Validate() != nil {
			return &ScopeError{Field: "subject", Problem: privguard.SubjectIDRule}
		}
		return nil
	case s.Purpose == "":
		return &ScopeError{Field: "purpose", Problem: "give a subject, or a purpose with from and to"}
	case s.Purpose.Validate() != nil:
		return &ScopeError{Field: "purpose", Problem: "not a purpose name (dot-separated lower-case words)"}
	case s.From.IsZero():
		return &ScopeError{Field: "from", Problem: "an export by purpose needs a period: from and to"}
	case s.To.IsZero():
		return &ScopeError{Field: "to", Problem: "an export by purpose needs a period: from and to"}
	case !s.From.Before(s.To):
		return &ScopeError{Field: "to", Problem: "must be after from (the period is from ≤ time < to)"}
	}
	return nil
}

// Check is Validate, and for a scope by purpose also that the ledger l records consent for
// the purpose or for purposes below it; a *ScopeError says what is wrong.
func (s Scope) Check(l *consent.Ledger) error {
	if err := s.Validate(); err != nil || s.Subject != "" {
		return err
	}
	t := l.Taxonomy()
	if _, ok := t.Lookup(s.Purpose); ok {
		return nil
	}
	for _, p := range t.Purposes() {
		if p.Within(s.Purpose) {
			return nil
		}
	}
	return &ScopeError{Field: "purpose", Problem: "not a purpose the ledger records consent for"}
}

// pseudonymous reports whether the export names subjects by pseudonym.
func (s Scope) pseudonymous() bool { return s.Subject == "" }

// Holds reports whether the record r is in scope (one an export of s writes).
func (s Scope) Holds(r *consent.Record) bool { return s.holds(r.Subject, r.Purpose, r.Action, r.Time) }

// holds reports whether a record is in scope. By purpose: a grant, refusal, withdrawal or
// expiry of the purpose or one below it, and a withdrawal from above it (of an ancestor,
// or of every purpose), which withdraws it too.
func (s Scope) holds(subject privguard.SubjectID, purpose privguard.Purpose, action consent.Action, t time.Time) bool {
	if !s.pseudonymous() {
		return subject == s.Subject
	}
	if t.Before(s.From) || !t.Before(s.To) {
		return false
	}
	switch action {
	case consent.ActionGrant, consent.ActionRefuse, consent.ActionExpire:
		return purpose.Within(s.Purpose)
	case consent.ActionWithdraw:
		return purpose == "" || purpose.Within(s.Purpose) || s.Purpose.Within(purpose)
	}
	return false
}
