package consent

import (
	"hash/maphash"
	"slices"
	"sync"
	"time"

	"github.com/privguard/privguard"
)

// The in-memory state is copy-on-write: the writer builds a new subjectState (with new
// entries and facts) and swaps it into its shard under the shard's write lock; readers copy
// the subjectState out under the read lock and then read it without a lock.

const shardCount = 64

type shard struct {
	mu sync.RWMutex
	m  map[privguard.SubjectID]subjectState
}

type subjectState struct {
	entries []entry
	facts   *facts // nil: no subject-level fact recorded
}

// entry is the current state of one (purpose, recipient) for a subject.
type entry struct {
	seq       uint64 // record that decided it
	expires   int64  // Unix nanoseconds; 0: never
	recipient uint32 // interned recipient name; 0: none
	notice    uint32 // interned notice id; 0: none
	noticeVer uint32
	purpose   uint16 // index into Ledger.purposes
	regime    privguard.Regime
	state     State
	guardian  bool
}

// facts are the subject-level facts. A *seq field is the sequence number of the record that
// set the fact (0: not set); a purpose grant recorded after it is not affected.
type facts struct {
	restricted   bool
	objectionSeq uint64
	gpcSeq       uint64
	persOffSeq   uint64
	ageBand      AgeBand
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
	Facts     Facts
}

type shards struct {
	seed maphash.Seed
	s    [shardCount]shard
}

func newShards() *shards {
	s := &shards{seed: maphash.MakeSeed()}
	for i := range s.s {
		s.s[i].m = make(map[privguard.SubjectID]subjectState)
	}
	return s
}

func (s *shards) of(subject privguard.SubjectID) *shard {
	return &s.s[maphash.String(s.seed, string(subject))%shardCount]
}

func (s *shards) get(subject privguard.SubjectID) (subjectState, bool) {
	sh := s.of(subject)
	sh.mu.RLock()
	st, ok := sh.m[subject]
	sh.mu.RUnlock()
	return st, ok
}

func (s *shards) put(subject privguard.SubjectID, st subjectState) {
	sh := s.of(subject)
	sh.mu.Lock()
	sh.m[subject] = st
	sh.mu.Unlock()
}

// count returns the number of subjects held.
func (s *shards) count() int {
	n := 0
	for i := range s.s {
		s.s[i].mu.RLock()
		n += len(s.s[i].m)
		s.s[i].mu.RUnlock()
	}
	return n
}

