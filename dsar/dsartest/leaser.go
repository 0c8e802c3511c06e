package dsartest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/dsar"
)

// SharedStore is an in-memory request store that several engines can share, as replicas
// share pgstore's: a [dsar.Store] with the [dsar.Leaser] capability, with the semantics
// dsar/LEASES.md gives PostgreSQL's (it is their reference), and a [dsar.ResultStore]. Every
// call fails with the context's error once its context is done, as a database call
// would, so that a replica "killed" by cancelling its context writes nothing more. Safe
// for concurrent use.
type SharedStore struct {
	mu       sync.Mutex
	requests map[string]*sharedRow
	results  map[string][]byte
}

type sharedRow struct {
	subject    privguard.SubjectID
	version    uint64
	due        time.Time // zero: never
	holder     string
	leaseUntil time.Time
	body       []byte
}

var (
	_ dsar.Store       = (*SharedStore)(nil)
	_ dsar.Leaser      = (*SharedStore)(nil)
	_ dsar.RangeStore  = (*SharedStore)(nil)
	_ dsar.ResultStore = (*SharedStore)(nil)
)

// NewSharedStore returns an empty store.
func NewSharedStore() *SharedStore {
	return &SharedStore{requests: map[string]*sharedRow{}, results: map[string][]byte{}}
}

// PutRequest implements dsar.Store: an unconditional write (the engine does not use it
// on a Leaser; tests may, to seed). The request's subject, version and due time are not
// known from the body, so they are left as they were.
func (s *SharedStore) PutRequest(ctx context.Context, id string, body []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	row := s.requests[id]
	if row == nil {
		row = &sharedRow{}
		s.requests[id] = row
	}
	row.body = bytes.Clone(body)
	return nil
}

// Request implements dsar.Store.
func (s *SharedStore) Request(ctx context.Context, id string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	row := s.requests[id]
	if row == nil {
		return nil, fmt.Errorf("request: %w", privguard.ErrNotFound)
	}
	return bytes.Clone(row.body), nil
}

// EachRequest implements dsar.Store, in id order.
func (s *SharedStore) EachRequest(ctx context.Context, fn func(body []byte) error) error {
	return s.EachRequestAfter(ctx, "", fn)
}

// EachRequestAfter implements dsar.RangeStore.
func (s *SharedStore) EachRequestAfter(ctx context.Context, after string, fn func(body []byte) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	var bodies [][]byte
	for _, id := range s.sortedIDs() {
		if id > after {
			bodies = append(bodies, bytes.Clone(s.requests[id].body))
		}
	}
	s.mu.Unlock()
	for _, b := range bodies {
		if err := fn(b); err != nil {
			if errors.Is(err, dsar.ErrStop) {
				return nil
			}
			return err
		}
	}
	return nil
}

func (s *SharedStore) sortedIDs() []string {
	ids := make([]string, 0, len(s.requests))
	for id := range s.requests {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Lease implements dsar.Leaser.
func (s *SharedStore) Lease(ctx context.Context, holder string, now time.Time, ttl time.Duration, limit int) ([]dsar.Leased, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id, row := range s.requests {
		if !row.due.IsZero() && !row.due.After(now) && !row.leaseUntil.After(now) {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b string) int {
		if c := s.requests[a].due.Compare(s.requests[b].due); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	var out []dsar.Leased
	for _, id := range ids[:min(len(ids), max(limit, 0))] {
		row := s.requests[id]
		row.holder, row.leaseUntil = holder, now.Add(ttl)
		out = append(out, dsar.Leased{ID: id, Body: bytes.Clone(row.body)})
	}
	return out, nil
}

// held reports whether holder holds row's lease at now. s.mu must be held.
func held(row *sharedRow, holder string, now time.Time) bool {
	return row.holder == holder && row.leaseUntil.After(now)
}

// Renew implements dsar.Leaser.
func (s *SharedStore) Renew(ctx context.Context, holder string, ids []string, now time.Time, ttl time.Duration) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, id := range ids {
		if row := s.requests[id]; row != nil && held(row, holder, now) {
			row.leaseUntil = now.Add(ttl)
			out = append(out, id)
		}
	}
	return out, nil
}

// Release implements dsar.Leaser.
func (s *SharedStore) Release(ctx context.Context, holder string, ids []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if row := s.requests[id]; row != nil && row.holder == holder {
			row.holder, row.leaseUntil = "", time.Time{}
		}
	}
	return nil
}

// PutRequestLeased implements dsar.Leaser.
func (s *SharedStore) PutRequestLeased(ctx context.Context, holder string, now time.Time, w dsar.Write) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.putLeased(holder, now, w)
}

// PutRequestsLeased implements dsar.Leaser.
func (s *SharedStore) PutRequestsLeased(ctx context.Context, holder string, now time.Time, ws []dsar.Write) ([]error, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(ws))
	for _, w := range ws {
		if seen[w.ID] {
			return nil, fmt.Errorf("put requests: %s written twice: %w", w.ID, privguard.ErrInvalid)
		}
		seen[w.ID] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]error, len(ws))
	for i, w := range ws {
		out[i] = s.putLeased(holder, now, w)
	}
	return out, nil
}

