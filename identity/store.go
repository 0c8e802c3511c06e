package identity

import (
	"context"

	"github.com/privguard/privguard"
)

// Store keeps the links. boltstore.IdentityStore (the embedded data file) and
// pgstore.IdentityStore (PostgreSQL, shared by replicas) implement it; identitytest.TestStore
// is their conformance suite. A link is keyed by its type and hash (unique: one value,
// one subject) and listed by subject. Bodies are the registry's encoding, stored as given.
type Store interface {
	// PutLink stores body as the link (t, hash) of subject, replacing the body of that
	// subject's link. If (t, hash) is linked to another subject it stores nothing and
	// returns an error wrapping privguard.ErrConflict (atomically: of two subjects putting
	// one (t, hash) at once, one wins).
	PutLink(ctx context.Context, subject privguard.SubjectID, t Type, hash string, body []byte) error
	// Link returns the subject and body of the link (t, hash), or an error wrapping
	// privguard.ErrNotFound.
	Link(ctx context.Context, t Type, hash string) (privguard.SubjectID, []byte, error)
	// SubjectLinks returns the bodies of every link of subject, ordered by type and hash
	// (none: an empty slice and no error).
	SubjectLinks(ctx context.Context, subject privguard.SubjectID) ([][]byte, error)
	// DeleteLink removes the link (t, hash) of subject. Returns an error wrapping
	// privguard.ErrNotFound if subject has no such link (another subject's is left alone).
	DeleteLink(ctx context.Context, subject privguard.SubjectID, t Type, hash string) error
	// DeleteSubjectLinks removes every link of subject and returns how many there were.
	DeleteSubjectLinks(ctx context.Context, subject privguard.SubjectID) (int, error)
}
