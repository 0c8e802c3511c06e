package consent

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/privguard/privguard"
)

// A ledger on a [SharedStore] is one of several processes writing one chain. Its writer
// goroutine is the only one that changes its state, as on a store of its own, and it does
// two more things:
//
//   - it follows: when the store says another process committed (Changes), and every
//     FollowInterval in any case, it reads the notices and records committed after its own
//     head and applies them (catchUp), checking that each record chains onto the last;
//   - its commits are checked: the store commits a batch only if the head is still the one
//     the batch was built on, and otherwise says ErrHeadMoved; the writer then catches up
//     and builds the group again on the new head (its validations rerun against the state
//     that now includes the other processes' records), so records of different processes
//     interleave into one chain with no fork and no gap.
//
// It also knows when it last confirmed it was current (a catch-up or a commit that found
// the head where it expected): when that is longer ago than MaxStaleness, every answer that
// depends on consent fails closed with ErrStale.

// Defaults of a ledger on a SharedStore.
const (
	// DefaultMaxStaleness is how long a ledger on a shared store answers from state it
	// could not confirm is current (Config.MaxStaleness).
	DefaultMaxStaleness = 5 * time.Second
	// DefaultFollowInterval is how often it reads what other processes committed when no
	// notification says so (Config.FollowInterval).
	DefaultFollowInterval = 250 * time.Millisecond
	// DefaultCommitTimeout bounds one commit to a shared store (Config.CommitTimeout).
	DefaultCommitTimeout = 10 * time.Second
	// maxCommitAttempts bounds how often one group is rebuilt after the head moved.
	maxCommitAttempts = 64
	// optimisticAttempts is how often a group is committed optimistically (built on the
	// head this process knows, committed if it did not move) before it is built holding
	// the head's lock, on a store that can (LockingCommitter): under contention a process
	// could otherwise lose the race for the head again and again.
	optimisticAttempts = 4
)

// ErrStale is returned (wrapped; it matches privguard.ErrUnavailable) by the answers of a
// ledger on a shared store that could not confirm for Config.MaxStaleness that its state is
// current: it fails closed rather than decide on state that may miss a withdrawal.
var ErrStale = fmt.Errorf("consent: the ledger could not confirm that it is current (the shared store is unreachable): %w", privguard.ErrUnavailable)

// ErrOutcomeUnknown is returned (wrapped; it matches privguard.ErrUnavailable) when a
// shared store failed while committing and could not be asked afterwards whether the
// commit took place: the write may or may not be recorded. Retrying it with the same
// Idempotency-Key records it at most once.
var ErrOutcomeUnknown = fmt.Errorf("consent: the store did not confirm the commit, and the write may or may not be recorded: %w", privguard.ErrUnavailable)

// FollowStatus is what a ledger knows about its currency.
type FollowStatus struct {
	// Shared is whether the ledger's store is shared with other processes; the other
	// fields are zero when it is not.
	Shared bool
	// Confirmed is when the ledger last confirmed that it was current.
	Confirmed time.Time
	// Lag is how long ago that was; Stale is whether it is more than MaxStaleness.
	Lag          time.Duration
	Stale        bool
	MaxStaleness time.Duration
	// Followed counts the records of other processes applied since Open.
	Followed uint64
	// Corrupt: the last catch-up found a record that does not fit the chain (the
	// ledger was altered in the database), not an unreachable store.
	Corrupt bool
}

// Follow reports the ledger's currency.
func (l *Ledger) Follow() FollowStatus {
	if l.shared == nil {
		return FollowStatus{}
	}
	c := l.confirmed.Load()
	lag := time.Duration(l.nowNano() - c)
	return FollowStatus{Shared: true, Confirmed: time.Unix(0, c), Lag: max(lag, 0), Stale: lag > l.maxStale,
		MaxStaleness: l.maxStale, Followed: l.followed.Load(), Corrupt: l.corrupt.Load()}
}

// current fails with ErrStale if the ledger is on a shared store and has not confirmed
// within MaxStaleness that it is current. now is l.nowNano().
func (l *Ledger) current(now int64) error {
	if l.shared != nil && now-l.confirmed.Load() > int64(l.maxStale) {
		return ErrStale
	}
	return nil
}

// confirm records that the ledger was current at at (a l.nowNano() reading taken before
// the read or commit that showed it).
func (l *Ledger) confirm(at int64) {
	for {
		c := l.confirmed.Load()
		if at <= c || l.confirmed.CompareAndSwap(c, at) {
			return
		}
	}
}

