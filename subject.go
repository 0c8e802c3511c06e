package privguard

import (
	"fmt"
	"log/slog"
)

// MaxSubjectIDLen is the longest subject identifier accepted, in bytes.
const MaxSubjectIDLen = 128

// SubjectID identifies a data subject (the person the data is about) in the controller's own
// systems: a customer number, an account id, a pseudonymous device id. It is personal data.
//
// A valid SubjectID is 1 to [MaxSubjectIDLen] bytes of ASCII letters, digits and the
// characters "._:@+-", starting with a letter or digit, so that it fits unescaped in a URL
// path segment, a header and a log-safe key.
type SubjectID string

// SubjectIDRule says what a subject identifier must be, for error messages.
const SubjectIDRule = "must be 1 to 128 ASCII letters, digits or ._:@+- starting with a letter or digit"

// Validate reports whether s is a well-formed subject identifier. It returns an error
// wrapping [ErrInvalid] that does not repeat the identifier.
func (s SubjectID) Validate() error {
	if len(s) == 0 {
		return fmt.Errorf("subject id is empty: %w", ErrInvalid)
	}
	if len(s) > MaxSubjectIDLen {
		return fmt.Errorf("subject id is longer than %d bytes: %w", MaxSubjectIDLen, ErrInvalid)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == ':' || c == '@' || c == '+' || c == '-'):
		default:
			return fmt.Errorf("subject id has a character not allowed at byte %d: %w", i, ErrInvalid)
		}
	}
	return nil
}

// LogValue implements [slog.LogValuer]: a subject identifier never reaches a log.
func (s SubjectID) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// String returns the identifier itself. Use it to build keys and queries, never log lines.
func (s SubjectID) String() string { return string(s) }
