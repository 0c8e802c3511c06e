package consent

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/privguard/privguard"
)

// Ages and limits.
const (
	// PIPLGuardianAge: under PIPL, personal information of a child under 14 is sensitive and
	// needs a guardian's consent (Arts. 28, 31).
	PIPLGuardianAge = 14
	// DefaultEUConsentAge is the GDPR Art. 8 age of digital consent when a member state sets
	// no lower one (13 to 16).
	DefaultEUConsentAge = 16
	// MaxGroup is the most writes committed in one transaction.
	MaxGroup = 4096
)

// Config configures [Open].
type Config struct {
	// Store holds the ledger. Required.
	Store Store
	// Taxonomy is the set of purposes consent may be recorded for. If nil,
	// privguard.DefaultPurposes is used.
	Taxonomy *privguard.Taxonomy
	// EUConsentAge is the GDPR age of digital consent (13 to 16). Zero means
	// DefaultEUConsentAge.
	EUConsentAge int
	// Now is the clock. If nil, time.Now is used.
	Now func() time.Time
	// Logger receives operational messages (never personal data). If nil, nothing is logged.
	Logger *slog.Logger

	// SnapshotInterval is how often the writer snapshots the in-memory state through a
	// Store that is a [Snapshotter], if records were added since the last snapshot; the
	// ledger is also snapshotted when closed. Writes wait while a snapshot is written (about
	// a second per 10M subjects). Zero means DefaultSnapshotInterval; negative, only at Close.
	SnapshotInterval time.Duration

	// MaxStaleness, on a [SharedStore], is how long the ledger answers from state it could
	// not confirm is current before it fails closed (ErrStale). Zero means
	// DefaultMaxStaleness. Ignored on a store of its own.
	MaxStaleness time.Duration
	// FollowInterval, on a SharedStore, is how often the ledger reads what other processes
	// committed when no notification says so; at most MaxStaleness/3. Zero means
	// DefaultFollowInterval.
	FollowInterval time.Duration
	// CommitTimeout bounds one commit to a SharedStore. Zero means DefaultCommitTimeout.
	CommitTimeout time.Duration

	// hashFn replaces the keyed subject hash in this package's tests, to force collisions.
	hashFn func(privguard.SubjectID) subjectHash
}

// Ledger is the consent ledger. Create it with [Open]; it is safe for concurrent use.
type Ledger struct {
	store        Store
	now          func() time.Time
	nowNano      func() int64 // the clock for Check: coarse unless Config.Now is set
	clock        *coarseClock // nil when Config.Now is set
	log          *slog.Logger
	taxonomy     *privguard.Taxonomy
	purposes     []*privguard.PurposeInfo
	purposeIdx   map[privguard.Purpose]uint16
	ancestors    [][]uint16
	euConsentAge int

	state   *shards
	interns *interns
	notices *noticeTable

	evidenceKey []byte
	signer      ed25519.PrivateKey
	tableKey    [2]uint64                             // the subject hash key (secret consent.table-hash)
	hashFn      func(privguard.SubjectID) subjectHash // tests that force collisions; nil otherwise

	ops       chan *op
	closing   chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	// health is the outcome of the store's latest write (a commit or Ping's probe);
	// probeMu keeps concurrent Pings to one probe.
	health  writeHealth
	probeMu sync.Mutex

	snapEvery time.Duration // Config.SnapshotInterval; <0: only at Close

	// On a SharedStore (see follow.go); shared is nil otherwise.
	shared        SharedStore
	maxStale      time.Duration
	followEvery   time.Duration
	commitTimeout time.Duration
	confirmed     atomic.Int64  // l.nowNano() when the ledger last confirmed it was current
	followed      atomic.Uint64 // records of other processes applied
	corrupt       atomic.Bool   // the last catch-up met a record that does not fit the chain
	noticeCursor  uint64        // owned by the writer
	followFailing bool          // owned by the writer
	stash         *op           // owned by the writer: a notice op taken while absorbing writes

	// Owned by the writer goroutine (and by Open before it starts, Close after it ended).
	headSeq  uint64
	headHash [32]byte
	snapSeq  uint64        // head of the latest snapshot written or loaded
	snapOld  bool          // a notice was registered since that snapshot
	records  atomic.Uint64 // headSeq, for readers
}

