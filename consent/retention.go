package consent

import (
	"context"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/privguard/privguard"
)

// The facts retention runs from (package retention's Facts): closures, lapsed consent and
// scoped restrictions. Each walks the in-memory state under one shard's read lock at a time,
// collecting the records that name the subjects found, and then reads those records (the
// state keeps no subject ids): the cost is a pass over memory plus one store read per
// subject reported, never a scan of the records.

// RestrictCategories records that subject's data of cats is restricted to storage and
// security (and legal claims) until until (zero: until lifted), on ground, by actor (a
// system actor: a retention rule, say). It is idempotent: if an in-force restriction of the
// same categories, expiry and ground exists, nothing is written. Errors are Append's.
func (l *Ledger) RestrictCategories(ctx context.Context, subject privguard.SubjectID, cats []privguard.DataCategory, until time.Time, ground, actor string) error {
	if len(cats) == 0 {
		return invalid("categories", CodeRequired, "a restriction of categories needs at least one")
	}
	want := slices.Clone(cats)
	slices.Sort(want)
	want = slices.Compact(want)
	var expires int64
	if !until.IsZero() {
		expires = until.UnixNano()
	}
	if st, ok := l.state.get(subject); ok {
		if f := st.facts(); f != nil && f.more != nil {
			now := l.nowNano()
			for _, r := range f.more.scoped {
				if !r.inForce(now) || r.expires != expires {
					continue
				}
				have := slices.Clone(r.categories)
				slices.Sort(have)
				if !slices.Equal(slices.Compact(have), want) {
					continue
				}
				rec, err := l.recordAt(ctx, r.seq)
				if err != nil {
					return err
				}
				if rec.Subject == subject && rec.Ground == ground {
					return nil
				}
			}
		}
	}
	_, _, err := l.Append(ctx, Request{Subject: subject, Action: ActionRestrict, Categories: want, ExpiresAt: until,
		Ground: ground, Actor: actor, ActorType: ActorSystem})
	return err
}

// RestrictedCategories returns the categories of subject's scoped restrictions in force
// now, sorted (nil: none). A whole-subject restriction is not a category's: see
// [Ledger.Subject].
func (l *Ledger) RestrictedCategories(ctx context.Context, subject privguard.SubjectID) ([]privguard.DataCategory, error) {
	now := l.nowNano()
	if err := l.current(now); err != nil {
		return nil, err
	}
	st, _ := l.state.get(subject)
	f := st.facts()
	if f == nil || f.more == nil {
		return nil, nil
	}
	return f.more.inForce(now), nil
}

