package dsar

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/privguard/privguard"
)

// The scheduler: which requests have a round, when, and how their rounds are run and
// written. Alone with its store, the engine finds due work in its index of open requests;
// on a shared store (a Leaser), it leases due work and holds it while it runs.

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
//
// On a Store with the Leaser capability, Step works only on the requests it leases (those
// due, Config.Batch at a time, until none is left), renews their leases while it works,
// stops the work of a request whose lease is lost, and releases them when written.
func (e *Engine) Step(ctx context.Context) (int, error) {
	e.stepMu.Lock()
	defer e.stepMu.Unlock()
	if e.leaser != nil {
		return e.stepLeased(ctx)
	}
	return e.stepAlone(ctx)
}

// stepAlone is Step on a store of this process alone.
func (e *Engine) stepAlone(ctx context.Context) (int, error) {
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
	due := e.dueAlone(all, e.cfg.Now().UTC())
	// Requests advance Config.Batch at a time (see runBatch): in parallel, each request's
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
		rounds, err := e.readRounds(ctx, batch)
		b := e.runBatch(ctx, rounds, nil)
		b.err = err
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

// dueAlone returns the ids of the open requests that have a round now: the runnable
// ones, erasures first, except an erasure behind an earlier access request of its subject
// and a correction of a subject whose erasure runs this round or is under way (a patch
// applied after the erasure would write personal data back into a masked row).
func (e *Engine) dueAlone(all []Request, now time.Time) []string {
	var due []string
	erasing := map[privguard.SubjectID]bool{}
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
		if accessPending(access[r.Subject], r, now) {
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
	return due
}

// stepLeased is Step on a store shared with other replicas.
func (e *Engine) stepLeased(ctx context.Context) (int, error) {
	var (
		ran      int
		firstErr error
		seen     = map[string]bool{}
	)
	for ctx.Err() == nil {
		taken := e.cfg.Now().UTC()
		leased, err := e.leaser.Lease(ctx, e.cfg.Replica, taken, e.cfg.LeaseTTL, e.cfg.LeaseBatch)
		if err != nil {
			return ran, cmp.Or(firstErr, fmt.Errorf("dsar: lease requests: %w: %w", err, privguard.ErrUnavailable))
		}
		again := false // a request of an earlier batch is due again (a step retried every round)
		for _, l := range leased {
			again = again || seen[l.ID]
			seen[l.ID] = true
		}
		if len(leased) > 0 {
			n, err := e.workLeased(ctx, leased, taken)
			ran, firstErr = ran+n, cmp.Or(firstErr, err)
		}
		if again || len(leased) < e.cfg.LeaseBatch {
			break
		}
	}
	return ran, firstErr
}

// workLeased runs a batch of leased requests: the rounds of the runnable ones, the
// housekeeping of the others (see tend), holding their leases until they are written.
func (e *Engine) workLeased(ctx context.Context, leased []Leased, taken time.Time) (int, error) {
	ids := make([]string, len(leased))
	for i, l := range leased {
		ids[i] = l.ID
	}
	lease := keep(ctx, e.leaser, e.cfg.Replica, e.cfg.LeaseTTL, e.cfg.Now, taken, ids)
	defer func() {
		lease.stop()
		// A killed replica releases nothing: its leases lapse, and another takes over.
		if err := e.leaser.Release(ctx, e.cfg.Replica, ids); err != nil && ctx.Err() == nil {
			e.cfg.Logger.Warn("dsar: leases not released; they lapse", "requests", len(ids), "err", describe("privguard", err))
		}
	}()
	var firstErr error
	all := make([]Request, 0, len(leased))
	for _, l := range leased {
		var r Request
		if err := json.Unmarshal(l.Body, &r); err != nil {
			firstErr = cmp.Or(firstErr, fmt.Errorf("dsar: stored request %s: %w", l.ID, err))
			continue
		}
		all = append(all, r)
	}
	now := e.cfg.Now().UTC()
	others, err := e.runningOfSubjects(ctx, all)
	if err != nil {
		return 0, err
	}
	var rounds []*round
	for _, r := range all {
		var err error
		switch {
		case !runnable(r):
			err = e.tend(lease.ctx(r.ID), r, now)
		case waits(r, others[r.Subject], now):
			e.mu.Lock()
			err = e.putLeased(lease.ctx(r.ID), &r, now.Add(LeasedRecheck))
			e.mu.Unlock()
		default:
			rounds = append(rounds, newRound(r, now))
		}
		firstErr = cmp.Or(firstErr, err)
	}
	b := e.runBatch(ctx, rounds, lease)
	n, err := e.commitBatch(ctx, b)
	return n, cmp.Or(firstErr, err)
}

// runningOfSubjects returns, by subject, the running requests of the subjects of rs'
// runnable erasures and corrections, for waits.
func (e *Engine) runningOfSubjects(ctx context.Context, rs []Request) (map[privguard.SubjectID][]Request, error) {
	var ask []Request
	for _, r := range rs {
		if runnable(r) && (r.Type == TypeDeletion || r.Type == TypeCorrection) {
			ask = append(ask, r)
		}
	}
	out := map[privguard.SubjectID][]Request{}
	if len(ask) == 0 {
		return out, nil
	}
	bodies, err := e.leaser.SubjectRequests(ctx, subjectsOf(ask))
	if err != nil {
		return nil, fmt.Errorf("dsar: read the subjects' requests: %w: %w", err, privguard.ErrUnavailable)
	}
	for _, b := range bodies {
		var o Request
		if err := json.Unmarshal(b, &o); err != nil {
			return nil, fmt.Errorf("dsar: stored request: %w", err)
		}
		if running(o) {
			out[o.Subject] = append(out[o.Subject], o)
		}
	}
	return out, nil
}

// waits reports whether runnable request r must wait, at now, for another of its subject's
// running requests (others): an erasure for an earlier access request, a correction for
// an erasure (as dueAlone decides).
func waits(r Request, others []Request, now time.Time) bool {
	switch r.Type {
	case TypeDeletion:
		return accessPending(others, r, now)
	case TypeCorrection:
		return slices.ContainsFunc(others, func(o Request) bool {
			return o.Type == TypeDeletion && !accessPending(others, o, now)
		})
	}
	return false
}

// tend does the housekeeping of a leased request that has no round: cancel it if it was
// left unverified too long, destroy its package once downloaded or expired, finish the
// scrub of an erasure recorded before requests were scrubbed. It writes the request (its
// due time then moves on), also when there was nothing to do.
func (e *Engine) tend(ctx context.Context, r Request, now time.Time) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	expire(&r, now)
	if at, ok := resultDue(&r); ok && e.cfg.Sealer != nil && !now.Before(at) && (r.Result == nil || !now.Before(r.Result.DeliveringUntil)) {
		if err := e.destroy(ctx, &r, now); err != nil {
			e.cfg.Logger.Error("dsar: destroying a result failed", "request", r.ID, "err", describe("privguard", err))
		}
	}
	if r.Type == TypeDeletion && r.Applied && r.State.Final() && r.ScrubbedAt.IsZero() {
		if err := e.scrubErasure(ctx, &r, now); err != nil {
			e.cfg.Logger.Error("dsar: scrubbing an erased subject's requests failed", "request", r.ID, "err", describe("privguard", err))
		}
	}
	return e.putLeased(ctx, &r, now.Add(LeasedRecheck))
}

// batchRun is a batch of rounds, run in two halves so that Step can commit one batch
// while the stores work on the next. runBatch: (1) the erasures on every BatchEraser store
// are one EraseBatch call for all the deletions due there; (2) each round's work half
// runs, the requests in parallel (Config.Workers), each request's work in order. None of
// it holds e.mu: operators and callbacks may change a request meanwhile, and the write
// merges (see merge). commitBatch: (3) under e.mu, each round's settle half runs on the
// request as merged with the stored one, and every write of the batch (the requests, and
// the other requests an erasure scrubbed) is one transaction (BatchStore) when alone; on
// a shared store, the rounds' writes are one fenced call (see settleLeased). Every
// connector operation is idempotent, so a crash before it only means the batch's tasks
// run again. (4) The packages the batch finished are handed over.
type batchRun struct {
	rounds []*round
	lease  *keeper // nil when alone
	err    error   // the first failure to read a request
}

type batchResult struct {
	ran int
	err error
}

// readRounds reads the requests ids and starts a round for each that is still runnable.
func (e *Engine) readRounds(ctx context.Context, ids []string) ([]*round, error) {
	var firstErr error
	rounds := make([]*round, 0, len(ids))
	for _, id := range ids {
		r, err := e.get(ctx, id)
		if err != nil {
			firstErr = cmp.Or(firstErr, err)
			continue
		}
		if running(r) { // not closed or sent back since Step listed it
			rounds = append(rounds, newRound(r, e.cfg.Now().UTC()))
		}
	}
	return rounds, firstErr
}

// roundCtx is the context of a round's work: with a lease, cancelled when it is lost.
func (b *batchRun) roundCtx(ctx context.Context, rd *round) context.Context {
	if b.lease == nil {
		return ctx
	}
	return b.lease.ctx(rd.r.ID)
}

// runBatch is the first half of a batch: the rounds' work.
func (e *Engine) runBatch(ctx context.Context, rounds []*round, lease *keeper) *batchRun {
	b := &batchRun{rounds: rounds, lease: lease}
	e.eraseBatches(ctx, b.rounds, lease)
	c := e.rules()
	var wg sync.WaitGroup
	sem := make(chan struct{}, e.cfg.Workers)
	for _, rd := range b.rounds {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			e.drive(b.roundCtx(ctx, rd), rd, rd.begin(c))
		})
	}
	wg.Wait()
	return b
}