// catchUp applies what other processes committed after the ledger's head: notices first
// (a material change marks the earlier grants, as commitNotice does), then records in
// sequence order. Only the writer goroutine calls it (and Open, before the writer starts).
func (l *Ledger) catchUp(ctx context.Context) error {
	start := l.nowNano()
	ctx, cancel := context.WithTimeout(ctx, max(l.maxStale/2, time.Second))
	defer cancel()
	err := l.shared.NoticesAfter(ctx, l.noticeCursor, func(cursor uint64, body []byte) error {
		n, err := decodeNotice(body)
		if err != nil {
			return fmt.Errorf("notice at cursor %d: %w", cursor, err)
		}
		l.noticeCursor = cursor
		if l.notices.version(n.ID, n.Version)[n.Language] != nil {
			return nil // registered through this process, or loaded at Open
		}
		l.notices.add(n)
		l.snapOld = true
		if n.MaterialChange {
			l.invalidate(n)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("consent: follow notices: %w", err)
	}
	owner := l.owner(ctx)
	err = l.store.ScanRecords(ctx, l.headSeq+1, func(seq uint64, hash, body []byte) error {
		if seq != l.headSeq+1 {
			return fmt.Errorf("record %d follows record %d: %w", seq, l.headSeq, errCorrupt)
		}
		if err := l.replayChecked(seq, hash, body, owner, true); err != nil {
			return err
		}
		l.headSeq = seq
		copy(l.headHash[:], hash)
		l.records.Store(seq)
		l.followed.Add(1)
		return nil
	})
	if err != nil {
		l.corrupt.Store(errors.Is(err, errCorrupt))
		return fmt.Errorf("consent: follow records: %w", err)
	}
	l.corrupt.Store(false)
	l.confirm(start)
	return nil
}

// replayChecked replays a record another process wrote (live: while the ledger serves)
// after checking that it hashes to its stored hash, and that it chains onto the head.
func (l *Ledger) replayChecked(seq uint64, hash, body []byte, owner ownerFunc, live bool) error {
	if len(hash) != sha256.Size || sha256.Sum256(body) != [32]byte(hash) {
		return fmt.Errorf("record %d does not match its stored hash; run `privguard consent verify --store`: %w", seq, errCorrupt)
	}
	prev, err := l.replayRecord(seq, body, owner, live)
	if err != nil {
		return fmt.Errorf("record %d: %w", seq, err)
	}
	if prev != l.headHash {
		return fmt.Errorf("record %d does not chain onto record %d; run `privguard consent verify --store`: %w", seq, l.headSeq, errCorrupt)
	}
	return nil
}

// follow catches up and logs a failure once per outage (the staleness metric shows it).
func (l *Ledger) follow() {
	err := l.catchUp(context.Background())
	switch {
	case err != nil && !l.followFailing && errors.Is(err, errCorrupt):
		l.followFailing = true
		l.log.Error("consent ledger: a record another process committed does not fit the chain; answers fail closed once stale; run `privguard consent verify --store`", "err", err)
	case err != nil && !l.followFailing:
		l.followFailing = true
		l.log.Warn("consent ledger cannot read the shared store; answers fail closed once it is stale", "max_staleness", l.maxStale.String(), "err", err)
	case err == nil && l.followFailing:
		l.followFailing = false
		l.log.Info("consent ledger follows the shared store again", "records", l.headSeq)
	}
}

// resolve finds out, after a shared store's Commit failed, whether the batch was committed
// anyway (the connection broke after the commit was sent): its first record is then
// stored under its id. It returns nil if it was (the records are applied by catchUp),
// ErrOutcomeUnknown if the store cannot say, and the commit error if it was not.
func (l *Ledger) resolve(b *Batch, commitErr error) error {
	if len(b.Records) == 0 {
		return commitErr
	}
	ctx, cancel := context.WithTimeout(context.Background(), max(l.maxStale/2, time.Second))
	defer cancel()
	seq, err := l.store.SeqByID(ctx, b.Records[0].ID)
	switch {
	case errors.Is(err, privguard.ErrNotFound):
		return commitErr
	case err != nil:
		return ErrOutcomeUnknown
	case seq != b.Records[0].Seq:
		return fmt.Errorf("consent: record %s is stored at %d, not %d: %w", b.Records[0].ID, seq, b.Records[0].Seq, errCorrupt)
	}
	if err := l.catchUp(ctx); err != nil || l.headSeq < b.Records[len(b.Records)-1].Seq {
		return ErrOutcomeUnknown
	}
	return nil
}
