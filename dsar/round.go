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

// BatchStore is the optional capability of a Store to write many requests at once, durably
// and all or none (one transaction, one fsync). Step writes each batch of rounds so;
// without it, one PutRequest per request.
type BatchStore interface {
	// PutRequests stores bodies[i] under ids[i] for every i, in one durable transaction.
	PutRequests(ctx context.Context, ids []string, bodies [][]byte) error
}

// round is one request's part of a Step: the request as read at the start (its tasks
// baseTasks and baseEvents events long, for merge) and what the round did to it.
type round struct {
	r          Request
	baseTasks  []Task
	baseEvents int
	now        time.Time
	// erased holds the outcome of the request's erasure on each store that erased the
	// whole batch at once (BatchEraser).
	erased      map[string]batchOutcome
	ran         int
	hookFailed  bool
	buildFailed bool
	token       string
}

type batchOutcome struct {
	items int
	err   error
}

// due reports whether t runs in a round at now: it is not done, and a failed or waiting
// task's next attempt has come.
func (t Task) due(now time.Time) bool {
	return t.State != TaskDone && !((t.State == TaskFailed || t.State == TaskWaiting) && now.Before(t.NextAttempt))
}

// A batch of rounds is run in two halves, so that Step can commit one batch while the
// stores work on the next. runBatch: (1) each request is read; (2) the erasures on every
// BatchEraser store are one EraseBatch call for all the deletions due there; (3) the other
// tasks run, the requests in parallel (Config.Workers), each request's tasks in order.
// None of it holds e.mu: operators and callbacks may change a request meanwhile, and the
// write merges (see merge). commitBatch: (4) under e.mu, each request is merged and settled
// as one round does, and every write of the batch (the requests, and the other requests an
// erasure scrubbed) is one transaction (BatchStore): every connector operation is
// idempotent, so a crash before it only means the batch's tasks run again.
type batchRun struct {
	rounds []*round
	err    error // the first failure to read a request
}

type batchResult struct {
	ran int
	err error
}

