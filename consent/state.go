package consent

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/zeebo/xxh3"

	"github.com/privguard/privguard"
)

// The in-memory state is copy-on-write: the writer builds a new subjectState (with new
// entries and facts) and swaps it into its shard under the shard's write lock; readers copy
// the subjectState out under the read lock and then read it without a lock.
//
// A subject's first entry is stored inline, so that the common case (one purpose recorded)
// costs no separate allocation and a Check one memory access fewer.

const shardCount = 64

type shard struct {
	mu sync.RWMutex
	t  table
}

// each calls fn for every subject of the shard; if fn returns true, the (changed) state is
// stored back. The subject id is known only for the few subjects held by id (table.exact);
// for the others it is "" and st.rec names a record of the subject. The caller holds the
// lock the change needs.
func (sh *shard) each(fn func(subject privguard.SubjectID, st *subjectState) (changed bool)) {
	t := &sh.t
	for i := range t.elems {
		if p := t.elems[i].place; p == 0 || p&elemShared != 0 {
			continue
		}
		st := t.stateAt(i)
		if fn("", &st) {
			t.store(i, st)
		}
	}
	for subject, st := range t.exact {
		if fn(subject, &st) {
			t.exact[subject] = st
		}
	}
}

type subjectState struct {
	rec uint64    // the last record applied: it names the subject (the table keeps no id)
	one entry     // the only entry, when ext has none and one.seq != 0
	ext *stateExt // nil: at most one entry and no subject-level fact
}

// stateExt holds what most subjects do not have: more than one entry, subject-level facts.
// Like the rest of the state it is never modified once published.
type stateExt struct {
	more  []entry // every entry, when there are two or more
	facts *facts  // nil: no subject-level fact recorded
}

func (st *subjectState) more() []entry {
	if st.ext != nil {
		return st.ext.more
	}
	return nil
}

func (st *subjectState) facts() *facts {
	if st.ext != nil {
		return st.ext.facts
	}
	return nil
}

// list returns the entries (allocating a slice for the inline one: not for hot paths).
func (st *subjectState) list() []entry {
	if m := st.more(); m != nil {
		return m
	}
	if st.one.seq != 0 {
		return []entry{st.one}
	}
	return nil
}

// setList stores entries, inline when there is only one.
func (st *subjectState) setList(entries []entry) {
	f := st.facts()
	st.one = entry{}
	var more []entry
	switch len(entries) {
	case 0:
	case 1:
		st.one = entries[0]
	default:
		more = entries
	}
	st.setExt(more, f)
}

// setFacts stores f (nil: none).
func (st *subjectState) setFacts(f *facts) { st.setExt(st.more(), f) }

func (st *subjectState) setExt(more []entry, f *facts) {
	switch n := len(more); {
	case n == 0 && f == nil:
		st.ext = nil
	case n > 0 && n <= extInline:
		// One allocation with the entries right after the header: a Check on a subject
		// with a few purposes follows one pointer into memory that is already adjacent.
		b := &struct {
			stateExt
			buf [extInline]entry
		}{}
		b.more = b.buf[:copy(b.buf[:], more):n]
		b.facts = f
		st.ext = &b.stateExt
	default:
		st.ext = &stateExt{more: more, facts: f}
	}
}

// extInline is how many entries a stateExt holds in its own allocation.
const extInline = 4

// entry is the current state of one (purpose, recipient) for a subject, in 24 bytes so that
// a table element (key and state with one entry) is one 64-byte cache line.
type entry struct {
	seq       uint64 // record that decided it
	expires   uint32 // seconds since expiryEpoch, rounded down; 0: never
	recipient uint32 // interned recipient name; 0: none
	notice    uint32 // interned (notice id, version); 0: none
	purpose   uint16 // index into Ledger.purposes
	bits      uint8  // state (3 bits), regime (2 bits), guardian (1 bit), unproven (1 bit)
}

func (e *entry) state() State     { return State(e.bits & 7) }
func (e *entry) regime() regime   { return regime(e.bits >> 3 & 3) }
func (e *entry) guardian() bool   { return e.bits&(1<<5) != 0 }
func (e *entry) setState(s State) { e.bits = e.bits&^7 | uint8(s) }