// apply returns st changed by r. It never modifies st's entries or facts in place.
func (l *Ledger) apply(st subjectState, r *Record) subjectState {
	if !r.Action.perPurpose() {
		f := facts{}
		if st.facts != nil {
			f = *st.facts
		}
		switch r.Action {
		case ActionRestrict:
			f.restricted = true
		case ActionLiftRestriction:
			f.restricted = false
		case ActionObject:
			f.objectionSeq = r.Seq
		case ActionGPCOptOut:
			f.gpcSeq = r.Seq
		case ActionPersonalisationOff:
			f.persOffSeq = r.Seq
		case ActionPersonalisationOn:
			f.persOffSeq = 0
		case ActionDeclareAge:
			f.ageBand = r.AgeBand
		case ActionErase:
			f = facts{objectionSeq: f.objectionSeq, gpcSeq: f.gpcSeq}
			entries := slices.Clone(st.entries)
			for i := range entries {
				// The deciding seq stays, so an objection made before the erasure still
				// names itself as the reason.
				entries[i].state, entries[i].guardian = StateWithdrawn, false
			}
			st.entries = entries
		}
		if r.AgeBand != AgeUnknown {
			f.ageBand = r.AgeBand
		}
		st.facts = &f
		return st
	}
	var pidx uint16
	if r.Purpose != "" {
		idx, ok := l.purposeIdx[r.Purpose]
		if !ok {
			return st // a purpose no longer configured: kept in the ledger, not in the state
		}
		pidx = idx
	}
	var rcp uint32
	if r.Recipient != nil {
		rcp = l.interns.recipient(r.Recipient.Name)
	}
	entries := slices.Clone(st.entries)
	switch r.Action {
	case ActionGrant:
		e := entry{seq: r.Seq, recipient: rcp, purpose: pidx, regime: r.Regime, state: StateGiven,
			guardian: r.Guardian != nil}
		if !r.ExpiresAt.IsZero() {
			e.expires = r.ExpiresAt.UnixNano()
		}
		if r.Notice != nil {
			e.notice, e.noticeVer = l.interns.notice(r.Notice.ID), r.Notice.Version
			if l.notices.superseded(r.Notice.ID, r.Notice.Version, r.Purpose) {
				e.state = StateInvalidated
			}
		}
		i := slices.IndexFunc(entries, func(x entry) bool { return x.purpose == pidx && x.recipient == rcp })
		if i < 0 {
			entries = append(entries, e)
			break
		}
		if old := entries[i]; old.state.Counts() && (old.expires == 0 || old.expires > r.Time.UnixNano()) && e.state == StateGiven {
			e.state = StateRenewed
		}
		entries[i] = e
	case ActionWithdraw, ActionRefuse, ActionExpire:
		state := StateWithdrawn
		switch r.Action {
		case ActionRefuse:
			state = StateRefused
		case ActionExpire:
			state = StateExpired
		}
		found := false
		for i := range entries {
			e := &entries[i]
			if r.Purpose != "" && !l.purposes[e.purpose].Purpose.Within(r.Purpose) {
				continue
			}
			if rcp != 0 && e.recipient != rcp {
				continue
			}
			if r.Action == ActionExpire && !e.state.Counts() {
				continue
			}
			found = found || (e.purpose == pidx && e.recipient == rcp)
			e.state, e.seq = state, r.Seq
		}
		if !found && r.Purpose != "" && r.Action != ActionExpire {
			entries = append(entries, entry{seq: r.Seq, recipient: rcp, purpose: pidx, regime: r.Regime, state: state})
		}
	}
	st.entries = entries
	if r.AgeBand != AgeUnknown {
		f := facts{}
		if st.facts != nil {
			f = *st.facts
		}
		f.ageBand = r.AgeBand
		st.facts = &f
	}
	return st
}

// evaluate decides purpose pidx (for recipient rcp) on st at time now.
func (l *Ledger) evaluate(st subjectState, pidx uint16, rcp uint32, now func() time.Time) Status {
	info := l.purposes[pidx]
	var s Status
	var f facts
	if st.facts != nil {
		f = *st.facts
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
	var best *entry
	for i := range st.entries {
		e := &st.entries[i]
		if e.recipient != rcp || (e.purpose != pidx && !l.ancestor(pidx, e.purpose)) {
			continue
		}
		if best == nil || e.seq > best.seq {
			best = e
		}
	}
	var seq uint64
	if best != nil {
		s.State, s.Seq, s.Guardian, seq = best.state, best.seq, best.guardian, best.seq
		if best.expires != 0 {
			s.ExpiresAt = time.Unix(0, best.expires).UTC()
			if s.State.Counts() && now().UnixNano() >= best.expires {
				s.State = StateExpired
			}
		}
	}
	switch {
	case f.restricted && !info.Retained:
		s.Reason = privguard.ReasonRestricted
	case info.Separate.NeedsRecipient() && rcp == 0:
		s.Reason = privguard.ReasonSeparateConsentRequired
	case info.DirectMarketing && f.objectionSeq > seq:
		s.Reason = privguard.ReasonObjectionDirectMarketing
	case info.SaleOrSharing && f.gpcSeq > seq:
		s.Reason = privguard.ReasonGPCOptOut
	case info.Personalised && f.persOffSeq > seq:
		s.Reason = privguard.ReasonPersonalisationOff
	case best == nil:
		s.Reason = privguard.ReasonConsentMissing
	case !s.State.Counts():
		s.Reason = stateReasons[s.State]
	case !best.guardian && f.ageBand.Under(l.minorAge(best.regime)):
		s.Reason = privguard.ReasonGuardianConsentRequired
	default:
		s.Allowed, s.Reason = true, privguard.ReasonConsentGiven
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
	noticeIDs  map[string]uint32
}

func newInterns() *interns {
	return &interns{recipients: map[string]uint32{}, noticeIDs: map[string]uint32{}}
}

func (in *interns) recipient(name string) uint32 { return in.intern(in.recipients, name) }
func (in *interns) notice(id string) uint32      { return in.intern(in.noticeIDs, id) }

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