// runBatch is the first half of a batch: reading the requests ids and running their due
// tasks.
func (e *Engine) runBatch(ctx context.Context, ids []string) *batchRun {
	b := &batchRun{rounds: make([]*round, 0, len(ids))}
	for _, id := range ids {
		r, err := e.get(ctx, id)
		if err != nil {
			b.err = cmp.Or(b.err, err)
			continue
		}
		switch r.State {
		case StateVerified, StateInProgress, StatePartiallyFailed:
			b.rounds = append(b.rounds, &round{r: r, baseTasks: slices.Clone(r.Tasks), baseEvents: len(r.Events), now: e.cfg.Now().UTC()})
		default: // closed or sent back since Step listed it
		}
	}

	e.eraseBatches(ctx, b.rounds)

	var wg sync.WaitGroup
	sem := make(chan struct{}, e.cfg.Workers)
	for _, rd := range b.rounds {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			e.work(ctx, rd)
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
	erased := e.eraseAll(ctx, b.rounds)
	e.mu.Lock()
	e.batch = &writeBatch{index: map[string]int{}}
	e.erasedAll = erased
	var written []*round
	for _, rd := range b.rounds {
		if err := e.settleRound(ctx, rd); err != nil {
			firstErr = cmp.Or(firstErr, err)
			continue
		}
		written = append(written, rd)
	}
	err := e.flush(ctx)
	e.erasedAll = nil
	e.mu.Unlock()
	if err != nil {
		return ran, cmp.Or(firstErr, err)
	}
	for _, rd := range written {
		if rd.token == "" {
			continue
		}
		e.dropParts(ctx, rd.r)
		if rd.r.TransferTo != "" {
			e.transfer(ctx, rd.r, rd.token)
		} else {
			e.sendLink(ctx, rd.r, rd.token)
		}
	}
	return ran, firstErr
}

// eraseAll runs Config.OnErasedAll for the deletions of rounds that every store has
// erased and that are not yet applied, and returns their request ids if it succeeded.
func (e *Engine) eraseAll(ctx context.Context, rounds []*round) map[string]bool {
	if e.cfg.OnErasedAll == nil {
		return nil
	}
	var subjects []privguard.SubjectID
	ids := map[string]bool{}
	for _, rd := range rounds {
		r := &rd.r
		if r.Applied || !storesErased(r) {
			continue
		}
		subjects = append(subjects, r.Subject)
		ids[r.ID] = true
	}
	if len(subjects) == 0 {
		return nil
	}
	if err := e.cfg.OnErasedAll(ctx, subjects); err != nil {
		e.cfg.Logger.Error("dsar: completing a batch of erasures failed; completing them one by one", "requests", len(ids), "kind", string(KindOf(err)))
		return nil
	}
	return ids
}

// eraseBatches runs, for each store that erases in batches, the erasures due there of
// every deletion among rounds in one call, under Config.TaskTimeout, the stores at the
// same time, and records each request's outcome for work.
func (e *Engine) eraseBatches(ctx context.Context, rounds []*round) {
	type call struct {
		name     string
		subjects []privguard.SubjectID
		of       []*round
		out      []Erased
		err      error
	}
	var calls []*call
	for _, name := range e.names {
		if _, ok := e.connectors[name].(BatchEraser); !ok {
			continue
		}
		c := &call{name: name}
		for _, rd := range rounds {
			if rd.r.Type != TypeDeletion {
				continue
			}
			if i := slices.IndexFunc(rd.r.Tasks, func(t Task) bool { return t.Store == name }); i >= 0 && rd.r.Tasks[i].due(rd.now) {
				c.subjects, c.of = append(c.subjects, rd.r.Subject), append(c.of, rd)
			}
		}
		if len(c.subjects) > 0 {
			calls = append(calls, c)
		}
	}
	var wg sync.WaitGroup
	for _, c := range calls {
		wg.Go(func() {
			c.out, c.err = e.eraseBatch(ctx, e.connectors[c.name].(BatchEraser), c.subjects)
			if c.err == nil && len(c.out) != len(c.subjects) {
				c.err = &ConnectorError{Connector: c.name, Op: "erase", Kind: KindBadAnswer,
					Err: fmt.Errorf("%d results for %d subjects", len(c.out), len(c.subjects))}
			}
		})
	}
	wg.Wait()
	for _, c := range calls {
		for i, rd := range c.of {
			if rd.erased == nil {
				rd.erased = map[string]batchOutcome{}
			}
			if c.err != nil {
				rd.erased[c.name] = batchOutcome{err: c.err}
			} else {
				rd.erased[c.name] = batchOutcome{items: c.out[i].Items}
			}
		}
	}
}

// eraseBatch is runTask's deadline and error wrapping for one EraseBatch call.
func (e *Engine) eraseBatch(ctx context.Context, be BatchEraser, subjects []privguard.SubjectID) (_ []Erased, err error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.TaskTimeout)
	defer cancel()
	out, err := be.EraseBatch(ctx, subjects)
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w: %w", ctx.Err(), err)
	}
	return out, err
}

