package consent

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/privguard/privguard"
)

// Check reports whether subject's data may be used for purpose on the basis of consent right
// now: consent for the purpose (or an ancestor of it) is given or renewed, unexpired, not
// invalidated by a material notice change, given by a guardian if the subject is a minor, and
// no subject-level fact (restriction, objection, GPC opt-out, personalisation off) blocks it.
// An unknown subject is [StateUnknown], not allowed. It is a lookup in memory and does not
// allocate. For purposes that provide data to another handler, use [Ledger.CheckRecipient].
//
// The error is always nil for a Ledger; it is there for implementations that ask a remote store.
func (l *Ledger) Check(ctx context.Context, subject privguard.SubjectID, purpose privguard.Purpose) (Status, error) {
	pidx, ok := l.purposeIdx[purpose]
	if !ok {
		return Status{Reason: privguard.ReasonPurposeUnknown}, nil
	}
	st, _ := l.state.get(subject)
	return l.evaluate(st, pidx, 0, l.now), nil
}

// CheckRecipient is [Ledger.Check] for consent bound to a recipient: separate consent to
// provide data to recipient (by name) counts only for that recipient (CON-12).
func (l *Ledger) CheckRecipient(ctx context.Context, subject privguard.SubjectID, purpose privguard.Purpose, recipient string) (Status, error) {
	pidx, ok := l.purposeIdx[purpose]
	if !ok {
		return Status{Reason: privguard.ReasonPurposeUnknown}, nil
	}
	rcp := l.interns.lookupRecipient(recipient)
	if rcp == 0 {
		return Status{Reason: privguard.ReasonSeparateConsentRequired}, nil
	}
	st, _ := l.state.get(subject)
	return l.evaluate(st, pidx, rcp, l.now), nil
}

// audienceChunk is the number of subjects one goroutine of Audience filters.
const audienceChunk = 1 << 14

