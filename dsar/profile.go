package dsar

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"

	"github.com/privguard/privguard"
)

// The subject's profile (PIPL Art. 24; the algorithmic-recommendation rules' "view, select
// and delete the tags used on them", MKT-06): the tags, segment memberships and scores the
// stores hold on a subject, read through the connectors that can list them (Profiler), and
// the narrow erasure of the ones the subject picks (TypeTagDeletion): a request like any
// other, durable, retried and in the register, that erases only those items and never
// erases the subject.

// DerivedItem is one tag, segment membership or score held on a subject in one store.
type DerivedItem struct {
	// ID is opaque, stable and URL-safe: [ItemID] of Store, Where and Value. It is what
	// the subject picks to delete.
	ID    string `json:"id"`
	Store string `json:"store"`
	// Where is the item's place in the store: "table.column" (the table as the data map
	// names it, maybe qualified), or the Redis key, hash field ("key#field") or set.
	Where    string                 `json:"where"`
	Category privguard.DataCategory `json:"category"`
	Value    string                 `json:"value"` // the tag text, segment name or score
}

// Profiler is the optional capability of a store to list the derived data it holds on a
// subject (categories "user.derived" and below) item by item, and to erase single items.
// Webhook stores are not Profilers: the other system would have to list its tags.
type Profiler interface {
	// Derived returns the subject's derived items (only derived categories). Their ID and
	// Store may be left empty: the engine sets them ([ItemID]). A subject with none has
	// none; that is not an error.
	Derived(ctx context.Context, subject privguard.SubjectID) ([]DerivedItem, error)
	// EraseDerived erases only the named items of this subject (by Where and Value: never
	// another subject's, nor another value at the same place) and returns how many rows,
	// fields or memberships it changed. An item no longer held changes nothing: it is
	// idempotent. An item whose Where the store does not hold (the data map changed) is an
	// error wrapping privguard.ErrInvalid.
	EraseDerived(ctx context.Context, subject privguard.SubjectID, items []DerivedItem) (Erased, error)
}

// ItemID is a derived item's id: the first 128 bits of SHA-256 over store, where and value
// (each length-prefixed), in unpadded base64url. It is the same on every call, so a page
// listed before can name the item, and carries no value in clear.
func ItemID(store, where, value string) string {
	h := sha256.New()
	for _, s := range []string{store, where, value} {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
}

// Derived reports whether c is data the controller inferred rather than collected
// ("user.derived" and below).
func Derived(c privguard.DataCategory) bool { return derived(c) }

// MaxItems bounds the items of one tag deletion.
const MaxItems = 1000

// UnknownItemsError is returned by [Engine.SubmitTagDeletion] when ids name items the
// stores do not hold on the subject now (never held, or already gone). It wraps
// privguard.ErrInvalid.
type UnknownItemsError struct {
	IDs []string
}

func (e *UnknownItemsError) Error() string {
	return fmt.Sprintf("dsar: %d item id(s) not held on the subject: %s", len(e.IDs), strings.Join(e.IDs, ", "))
}

func (e *UnknownItemsError) Unwrap() error { return privguard.ErrInvalid }

// Profile returns the derived items held on subject in every store that is a Profiler,
// sorted by store, place and value, each once. A store that fails fails the call (the
// subject must not be shown a profile that silently misses a store): the error is a
// *ConnectorError with the store and the kind, wrapping privguard.ErrUnavailable and no
// text of the store's.
func (e *Engine) Profile(ctx context.Context, subject privguard.SubjectID) ([]DerivedItem, error) {
	if err := subject.Validate(); err != nil {
		return nil, err
	}
	out := []DerivedItem{}
	seen := map[string]bool{}
	for _, name := range e.names {
		p, ok := e.connectors[name].(Profiler)
		if !ok {
			continue
		}
		items, err := e.derivedOf(ctx, name, p, subject)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			if !derived(it.Category) {
				continue // a connector's mistake: only derived data is a profile's
			}
			it.Store, it.ID = name, ItemID(name, it.Where, it.Value)
			if !seen[it.ID] {
				seen[it.ID] = true
				out = append(out, it)
			}
		}
	}
	slices.SortFunc(out, func(a, b DerivedItem) int {
		return cmp.Or(cmp.Compare(a.Store, b.Store), cmp.Compare(a.Where, b.Where), cmp.Compare(a.Value, b.Value))
	})
	return out, nil
}

