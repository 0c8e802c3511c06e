package dsar

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/privguard/privguard"
)

// Store keeps requests durably (boltstore.DSARStore is the embedded default).
type Store interface {
	// PutRequest stores the request's encoding under id, durably.
	PutRequest(ctx context.Context, id string, body []byte) error
	// Request returns the encoding stored under id, or an error wrapping privguard.ErrNotFound.
	Request(ctx context.Context, id string) ([]byte, error)
	// EachRequest calls fn with every stored request encoding.
	EachRequest(ctx context.Context, fn func(body []byte) error) error
}

// Retry defaults.
const (
	DefaultBaseBackoff = time.Second
	DefaultMaxBackoff  = 10 * time.Minute
	DefaultWorkers     = 8
	DefaultBatch       = 2000
	// DefaultTaskTimeout bounds one task on one store: a store that stops answering fails
	// the task (retried later) instead of holding the engine.
	DefaultTaskTimeout = 2 * time.Minute
)

// Config configures [New].
type Config struct {
	Store      Store
	Connectors []Connector
	// Deadlines computes due dates; nil means NewDeadlines(nil, 0).
	Deadlines *Deadlines
	// OnErased runs once every store erased a deletion's subject (shred the vault keys,
	// record the erasure in the consent ledger). An error keeps the request open and retried.
	OnErased func(ctx context.Context, subject privguard.SubjectID) error
	// OnErasedAll, if set, does OnErased's work for every deletion of a batch whose stores
	// all erased it, at once (one vault transaction, the ledger's records grouped). If it
	// fails, each request falls back to OnErased. It must be idempotent, as OnErased is.
	OnErasedAll func(ctx context.Context, subjects []privguard.SubjectID) error
	// OnSubjectFact applies restriction and objection requests (through the consent
	// ledger). Nil completes them without action.
	OnSubjectFact func(ctx context.Context, r Request) error
	BaseBackoff   time.Duration
	MaxBackoff    time.Duration
	// Recourse overrides DefaultRecourse per regime (name your authority and court).
	Recourse map[privguard.Regime]string
	// DefaultRegime applies to requests that do not name one (default PIPL, whose deadline
	// is the shorter): a subject need not know which law applies (DSR-01).
	DefaultRegime privguard.Regime
	// Recipients are told of every erasure, rectification and restriction (GDPR Art. 19):
	// each is one more task of those requests.
	Recipients []RecipientNotifier
	// Workers is how many requests Step advances at once (default DefaultWorkers).
	Workers int
	// Batch is how many requests Step takes together (default DefaultBatch): their
	// erasures on a store that erases in batches (BatchEraser) are one call, and their
	// writes one transaction if the Store is a BatchStore.
	Batch int
	// TaskTimeout bounds one task on one store (default DefaultTaskTimeout).
	TaskTimeout time.Duration
	// Sealer encrypts access results at rest (vault.Vault); access, portability and
	// categories requests are refused without one.
	Sealer Sealer
	// Results stores the sealed results; nil means Store, if it is a ResultStore.
	Results ResultStore
	// Disclose supplies what an access answer says beside the data (purposes, recipients,
	// retention, source, consent history, rights). Nil leaves those sections empty.
	Disclose func(ctx context.Context, r Request) (Disclosure, error)
	// Notifier, if it is a LinkNotifier, sends the subject the download link of a
	// finished access request.
	Notifier Notifier
	// ResultTTL is how long a package can be downloaded (default DefaultResultTTL).
	ResultTTL time.Duration
	Now       func() time.Time
	Logger    *slog.Logger
}

