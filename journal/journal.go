package journal

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// ErrHeadMoved is returned by [Store.AppendJournal] when the entries do not follow the
// log's stored head (another process appended first). Nothing was stored.
var ErrHeadMoved = errors.New("journal: the log's head moved")

// ErrSetLimit is returned by [SetStore.AddToSet] when the members would take a set past
// its limit. Nothing was added.
var ErrSetLimit = errors.New("journal: the set would pass its limit")

// MaxBody bounds an entry's encoded body.
const MaxBody = 1 << 20

// appendPatience bounds how long Append retries on ErrHeadMoved (other processes
// appending to the same log), with a growing, jittered pause between attempts.
const appendPatience = 10 * time.Second

// Entry is one entry of a log.
type Entry struct {
	Log  string          `json:"log"`
	Seq  uint64          `json:"seq"` // 1 for the first entry of the log
	Time time.Time       `json:"time"`
	Body json.RawMessage `json:"body"`
	Prev string          `json:"prev"` // hex SHA-256 of the previous entry; "" for the first
	Hash string          `json:"hash"` // hex SHA-256 of this entry (see Sum)
}

// Sum returns the hash of e's contents: SHA-256 over a version tag, the log, the sequence
// number, the time (UTC, RFC 3339 with nanoseconds), the previous hash and the body.
func (e *Entry) Sum() string {
	h := sha256.New()
	h.Write([]byte("privguard-journal-v1\x00"))
	h.Write([]byte(e.Log))
	h.Write([]byte{0})
	var seq [8]byte
	binary.BigEndian.PutUint64(seq[:], e.Seq)
	h.Write(seq[:])
	h.Write([]byte(e.Time.UTC().Format(time.RFC3339Nano)))
	h.Write([]byte{0})
	h.Write([]byte(e.Prev))
	h.Write([]byte{0})
	h.Write(e.Body)
	return hex.EncodeToString(h.Sum(nil))
}

// Store keeps logs. Implementations: boltstore, pgstore, journaltest.Mem.
type Store interface {
	// AppendJournal stores entries at the end of log, atomically. entries[0].Seq must be
	// the stored head's Seq+1 and its Prev the head's Hash, else ErrHeadMoved and nothing
	// is stored.
	AppendJournal(ctx context.Context, log string, entries []Entry) error
	// JournalHead returns the last entry of log; a log with no entry returns the zero
	// Entry (Seq 0) and no error.
	JournalHead(ctx context.Context, log string) (Entry, error)
	// JournalEntries calls fn for every entry of log with Seq >= from, in order, until fn
	// returns an error, which it returns.
	JournalEntries(ctx context.Context, log string, from uint64, fn func(Entry) error) error
}

// SetStore keeps sets of short opaque members (keyed hashes), for counting distinct
// people without storing who they are.
type SetStore interface {
	// AddToSet adds members to set atomically and returns how many of them were not in it
	// before, and its size after. With limit > 0, a call that would make the set larger
	// than limit adds nothing and returns an error wrapping ErrSetLimit, with the size as
	// it stays and the count it would have added.
	AddToSet(ctx context.Context, set string, members [][]byte, limit int64) (added int, size int64, err error)
	// SetSize returns the size of set (0 for a set never added to).
	SetSize(ctx context.Context, set string) (int64, error)
}

// Journal appends to one log of a Store. Safe for concurrent use.
type Journal struct {
	store Store
	log   string
	now   func() time.Time
	mu    sync.Mutex
}

// Open returns the journal of log in store; now is the clock (nil: time.Now).
func Open(store Store, log string, now func() time.Time) (*Journal, error) {
	if store == nil {
		return nil, errors.New("journal: nil store")
	}
	if err := ValidName(log); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &Journal{store: store, log: log, now: now}, nil
}

// ValidName reports whether name can name a log or a set: 1 to 64 bytes of a-z, 0-9, '.',
// '_' and '-'.
func ValidName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("journal: name %q: 1 to 64 bytes", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("journal: name %q: only a-z, 0-9, '.', '_' and '-'", name)
		}
	}
	return nil
}

// Name returns the log's name.
func (j *Journal) Name() string { return j.log }

