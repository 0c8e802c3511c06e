package dsar

import (
	"fmt"
	"slices"
	"time"

	"github.com/privguard/privguard"
)

// The core of the engine: what a round does to a request, without I/O, clock or engine.
// A round is fed events (the round begins; an executor reports the outcome of a piece of
// work) and answers each with the request as it now stands and the work to do next. The
// scheduler (scheduler.go) decides which requests have a round and writes them; the
// executors (execute.go, tasks.go, recipients.go, result.go) do the work.
//
// A round has two halves. The work half (begin, then outcomes) records a restriction or
// objection, runs the due tasks in order and builds a package once every store answered.
// The settle half (settle, then outcomes), on the request as merged with the stored one,
// completes a finished erasure (the vault and the ledger, then the scrub of the subject's
// other requests) and decides the request's state.

// workKind is a kind of work the core asks for.
type workKind int

const (
	doFact    workKind = iota // record a restriction or objection (Config.OnSubjectFact)
	doTask                    // run a task: a store's export, erasure or correction, or a recipient's notice
	doBuild                   // build the access package from the stored parts
	doErased                  // complete an erasure in the vault and the ledger (Config.OnErased)
	doScrub                   // remove the subject's personal data from its other requests
	doExplain                 // answer an explanation request (Config.Explain)
)

// work is one piece of work for an executor.
type work struct {
	kind  workKind
	store string // doTask: the task's store (a connector's name, or "recipient:" + name)
}

// outcome is an executor's report of one piece of work: the event the core applies next.
type outcome struct {
	work
	err   error
	items int // doTask: rows exported or items erased or corrected
	// doBuild: the package's description and its first download token.
	result *Result
	token  string
	n      int // doScrub: how many other requests were scrubbed
	// sweep is a retention task's progress (doTask of a retention run), failed or not.
	sweep *sweepProgress
	// explanation is doExplain's answer.
	explanation *Explanation
}

// sweepProgress is where a retention task's actions stand after an attempt.
type sweepProgress struct {
	counts []int
	next   int
	more   bool // the task stopped at its round's budget with work left: it runs again next round
}

// rules are the parts of the configuration the core follows.
type rules struct {
	recordsFacts      bool // Config.OnSubjectFact is set
	completesErasures bool // Config.OnErased is set
	backoff           func(attempt int) time.Duration
}

// round is one request's round: the request as read at the start (its tasks baseTasks
// and baseEvents events long, for merge) and what the round did to it.
type round struct {
	r          Request
	baseTasks  []Task
	baseEvents int
	now        time.Time
	// erased holds the outcome of the request's erasure on each store that erased the
	// whole batch at once (BatchEraser).
	erased map[string]batchOutcome
	// erasedAll reports that Config.OnErasedAll completed the erasure for the batch.
	erasedAll   bool
	ran         int
	hookFailed  bool
	buildFailed bool
	token       string
	// stepFailed reports that a settle step (the vault, the ledger, the scrub) failed.
	stepFailed bool
}

type batchOutcome struct {
	items int
	err   error
}

func newRound(r Request, now time.Time) *round {
	return &round{r: r, baseTasks: slices.Clone(r.Tasks), baseEvents: len(r.Events), now: now}
}

// begin starts the work half and returns its first work.
func (rd *round) begin(c rules) []work {
	r, now := &rd.r, rd.now
	if r.State == StateVerified {
		r.State = StateInProgress
		r.event(now, "started", "")
	}
	// A restriction or objection takes effect first (in the ledger, so on the next policy
	// decision); telling the recipients follows.
	if (r.Type == TypeRestriction || r.Type == TypeObjection) && !r.Applied && c.recordsFacts {
		return []work{{kind: doFact}}
	}
	if r.Type == TypeExplanation && r.Explanation == nil {
		return []work{{kind: doExplain}}
	}
	return rd.tasks()
}

// tasks returns the round's due tasks, in order, or what follows when none is due.
func (rd *round) tasks() []work {
	var ws []work
	for _, t := range rd.r.Tasks {
		if t.due(rd.now) {
			ws = append(ws, work{kind: doTask, store: t.Store})
		}
	}
	if len(ws) == 0 {
		return rd.build()
	}
	return ws
}