// Engine runs requests. All methods are safe for concurrent use; requests are processed
// one step at a time by [Engine.Step] (or the loop of [Engine.Run]).
type Engine struct {
	cfg        Config
	connectors map[string]Connector
	names      []string
	// recipients are keyed by their task name ("recipient:" + name).
	recipients     map[string]RecipientNotifier
	recipientNames []string
	mu             sync.Mutex // serialises request reads-then-writes
	stepMu         sync.Mutex // one Step at a time
	// open indexes open requests by subject and type (the duplicate check), loaded from the
	// store on first use and kept current by put. Guarded by mu.
	open   map[openKey]string
	active map[string]bool // ids of requests not yet final
	// results maps the requests whose results still exist to when they must be destroyed.
	results map[string]time.Time
	// personal lists, per subject, the requests that hold its personal data (holdsPersonal),
	// to scrub when the subject is erased.
	personal map[privguard.SubjectID][]string
	// unscrubbed are erasures finished before requests were scrubbed (an older data file).
	unscrubbed []string
	// batch, while Step writes a batch of rounds, holds what put wrote since (see
	// commitBatch). Guarded by mu.
	batch *writeBatch
	// erasedAll holds the requests whose subject OnErasedAll completed for the batch being
	// written (guarded by mu).
	erasedAll map[string]bool
}

type openKey struct {
	subject privguard.SubjectID
	typ     Type
	// transferTo keeps a copy for the subject and a transfer to another controller apart.
	transferTo string
}

