package dsar

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/privguard/privguard"
)

// Leaser is the optional capability of a Store that the engines of several replicas use at
// once (pgstore's is one; dsar/LEASES.md gives its table and queries). With it, each
// request is held by one replica at a time through a lease with an expiry: an engine works
// only on the requests it leased, renews their leases while the work runs, and cancels a
// request's work when its lease is lost. A replica that dies leaves its leases to lapse,
// and another takes the requests over. Without a Leaser the engine is alone with its store.
//
// The store keeps, beside each request's encoding, its subject, its version (the
// request's Version, which every write increments by one), its due time (when the engine
// must next look at it: the earliest next attempt of a task, the expiry of an unverified
// request or of a package; none for a request with nothing left to do) and its lease
// (holder and expiry). Every time is the engine's (Config.Now), passed in.
//
// A lease has lapsed at now when its expiry is not after now. Lease and a write's lease
// check must be atomic with respect to each other: two holders never hold one request at
// once.
type Leaser interface {
	// Lease takes for holder, until now+ttl, up to limit requests whose due time is set
	// and not after now and whose lease is free or lapsed, earliest due first, and returns
	// them as stored.
	Lease(ctx context.Context, holder string, now time.Time, ttl time.Duration, limit int) ([]Leased, error)
	// Renew extends to now+ttl holder's leases of ids that have not lapsed at now, and
	// returns the ids it renewed. A lease that lapsed or that another holder took is not
	// renewed, which is not an error.
	Renew(ctx context.Context, holder string, ids []string, now time.Time, ttl time.Duration) ([]string, error)
	// Release frees holder's leases of ids; leases of other holders are left alone.
	Release(ctx context.Context, holder string, ids []string) error
	// PutRequestLeased stores w if holder holds w.ID's lease and it has not lapsed at now,
	// and the stored version is w.Version-1. Otherwise it stores nothing and returns an
	// error wrapping ErrLeaseLost or ErrVersion. The lease stays held.
	PutRequestLeased(ctx context.Context, holder string, now time.Time, w Write) error
	// PutRequestsLeased is PutRequestLeased for every write of ws at once (one round trip
	// to a database), each write stored or refused on its own: outcomes[i] is ws[i]'s, nil
	// if it was stored, otherwise an error wrapping ErrLeaseLost or ErrVersion. The ids of
	// ws must differ. err is the call's: the store failed (then what was stored is
	// unknown, as for a PutRequestLeased that failed) or a write cannot be stored (an
	// error wrapping privguard.ErrInvalid, and nothing was); outcomes is then nil.
	PutRequestsLeased(ctx context.Context, holder string, now time.Time, ws []Write) (outcomes []error, err error)
	// PutRequestIf stores w, whoever holds its lease, if the stored version is
	// w.Version-1 (for Version 1: no request is stored under w.ID), and otherwise returns
	// an error wrapping ErrVersion. Intake, operators' changes and callbacks write so;
	// the lease holder's next write then fails with ErrVersion, and it merges.
	PutRequestIf(ctx context.Context, w Write) error
	// PutRequestsIf is PutRequestIf for every write of ws, in one transaction: all are
	// stored, or none (an error wrapping ErrVersion if one's condition fails).
	PutRequestsIf(ctx context.Context, ws []Write) error
	// SubjectRequests returns the encodings of every request of any of subjects, in id
	// order.
	SubjectRequests(ctx context.Context, subjects []privguard.SubjectID) ([][]byte, error)
}

// Write is one write of a request to a [Leaser].
type Write struct {
	ID      string
	Subject privguard.SubjectID
	Version uint64
	// Due is when the engine must next look at the request; zero means never.
	Due  time.Time
	Body []byte
}

// WriteOf returns the write the engine would make of body, a request's encoding: its id,
// subject and version as encoded, and its due time by the engine's rule. It is for a
// Leaser's unconditional PutRequest (tools that write requests directly), whose columns
// must agree with the engine's writes. Returns an error wrapping privguard.ErrInvalid if
// body is not a request with a version.
func WriteOf(body []byte) (Write, error) {
	var r Request
	if err := json.Unmarshal(body, &r); err != nil {
		return Write{}, fmt.Errorf("dsar: not a request: %w: %w", err, privguard.ErrInvalid)
	}
	if r.Version == 0 {
		return Write{}, fmt.Errorf("dsar: a request without a version: %w", privguard.ErrInvalid)
	}
	return Write{ID: r.ID, Subject: r.Subject, Version: r.Version, Due: dueAt(&r), Body: body}, nil
}

