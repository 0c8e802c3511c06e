package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/vault"
)

// VaultStore is the vault's storage in a [DB]: wrapped subject keysets and shred
// tombstones.
type VaultStore struct{ db *DB }

var (
	_ vault.Store       = (*VaultStore)(nil)
	_ vault.SecretStore = (*VaultStore)(nil)
)

// Vault returns the vault's view of db.
func (db *DB) Vault() *VaultStore { return &VaultStore{db: db} }

// WrappedKey implements vault.Store.
func (s *VaultStore) WrappedKey(ctx context.Context, subject privguard.SubjectID) ([]byte, error) {
	var out []byte
	err := s.db.bolt.View(func(tx *bolt.Tx) error {
		b, err := bucket(tx, bucketVaultKeys)
		if err != nil {
			return err
		}
		v := b.Get([]byte(subject))
		if v == nil {
			return fmt.Errorf("vault key: %w", privguard.ErrNotFound)
		}
		out = bytes.Clone(v)
		return nil
	})
	return out, err
}

// PutWrappedKey implements vault.Store.
func (s *VaultStore) PutWrappedKey(ctx context.Context, subject privguard.SubjectID, wrapped []byte, replace bool) error {
	return s.db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketVaultKeys)
		if !replace && b.Get([]byte(subject)) != nil {
			return fmt.Errorf("vault key exists: %w", privguard.ErrConflict)
		}
		return b.Put([]byte(subject), wrapped)
	})
}

// Shred implements vault.Store.
func (s *VaultStore) Shred(ctx context.Context, subject privguard.SubjectID, tombstone [32]byte) error {
	return s.db.bolt.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketVaultKeys).Delete([]byte(subject)); err != nil {
			return err
		}
		return tx.Bucket(bucketVaultTombstones).Put(tombstone[:], binary.BigEndian.AppendUint64(nil, uint64(time.Now().Unix())))
	})
}

// ShredAll implements vault.BatchShredder.
func (s *VaultStore) ShredAll(ctx context.Context, tombstones map[privguard.SubjectID][32]byte) error {
	at := binary.BigEndian.AppendUint64(nil, uint64(time.Now().Unix()))
	return s.db.bolt.Update(func(tx *bolt.Tx) error {
		keys, graves := tx.Bucket(bucketVaultKeys), tx.Bucket(bucketVaultTombstones)
		for subject, t := range tombstones {
			if err := keys.Delete([]byte(subject)); err != nil {
				return err
			}
			if err := graves.Put(t[:], at); err != nil {
				return err
			}
		}
		return nil
	})
}

// Shredded implements vault.Store.
func (s *VaultStore) Shredded(ctx context.Context, tombstone [32]byte) (bool, error) {
	var ok bool
	err := s.db.bolt.View(func(tx *bolt.Tx) error {
		b, err := bucket(tx, bucketVaultTombstones)
		if err != nil {
			return nil
		}
		ok = b.Get(tombstone[:]) != nil
		return nil
	})
	return ok, err
}

// EachWrappedKey implements vault.Store. The bytes are copied before fn sees them.
func (s *VaultStore) EachWrappedKey(ctx context.Context, fn func(subject privguard.SubjectID, wrapped []byte) error) error {
	type kv struct {
		k privguard.SubjectID
		v []byte
	}
	var all []kv
	err := s.db.bolt.View(func(tx *bolt.Tx) error {
		b, err := bucket(tx, bucketVaultKeys)
		if err != nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			all = append(all, kv{privguard.SubjectID(k), bytes.Clone(v)})
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, e := range all {
		if err := fn(e.k, e.v); err != nil {
			return err
		}
	}
	return nil
}

// Secret implements vault.SecretStore (in the same meta bucket as the ledger's secrets).
func (s *VaultStore) Secret(ctx context.Context, name string, create func() ([]byte, error)) ([]byte, error) {
	return s.db.Consent().Secret(ctx, name, create)
}

// PutSecret implements vault.SecretStore.
func (s *VaultStore) PutSecret(ctx context.Context, name string, value []byte) error {
	return s.db.Consent().PutSecret(ctx, name, value)
}

// PutWrappedKeys implements vault.Store.
func (s *VaultStore) PutWrappedKeys(ctx context.Context, keys map[privguard.SubjectID][]byte) error {
	return s.db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketVaultKeys)
		for subject, wrapped := range keys {
			if err := b.Put([]byte(subject), wrapped); err != nil {
				return err
			}
		}
		return nil
	})
}

var _ vault.BatchShredder = (*VaultStore)(nil)
