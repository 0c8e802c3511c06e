package middleware

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/privguard/privguard"
)

// ContactCounter counts direct-marketing contacts per subject and channel for frequency
// limits: the middleware reads the count into Input.Facts.Contacts before deciding, and
// adds a contact for every subject a send was allowed to reach. The read and the add are
// two steps, so concurrent sends to one subject can all read a count below the limit: a
// counter that can also reserve ([ContactReserver]) makes them one.
type ContactCounter interface {
	Contacts(subject privguard.SubjectID, channel string) int
	AddContact(subject privguard.SubjectID, channel string)
}

// ContactReserver is an optional capability of a [ContactCounter]: the check and the add
// of a contact as one atomic step, so that a frequency limit holds exactly however many
// sends (and however many processes sharing the counter) race for the last contact.
// [Contacts] implements it with its mutex; the shared Redis counter (package redislimit)
// with one Lua script per subject.
//
// When the counter is a ContactReserver, the middleware decides a send in three steps,
// so that the policy makes every decision and yet no send can pass the limit:
//
//  1. The policy decides with everything but the count (Input.Facts.Contacts is 0). A
//     deny is final: nothing is reserved, nothing counted.
//  2. An allow reserves a contact. Its limit is the policy's own: the remaining budget of
//     its contact_budget obligation (limit − 0); an allow without one has no limit and is
//     only counted. The send goes ahead only if the reservation is granted, with the
//     budget recomputed for the count the reservation saw (the same contract the policy
//     engine's memo relies on: the count matters only against the limit and for what
//     remains).
//  3. A refused reservation is decided again with the count it saw, which the policy
//     denies as frequency.exceeded (and which is denied so if a policy does not).
//
// Admission is decided by the reservation alone, and a reservation is granted only while
// fewer than the limit are held in the window, so the limit cannot be over-admitted. What
// can happen is the other way: a slot reserved by a send that then fails (the handler
// errs, or a batch's reservation errs half-way) is counted though nothing was sent. The
// opposite order (reserve, decide, release on a deny) was not chosen: a slot held during
// the decision and then released would refuse a concurrent send that should have passed,
// and a release lost to a crash or a timeout would count a send that never happened.
//
// An error means the count could not be checked; it wraps privguard.ErrUnavailable.
// Whether the send is then refused or let through uncounted is the channel's choice
// ([Config.AllowUncounted]).
type ContactReserver interface {
	// Reserve reserves one contact of subject on channel if fewer than limit are held in
	// the channel's window (any number if limit is negative). count is how many were
	// held before this one. A channel the counter keeps no window for is not counted:
	// granted, count 0.
	Reserve(ctx context.Context, subject privguard.SubjectID, channel string, limit int) (granted bool, count int, err error)
	// ReserveBatch reserves for every entry of rs (distinct subjects, one channel) at once
	// — one round trip for a shared counter — setting each entry's Granted and Count. On
	// an error some entries may have been reserved and others not.
	ReserveBatch(ctx context.Context, channel string, rs []Reservation) error
}

// Reservation is one subject's entry in [ContactReserver.ReserveBatch].
type Reservation struct {
	Subject privguard.SubjectID
	// Limit is the most contacts the window may hold, this one included; negative: no
	// limit.
	Limit int
	// Granted and Count are the answer: the contact was reserved; the contacts held in
	// the window before it.
	Granted bool
	Count   int
}

var _ ContactReserver = (*Contacts)(nil)

// Contacts is an in-memory [ContactCounter] with a sliding window per channel. It forgets
// everything on restart: a deployment with several instances or restarts that matter needs
// a shared counter.
type Contacts struct {
	mu      sync.Mutex
	windows map[string]time.Duration
	now     func() time.Time
	seen    map[contactKey][]time.Time
	adds    int
}

// sweepEvery is how many contacts are added between sweeps of expired entries, which keep
// the map from growing with subjects that are never contacted again.
const sweepEvery = 1 << 14

type contactKey struct {
	subject privguard.SubjectID
	channel string
}

// NewContacts returns a counter with the given windows per channel (channels without a
// window are not counted). now may be nil (time.Now).
func NewContacts(windows map[string]time.Duration, now func() time.Time) *Contacts {
	if now == nil {
		now = time.Now
	}
	return &Contacts{windows: windows, now: now, seen: map[contactKey][]time.Time{}}
}