// build asks for the package once every task is done.
func (rd *round) build() []work {
	r := &rd.r
	if r.Type.producesResult() && r.Result == nil && allDone(r.Tasks) {
		return []work{{kind: doBuild}}
	}
	return nil
}

// next applies an outcome and returns the work that follows it.
func (rd *round) next(c rules, o outcome) []work {
	r, now := &rd.r, rd.now
	switch o.kind {
	case doFact:
		if o.err != nil {
			rd.hookFailed = true
			r.State = StatePartiallyFailed
			r.event(now, "completion step failed", describe("privguard", o.err))
			return nil
		}
		r.Applied = true
		r.event(now, "recorded in the consent ledger", string(r.Type))
		return rd.tasks()
	case doExplain:
		if o.err != nil {
			rd.hookFailed = true
			r.State = StatePartiallyFailed
			r.event(now, "explanation not built", describe("privguard", o.err))
			return nil
		}
		r.Explanation = o.explanation
		r.event(now, "explanation ready", fmt.Sprintf("%d automated-decision purpose(s)", len(o.explanation.Decisions)))
		return rd.tasks()
	case doTask:
		i := slices.IndexFunc(r.Tasks, func(t Task) bool { return t.Store == o.store })
		if i < 0 {
			return nil
		}
		rd.ran++
		t := &r.Tasks[i]
		if p := o.sweep; p != nil {
			t.Counts, t.Next = p.counts, p.next
			o.items = 0
			for _, n := range p.counts {
				o.items += n
			}
			if o.err == nil && p.more {
				// Not a failure: the round's budget ran out. Due again next round.
				t.Attempts++
				t.State, t.Items, t.NextAttempt, t.LastError, t.ErrorKind = TaskPending, o.items, time.Time{}, "", ""
				return rd.build()
			}
			t.Items = o.items // kept when the attempt failed, too
		}
		taskOutcome(t, r, o.items, o.err, now, c.backoff)
		return rd.build()
	case doBuild:
		if o.err != nil {
			rd.buildFailed = true
			r.event(now, "result not built", describe("privguard", o.err))
			return nil
		}
		r.Result, rd.token = o.result, o.token
		r.event(now, "result ready", fmt.Sprintf("%d files, %d bytes", o.result.Files, o.result.Bytes))
		return nil
	case doErased:
		if o.err != nil {
			return rd.failStep(o.err)
		}
		r.Applied = true
		r.event(now, "vault keys shredded, erasure recorded in the consent ledger", "")
		return rd.finish(c)
	case doScrub:
		if o.err != nil {
			return rd.failStep(o.err)
		}
		scrub(r, now)
		r.event(now, "the subject's personal data removed from its stored requests", fmt.Sprintf("%d other request(s)", o.n))
		return rd.finish(c)
	}
	return nil
}

// taskOutcome records one attempt of task t of r: waiting for the store's callback,
// failed (retried after a backoff) or done.
func taskOutcome(t *Task, r *Request, items int, err error, now time.Time, backoff func(int) time.Duration) {
	t.Attempts++
	switch {
	case isPending(err):
		t.State, t.LastError, t.ErrorKind, t.NextAttempt = TaskWaiting, "", "", now.Add(PendingRecheck)
		r.event(now, "task accepted, waiting for the store", t.Store)
	case err != nil:
		t.State, t.LastError, t.ErrorKind = TaskFailed, describe(t.Store, err), KindOf(err)
		t.NextAttempt = now.Add(backoff(t.Attempts))
		r.event(now, "task failed", t.LastError)
	default:
		t.State, t.Items, t.DoneAt, t.LastError, t.ErrorKind = TaskDone, items, now, "", ""
		r.event(now, "task done", t.Store)
	}
}

// settle starts the settle half, on the request as merged with the stored one.
func (rd *round) settle(c rules) []work {
	if rd.hookFailed && !rd.r.State.Final() {
		return nil // recorded as failed; nothing else ran
	}
	return rd.finish(c)
}

