package consent

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	"github.com/privguard/privguard"
)

// Request is a write to the ledger: one consent action or subject-level fact. Only Subject
// and Action (and Purpose, for a per-purpose action other than a withdrawal of everything)
// are needed to withdraw, refuse or object (DSR-02, CON-07); a grant needs the proof.
type Request struct {
	Subject       privguard.SubjectID
	Purpose       privguard.Purpose
	Action        Action
	LegalBasis    privguard.LegalBasis
	Regime        privguard.Regime
	Notice        *NoticeRef // ID, Version and Language; the ledger fills in the hash
	Channel       Channel
	Method        Method
	Separate      bool
	SeparateScope privguard.SeparateScope
	Recipient     *Recipient
	Guardian      *Guardian
	AgeBand       AgeBand
	// Evidence is stored as given, except IPPrefix and IPHash, which the ledger derives
	// from IP.
	Evidence Evidence
	// IP is the subject's address as seen by the collecting service. It is never stored:
	// the record keeps its network prefix and a keyed hash.
	IP         string
	Categories []privguard.DataCategory
	Written    bool
	Actor      string
	ActorType  ActorType
	// ExpiresAt, on a restrict record with Categories, is when the scoped restriction ends
	// (zero: when lifted). (JSON names keep the fingerprint of requests without them.)
	ExpiresAt time.Time `json:"ExpiresAt,omitzero"`
	// EffectiveAt, on close_account or end_service, is when the account closed or the
	// service ended, if earlier (zero: now); it must not be in the future.
	EffectiveAt time.Time `json:"EffectiveAt,omitzero"`
	// Ground, on a restrict record, is the legal ground of the restriction (at most
	// MaxGround bytes).
	Ground string `json:"Ground,omitempty"`
	// IdempotencyKey, if set, makes the write idempotent: a retry with the same key and
	// the same request returns the first record; with a different request, a conflict.
	IdempotencyKey string
}

// Append records req durably and returns the record. replayed reports that the record was
// written earlier under the same idempotency key.
//
// A rejected request returns a [*FieldError] wrapping privguard.ErrInvalid or
// privguard.ErrConflict, and writes nothing.
func (l *Ledger) Append(ctx context.Context, req Request) (rec Record, replayed bool, err error) {
	if err := l.checkRequest(&req); err != nil {
		return Record{}, false, err
	}
	req.Evidence.IPPrefix, req.Evidence.IPHash = "", nil // derived from req.IP only
	if req.IP != "" {
		if err := l.processIP(&req); err != nil {
			return Record{}, false, err
		}
	}
	o := &op{req: &req}
	if req.IdempotencyKey != "" {
		o.fp = fingerprint(&req)
	}
	res := l.submit(ctx, o)
	return res.rec, res.replayed, res.err
}

// fingerprint identifies a request for idempotency: the same key with a different
// fingerprint is a conflict.
func fingerprint(req *Request) []byte {
	c := *req
	c.IdempotencyKey = ""
	b, _ := json.Marshal(c)
	h := sha256.Sum256(b)
	return h[:]
}

// processIP replaces the raw address with its prefix and keyed hash.
func (l *Ledger) processIP(req *Request) error {
	addr, err := netip.ParseAddr(req.IP)
	if err != nil {
		return invalid("evidence.ip", CodeInvalid, "not an IP address")
	}
	addr = addr.Unmap()
	bits := 48
	if addr.Is4() {
		bits = 24
	}
	prefix, _ := addr.Prefix(bits)
	mac := hmac.New(sha256.New, l.evidenceKey)
	mac.Write(addr.AsSlice())
	req.Evidence.IPPrefix = prefix.String()
	req.Evidence.IPHash = mac.Sum(nil)
	req.IP = ""
	return nil
}