// work runs the round's due tasks (those erased in a batch take the batch's outcome) and
// builds an access request's result when every store has answered.
func (e *Engine) work(ctx context.Context, rd *round) {
	r, now := &rd.r, rd.now
	if r.State == StateVerified {
		r.State = StateInProgress
		r.event(now, "started", "")
	}
	// A restriction or objection takes effect first (in the ledger, so on the next policy
	// decision); telling the recipients follows.
	if (r.Type == TypeRestriction || r.Type == TypeObjection) && !r.Applied && e.cfg.OnSubjectFact != nil {
		if err := e.cfg.OnSubjectFact(ctx, *r); err != nil {
			rd.hookFailed = true
			r.State = StatePartiallyFailed
			r.event(now, "completion step failed", describe("privguard", err))
			e.logStepFailed(r.ID, "record in the consent ledger", err)
		} else {
			r.Applied = true
			r.event(now, "recorded in the consent ledger", string(r.Type))
		}
	}
	for i := range r.Tasks {
		t := &r.Tasks[i]
		if rd.hookFailed || !t.due(now) {
			continue
		}
		rd.ran++
		t.Attempts++
		var items int
		var err error
		if o, ok := rd.erased[t.Store]; ok {
			items, err = o.items, o.err
		} else {
			items, err = e.runTask(ctx, r, t.Store)
		}
		if errors.Is(err, ErrPending) {
			t.State, t.LastError, t.ErrorKind, t.NextAttempt = TaskWaiting, "", "", now.Add(PendingRecheck)
			r.event(now, "task accepted, waiting for the store", t.Store)
			continue
		}
		if err != nil {
			t.State, t.LastError, t.ErrorKind = TaskFailed, describe(t.Store, err), KindOf(err)
			t.NextAttempt = now.Add(e.backoff(t.Attempts))
			r.event(now, "task failed", t.LastError)
			// The kind, never the error's text (it can quote the subject's data).
			e.cfg.Logger.Warn("dsar task failed", "request", r.ID, "store", t.Store, "op", taskOp(r.Type, t.Store),
				"kind", string(t.ErrorKind), "attempt", t.Attempts, "retry_at", t.NextAttempt)
		} else {
			t.State, t.Items, t.DoneAt, t.LastError, t.ErrorKind = TaskDone, items, now, "", ""
			r.event(now, "task done", t.Store)
		}
	}
	if r.Type.producesResult() && r.Result == nil && allDone(r.Tasks) {
		var err error
		if rd.token, err = e.buildResult(ctx, r, now); err != nil {
			rd.buildFailed = true
			r.event(now, "result not built", describe("privguard", err))
			e.logStepFailed(r.ID, "build the result", err)
		}
	}
}

// settleRound merges the round with the request as stored now (someone may have changed
// it meanwhile), settles its state and puts it. e.mu must be held.
func (e *Engine) settleRound(ctx context.Context, rd *round) error {
	cur, err := e.load(ctx, rd.r.ID)
	if err != nil {
		return err
	}
	if cur.Version != rd.r.Version {
		rd.r = merge(rd.baseTasks, rd.baseEvents, rd.r, cur)
		if rd.r.Result == nil {
			rd.token = "" // the package was not kept: it is built again, or destroyed
		}
	}
	switch {
	case rd.r.State.Final():
		// Closed meanwhile (cancelled, rejected). What the stores did is recorded; an
		// erasure the stores finished is still completed in the vault and the ledger.
		e.finishErasure(ctx, &rd.r, rd.now)
	case rd.hookFailed:
	default:
		e.settle(ctx, &rd.r, rd.now, rd.buildFailed)
	}
	return e.put(ctx, &rd.r)
}

// writeBatch is what put wrote while e.batch was set: the last encoding of each request,
// in the order first written.
type writeBatch struct {
	ids    []string
	bodies [][]byte
	index  map[string]int
}

func (w *writeBatch) add(id string, body []byte) {
	if i, ok := w.index[id]; ok {
		w.bodies[i] = body
		return
	}
	w.index[id] = len(w.ids)
	w.ids, w.bodies = append(w.ids, id), append(w.bodies, body)
}

// load returns request id as put last wrote it: from the batch being written, if it is
// there, or from the store. e.mu must be held.
func (e *Engine) load(ctx context.Context, id string) (Request, error) {
	if e.batch != nil {
		if i, ok := e.batch.index[id]; ok {
			var r Request
			if err := json.Unmarshal(e.batch.bodies[i], &r); err != nil {
				return Request{}, fmt.Errorf("dsar: stored request: %w", err)
			}
			return r, nil
		}
	}
	return e.get(ctx, id)
}

// flush writes the batch and ends batch mode. If the write fails, the in-memory indexes
// (updated by put as it went) are dropped, to be built again from the store. e.mu must be
// held.
func (e *Engine) flush(ctx context.Context) error {
	w := e.batch
	e.batch = nil
	if len(w.ids) == 0 {
		return nil
	}
	var err error
	if bs, ok := e.cfg.Store.(BatchStore); ok {
		err = bs.PutRequests(ctx, w.ids, w.bodies)
	} else {
		for i, id := range w.ids {
			if err = e.cfg.Store.PutRequest(ctx, id, w.bodies[i]); err != nil {
				break
			}
		}
	}
	if err != nil {
		e.open, e.active, e.results, e.personal, e.unscrubbed = nil, nil, nil, nil, nil
		return fmt.Errorf("dsar: store requests: %w: %w", err, privguard.ErrUnavailable)
	}
	return nil
}