// op is one write waiting for the writer.
type op struct {
	ctx    context.Context
	req    *Request
	notice *Notice
	fp     []byte // request fingerprint for idempotency
	res    chan opResult
}

type opResult struct {
	rec      Record
	notice   Notice
	replayed bool
	err      error
}

// Open rebuilds the ledger's in-memory state from cfg.Store and starts its writer.
// It fails if the stored head does not match the last stored record (a truncated or
// altered ledger: run `privguard consent verify`).
func Open(ctx context.Context, cfg Config) (*Ledger, error) {
	if cfg.Store == nil {
		return nil, errors.New("consent: Config.Store is nil")
	}
	if cfg.Taxonomy == nil {
		t, err := privguard.NewTaxonomy(privguard.DefaultPurposes())
		if err != nil {
			return nil, fmt.Errorf("consent: default taxonomy: %w", err)
		}
		cfg.Taxonomy = t
	}
	if cfg.EUConsentAge == 0 {
		cfg.EUConsentAge = DefaultEUConsentAge
	}
	if cfg.EUConsentAge < 13 || cfg.EUConsentAge > 16 {
		return nil, fmt.Errorf("consent: EUConsentAge %d is outside 13..16: %w", cfg.EUConsentAge, privguard.ErrInvalid)
	}
	var clock *coarseClock
	nowNano := func() int64 { return cfg.Now().UnixNano() }
	if cfg.Now == nil {
		cfg.Now = time.Now
		clock = newCoarseClock()
		nowNano = clock.UnixNano
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.SnapshotInterval == 0 {
		cfg.SnapshotInterval = DefaultSnapshotInterval
	}
	l := &Ledger{
		store:        cfg.Store,
		now:          cfg.Now,
		nowNano:      nowNano,
		clock:        clock,
		log:          cfg.Logger,
		hashFn:       cfg.hashFn,
		snapEvery:    cfg.SnapshotInterval,
		taxonomy:     cfg.Taxonomy,
		purposeIdx:   map[privguard.Purpose]uint16{},
		euConsentAge: cfg.EUConsentAge,
		state:        nil, // sized by rebuild
		interns:      newInterns(),
		notices:      newNoticeTable(),
		ops:          make(chan *op, MaxGroup),
		closing:      make(chan struct{}),
		done:         make(chan struct{}),
	}
	if ss, ok := cfg.Store.(SharedStore); ok {
		l.shared = ss
		l.maxStale = cmp.Or(cfg.MaxStaleness, DefaultMaxStaleness)
		l.followEvery = min(cmp.Or(cfg.FollowInterval, DefaultFollowInterval), l.maxStale/3)
		l.commitTimeout = cmp.Or(cfg.CommitTimeout, DefaultCommitTimeout)
	}
	names := cfg.Taxonomy.Purposes()
	if len(names) > 1<<16-1 {
		return nil, fmt.Errorf("consent: %d purposes is more than the ledger indexes: %w", len(names), privguard.ErrInvalid)
	}
	for i, p := range names {
		info, _ := cfg.Taxonomy.Lookup(p)
		l.purposes = append(l.purposes, info)
		l.purposeIdx[p] = uint16(i)
	}
	l.ancestors = make([][]uint16, len(names))
	for i, p := range names {
		for a := p.Parent(); a != ""; a = a.Parent() {
			if j, ok := l.purposeIdx[a]; ok {
				l.ancestors[i] = append(l.ancestors[i], j)
			}
		}
	}
	if err := l.loadSecrets(ctx); err != nil {
		l.stopClock()
		return nil, err
	}
	if err := l.rebuild(ctx); err != nil {
		l.stopClock()
		return nil, err
	}
	if l.shared != nil {
		// Records committed by others while the state was loaded.
		if err := l.catchUp(ctx); err != nil {
			l.stopClock()
			return nil, err
		}
	}
	go l.run()
	return l, nil
}

func (l *Ledger) loadSecrets(ctx context.Context) error {
	key, err := l.store.Secret(ctx, "consent.evidence-hmac", func() ([]byte, error) {
		k := make([]byte, 32)
		_, err := io.ReadFull(rand.Reader, k)
		return k, err
	})
	if err != nil {
		return fmt.Errorf("consent: evidence key: %w", err)
	}
	seed, err := l.store.Secret(ctx, "consent.receipt-ed25519-seed", func() ([]byte, error) {
		k := make([]byte, ed25519.SeedSize)
		_, err := io.ReadFull(rand.Reader, k)
		return k, err
	})
	if err != nil {
		return fmt.Errorf("consent: receipt signing key: %w", err)
	}
	// The key of the subject hash the in-memory tables (and their snapshots) are built on.
	// It is secret so that nobody can choose subject ids that collide (see table.go).
	tk, err := l.store.Secret(ctx, "consent.table-hash", func() ([]byte, error) {
		k := make([]byte, 16)
		_, err := io.ReadFull(rand.Reader, k)
		return k, err
	})
	if err != nil {
		return fmt.Errorf("consent: table hash key: %w", err)
	}
	if len(seed) != ed25519.SeedSize || len(key) != 32 || len(tk) != 16 {
		return errors.New("consent: stored keys have the wrong size")
	}
	l.evidenceKey, l.signer = key, ed25519.NewKeyFromSeed(seed)
	l.tableKey = [2]uint64{binary.LittleEndian.Uint64(tk), binary.LittleEndian.Uint64(tk[8:])}
	return nil
}

// rebuild loads notices and the latest usable snapshot, and replays the records after it
// (every record, without one).
func (l *Ledger) rebuild(ctx context.Context) error {
	start := time.Now()
	notices := sha256.New()
	if l.shared != nil {
		// The cursor of the notices loaded, for following the ones registered later.
		if err := l.shared.NoticesAfter(ctx, 0, func(cursor uint64, _ []byte) error {
			l.noticeCursor = cursor
			return nil
		}); err != nil {
			return fmt.Errorf("consent: load notices: %w", err)
		}
	}
	err := l.store.ScanNotices(ctx, func(body []byte) error {
		writeNotice(notices, body)
		n, err := decodeNotice(body)
		if err != nil {
			return err
		}
		l.notices.add(n)
		return nil
	})
	if err != nil {
		return fmt.Errorf("consent: load notices: %w", err)
	}
	headSeq, headHash, err := l.store.Head(ctx)
	if err != nil {
		return fmt.Errorf("consent: read head: %w", err)
	}
	from := uint64(1)
	if snap := l.loadSnapshot(ctx, headSeq, l.configDigest([32]byte(notices.Sum(nil)))); snap != nil {
		l.state, l.interns = snap.state, snap.interns
		l.headSeq, l.headHash, l.snapSeq = snap.seq, snap.hash, snap.seq
		from = snap.seq + 1
	} else {
		// Records are mostly one per subject in large ledgers; sizing the tables up front
		// saves growing them (fit shrinks them after the replay if they are too large).
		l.state = newShards(l.tableKey, int(min(headSeq, 1<<27)))
		l.state.hashFn = l.hashFn
	}
	owner := l.owner(ctx)
	var n uint64
	err = l.store.ScanRecords(ctx, from, func(seq uint64, hash, body []byte) error {
		if seq != l.headSeq+1 {
			return fmt.Errorf("record %d follows record %d; run `privguard consent verify`: %w", seq, l.headSeq, errCorrupt)
		}
		if l.shared != nil {
			// Records other processes wrote: checked as the feed checks them, so that a
			// replica never builds its state on a ledger altered in the database.
			if err := l.replayChecked(seq, hash, body, owner, false); err != nil {
				return err
			}
		} else if err := l.replay(seq, body, owner); err != nil {
			return fmt.Errorf("record %d: %w", seq, err)
		}
		l.headSeq = seq
		copy(l.headHash[:], hash)
		n++
		return nil
	})
	if err != nil {
		return fmt.Errorf("consent: rebuild: %w", err)
	}
	if headSeq != l.headSeq || (headSeq != 0 && string(headHash) != string(l.headHash[:])) {
		return fmt.Errorf("consent: ledger head is record %d but the last stored record is %d; run `privguard consent verify`: %w",
			headSeq, l.headSeq, errCorrupt)
	}
	for i := range l.state.s {
		l.state.s[i].t.fit()
	}
	l.records.Store(l.headSeq)
	l.log.Info("consent ledger loaded", "records", l.headSeq, "replayed", n, "subjects", l.state.count(), "elapsed", time.Since(start).Round(time.Millisecond).String())
	return nil
}

// Close stops the writer after the group in flight. Writes waiting or arriving later fail
// with privguard.ErrClosed. Reads keep working.
func (l *Ledger) Close() error {
	l.closeOnce.Do(func() {
		close(l.closing)
		<-l.done
		// The writer has ended: the state is the stored head's, and nothing changes it.
		if err := l.snapshot(context.Background()); err != nil {
			l.log.Error("consent ledger snapshot at close failed", "err", err)
		}
	})
	<-l.done
	l.stopClock()
	return nil
}

func (l *Ledger) stopClock() {
	if l.clock != nil {
		l.clock.Stop()
	}
}

// submit hands o to the writer and waits for its result.
func (l *Ledger) submit(ctx context.Context, o *op) opResult {
	o.ctx, o.res = ctx, make(chan opResult, 1)
	select {
	case <-l.closing:
		return opResult{err: fmt.Errorf("consent: ledger: %w", privguard.ErrClosed)}
	default:
	}
	select {
	case l.ops <- o:
	case <-l.closing:
		return opResult{err: fmt.Errorf("consent: ledger: %w", privguard.ErrClosed)}
	case <-ctx.Done():
		return opResult{err: ctx.Err()}
	}
	// Once queued, the write is waited for even if ctx ends: it may already be committing,
	// and its outcome must be reported truthfully.
	return l.await(o)
}

// run is the writer goroutine: it group-commits whatever is waiting.
func (l *Ledger) run() {
	defer close(l.done)
	group := make([]*op, 0, MaxGroup)
	var snapTick <-chan time.Time
	if l.snapEvery > 0 {
		t := time.NewTicker(l.snapEvery)
		defer t.Stop()
		snapTick = t.C
	}
	var changes <-chan struct{}
	var followTick <-chan time.Time
	if l.shared != nil {
		changes = l.shared.Changes()
		t := time.NewTicker(l.followEvery)
		defer t.Stop()
		followTick = t.C
	}
	for {
		select {
		case <-changes:
			l.follow()
			continue
		case <-followTick:
			l.follow()
			continue
		case <-l.stashed():
			group = append(group[:0], l.stash)
			l.stash = nil
		case <-snapTick:
			if err := l.snapshot(context.Background()); err != nil {
				l.log.Error("consent ledger snapshot failed", "err", err)
			}
			continue
		case o := <-l.ops:
			group = append(group[:0], o)
		case <-l.closing:
			if l.stash != nil {
				l.stash.res <- opResult{err: fmt.Errorf("consent: ledger: %w", privguard.ErrClosed)}
			}
			for {
				select {
				case o := <-l.ops:
					o.res <- opResult{err: fmt.Errorf("consent: ledger: %w", privguard.ErrClosed)}
				default:
					return
				}
			}
		}
	more:
		for len(group) < MaxGroup && l.stash == nil {
			select {
			case o := <-l.ops:
				group = append(group, o)
			default:
				break more
			}
		}
		l.commitGroup(group)
		clear(group)
	}
}

// commitGroup commits a group of writes. A notice registration is committed on its own,
// in order, so that the writes after it see it.
func (l *Ledger) commitGroup(group []*op) {
	for len(group) > 0 {
		k := 0
		for k < len(group) && group[k].notice == nil {
			k++
		}
		if k > 0 {
			l.commitRecords(group[:k])
		}
		if k < len(group) {
			l.commitNotice(group[k])
			k++
		}
		group = group[k:]
	}
}

// stashed returns a closed channel when a stashed op waits, else nil (which never
// receives).
func (l *Ledger) stashed() <-chan struct{} {
	if l.stash == nil {
		return nil
	}
	return closedChan
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// absorb adds the record writes queued meanwhile to a group about to be built again (up to
// MaxGroup): under contention on a shared store, groups grow instead of retrying small. A
// notice registration met on the way is stashed for the writer's next round.
func (l *Ledger) absorb(group []*op) []*op {
	group = slices.Clip(group) // the caller's array may hold more writes after these
	for len(group) < MaxGroup && l.stash == nil {
		select {
		case o := <-l.ops:
			if o.notice != nil {
				l.stash = o
				return group
			}
			group = append(group, o)
		default:
			return group
		}
	}
	return group
}

// commitRecords validates, chains, stores and applies a group of record writes. On a
// shared store whose head moved (another process committed), it catches up and builds the
// group again on the new head, with the writes queued meanwhile.
func (l *Ledger) commitRecords(group []*op) {
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			group = l.absorb(group)
		}
		var g *builtGroup
		var err error
		if lc, ok := l.store.(LockingCommitter); ok && attempt > optimisticAttempts {
			// Lost the race for the head a few times: build the group holding the head's
			// lock, which no other process can then move.
			g, err = l.commitLocked(lc, group)
			if g == nil { // the store failed before the group was built
				l.log.Error("consent ledger commit failed", "err", err)
				results := make([]opResult, len(group))
				for i := range results {
					results[i].err = fmt.Errorf("consent: commit: %w", privguard.ErrUnavailable)
				}
				l.reply(group, results)
				return
			}
			defer g.cancel()
			group = g.ops
		} else {
			g = l.buildGroup(group)
			defer g.cancel()
			if l.shared != nil && attempt < maxCommitAttempts && g.unknownNotice {
				// A notice another process registered and this one has not read yet.
				if err := l.catchUp(context.Background()); err == nil && l.noticeCursor != g.noticeCursor {
					continue
				}
			}
			if len(g.batch.Records) > 0 {
				err = l.commitBatch(g.batch)
			}
		}
		if len(g.batch.Records) == 0 {
			l.reply(group, g.results)
			return
		}
		if errors.Is(err, ErrHeadMoved) && attempt < maxCommitAttempts {
			if err := l.catchUp(context.Background()); err != nil {
				l.log.Error("consent ledger cannot catch up after another process committed", "err", err)
				l.fail(group, g.results, fmt.Errorf("consent: commit: %w", privguard.ErrUnavailable))
				return
			}
			continue
		}
		if errors.Is(err, ErrMaybeCommitted) {
			err = l.resolve(g.batch, err)
			if err == nil {
				// Committed after all, and applied by the catch-up that found it.
				l.reply(group, g.results)
				return
			}
		}
		if err != nil {
			l.log.Error("consent ledger commit failed", "records", len(g.batch.Records), "err", err)
			if !errors.Is(err, ErrOutcomeUnknown) {
				err = fmt.Errorf("consent: commit: %w", privguard.ErrUnavailable)
			}
			l.fail(group, g.results, err)
			return
		}
		for subject, st := range g.overlay {
			if err := l.state.put(subject, st, g.owner); err != nil {
				// Not reached: owner knows every record the group looked at or wrote.
				l.log.Error("consent ledger state not updated after a commit; restart to rebuild it", "err", err)
			}
		}
		last := g.batch.Records[len(g.batch.Records)-1]
		l.headSeq, l.headHash = last.Seq, last.Hash
		l.records.Store(last.Seq)
		l.reply(group, g.results)
		return
	}
}