// putLeased is PutRequestLeased's write. s.mu must be held.
func (s *SharedStore) putLeased(holder string, now time.Time, w dsar.Write) error {
	row := s.requests[w.ID]
	if row == nil || !held(row, holder, now) {
		return fmt.Errorf("put request %s: %w", w.ID, dsar.ErrLeaseLost)
	}
	if row.version != w.Version-1 {
		return fmt.Errorf("put request %s: version %d stored, %d written: %w", w.ID, row.version, w.Version, dsar.ErrVersion)
	}
	row.subject, row.version, row.due, row.body = w.Subject, w.Version, w.Due, bytes.Clone(w.Body)
	return nil
}

// PutRequestIf implements dsar.Leaser.
func (s *SharedStore) PutRequestIf(ctx context.Context, w dsar.Write) error {
	return s.PutRequestsIf(ctx, []dsar.Write{w})
}

// PutRequestsIf implements dsar.Leaser.
func (s *SharedStore) PutRequestsIf(ctx context.Context, ws []dsar.Write) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range ws {
		if err := s.check(w); err != nil {
			return err
		}
	}
	for _, w := range ws {
		row := s.requests[w.ID]
		if row == nil {
			row = &sharedRow{}
			s.requests[w.ID] = row
		}
		row.subject, row.version, row.due, row.body = w.Subject, w.Version, w.Due, bytes.Clone(w.Body)
	}
	return nil
}

// check returns PutRequestIf's error for w, if any. s.mu must be held.
func (s *SharedStore) check(w dsar.Write) error {
	row := s.requests[w.ID]
	var stored uint64
	if row != nil {
		stored = row.version
	}
	if stored != w.Version-1 || (row == nil) != (w.Version == 1) {
		return fmt.Errorf("put request %s: version %d stored, %d written: %w", w.ID, stored, w.Version, dsar.ErrVersion)
	}
	return nil
}

// SubjectRequests implements dsar.Leaser.
func (s *SharedStore) SubjectRequests(ctx context.Context, subjects []privguard.SubjectID) ([][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [][]byte
	for _, id := range s.sortedIDs() {
		if row := s.requests[id]; slices.Contains(subjects, row.subject) {
			out = append(out, bytes.Clone(row.body))
		}
	}
	return out, nil
}

// Lapse makes the lease of request id lapse now, as if its holder had stopped renewing
// it and the database had given it away: for tests of a lost lease.
func (s *SharedStore) Lapse(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if row := s.requests[id]; row != nil {
		row.leaseUntil = time.Time{}
	}
}

// Due returns request id's due time and lease as stored (zero times: none), for tests.
func (s *SharedStore) Due(id string) (due time.Time, holder string, leaseUntil time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if row := s.requests[id]; row != nil {
		return row.due, row.holder, row.leaseUntil
	}
	return time.Time{}, "", time.Time{}
}

// PutResult implements dsar.ResultStore.
func (s *SharedStore) PutResult(ctx context.Context, key string, body []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.results[key] = bytes.Clone(body)
	return nil
}

// Result implements dsar.ResultStore.
func (s *SharedStore) Result(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.results[key]
	if !ok {
		return nil, fmt.Errorf("result: %w", privguard.ErrNotFound)
	}
	return bytes.Clone(b), nil
}

// DeleteResult implements dsar.ResultStore.
func (s *SharedStore) DeleteResult(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.results, key)
	return nil
}
