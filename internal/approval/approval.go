package approval

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/privguard/privguard/journal"
)

// Log is the journal log of the approvals.
const Log = "approvals"

// DefaultTTL is how long an ask stays open, and an approval usable, after the ask.
const DefaultTTL = 24 * time.Hour

// maxAttempts bounds the retries of a change whose head moved.
const maxAttempts = 32

// Errors of [Register.Approve] and [Register.Use].
var (
	ErrNotFound = errors.New("approval: no such approval")
	// ErrSamePrincipal: the principal who asked cannot approve their own export.
	ErrSamePrincipal = errors.New("approval: the principal who asked cannot approve")
	// ErrNotPending: the approval was approved, used or has expired already.
	ErrNotPending = errors.New("approval: not pending")
	// ErrNotApproved: the approval is not (or no longer) usable: still pending, used,
	// expired, or for another act, parameters or principal.
	ErrNotApproved = errors.New("approval: not approved for this call")
)

// State is an approval's state.
type State string

// The states.
const (
	Pending  State = "pending"
	Approved State = "approved"
	Used     State = "used"
	Expired  State = "expired"
)

// Approval is one ask and what became of it.
type Approval struct {
	ID string `json:"id"`
	// Act is the route asked for ("GET /v1/requests").
	Act string `json:"act"`
	// Digest is the keyed hash of the act's parameters: the approval is for this call only.
	Digest string `json:"digest"`
	// Rows is how many rows or subjects the export holds.
	Rows        int       `json:"rows"`
	State       State     `json:"state"`
	RequestedBy string    `json:"requested_by"`
	RequestedAt time.Time `json:"requested_at"`
	ExpiresAt   time.Time `json:"expires_at"`
	ApprovedBy  string    `json:"approved_by,omitempty"`
	ApprovedAt  time.Time `json:"approved_at,omitzero"`
	UsedAt      time.Time `json:"used_at,omitzero"`
}

// entry is one step, as the log stores it.
type entry struct {
	Op     string   `json:"op"` // ask, approve, use
	ID     string   `json:"id"`
	Act    string   `json:"act,omitempty"`
	Digest string   `json:"digest,omitempty"`
	Rows   int      `json:"rows,omitempty"`
	By     string   `json:"by"`
	Roles  []string `json:"roles,omitempty"`
}

// Register keeps the approvals in a journal store. Safe for concurrent use.
type Register struct {
	store journal.Store
	j     *journal.Journal
	key   []byte
	now   func() time.Time
	ttl   time.Duration
}

// Open returns the register in store; key (at least 32 bytes, kept by the store like the
// trail's) keys the digests, so that a digest of a list of subjects cannot be matched
// against a guessed list; now is the clock (nil: time.Now).
func Open(store journal.Store, key []byte, now func() time.Time) (*Register, error) {
	if len(key) < 32 {
		return nil, errors.New("approval: the digest key must be at least 32 bytes")
	}
	if now == nil {
		now = time.Now
	}
	j, err := journal.Open(store, Log, now)
	if err != nil {
		return nil, err
	}
	return &Register{store: store, j: j, key: key, now: now, ttl: DefaultTTL}, nil
}

// Store returns the store the register is in.
func (g *Register) Store() journal.Store { return g.store }

// Digest returns the digest of an act's parameters (the canonical query, or the body as
// decoded and encoded again): HMAC-SHA256 under the register's key.
func (g *Register) Digest(act string, params []byte) string {
	h := hmac.New(sha256.New, g.key)
	h.Write([]byte(act))
	h.Write([]byte{0})
	h.Write(params)
	return hex.EncodeToString(h.Sum(nil))
}

// read folds the log into the approvals, with the head it read to.
func (g *Register) read(ctx context.Context) (map[string]*Approval, []string, journal.Entry, error) {
	all := map[string]*Approval{}
	var order []string
	var head journal.Entry
	err := journal.Scan(ctx, g.store, Log, 0, time.Time{}, func(e journal.Entry) error {
		head = e
		var x entry
		if err := e.Decode(&x); err != nil {
			return err
		}
		a := all[x.ID]
		switch {
		case x.Op == "ask" && a == nil:
			all[x.ID] = &Approval{ID: x.ID, Act: x.Act, Digest: x.Digest, Rows: x.Rows, State: Pending,
				RequestedBy: x.By, RequestedAt: e.Time, ExpiresAt: e.Time.Add(g.ttl)}
			order = append(order, x.ID)
		case a == nil:
			return fmt.Errorf("approval: entry %d (%s) names an approval never asked for", e.Seq, x.Op)
		case x.Op == "approve":
			a.State, a.ApprovedBy, a.ApprovedAt = Approved, x.By, e.Time
		case x.Op == "use":
			a.State, a.UsedAt = Used, e.Time
		}
		return nil
	})
	if err != nil {
		return nil, nil, journal.Entry{}, fmt.Errorf("approval: %w", err)
	}
	now := g.now()
	for _, a := range all {
		if (a.State == Pending || a.State == Approved) && !now.Before(a.ExpiresAt) {
			a.State = Expired
		}
	}
	return all, order, head, nil
}