// commitLocked builds and commits the group inside a LockingCommitter's transaction,
// holding the chain head: the ledger catches up to it, builds the group (with the writes
// queued meanwhile) on it, and the store writes the batch. It returns nil only if the store
// failed before the group was built.
func (l *Ledger) commitLocked(lc LockingCommitter, group []*op) (*builtGroup, error) {
	var g *builtGroup
	ctx, cancel := context.WithTimeout(context.Background(), l.commitTimeout)
	defer cancel()
	start := l.nowNano()
	ticket := l.health.start()
	err := lc.CommitLocked(ctx, func(ctx context.Context, head uint64, hash [32]byte) (*Batch, error) {
		if head != l.headSeq || hash != l.headHash {
			if err := l.catchUp(ctx); err != nil {
				return nil, err
			}
			if head != l.headSeq || hash != l.headHash {
				return nil, fmt.Errorf("consent: the locked head is record %d, the ledger caught up to %d: %w", head, l.headSeq, errCorrupt)
			}
		}
		g = l.buildGroup(l.absorb(group))
		if len(g.batch.Records) == 0 {
			return nil, nil
		}
		g.batch.Base, g.batch.BaseHash = head, hash
		return g.batch, nil
	})
	l.health.done(ticket, l.now(), err)
	if err == nil && g != nil {
		l.confirm(start)
	}
	return g, err
}

