package consent

import (
	"context"
	"errors"
	"io"

	"github.com/privguard/privguard"
)

// Store is the durable storage under a [Ledger]. The embedded default is
// boltstore.ConsentStore; a shared store for several replicas implements the same methods.
//
// Only the ledger's single writer calls Commit, so a Store needs no write-write
// coordination; reads may run concurrently with a commit.
type Store interface {
	// Commit writes b in one transaction and returns only once it is durable (fsynced).
	// On error nothing of b is written.
	Commit(ctx context.Context, b *Batch) error
	// ScanRecords calls fn with every record encoding in sequence order, starting at seq from.
	// The bytes are valid only during the call.
	ScanRecords(ctx context.Context, from uint64, fn func(seq uint64, hash, body []byte) error) error
	// Record returns the stored hash and encoding of the record at seq, or an error wrapping
	// privguard.ErrNotFound.
	Record(ctx context.Context, seq uint64) (hash, body []byte, err error)
	// SeqByID returns the sequence number of the record with id, or privguard.ErrNotFound.
	SeqByID(ctx context.Context, id string) (uint64, error)
	// SubjectSeqs returns the sequence numbers of the subject's records in order.
	SubjectSeqs(ctx context.Context, subject privguard.SubjectID) ([]uint64, error)
	// Idempotent returns the sequence number and request fingerprint stored under an
	// idempotency key, or ok=false.
	Idempotent(ctx context.Context, key string) (seq uint64, fingerprint []byte, ok bool, err error)
	// ScanNotices calls fn with every stored notice encoding.
	ScanNotices(ctx context.Context, fn func(body []byte) error) error
	// Head returns the sequence number and hash of the last committed record (0, nil if none).
	Head(ctx context.Context) (seq uint64, hash []byte, err error)
	// Suppression returns the sequence number of the record that put the keyed hash key on
	// the suppression list, or ok=false.
	Suppression(ctx context.Context, key [32]byte) (seq uint64, ok bool, err error)
	// Secret returns the named secret, creating it with create() on first use, durably.
	Secret(ctx context.Context, name string, create func() ([]byte, error)) ([]byte, error)
}

// Prober is a Store that can show it still commits: Probe makes a small durable write of
// no meaning, as Commit would, and reports whether it could. [Ledger.Ping] uses it when
// the ledger has not committed for ProbeInterval; a Store without it is checked with a
// read (Head), which a store that can no longer write may still pass.
type Prober interface {
	Probe(ctx context.Context) error
}

// Snapshotter is a Store that keeps a snapshot of the ledger's in-memory state, so that
// [Open] replays only the records written after it. The ledger writes one periodically
// (Config.SnapshotInterval) and when it is closed, and checks it before use: a snapshot
// that is stale, corrupt or from another key is ignored and every record replayed. The
// snapshot holds subject ids of the few subjects whose hashes collide: protect it as the
// ledger itself.
type Snapshotter interface {
	// WriteSnapshot replaces the snapshot with what write writes, durably; if it fails,
	// the previous snapshot is left as it was.
	WriteSnapshot(ctx context.Context, write func(w io.Writer) error) error
	// ReadSnapshot calls read with the snapshot and its size in bytes, or returns an error
	// wrapping privguard.ErrNotFound if there is none.
	ReadSnapshot(ctx context.Context, read func(r io.Reader, size int64) error) error
}

// SharedStore is a Store that the ledgers of several processes use at once (pgstore's is
// one): every process's writer commits through it, and each follows what the others commit
// into its own in-memory state ([Open] does this when its store is a SharedStore).
//
// Its Commit must, inside the transaction, lock the chain head, compare it with
// Batch.Base and Batch.BaseHash and, if they differ, fail with an error wrapping
// [ErrHeadMoved] and write nothing; it must also fail so when a notice of the batch is
// stored already (another process registered it first). Commits of different processes
// are thereby serialised on the head, and their records form one chain.
type SharedStore interface {
	Store
	// NoticesAfter calls fn with every notice committed after cursor (0: from the first),
	// in commit order, with each one's cursor (increasing).
	NoticesAfter(ctx context.Context, cursor uint64, fn func(cursor uint64, body []byte) error) error
	// Changes returns a channel that receives a value, coalesced and best effort, when
	// another process may have committed. Notifications can be lost (a reconnect): the
	// ledger also polls, and catches up by sequence number either way.
	Changes() <-chan struct{}
}

// LockingCommitter is a SharedStore that can commit a batch built while it holds the chain
// head: CommitLocked begins a transaction, locks the head and calls build with it; build
// (the ledger: it catches up to that head, then builds its group on it) returns the batch
// to write, or nil to write nothing; the store writes it in the same transaction and
// commits. No other process can commit in between, so the batch cannot meet a moved head.
// It holds the lock longer than an optimistic Commit, so the ledger uses it only for a group
// that lost the race for the head already. A failure of the commit itself is reported as
// Commit reports it (ErrMaybeCommitted when the outcome is unknown).
type LockingCommitter interface {
	CommitLocked(ctx context.Context, build func(ctx context.Context, head uint64, hash [32]byte) (*Batch, error)) error
}

// IdempotentBatcher is a Store that looks up many idempotency keys in one read (pgstore's
// is one: a group's keyed writes cost one round trip instead of one each).
type IdempotentBatcher interface {
	// IdempotentAll returns what Idempotent would for each key that is stored; keys not
	// stored are absent from the map.
	IdempotentAll(ctx context.Context, keys []string) (map[string]IdempotentHit, error)
}

// IdempotentHit is a stored idempotency key: the record written under it and the request
// fingerprint.
type IdempotentHit struct {
	Seq         uint64
	Fingerprint []byte
}

// ErrMaybeCommitted is wrapped in the error of a [SharedStore]'s Commit when it cannot tell
// whether the transaction committed: the COMMIT was sent and no answer came back. Any other
// error of Commit means that nothing was written. The ledger then asks the store whether
// the batch's first record is stored.
var ErrMaybeCommitted = errors.New("consent: the commit may have taken place")

// ErrHeadMoved is the error (wrapped) of a [SharedStore]'s Commit when another process
// committed since the batch was built on Batch.Base.
var ErrHeadMoved = errors.New("consent: the ledger head moved")

// Batch is what one group commit writes.
type Batch struct {
	// Base and BaseHash are the head the batch was built on: its first record, if any, is
	// Base+1 and chains onto BaseHash. A SharedStore commits only if its head is still
	// Base; other stores may ignore them.
	Base     uint64
	BaseHash [32]byte

	Records      []StoredRecord
	Notices      []StoredNotice
	Suppressions []StoredSuppression
}

// StoredSuppression is a suppression-list entry: a keyed hash of the subject identifier
// and the record that suppressed it. It holds no personal data in the clear and is never
// removed by erasure.
type StoredSuppression struct {
	Key [32]byte
	Seq uint64
}

// StoredRecord is a record as stored: its sequence number, id, subject, hash and encoding,
// and the idempotency key and request fingerprint it was written under, if any.
type StoredRecord struct {
	Seq            uint64
	ID             string
	Subject        privguard.SubjectID
	Hash           [32]byte
	Body           []byte
	IdempotencyKey string
	Fingerprint    []byte
}

// StoredNotice is one notice language as stored.
type StoredNotice struct {
	Key  string // id, version and language
	Body []byte // JSON
}