// finish returns the completion work of an erasure every store has done (recipients'
// notices aside: they are not waited for), and once there is none left decides the
// request's state.
func (rd *round) finish(c rules) []work {
	r, now := &rd.r, rd.now
	if storesErased(r) {
		if !r.Applied && rd.erasedAll {
			r.Applied = true
			r.event(now, "vault keys shredded, erasure recorded in the consent ledger", "")
		}
		if !r.Applied && c.completesErasures {
			return []work{{kind: doErased}}
		}
		if r.ScrubbedAt.IsZero() {
			// The subject's other requests are scrubbed (durably) before this one is
			// written as scrubbed: a crash in between only scrubs again.
			return []work{{kind: doScrub}}
		}
	}
	rd.decide()
	return nil
}

// failStep records a failed settle step: the request is retried next round.
func (rd *round) failStep(err error) []work {
	r := &rd.r
	rd.stepFailed = true
	r.event(rd.now, "completion step failed", describe("privguard", err))
	if !r.State.Final() {
		r.State = StatePartiallyFailed
	}
	return nil
}

// decide sets the request's state from its tasks. A request closed meanwhile (cancelled,
// rejected) stays closed: what the stores did is recorded on it all the same.
func (rd *round) decide() {
	r := &rd.r
	if r.State.Final() {
		return
	}
	failed := slices.ContainsFunc(r.Tasks, func(t Task) bool { return t.State == TaskFailed })
	done := allDone(r.Tasks)
	switch {
	case failed, done && r.Type.producesResult() && r.Result == nil && rd.buildFailed:
		r.State = StatePartiallyFailed
	case !done, r.Type.producesResult() && r.Result == nil, r.Type == TypeExplanation && r.Explanation == nil:
		r.State = StateInProgress // the package (or the explanation) is built next round
	case awaitsReview(r):
		if r.State != StateAwaitingReview {
			r.State = StateAwaitingReview
			r.event(rd.now, "awaiting a human review", "")
		}
	default:
		r.State = StateCompleted
		r.event(rd.now, "completed", "")
		forgetItems(r)
	}
}

// rebase merges the round's work with cur, the request as stored now (someone changed it
// since the round read it), and starts the settle half over on the result. mine is the
// round's request as its work half left it.
func (rd *round) rebase(mine, cur Request) {
	rd.r = merge(rd.baseTasks, rd.baseEvents, mine, cur)
	if rd.r.Result == nil {
		rd.token = "" // the package was not kept: it is built again, or destroyed
	}
	rd.stepFailed = false
}

// due reports whether t runs in a round at now: it is not done, and a failed or waiting
// task's next attempt has come.
func (t Task) due(now time.Time) bool {
	return t.State != TaskDone && !((t.State == TaskFailed || t.State == TaskWaiting) && now.Before(t.NextAttempt))
}

// runnable reports whether r has rounds: it is verified and neither closed nor waiting
// for a person (the requester's verification, an operator's approval).
func runnable(r Request) bool {
	return !r.State.Final() && r.State != StateAwaitingVerify && r.State != StateReceived && r.State != StateAwaitingApproval &&
		r.State != StateAwaitingReview
}

// running reports whether o is verified, in progress or retrying.
func running(o Request) bool {
	return o.State == StateVerified || o.State == StateInProgress || o.State == StatePartiallyFailed
}

// AccessFirstWait caps how long an erasure waits for an earlier access request of the same
// subject to finish (so that the copy is made first): a stuck access request (a store
// down for days) must not hold the erasure past its own deadline.
const AccessFirstWait = 72 * time.Hour