// commitBatch commits b built on the ledger's head, bounded by the commit timeout on a
// shared store, and records the outcome for readiness (and currency: a shared store
// committed it only if the head was where this ledger has it).
func (l *Ledger) commitBatch(b *Batch) error {
	b.Base, b.BaseHash = l.headSeq, l.headHash
	ctx := context.Background()
	if l.shared != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.commitTimeout)
		defer cancel()
	}
	start := l.nowNano()
	ticket := l.health.start()
	err := l.store.Commit(ctx, b)
	l.health.done(ticket, l.now(), err)
	if err == nil && l.shared != nil {
		l.confirm(start)
	}
	return err
}

// fail answers err to every write of the group that was to be committed (the others have
// their own outcome: a rejection, an idempotent replay).
func (l *Ledger) fail(group []*op, results []opResult, err error) {
	for i := range results {
		if results[i].err == nil && results[i].rec.Seq > l.headSeq {
			results[i] = opResult{err: err}
		}
	}
	l.reply(group, results)
}

// builtGroup is a group of writes validated and chained onto the ledger's head, ready to
// commit.
type builtGroup struct {
	cancel  context.CancelFunc // ends the reads' context; commitRecords calls it
	ops     []*op              // the writes it was built from
	results []opResult
	overlay map[privguard.SubjectID]subjectState
	batch   *Batch
	owner   ownerFunc
	// unknownNotice: a write was refused for citing a notice this process does not know;
	// noticeCursor is the notice cursor it was built at.
	unknownNotice bool
	noticeCursor  uint64
}

