package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
)

// ConsentStore is the consent ledger's storage in a [DB].
type ConsentStore struct{ db *DB }

var _ consent.Store = (*ConsentStore)(nil)

// Consent returns the ledger's view of db.
func (db *DB) Consent() *ConsentStore { return &ConsentStore{db: db} }

var keyHead = []byte("consent.head")

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// subjectKey is subject, 0x00, seq: subject ids never contain 0x00.
func subjectKey(subject privguard.SubjectID, seq uint64) []byte {
	k := make([]byte, 0, len(subject)+9)
	k = append(k, subject...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, seq)
}

// Commit implements consent.Store.
func (s *ConsentStore) Commit(ctx context.Context, b *consent.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := s.db.bolt.Update(func(tx *bolt.Tx) error {
		recs, ids, subs, idem := tx.Bucket(bucketRecords), tx.Bucket(bucketIDs), tx.Bucket(bucketSubjects), tx.Bucket(bucketIdem)
		// Records are appended in key order and ids (UUIDv7) are issued in time order: full
		// pages halve the file and the pages start-up and verify read. FillPercent is not
		// persisted; it applies to the pages this transaction splits.
		recs.FillPercent, ids.FillPercent = 1.0, 0.95
		var head []byte
		for i := range b.Records {
			r := &b.Records[i]
			k := seqKey(r.Seq)
			v := make([]byte, 0, len(r.Hash)+len(r.Body))
			v = append(append(v, r.Hash[:]...), r.Body...)
			if err := recs.Put(k, v); err != nil {
				return err
			}
			if err := ids.Put([]byte(r.ID), k); err != nil {
				return err
			}
			if err := subs.Put(subjectKey(r.Subject, r.Seq), nil); err != nil {
				return err
			}
			if r.IdempotencyKey != "" {
				if err := idem.Put([]byte(r.IdempotencyKey), append(k, r.Fingerprint...)); err != nil {
					return err
				}
			}
			head = append(k, r.Hash[:]...)
		}
		sup := tx.Bucket(bucketSuppress)
		for _, e := range b.Suppressions {
			if sup.Get(e.Key[:]) != nil {
				continue // the first suppression is kept
			}
			if err := sup.Put(e.Key[:], seqKey(e.Seq)); err != nil {
				return err
			}
		}
		notices := tx.Bucket(bucketNotices)
		for _, n := range b.Notices {
			if err := notices.Put([]byte(n.Key), n.Body); err != nil {
				return err
			}
		}
		if head != nil {
			return tx.Bucket(bucketMeta).Put(keyHead, head)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("commit %d records: %w: %w", len(b.Records), err, privguard.ErrUnavailable)
	}
	return nil
}

// ScanRecords implements consent.Store.
func (s *ConsentStore) ScanRecords(ctx context.Context, from uint64, fn func(seq uint64, hash, body []byte) error) error {
	return s.db.bolt.View(func(tx *bolt.Tx) error {
		recs, err := bucket(tx, bucketRecords)
		if err != nil {
			return nil // nothing written yet
		}
		c := recs.Cursor()
		n := 0
		for k, v := c.Seek(seqKey(from)); k != nil; k, v = c.Next() {
			if n++; n%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if len(k) != 8 || len(v) < 32 {
				return fmt.Errorf("record key %x: stored value of %d bytes is too short", k, len(v))
			}
			if err := fn(binary.BigEndian.Uint64(k), v[:32], v[32:]); err != nil {
				return err
			}
		}
		return nil
	})
}

// Record implements consent.Store.
func (s *ConsentStore) Record(ctx context.Context, seq uint64) (hash, body []byte, err error) {
	err = s.db.bolt.View(func(tx *bolt.Tx) error {
		recs, err := bucket(tx, bucketRecords)
		if err != nil {
			return err
		}
		v := recs.Get(seqKey(seq))
		if v == nil {
			return fmt.Errorf("record %d: %w", seq, privguard.ErrNotFound)
		}
		if len(v) < 32 {
			return fmt.Errorf("record %d: stored value too short", seq)
		}
		hash, body = bytes.Clone(v[:32]), bytes.Clone(v[32:])
		return nil
	})
	return hash, body, err
}

// SeqByID implements consent.Store.
func (s *ConsentStore) SeqByID(ctx context.Context, id string) (uint64, error) {
	var seq uint64
	err := s.db.bolt.View(func(tx *bolt.Tx) error {
		ids, err := bucket(tx, bucketIDs)
		if err != nil {
			return err
		}
		v := ids.Get([]byte(id))
		if len(v) != 8 {
			return fmt.Errorf("record id: %w", privguard.ErrNotFound)
		}
		seq = binary.BigEndian.Uint64(v)
		return nil
	})
	return seq, err
}

// SubjectSeqs implements consent.Store.
func (s *ConsentStore) SubjectSeqs(ctx context.Context, subject privguard.SubjectID) ([]uint64, error) {
	var seqs []uint64
	prefix := append([]byte(subject), 0)
	err := s.db.bolt.View(func(tx *bolt.Tx) error {
		subs, err := bucket(tx, bucketSubjects)
		if err != nil {
			return nil
		}
		c := subs.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			if len(k) == len(prefix)+8 {
				seqs = append(seqs, binary.BigEndian.Uint64(k[len(prefix):]))
			}
		}
		return nil
	})
	return seqs, err
}

// Idempotent implements consent.Store.
func (s *ConsentStore) Idempotent(ctx context.Context, key string) (seq uint64, fingerprint []byte, ok bool, err error) {
	err = s.db.bolt.View(func(tx *bolt.Tx) error {
		idem, err := bucket(tx, bucketIdem)
		if err != nil {
			return nil
		}
		v := idem.Get([]byte(key))
		if len(v) < 8 {
			return nil
		}
		seq, fingerprint, ok = binary.BigEndian.Uint64(v), bytes.Clone(v[8:]), true
		return nil
	})
	return seq, fingerprint, ok, err
}

// ScanNotices implements consent.Store.
func (s *ConsentStore) ScanNotices(ctx context.Context, fn func(body []byte) error) error {
	return s.db.bolt.View(func(tx *bolt.Tx) error {
		notices, err := bucket(tx, bucketNotices)
		if err != nil {
			return nil
		}
		return notices.ForEach(func(_, v []byte) error { return fn(v) })
	})
}

// Suppression implements consent.Store.
func (s *ConsentStore) Suppression(ctx context.Context, key [32]byte) (seq uint64, ok bool, err error) {
	err = s.db.bolt.View(func(tx *bolt.Tx) error {
		sup, err := bucket(tx, bucketSuppress)
		if err != nil {
			return nil
		}
		if v := sup.Get(key[:]); len(v) == 8 {
			seq, ok = binary.BigEndian.Uint64(v), true
		}
		return nil
	})
	return seq, ok, err
}

// Head implements consent.Store.
func (s *ConsentStore) Head(ctx context.Context) (seq uint64, hash []byte, err error) {
	err = s.db.bolt.View(func(tx *bolt.Tx) error {
		meta, err := bucket(tx, bucketMeta)
		if err != nil {
			return nil
		}
		v := meta.Get(keyHead)
		if v == nil {
			return nil
		}
		if len(v) != 40 {
			return fmt.Errorf("ledger head of %d bytes is corrupt", len(v))
		}
		seq, hash = binary.BigEndian.Uint64(v), bytes.Clone(v[8:])
		return nil
	})
	return seq, hash, err
}

// Secret implements consent.Store. Secrets live in the data file (mode 0600): protect the
// file as you would the keys.
func (s *ConsentStore) Secret(ctx context.Context, name string, create func() ([]byte, error)) ([]byte, error) {
	key := []byte("secret." + name)
	var out []byte
	err := s.db.bolt.View(func(tx *bolt.Tx) error {
		if meta := tx.Bucket(bucketMeta); meta != nil {
			out = bytes.Clone(meta.Get(key))
		}
		return nil
	})
	if err != nil || out != nil {
		return out, err
	}
	err = s.db.bolt.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return errors.New("data file is read-only and has no secret " + name)
		}
		if v := meta.Get(key); v != nil {
			out = bytes.Clone(v)
			return nil
		}
		v, err := create()
		if err != nil {
			return err
		}
		out = v
		return meta.Put(key, v)
	})
	return out, err
}

// PutSecret replaces the named secret durably.
func (s *ConsentStore) PutSecret(ctx context.Context, name string, value []byte) error {
	return s.db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put([]byte("secret."+name), value)
	})
}
