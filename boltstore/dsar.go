package boltstore

import (
	"bytes"
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/dsar"
)

// DSARStore keeps data-subject requests in a [DB].
type DSARStore struct{ db *DB }

var (
	_ dsar.Store       = (*DSARStore)(nil)
	_ dsar.ResultStore = (*DSARStore)(nil)
	_ dsar.RangeStore  = (*DSARStore)(nil)
	_ dsar.BatchStore  = (*DSARStore)(nil)
)

// DSAR returns the request engine's view of db.
func (db *DB) DSAR() *DSARStore { return &DSARStore{db: db} }

// PutRequest implements dsar.Store.
func (s *DSARStore) PutRequest(ctx context.Context, id string, body []byte) error {
	return s.db.bolt.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketDSAR).Put([]byte(id), body) })
}

// PutRequests implements dsar.BatchStore: every request in one transaction (one fsync).
func (s *DSARStore) PutRequests(ctx context.Context, ids []string, bodies [][]byte) error {
	if len(ids) != len(bodies) {
		return fmt.Errorf("put requests: %d ids, %d bodies", len(ids), len(bodies))
	}
	return s.db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDSAR)
		for i, id := range ids {
			if err := b.Put([]byte(id), bodies[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// Request implements dsar.Store.
func (s *DSARStore) Request(ctx context.Context, id string) ([]byte, error) {
	var out []byte
	err := s.db.bolt.View(func(tx *bolt.Tx) error {
		b, err := bucket(tx, bucketDSAR)
		if err != nil {
			return err
		}
		v := b.Get([]byte(id))
		if v == nil {
			return fmt.Errorf("request: %w", privguard.ErrNotFound)
		}
		out = bytes.Clone(v)
		return nil
	})
	return out, err
}

// EachRequest implements dsar.Store. It reads the requests in pages of 256 (as
// EachRequestAfter), each page in its own read transaction, so that a register of many
// requests never holds them all, and fn runs outside the store's reads.
func (s *DSARStore) EachRequest(ctx context.Context, fn func(body []byte) error) error {
	return s.EachRequestAfter(ctx, "", fn)
}

// PutResult implements dsar.ResultStore.
func (s *DSARStore) PutResult(ctx context.Context, key string, body []byte) error {
	return s.db.bolt.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketDSARResults).Put([]byte(key), body) })
}

// Result implements dsar.ResultStore.
func (s *DSARStore) Result(ctx context.Context, key string) ([]byte, error) {
	var out []byte
	err := s.db.bolt.View(func(tx *bolt.Tx) error {
		b, err := bucket(tx, bucketDSARResults)
		if err != nil {
			return err
		}
		v := b.Get([]byte(key))
		if v == nil {
			return fmt.Errorf("result: %w", privguard.ErrNotFound)
		}
		out = bytes.Clone(v)
		return nil
	})
	return out, err
}

// DeleteResult implements dsar.ResultStore.
func (s *DSARStore) DeleteResult(ctx context.Context, key string) error {
	return s.db.bolt.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketDSARResults).Delete([]byte(key)) })
}

// EachRequestAfter implements dsar.RangeStore. It reads in batches of 256 so that fn runs
// outside the read transaction.
func (s *DSARStore) EachRequestAfter(ctx context.Context, after string, fn func(body []byte) error) error {
	from := []byte(after)
	for {
		var batch [][]byte
		var last []byte
		err := s.db.bolt.View(func(tx *bolt.Tx) error {
			b, err := bucket(tx, bucketDSAR)
			if err != nil {
				return nil
			}
			c := b.Cursor()
			k, v := c.Seek(from)
			if k != nil && bytes.Equal(k, from) {
				k, v = c.Next()
			}
			for ; k != nil && len(batch) < 256; k, v = c.Next() {
				batch, last = append(batch, bytes.Clone(v)), bytes.Clone(k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, v := range batch {
			if err := fn(v); err != nil {
				return err
			}
		}
		if len(batch) < 256 {
			return nil
		}
		from = last
	}
}