// unproven reports a grant imported or collected by a third party without the proof of its
// scope (see unprovenGrant; MKT-11).
func (e *entry) unproven() bool { return e.bits&(1<<6) != 0 }

// unprovenGrant reports whether a grant recorded on channel with method and the evidence
// collectedBy, and a proof reference and contract reference (present or not), is a bought
// or partner list's consent without its provenance (MKT-11): it was imported (method
// imported or channel import) or collected by a third party, and it lacks its source
// (collected_by), its proof (proof_ref) or, collected by a third party, the contract it
// was collected under (contract_ref). Such a grant is kept, but quarantined: the send gate
// does not rely on it until a grant with the proof supersedes it.
func unprovenGrant(channel, method, collectedBy string, proof, contract bool) bool {
	third := collectedBy == "third_party"
	if method != string(MethodImported) && channel != string(ChannelImport) && !third {
		return false
	}
	return collectedBy == "" || !proof || (third && !contract)
}

func makeBits(s State, r regime, guardian bool) uint8 {
	b := uint8(s) | uint8(r)<<3
	if guardian {
		b |= 1 << 5
	}
	return b
}

// expiryEpoch is the zero of entry.expires: 2020-01-01 UTC (uint32 seconds reach 2156).
const expiryEpoch = 1577836800

// expirySeconds converts an expiry in Unix nanoseconds (0: never) to entry.expires. It
// rounds down: a consent is never treated as valid past its expiry.
func expirySeconds(ns int64) uint32 {
	if ns == 0 {
		return 0
	}
	s := ns/1e9 - expiryEpoch
	switch {
	case s < 1:
		return 1
	case s > math.MaxUint32:
		return math.MaxUint32
	}
	return uint32(s)
}

func expiryNano(s uint32) int64 {
	if s == 0 {
		return 0
	}
	return (int64(s) + expiryEpoch) * 1e9
}

// regime is privguard.Regime in one byte.
type regime uint8

const (
	regimeNone regime = iota
	regimePIPL
	regimeGDPR
)

func regimeOf(r privguard.Regime) regime {
	switch r {
	case privguard.RegimePIPL:
		return regimePIPL
	case privguard.RegimeGDPR:
		return regimeGDPR
	}
	return regimeNone
}

func (r regime) name() privguard.Regime {
	switch r {
	case regimePIPL:
		return privguard.RegimePIPL
	case regimeGDPR:
		return privguard.RegimeGDPR
	}
	return ""
}

// facts are the subject-level facts. A *seq field is the sequence number of the record that
// set the fact (0: not set); a purpose grant recorded after it is not affected.
type facts struct {
	restricted   bool
	objectionSeq uint64
	gpcSeq       uint64
	persOffSeq   uint64
	ageBand      AgeBand
	more         *factsMore // nil: no closure and no scoped restriction (most subjects)
}

// factsMore holds the facts few subjects have. Like facts it is never modified once
// published.
type factsMore struct {
	// closedAt is the Unix nanoseconds of the first close_account or end_service; 0: none;
	// negated once the subject was erased since (the closure stays on record, but nothing
	// is left for retention to run from it: EachClosed skips it).
	closedAt int64
	scoped   []scopedRestriction
}

// scopedRestriction is a restrict record with categories, as far as it is not lifted.
type scopedRestriction struct {
	seq        uint64
	expires    int64 // Unix nanoseconds; 0: until lifted
	categories []privguard.DataCategory
}

func (r *scopedRestriction) inForce(now int64) bool { return r.expires == 0 || now < r.expires }

// restricts reports whether an in-force scoped restriction covers one of cats: a category
// equal to, within or containing a restricted one (a use of "user.behavior" includes
// "user.behavior.browsing_history").
func (m *factsMore) restricts(cats []privguard.DataCategory, now int64) bool {
	for i := range m.scoped {
		r := &m.scoped[i]
		if !r.inForce(now) {
			continue
		}
		for _, c := range cats {
			for _, rc := range r.categories {
				if c.Within(rc) || rc.Within(c) {
					return true
				}
			}
		}
	}
	return false
}