// accessPending reports whether an access or portability request for r's subject, received
// before r, is running (verified, in progress or retrying) while r has not started and was
// verified less than AccessFirstWait ago. An access request still waiting for its
// requester does not hold an erasure, and nothing pauses an erasure once it has started.
// all may be every open request or only the subject's running access requests.
func accessPending(all []Request, r Request, now time.Time) bool {
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

// expire cancels r if it was left unverified for UnverifiedTTL, and reports whether it did.
func expire(r *Request, now time.Time) bool {
	if r.State != StateAwaitingVerify || now.Sub(r.ReceivedAt) < UnverifiedTTL {
		return false
	}
	r.State, r.Reason = StateCancelled, "identity_not_verified"
	r.event(now, "cancelled", "identity not verified in time")
	return true
}

// resultDue is when r's package (or a closed access request's parts) must be destroyed,
// and whether it must be at all.
func resultDue(r *Request) (time.Time, bool) {
	if !r.Type.producesResult() {
		return time.Time{}, false
	}
	switch res := r.Result; {
	case res != nil && res.Purged:
		return time.Time{}, false
	case res != nil && res.DownloadedAt.IsZero():
		return res.ExpiresAt, true
	case res != nil || r.State.Final():
		return time.Time{}, true // downloaded, or the request ended without a package: at once
	}
	return time.Time{}, false
}

// dueAt is when the engine must next look at r (what a Leaser keeps as its due time);
// zero means never. A past time (r.ReceivedAt) means at once.
func dueAt(r *Request) time.Time {
	soonest := func(a, b time.Time) time.Time {
		if a.IsZero() || (!b.IsZero() && b.Before(a)) {
			return b
		}
		return a
	}
	var due time.Time
	if at, ok := resultDue(r); ok {
		due = soonest(due, later(at, r.ReceivedAt))
		if r.Result != nil && r.Result.DeliveringUntil.After(due) {
			due = r.Result.DeliveringUntil // being handed over: its download decides first
		}
	}
	switch {
	case r.State == StateAwaitingVerify:
		return soonest(due, r.ReceivedAt.Add(UnverifiedTTL))
	case r.State.Final():
		if r.Type == TypeDeletion && r.Applied && r.ScrubbedAt.IsZero() {
			due = soonest(due, r.ReceivedAt) // an erasure of an older data file, to scrub
		}
		return due
	case !runnable(*r):
		return due
	}
	open := false
	for _, t := range r.Tasks {
		switch t.State {
		case TaskDone:
			continue
		case TaskFailed, TaskWaiting:
			due = soonest(due, later(t.NextAttempt, r.ReceivedAt))
		default:
			due = soonest(due, r.ReceivedAt)
		}
		open = true
	}
	if !open {
		due = soonest(due, r.ReceivedAt) // the package, a hook or the state is left
	}
	return due
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
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
	if m.Explanation == nil {
		m.Explanation = mine.Explanation
	}
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
		a.LastError == b.LastError && a.Items == b.Items && a.DoneAt.Equal(b.DoneAt) && a.Next == b.Next
}

func allDone(tasks []Task) bool {
	return !slices.ContainsFunc(tasks, func(t Task) bool { return t.State != TaskDone })
}

// storesErased reports whether r is a deletion every store has done (recipients' notices
// aside): what the settle half completes.
func storesErased(r *Request) bool {
	return r.Type == TypeDeletion && !slices.ContainsFunc(r.Tasks, func(t Task) bool { return t.State != TaskDone && !IsRecipientTask(t.Store) })
}

// callbackOutcome records a store's completion callback on its waiting task t of r.
func callbackOutcome(t *Task, r *Request, done Completion, now time.Time, backoff func(int) time.Duration) {
	if done.Failed {
		t.State, t.LastError, t.ErrorKind, t.NextAttempt = TaskFailed, t.Store+": failed: "+string(KindReportedFailure), KindReportedFailure, now.Add(backoff(t.Attempts))
		r.event(now, "task failed", t.LastError)
		return
	}
	t.State, t.Items, t.DoneAt, t.LastError, t.ErrorKind, t.NextAttempt = TaskDone, done.Items, now, "", "", time.Time{}
	r.event(now, "task done", t.Store+" (callback)")
}

// tasksFor returns the tasks a request of type typ starts with: one per store, one per
// recipient to tell.
func tasksFor(typ Type, stores, recipients []string) []Task {
	var ts []Task
	if typ.needsStores() {
		for _, name := range stores {
			ts = append(ts, Task{Store: name, State: TaskPending})
		}
	}
	if typ.notifiesRecipients() {
		for _, name := range recipients {
			ts = append(ts, Task{Store: name, State: TaskPending})
		}
	}
	return ts
}

// subjectsOf lists the distinct subjects of rs.
func subjectsOf(rs []Request) []privguard.SubjectID {
	var out []privguard.SubjectID
	seen := map[privguard.SubjectID]bool{}
	for _, r := range rs {
		if !seen[r.Subject] {
			seen[r.Subject] = true
			out = append(out, r.Subject)
		}
	}
	return out
}
