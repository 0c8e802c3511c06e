package callers

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/journal"
	"github.com/privguard/privguard/middleware"
)

// Log is the journal log of terminations and deletion confirmations.
const Log = "callers"

// RefreshInterval is how often serve reads the log for other replicas' changes.
const RefreshInterval = 5 * time.Second

// maxAttempts bounds the retries of a change whose head moved.
const maxAttempts = 32

// Errors of [Registry.Terminate] and [Registry.Confirm].
var (
	ErrNotFound = errors.New("callers: no such caller")
	// ErrTerminated: the caller is terminated already.
	ErrTerminated = errors.New("callers: already terminated")
	// ErrNotAwaiting: the caller is not awaiting a deletion confirmation (not terminated,
	// or confirmed already).
	ErrNotAwaiting = errors.New("callers: no deletion confirmation awaited")
)

// Caller is one configured caller.
type Caller struct {
	Name string
	// SHA256 is the hash of the caller's credential.
	SHA256   [32]byte
	Purposes []privguard.Purpose
	// TerminatedAt, if not zero, ends the contract then (the configuration's
	// terminated_at).
	TerminatedAt time.Time
}

// Deletion is a terminated caller's deletion confirmation: awaited until recorded.
type Deletion struct {
	State       string    `json:"state"` // awaiting_confirmation, confirmed
	ConfirmedAt time.Time `json:"confirmed_at,omitzero"`
	ConfirmedBy string    `json:"confirmed_by,omitempty"`
	// Reference points at the processor's acknowledgment (its letter, ticket, signed
	// statement).
	Reference string `json:"reference,omitempty"`
}

// Status is a caller as the register shows it (never its credential).
type Status struct {
	Name         string              `json:"name"`
	Purposes     []privguard.Purpose `json:"purposes"`
	State        string              `json:"state"` // active, terminated
	TerminatedAt time.Time           `json:"terminated_at,omitzero"`
	TerminatedBy string              `json:"terminated_by,omitempty"`
	Deletion     *Deletion           `json:"deletion,omitempty"`
}

// entry is one change, as the log stores it.
type entry struct {
	Op   string `json:"op"` // terminate, confirm
	Name string `json:"name"`
	By   string `json:"by"`
	// At is when a termination took effect (a configured terminated_at may be earlier
	// than the entry).
	At        time.Time `json:"at,omitzero"`
	Reference string    `json:"reference,omitempty"`
}

// Registry holds the callers. Safe for concurrent use.
type Registry struct {
	store   journal.Store
	j       *journal.Journal
	now     func() time.Time
	callers []Caller
	byHash  map[[32]byte]int
	byName  map[string]int

	mu sync.RWMutex
	// revoked are the callers whose credentials are refused, from the log.
	revoked map[string]bool
}

// Open returns the register of callers in store (nil with no callers configured: the
// log is not needed) and records the configured terminations that are due. now is the
// clock (nil: time.Now). Names and credentials must be unique.
func Open(ctx context.Context, store journal.Store, callers []Caller, now func() time.Time) (*Registry, error) {
	if now == nil {
		now = time.Now
	}
	g := &Registry{store: store, now: now, callers: callers, byHash: map[[32]byte]int{}, byName: map[string]int{}, revoked: map[string]bool{}}
	for i, c := range callers {
		if _, dup := g.byName[c.Name]; dup {
			return nil, fmt.Errorf("callers: %s is named twice", c.Name)
		}
		if _, dup := g.byHash[c.SHA256]; dup {
			return nil, fmt.Errorf("callers: %s has the credential of another caller", c.Name)
		}
		if len(c.Purposes) == 0 {
			return nil, fmt.Errorf("callers: %s has no purpose", c.Name)
		}
		g.byName[c.Name], g.byHash[c.SHA256] = i, i
	}
	if store == nil {
		return nil, errors.New("callers: nil store")
	}
	j, err := journal.Open(store, Log, now)
	if err != nil {
		return nil, err
	}
	g.j = j
	if err := g.Refresh(ctx); err != nil {
		return nil, err
	}
	return g, nil
}