// inForce returns the categories of the scoped restrictions in force at now, sorted (nil:
// none).
func (m *factsMore) inForce(now int64) []privguard.DataCategory {
	var out []privguard.DataCategory
	for _, r := range m.scoped {
		if r.inForce(now) {
			out = append(out, r.categories...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// EachClosed calls fn for every subject whose account closed (or service ended) before
// before, with that time: the first close_account or end_service record's. Erasure does not
// end a closure. The order is unspecified; an error from fn stops the walk and is returned.
func (l *Ledger) EachClosed(ctx context.Context, before time.Time, fn func(privguard.SubjectID, time.Time) error) error {
	cut := before.UnixNano()
	return l.eachFound(ctx, cut, func(st *subjectState, _ int64) found {
		f := st.facts()
		if f == nil || f.more == nil || f.more.closedAt <= 0 || f.more.closedAt >= cut {
			return found{}
		}
		return found{seq: st.rec, at: f.more.closedAt}
	}, fn)
}

// EachLapsed calls fn for every subject whose consent to purpose p is not in force now and
// lapsed before before, with the time it lapsed: the subject has a record for p (or a
// purpose p is within), for a recipient or none, none of them counts now, and the latest
// lapse among them (a withdrawal's or refusal's time, an expiry) is before before. Not
// reported: subjects who never consented, consent invalidated by a material notice change
// (it lapses when refused or withdrawn), and consent that ended by erasure (the data went
// with it). The order is unspecified; an error from fn stops the walk and is returned. An
// unknown purpose is an error wrapping privguard.ErrInvalid.
func (l *Ledger) EachLapsed(ctx context.Context, p privguard.Purpose, before time.Time, fn func(privguard.SubjectID, time.Time) error) error {
	pidx, ok := l.purposeIdx[p]
	if !ok {
		return fmt.Errorf("consent: lapsed: purpose %q: %w", p, privguard.ErrInvalid)
	}
	cut := before.UnixNano()
	return l.eachFound(ctx, cut, func(st *subjectState, now int64) found {
		var seq uint64 // the latest withdrawal or refusal: its record has the time
		var expired int64
		seen := false
		lapsed := func(e *entry) bool { // false: consent for p is in force (or invalidated)
			if e.purpose != pidx && !l.ancestor(pidx, e.purpose) {
				return true
			}
			seen = true
			switch s := e.state(); {
			case s == StateInvalidated:
				return false
			case s.Counts():
				if e.expires == 0 || expiryNano(e.expires) > now {
					return false
				}
				expired = max(expired, expiryNano(e.expires))
			case s == StateExpired && e.expires != 0:
				expired = max(expired, expiryNano(e.expires))
			default:
				seq = max(seq, e.seq)
			}
			return true
		}
		if more := st.more(); more != nil {
			for i := range more {
				if !lapsed(&more[i]) {
					return found{}
				}
			}
		} else if st.one.seq != 0 && !lapsed(&st.one) {
			return found{}
		}
		switch {
		case !seen, expired >= cut:
			return found{}
		case seq != 0:
			return found{seq: seq, at: expired, timed: true}
		}
		return found{seq: st.rec, at: expired}
	}, fn)
}

// found is what a walk found of a subject: seq names a record of the subject (0: nothing
// found); at is the time to report, or, if timed, the least: the record's own time (a
// withdrawal's or refusal's) is reported if later, and decides whether it is before the cut.
type found struct {
	seq   uint64
	at    int64
	timed bool
}

// eachFound walks every subject's state, one shard under its read lock at a time; pick
// says what it found of a subject. It then reads the records found, outside the lock, and
// calls fn with the subjects they name.
func (l *Ledger) eachFound(ctx context.Context, cut int64, pick func(st *subjectState, now int64) found,
	fn func(privguard.SubjectID, time.Time) error) error {
	now := l.nowNano()
	if err := l.current(now); err != nil {
		return err
	}
	var hits []found
	st := new(subjectState) // one for the walk: pick keeps no pointer
	for k := range l.state.s {
		if err := ctx.Err(); err != nil {
			return err
		}
		sh := &l.state.s[k]
		hits = hits[:0]
		sh.mu.RLock()
		t := &sh.t
		for i := range t.elems {
			if p := t.elems[i].place; p == 0 || p&elemShared != 0 {
				continue
			}
			*st = t.stateAt(i)
			if h := pick(st, now); h.seq != 0 {
				hits = append(hits, h)
			}
		}
		for _, x := range t.exact {
			*st = x
			if h := pick(st, now); h.seq != 0 {
				hits = append(hits, h)
			}
		}
		sh.mu.RUnlock()
		for _, h := range hits {
			subject, action, recTime, err := l.recordFacts(ctx, h.seq)
			if err != nil {
				return err
			}
			at := h.at
			if h.timed {
				if action == ActionGrant {
					continue // a grant's entry withdrawn by erasure (apply keeps its seq)
				}
				if at = max(at, recTime); at >= cut {
					continue
				}
			}
			if err := fn(subject, time.Unix(0, at).UTC()); err != nil {
				return err
			}
		}
	}
	return nil
}

// recordFacts reads the subject, action and time of the record at seq.
func (l *Ledger) recordFacts(ctx context.Context, seq uint64) (privguard.SubjectID, Action, int64, error) {
	_, body, err := l.store.Record(ctx, seq)
	if err != nil {
		return "", "", 0, fmt.Errorf("consent: read record %d: %w: %w", seq, err, privguard.ErrUnavailable)
	}
	var subject, action []byte
	var at int64
	err = eachField(body, recordFields, recordVarints, func(num protowire.Number, v []byte, x uint64) error {
		switch num {
		case 4:
			subject = v
		case 6:
			action = v
		case 23:
			at = int64(x)
		}
		return nil
	})
	if err != nil {
		return "", "", 0, fmt.Errorf("consent: record %d: %w", seq, err)
	}
	return privguard.SubjectID(subject), actionOf(action), at, nil
}
