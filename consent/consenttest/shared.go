package consenttest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
)

// Shared is a consent.SharedStore in memory: several ledgers, as several processes, each
// opened on a View of it, share one chain. Its Commit checks the head as a shared store
// must. Down makes every call fail (an outage), and CommitThenFail a commit that succeeds
// but reports an error (a connection lost after COMMIT was sent).
type Shared struct {
	cmu      sync.Mutex // held by a commit, and by CommitLocked throughout
	mu       sync.Mutex
	records  []sharedRecord
	ids      map[string]uint64
	subjects map[privguard.SubjectID][]uint64
	idem     map[string]sharedIdem
	notices  map[string][]byte
	log      [][]byte // notices in commit order; cursor = index+1
	supp     map[[32]byte]uint64
	secrets  map[string][]byte
	snapshot []byte
	views    []chan struct{}

	down           bool
	commitThenFail int  // commits left that succeed but report an error
	failAfter      bool // and then make reads fail
	failReads      bool
}

type sharedRecord struct {
	hash [32]byte
	body []byte
}

type sharedIdem struct {
	seq uint64
	fp  []byte
}

// NewShared returns an empty shared store.
func NewShared() *Shared {
	return &Shared{ids: map[string]uint64{}, subjects: map[privguard.SubjectID][]uint64{}, idem: map[string]sharedIdem{},
		notices: map[string][]byte{}, supp: map[[32]byte]uint64{}, secrets: map[string][]byte{}}
}

// View returns the store as one process sees it: its own change notifications.
func (s *Shared) View() *View {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan struct{}, 1)
	s.views = append(s.views, ch)
	return &View{Shared: s, ch: ch}
}

// SetDown starts (true) or ends an outage: every call fails with privguard.ErrUnavailable.
func (s *Shared) SetDown(down bool) {
	s.mu.Lock()
	s.down = down
	if !down {
		s.failReads = false
	}
	s.mu.Unlock()
}

// CommitThenFail makes the next n commits succeed but return an error, and, if reads is
// true, every read fail until SetDown(false) (the store became unreachable right after).
func (s *Shared) CommitThenFail(n int, reads bool) {
	s.mu.Lock()
	s.commitThenFail, s.failAfter = n, reads
	s.mu.Unlock()
}

// Len returns the number of records.
func (s *Shared) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.records)
}

var errDown = fmt.Errorf("consenttest: shared store down: %w", privguard.ErrUnavailable)

func (s *Shared) read() error {
	if s.down || s.failReads {
		return errDown
	}
	return nil
}

// View is one process's handle on a [Shared] store.
type View struct {
	*Shared
	ch chan struct{}
}

var _ consent.SharedStore = (*View)(nil)

// Changes implements consent.SharedStore.
func (v *View) Changes() <-chan struct{} { return v.ch }

// Commit implements consent.Store with the head check of a shared store.
func (v *View) Commit(ctx context.Context, b *consent.Batch) error {
	v.cmu.Lock()
	defer v.cmu.Unlock()
	return v.commit(b)
}

var _ consent.LockingCommitter = (*View)(nil)

// CommitLocked implements consent.LockingCommitter: no other commit runs from the head's
// reading to the batch's commit.
func (v *View) CommitLocked(ctx context.Context, build func(ctx context.Context, head uint64, hash [32]byte) (*consent.Batch, error)) error {
	v.cmu.Lock()
	defer v.cmu.Unlock()
	v.mu.Lock()
	if v.down {
		v.mu.Unlock()
		return errDown
	}
	head, hash := uint64(len(v.records)), [32]byte{}
	if head > 0 {
		hash = v.records[head-1].hash
	}
	v.mu.Unlock()
	b, err := build(ctx, head, hash)
	if err != nil || b == nil {
		return err
	}
	return v.commit(b)
}