// Hash returns the hash a credential is held by.
func Hash(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// Caller implements middleware.Callers: the caller whose credential token is, unless it
// is revoked or its configured termination has come.
func (g *Registry) Caller(token string) (middleware.Caller, bool) {
	i, ok := g.byHash[Hash(token)]
	if !ok {
		return middleware.Caller{}, false
	}
	c := &g.callers[i]
	if !c.TerminatedAt.IsZero() && !g.now().Before(c.TerminatedAt) {
		return middleware.Caller{}, false
	}
	g.mu.RLock()
	revoked := g.revoked[c.Name]
	g.mu.RUnlock()
	if revoked {
		return middleware.Caller{}, false
	}
	return middleware.Caller{Name: c.Name, Purposes: c.Purposes}, true
}

var _ middleware.Callers = (*Registry)(nil)

// read folds the log into the callers' statuses, with the head it read to.
func (g *Registry) read(ctx context.Context) (map[string]*Status, journal.Entry, error) {
	all := make(map[string]*Status, len(g.callers))
	for _, c := range g.callers {
		all[c.Name] = &Status{Name: c.Name, Purposes: c.Purposes, State: "active"}
	}
	var head journal.Entry
	err := journal.Scan(ctx, g.store, Log, 0, time.Time{}, func(e journal.Entry) error {
		head = e
		var x entry
		if err := e.Decode(&x); err != nil {
			return err
		}
		s := all[x.Name]
		if s == nil {
			// A caller no longer configured: kept, so that its confirmation stays shown.
			s = &Status{Name: x.Name, State: "active"}
			all[x.Name] = s
		}
		switch x.Op {
		case "terminate":
			s.State, s.TerminatedAt, s.TerminatedBy = "terminated", x.At, x.By
			s.Deletion = &Deletion{State: "awaiting_confirmation"}
		case "confirm":
			if s.Deletion != nil {
				s.Deletion.State, s.Deletion.ConfirmedAt, s.Deletion.ConfirmedBy, s.Deletion.Reference = "confirmed", e.Time, x.By, x.Reference
			}
		}
		return nil
	})
	if err != nil {
		return nil, journal.Entry{}, fmt.Errorf("callers: %w", err)
	}
	return all, head, nil
}

// change reads the log, lets decide choose the entry to append (nil: none), and appends
// it on the head it read, deciding again if the head moved.
func (g *Registry) change(ctx context.Context, decide func(all map[string]*Status) (*entry, error)) (map[string]*Status, error) {
	for range maxAttempts {
		all, head, err := g.read(ctx)
		if err != nil {
			return nil, err
		}
		step, err := decide(all)
		if err != nil || step == nil {
			g.apply(all)
			return all, err
		}
		if _, err := g.j.AppendAfter(ctx, head, step); errors.Is(err, journal.ErrHeadMoved) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("callers: %w", err)
		}
		if all, _, err = g.read(ctx); err != nil {
			return nil, err
		}
		g.apply(all)
		return all, nil
	}
	return nil, fmt.Errorf("callers: the log kept moving: %w", journal.ErrHeadMoved)
}

// apply revokes the terminated callers of all (never un-revokes).
func (g *Registry) apply(all map[string]*Status) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for name, s := range all {
		if s.State == "terminated" {
			g.revoked[name] = true
		}
	}
}

// Refresh reads the log (other replicas' terminations) and records the configured
// terminations that are due and not yet in it.
func (g *Registry) Refresh(ctx context.Context) error {
	now := g.now()
	_, err := g.change(ctx, func(all map[string]*Status) (*entry, error) {
		for _, c := range g.callers {
			if !c.TerminatedAt.IsZero() && !now.Before(c.TerminatedAt) && all[c.Name].State == "active" {
				return &entry{Op: "terminate", Name: c.Name, By: "config", At: c.TerminatedAt.UTC()}, nil
			}
		}
		return nil, nil
	})
	if err != nil {
		return err
	}
	// Each configured termination is one entry: record the next, if several came due.
	for _, c := range g.callers {
		if !c.TerminatedAt.IsZero() && !now.Before(c.TerminatedAt) && !g.isRevoked(c.Name) {
			return g.Refresh(ctx)
		}
	}
	return nil
}

func (g *Registry) isRevoked(name string) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.revoked[name]
}

// Terminate ends caller name's contract now: its credential is revoked and its deletion
// confirmation awaited. Returns ErrNotFound for a name not configured, ErrTerminated if
// it was terminated already.
func (g *Registry) Terminate(ctx context.Context, name, by string) (Status, error) {
	if _, ok := g.byName[name]; !ok {
		return Status{}, ErrNotFound
	}
	at := g.now().UTC()
	all, err := g.change(ctx, func(all map[string]*Status) (*entry, error) {
		if all[name].State == "terminated" {
			return nil, ErrTerminated
		}
		return &entry{Op: "terminate", Name: name, By: by, At: at}, nil
	})
	if all == nil {
		return Status{}, err
	}
	return *all[name], err
}

// Confirm records that terminated caller name confirmed the deletion (or return) of the
// data, with a reference to its acknowledgment. Returns ErrNotFound for a name neither
// configured nor in the log, ErrNotAwaiting if no confirmation is awaited.
func (g *Registry) Confirm(ctx context.Context, name, by, reference string) (Status, error) {
	all, err := g.change(ctx, func(all map[string]*Status) (*entry, error) {
		s := all[name]
		switch {
		case s == nil:
			return nil, ErrNotFound
		case s.Deletion == nil || s.Deletion.State != "awaiting_confirmation":
			return nil, ErrNotAwaiting
		}
		return &entry{Op: "confirm", Name: name, By: by, Reference: reference}, nil
	})
	if all == nil || all[name] == nil {
		return Status{}, err
	}
	return *all[name], err
}

// List returns every caller, configured or in the log, by name.
func (g *Registry) List(ctx context.Context) ([]Status, error) {
	all, _, err := g.read(ctx)
	if err != nil {
		return nil, err
	}
	g.apply(all)
	out := make([]Status, 0, len(all))
	for _, s := range all {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b Status) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out, nil
}