// buildGroup validates the group's writes against the state and each other, and chains
// the valid ones onto the head.
func (l *Ledger) buildGroup(group []*op) *builtGroup {
	g := &builtGroup{ops: group, results: make([]opResult, len(group)), overlay: make(map[privguard.SubjectID]subjectState, len(group)),
		batch: &Batch{Records: make([]StoredRecord, 0, len(group))}, noticeCursor: l.noticeCursor}
	results, overlay, batch := g.results, g.overlay, g.batch
	idemDone := map[string]int{}
	seq, prev := l.headSeq, l.headHash
	ctx, cancel := context.Background(), context.CancelFunc(func() {})
	if l.shared != nil {
		// The store's reads (idempotency keys, owners) are bounded as its commits are.
		ctx, cancel = context.WithTimeout(ctx, l.commitTimeout)
	}
	g.cancel = cancel
	// owners names the subject of every record the group looked at or wrote, so that
	// storing the new states after the commit needs no store read.
	owners := map[uint64]privguard.SubjectID{}
	storeOwner := l.owner(ctx)
	owner := func(seq uint64) (privguard.SubjectID, error) {
		if id, ok := owners[seq]; ok {
			return id, nil
		}
		id, err := storeOwner(seq)
		if err == nil {
			owners[seq] = id
		}
		return id, err
	}
	g.owner = owner
	lookup := l.idempotencyLookup(ctx, group)
	for i, o := range group {
		req := o.req
		if key := req.IdempotencyKey; key != "" {
			if j, ok := idemDone[key]; ok {
				results[i] = l.replayResult(results[j].rec, group[j].fp, o.fp)
				continue
			}
			if r, ok, err := lookup(key, o.fp); err != nil || ok {
				results[i] = opResult{rec: r, replayed: ok, err: err}
				continue
			}
		}
		st, ok := overlay[req.Subject]
		if !ok {
			var err error
			if st, _, err = l.state.lookup(req.Subject, owner); err != nil {
				results[i].err = fmt.Errorf("consent: read the subject's state: %w: %w", err, privguard.ErrUnavailable)
				continue
			}
		}
		now := l.now().UTC()
		if req.Action == ActionExpire && req.Actor == expirySweepActor && !l.expiryDue(&st, req, now.UnixNano()) {
			// Another process's sweep recorded it first (or the consent was renewed).
			results[i].err = errNotDue
			continue
		}
		rec, err := l.build(req, st, now)
		if err != nil {
			var fe *FieldError
			if errors.As(err, &fe) && fe.Code == CodeNoticeUnknown {
				g.unknownNotice = true
			}
			results[i].err = err
			continue
		}
		seq++
		rec.Seq, rec.PrevHash = seq, prev
		body := encodeRecord(nil, &rec)
		rec.Hash = sha256.Sum256(body)
		prev = rec.Hash
		owners[rec.Seq] = rec.Subject
		if c, ok := l.changeOf(&rec); ok {
			overlay[req.Subject] = l.apply(st, &c)
		}
		if rec.Action == ActionObject {
			batch.Suppressions = append(batch.Suppressions, StoredSuppression{Key: l.suppressionKey(rec.Subject), Seq: rec.Seq})
		}
		batch.Records = append(batch.Records, StoredRecord{Seq: rec.Seq, ID: rec.ID, Subject: rec.Subject,
			Hash: rec.Hash, Body: body, IdempotencyKey: req.IdempotencyKey, Fingerprint: o.fp})
		results[i].rec = rec
		if req.IdempotencyKey != "" {
			idemDone[req.IdempotencyKey] = i
		}
	}
	return g
}

