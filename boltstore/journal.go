package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/journal"
)

// JournalStore keeps the journal package's logs and sets in a [DB]: a bucket per log
// under "journal", keyed by the 8-byte big-endian sequence number; a bucket per set under
// "sets", keyed by member, and each set's size under "sets.size".
type JournalStore struct{ db *DB }

var (
	_ journal.Store    = (*JournalStore)(nil)
	_ journal.SetStore = (*JournalStore)(nil)
)

// Journal returns the journal's view of db.
func (db *DB) Journal() *JournalStore { return &JournalStore{db: db} }

// An entry's stored value: the time (Unix microseconds, 8 bytes), the previous hash (0 or
// 32 bytes, after its length byte), the entry's hash (32 bytes), the body.
func encodeEntry(e *journal.Entry) ([]byte, error) {
	prev, err := hex.DecodeString(e.Prev)
	if err != nil || (len(prev) != 0 && len(prev) != 32) {
		return nil, fmt.Errorf("journal %s: entry %d: bad previous hash: %w", e.Log, e.Seq, privguard.ErrInvalid)
	}
	hash, err := hex.DecodeString(e.Hash)
	if err != nil || len(hash) != 32 {
		return nil, fmt.Errorf("journal %s: entry %d: bad hash: %w", e.Log, e.Seq, privguard.ErrInvalid)
	}
	v := make([]byte, 0, 8+1+len(prev)+32+len(e.Body))
	v = binary.BigEndian.AppendUint64(v, uint64(e.Time.UnixMicro()))
	v = append(v, byte(len(prev)))
	v = append(v, prev...)
	v = append(v, hash...)
	return append(v, e.Body...), nil
}

func decodeEntry(log string, k, v []byte) (journal.Entry, error) {
	bad := func() (journal.Entry, error) {
		return journal.Entry{}, fmt.Errorf("journal %s: a stored entry is malformed", log)
	}
	if len(k) != 8 || len(v) < 9 {
		return bad()
	}
	e := journal.Entry{Log: log, Seq: binary.BigEndian.Uint64(k)}
	e.Time = time.UnixMicro(int64(binary.BigEndian.Uint64(v[:8]))).UTC()
	n := int(v[8])
	if n != 0 && n != 32 || len(v) < 9+n+32 {
		return bad()
	}
	e.Prev = hex.EncodeToString(v[9 : 9+n])
	e.Hash = hex.EncodeToString(v[9+n : 9+n+32])
	e.Body = bytes.Clone(v[9+n+32:])
	return e, nil
}

// AppendJournal implements journal.Store.
func (s *JournalStore) AppendJournal(ctx context.Context, log string, entries []journal.Entry) error {
	if err := journal.ValidName(log); err != nil {
		return fmt.Errorf("%w: %w", err, privguard.ErrInvalid)
	}
	if len(entries) == 0 {
		return nil
	}
	return s.db.bolt.Update(func(tx *bolt.Tx) error {
		root, err := bucket(tx, bucketJournal)
		if err != nil {
			return err
		}
		b, err := root.CreateBucketIfNotExists([]byte(log))
		if err != nil {
			return err
		}
		head, err := lastEntry(log, b)
		if err != nil {
			return err
		}
		if entries[0].Seq != head.Seq+1 || entries[0].Prev != head.Hash {
			return journal.ErrHeadMoved
		}
		for i := range entries {
			v, err := encodeEntry(&entries[i])
			if err != nil {
				return err
			}
			if i > 0 && (entries[i].Seq != entries[i-1].Seq+1 || entries[i].Prev != entries[i-1].Hash) {
				return fmt.Errorf("journal %s: entries do not follow each other: %w", log, privguard.ErrInvalid)
			}
			if err := b.Put(seqKey(entries[i].Seq), v); err != nil {
				return err
			}
		}
		return nil
	})
}

func lastEntry(log string, b *bolt.Bucket) (journal.Entry, error) {
	if b == nil {
		return journal.Entry{}, nil
	}
	k, v := b.Cursor().Last()
	if k == nil {
		return journal.Entry{}, nil
	}
	return decodeEntry(log, k, v)
}

// JournalHead implements journal.Store.
func (s *JournalStore) JournalHead(ctx context.Context, log string) (journal.Entry, error) {
	var head journal.Entry
	err := s.db.bolt.View(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketJournal)
		if root == nil {
			return nil // a read-only file that was never written
		}
		var err error
		head, err = lastEntry(log, root.Bucket([]byte(log)))
		return err
	})
	return head, err
}

// journalPage bounds the entries JournalEntries reads in one read transaction, so that a
// long export does not hold one open (which would keep the file from reusing pages).
const journalPage = 1024

// JournalEntries implements journal.Store.
func (s *JournalStore) JournalEntries(ctx context.Context, log string, from uint64, fn func(journal.Entry) error) error {
	if from == 0 {
		from = 1
	}
	for {
		var page []journal.Entry
		err := s.db.bolt.View(func(tx *bolt.Tx) error {
			root := tx.Bucket(bucketJournal)
			if root == nil {
				return nil
			}
			b := root.Bucket([]byte(log))
			if b == nil {
				return nil
			}
			c := b.Cursor()
			for k, v := c.Seek(seqKey(from)); k != nil && len(page) < journalPage; k, v = c.Next() {
				e, err := decodeEntry(log, k, v)
				if err != nil {
					return err
				}
				page = append(page, e)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, e := range page {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := fn(e); err != nil {
				return err
			}
		}
		if len(page) < journalPage {
			return nil
		}
		from = page[len(page)-1].Seq + 1
	}
}

// present is a set member's value (bbolt reads an empty value as absent).
var present = []byte{1}

// AddToSet implements journal.SetStore.
func (s *JournalStore) AddToSet(ctx context.Context, set string, members [][]byte, limit int64) (int, int64, error) {
	if err := journal.ValidName(set); err != nil {
		return 0, 0, fmt.Errorf("%w: %w", err, privguard.ErrInvalid)
	}
	for _, m := range members {
		if len(m) == 0 || len(m) > 64 {
			return 0, 0, fmt.Errorf("set %s: a member of %d bytes (1 to 64): %w", set, len(m), privguard.ErrInvalid)
		}
	}
	var added int
	var size int64
	err := s.db.bolt.Update(func(tx *bolt.Tx) error {
		root, err := bucket(tx, bucketSets)
		if err != nil {
			return err
		}
		b, err := root.CreateBucketIfNotExists([]byte(set))
		if err != nil {
			return err
		}
		fresh := map[string]bool{}
		for _, m := range members {
			if b.Get(m) == nil {
				fresh[string(m)] = true
			}
		}
		added = len(fresh)
		sizes := tx.Bucket(bucketSetSizes)
		size = int64(decodeCount(sizes.Get([]byte(set))))
		if limit > 0 && size+int64(added) > limit {
			return journal.ErrSetLimit
		}
		for m := range fresh {
			if err := b.Put([]byte(m), present); err != nil {
				return err
			}
		}
		size += int64(added)
		return sizes.Put([]byte(set), binary.BigEndian.AppendUint64(nil, uint64(size)))
	})
	if errors.Is(err, journal.ErrSetLimit) {
		return added, size, fmt.Errorf("set %s: %d more would pass %d: %w", set, added, limit, err)
	}
	if err != nil {
		return 0, 0, err
	}
	return added, size, nil
}

// SetSize implements journal.SetStore.
func (s *JournalStore) SetSize(ctx context.Context, set string) (int64, error) {
	var size int64
	err := s.db.bolt.View(func(tx *bolt.Tx) error {
		sizes, err := bucket(tx, bucketSetSizes)
		if err != nil {
			if errors.Is(err, privguard.ErrNotFound) {
				return nil // a read-only file that was never written
			}
			return err
		}
		size = int64(decodeCount(sizes.Get([]byte(set))))
		return nil
	})
	return size, err
}

func decodeCount(v []byte) uint64 {
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}