// withMore returns f with more replaced (nil when it holds nothing).
func (f facts) withMore(m factsMore) facts {
	if m.closedAt == 0 && len(m.scoped) == 0 {
		f.more = nil
	} else {
		f.more = &m
	}
	return f
}

func (f *facts) moreOrZero() factsMore {
	if f.more != nil {
		return *f.more
	}
	return factsMore{}
}

// Facts are a subject's subject-level facts, as the policy sees them.
type Facts struct {
	Restricted         bool    `json:"restricted"`
	ObjectedToDM       bool    `json:"objected_to_direct_marketing"`
	PersonalisationOff bool    `json:"personalisation_off"`
	GPCOptOut          bool    `json:"gpc_opt_out"`
	AgeBand            AgeBand `json:"age_band,omitempty"`
	MinorPIPL          bool    `json:"minor_pipl"`
	MinorGDPR          bool    `json:"minor_gdpr"`
}

// Status is the answer of [Ledger.Check] for one subject and purpose.
type Status struct {
	// State is the DPV state of the record that decides the purpose (with expiry applied).
	State State
	// Allowed reports whether the purpose may rely on consent now: consent counts and no
	// subject-level fact blocks it.
	Allowed bool
	// Reason is the stable code of the outcome: consent.given when allowed.
	Reason privguard.Reason
	// Seq is the sequence number of the deciding record (0: none).
	Seq       uint64
	ExpiresAt time.Time
	Guardian  bool
	// Quarantined reports that the deciding record is a grant without its provenance: imported
	// or collected by a third party without source, proof or contract (MKT-11). Consent
	// still counts for Allowed; the send gate denies it.
	Quarantined bool
	// Regime is the law the deciding record was made under ("" for none).
	Regime privguard.Regime
	Facts  Facts
	// ConsentValid and ConsentReason are the consent alone (state, expiry, notice, guardian),
	// without the subject-level facts that Allowed also weighs.
	ConsentValid  bool
	ConsentReason privguard.Reason
	// ObjectionApplies, GPCApplies and PersonalisationOffApplies report that the fact was
	// recorded after the deciding record, so that it still applies to this purpose.
	ObjectionApplies, GPCApplies, PersonalisationOffApplies bool
}

type shards struct {
	key [2]uint64 // the hash key (Store secret consent.table-hash): snapshots depend on it
	// hashFn replaces the keyed hash in tests that force collisions; nil in a Ledger.
	hashFn func(privguard.SubjectID) subjectHash
	s      [shardCount]shard
}

func newShards(key [2]uint64, sizeHint int) *shards {
	s := &shards{key: key}
	for i := range s.s {
		s.s[i].t = newTable(sizeHint / shardCount)
	}
	return s
}

// hash returns the subject's keyed hash: XXH3-128 seeded with the secret key. (SipHash-2-4-128
// was measured too: 25 ns more a Check, about a fifth of a lookup of an unknown subject.
// Collisions between stored subjects are handled exactly whatever the hash; see table.go.)
func (s *shards) hash(subject privguard.SubjectID) subjectHash {
	if s.hashFn != nil {
		return s.hashFn(subject)
	}
	return hashBytes(s.key, unsafe.Slice(unsafe.StringData(string(subject)), len(subject)))
}

func hashBytes(key [2]uint64, b []byte) subjectHash {
	h := xxh3.Hash128Seed(b, key[0])
	return subjectHash{hi: h.Hi, lo: h.Lo}
}

func (s *shards) get(subject privguard.SubjectID) (subjectState, bool) {
	h := s.hash(subject)
	sh := &s.s[h.shard()]
	sh.mu.RLock()
	st, ok := sh.t.get(h, subject)
	sh.mu.RUnlock()
	return st, ok
}

// ownerFunc names the subject of the stored record seq. The writer uses it to tell a stored
// subject from a different one with the same hash.
type ownerFunc func(seq uint64) (privguard.SubjectID, error)

