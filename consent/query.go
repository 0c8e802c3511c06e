package consent

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"math"
	"runtime"
	"slices"
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
// The error is nil unless the ledger is on a [SharedStore] and could not confirm for
// Config.MaxStaleness that its state is current: then it is [ErrStale] and the status
// allows nothing.
func (l *Ledger) Check(ctx context.Context, subject privguard.SubjectID, purpose privguard.Purpose) (Status, error) {
	pidx, ok := l.purposeIdx[purpose]
	if !ok {
		return Status{Reason: privguard.ReasonPurposeUnknown}, nil
	}
	now := l.nowNano()
	if err := l.current(now); err != nil {
		return Status{}, err
	}
	st, _ := l.state.get(subject)
	return l.evaluate(&st, pidx, 0, now), nil
}

// CheckRecipient is [Ledger.Check] for consent bound to a recipient: separate consent to
// provide data to recipient (by name) counts only for that recipient (CON-12).
func (l *Ledger) CheckRecipient(ctx context.Context, subject privguard.SubjectID, purpose privguard.Purpose, recipient string) (Status, error) {
	pidx, ok := l.purposeIdx[purpose]
	if !ok {
		return Status{Reason: privguard.ReasonPurposeUnknown}, nil
	}
	now := l.nowNano()
	if err := l.current(now); err != nil {
		return Status{}, err
	}
	rcp := l.interns.lookupRecipient(recipient)
	if rcp == 0 {
		return Status{Reason: privguard.ReasonSeparateConsentRequired}, nil
	}
	st, _ := l.state.get(subject)
	return l.evaluate(&st, pidx, rcp, now), nil
}

// Audience returns the subjects of the list that may be contacted for purpose, in the order
// given: [Ledger.Check] for each, evaluated at one instant. An unknown purpose returns an
// error wrapping privguard.ErrInvalid.
func (l *Ledger) Audience(ctx context.Context, purpose privguard.Purpose, subjects []privguard.SubjectID) ([]privguard.SubjectID, error) {
	pidx, ok := l.purposeIdx[purpose]
	if !ok {
		return nil, fmt.Errorf("audience: purpose %q: %w", purpose, privguard.ErrInvalid)
	}
	now := l.nowNano()
	if err := l.current(now); err != nil {
		return nil, err
	}
	keep := make([]bool, len(subjects))
	err := l.lookupAll(ctx, subjects, func(i int, st *subjectState) {
		keep[i] = l.evaluate(st, pidx, 0, now).Allowed
	})
	if err != nil {
		return nil, err
	}
	n := 0
	for _, k := range keep {
		if k {
			n++
		}
	}
	out := make([]privguard.SubjectID, 0, n)
	for i, k := range keep {
		if k {
			out = append(out, subjects[i])
		}
	}
	return out, nil
}

// FactsBatch is [Ledger.Facts] for many subjects asked about the same use: for each
// subject it calls fn with the subject's position in the list and the facts Facts would
// fill in. fn may be called from several goroutines at once, in any order. It uses the
// batched lookups of Audience.
func (l *Ledger) FactsBatch(ctx context.Context, in privguard.Input, subjects []privguard.SubjectID, fn func(i int, c privguard.ConsentFacts, f privguard.SubjectFacts)) error {
	pidx, ok := l.purposeIdx[in.Purpose]
	var rcp uint32
	if in.Recipient != "" {
		rcp = l.interns.lookupRecipient(in.Recipient)
	}
	now := l.nowNano()
	if err := l.current(now); err != nil {
		return err
	}
	return l.lookupAll(ctx, subjects, func(i int, st *subjectState) {
		one := in
		one.Subject = subjects[i]
		var s Status
		switch {
		case !ok:
			s = Status{Reason: privguard.ReasonPurposeUnknown, ConsentReason: privguard.ReasonPurposeUnknown}
		case in.Recipient != "" && rcp == 0:
			s = Status{Reason: privguard.ReasonSeparateConsentRequired, ConsentReason: privguard.ReasonSeparateConsentRequired}
		default:
			s = l.evaluate(st, pidx, rcp, now)
		}
		l.fillFacts(ctx, &one, s, st.facts(), now)
		fn(i, one.Consent, one.Facts)
	})
}