// Leased is a request a [Leaser] leased, as stored.
type Leased struct {
	ID   string
	Body []byte
}

// Errors of a [Leaser]'s writes. Both wrap privguard.ErrConflict.
var (
	// ErrLeaseLost: the writer does not hold the request's lease (it lapsed, and perhaps
	// another replica took it): a slow former holder must not overwrite the new one's
	// progress.
	ErrLeaseLost = fmt.Errorf("dsar: the request's lease is not held: %w", privguard.ErrConflict)
	// ErrVersion: the request was written by someone else since it was read.
	ErrVersion = fmt.Errorf("dsar: the request changed meanwhile: %w", privguard.ErrConflict)
)

// Lease defaults.
const (
	// DefaultLeaseTTL is how long a lease lasts unless renewed; the engine renews the
	// leases of its work in flight every third of it.
	DefaultLeaseTTL = 30 * time.Second
	// LeasedRecheck is how soon a leased request that had to wait (an erasure behind an
	// access request of its subject) is due again.
	LeasedRecheck = time.Minute
)

// keeper renews the leases of the requests one Step works on, every ttl/3, and cancels
// the context of each request whose lease is lost (not renewed, or not renewed in time
// because the store failed), so that its work in flight stops before another replica
// can take the request over. Its owner calls stop, which waits for its goroutine.
type keeper struct {
	l      Leaser
	holder string
	ttl    time.Duration
	now    func() time.Time

	mu     sync.Mutex
	held   map[string]time.Time // id -> lease expiry as last renewed
	cancel map[string]context.CancelFunc
	ctxs   map[string]context.Context

	done chan struct{}
	wg   sync.WaitGroup
}

// keep starts renewing the leases of ids, taken at now, and returns the keeper.
func keep(ctx context.Context, l Leaser, holder string, ttl time.Duration, now func() time.Time, taken time.Time, ids []string) *keeper {
	k := &keeper{l: l, holder: holder, ttl: ttl, now: now, held: map[string]time.Time{},
		cancel: map[string]context.CancelFunc{}, ctxs: map[string]context.Context{}, done: make(chan struct{})}
	for _, id := range ids {
		k.held[id] = taken.Add(ttl)
		k.ctxs[id], k.cancel[id] = context.WithCancel(ctx)
	}
	k.wg.Go(func() { k.loop(ctx) })
	return k
}

// ctx returns the context of request id's work: cancelled when its lease is lost.
func (k *keeper) ctx(id string) context.Context {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.ctxs[id]
}

// ctxAll returns a context cancelled when the lease of any of ids is lost (one call for
// many requests, a batch erasure, must not go on for a request another replica holds).
func (k *keeper) ctxAll(ctx context.Context, ids []string) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	var stops []func() bool
	for _, id := range ids {
		stops = append(stops, context.AfterFunc(k.ctx(id), cancel))
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}

// lost reports whether request id's lease was lost.
func (k *keeper) lost(id string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	_, ok := k.held[id]
	return !ok
}

func (k *keeper) loop(ctx context.Context) {
	t := time.NewTicker(max(k.ttl/3, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-k.done:
			return
		case <-ctx.Done():
			return
		case <-t.C:
			k.renew(ctx)
		}
	}
}

func (k *keeper) renew(ctx context.Context) {
	k.mu.Lock()
	ids := make([]string, 0, len(k.held))
	for id := range k.held {
		ids = append(ids, id)
	}
	k.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	slices.Sort(ids)
	now := k.now()
	renewed, err := k.l.Renew(ctx, k.holder, ids, now, k.ttl)
	k.mu.Lock()
	defer k.mu.Unlock()
	if err != nil {
		// Unknown whether the store renewed them: a lease is given up while a third of
		// it is left, so that its work has stopped before it can lapse.
		for id, until := range k.held {
			if until.Sub(now) <= k.ttl/3 {
				k.drop(id)
			}
		}
		return
	}
	kept := make(map[string]bool, len(renewed))
	for _, id := range renewed {
		if _, ok := k.held[id]; ok {
			k.held[id], kept[id] = now.Add(k.ttl), true
		}
	}
	for _, id := range ids {
		if !kept[id] {
			k.drop(id)
		}
	}
}

// drop forgets a lost lease and cancels its work. k.mu must be held.
func (k *keeper) drop(id string) {
	delete(k.held, id)
	if c := k.cancel[id]; c != nil {
		c()
	}
}

// stop ends the renewals and waits for them; the requests' contexts are cancelled.
func (k *keeper) stop() {
	close(k.done)
	k.wg.Wait()
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, c := range k.cancel {
		c()
	}
}
