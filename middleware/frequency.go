package middleware

import (
	"sync"
	"time"

	"github.com/privguard/privguard"
)

// ContactCounter counts direct-marketing contacts per subject and channel for frequency
// limits: the middleware reads the count into Input.Facts.Contacts before deciding, and
// adds a contact for every subject a send was allowed to reach.
type ContactCounter interface {
	Contacts(subject privguard.SubjectID, channel string) int
	AddContact(subject privguard.SubjectID, channel string)
}

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