// lookup is get for the writer: a subject found by its hash is confirmed through owner to
// be subject, not another with the same hash (then ok is false: subject is new). Only the
// writer, which alone changes the tables, calls it (and put), so it takes no lock.
func (s *shards) lookup(subject privguard.SubjectID, owner ownerFunc) (st subjectState, ok bool, err error) {
	st, _, ok, err = s.lookupHash(s.hash(subject), subject, owner)
	return st, ok, err
}

// lookupHash is lookup for a hash already computed; i is the subject's element if it has one
// of its own (not a marker), else -1.
func (s *shards) lookupHash(h subjectHash, subject privguard.SubjectID, owner ownerFunc) (st subjectState, i int, ok bool, err error) {
	t := &s.s[h.shard()].t
	i = t.find(h)
	if i < 0 {
		return subjectState{}, -1, false, nil
	}
	if t.elems[i].place&elemShared != 0 {
		st, ok := t.exact[subject]
		return st, -1, ok, nil
	}
	st = t.stateAt(i)
	id, err := owner(st.rec)
	if err != nil || id != subject {
		return subjectState{}, -1, false, err
	}
	return st, i, true, nil
}

// put stores subject's state, adding the subject if it is new. If another stored subject
// has the same hash (owner says whose the element is), both move to the shard's exact map.
// Only the writer calls it; it reads the table without a lock and takes the write lock to
// change it.
func (s *shards) put(subject privguard.SubjectID, st subjectState, owner ownerFunc) error {
	return s.putHash(s.hash(subject), subject, st, owner)
}