// commitBatch is the second half: settling and writing the batch's requests, then
// delivering the packages it finished. It returns how many tasks the batch ran.
func (e *Engine) commitBatch(ctx context.Context, b *batchRun) (int, error) {
	firstErr := b.err
	ran := 0
	for _, rd := range b.rounds {
		ran += rd.ran
	}
	e.eraseAll(ctx, b.rounds)
	e.mu.Lock()
	if b.lease == nil {
		e.batch = &writeBatch{index: map[string]int{}}
	}
	var written []*round
	if b.lease != nil {
		var err error
		written, err = e.settleLeased(ctx, b)
		firstErr = cmp.Or(firstErr, err)
	} else {
		for _, rd := range b.rounds {
			if err := e.settleRound(ctx, rd); err != nil {
				firstErr = cmp.Or(firstErr, err)
				continue
			}
			written = append(written, rd)
		}
	}
	var err error
	if b.lease == nil {
		err = e.flush(ctx)
	}
	e.mu.Unlock()
	if err != nil {
		return ran, cmp.Or(firstErr, err)
	}
	for _, rd := range written {
		if rd.token != "" {
			e.deliver(ctx, rd.r, rd.token)
		}
	}
	return ran, firstErr
}

// eraseAll runs Config.OnErasedAll for the deletions of rounds that every store has
// erased and that are not yet applied, and marks their rounds if it succeeded.
func (e *Engine) eraseAll(ctx context.Context, rounds []*round) {
	if e.cfg.OnErasedAll == nil {
		return
	}
	var subjects []privguard.SubjectID
	var of []*round
	for _, rd := range rounds {
		r := &rd.r
		if r.Applied || !storesErased(r) {
			continue
		}
		subjects, of = append(subjects, r.Subject), append(of, rd)
	}
	if len(subjects) == 0 {
		return
	}
	if err := e.cfg.OnErasedAll(ctx, subjects); err != nil {
		e.cfg.Logger.Error("dsar: completing a batch of erasures failed; completing them one by one", "requests", len(of), "kind", string(KindOf(err)))
		return
	}
	for _, rd := range of {
		rd.erasedAll = true
	}
}

