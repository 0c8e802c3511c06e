package dsar

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/privguard/privguard"
)

// The store task executor: one request's export, erasure or correction on one store, and
// the erasures of a batch of deletions on a store that erases in batches (BatchEraser).

// runTask does r's work on one store, or tells one recipient (see notify), under
// Config.TaskTimeout. A failure after the task's deadline passed (or privguard began
// stopping, or the request's lease was lost) wraps the context's error: that, not
// whatever the driver made of the cut connection, is its kind.
func (e *Engine) runTask(ctx context.Context, r *Request, store string) (n int, err error) {
	ctx, cancel := context.WithTimeout(WithTask(ctx, TaskInfo{Request: r.ID, Type: r.Type, Store: store, Op: taskOp(r.Type, store)}), e.cfg.TaskTimeout)
	defer cancel()
	defer func() {
		if err != nil && !errors.Is(err, ErrPending) && ctx.Err() != nil {
			err = fmt.Errorf("%w: %w", ctx.Err(), err)
		}
	}()
	if rn, ok := e.recipients[store]; ok {
		return e.notify(ctx, rn, r)
	}
	c, ok := e.connectors[store]
	if !ok {
		return 0, fmt.Errorf("store %s is no longer configured", store)
	}
	switch r.Type {
	case TypeAccess, TypePortability, TypeCategories:
		x, err := c.Export(ctx, r.Subject)
		if err != nil {
			return 0, err
		}
		x.Store = store
		return x.Rows(), e.keepExport(ctx, r, x)
	case TypeDeletion:
		x, err := c.Erase(ctx, r.Subject)
		return x.Items, err
	case TypeCorrection:
		return correct(ctx, c, store, r)
	case TypeTagDeletion:
		// Only the named items: never Erase, which would erase the subject.
		return eraseDerived(ctx, c, store, r)
	}
	return 0, nil
}

// correct applies r's patch on store c, limited to the categories c holds.
func correct(ctx context.Context, c Connector, store string, r *Request) (int, error) {
	rc, ok := c.(Rectifier)
	if !ok {
		// Done only if the store provably holds none of the patched categories;
		// otherwise the old value would stay there while the request says completed.
		// A store holding "user.contact" holds the patched "user.contact.email" too.
		if cl, ok := c.(CategoryLister); ok && !slices.ContainsFunc(cl.Categories(), func(held privguard.DataCategory) bool {
			for cat := range r.Patch {
				if cat.Within(held) || held.Within(cat) {
					return true
				}
			}
			return false
		}) {
			return 0, nil
		}
		return 0, &ConnectorError{Connector: store, Op: "correct", Err: errors.New("the store cannot correct; correct it by hand, then cancel the request with a note")}
	}
	patch := r.Patch
	if cl, ok := c.(CategoryLister); ok {
		held := cl.Categories()
		patch = maps.Clone(patch)
		maps.DeleteFunc(patch, func(c privguard.DataCategory, _ string) bool { return !slices.Contains(held, c) })
		if len(patch) == 0 {
			return 0, nil // the store holds none of the patched categories
		}
	}
	return rc.Correct(ctx, r.Subject, patch)
}

// eraseBatches runs, for each store that erases in batches, the erasures due there of
// every deletion among rounds in one call, under Config.TaskTimeout, the stores at the
// same time, and records each request's outcome for its round's task. With leases, a call
// stops when the lease of any of its requests is lost.
func (e *Engine) eraseBatches(ctx context.Context, rounds []*round, lease *keeper) {
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
			cctx, cancel := ctx, context.CancelFunc(func() {})
			if lease != nil {
				ids := make([]string, len(c.of))
				for i, rd := range c.of {
					ids[i] = rd.r.ID
				}
				cctx, cancel = lease.ctxAll(ctx, ids)
			}
			defer cancel()
			c.out, c.err = e.eraseBatch(cctx, e.connectors[c.name].(BatchEraser), c.subjects)
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