func (v *View) commit(b *consent.Batch) error {
	s := v.Shared
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return errDown
	}
	head, hash := uint64(len(s.records)), [32]byte{}
	if head > 0 {
		hash = s.records[head-1].hash
	}
	if b.Base != head || b.BaseHash != hash {
		return fmt.Errorf("head is %d, batch built on %d: %w", head, b.Base, consent.ErrHeadMoved)
	}
	for _, n := range b.Notices {
		if _, ok := s.notices[n.Key]; ok {
			return fmt.Errorf("notice stored already: %w", consent.ErrHeadMoved)
		}
	}
	for i, r := range b.Records {
		if r.Seq != head+uint64(i)+1 {
			return fmt.Errorf("record %d in a batch on %d", r.Seq, head)
		}
		if _, ok := s.ids[r.ID]; ok {
			return fmt.Errorf("record id %s stored already", r.ID)
		}
	}
	for _, r := range b.Records {
		s.records = append(s.records, sharedRecord{r.Hash, slices.Clone(r.Body)})
		s.ids[r.ID] = r.Seq
		s.subjects[r.Subject] = append(s.subjects[r.Subject], r.Seq)
		if r.IdempotencyKey != "" {
			s.idem[r.IdempotencyKey] = sharedIdem{r.Seq, slices.Clone(r.Fingerprint)}
		}
	}
	for _, n := range b.Notices {
		s.notices[n.Key] = slices.Clone(n.Body)
		s.log = append(s.log, slices.Clone(n.Body))
	}
	for _, x := range b.Suppressions {
		s.supp[x.Key] = x.Seq
	}
	for _, ch := range s.views {
		if ch != v.ch {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
	if s.commitThenFail > 0 {
		s.commitThenFail--
		s.failReads = s.failAfter
		return fmt.Errorf("consenttest: connection lost after commit: %w", consent.ErrMaybeCommitted)
	}
	return nil
}

// NoticesAfter implements consent.SharedStore.
func (v *View) NoticesAfter(ctx context.Context, cursor uint64, fn func(cursor uint64, body []byte) error) error {
	v.mu.Lock()
	if err := v.read(); err != nil {
		v.mu.Unlock()
		return err
	}
	log := v.log
	v.mu.Unlock()
	for i := cursor; i < uint64(len(log)); i++ {
		if err := fn(i+1, log[i]); err != nil {
			return err
		}
	}
	return nil
}

// ScanRecords implements consent.Store.
func (v *View) ScanRecords(ctx context.Context, from uint64, fn func(seq uint64, hash, body []byte) error) error {
	v.mu.Lock()
	if err := v.read(); err != nil {
		v.mu.Unlock()
		return err
	}
	recs := v.records
	v.mu.Unlock()
	for i := max(from, 1); i <= uint64(len(recs)); i++ {
		r := recs[i-1]
		if err := fn(i, r.hash[:], r.body); err != nil {
			return err
		}
	}
	return nil
}

// Record implements consent.Store.
func (v *View) Record(ctx context.Context, seq uint64) ([]byte, []byte, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.read(); err != nil {
		return nil, nil, err
	}
	if seq == 0 || seq > uint64(len(v.records)) {
		return nil, nil, fmt.Errorf("record %d: %w", seq, privguard.ErrNotFound)
	}
	r := v.records[seq-1]
	return slices.Clone(r.hash[:]), slices.Clone(r.body), nil
}

// SeqByID implements consent.Store.
func (v *View) SeqByID(ctx context.Context, id string) (uint64, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.read(); err != nil {
		return 0, err
	}
	if seq, ok := v.ids[id]; ok {
		return seq, nil
	}
	return 0, fmt.Errorf("record %s: %w", id, privguard.ErrNotFound)
}

// SubjectSeqs implements consent.Store.
func (v *View) SubjectSeqs(ctx context.Context, subject privguard.SubjectID) ([]uint64, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.read(); err != nil {
		return nil, err
	}
	return slices.Clone(v.subjects[subject]), nil
}

// Idempotent implements consent.Store.
func (v *View) Idempotent(ctx context.Context, key string) (uint64, []byte, bool, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.read(); err != nil {
		return 0, nil, false, err
	}
	x, ok := v.idem[key]
	return x.seq, slices.Clone(x.fp), ok, nil
}

// ScanNotices implements consent.Store, in key order.
func (v *View) ScanNotices(ctx context.Context, fn func(body []byte) error) error {
	v.mu.Lock()
	if err := v.read(); err != nil {
		v.mu.Unlock()
		return err
	}
	keys := make([]string, 0, len(v.notices))
	for k := range v.notices {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	bodies := make([][]byte, len(keys))
	for i, k := range keys {
		bodies[i] = v.notices[k]
	}
	v.mu.Unlock()
	for _, b := range bodies {
		if err := fn(b); err != nil {
			return err
		}
	}
	return nil
}

// Head implements consent.Store.
func (v *View) Head(ctx context.Context) (uint64, []byte, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.read(); err != nil {
		return 0, nil, err
	}
	if len(v.records) == 0 {
		return 0, nil, nil
	}
	h := v.records[len(v.records)-1].hash
	return uint64(len(v.records)), h[:], nil
}

// Suppression implements consent.Store.
func (v *View) Suppression(ctx context.Context, key [32]byte) (uint64, bool, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.read(); err != nil {
		return 0, false, err
	}
	seq, ok := v.supp[key]
	return seq, ok, nil
}

// Secret implements consent.Store.
func (v *View) Secret(ctx context.Context, name string, create func() ([]byte, error)) ([]byte, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.read(); err != nil {
		return nil, err
	}
	if x, ok := v.secrets[name]; ok {
		return slices.Clone(x), nil
	}
	x, err := create()
	if err != nil {
		return nil, err
	}
	v.secrets[name] = slices.Clone(x)
	return x, nil
}

// WriteSnapshot implements consent.Snapshotter.
func (v *View) WriteSnapshot(ctx context.Context, write func(w io.Writer) error) error {
	var b bytes.Buffer
	if err := write(&b); err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.down {
		return errDown
	}
	v.snapshot = b.Bytes()
	return nil
}

// ReadSnapshot implements consent.Snapshotter.
func (v *View) ReadSnapshot(ctx context.Context, read func(r io.Reader, size int64) error) error {
	v.mu.Lock()
	b := v.snapshot
	err := v.read()
	v.mu.Unlock()
	if err != nil {
		return err
	}
	if b == nil {
		return fmt.Errorf("snapshot: %w", privguard.ErrNotFound)
	}
	return read(bytes.NewReader(b), int64(len(b)))
}

// Tamper replaces the stored body of record seq by what alter makes of it, leaving its
// stored hash as it was (someone with write access to the database).
func (s *Shared) Tamper(seq uint64, alter func(body []byte) []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &s.records[seq-1]
	r.body = alter(slices.Clone(r.body))
}
