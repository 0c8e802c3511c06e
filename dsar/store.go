package dsar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/privguard/privguard"
)

// How the engine reads and writes requests: through the Store, a batch of writes
// (BatchStore) or, on a store shared with other replicas, version-checked and fenced
// writes (Leaser); and the in-memory indexes of open requests of an engine alone with its
// store.

// Store keeps requests durably (boltstore.DSARStore is the embedded default).
type Store interface {
	// PutRequest stores the request's encoding under id, durably.
	PutRequest(ctx context.Context, id string, body []byte) error
	// Request returns the encoding stored under id, or an error wrapping privguard.ErrNotFound.
	Request(ctx context.Context, id string) ([]byte, error)
	// EachRequest calls fn with every stored request encoding.
	EachRequest(ctx context.Context, fn func(body []byte) error) error
}

// BatchStore is the optional capability of a Store to write many requests at once, durably
// and all or none (one transaction, one fsync). Step writes each batch of rounds so;
// without it, one PutRequest per request.
type BatchStore interface {
	// PutRequests stores bodies[i] under ids[i] for every i, in one durable transaction.
	PutRequests(ctx context.Context, ids []string, bodies [][]byte) error
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

// put writes r, its Version incremented: to the store, or to the batch being written. On
// a shared store (Leaser) the write is version-checked: if someone wrote the request
// since it was read, nothing is written and the error wraps ErrVersion (and
// privguard.ErrConflict). e.mu must be held.
func (e *Engine) put(ctx context.Context, r *Request) error {
	return e.write(ctx, r, false, time.Time{})
}

// putLeased is put by the holder of r's lease (alone with its store, put): on a shared
// store the write is fenced as well, failing with ErrLeaseLost once the lease lapsed. Its
// due time is not before notBefore (a request that has to wait is not due at once again).
// e.mu must be held.
func (e *Engine) putLeased(ctx context.Context, r *Request, notBefore time.Time) error {
	return e.write(ctx, r, true, notBefore)
}

func (e *Engine) write(ctx context.Context, r *Request, leased bool, notBefore time.Time) error {
	w, err := writeOf(r, notBefore)
	if err != nil {
		return err
	}
	switch {
	case e.batch != nil && !leased:
		e.batch.add(w) // written by flush, which undoes the indexing if it fails
	case e.leaser != nil && leased:
		err = e.leaser.PutRequestLeased(ctx, e.cfg.Replica, e.cfg.Now().UTC(), w)
	case e.leaser != nil:
		err = e.leaser.PutRequestIf(ctx, w)
	default:
		err = e.cfg.Store.PutRequest(ctx, r.ID, w.Body)
	}
	return e.wrote(r, err)
}

// writeOf returns the write of r, its Version incremented, due not before notBefore; for
// the write's outcome, wrote.
func writeOf(r *Request, notBefore time.Time) (Write, error) {
	r.Version++
	if r.State.Final() && r.ClosedAt.IsZero() {
		r.ClosedAt = closingEvent(*r)
	}
	b, err := json.Marshal(r)
	if err != nil {
		r.Version--
		return Write{}, err
	}
	w := Write{ID: r.ID, Subject: r.Subject, Version: r.Version, Due: dueAt(r), Body: b}
	if !w.Due.IsZero() && w.Due.Before(notBefore) {
		w.Due = notBefore
	}
	return w, nil
}

// wrote takes in the outcome of r's write (writeOf): indexes r if it was stored, and
// otherwise undoes its Version's increment (on a shared store) and returns the error as
// put does. e.mu must be held.
func (e *Engine) wrote(r *Request, err error) error {
	if err != nil {
		if e.leaser == nil {
			return fmt.Errorf("dsar: store request: %w: %w", err, privguard.ErrUnavailable)
		}
		r.Version--
		if errors.Is(err, privguard.ErrConflict) {
			return fmt.Errorf("dsar: store request: %w", err)
		}
		return fmt.Errorf("dsar: store request: %w: %w", err, privguard.ErrUnavailable)
	}
	if e.open != nil {
		e.index(r)
	}
	return nil
}

// Each calls fn with every stored request, in the store's order, one at a time (a register
// of many requests need not hold them all), until fn returns an error, which Each returns.
func (e *Engine) Each(ctx context.Context, fn func(Request) error) error {
	return e.cfg.Store.EachRequest(ctx, func(b []byte) error {
		var r Request
		if err := json.Unmarshal(b, &r); err != nil {
			return err
		}
		return fn(r)
	})
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
	// Alone, the engine indexes its open requests; on a shared store others' are not in
	// its index, and the store is read.
	openOnly := ((f.State != "" && !f.State.Final()) || (f.Overdue != nil && *f.Overdue)) && e.leaser == nil
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

// loadIndex builds the indexes of open requests from the store, once. e.mu must be held.
func (e *Engine) loadIndex(ctx context.Context) error {
	if e.open != nil {
		return nil
	}
	e.open, e.active, e.results = map[openKey]string{}, map[string]bool{}, map[string]time.Time{}
	e.personal, e.unscrubbed = map[privguard.SubjectID][]string{}, nil
	e.bySubject = map[privguard.SubjectID][]string{}
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
		e.open, e.active, e.results, e.personal, e.unscrubbed, e.bySubject = nil, nil, nil, nil, nil, nil
		return err
	}
	return nil
}

// index records r in the indexes: of open requests if it is open (removing it if not),
// of results still to destroy, and of requests holding personal data. e.mu must be held.
func (e *Engine) index(r *Request) {
	e.indexPersonal(r)
	if e.bySubject != nil && !slices.Contains(e.bySubject[r.Subject], r.ID) {
		e.bySubject[r.Subject] = append(e.bySubject[r.Subject], r.ID)
	}
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
	if !r.Type.deduplicated() || r.Requester != nil {
		return // never a duplicate (openDuplicate)
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

// writeBatch is what put wrote while e.batch was set: the last write of each request, in
// the order first written.
type writeBatch struct {
	writes []Write
	index  map[string]int
}

func (b *writeBatch) add(w Write) {
	if i, ok := b.index[w.ID]; ok {
		b.writes[i] = w
		return
	}
	b.index[w.ID] = len(b.writes)
	b.writes = append(b.writes, w)
}

// load returns request id as put last wrote it: from the batch being written, if it is
// there, or from the store. e.mu must be held.
func (e *Engine) load(ctx context.Context, id string) (Request, error) {
	if e.batch != nil {
		if i, ok := e.batch.index[id]; ok {
			var r Request
			if err := json.Unmarshal(e.batch.writes[i].Body, &r); err != nil {
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
	b := e.batch
	e.batch = nil
	if len(b.writes) == 0 {
		return nil
	}
	var err error
	bs, batches := e.cfg.Store.(BatchStore)
	switch {
	case e.leaser != nil:
		err = e.leaser.PutRequestsIf(ctx, b.writes)
	case batches:
		ids, bodies := make([]string, len(b.writes)), make([][]byte, len(b.writes))
		for i, w := range b.writes {
			ids[i], bodies[i] = w.ID, w.Body
		}
		err = bs.PutRequests(ctx, ids, bodies)
	default:
		for _, w := range b.writes {
			if err = e.cfg.Store.PutRequest(ctx, w.ID, w.Body); err != nil {
				break
			}
		}
	}
	if err != nil {
		e.open, e.active, e.results, e.personal, e.unscrubbed, e.bySubject = nil, nil, nil, nil, nil, nil
		return fmt.Errorf("dsar: store requests: %w: %w", err, privguard.ErrUnavailable)
	}
	return nil
}