// checkRequest validates what can be decided without the ledger's state.
func (l *Ledger) checkRequest(req *Request) error {
	if err := req.Subject.Validate(); err != nil {
		return invalid("subject", CodeInvalid, privguard.SubjectIDRule)
	}
	if !req.Action.Valid() {
		return invalid("action", CodeInvalid, "unknown action")
	}
	if req.Regime != "" && !req.Regime.Valid() {
		return invalid("regime", CodeInvalid, "must be pipl or gdpr")
	}
	if req.LegalBasis != "" && req.Regime != "" && !req.LegalBasis.AllowedIn(req.Regime) {
		// CON-01: no legitimate-interests basis under PIPL.
		return invalid("legal_basis", CodeBasisNotAllowed, "%s is not a lawful basis under %s", req.LegalBasis, req.Regime)
	}
	if req.Channel != "" && !req.Channel.Valid() {
		return invalid("channel", CodeInvalid, "must be one of web, app, sms, store, import, api")
	}
	if req.Method != "" && !req.Method.Valid() {
		return invalid("method", CodeInvalid, "must be one of explicit, gpc, guardian, imported")
	}
	switch req.ActorType {
	case "":
		if req.Action.ControllerFact() {
			return invalid("actor_type", CodeRequired, "a %s record is the controller's act: actor_type operator or system", req.Action)
		}
		req.ActorType = ActorSubject
		if req.Method == MethodGuardian {
			req.ActorType = ActorGuardian
		}
	case ActorSubject, ActorGuardian:
		if req.Action.ControllerFact() {
			return invalid("actor_type", CodeInvalid, "a %s record is the controller's act, not the subject's: actor_type operator or system", req.Action)
		}
	case ActorOperator, ActorSystem:
	default:
		return invalid("actor_type", CodeInvalid, "must be one of subject, guardian, operator, system")
	}
	if !req.AgeBand.Valid() {
		return invalid("age_band", CodeInvalid, "must be one of 0-12, 13, 14, 15, 16-17, 18+")
	}
	for i, c := range req.Categories {
		if c.Validate() != nil {
			return invalid(fmt.Sprintf("categories[%d]", i), CodeInvalid, "not a data category name")
		}
	}
	if err := checkSubjectFact(req); err != nil {
		return err
	}
	if !req.Action.perPurpose() {
		if req.Purpose != "" {
			return invalid("purpose", CodeInvalid, "a %s record applies to the subject, not to a purpose", req.Action)
		}
		if req.Action == ActionDeclareAge && req.AgeBand == AgeUnknown {
			return invalid("age_band", CodeRequired, "declare_age needs an age band")
		}
		if req.Action == ActionGPCOptOut {
			if req.Method == "" {
				req.Method = MethodGPC
			}
			req.Evidence.GPC = req.Method == MethodGPC
		}
		return nil
	}
	var info *privguard.PurposeInfo
	if req.Purpose != "" || req.Action != ActionWithdraw {
		if req.Purpose == "" {
			return invalid("purpose", CodeRequired, "a %s record needs a purpose", req.Action)
		}
		if req.Purpose.Validate() != nil {
			return invalid("purpose", CodeInvalid, "not a purpose name")
		}
		var ok bool
		if info, ok = l.taxonomy.Lookup(req.Purpose); !ok {
			return invalid("purpose", CodePurposeUnknown, "the purpose is not registered")
		}
	}
	if req.Recipient != nil && (info == nil || !info.Separate.NeedsRecipient()) && req.Action == ActionGrant {
		return invalid("recipient", CodeInvalid, "a recipient is recorded only for purposes that provide data to another handler")
	}
	if req.Action != ActionGrant {
		return nil
	}
	return checkGrant(req, info)
}

// MaxGround is the longest Record.Ground, in bytes.
const MaxGround = 500