// derivedOf is one store's Derived under Config.TaskTimeout. Its failure is a
// *ConnectorError naming the store, the operation and the kind only: the driver's text,
// which can quote the subject's data, is dropped here, as the error may be logged.
func (e *Engine) derivedOf(ctx context.Context, name string, p Profiler, subject privguard.SubjectID) ([]DerivedItem, error) {
	tctx, cancel := context.WithTimeout(ctx, e.cfg.TaskTimeout)
	defer cancel()
	items, err := p.Derived(tctx, subject)
	if err != nil {
		cause := privguard.ErrUnavailable
		if ctx.Err() != nil {
			cause = fmt.Errorf("%w: %w", ctx.Err(), cause) // the caller went away or its deadline passed
		}
		return nil, &ConnectorError{Connector: name, Op: OpProfile, Kind: KindOf(err), Err: cause}
	}
	return items, nil
}

// SubmitTagDeletion records the subject's request to delete the derived items ids names
// (ids from [Engine.Profile]): a TypeTagDeletion request with one task on each store that
// holds one of them, which erases those items only (Profiler.EraseDerived). It is verified
// at once with identity, and waits for verification without it, as [Engine.Submit] does.
// Ids that name no item held on the subject now fail with an *UnknownItemsError (nothing
// is stored); no ids, or more than MaxItems, are privguard.ErrInvalid.
func (e *Engine) SubmitTagDeletion(ctx context.Context, subject privguard.SubjectID, ids []string, identity *Identity) (Request, error) {
	if err := subject.Validate(); err != nil {
		return Request{}, err
	}
	if len(ids) == 0 || len(ids) > MaxItems {
		return Request{}, fmt.Errorf("dsar: a tag deletion names 1 to %d items: %w", MaxItems, privguard.ErrInvalid)
	}
	held, err := e.Profile(ctx, subject)
	if err != nil {
		return Request{}, err
	}
	byID := make(map[string]DerivedItem, len(held))
	for _, it := range held {
		byID[it.ID] = it
	}
	var items []DerivedItem
	var unknown []string
	picked := map[string]bool{}
	for _, id := range ids {
		it, ok := byID[id]
		switch {
		case !ok:
			if !slices.Contains(unknown, id) {
				unknown = append(unknown, id)
			}
		case !picked[id]:
			picked[id] = true
			items = append(items, it)
		}
	}
	if len(unknown) > 0 {
		return Request{}, &UnknownItemsError{IDs: unknown}
	}
	return e.Submit(ctx, Request{Type: TypeTagDeletion, Subject: subject, Items: items, Identity: identity})
}

// checkItems checks a tag deletion's items: each names a store that is a Profiler, a
// derived category and its own id. e is read only.
func (e *Engine) checkItems(r Request) error {
	if r.Type != TypeTagDeletion {
		if len(r.Items) > 0 {
			return fmt.Errorf("dsar: only a tag deletion names items: %w", privguard.ErrInvalid)
		}
		return nil
	}
	if len(r.Items) == 0 || len(r.Items) > MaxItems {
		return fmt.Errorf("dsar: a tag deletion names 1 to %d items: %w", MaxItems, privguard.ErrInvalid)
	}
	for _, it := range r.Items {
		if _, ok := e.connectors[it.Store].(Profiler); !ok {
			return fmt.Errorf("dsar: item of store %q: no store of that name lists derived items: %w", it.Store, privguard.ErrInvalid)
		}
		if !derived(it.Category) || it.ID != ItemID(it.Store, it.Where, it.Value) {
			return fmt.Errorf("dsar: item %s: not a derived item of its store: %w", it.ID, privguard.ErrInvalid)
		}
	}
	return nil
}

// itemStores returns the stores r's items are in, sorted, each once.
func itemStores(r *Request) []string {
	var out []string
	for _, it := range r.Items {
		out = append(out, it.Store)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// eraseDerived is a tag deletion's task on one store: the items there, erased.
func eraseDerived(ctx context.Context, c Connector, store string, r *Request) (int, error) {
	p, ok := c.(Profiler)
	if !ok {
		return 0, &ConnectorError{Connector: store, Op: OpEraseDerived, Err: fmt.Errorf("the store no longer lists derived items: %w", privguard.ErrInvalid)}
	}
	var items []DerivedItem
	for _, it := range r.Items {
		if it.Store == store {
			items = append(items, it)
		}
	}
	if len(items) == 0 {
		return 0, nil
	}
	x, err := p.EraseDerived(ctx, r.Subject, items)
	return x.Items, err
}

// forgetItems replaces the values of closed tag deletion r's items with MaskValue: the
// subject asked for the tags to be gone, and privguard keeps no copy of their text once
// the request is closed (the ids, places and categories stay, for the record).
func forgetItems(r *Request) {
	if r.Type != TypeTagDeletion {
		return
	}
	r.Items = slices.Clone(r.Items) // the slice may be shared with an earlier copy of r
	for i := range r.Items {
		r.Items[i].Value = MaskValue
	}
}
