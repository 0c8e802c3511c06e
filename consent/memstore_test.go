package consent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/privguard/privguard"
)

// memStore is a Store in memory for the tests of this package, which cannot import
// boltstore (through consenttest) without an import cycle.
type memStore struct {
	mu       sync.Mutex
	records  [][]byte // seq-1 -> hash ‖ body
	ids      map[string]uint64
	subjects map[privguard.SubjectID][]uint64
	idem     map[string][]byte // seq ‖ fingerprint
	notices  map[string][]byte
	supp     map[[32]byte]uint64
	secrets  map[string][]byte
	snapshot []byte // nil: none
	reads    int    // Record calls
}

func newMemStore() *memStore {
	return &memStore{ids: map[string]uint64{}, subjects: map[privguard.SubjectID][]uint64{}, idem: map[string][]byte{},
		notices: map[string][]byte{}, supp: map[[32]byte]uint64{}, secrets: map[string][]byte{}}
}

func (s *memStore) Commit(ctx context.Context, b *Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range b.Records {
		if r.Seq != uint64(len(s.records))+1 {
			return fmt.Errorf("memStore: record %d after %d", r.Seq, len(s.records))
		}
		s.records = append(s.records, append(slices.Clone(r.Hash[:]), r.Body...))
		s.ids[r.ID] = r.Seq
		s.subjects[r.Subject] = append(s.subjects[r.Subject], r.Seq)
		if r.IdempotencyKey != "" {
			s.idem[r.IdempotencyKey] = append(fmt.Appendf(nil, "%020d", r.Seq), r.Fingerprint...)
		}
	}
	for _, n := range b.Notices {
		s.notices[n.Key] = slices.Clone(n.Body)
	}
	for _, x := range b.Suppressions {
		s.supp[x.Key] = x.Seq
	}
	return nil
}

func (s *memStore) ScanRecords(ctx context.Context, from uint64, fn func(seq uint64, hash, body []byte) error) error {
	s.mu.Lock()
	recs := s.records
	s.mu.Unlock()
	for i := from; i <= uint64(len(recs)); i++ {
		v := recs[i-1]
		if err := fn(i, v[:32], v[32:]); err != nil {
			return err
		}
	}
	return nil
}

func (s *memStore) Record(ctx context.Context, seq uint64) (hash, body []byte, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	if seq == 0 || seq > uint64(len(s.records)) {
		return nil, nil, fmt.Errorf("record %d: %w", seq, privguard.ErrNotFound)
	}
	v := s.records[seq-1]
	return slices.Clone(v[:32]), slices.Clone(v[32:]), nil
}

func (s *memStore) SeqByID(ctx context.Context, id string) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq, ok := s.ids[id]; ok {
		return seq, nil
	}
	return 0, fmt.Errorf("record %s: %w", id, privguard.ErrNotFound)
}

func (s *memStore) SubjectSeqs(ctx context.Context, subject privguard.SubjectID) ([]uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.subjects[subject]), nil
}

func (s *memStore) Idempotent(ctx context.Context, key string) (uint64, []byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.idem[key]
	if !ok {
		return 0, nil, false, nil
	}
	var seq uint64
	fmt.Sscanf(string(v[:20]), "%d", &seq)
	return seq, slices.Clone(v[20:]), true, nil
}

func (s *memStore) ScanNotices(ctx context.Context, fn func(body []byte) error) error {
	s.mu.Lock()
	keys := make([]string, 0, len(s.notices))
	for k := range s.notices {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	bodies := make([][]byte, len(keys))
	for i, k := range keys {
		bodies[i] = s.notices[k]
	}
	s.mu.Unlock()
	for _, b := range bodies {
		if err := fn(b); err != nil {
			return err
		}
	}
	return nil
}

func (s *memStore) Head(ctx context.Context) (uint64, []byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.records) == 0 {
		return 0, nil, nil
	}
	return uint64(len(s.records)), slices.Clone(s.records[len(s.records)-1][:32]), nil
}

func (s *memStore) Suppression(ctx context.Context, key [32]byte) (uint64, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seq, ok := s.supp[key]
	return seq, ok, nil
}

func (s *memStore) Secret(ctx context.Context, name string, create func() ([]byte, error)) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.secrets[name]; ok {
		return slices.Clone(v), nil
	}
	v, err := create()
	if err != nil {
		return nil, err
	}
	s.secrets[name] = slices.Clone(v)
	return v, nil
}

var _ Store = (*memStore)(nil)

func (s *memStore) WriteSnapshot(ctx context.Context, write func(w io.Writer) error) error {
	var b bytes.Buffer
	if err := write(&b); err != nil {
		return err
	}
	s.mu.Lock()
	s.snapshot = b.Bytes()
	s.mu.Unlock()
	return nil
}

func (s *memStore) ReadSnapshot(ctx context.Context, read func(r io.Reader, size int64) error) error {
	s.mu.Lock()
	b := s.snapshot
	s.mu.Unlock()
	if b == nil {
		return fmt.Errorf("snapshot: %w", privguard.ErrNotFound)
	}
	return read(bytes.NewReader(b), int64(len(b)))
}

var _ Snapshotter = (*memStore)(nil)