func (s *shards) putHash(h subjectHash, subject privguard.SubjectID, st subjectState, owner ownerFunc) error {
	sh := &s.s[h.shard()]
	t := &sh.t
	i := t.find(h)
	var other privguard.SubjectID
	if i >= 0 && t.elems[i].place&elemShared == 0 {
		id, err := owner(t.stateAt(i).rec)
		if err != nil {
			return err
		}
		if id != subject {
			other = id
		}
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	switch {
	case i < 0:
		t.store(t.insert(h), st)
	case other != "":
		t.share(i, other)
		t.exact[privguard.SubjectID(strings.Clone(string(subject)))] = st
	case t.elems[i].place&elemShared != 0:
		t.exact[privguard.SubjectID(strings.Clone(string(subject)))] = st
	default:
		t.store(i, st)
	}
	return nil
}

// count returns the number of subjects held.
func (s *shards) count() int {
	n := 0
	for i := range s.s {
		s.s[i].mu.RLock()
		n += s.s[i].t.count()
		s.s[i].mu.RUnlock()
	}
	return n
}

// change is what apply needs of a record: the live writer builds it from a Record, the
// start-up rebuild straight from the stored bytes.
type change struct {
	seq        uint64
	time       int64 // Unix nanoseconds
	expires    int64 // Unix nanoseconds; 0: never
	action     Action
	purpose    int32 // index into Ledger.purposes; -1: none (subject-level, or withdraw all)
	recipient  uint32
	notice     uint32 // interned (notice id, version)
	regime     regime
	guardian   bool
	unproven   bool // a grant without its provenance (unprovenGrant)
	ageBand    AgeBand
	superseded bool // the grant cites a notice version a material change superseded
	// categories of a restrict or lift_restriction record (nil for the others).
	categories []privguard.DataCategory
	effective  int64 // EffectiveAt of a closure, Unix nanoseconds; 0: at time
}

// changeOf returns the change of r, or ok=false if r names a purpose that is no longer
// configured (the record stays in the ledger but not in the state).
func (l *Ledger) changeOf(r *Record) (c change, ok bool) {
	c = change{seq: r.Seq, time: r.Time.UnixNano(), action: r.Action, purpose: -1, regime: regimeOf(r.Regime),
		guardian: r.Guardian != nil, ageBand: r.AgeBand}
	if r.Action == ActionGrant {
		e := &r.Evidence
		c.unproven = unprovenGrant(string(r.Channel), string(r.Method), e.CollectedBy, e.ProofRef != "", e.ContractRef != "")
	}
	if !r.ExpiresAt.IsZero() {
		c.expires = r.ExpiresAt.UnixNano()
	}
	if r.Purpose != "" {
		idx, ok := l.purposeIdx[r.Purpose]
		if !ok {
			return c, false
		}
		c.purpose = int32(idx)
	}
	if r.Recipient != nil {
		c.recipient = l.interns.recipient(r.Recipient.Name)
	}
	if r.Action == ActionRestrict || r.Action == ActionLiftRestriction {
		c.categories = r.Categories
	}
	if !r.EffectiveAt.IsZero() {
		c.effective = r.EffectiveAt.UnixNano()
	}
	if r.Notice != nil && r.Action == ActionGrant {
		c.notice = l.interns.noticeVersion(r.Notice.ID, r.Notice.Version)
		c.superseded = l.notices.superseded(r.Notice.ID, r.Notice.Version, r.Purpose)
	}
	return c, true
}

// apply returns st changed by c. It never modifies st's entries or facts in place.
func (l *Ledger) apply(st subjectState, c *change) subjectState {
	st.rec = c.seq
	if c.ageBand != AgeUnknown || !c.action.perPurpose() {
		f := facts{}
		if old := st.facts(); old != nil {
			f = *old
		}
		switch c.action {
		case ActionRestrict:
			if len(c.categories) == 0 {
				f.restricted = true
				break
			}
			m := f.moreOrZero()
			scoped := make([]scopedRestriction, 0, len(m.scoped)+1)
			for _, r := range m.scoped {
				if r.inForce(c.time) { // ended ones are dropped on the way
					scoped = append(scoped, r)
				}
			}
			m.scoped = append(scoped, scopedRestriction{seq: c.seq, expires: c.expires, categories: slices.Clone(c.categories)})
			f = f.withMore(m)
		case ActionLiftRestriction:
			if len(c.categories) == 0 {
				f.restricted = false // the subject's restriction; scoped ones are lifted by category
				break
			}
			if f.more == nil {
				break
			}
			m := *f.more
			m.scoped = liftCategories(m.scoped, c.categories, c.time)
			f = f.withMore(m)
		case ActionCloseAccount, ActionEndService:
			if m := f.moreOrZero(); m.closedAt <= 0 {
				m.closedAt = cmp.Or(c.effective, c.time)
				f = f.withMore(m)
			}
		case ActionObject:
			f.objectionSeq = c.seq
		case ActionGPCOptOut:
			f.gpcSeq = c.seq
		case ActionPersonalisationOff:
			f.persOffSeq = c.seq
		case ActionPersonalisationOn:
			f.persOffSeq = 0
		case ActionErase:
			// The closure stays, marked erased (negated): retention has nothing left to run
			// from it. Scoped restrictions end with the data they restricted.
			f = facts{objectionSeq: f.objectionSeq, gpcSeq: f.gpcSeq}.withMore(factsMore{closedAt: -abs64(f.moreOrZero().closedAt)})
			entries := slices.Clone(st.list())
			for i := range entries {
				// The deciding seq stays, so an objection made before the erasure still
				// names itself as the reason.
				entries[i].bits = makeBits(StateWithdrawn, entries[i].regime(), false)
			}
			st.setList(entries)
		}
		if c.ageBand != AgeUnknown && c.action != ActionErase {
			f.ageBand = c.ageBand
		}
		st.setFacts(&f)
		if !c.action.perPurpose() {
			return st
		}
	}
	if c.action == ActionGrant {
		pidx := uint16(c.purpose)
		state := StateGiven
		if c.superseded {
			state = StateInvalidated
		}
		e := entry{seq: c.seq, expires: expirySeconds(c.expires), recipient: c.recipient, notice: c.notice,
			purpose: pidx, bits: makeBits(state, c.regime, c.guardian)}
		if c.unproven {
			e.bits |= 1 << 6
		}
		renews := func(old entry) bool {
			return old.state().Counts() && (old.expires == 0 || expiryNano(old.expires) > c.time) && state == StateGiven
		}
		if st.more() == nil && (st.one.seq == 0 || (st.one.purpose == pidx && st.one.recipient == c.recipient)) {
			if st.one.seq != 0 && renews(st.one) {
				e.setState(StateRenewed)
			}
			st.one = e // the common case: no slice at all
			return st
		}
		entries := slices.Clone(st.list())
		i := slices.IndexFunc(entries, func(x entry) bool { return x.purpose == pidx && x.recipient == c.recipient })
		if i < 0 {
			entries = append(entries, e)
		} else {
			if renews(entries[i]) {
				e.setState(StateRenewed)
			}
			entries[i] = e
		}
		st.setList(entries)
		return st
	}
	entries := slices.Clone(st.list())
	state := StateWithdrawn
	switch c.action {
	case ActionRefuse:
		state = StateRefused
	case ActionExpire:
		state = StateExpired
	}
	found := false
	for i := range entries {
		e := &entries[i]
		if c.purpose >= 0 && !l.purposes[e.purpose].Purpose.Within(l.purposes[c.purpose].Purpose) {
			continue
		}
		if c.recipient != 0 && e.recipient != c.recipient {
			continue
		}
		if c.action == ActionExpire && !e.state().Counts() {
			continue
		}
		found = found || (int32(e.purpose) == c.purpose && e.recipient == c.recipient)
		e.setState(state)
		e.seq = c.seq
	}
	if !found && c.purpose >= 0 && c.action != ActionExpire {
		entries = append(entries, entry{seq: c.seq, recipient: c.recipient, purpose: uint16(c.purpose),
			bits: makeBits(state, c.regime, false)})
	}
	st.setList(entries)
	return st
}

// liftCategories returns the in-force restrictions of scoped (at now) without the categories
// within one of lifted; a restriction left with no category ends.
func liftCategories(scoped []scopedRestriction, lifted []privguard.DataCategory, now int64) []scopedRestriction {
	var out []scopedRestriction
	for _, r := range scoped {
		if !r.inForce(now) {
			continue
		}
		keep := slices.DeleteFunc(slices.Clone(r.categories), func(c privguard.DataCategory) bool {
			return slices.ContainsFunc(lifted, c.Within)
		})
		if len(keep) > 0 {
			r.categories = keep
			out = append(out, r)
		}
	}
	return out
}

// evaluate decides purpose pidx (for recipient rcp) on st at time now (Unix nanoseconds).
func (l *Ledger) evaluate(st *subjectState, pidx uint16, rcp uint32, now int64) Status {
	info := l.purposes[pidx]
	var s Status
	var f facts
	var more []entry
	if x := st.ext; x != nil {
		more = x.more
		if x.facts != nil {
			f = *x.facts
			s.Facts = Facts{
				Restricted:         f.restricted,
				ObjectedToDM:       f.objectionSeq != 0,
				PersonalisationOff: f.persOffSeq != 0,
				GPCOptOut:          f.gpcSeq != 0,
				AgeBand:            f.ageBand,
				MinorPIPL:          f.ageBand.Under(PIPLGuardianAge),
				MinorGDPR:          f.ageBand.Under(l.euConsentAge),
			}
		}
	}
	var best *entry
	if more == nil {
		if e := &st.one; e.seq != 0 && e.recipient == rcp && (e.purpose == pidx || l.ancestor(pidx, e.purpose)) {
			best = e
		}
	} else {
		for i := range more {
			e := &more[i]
			if e.recipient != rcp || (e.purpose != pidx && !l.ancestor(pidx, e.purpose)) {
				continue
			}
			if best == nil || e.seq > best.seq {
				best = e
			}
		}
	}
	var seq uint64
	if best != nil {
		s.State, s.Seq, s.Guardian, seq = best.state(), best.seq, best.guardian(), best.seq
		s.Quarantined = best.unproven() && s.State.Counts()
		s.Regime = best.regime().name()
		if best.expires != 0 {
			exp := expiryNano(best.expires)
			s.ExpiresAt = time.Unix(0, exp).UTC()
			if s.State.Counts() && now >= exp {
				s.State = StateExpired
			}
		}
	}
	switch {
	case best == nil:
		s.ConsentReason = privguard.ReasonConsentMissing
	case !s.State.Counts():
		s.ConsentReason = stateReasons[s.State]
	case !best.guardian() && f.ageBand.Under(l.minorAge(best.regime().name())):
		s.ConsentReason = privguard.ReasonGuardianConsentRequired
	default:
		s.ConsentValid, s.ConsentReason = true, privguard.ReasonConsentGiven
	}
	s.ObjectionApplies = info.DirectMarketing && f.objectionSeq > seq
	s.GPCApplies = info.SaleOrSharing && f.gpcSeq > seq
	s.PersonalisationOffApplies = info.Personalised && f.persOffSeq > seq
	switch {
	case f.restricted && !info.Retained:
		s.Reason = privguard.ReasonRestricted
	case info.Separate.NeedsRecipient() && rcp == 0:
		s.Reason = privguard.ReasonSeparateConsentRequired
	case s.ObjectionApplies:
		s.Reason = privguard.ReasonObjectionDirectMarketing
	case s.GPCApplies:
		s.Reason = privguard.ReasonGPCOptOut
	case s.PersonalisationOffApplies:
		s.Reason = privguard.ReasonPersonalisationOff
	default:
		s.Allowed, s.Reason = s.ConsentValid, s.ConsentReason
	}
	return s
}

var stateReasons = [...]privguard.Reason{
	StateUnknown:     privguard.ReasonConsentMissing,
	StateGiven:       privguard.ReasonConsentGiven,
	StateRenewed:     privguard.ReasonConsentGiven,
	StateRefused:     privguard.ReasonConsentRefused,
	StateWithdrawn:   privguard.ReasonConsentWithdrawn,
	StateExpired:     privguard.ReasonConsentExpired,
	StateInvalidated: privguard.ReasonConsentInvalidated,
}

// minorAge is the age below which a regime needs a guardian's consent.
func (l *Ledger) minorAge(r privguard.Regime) int {
	if r == privguard.RegimeGDPR {
		return l.euConsentAge
	}
	return PIPLGuardianAge
}

// ancestor reports whether purpose a is a registered ancestor of purpose p.
func (l *Ledger) ancestor(p, a uint16) bool {
	return slices.Contains(l.ancestors[p], a)
}

// interns maps recipient names and notice ids to small integers for compact entries.
type interns struct {
	mu         sync.RWMutex
	recipients map[string]uint32
	notices    map[noticeVersion]uint32
	noticeList []noticeVersion // id-1 -> notice version
}

// noticeVersion identifies a notice version.
type noticeVersion struct {
	id      string
	version uint32
}

func newInterns() *interns {
	return &interns{recipients: map[string]uint32{}, notices: map[noticeVersion]uint32{}}
}

func (in *interns) recipient(name string) uint32 { return in.intern(in.recipients, name) }

// noticeVersion returns the interned id of a notice version.
func (in *interns) noticeVersion(id string, version uint32) uint32 {
	k := noticeVersion{id, version}
	in.mu.RLock()
	v, ok := in.notices[k]
	in.mu.RUnlock()
	if ok {
		return v
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if v, ok := in.notices[k]; ok {
		return v
	}
	in.noticeList = append(in.noticeList, k)
	v = uint32(len(in.noticeList))
	in.notices[k] = v
	return v
}

// noticeVersions returns a copy of every interned notice version (index id-1).
func (in *interns) noticeVersions() []noticeVersion {
	in.mu.RLock()
	defer in.mu.RUnlock()
	return slices.Clone(in.noticeList)
}

func (in *interns) intern(m map[string]uint32, s string) uint32 {
	in.mu.RLock()
	v, ok := m[s]
	in.mu.RUnlock()
	if ok {
		return v
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if v, ok := m[s]; ok {
		return v
	}
	v = uint32(len(m) + 1)
	m[s] = v
	return v
}

// lookupRecipient returns the interned id of name, or 0 if no record names it.
func (in *interns) lookupRecipient(name string) uint32 {
	in.mu.RLock()
	defer in.mu.RUnlock()
	return in.recipients[name]
}

// recipientNames returns id -> name for every interned recipient.
func (in *interns) recipientNames() map[uint32]string {
	in.mu.RLock()
	defer in.mu.RUnlock()
	names := make(map[uint32]string, len(in.recipients))
	for name, id := range in.recipients {
		names[id] = name
	}
	return names
}

func abs64(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}