// New returns an engine.
func New(cfg Config) (*Engine, error) {
	if cfg.Store == nil {
		return nil, errors.New("dsar: Config.Store is nil")
	}
	if cfg.Deadlines == nil {
		d, err := NewDeadlines(nil, 0)
		if err != nil {
			return nil, err
		}
		cfg.Deadlines = d
	}
	if cfg.BaseBackoff == 0 {
		cfg.BaseBackoff = DefaultBaseBackoff
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.TaskTimeout <= 0 {
		cfg.TaskTimeout = DefaultTaskTimeout
	}
	if cfg.DefaultRegime == "" {
		cfg.DefaultRegime = privguard.RegimePIPL
	}
	if cfg.ResultTTL <= 0 {
		cfg.ResultTTL = DefaultResultTTL
	}
	if cfg.Results == nil {
		cfg.Results, _ = cfg.Store.(ResultStore)
	}
	if cfg.Sealer != nil && cfg.Results == nil {
		return nil, errors.New("dsar: Config.Sealer is set but there is no ResultStore")
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{cfg: cfg, connectors: map[string]Connector{}, recipients: map[string]RecipientNotifier{}}
	for _, rn := range cfg.Recipients {
		name := recipientTask(rn.Name())
		if _, dup := e.recipients[name]; dup {
			return nil, fmt.Errorf("dsar: two recipients named %q", rn.Name())
		}
		e.recipients[name] = rn
		e.recipientNames = append(e.recipientNames, name)
	}
	slices.Sort(e.recipientNames)
	for _, c := range cfg.Connectors {
		if _, dup := e.connectors[c.Name()]; dup {
			return nil, fmt.Errorf("dsar: two connectors named %q", c.Name())
		}
		e.connectors[c.Name()] = c
		e.names = append(e.names, c.Name())
	}
	slices.Sort(e.names)
	return e, nil
}

// Submit records a new request. With Identity set (verified out of band by an operator, or
// by a token checked by the caller) it is verified at once; otherwise it waits for
// verification. Objections and restrictions need no verification (DSR-02).
func (e *Engine) Submit(ctx context.Context, r Request) (Request, error) {
	r, err := e.prepare(r)
	if err != nil {
		return Request{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if dup, ok := e.openDuplicate(ctx, r); ok {
		// The same subject asking again for the same thing: the open request answers it.
		return dup, nil
	}
	return r, e.put(ctx, &r)
}

// SubmitAll is Submit for many requests (a bulk erasure), written in one durable
// transaction if the Store is a BatchStore, instead of one each. It returns the stored
// requests in the order given (an open duplicate's, as Submit does, also of an earlier
// request of the same call). A request that is not valid fails the call before anything is
// stored; a failed write stores none of them.
func (e *Engine) SubmitAll(ctx context.Context, rs []Request) ([]Request, error) {
	out := make([]Request, len(rs))
	for i, r := range rs {
		p, err := e.prepare(r)
		if err != nil {
			return nil, fmt.Errorf("request %d: %w", i, err)
		}
		out[i] = p
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.batch = &writeBatch{index: map[string]int{}}
	for i := range out {
		if dup, ok := e.openDuplicate(ctx, out[i]); ok {
			out[i] = dup
			continue
		}
		if err := e.put(ctx, &out[i]); err != nil {
			e.batch = nil
			e.open, e.active, e.results, e.personal, e.unscrubbed = nil, nil, nil, nil, nil
			return nil, err
		}
	}
	if err := e.flush(ctx); err != nil {
		return nil, err
	}
	return out, nil
}

// prepare checks a new request and makes it ready to store: id, dates, deadline, state,
// and its tasks if it needs no verification.
func (e *Engine) prepare(r Request) (Request, error) {
	if r.Identity != nil {
		id := *r.Identity // verified sets the time: the caller's copy is left alone
		r.Identity = &id
	}
	if !r.Type.Valid() {
		return Request{}, fmt.Errorf("dsar: request type %q: %w", r.Type, privguard.ErrInvalid)
	}
	if err := r.Subject.Validate(); err != nil {
		return Request{}, err
	}
	if r.Regime == "" {
		r.Regime = e.cfg.DefaultRegime
	}
	if r.Trigger != "" {
		if r.Type != TypeDeletion || !slices.Contains(Triggers, r.Trigger) {
			return Request{}, fmt.Errorf("dsar: trigger %q: want a deletion with one of %v: %w", r.Trigger, Triggers, privguard.ErrInvalid)
		}
		// The controller's own erasure: there is no requester to verify.
		id := Identity{Method: "controller", Note: r.Trigger}
		if r.Identity != nil {
			id.Operator = r.Identity.Operator
		}
		r.Identity = &id
	}
	if r.TransferTo != "" {
		if r.Type != TypePortability {
			return Request{}, fmt.Errorf("dsar: transfer_to is for portability requests: %w", privguard.ErrInvalid)
		}
		if _, ok := e.receiver(r.TransferTo); !ok {
			return Request{}, fmt.Errorf("dsar: transfer_to %q: no recipient of that name takes packages: %w", r.TransferTo, privguard.ErrInvalid)
		}
	}
	if r.Type == TypeCorrection && len(r.Patch) == 0 {
		return Request{}, fmt.Errorf("dsar: a correction needs a patch: %w", privguard.ErrInvalid)
	}
	if r.Type.producesResult() && e.cfg.Sealer == nil {
		return Request{}, fmt.Errorf("dsar: %s requests need a result sealer (the vault): %w", r.Type, privguard.ErrUnavailable)
	}
	for cat := range r.Patch {
		if cat.Validate() != nil {
			return Request{}, fmt.Errorf("dsar: patch category: %w", privguard.ErrInvalid)
		}
		if !e.correctable(cat) {
			return Request{}, fmt.Errorf("dsar: patch category %s: no store holds it: %w", cat, privguard.ErrInvalid)
		}
	}
	now := e.cfg.Now().UTC()
	dl, err := e.cfg.Deadlines.Due(r.Regime, now, nil, nil, now)
	if err != nil {
		return Request{}, err
	}
	r.ID, r.ReceivedAt, r.Deadline, r.State = uuid.Must(uuid.NewV7()).String(), now, dl, StateReceived
	r.Tasks, r.Events = nil, nil
	r.event(now, "received", string(r.Type))
	if r.Identity != nil || r.Type == TypeObjection || r.Type == TypeRestriction {
		e.verified(&r, r.Identity, now)
	} else {
		r.State = StateAwaitingVerify
	}
	return r, nil
}

// correctable reports whether some store may hold cat: one that lists it, or one that
// can correct without listing its categories (a webhook store decides itself).
func (e *Engine) correctable(cat privguard.DataCategory) bool {
	for _, c := range e.connectors {
		if _, ok := c.(Rectifier); !ok {
			continue
		}
		cl, ok := c.(CategoryLister)
		if !ok || slices.Contains(cl.Categories(), cat) {
			return true
		}
	}
	return false
}

// openDuplicate returns an open request of r's subject and type, if any. Corrections are
// never duplicates: each carries its own patch. e.mu must be held.
func (e *Engine) openDuplicate(ctx context.Context, r Request) (Request, bool) {
	if r.Type == TypeCorrection {
		return Request{}, false
	}
	if e.loadIndex(ctx) != nil {
		return Request{}, false // the store is failing; put will say so
	}
	id, ok := e.open[openKey{r.Subject, r.Type, r.TransferTo}]
	if !ok {
		return Request{}, false
	}
	dup, err := e.load(ctx, id)
	return dup, err == nil && !dup.State.Final()
}

// loadIndex builds the indexes of open requests from the store, once. e.mu must be held.
func (e *Engine) loadIndex(ctx context.Context) error {
	if e.open != nil {
		return nil
	}
	e.open, e.active, e.results = map[openKey]string{}, map[string]bool{}, map[string]time.Time{}
	e.personal, e.unscrubbed = map[privguard.SubjectID][]string{}, nil
	err := e.cfg.Store.EachRequest(ctx, func(b []byte) error {
		var o Request
		if err := json.Unmarshal(b, &o); err != nil {
			return err
		}
		e.index(&o)
		if o.Type == TypeDeletion && o.Applied && o.State.Final() && o.ScrubbedAt.IsZero() {
			e.unscrubbed = append(e.unscrubbed, o.ID)
		}
		return nil
	})
	if err != nil {
		e.open, e.active, e.results, e.personal, e.unscrubbed = nil, nil, nil, nil, nil
		return err
	}
	return nil
}

// index records r in the indexes: of open requests if it is open (removing it if not),
// of results still to destroy, and of requests holding personal data. e.mu must be held.
func (e *Engine) index(r *Request) {
	e.indexPersonal(r)
	if r.Type.producesResult() {
		switch res := r.Result; {
		case res != nil && res.Purged:
			delete(e.results, r.ID)
		case res != nil && res.DownloadedAt.IsZero():
			e.results[r.ID] = res.ExpiresAt
		case res != nil || r.State.Final():
			e.results[r.ID] = time.Time{} // downloaded, or the request ended without a package
		}
	}
	if r.State.Final() {
		delete(e.active, r.ID)
	} else {
		e.active[r.ID] = true
	}
	if r.Type == TypeCorrection {
		return
	}
	k := openKey{r.Subject, r.Type, r.TransferTo}
	switch {
	case !r.State.Final():
		e.open[k] = r.ID
	case e.open[k] == r.ID:
		delete(e.open, k)
	}
}

// openRequests returns every request not yet final, without reading the finished ones.
func (e *Engine) openRequests(ctx context.Context) ([]Request, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.loadIndex(ctx); err != nil {
		return nil, fmt.Errorf("dsar: list requests: %w: %w", err, privguard.ErrUnavailable)
	}
	out := make([]Request, 0, len(e.active))
	for id := range e.active {
		r, err := e.get(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Request) int { return strings.Compare(a.ID, b.ID) }) // oldest first (ids are time-ordered)
	return out, nil
}

// verified moves r to verified and creates its tasks.
func (e *Engine) verified(r *Request, id *Identity, now time.Time) {
	if id != nil {
		id.VerifiedAt = now
		r.Identity = id
		r.event(now, "identity verified", id.Method)
	}
	if r.Type == TypeCorrection {
		r.State = StateAwaitingApproval
		return
	}
	e.start(r)
}

// start moves r to verified (ready to run) and creates its tasks.
func (e *Engine) start(r *Request) {
	r.State = StateVerified
	if r.Type.needsStores() {
		for _, name := range e.names {
			r.Tasks = append(r.Tasks, Task{Store: name, State: TaskPending})
		}
	}
	if r.Type.notifiesRecipients() {
		for _, name := range e.recipientNames {
			r.Tasks = append(r.Tasks, Task{Store: name, State: TaskPending})
		}
	}
}

// Verify records that the requester's identity was verified and starts the work.
func (e *Engine) Verify(ctx context.Context, id string, identity Identity) (Request, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, err := e.awaitingVerification(ctx, id)
	if err != nil {
		return Request{}, err
	}
	e.verified(&r, &identity, e.cfg.Now().UTC())
	return r, e.put(ctx, &r)
}

// awaitingVerification returns request id if it is awaiting verification, and a conflict
// otherwise. e.mu must be held.
func (e *Engine) awaitingVerification(ctx context.Context, id string) (Request, error) {
	r, err := e.get(ctx, id)
	if err != nil {
		return Request{}, err
	}
	if r.State != StateAwaitingVerify {
		return Request{}, fmt.Errorf("dsar: request is %s, not awaiting verification: %w", r.State, privguard.ErrConflict)
	}
	return r, nil
}

// Get returns a request, or an error wrapping privguard.ErrNotFound.
func (e *Engine) Get(ctx context.Context, id string) (Request, error) {
	return e.get(ctx, id)
}

func (e *Engine) get(ctx context.Context, id string) (Request, error) {
	b, err := e.cfg.Store.Request(ctx, id)
	if err != nil {
		return Request{}, err
	}
	var r Request
	if err := json.Unmarshal(b, &r); err != nil {
		return Request{}, fmt.Errorf("dsar: stored request: %w", err)
	}
	return r, nil
}

func (e *Engine) put(ctx context.Context, r *Request) error {
	r.Version++
	if r.State.Final() && r.ClosedAt.IsZero() {
		r.ClosedAt = closingEvent(*r)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if e.batch != nil {
		e.batch.add(r.ID, b) // written by flush, which undoes the indexing if it fails
	} else if err := e.cfg.Store.PutRequest(ctx, r.ID, b); err != nil {
		return fmt.Errorf("dsar: store request: %w: %w", err, privguard.ErrUnavailable)
	}
	if e.open != nil {
		e.index(r)
	}
	return nil
}

// List returns every stored request, oldest first.
func (e *Engine) List(ctx context.Context) ([]Request, error) {
	var out []Request
	err := e.cfg.Store.EachRequest(ctx, func(b []byte) error {
		var r Request
		if err := json.Unmarshal(b, &r); err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	slices.SortFunc(out, func(a, b Request) int { return strings.Compare(a.ID, b.ID) }) // ids are time-ordered (UUIDv7)
	return out, err
}

// RangeStore is the optional capability of a Store to list requests in id order from a
// cursor, so that a page of requests does not read them all.
type RangeStore interface {
	// EachRequestAfter calls fn with the encodings of the requests whose id sorts after
	// after, in id order, until fn returns ErrStop.
	EachRequestAfter(ctx context.Context, after string, fn func(body []byte) error) error
}

// ErrStop ends an iteration early without an error.
var ErrStop = errors.New("dsar: stop")

// Filter selects a page of requests for [Engine.Page].
type Filter struct {
	State   State // only this state
	Overdue *bool // only open and overdue (true) or not (false)
	After   string
	Limit   int // default 100
}

// Page returns up to f.Limit requests matching f, oldest first (ids are time-ordered),
// after the id f.After, and the cursor of the next page ("" when there is no more). Open
// requests come from the engine's index; others are read from the store in id order.
func (e *Engine) Page(ctx context.Context, f Filter, now time.Time) ([]Request, string, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	match := func(r *Request) bool {
		if f.State != "" && r.State != f.State {
			return false
		}
		if f.Overdue != nil && (!r.State.Final() && Overdue(r.Deadline.Due, now)) != *f.Overdue {
			return false
		}
		return true
	}
	var out []Request
	more := false
	visit := func(r Request) error {
		if r.ID <= f.After || !match(&r) {
			return nil
		}
		if len(out) == f.Limit {
			more = true
			return ErrStop
		}
		out = append(out, r)
		return nil
	}
	openOnly := (f.State != "" && !f.State.Final()) || (f.Overdue != nil && *f.Overdue)
	if openOnly {
		open, err := e.openRequests(ctx)
		if err != nil {
			return nil, "", err
		}
		for _, r := range open {
			if err := visit(r); errors.Is(err, ErrStop) {
				break
			}
		}
	} else {
		decode := func(b []byte) error {
			var r Request
			if err := json.Unmarshal(b, &r); err != nil {
				return err
			}
			return visit(r)
		}
		var err error
		if rs, ok := e.cfg.Store.(RangeStore); ok {
			err = rs.EachRequestAfter(ctx, f.After, decode)
		} else {
			// No order from the store: read all (in id order), then page.
			var all []Request
			all, err = e.List(ctx)
			for _, r := range all {
				if err == nil {
					if verr := visit(r); errors.Is(verr, ErrStop) {
						break
					}
				}
			}
		}
		if err != nil && !errors.Is(err, ErrStop) {
			return nil, "", err
		}
	}
	next := ""
	if more && len(out) > 0 {
		next = out[len(out)-1].ID
	}
	return out, next, nil
}

// Run calls Step every interval until ctx ends.
func (e *Engine) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := e.Step(ctx); err != nil && ctx.Err() == nil {
			e.cfg.Logger.Error("dsar step failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Step runs every task that is due, once, Config.Batch requests at a time, and updates the
// requests durably after each batch (one transaction if the Store is a BatchStore). It
// returns how many tasks ran. Requests survive restarts: a task interrupted mid-way, or a
// batch whose write did not happen, is simply run again (connectors are idempotent).
func (e *Engine) Step(ctx context.Context) (int, error) {
	e.stepMu.Lock()
	defer e.stepMu.Unlock()
	all, err := e.openRequests(ctx)
	if err != nil {
		return 0, err
	}
	// Housekeeping failures are logged, never a reason to leave the requests unprocessed.
	if err := e.expireUnverified(ctx, all); err != nil {
		e.cfg.Logger.Error("dsar: expiring unverified requests failed", "err", err)
	}
	e.purgeDone(ctx)
	e.scrubErased(ctx)
	var due []string
	// erasing holds the subjects whose erasure runs this round or is under way: their
	// corrections wait (and are cancelled when it completes), since a patch applied after
	// the erasure would write personal data back into a masked row.
	erasing := map[privguard.SubjectID]bool{}
	runnable := func(r Request) bool {
		return !r.State.Final() && r.State != StateAwaitingVerify && r.State != StateReceived && r.State != StateAwaitingApproval
	}
	// The running access requests by subject, so that each erasure looks at its own
	// subject's only (a scan of all requests per erasure is quadratic in a bulk erasure).
	access := map[privguard.SubjectID][]Request{}
	for _, o := range all {
		if running(o) && (o.Type == TypeAccess || o.Type == TypePortability) {
			access[o.Subject] = append(access[o.Subject], o)
		}
	}
	for _, r := range all {
		if !runnable(r) || r.Type != TypeDeletion {
			continue
		}
		if e.accessPending(access[r.Subject], r, e.cfg.Now().UTC()) {
			continue // an earlier access request for the subject runs first
		}
		erasing[r.Subject] = true
		due = append(due, r.ID)
	}
	for _, r := range all {
		if runnable(r) && r.Type != TypeDeletion && !(r.Type == TypeCorrection && erasing[r.Subject]) {
			due = append(due, r.ID)
		}
	}
	// Requests advance Config.Batch at a time (see batchRun): in parallel, each request's
	// own tasks in order, one durable write per batch, written while the stores work on
	// the next batch.
	var (
		ran      int
		firstErr error
		commit   chan batchResult // the previous batch's commitBatch, if running
	)
	wait := func() {
		if commit != nil {
			res := <-commit
			ran, firstErr, commit = ran+res.ran, cmp.Or(firstErr, res.err), nil
		}
	}
	for batch := range slices.Chunk(due, e.cfg.Batch) {
		b := e.runBatch(ctx, batch)
		wait()
		done := make(chan batchResult, 1)
		commit = done
		go func() {
			n, err := e.commitBatch(ctx, b)
			done <- batchResult{n, err}
		}()
	}
	wait()
	return ran, firstErr
}

// AccessFirstWait caps how long an erasure waits for an earlier access request of the same
// subject to finish (so that the copy is made first): a stuck access request (a store
// down for days) must not hold the erasure past its own deadline.
const AccessFirstWait = 72 * time.Hour

// running reports whether o is verified, in progress or retrying.
func running(o Request) bool {
	return o.State == StateVerified || o.State == StateInProgress || o.State == StatePartiallyFailed
}

// accessPending reports whether an access or portability request for r's subject, received
// before r, is running (verified, in progress or retrying) while r has not started and was
// verified less than AccessFirstWait ago. An access request still waiting for its
// requester does not hold an erasure, and nothing pauses an erasure once it has started.
// all may be every open request or only the subject's running access requests.
func (e *Engine) accessPending(all []Request, r Request, now time.Time) bool {
	since := r.ReceivedAt
	if r.Identity != nil && !r.Identity.VerifiedAt.IsZero() {
		since = r.Identity.VerifiedAt
	}
	if r.State != StateVerified || now.Sub(since) >= AccessFirstWait {
		return false
	}
	for _, o := range all {
		earlier := o.ReceivedAt.Before(r.ReceivedAt) || (o.ReceivedAt.Equal(r.ReceivedAt) && o.ID < r.ID) // ids are time-ordered
		if o.Subject == r.Subject && (o.Type == TypeAccess || o.Type == TypePortability) && earlier && running(o) {
			return true
		}
	}
	return false
}

// merge combines what a round did (mine, from a copy read before the stores worked, whose
// tasks were baseTasks and events baseEvents long) with the request as someone else stored
// it meanwhile (cur: an operator's cancel, extension or retry, a store's callback). cur
// wins for every task whose outcome it changed (a callback) and for everything but the
// tasks; the round's results fill in the rest (a retry only moved the next attempt), and
// its events are appended. A request closed meanwhile stays closed; a package is kept only
// if every task of the merged request is done.
func merge(baseTasks []Task, baseEvents int, mine, cur Request) Request {
	m := cur
	m.Tasks = slices.Clone(cur.Tasks)
	for i := range m.Tasks {
		if i < len(baseTasks) && i < len(mine.Tasks) && sameOutcome(cur.Tasks[i], baseTasks[i]) {
			m.Tasks[i] = mine.Tasks[i]
		}
	}
	m.Events = append(slices.Clone(cur.Events), mine.Events[min(baseEvents, len(mine.Events)):]...)
	m.Applied = cur.Applied || mine.Applied
	if m.Result == nil && mine.Result != nil && !m.State.Final() && allDone(m.Tasks) {
		m.Result = mine.Result
	}
	if m.State == StateVerified && mine.State == StateInProgress {
		m.State = StateInProgress
	}
	return m
}

// sameOutcome reports whether two versions of a task agree on everything but the time of
// the next attempt (which Retry moves).
func sameOutcome(a, b Task) bool {
	return a.Store == b.Store && a.State == b.State && a.Attempts == b.Attempts &&
		a.LastError == b.LastError && a.Items == b.Items && a.DoneAt.Equal(b.DoneAt)
}

func allDone(tasks []Task) bool {
	return !slices.ContainsFunc(tasks, func(t Task) bool { return t.State != TaskDone })
}

// runTask does r's work on one store. A failure after the task's deadline passed (or
// privguard began stopping) wraps the context's error: that, not whatever the driver made
// of the cut connection, is its kind.
func (e *Engine) runTask(ctx context.Context, r *Request, store string) (n int, err error) {
	ctx, cancel := context.WithTimeout(WithTask(ctx, TaskInfo{Request: r.ID, Type: r.Type, Store: store, Op: taskOp(r.Type, store)}), e.cfg.TaskTimeout)
	defer cancel()
	defer func() {
		if err != nil && !errors.Is(err, ErrPending) && ctx.Err() != nil {
			err = fmt.Errorf("%w: %w", ctx.Err(), err)
		}
	}()
	if rn, ok := e.recipients[store]; ok {
		return 1, rn.NotifyRecipient(ctx, notice(r))
	}
	c, ok := e.connectors[store]
	if !ok {
		return 0, fmt.Errorf("store %s is no longer configured", store)
	}
	switch r.Type {
	case TypeAccess, TypePortability, TypeCategories:
		x, err := c.Export(ctx, r.Subject)
		if err != nil {
			return 0, err
		}
		x.Store = store
		return x.Rows(), e.keepExport(ctx, r, x)
	case TypeDeletion:
		x, err := c.Erase(ctx, r.Subject)
		return x.Items, err
	case TypeCorrection:
		rc, ok := c.(Rectifier)
		if !ok {
			// Done only if the store provably holds none of the patched categories;
			// otherwise the old value would stay there while the request says completed.
			// A store holding "user.contact" holds the patched "user.contact.email" too.
			if cl, ok := c.(CategoryLister); ok && !slices.ContainsFunc(cl.Categories(), func(held privguard.DataCategory) bool {
				for cat := range r.Patch {
					if cat.Within(held) || held.Within(cat) {
						return true
					}
				}
				return false
			}) {
				return 0, nil
			}
			return 0, &ConnectorError{Connector: store, Op: "correct", Err: errors.New("the store cannot correct; correct it by hand, then cancel the request with a note")}
		}
		patch := r.Patch
		if cl, ok := c.(CategoryLister); ok {
			held := cl.Categories()
			patch = maps.Clone(patch)
			maps.DeleteFunc(patch, func(c privguard.DataCategory, _ string) bool { return !slices.Contains(held, c) })
			if len(patch) == 0 {
				return 0, nil // the store holds none of the patched categories
			}
		}
		return rc.Correct(ctx, r.Subject, patch)
	}
	return 0, nil
}

// settle sets r's state from its tasks, running the completion hooks.
func (e *Engine) settle(ctx context.Context, r *Request, now time.Time, buildFailed bool) {
	if !e.finishErasure(ctx, r, now) {
		r.State = StatePartiallyFailed
		return
	}
	failed := slices.ContainsFunc(r.Tasks, func(t Task) bool { return t.State == TaskFailed })
	done := allDone(r.Tasks)
	switch {
	case failed, done && r.Type.producesResult() && r.Result == nil && buildFailed:
		r.State = StatePartiallyFailed
	case !done, r.Type.producesResult() && r.Result == nil:
		r.State = StateInProgress // the package is built next round
	default:
		r.State = StateCompleted
		r.event(now, "completed", "")
	}
}

// finishErasure completes an erasure once every store erased: the vault keys are shredded
// and the ledger records it (OnErased), then the subject's personal data is removed from
// every stored request of the subject, this one included (see scrub), without waiting for
// recipients to acknowledge their notices. It reports false if a step failed (recorded on
// r; retried next round).
func (e *Engine) finishErasure(ctx context.Context, r *Request, now time.Time) bool {
	if !storesErased(r) {
		return true
	}
	if !r.Applied && e.erasedAll[r.ID] {
		r.Applied = true
		r.event(now, "vault keys shredded, erasure recorded in the consent ledger", "")
	}
	if !r.Applied && e.cfg.OnErased != nil {
		if err := e.cfg.OnErased(ctx, r.Subject); err != nil {
			r.event(now, "completion step failed", describe("privguard", err))
			e.logStepFailed(r.ID, "shred the keys and record the erasure", err)
			return false
		}
		r.Applied = true
		r.event(now, "vault keys shredded, erasure recorded in the consent ledger", "")
	}
	if r.ScrubbedAt.IsZero() {
		// The subject's other requests are scrubbed (durably) before this one is written
		// as scrubbed: a crash in between only scrubs again.
		n, err := e.scrubSubject(ctx, r.Subject, r.ID, now, now)
		if err != nil {
			r.event(now, "completion step failed", describe("privguard", err))
			e.logStepFailed(r.ID, "scrub the subject's requests", err)
			return false
		}
		scrub(r, now)
		r.event(now, "the subject's personal data removed from its stored requests", fmt.Sprintf("%d other request(s)", n))
	}
	return true
}

// storesErased reports whether r is a deletion every store has done (recipients' notices
// aside): what finishErasure completes.
func storesErased(r *Request) bool {
	return r.Type == TypeDeletion && !slices.ContainsFunc(r.Tasks, func(t Task) bool { return t.State != TaskDone && !IsRecipientTask(t.Store) })
}

// logStepFailed logs that privguard's own step of request id failed (retried next
// round), with the error's kind only.
func (e *Engine) logStepFailed(id, step string, err error) {
	e.cfg.Logger.Error("dsar completion step failed", "request", id, "step", step, "kind", string(KindOf(err)))
}

// backoff is exponential with full jitter, capped.
func (e *Engine) backoff(attempt int) time.Duration {
	d := e.cfg.BaseBackoff << min(max(attempt, 1)-1, 20)
	if d <= 0 || d > e.cfg.MaxBackoff {
		d = e.cfg.MaxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

// describe names a failure without its text, which could hold personal data: the store,
// the operation if a connector named it, and the kind ("crm: erase failed: timeout").
func describe(store string, err error) string {
	var ce *ConnectorError
	if errors.As(err, &ce) {
		return ce.Connector + ": " + ce.Op + " failed: " + string(KindOf(err))
	}
	return store + ": failed: " + string(KindOf(err))
}
