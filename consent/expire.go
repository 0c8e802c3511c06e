package consent

import (
	"context"
	"errors"
	"fmt"

	"github.com/privguard/privguard"
)

// expirySweepActor is the actor of the records the expiry sweep writes.
const expirySweepActor = "privguard:expiry-sweep"

// errNotDue is the answer to a sweep's expiry of a consent that no longer needs one: on a
// shared store, another process's sweep recorded it first. The sweep skips it.
var errNotDue = errors.New("consent: the expiry is recorded already")

// expiryDue reports whether the sweep's expiry req still has a counting consent to expire
// in st at now.
func (l *Ledger) expiryDue(st *subjectState, req *Request, now int64) bool {
	pidx, ok := l.purposeIdx[req.Purpose]
	if !ok {
		return false
	}
	var rcp uint32
	if req.Recipient != nil {
		rcp = l.interns.lookupRecipient(req.Recipient.Name)
	}
	for _, e := range st.list() {
		if e.purpose == pidx && e.recipient == rcp && e.state().Counts() && e.expires != 0 && expiryNano(e.expires) <= now {
			return true
		}
	}
	return false
}

// DefaultSweepLimit is the most expiry records one [Ledger.ExpireDue] call writes.
const DefaultSweepLimit = 10_000

// ExpireDue appends an `expire` record for up to limit consents whose validity has ended, so
// that the ledger holds proof of each expiry and the history shows it. [Ledger.Check] treats
// an expired consent as absent whether or not this has run; the sweep only records it. It
// returns the number of records written. `privguard serve` runs it every minute.
func (l *Ledger) ExpireDue(ctx context.Context, limit int) (int, error) {
	if limit <= 0 {
		limit = DefaultSweepLimit
	}
	type due struct {
		subject   privguard.SubjectID // "" until read from the record rec
		rec       uint64
		purpose   privguard.Purpose
		recipient uint32
		regime    regime
	}
	now := l.now().UnixNano()
	var list []due
	for i := range l.state.s {
		sh := &l.state.s[i]
		sh.mu.RLock()
		sh.each(func(subject privguard.SubjectID, st *subjectState) bool {
			for _, e := range st.list() {
				if e.state().Counts() && e.expires != 0 && expiryNano(e.expires) <= now && len(list) < limit {
					list = append(list, due{subject, st.rec, l.purposes[e.purpose].Purpose, e.recipient, e.regime()})
				}
			}
			return false
		})
		sh.mu.RUnlock()
		if len(list) >= limit {
			break
		}
	}
	if len(list) == 0 {
		return 0, nil
	}
	// The tables keep no subject ids: each subject's latest record names it.
	owner := l.owner(ctx)
	for i := range list {
		if list[i].subject == "" {
			id, err := owner(list[i].rec)
			if err != nil {
				return 0, fmt.Errorf("consent: expiry sweep: %w: %w", err, privguard.ErrUnavailable)
			}
			list[i].subject = id
		}
	}
	names := l.interns.recipientNames()
	results := make(chan error, len(list))
	for _, d := range list {
		go func() {
			req := Request{Subject: d.subject, Purpose: d.purpose, Action: ActionExpire, Regime: d.regime.name(),
				Actor: expirySweepActor, ActorType: ActorSystem}
			if d.recipient != 0 {
				req.Recipient = &Recipient{Name: names[d.recipient]}
			}
			_, _, err := l.Append(ctx, req)
			results <- err
		}()
	}
	var errs []error
	written := 0
	for range list {
		if err := <-results; errors.Is(err, errNotDue) {
			continue
		} else if err != nil {
			errs = append(errs, err)
		} else {
			written++
		}
	}
	return written, errors.Join(errs...)
}
