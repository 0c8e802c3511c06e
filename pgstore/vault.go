package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/vault"
)

// VaultStore is the vault's storage in a [DB]: wrapped subject keysets and shred
// tombstones.
type VaultStore struct{ db *DB }

var (
	_ vault.Store         = (*VaultStore)(nil)
	_ vault.SecretStore   = (*VaultStore)(nil)
	_ vault.BatchShredder = (*VaultStore)(nil)
	_ vault.SharedStore   = (*VaultStore)(nil)
)

// Vault returns the vault's view of db.
func (db *DB) Vault() *VaultStore { return &VaultStore{db: db} }

// WrappedKey implements vault.Store.
func (s *VaultStore) WrappedKey(ctx context.Context, subject privguard.SubjectID) ([]byte, error) {
	var out []byte
	err := s.db.pool.QueryRow(ctx, `SELECT wrapped FROM vault_keys WHERE subject = $1`, []byte(subject)).Scan(&out)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("vault key: %w", privguard.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("vault key: %w: %w", err, privguard.ErrUnavailable)
	}
	return out, nil
}

// PutWrappedKey implements vault.Store. Without replace, the insert does nothing if the
// key exists, also when another process has just created it, and the error wraps
// privguard.ErrConflict.
func (s *VaultStore) PutWrappedKey(ctx context.Context, subject privguard.SubjectID, wrapped []byte, replace bool) error {
	q := `INSERT INTO vault_keys (subject, wrapped) VALUES ($1, $2) ON CONFLICT (subject) DO NOTHING`
	if replace {
		q = `INSERT INTO vault_keys (subject, wrapped) VALUES ($1, $2) ON CONFLICT (subject) DO UPDATE SET wrapped = excluded.wrapped`
	}
	tag, err := s.db.pool.Exec(ctx, q, []byte(subject), notNil(wrapped))
	if err != nil {
		return fmt.Errorf("vault key: %w: %w", err, privguard.ErrUnavailable)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("vault key exists: %w", privguard.ErrConflict)
	}
	return nil
}

// Shred implements vault.Store.
func (s *VaultStore) Shred(ctx context.Context, subject privguard.SubjectID, tombstone [32]byte) error {
	return s.ShredAll(ctx, map[privguard.SubjectID][32]byte{subject: tombstone})
}

// ShredAll implements vault.BatchShredder: one transaction deletes every subject's key and
// records the tombstones. It takes the tombstone table's EXCLUSIVE lock first (readers go
// on), so that tombstones commit in cursor order and TombstonesAfter skips none.
func (s *VaultStore) ShredAll(ctx context.Context, tombstones map[privguard.SubjectID][32]byte) error {
	if len(tombstones) == 0 {
		return nil
	}
	subjects, graves := make([][]byte, 0, len(tombstones)), make([][]byte, 0, len(tombstones))
	for subject, t := range tombstones {
		subjects, graves = append(subjects, []byte(subject)), append(graves, t[:])
	}
	err := pgx.BeginFunc(ctx, s.db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE vault_tombstones IN EXCLUSIVE MODE`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM vault_keys WHERE subject = ANY($1::bytea[])`, subjects); err != nil {
			return err
		}
		// A tombstone recorded already keeps its cursor (boltstore rewrites its time).
		_, err := tx.Exec(ctx, `INSERT INTO vault_tombstones (tombstone) SELECT * FROM unnest($1::bytea[]) ON CONFLICT (tombstone) DO NOTHING`, graves)
		return err
	})
	if err != nil {
		return fmt.Errorf("vault shred %d subjects: %w: %w", len(tombstones), err, privguard.ErrUnavailable)
	}
	return nil
}

// Shredded implements vault.Store.
func (s *VaultStore) Shredded(ctx context.Context, tombstone [32]byte) (bool, error) {
	var ok bool
	err := s.db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM vault_tombstones WHERE tombstone = $1)`, tombstone[:]).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("vault tombstone: %w: %w", err, privguard.ErrUnavailable)
	}
	return ok, nil
}

// TombstonesAfter implements vault.SharedStore. The tombstones are read before fn is
// called.
func (s *VaultStore) TombstonesAfter(ctx context.Context, cursor uint64, fn func(cursor uint64, tombstone [32]byte) error) error {
	type grave struct {
		cursor uint64
		t      [32]byte
	}
	var all []grave
	rows, err := s.db.pool.Query(ctx, `SELECT cursor, tombstone FROM vault_tombstones WHERE cursor > $1 ORDER BY cursor`, int64(cursor))
	if err == nil {
		var c int64
		var t []byte
		_, err = pgx.ForEachRow(rows, []any{&c, &t}, func() error {
			if len(t) != 32 {
				return fmt.Errorf("tombstone %d: %d bytes", c, len(t))
			}
			all = append(all, grave{cursor: uint64(c), t: [32]byte(t)})
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("vault tombstones: %w: %w", err, privguard.ErrUnavailable)
	}
	for _, g := range all {
		if err := fn(g.cursor, g.t); err != nil {
			return err
		}
	}
	return nil
}

// EachWrappedKey implements vault.Store. The keys are read in pages of 1,024, in subject
// order, and fn runs between the pages' queries.
func (s *VaultStore) EachWrappedKey(ctx context.Context, fn func(subject privguard.SubjectID, wrapped []byte) error) error {
	const page = 1024
	type kv struct {
		k privguard.SubjectID
		v []byte
	}
	after := []byte{}
	for {
		rows, err := s.db.pool.Query(ctx, `SELECT subject, wrapped FROM vault_keys WHERE subject > $1 ORDER BY subject LIMIT $2`, after, page)
		var batch []kv
		if err == nil {
			var k, v []byte
			_, err = pgx.ForEachRow(rows, []any{&k, &v}, func() error {
				batch = append(batch, kv{privguard.SubjectID(k), v})
				k, v = nil, nil
				return nil
			})
		}
		if err != nil {
			return fmt.Errorf("vault keys: %w: %w", err, privguard.ErrUnavailable)
		}
		for _, e := range batch {
			if err := fn(e.k, e.v); err != nil {
				return err
			}
		}
		if len(batch) < page {
			return nil
		}
		after = []byte(batch[len(batch)-1].k)
	}
}

// Secret implements vault.SecretStore (in the same table as the ledger's secrets).
func (s *VaultStore) Secret(ctx context.Context, name string, create func() ([]byte, error)) ([]byte, error) {
	return s.db.Consent().Secret(ctx, name, create)
}

// PutSecret implements vault.SecretStore.
func (s *VaultStore) PutSecret(ctx context.Context, name string, value []byte) error {
	return s.db.Consent().PutSecret(ctx, name, value)
}

// PutWrappedKeys implements vault.Store, in one transaction.
func (s *VaultStore) PutWrappedKeys(ctx context.Context, keys map[privguard.SubjectID][]byte) error {
	if len(keys) == 0 {
		return nil
	}
	subjects, wrapped := make([][]byte, 0, len(keys)), make([][]byte, 0, len(keys))
	for subject, w := range keys {
		subjects, wrapped = append(subjects, []byte(subject)), append(wrapped, notNil(w))
	}
	_, err := s.db.pool.Exec(ctx, `INSERT INTO vault_keys (subject, wrapped) SELECT * FROM unnest($1::bytea[], $2::bytea[])
		ON CONFLICT (subject) DO UPDATE SET wrapped = excluded.wrapped`, subjects, wrapped)
	if err != nil {
		return fmt.Errorf("vault keys: %w: %w", err, privguard.ErrUnavailable)
	}
	return nil
}