func (l *Ledger) reply(group []*op, results []opResult) {
	for i, o := range group {
		o.res <- results[i]
	}
}

// idempotencyLookup returns the lookup of the group's idempotency keys: with an
// IdempotentBatcher store, every key of the group is read at once, up front.
func (l *Ledger) idempotencyLookup(ctx context.Context, group []*op) func(key string, fp []byte) (Record, bool, error) {
	one := func(key string, fp []byte) (Record, bool, error) { return l.idempotent(ctx, key, fp) }
	b, ok := l.store.(IdempotentBatcher)
	if !ok {
		return one
	}
	var keys []string
	for _, o := range group {
		if o.req.IdempotencyKey != "" {
			keys = append(keys, o.req.IdempotencyKey)
		}
	}
	if len(keys) < 2 {
		return one
	}
	hits, err := b.IdempotentAll(ctx, keys)
	if err != nil {
		err = fmt.Errorf("consent: idempotency lookup: %w: %w", err, privguard.ErrUnavailable)
	}
	return func(key string, fp []byte) (Record, bool, error) {
		if err != nil {
			return Record{}, false, err
		}
		h, ok := hits[key]
		if !ok {
			return Record{}, false, nil
		}
		return l.idempotentHit(ctx, h.Seq, h.Fingerprint, fp)
	}
}