// checkSubjectFact validates the fields only some subject-level records carry: a scoped
// restriction's expiry and ground, a closure's time and actor.
func checkSubjectFact(req *Request) error {
	if !req.ExpiresAt.IsZero() && (req.Action != ActionRestrict || len(req.Categories) == 0) {
		return invalid("expires_at", CodeInvalid, "only a restriction of categories has an expiry")
	}
	if req.Ground != "" && req.Action != ActionRestrict {
		return invalid("ground", CodeInvalid, "only a restriction names a ground")
	}
	if len(req.Ground) > MaxGround {
		return invalid("ground", CodeInvalid, "at most %d bytes", MaxGround)
	}
	closure := req.Action == ActionCloseAccount || req.Action == ActionEndService
	if !req.EffectiveAt.IsZero() && !closure {
		return invalid("effective_at", CodeInvalid, "only a closure of the account or end of the service has an effective time")
	}
	if closure && req.ActorType == ActorGuardian {
		return invalid("actor_type", CodeInvalid, "a %s record is the subject's, an operator's or the system's", req.Action)
	}
	return nil
}

// checkGrant validates the proof a grant needs (CON-02, CON-12, SEN-01, MKT-11).
func checkGrant(req *Request, info *privguard.PurposeInfo) error {
	if req.Regime == "" {
		return invalid("regime", CodeRequired, "a grant must say which law applies (pipl or gdpr)")
	}
	if req.LegalBasis == "" {
		req.LegalBasis = privguard.BasisConsent
	}
	switch {
	case req.LegalBasis == privguard.BasisLegitimateInterest && info.AllowsBasis(req.Regime, req.LegalBasis) &&
		!info.AllowsBasis(req.Regime, privguard.BasisConsent):
		// A purpose that rests on legitimate interests alone (the soft opt-in of ePrivacy
		// Art. 13(2) / PECR reg. 22(3), MKT-02) is granted as the record of its conditions:
		// the sale, the notice that offered the opt-out at collection.
	case req.LegalBasis != privguard.BasisConsent:
		return invalid("legal_basis", CodeBasisNotAllowed, "a grant records consent; other bases are declared in the policy, not granted")
	case !info.AllowsBasis(req.Regime, privguard.BasisConsent):
		return invalid("legal_basis", CodeBasisNotAllowed, "purpose %s does not rest on consent under %s", info.Purpose, req.Regime)
	}
	if req.Notice == nil || req.Notice.ID == "" {
		return invalid("notice.id", CodeRequired, "a grant must cite the notice the subject was shown")
	}
	if req.Notice.Version == 0 {
		return invalid("notice.version", CodeRequired, "a grant must cite the notice version")
	}
	if req.Channel == "" {
		return invalid("channel", CodeRequired, "a grant must say where consent was collected")
	}
	switch req.Method {
	case "":
		return invalid("method", CodeRequired, "a grant must say how consent was expressed")
	case MethodGPC:
		return invalid("method", CodeInvalid, "a Global Privacy Control signal is an opt-out, never a grant")
	case MethodGuardian:
		if g := req.Guardian; g == nil || g.Reference == "" || g.Relationship == "" || g.VerificationMethod == "" {
			return invalid("guardian", CodeGuardianRequired, "guardian consent needs the guardian's reference, relationship and verification method")
		}
	case MethodImported:
		if req.Evidence.ProofRef == "" {
			return invalid("evidence.proof_ref", CodeProvenanceRequired, "imported consent needs a reference to the original proof")
		}
	}
	if req.Guardian != nil && req.Method != MethodGuardian {
		return invalid("method", CodeInvalid, "a grant with guardian evidence must have method guardian")
	}
	if info.Separate != privguard.SeparateNone {
		if !req.Separate {
			return invalid("separate", CodeSeparateRequired, "purpose %s needs separate consent (%s)", info.Purpose, info.Separate)
		}
		if req.SeparateScope == "" {
			req.SeparateScope = info.Separate
		}
		if req.SeparateScope != info.Separate {
			return invalid("separate_scope", CodeSeparateRequired, "purpose %s needs separate consent of scope %s", info.Purpose, info.Separate)
		}
		if info.Separate.NeedsRecipient() {
			r := req.Recipient
			if r == nil || r.Name == "" || r.Contact == "" || r.Purpose == "" || r.Method == "" || len(r.Categories) == 0 {
				return invalid("recipient", CodeRecipientRequired, "separate consent to provide data needs the recipient's name, contact, purpose, method and categories")
			}
		}
	} else if req.Separate || req.SeparateScope != "" {
		if !req.SeparateScope.Valid() {
			return invalid("separate_scope", CodeInvalid, "unknown separate-consent scope")
		}
	}
	if len(req.Categories) == 0 {
		req.Categories = info.Categories
	}
	return nil
}