// lookupAll finds the state of every subject of the list (an empty state for an unknown
// one) and calls visit with its position, under the shard's read lock, possibly from
// several goroutines. The list is hashed once, in parallel, and sorted by shard; each
// shard's lock is taken once and its subjects are looked up in batches (lookupShard).
func (l *Ledger) lookupAll(ctx context.Context, subjects []privguard.SubjectID, visit func(i int, st *subjectState)) error {
	if len(subjects) > math.MaxInt32 {
		return fmt.Errorf("consent: %d subjects is too many for one call: %w", len(subjects), privguard.ErrInvalid)
	}
	workers := max(1, min(runtime.GOMAXPROCS(0), len(subjects)/audienceMinPart))
	hashes := make([]subjectHash, len(subjects))
	counts := make([][shardCount]int, workers)
	partLen := (len(subjects) + workers - 1) / workers
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			c := &counts[w]
			for i := w * partLen; i < min(len(subjects), (w+1)*partLen); i++ {
				h := l.state.hash(subjects[i])
				hashes[i] = h
				c[h.shard()]++
			}
		})
	}
	wg.Wait()
	var starts [shardCount + 1]int
	for k := range shardCount {
		starts[k+1] = starts[k]
		for w := range counts {
			starts[k+1] += counts[w][k]
		}
	}
	order := make([]int32, len(subjects))
	next := starts
	for i, h := range hashes {
		k := h.shard()
		order[next[k]] = int32(i)
		next[k]++
	}
	work := make(chan int, shardCount)
	for k := range shardCount {
		work <- k
	}
	close(work)
	for range workers {
		wg.Go(func() {
			for k := range work {
				if ctx.Err() != nil {
					return
				}
				sh := &l.state.s[k]
				sh.mu.RLock()
				lookupShard(&sh.t, subjects, hashes, order[starts[k]:starts[k+1]], visit)
				sh.mu.RUnlock()
			}
		})
	}
	wg.Wait()
	return ctx.Err()
}

// Audience tuning.
const (
	audienceBatch   = 64      // lookups lookupShard keeps in flight
	audienceMinPart = 1 << 14 // fewest subjects worth a goroutine
)

// lookupShard finds the subjects at positions (all in table t) and visits them. It works in
// batches, stage by stage: load every subject's home element; then scan from it; then
// visit. The loads of one stage do not depend on each other, so the processor waits for a
// batch's cache misses together rather than one after another; on a large ledger that is
// most of the cost.
func lookupShard(t *table, subjects []privguard.SubjectID, hashes []subjectHash, positions []int32, visit func(i int, st *subjectState)) {
	var first [audienceBatch]uint32
	var homes [audienceBatch]int
	var found [audienceBatch]int32
	var empty subjectState
	states := new([audienceBatch]subjectState) // one allocation: visit keeps no pointer
	for len(positions) > 0 {
		batch := positions[:min(audienceBatch, len(positions))]
		positions = positions[len(batch):]
		for j, i := range batch {
			p := t.home(hashes[i].placement())
			homes[j], first[j] = p, t.elems[p].place
		}
		for j, i := range batch {
			found[j] = -1
			if first[j] != 0 {
				found[j] = int32(t.scan(hashes[i], homes[j]))
			}
		}
		for j, i := range batch {
			if found[j] < 0 {
				visit(int(i), &empty)
				continue
			}
			var ok bool
			if states[j], ok = t.stateOf(int(found[j]), subjects[i]); ok {
				visit(int(i), &states[j])
			} else {
				visit(int(i), &empty)
			}
		}
	}
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
	// RestrictedCategories are the categories of the scoped restrictions in force (see
	// [Ledger.RestrictedCategories]); ClosedAt is when the account closed or the service
	// ended (zero: neither).
	RestrictedCategories []privguard.DataCategory `json:"restricted_categories,omitempty"`
	ClosedAt             time.Time                `json:"closed_at,omitzero"`
}