// Contacts returns the contacts of subject on channel within the channel's window.
func (c *Contacts) Contacts(subject privguard.SubjectID, channel string) int {
	w, ok := c.windows[channel]
	if !ok {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := contactKey{subject, channel}
	ts := prune(c.seen[k], c.now().Add(-w))
	if len(ts) == 0 {
		delete(c.seen, k)
	} else {
		c.seen[k] = ts
	}
	return len(ts)
}

// AddContact records a contact now.
func (c *Contacts) AddContact(subject privguard.SubjectID, channel string) {
	w, ok := c.windows[channel]
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := contactKey{subject, channel}
	now := c.now()
	c.seen[k] = append(prune(c.seen[k], now.Add(-w)), now)
	c.added(now)
}

// added counts an added contact and sweeps expired entries every sweepEvery (c.mu held).
func (c *Contacts) added(now time.Time) {
	if c.adds++; c.adds%sweepEvery == 0 {
		for k, ts := range c.seen {
			if ts = prune(ts, now.Add(-c.windows[k.channel])); len(ts) == 0 {
				delete(c.seen, k)
			} else {
				c.seen[k] = ts
			}
		}
	}
}

// Reserve implements [ContactReserver]: under the counter's lock, the contacts in the
// window are counted and one is added if fewer than limit are held. It never fails.
func (c *Contacts) Reserve(_ context.Context, subject privguard.SubjectID, channel string, limit int) (bool, int, error) {
	w, ok := c.windows[channel]
	if !ok {
		return true, 0, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	granted, n := c.reserve(subject, channel, limit, w, c.now())
	return granted, n, nil
}

// ReserveBatch implements [ContactReserver], under one hold of the lock. It never fails.
func (c *Contacts) ReserveBatch(_ context.Context, channel string, rs []Reservation) error {
	w, ok := c.windows[channel]
	if !ok {
		for i := range rs {
			rs[i].Granted, rs[i].Count = true, 0
		}
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for i := range rs {
		rs[i].Granted, rs[i].Count = c.reserve(rs[i].Subject, channel, rs[i].Limit, w, now)
	}
	return nil
}

// reserve is Reserve with c.mu held.
func (c *Contacts) reserve(subject privguard.SubjectID, channel string, limit int, w time.Duration, now time.Time) (bool, int) {
	k := contactKey{subject, channel}
	ts := prune(c.seen[k], now.Add(-w))
	n := len(ts)
	if limit >= 0 && n >= limit {
		if n == 0 {
			delete(c.seen, k)
		} else {
			c.seen[k] = ts
		}
		return false, n
	}
	c.seen[k] = append(ts, now)
	c.added(now)
	return true, n
}

// Len returns how many (subject, channel) pairs are held.
func (c *Contacts) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// prune drops the times before cutoff (ts is in order).
func prune(ts []time.Time, cutoff time.Time) []time.Time {
	i := 0
	for i < len(ts) && ts[i].Before(cutoff) {
		i++
	}
	return ts[i:]
}

// reserves reports whether sends on channel are reserved (see [ContactReserver]) rather
// than read and added.
func (rt *route) reserves(channel string) bool { return rt.reserver != nil && channel != "" }

// countContacts reads the subject's contacts on the request's channel into in, for a
// counter that cannot reserve.
func (rt *route) countContacts(in *privguard.Input) {
	if rt.cfg.Contacts != nil && in.Channel != "" && rt.reserver == nil {
		in.Facts.Contacts = rt.cfg.Contacts.Contacts(in.Subject, in.Channel)
	}
}

// addContact records that the request reaches subject on channel, for a counter that
// cannot reserve.
func (rt *route) addContact(channel string, subject privguard.SubjectID) {
	if rt.cfg.Contacts != nil && channel != "" && rt.reserver == nil {
		rt.cfg.Contacts.AddContact(subject, channel)
	}
}

// reserve takes the contact the allowed decision d needs (steps 2 and 3 of
// [ContactReserver]) under ctx, and returns the final decision (decided again under
// dctx), with in.Facts.Contacts set to the count the reservation saw. uncountable reports
// a send refused because the counter did not answer.
func (rt *route) reserve(ctx, dctx context.Context, in *privguard.Input, d privguard.Decision) (_ privguard.Decision, uncountable bool) {
	limit := budgetLimit(d.Obligations, in.Facts.Contacts)
	granted, n, err := rt.reserver.Reserve(ctx, in.Subject, in.Channel, limit)
	if err != nil {
		return rt.uncounted(in.Channel, d, err)
	}
	in.Facts.Contacts = n
	return rt.reserved(dctx, in, d, limit, granted), false
}

// reserveBatch is reserve for the subjects of a batch, in one call to the counter: final
// holds each subject's decision, and those that allow are replaced by the final ones;
// input(i) is subject i's input. uncountable reports that some were refused because the
// counter did not answer.
func (rt *route) reserveBatch(ctx context.Context, final []*privguard.Decision, input func(i int) privguard.Input) (uncountable bool) {
	var rs []Reservation
	var idx []int32 // the subject of each reservation
	channel := ""
	for i, d := range final {
		if !d.Allowed() {
			continue
		}
		in := input(i)
		channel = in.Channel
		rs = append(rs, Reservation{Subject: in.Subject, Limit: budgetLimit(d.Obligations, in.Facts.Contacts)})
		idx = append(idx, int32(i))
	}
	if len(rs) == 0 {
		return false
	}
	// Subjects with one decision and one count get one final decision (a batch has few of
	// each), so that the Recorder still sees shared decisions.
	type key struct {
		d     *privguard.Decision
		count int
	}
	memo := map[key]*privguard.Decision{}
	if err := rt.reserver.ReserveBatch(ctx, channel, rs); err != nil {
		for _, i := range idx {
			k := key{final[i], -1}
			if memo[k] == nil {
				d, refused := rt.uncounted(channel, *final[i], err)
				memo[k] = &d
				uncountable = uncountable || refused
			}
			final[i] = memo[k]
		}
		return uncountable
	}
	for n, i := range idx {
		r := rs[n]
		k := key{final[i], r.Count}
		if memo[k] == nil {
			in := input(int(i))
			in.Facts.Contacts = r.Count
			d := rt.reserved(ctx, &in, *final[i], r.Limit, r.Granted)
			memo[k] = &d
		}
		final[i] = memo[k]
	}
	return false
}

// reserved is the final decision after a reservation for the allowed decision d:
// granted, d with its budget recomputed for in.Facts.Contacts; refused, the policy's
// decision at that count, a deny (frequency.exceeded).
func (rt *route) reserved(ctx context.Context, in *privguard.Input, d privguard.Decision, limit int, granted bool) privguard.Decision {
	if granted {
		if limit >= 0 {
			d.Obligations = withBudget(d.Obligations, limit-in.Facts.Contacts)
		}
		return d
	}
	again, err := rt.cfg.Decider.Decide(ctx, *in)
	switch {
	case err != nil:
		// The limit the policy set is reached: the send is refused whatever the policy
		// would say now.
		rt.cfg.Logger.Warn("privguard: deciding a send over its frequency limit failed; denied", "route", rt.Match, "err", err)
	case again.Allowed():
		rt.cfg.Logger.Warn("privguard: the policy allows a send at the frequency limit it set; denied", "route", rt.Match, "channel", in.Channel)
		d.ID = again.ID
	default:
		return again
	}
	return privguard.Decision{ID: d.ID, Effect: privguard.Deny, Reasons: []privguard.Reason{privguard.ReasonFrequencyExceeded}, Revision: d.Revision}
}

// uncounted is the decision for the allowed d when the counter failed with err: d marked
// frequency.uncounted on a channel of Config.AllowUncounted, a deny
// (frequency.unavailable, refused true) on any other.
func (rt *route) uncounted(channel string, d privguard.Decision, err error) (_ privguard.Decision, refused bool) {
	allow := rt.cfg.AllowUncounted[channel]
	// Logged at most once a second per route: an outage would otherwise log every send.
	if now, last := time.Now().UnixNano(), rt.countErrAt.Load(); now-last >= int64(time.Second) && rt.countErrAt.CompareAndSwap(last, now) {
		sends := "refused"
		if allow {
			sends = "allowed uncounted"
		}
		rt.cfg.Logger.Warn("privguard: contact counter unavailable", "route", rt.Match, "channel", channel, "sends", sends, "err", err)
	}
	if allow {
		d.Reasons = append(d.Reasons[:len(d.Reasons):len(d.Reasons)], privguard.ReasonFrequencyUncounted)
		return d, false
	}
	return privguard.Decision{ID: d.ID, Effect: privguard.Deny, Reasons: []privguard.Reason{privguard.ReasonFrequencyUnavailable}, Revision: d.Revision}, true
}

// frequencyUnavailable is the answer to a send refused because its contacts could not be
// counted.
func frequencyUnavailable(reasons []privguard.Reason) *privguard.Problem {
	p := privguard.NewProblem(http.StatusServiceUnavailable, TypeFrequencyUnavailable, "Contacts could not be counted",
		"the frequency limit of this channel could not be checked, so the send was not passed on; retry later")
	p.Reasons = reasons
	return p
}

// budgetLimit is the contact limit an allow sets, from its contact_budget obligation
// decided at count contacts (negative: the allow sets none).
func budgetLimit(obs []privguard.Obligation, contacts int) int {
	for _, o := range obs {
		if o.Kind == privguard.ObligeContactBudget {
			return max(contacts+o.Remaining, 0)
		}
	}
	return -1
}

// withBudget returns obs with the contact budget set to remaining, copied if it changes
// (a decision's slices are shared with the policy's memo).
func withBudget(obs []privguard.Obligation, remaining int) []privguard.Obligation {
	for i, o := range obs {
		if o.Kind == privguard.ObligeContactBudget && o.Remaining != remaining {
			obs = slices.Clone(obs)
			obs[i].Remaining = remaining
		}
	}
	return obs
}