// settleRound runs the round's settle half on the request as stored now (someone may have
// changed it meanwhile: the round's work is merged into it) and puts it, into the batch
// being written. e.mu must be held.
func (e *Engine) settleRound(ctx context.Context, rd *round) error {
	mine := rd.r
	mine.Events = slices.Clone(mine.Events)
	cur, err := e.load(ctx, rd.r.ID)
	if err != nil {
		return err
	}
	if cur.Version != mine.Version {
		rd.rebase(mine, cur)
	}
	e.drive(ctx, rd, rd.settle(e.rules()))
	return e.put(ctx, &rd.r)
}

// settleLeased is settleRound for the rounds of a leased batch, their writes made at once:
// each round's settle half runs on its request as stored now, in the rounds' order, and
// then every write is one fenced PutRequestsLeased call. The rounds whose write found the
// request changed since it was read merge again and are written again together, twice at
// most; a round whose lease was lost (before its settle half, before the write, or as the
// store found when writing) is dropped: the replica that holds it now does its work again.
// It returns the rounds written and the first failure in the rounds' order. e.mu must be
// held.
func (e *Engine) settleLeased(ctx context.Context, b *batchRun) ([]*round, error) {
	errs := make([]error, len(b.rounds))
	mine := make([]Request, len(b.rounds)) // each round's request as its work half left it
	var todo []int
	for i, rd := range b.rounds {
		if b.lease.lost(rd.r.ID) {
			// Its work was cut short; the replica that holds it now does it again.
			errs[i] = fmt.Errorf("dsar: request %s: %w", rd.r.ID, ErrLeaseLost)
			continue
		}
		mine[i] = rd.r
		mine[i].Events = slices.Clone(rd.r.Events)
		todo = append(todo, i)
	}
	c := e.rules()
	for attempt := 0; len(todo) > 0; attempt++ {
		var (
			ws []Write
			of []int // of[j]: the round of ws[j]
		)
		for _, i := range todo {
			rd := b.rounds[i]
			rctx := b.lease.ctx(rd.r.ID)
			cur, err := e.load(rctx, rd.r.ID)
			if err != nil {
				errs[i] = err
				continue
			}
			if cur.Version != mine[i].Version {
				rd.rebase(mine[i], cur)
			}
			e.drive(rctx, rd, rd.settle(c))
			w, err := writeOf(&rd.r, time.Time{})
			if err != nil {
				errs[i] = err
				continue
			}
			ws, of = append(ws, w), append(of, i)
		}
		// A round whose lease the keeper gave up meanwhile is not written, as its own
		// write under its cancelled context would not be.
		kept := 0
		for j, w := range ws {
			i := of[j]
			if err := b.lease.ctx(w.ID).Err(); err != nil {
				errs[i] = e.wrote(&b.rounds[i].r, fmt.Errorf("put request %s: %w", w.ID, err))
				continue
			}
			ws[kept], of[kept] = w, i
			kept++
		}
		ws, of = ws[:kept], of[:kept]
		if len(ws) == 0 {
			break
		}
		outcomes, err := e.leaser.PutRequestsLeased(ctx, e.cfg.Replica, e.cfg.Now().UTC(), ws)
		if err == nil && len(outcomes) != len(ws) {
			err = fmt.Errorf("put %d requests: %d outcomes", len(ws), len(outcomes))
		}
		todo = todo[:0]
		for j, i := range of {
			out := err
			if err == nil {
				out = outcomes[j]
			}
			errs[i] = e.wrote(&b.rounds[i].r, out)
			if errors.Is(out, ErrVersion) && attempt < 2 {
				todo = append(todo, i)
			}
		}
	}
	var written []*round
	var firstErr error
	for i, rd := range b.rounds {
		if errs[i] != nil {
			firstErr = cmp.Or(firstErr, errs[i])
			continue
		}
		written = append(written, rd)
	}
	return written, firstErr
}