// build turns a checked request into a record, validating it against the subject's current
// state and the registered notices. Seq, PrevHash and Hash are left for the writer.
func (l *Ledger) build(req *Request, st subjectState, now time.Time) (Record, error) {
	r := Record{
		SchemaVersion: SchemaVersion,
		ID:            newID(),
		Subject:       req.Subject,
		Purpose:       req.Purpose,
		Action:        req.Action,
		LegalBasis:    req.LegalBasis,
		Regime:        req.Regime,
		Channel:       req.Channel,
		Method:        req.Method,
		Separate:      req.Separate,
		SeparateScope: req.SeparateScope,
		Recipient:     req.Recipient,
		Guardian:      req.Guardian,
		AgeBand:       req.AgeBand,
		Evidence:      req.Evidence,
		Categories:    req.Categories,
		Written:       req.Written,
		Time:          now,
		Ground:        req.Ground,
		Actor:         req.Actor,
		ActorType:     req.ActorType,
	}
	if req.Action != ActionGrant {
		if !req.ExpiresAt.IsZero() {
			if !req.ExpiresAt.After(now) {
				return Record{}, invalid("expires_at", CodeInvalid, "must be in the future")
			}
			r.ExpiresAt = req.ExpiresAt.UTC()
		}
		if !req.EffectiveAt.IsZero() {
			if req.EffectiveAt.After(now) {
				return Record{}, invalid("effective_at", CodeInvalid, "must not be in the future")
			}
			if req.EffectiveAt.Before(now) {
				r.EffectiveAt = req.EffectiveAt.UTC()
			}
		}
		if req.Notice != nil && req.Notice.ID != "" {
			ref := *req.Notice
			if ls := l.notices.version(ref.ID, ref.Version); ls != nil {
				if n := ls[ref.Language]; n != nil {
					ref.Hash = textHash(n.Text)
				}
			}
			r.Notice = &ref
		}
		return r, nil
	}
	ref := *req.Notice
	langs := l.notices.version(ref.ID, ref.Version)
	if langs == nil {
		return Record{}, invalid("notice.version", CodeNoticeUnknown, "no such notice version is registered")
	}
	if ref.Language == "" && len(langs) == 1 {
		for lang := range langs {
			ref.Language = lang
		}
	}
	n := langs[ref.Language]
	if n == nil {
		return Record{}, invalid("notice.language", CodeNoticeUnknown, "the notice version has no text in that language")
	}
	if !n.covers(req.Purpose) {
		return Record{}, invalid("notice.id", CodeNoticeNotCovering, "the notice does not inform about purpose %s", req.Purpose)
	}
	if l.notices.superseded(ref.ID, ref.Version, req.Purpose) {
		return Record{}, invalid("notice.version", CodeNoticeSuperseded, "a later version of the notice changed this purpose materially; cite the current version")
	}
	ref.Hash = textHash(n.Text)
	r.Notice = &ref

	age := req.AgeBand
	if f := st.facts(); age == AgeUnknown && f != nil {
		age = f.ageBand
	}
	r.AgeBand = age
	if age.Under(l.minorAge(req.Regime)) && req.Guardian == nil {
		// SEN-01: a minor's consent must come from a guardian.
		return Record{}, invalid("guardian", CodeGuardianRequired, "the subject is under %d: consent must be given by a guardian", l.minorAge(req.Regime))
	}
	info := l.purposes[l.purposeIdx[req.Purpose]]
	if info.Validity > 0 {
		r.ExpiresAt = now.Add(info.Validity)
	}
	return r, nil
}
