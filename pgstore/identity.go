package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/identity"
)

// IdentityStore keeps identity links in a [DB] (table identity_links, keyed by type and
// hash, indexed by subject), shared by every replica on the database.
type IdentityStore struct{ db *DB }

var _ identity.Store = (*IdentityStore)(nil)

// Identity returns the identity registry's view of db.
func (db *DB) Identity() *IdentityStore { return &IdentityStore{db: db} }

// PutLink implements identity.Store: an upsert that changes only the subject's own link,
// so that of two subjects inserting one value at once one wins and the other conflicts.
func (s *IdentityStore) PutLink(ctx context.Context, subject privguard.SubjectID, t identity.Type, hash string, body []byte) error {
	if err := subject.Validate(); err != nil {
		return err
	}
	tag, err := s.db.pool.Exec(ctx, `INSERT INTO identity_links (type, hash, subject, body) VALUES ($1, $2, $3, $4)
		ON CONFLICT (type, hash) DO UPDATE SET body = excluded.body WHERE identity_links.subject = excluded.subject`,
		string(t), hash, string(subject), notNil(body))
	if err != nil {
		return fmt.Errorf("identity link: %w: %w", err, privguard.ErrUnavailable)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("identity link: linked to another subject: %w", privguard.ErrConflict)
	}
	return nil
}

// Link implements identity.Store.
func (s *IdentityStore) Link(ctx context.Context, t identity.Type, hash string) (privguard.SubjectID, []byte, error) {
	var (
		subject string
		body    []byte
	)
	err := s.db.pool.QueryRow(ctx, `SELECT subject, body FROM identity_links WHERE type = $1 AND hash = $2`, string(t), hash).Scan(&subject, &body)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil, fmt.Errorf("identity link: %w", privguard.ErrNotFound)
	}
	if err != nil {
		return "", nil, fmt.Errorf("identity link: %w: %w", err, privguard.ErrUnavailable)
	}
	return privguard.SubjectID(subject), body, nil
}

// SubjectLinks implements identity.Store.
func (s *IdentityStore) SubjectLinks(ctx context.Context, subject privguard.SubjectID) ([][]byte, error) {
	rows, err := s.db.pool.Query(ctx, `SELECT body FROM identity_links WHERE subject = $1 ORDER BY type, hash`, string(subject))
	if err != nil {
		return nil, fmt.Errorf("identity links: %w: %w", err, privguard.ErrUnavailable)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, fmt.Errorf("identity links: %w: %w", err, privguard.ErrUnavailable)
	}
	if out == nil {
		out = [][]byte{}
	}
	return out, nil
}

// DeleteLink implements identity.Store.
func (s *IdentityStore) DeleteLink(ctx context.Context, subject privguard.SubjectID, t identity.Type, hash string) error {
	tag, err := s.db.pool.Exec(ctx, `DELETE FROM identity_links WHERE type = $1 AND hash = $2 AND subject = $3`, string(t), hash, string(subject))
	if err != nil {
		return fmt.Errorf("identity link: %w: %w", err, privguard.ErrUnavailable)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("identity link: %w", privguard.ErrNotFound)
	}
	return nil
}

// DeleteSubjectLinks implements identity.Store.
func (s *IdentityStore) DeleteSubjectLinks(ctx context.Context, subject privguard.SubjectID) (int, error) {
	tag, err := s.db.pool.Exec(ctx, `DELETE FROM identity_links WHERE subject = $1`, string(subject))
	if err != nil {
		return 0, fmt.Errorf("identity links: %w: %w", err, privguard.ErrUnavailable)
	}
	return int(tag.RowsAffected()), nil
}