// Audience returns the subjects of the list that may be contacted for purpose, in the order
// given: [Ledger.Check] for each, spread over the available processors. An unknown purpose
// returns an error wrapping privguard.ErrInvalid.
func (l *Ledger) Audience(ctx context.Context, purpose privguard.Purpose, subjects []privguard.SubjectID) ([]privguard.SubjectID, error) {
	pidx, ok := l.purposeIdx[purpose]
	if !ok {
		return nil, fmt.Errorf("audience: purpose %q: %w", purpose, privguard.ErrInvalid)
	}
	filter := func(in []privguard.SubjectID, out []privguard.SubjectID, now func() time.Time) []privguard.SubjectID {
		for _, s := range in {
			st, _ := l.state.get(s)
			if l.evaluate(st, pidx, 0, now).Allowed {
				out = append(out, s)
			}
		}
		return out
	}
	at := l.now()
	now := func() time.Time { return at }
	workers := min(runtime.GOMAXPROCS(0), (len(subjects)+audienceChunk-1)/audienceChunk)
	if workers <= 1 {
		return filter(subjects, make([]privguard.SubjectID, 0, len(subjects)/2), now), nil
	}
	parts := make([][]privguard.SubjectID, (len(subjects)+audienceChunk-1)/audienceChunk)
	var wg sync.WaitGroup
	next := make(chan int, len(parts))
	for i := range parts {
		next <- i
	}
	close(next)
	for range workers {
		wg.Go(func() {
			for i := range next {
				if ctx.Err() != nil {
					return
				}
				in := subjects[i*audienceChunk : min(len(subjects), (i+1)*audienceChunk)]
				parts[i] = filter(in, make([]privguard.SubjectID, 0, len(in)), now)
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	out := make([]privguard.SubjectID, 0, n)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out, nil
}

// PurposeState is the current state of one purpose (and recipient) for a subject.
type PurposeState struct {
	Purpose   privguard.Purpose `json:"purpose"`
	Recipient string            `json:"recipient,omitempty"`
	State     State             `json:"state"`
	StateIRI  string            `json:"state_iri"`
	Allowed   bool              `json:"allowed"`
	Reason    privguard.Reason  `json:"reason"`
	ExpiresAt time.Time         `json:"expires_at,omitzero"`
	RecordID  string            `json:"record_id,omitempty"`
	Regime    privguard.Regime  `json:"regime,omitempty"`
}

// SubjectView is everything the ledger currently holds for a subject.
type SubjectView struct {
	Subject  privguard.SubjectID `json:"subject"`
	Purposes []PurposeState      `json:"purposes"`
	Facts    Facts               `json:"facts"`
}

// Subject returns the current state of every purpose recorded for subject (an unknown
// subject has none).
func (l *Ledger) Subject(ctx context.Context, subject privguard.SubjectID) (SubjectView, error) {
	st, _ := l.state.get(subject)
	v := SubjectView{Subject: subject, Purposes: []PurposeState{}}
	if st.facts != nil {
		v.Facts = l.evaluate(st, 0, 0, l.now).Facts
	}
	l.interns.mu.RLock()
	names := make(map[uint32]string, len(l.interns.recipients))
	for name, id := range l.interns.recipients {
		names[id] = name
	}
	l.interns.mu.RUnlock()
	for _, e := range st.entries {
		s := l.evaluate(st, e.purpose, e.recipient, l.now)
		ps := PurposeState{Purpose: l.purposes[e.purpose].Purpose, Recipient: names[e.recipient], State: s.State,
			StateIRI: s.State.IRI(), Allowed: s.Allowed, Reason: s.Reason, ExpiresAt: s.ExpiresAt, Regime: e.regime}
		if r, err := l.recordAt(ctx, e.seq); err == nil {
			ps.RecordID = r.ID
		} else {
			return SubjectView{}, err
		}
		v.Purposes = append(v.Purposes, ps)
	}
	return v, nil
}

// History returns every record of subject, oldest first.
func (l *Ledger) History(ctx context.Context, subject privguard.SubjectID) ([]Record, error) {
	seqs, err := l.store.SubjectSeqs(ctx, subject)
	if err != nil {
		return nil, fmt.Errorf("consent: history: %w: %w", err, privguard.ErrUnavailable)
	}
	out := make([]Record, 0, len(seqs))
	for _, seq := range seqs {
		r, err := l.recordAt(ctx, seq)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Record returns the record with id, or an error wrapping privguard.ErrNotFound.
func (l *Ledger) Record(ctx context.Context, id string) (Record, error) {
	seq, err := l.store.SeqByID(ctx, id)
	if err != nil {
		return Record{}, fmt.Errorf("consent: record: %w", err)
	}
	return l.recordAt(ctx, seq)
}

// Stats describes the ledger.
type Stats struct {
	Records  uint64 `json:"records"`
	Subjects int    `json:"subjects"`
}

// Stats returns the number of records and subjects. It takes every shard's lock in turn.
func (l *Ledger) Stats() Stats {
	return Stats{Records: l.records.Load(), Subjects: l.state.count()}
}

// Ping reports whether the ledger's store answers; it is the readiness check.
func (l *Ledger) Ping(ctx context.Context) error {
	if _, _, err := l.store.Head(ctx); err != nil {
		return fmt.Errorf("consent: store: %w: %w", err, privguard.ErrUnavailable)
	}
	select {
	case <-l.closing:
		return fmt.Errorf("consent: ledger: %w", privguard.ErrClosed)
	default:
	}
	return nil
}

// Suppressed reports whether subject is on the direct-marketing suppression list: it
// objected to direct marketing at some point. The list holds only a keyed hash of the
// identifier and survives erasure, so an unsubscribe still holds for a subject whose data
// was erased and who is, say, imported again from a partner list (DSR-13, MKT-04).
func (l *Ledger) Suppressed(ctx context.Context, subject privguard.SubjectID) (bool, error) {
	_, ok, err := l.store.Suppression(ctx, l.suppressionKey(subject))
	if err != nil {
		return false, fmt.Errorf("consent: suppression list: %w: %w", err, privguard.ErrUnavailable)
	}
	return ok, nil
}

// suppressionKey is the keyed hash of a subject on the suppression list.
func (l *Ledger) suppressionKey(subject privguard.SubjectID) [32]byte {
	mac := hmac.New(sha256.New, l.evidenceKey)
	mac.Write([]byte("privguard suppression v1\x00"))
	mac.Write([]byte(subject))
	return [32]byte(mac.Sum(nil))
}