// Subject returns the current state of every purpose recorded for subject (an unknown
// subject has none).
func (l *Ledger) Subject(ctx context.Context, subject privguard.SubjectID) (SubjectView, error) {
	now := l.nowNano()
	if err := l.current(now); err != nil {
		return SubjectView{}, err
	}
	st, _ := l.state.get(subject)
	v := SubjectView{Subject: subject, Purposes: []PurposeState{}}
	if f := st.facts(); f != nil {
		v.Facts = l.evaluate(&st, 0, 0, now).Facts
		if m := f.more; m != nil {
			v.RestrictedCategories = m.inForce(now)
			if m.closedAt != 0 {
				v.ClosedAt = time.Unix(0, abs64(m.closedAt)).UTC()
			}
		}
	}
	names := l.interns.recipientNames()
	for _, e := range st.list() {
		s := l.evaluate(&st, e.purpose, e.recipient, now)
		ps := PurposeState{Purpose: l.purposes[e.purpose].Purpose, Recipient: names[e.recipient], State: s.State,
			StateIRI: s.State.IRI(), Allowed: s.Allowed, Reason: s.Reason, ExpiresAt: s.ExpiresAt, Regime: e.regime().name()}
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

// Ping reports whether the ledger can commit; it is the readiness check. The ledger is
// ready when the store's latest write succeeded: its last commit, or, when it has not
// committed for ProbeInterval or the last commit failed, a probe Ping writes then
// ([Prober]; a store without Probe is read instead). So a busy ledger is judged by its own
// commits at no cost, an idle one by at most one probe per ProbeInterval, and a failing
// one is probed on every call until it commits again. Returns an error wrapping
// privguard.ErrUnavailable if it cannot commit, privguard.ErrClosed once closed.
func (l *Ledger) Ping(ctx context.Context) error {
	select {
	case <-l.closing:
		return fmt.Errorf("consent: ledger: %w", privguard.ErrClosed)
	default:
	}
	if err := l.current(l.nowNano()); err != nil {
		return err
	}
	if l.health.fresh(l.now(), ProbeInterval) {
		return nil
	}
	l.probeMu.Lock()
	defer l.probeMu.Unlock()
	if l.health.fresh(l.now(), ProbeInterval) {
		return nil // another Ping probed meanwhile
	}
	ticket := l.health.start()
	var err error
	if p, ok := l.store.(Prober); ok {
		err = p.Probe(ctx)
	} else {
		_, _, err = l.store.Head(ctx)
	}
	l.health.done(ticket, l.now(), err)
	if err != nil {
		return fmt.Errorf("consent: store cannot commit: %w: %w", err, privguard.ErrUnavailable)
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

// SensitivePurpose is the purpose whose (separate) consent covers sensitive categories.
const SensitivePurpose privguard.Purpose = "sensitive.processing"

// Facts fills in.Consent and in.Facts with what the ledger holds about in.Subject and
// in.Purpose (for in.Recipient, if set), in the policy's terms. It is Check shaped for the
// policy engine and the middleware; like Check it is a lookup in memory.
func (l *Ledger) Facts(ctx context.Context, in *privguard.Input) error {
	pidx, ok := l.purposeIdx[in.Purpose]
	if !ok {
		l.fillFacts(ctx, in, Status{Reason: privguard.ReasonPurposeUnknown}, nil, 0)
		return nil
	}
	now := l.nowNano()
	if err := l.current(now); err != nil {
		return err
	}
	var rcp uint32
	if in.Recipient != "" {
		if rcp = l.interns.lookupRecipient(in.Recipient); rcp == 0 {
			l.fillFacts(ctx, in, Status{Reason: privguard.ReasonSeparateConsentRequired}, nil, 0)
			return nil
		}
	}
	st, _ := l.state.get(in.Subject)
	l.fillFacts(ctx, in, l.evaluate(&st, pidx, rcp, now), st.facts(), now)
	return nil
}

// fillFacts sets in.Consent and in.Facts from the status of in.Subject and in.Purpose and
// the subject's facts f (nil: none) at now: in.Facts.Restricted also when an in-force
// scoped restriction covers one of in.Categories (PUR-07).
func (l *Ledger) fillFacts(ctx context.Context, in *privguard.Input, st Status, f *facts, now int64) {
	// The policy weighs the subject-level facts itself: the consent facts are the consent
	// alone, and a fact counts only if it was recorded after the deciding record.
	in.Consent = privguard.ConsentFacts{State: st.State.String(), Allowed: st.ConsentValid, Reason: st.ConsentReason, Guardian: st.Guardian,
		Quarantined: st.Quarantined, Regime: st.Regime}
	if info, ok := l.taxonomy.Lookup(in.Purpose); ok && info.Separate != privguard.SeparateNone {
		// The ledger accepts a grant for such a purpose only as separate consent.
		in.Consent.Separate = st.ConsentValid
		in.Consent.Sensitive = st.ConsentValid && info.Separate == privguard.SeparateSensitive
	}
	if !in.Consent.Sensitive && slices.ContainsFunc(in.Categories, l.taxonomy.Sensitive) {
		// Sensitive categories need separate consent of their own (PIPL Art. 29): those the
		// policy treats as sensitive, declared ones included.
		if s, err := l.Check(ctx, in.Subject, SensitivePurpose); err == nil {
			in.Consent.Sensitive = s.ConsentValid
		}
	}
	minor := st.Facts.MinorPIPL
	if in.Regime == privguard.RegimeGDPR {
		minor = st.Facts.MinorGDPR
	}
	restricted := st.Facts.Restricted
	if !restricted && f != nil && f.more != nil && len(in.Categories) > 0 {
		restricted = f.more.restricts(in.Categories, now)
	}
	in.Facts = privguard.SubjectFacts{Restricted: restricted, ObjectedToDM: st.ObjectionApplies,
		PersonalisationOff: st.PersonalisationOffApplies, GPCOptOut: st.GPCApplies, AgeBand: string(st.Facts.AgeBand),
		Minor: minor, Contacts: in.Facts.Contacts}
}