// idempotent looks up a stored write under key. A key reused with a different request is a
// conflict.
func (l *Ledger) idempotent(ctx context.Context, key string, fp []byte) (Record, bool, error) {
	seq, storedFP, ok, err := l.store.Idempotent(ctx, key)
	if err != nil {
		return Record{}, false, fmt.Errorf("consent: idempotency lookup: %w: %w", err, privguard.ErrUnavailable)
	}
	if !ok {
		return Record{}, false, nil
	}
	return l.idempotentHit(ctx, seq, storedFP, fp)
}

// idempotentHit is the answer to a write whose key is stored under the record at seq with
// the fingerprint storedFP.
func (l *Ledger) idempotentHit(ctx context.Context, seq uint64, storedFP, fp []byte) (Record, bool, error) {
	if string(storedFP) != string(fp) {
		return Record{}, false, conflict("Idempotency-Key", CodeIdempotencyReused, "the key was already used for a different request")
	}
	r, err := l.recordAt(ctx, seq)
	if err != nil {
		return Record{}, false, err
	}
	return r, true, nil
}

func (l *Ledger) replayResult(r Record, storedFP, fp []byte) opResult {
	if string(storedFP) != string(fp) {
		return opResult{err: conflict("Idempotency-Key", CodeIdempotencyReused, "the key was already used for a different request")}
	}
	return opResult{rec: r, replayed: true}
}

// recordAt reads and decodes the record at seq.
func (l *Ledger) recordAt(ctx context.Context, seq uint64) (Record, error) {
	hash, body, err := l.store.Record(ctx, seq)
	if err != nil {
		return Record{}, fmt.Errorf("consent: read record: %w", err)
	}
	r, err := decodeRecord(body)
	if err != nil {
		return Record{}, fmt.Errorf("consent: record %d: %w", seq, err)
	}
	copy(r.Hash[:], hash)
	return r, nil
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }
