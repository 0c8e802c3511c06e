package boltstore

import (
	"bytes"
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/identity"
)

// IdentityStore keeps identity links in a [DB]: bucket identity.links maps
// "<type>\x00<hash>" to "<subject>\x00<body>", and identity.subjects indexes
// "<subject>\x00<type>\x00<hash>" (empty values). The bodies hold no clear identifier.
type IdentityStore struct{ db *DB }

var _ identity.Store = (*IdentityStore)(nil)

// Identity returns the identity registry's view of db.
func (db *DB) Identity() *IdentityStore { return &IdentityStore{db: db} }

func linkKey(t identity.Type, hash string) []byte { return []byte(string(t) + "\x00" + hash) }

func subjectLinkKey(subject privguard.SubjectID, t identity.Type, hash string) []byte {
	return []byte(string(subject) + "\x00" + string(t) + "\x00" + hash)
}

// PutLink implements identity.Store.
func (s *IdentityStore) PutLink(ctx context.Context, subject privguard.SubjectID, t identity.Type, hash string, body []byte) error {
	if err := subject.Validate(); err != nil {
		return err
	}
	return s.db.bolt.Update(func(tx *bolt.Tx) error {
		links, subjects := tx.Bucket(bucketIdentityLinks), tx.Bucket(bucketIdentitySubjects)
		k := linkKey(t, hash)
		if v := links.Get(k); v != nil {
			owner, _, _ := bytes.Cut(v, []byte{0})
			if string(owner) != string(subject) {
				return fmt.Errorf("identity link: linked to another subject: %w", privguard.ErrConflict)
			}
		}
		if err := links.Put(k, append(append([]byte(subject), 0), body...)); err != nil {
			return err
		}
		return subjects.Put(subjectLinkKey(subject, t, hash), nil)
	})
}

// Link implements identity.Store.
func (s *IdentityStore) Link(ctx context.Context, t identity.Type, hash string) (privguard.SubjectID, []byte, error) {
	var (
		subject privguard.SubjectID
		body    []byte
	)
	err := s.db.bolt.View(func(tx *bolt.Tx) error {
		b, err := bucket(tx, bucketIdentityLinks)
		if err != nil {
			return err
		}
		v := b.Get(linkKey(t, hash))
		if v == nil {
			return fmt.Errorf("identity link: %w", privguard.ErrNotFound)
		}
		owner, rest, _ := bytes.Cut(v, []byte{0})
		subject, body = privguard.SubjectID(owner), bytes.Clone(rest)
		return nil
	})
	return subject, body, err
}

// SubjectLinks implements identity.Store.
func (s *IdentityStore) SubjectLinks(ctx context.Context, subject privguard.SubjectID) ([][]byte, error) {
	out := [][]byte{}
	err := s.db.bolt.View(func(tx *bolt.Tx) error {
		subjects, err := bucket(tx, bucketIdentitySubjects)
		if err != nil {
			return err
		}
		links := tx.Bucket(bucketIdentityLinks)
		prefix := append([]byte(subject), 0)
		c := subjects.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			v := links.Get(k[len(prefix):])
			if v == nil {
				continue
			}
			_, body, _ := bytes.Cut(v, []byte{0})
			out = append(out, bytes.Clone(body))
		}
		return nil
	})
	return out, err
}

// DeleteLink implements identity.Store.
func (s *IdentityStore) DeleteLink(ctx context.Context, subject privguard.SubjectID, t identity.Type, hash string) error {
	return s.db.bolt.Update(func(tx *bolt.Tx) error {
		links, subjects := tx.Bucket(bucketIdentityLinks), tx.Bucket(bucketIdentitySubjects)
		k := linkKey(t, hash)
		v := links.Get(k)
		if owner, _, _ := bytes.Cut(v, []byte{0}); v == nil || string(owner) != string(subject) {
			return fmt.Errorf("identity link: %w", privguard.ErrNotFound)
		}
		if err := links.Delete(k); err != nil {
			return err
		}
		return subjects.Delete(subjectLinkKey(subject, t, hash))
	})
}

// DeleteSubjectLinks implements identity.Store.
func (s *IdentityStore) DeleteSubjectLinks(ctx context.Context, subject privguard.SubjectID) (int, error) {
	n := 0
	err := s.db.bolt.Update(func(tx *bolt.Tx) error {
		links, subjects := tx.Bucket(bucketIdentityLinks), tx.Bucket(bucketIdentitySubjects)
		prefix := append([]byte(subject), 0)
		var keys [][]byte
		c := subjects.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			keys = append(keys, bytes.Clone(k))
		}
		for _, k := range keys {
			if err := links.Delete(k[len(prefix):]); err != nil {
				return err
			}
			if err := subjects.Delete(k); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