// change reads the log, lets decide choose the step to append (or end with an answer),
// and appends it only on the head it read, deciding again if the head moved.
func (g *Register) change(ctx context.Context, decide func(all map[string]*Approval) (*entry, Approval, error)) (Approval, error) {
	for range maxAttempts {
		all, _, head, err := g.read(ctx)
		if err != nil {
			return Approval{}, err
		}
		step, out, err := decide(all)
		if err != nil || step == nil {
			return out, err
		}
		entries, err := g.j.AppendAfter(ctx, head, step)
		if errors.Is(err, journal.ErrHeadMoved) {
			continue
		}
		if err != nil {
			return Approval{}, fmt.Errorf("approval: %w", err)
		}
		t := entries[0].Time
		switch step.Op {
		case "ask":
			out = Approval{ID: step.ID, Act: step.Act, Digest: step.Digest, Rows: step.Rows, State: Pending,
				RequestedBy: step.By, RequestedAt: t, ExpiresAt: t.Add(g.ttl)}
		case "approve":
			out.State, out.ApprovedBy, out.ApprovedAt = Approved, step.By, t
		case "use":
			out.State, out.UsedAt = Used, t
		}
		return out, nil
	}
	return Approval{}, fmt.Errorf("approval: the log kept moving: %w", journal.ErrHeadMoved)
}

// Ask opens an approval of act with digest for by, or returns the one by asked for
// already and that is still pending or approved (created false): asking again does not
// open a second.
func (g *Register) Ask(ctx context.Context, act, digest string, rows int, by string, roles []string) (a Approval, created bool, err error) {
	id, err := newID()
	if err != nil {
		return Approval{}, false, err
	}
	a, err = g.change(ctx, func(all map[string]*Approval) (*entry, Approval, error) {
		for _, x := range all {
			if x.RequestedBy == by && x.Act == act && x.Digest == digest && (x.State == Pending || x.State == Approved) {
				return nil, *x, nil
			}
		}
		return &entry{Op: "ask", ID: id, Act: act, Digest: digest, Rows: rows, By: by, Roles: roles}, Approval{}, nil
	})
	return a, err == nil && a.ID == id, err
}

// Approve records by's approval of id. Returns ErrNotFound for an unknown id,
// ErrSamePrincipal if by asked for it, ErrNotPending if it is not pending.
func (g *Register) Approve(ctx context.Context, id, by string, roles []string) (Approval, error) {
	return g.change(ctx, func(all map[string]*Approval) (*entry, Approval, error) {
		a := all[id]
		switch {
		case a == nil:
			return nil, Approval{}, ErrNotFound
		case a.RequestedBy == by:
			return nil, *a, ErrSamePrincipal
		case a.State != Pending:
			return nil, *a, ErrNotPending
		}
		return &entry{Op: "approve", ID: id, By: by, Roles: roles}, *a, nil
	})
}

// Use spends approval id on by's call of act with digest: it must be approved, asked for
// by by for that act and digest, unused and unexpired; else ErrNotApproved (ErrNotFound
// for an unknown id). The approval is spent before the export runs.
func (g *Register) Use(ctx context.Context, id, act, digest, by string) (Approval, error) {
	return g.change(ctx, func(all map[string]*Approval) (*entry, Approval, error) {
		a := all[id]
		switch {
		case a == nil:
			return nil, Approval{}, ErrNotFound
		case a.State != Approved || a.RequestedBy != by || a.Act != act || a.Digest != digest:
			return nil, *a, ErrNotApproved
		}
		return &entry{Op: "use", ID: id, By: by}, *a, nil
	})
}

// Get returns approval id (ErrNotFound if there is none).
func (g *Register) Get(ctx context.Context, id string) (Approval, error) {
	all, _, _, err := g.read(ctx)
	if err != nil {
		return Approval{}, err
	}
	a, ok := all[id]
	if !ok {
		return Approval{}, ErrNotFound
	}
	return *a, nil
}

// List returns the approvals in the order they were asked for, of the states given (all
// if none).
func (g *Register) List(ctx context.Context, states ...State) ([]Approval, error) {
	all, order, _, err := g.read(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Approval, 0, len(order))
	for _, id := range order {
		if a := all[id]; len(states) == 0 || slices.Contains(states, a.State) {
			out = append(out, *a)
		}
	}
	return out, nil
}

func newID() (string, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "ap_" + hex.EncodeToString(b), nil
}