// Append encodes bodies as JSON and appends them to the log in one atomic write, after
// whatever the log holds (retrying on another process's append). It returns the entries
// as stored.
func (j *Journal) Append(ctx context.Context, bodies ...any) ([]Entry, error) {
	if len(bodies) == 0 {
		return nil, nil
	}
	raw := make([]json.RawMessage, len(bodies))
	for i, b := range bodies {
		enc, err := encode(j.log, b)
		if err != nil {
			return nil, err
		}
		raw[i] = enc
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	start := time.Now()
	pause := time.Millisecond
	for {
		head, err := j.store.JournalHead(ctx, j.log)
		if err != nil {
			return nil, fmt.Errorf("journal %s: %w", j.log, err)
		}
		// Microseconds: every store keeps them exactly (PostgreSQL's timestamptz).
		now := j.now().UTC().Truncate(time.Microsecond)
		if now.Before(head.Time) {
			now = head.Time // times never go backwards within a log
		}
		entries := make([]Entry, len(raw))
		prev, seq := head.Hash, head.Seq
		for i, b := range raw {
			seq++
			e := Entry{Log: j.log, Seq: seq, Time: now, Body: b, Prev: prev}
			e.Hash = e.Sum()
			entries[i], prev = e, e.Hash
		}
		err = j.store.AppendJournal(ctx, j.log, entries)
		if err == nil {
			return entries, nil
		}
		if !errors.Is(err, ErrHeadMoved) || time.Since(start) > appendPatience {
			return nil, fmt.Errorf("journal %s: %w", j.log, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("journal %s: %w", j.log, ctx.Err())
		case <-time.After(pause/2 + rand.N(pause)):
		}
		pause = min(2*pause, 50*time.Millisecond)
	}
}

func encode(log string, body any) (json.RawMessage, error) {
	enc, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("journal %s: encode entry: %w", log, err)
	}
	if len(enc) > MaxBody {
		return nil, fmt.Errorf("journal %s: an entry of %d bytes is over %d", log, len(enc), MaxBody)
	}
	return enc, nil
}

// Head returns the log's last entry (Seq 0 if none).
func (j *Journal) Head(ctx context.Context) (Entry, error) { return j.store.JournalHead(ctx, j.log) }

// Entries calls fn for every entry with Seq >= from, in order.
func (j *Journal) Entries(ctx context.Context, from uint64, fn func(Entry) error) error {
	return j.store.JournalEntries(ctx, j.log, from, fn)
}

// BreakError says where a log's chain breaks.
type BreakError struct {
	Log     string
	Seq     uint64 // the first entry that does not fit (the expected one, if missing)
	Problem string
}

func (e *BreakError) Error() string {
	return fmt.Sprintf("journal %s: entry %d: %s", e.Log, e.Seq, e.Problem)
}

// Check checks one entry against the one before it (nil for the first): sequence, link,
// own hash. It returns a *BreakError.
func Check(log string, prev *Entry, e *Entry) error {
	want := uint64(1)
	wantPrev := ""
	if prev != nil {
		want, wantPrev = prev.Seq+1, prev.Hash
	}
	switch {
	case e.Log != log:
		return &BreakError{Log: log, Seq: e.Seq, Problem: fmt.Sprintf("belongs to log %q", e.Log)}
	case e.Seq != want:
		return &BreakError{Log: log, Seq: want, Problem: fmt.Sprintf("missing (the next entry stored is %d)", e.Seq)}
	case e.Prev != wantPrev:
		return &BreakError{Log: log, Seq: e.Seq, Problem: "does not link to the entry before it"}
	case e.Sum() != e.Hash:
		return &BreakError{Log: log, Seq: e.Seq, Problem: "its contents do not match its hash (altered)"}
	case prev != nil && e.Time.Before(prev.Time):
		return &BreakError{Log: log, Seq: e.Seq, Problem: "is dated before the entry before it"}
	}
	return nil
}

// Verify checks the whole chain of log in store and that it ends at the stored head: an
// altered, removed, reordered or truncated entry is a *BreakError. It returns the number
// of entries checked.
func Verify(ctx context.Context, store Store, log string) (uint64, error) {
	var prev *Entry
	var n uint64
	err := store.JournalEntries(ctx, log, 1, func(e Entry) error {
		if err := Check(log, prev, &e); err != nil {
			return err
		}
		prev, n = &e, n+1
		return nil
	})
	if err != nil {
		return n, err
	}
	head, err := store.JournalHead(ctx, log)
	if err != nil {
		return n, err
	}
	if head.Seq != n || (prev != nil && !bytes.Equal([]byte(head.Hash), []byte(prev.Hash))) {
		return n, &BreakError{Log: log, Seq: n + 1, Problem: fmt.Sprintf("the head says %d entries, the chain has %d", head.Seq, n)}
	}
	return n, nil
}

// Decode decodes an entry's body into v.
func (e *Entry) Decode(v any) error {
	if err := json.Unmarshal(e.Body, v); err != nil {
		return fmt.Errorf("journal %s: entry %d: %w", e.Log, e.Seq, err)
	}
	return nil
}

// VerifyHead is Verify, and also checks that the log still holds the entry a checkpoint
// recorded (want: its Seq and Hash), so that entries removed from the end after the
// checkpoint are found.
func VerifyHead(ctx context.Context, store Store, log string, want Entry) (uint64, error) {
	found := want.Seq == 0
	var prev *Entry
	var n uint64
	err := store.JournalEntries(ctx, log, 1, func(e Entry) error {
		if err := Check(log, prev, &e); err != nil {
			return err
		}
		if e.Seq == want.Seq {
			if e.Hash != want.Hash {
				return &BreakError{Log: log, Seq: e.Seq, Problem: "differs from the entry the checkpoint recorded"}
			}
			found = true
		}
		prev, n = &e, n+1
		return nil
	})
	if err != nil {
		return n, err
	}
	if !found {
		return n, &BreakError{Log: log, Seq: n + 1, Problem: fmt.Sprintf("missing: the checkpoint recorded %d entries, the log holds %d", want.Seq, n)}
	}
	return n, nil
}

// errScanEnd ends Scan's walk at its time bound.
var errScanEnd = errors.New("journal: scan ended")

// Scan calls fn for the entries of log after Seq after and, if until is not zero, dated
// before until, in order, checking each against the one before it as it reads: a
// register read this way is never shown past a break (a *BreakError). Entries are dated
// in order within a log, so the walk stops at the first one dated until or later.
func Scan(ctx context.Context, store Store, log string, after uint64, until time.Time, fn func(Entry) error) error {
	var prev *Entry
	err := store.JournalEntries(ctx, log, 1, func(e Entry) error {
		if err := Check(log, prev, &e); err != nil {
			return err
		}
		prev = &e
		if e.Seq <= after {
			return nil
		}
		if !until.IsZero() && !e.Time.Before(until) {
			return errScanEnd
		}
		return fn(e)
	})
	if errors.Is(err, errScanEnd) {
		return nil
	}
	return err
}
