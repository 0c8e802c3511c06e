package dsar

import (
	"context"
	"slices"
)

// The executors: each does one kind of work the core asks for and reports its outcome.
// Store tasks are in tasks.go, recipients' notices in recipients.go, packages in
// result.go; privguard's own steps (the ledger, the vault, the scrub) are here. None of
// them changes the request: the core does, from the outcome.

// drive feeds the core the round's work, one piece at a time in the order asked, until
// none is left. ws is the work the core asked for first.
func (e *Engine) drive(ctx context.Context, rd *round, ws []work) {
	c := e.rules()
	for len(ws) > 0 {
		o := e.execute(ctx, rd, ws[0])
		ws = append(ws[1:], rd.next(c, o)...)
		e.logOutcome(rd, o)
	}
}

// execute does one piece of work for the round's request.
func (e *Engine) execute(ctx context.Context, rd *round, w work) outcome {
	r := &rd.r
	o := outcome{work: w}
	switch w.kind {
	case doFact:
		o.err = e.cfg.OnSubjectFact(ctx, *r)
	case doTask:
		if b, ok := rd.erased[w.store]; ok {
			o.items, o.err = b.items, b.err
		} else if r.Type == TypeRetention {
			o.sweep, o.err = e.runSweep(ctx, r, w.store)
		} else {
			o.items, o.err = e.runTask(ctx, r, w.store)
		}
	case doBuild:
		o.result, o.token, o.err = e.buildResult(ctx, r, rd.now)
	case doErased:
		o.err = e.cfg.OnErased(ctx, r.Subject)
	case doScrub:
		o.n, o.err = e.scrubSubject(ctx, r.Subject, r.ID, rd.now, rd.now)
	case doExplain:
		var x Explanation
		if x, o.err = e.cfg.Explain(ctx, *r); o.err == nil {
			if x.Decisions == nil {
				x.Decisions = []AutomatedDecision{}
			}
			o.explanation = &x
		}
	}
	return o
}

// logOutcome logs a failure of o's work (retried later), by its kind only: the error's
// text can quote the subject's data.
func (e *Engine) logOutcome(rd *round, o outcome) {
	if o.err == nil || isPending(o.err) {
		return
	}
	r := &rd.r
	switch o.kind {
	case doFact:
		e.logStepFailed(r.ID, "record in the consent ledger", o.err)
	case doTask:
		if i := slices.IndexFunc(r.Tasks, func(t Task) bool { return t.Store == o.store }); i >= 0 {
			t := r.Tasks[i]
			e.cfg.Logger.Warn("dsar task failed", "request", r.ID, "store", t.Store, "op", taskOp(r.Type, t.Store),
				"kind", string(t.ErrorKind), "attempt", t.Attempts, "retry_at", t.NextAttempt)
		}
	case doBuild:
		e.logStepFailed(r.ID, "build the result", o.err)
	case doErased:
		e.logStepFailed(r.ID, "shred the keys and record the erasure", o.err)
	case doScrub:
		e.logStepFailed(r.ID, "scrub the subject's requests", o.err)
	case doExplain:
		e.logStepFailed(r.ID, "explain the automated decisions", o.err)
	}
}

// logStepFailed logs that privguard's own step of request id failed (retried next
// round), with the error's kind only.
func (e *Engine) logStepFailed(id, step string, err error) {
	e.cfg.Logger.Error("dsar completion step failed", "request", id, "step", step, "kind", string(KindOf(err)))
}

// rules are the parts of the configuration the core follows.
func (e *Engine) rules() rules {
	return rules{recordsFacts: e.cfg.OnSubjectFact != nil, completesErasures: e.cfg.OnErased != nil, backoff: e.backoff}
}
