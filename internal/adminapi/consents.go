package adminapi

import (
	"net/http"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/internal/authz"
)

// noticeBody is POST /v1/notices.
type noticeBody struct {
	ID               string   `json:"id" validate:"required,max=64"`
	Version          uint32   `json:"version" validate:"required,min=1"`
	Language         string   `json:"language" validate:"required,bcp47_language_tag"`
	Text             string   `json:"text" validate:"required,max=1048576"`
	MaterialChange   bool     `json:"material_change"`
	AffectedPurposes []string `json:"affected_purposes" validate:"max=64,dive,max=100"`
	Purposes         []string `json:"purposes" validate:"max=64,dive,max=100"`
	Categories       []string `json:"categories" validate:"max=128,dive,max=100"`
	Controller       *struct {
		Name    string `json:"name" validate:"required,max=200"`
		Contact string `json:"contact" validate:"required,max=200"`
		Address string `json:"address" validate:"max=500"`
		DPO     string `json:"dpo" validate:"max=200"`
	} `json:"controller"`
	Retention        string   `json:"retention" validate:"max=1000"`
	RightsChannels   []string `json:"rights_channels" validate:"max=16,dive,max=500"`
	Recipients       []string `json:"recipients" validate:"max=64,dive,max=200"`
	StorageLocations []string `json:"storage_locations" validate:"max=16,dive,max=200"`
	PolicyURL        string   `json:"policy_url" validate:"omitempty,max=500,url"`
}

func (s *Server) postNotice(w http.ResponseWriter, r *http.Request) error {
	var b noticeBody
	if err := s.decode(w, r, MaxNoticeBody, &b); err != nil {
		return err
	}
	n := consent.Notice{
		ID: b.ID, Version: b.Version, Language: b.Language, Text: b.Text, MaterialChange: b.MaterialChange,
		AffectedPurposes: purposes(b.AffectedPurposes), Purposes: purposes(b.Purposes), Categories: categories(b.Categories),
		Retention: b.Retention, RightsChannels: b.RightsChannels, Recipients: b.Recipients,
		StorageLocations: b.StorageLocations, PolicyURL: b.PolicyURL,
	}
	if c := b.Controller; c != nil {
		n.Controller = consent.Controller{Name: c.Name, Contact: c.Contact, Address: c.Address, DPO: c.DPO}
	}
	stored, created, err := s.ledger.RegisterNotice(r.Context(), n)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, stored)
	return nil
}

func (s *Server) getNotices(w http.ResponseWriter, r *http.Request) error {
	list, err := s.ledger.Notices(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": r.PathValue("id"), "versions": list})
	return nil
}

// consentBody is POST /v1/consents. Only subject and action (and, for per-purpose actions,
// purpose) are required; the ledger enforces what a grant must prove.
type consentBody struct {
	Subject    string `json:"subject" validate:"required,max=128"`
	Purpose    string `json:"purpose" validate:"max=100"`
	Action     string `json:"action" validate:"required,oneof=grant withdraw refuse expire restrict lift_restriction object personalisation_off personalisation_on gpc_opt_out declare_age erase"`
	LegalBasis string `json:"legal_basis" validate:"omitempty,oneof=consent contract legal_obligation vital_interests public_task legitimate_interest hr_management publicly_disclosed"`
	Regime     string `json:"regime" validate:"omitempty,oneof=pipl gdpr"`
	Notice     *struct {
		ID       string `json:"id" validate:"required,max=64"`
		Version  uint32 `json:"version" validate:"required,min=1"`
		Language string `json:"language" validate:"omitempty,bcp47_language_tag"`
	} `json:"notice"`
	Channel       string `json:"channel" validate:"omitempty,oneof=web app sms store import api"`
	Method        string `json:"method" validate:"omitempty,oneof=explicit gpc guardian imported"`
	Separate      bool   `json:"separate"`
	SeparateScope string `json:"separate_scope" validate:"omitempty,oneof=provide_to_handler public_disclosure public_place_image sensitive cross_border"`
	Recipient     *struct {
		Name       string   `json:"name" validate:"required,max=200"`
		Contact    string   `json:"contact" validate:"required,max=200"`
		Purpose    string   `json:"purpose" validate:"required,max=500"`
		Method     string   `json:"method" validate:"required,max=200"`
		Categories []string `json:"categories" validate:"required,min=1,max=64,dive,max=100"`
	} `json:"recipient"`
	Guardian *struct {
		Reference          string    `json:"reference" validate:"required,max=128"`
		Relationship       string    `json:"relationship" validate:"required,max=64"`
		VerificationMethod string    `json:"verification_method" validate:"required,max=200"`
		VerifiedAt         time.Time `json:"verified_at"`
	} `json:"guardian"`
	AgeBand  string `json:"age_band" validate:"omitempty,oneof=0-12 13 14 15 16-17 18+"`
	Evidence *struct {
		UserAgent   string `json:"user_agent" validate:"max=512"`
		IP          string `json:"ip" validate:"omitempty,ip"`
		UIScreen    string `json:"ui_screen" validate:"max=200"`
		CMPVersion  string `json:"cmp_version" validate:"max=64"`
		CollectedBy string `json:"collected_by" validate:"omitempty,oneof=first_party third_party"`
		ContractRef string `json:"contract_ref" validate:"max=200"`
		ProofRef    string `json:"proof_ref" validate:"max=500"`
		TCString    string `json:"tc_string" validate:"max=8192"`
	} `json:"evidence"`
	Categories []string `json:"categories" validate:"max=128,dive,max=100"`
	Written    bool     `json:"written"`
	// ActorType is refused: who acted is derived from the authenticated principal and the
	// action (actorType), never taken from the body. It is declared only to say so.
	ActorType string `json:"actor_type"`
}

// actorType is who a record says acted, derived, never taken from the body: the
// controller's own facts (erase, expire, lift_restriction), which only a principal with
// authz.RecordFacts reaches, are an operator's; everything else is a choice the subject (or,
// with method guardian, the guardian) made and the calling app relays, which the ledger
// derives from the request ("").
func actorType(a consent.Action) consent.ActorType {
	if a.ControllerFact() {
		return consent.ActorOperator
	}
	return ""
}

// maxIdempotencyKey is the longest Idempotency-Key accepted.
const maxIdempotencyKey = 255

func (s *Server) postConsent(w http.ResponseWriter, r *http.Request) error {
	key, err := onceHeader(r, "Idempotency-Key")
	if err != nil {
		return err
	}
	if len(key) > maxIdempotencyKey || !printable(key) {
		p := privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Bad Idempotency-Key",
			"at most 255 printable ASCII characters")
		p.Field = "Idempotency-Key"
		return p
	}
	var b consentBody
	if err := s.decode(w, r, MaxConsentBody, &b); err != nil {
		return err
	}
	principal, _ := PrincipalFromContext(r.Context())
	req, err := consentRequest(principal, &b)
	if err != nil {
		return err
	}
	action := consent.Action(b.Action)
	switch {
	case action.ControllerFact() && !s.may(r, authz.RecordFacts):
		// Erasure, expiry and the end of a restriction are the controller's facts: an app
		// that could write them could undo what a DPO attested or forge the proof of an
		// erasure.
		return forbidden("the action " + b.Action + " records the controller's own fact, written by the request engine or an operator; " +
			s.roleHint(authz.RecordFacts, "use"))
	case !action.ControllerFact() && !s.mayCall(r, "POST /v1/consents"):
		return forbidden("recording a subject's choice is an app's work; " + s.roleHint("/v1/consents", http.MethodPost))
	}
	if key != "" {
		req.IdempotencyKey = principal.Name + "\x00" + key
	}
	rec, replayed, err := s.ledger.Append(r.Context(), req)
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if replayed {
		status = http.StatusOK
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.Header().Set("Location", "/v1/consents/"+rec.ID+"/receipt")
	writeRecord(w, status, rec)
	return nil
}

// consentRequest turns a decoded POST /v1/consents body into the ledger's request for
// principal: actor_type is refused, who acted is derived (actorType), and a scoped
// principal records only the purposes it serves (PUR-08). Whether the principal's roles
// allow the action is the caller's check.
func consentRequest(principal Principal, b *consentBody) (consent.Request, error) {
	if b.ActorType != "" {
		p := privguard.NewProblem(http.StatusUnprocessableEntity, TypeValidation, "The request breaks a rule",
			"actor_type is derived from your token and the action; leave it out")
		p.Field, p.Errors = "actor_type", []privguard.FieldError{{Field: "actor_type", Rule: "derived"}}
		return consent.Request{}, p
	}
	action := consent.Action(b.Action)
	if !principal.Serves(privguard.Purpose(b.Purpose)) {
		return consent.Request{}, purposeNotAllowed(principal, "purpose")
	}
	req := consent.Request{
		Subject: privguard.SubjectID(b.Subject), Purpose: privguard.Purpose(b.Purpose), Action: consent.Action(b.Action),
		LegalBasis: privguard.LegalBasis(b.LegalBasis), Regime: privguard.Regime(b.Regime),
		Channel: consent.Channel(b.Channel), Method: consent.Method(b.Method),
		Separate: b.Separate, SeparateScope: privguard.SeparateScope(b.SeparateScope),
		AgeBand: consent.AgeBand(b.AgeBand), Categories: categories(b.Categories), Written: b.Written,
		Actor: "token:" + principal.Name, ActorType: actorType(action),
	}
	if n := b.Notice; n != nil {
		req.Notice = &consent.NoticeRef{ID: n.ID, Version: n.Version, Language: n.Language}
	}
	if p := b.Recipient; p != nil {
		req.Recipient = &consent.Recipient{Name: p.Name, Contact: p.Contact, Purpose: p.Purpose, Method: p.Method,
			Categories: categories(p.Categories)}
	}
	if g := b.Guardian; g != nil {
		req.Guardian = &consent.Guardian{Reference: g.Reference, Relationship: g.Relationship,
			VerificationMethod: g.VerificationMethod, VerifiedAt: g.VerifiedAt.UTC()}
	}
	if e := b.Evidence; e != nil {
		req.Evidence = consent.Evidence{UserAgent: e.UserAgent, UIScreen: e.UIScreen, CMPVersion: e.CMPVersion,
			CollectedBy: e.CollectedBy, ContractRef: e.ContractRef, ProofRef: e.ProofRef, TCString: e.TCString}
		req.IP = e.IP
	}
	return req, nil
}

func (s *Server) subject(r *http.Request) (privguard.SubjectID, error) {
	subject := privguard.SubjectID(r.PathValue("subject"))
	if err := subject.Validate(); err != nil {
		p := privguard.NewProblem(http.StatusBadRequest, TypeInvalidSubject, "Malformed subject id",
			privguard.SubjectIDRule)
		p.Field = "subject"
		return "", p
	}
	return subject, nil
}

// getSubjectConsents answers the subject's current state: every purpose recorded, or
// ?purpose= alone (and its sub-purposes). A scoped principal sees the purposes it serves
// only, and asking for another is refused (token.purpose_not_allowed); the subject-level
// facts (objection, restriction, GPC) bind every purpose, so every principal sees them.
func (s *Server) getSubjectConsents(w http.ResponseWriter, r *http.Request) error {
	subject, err := s.subject(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	if err := knownQuery(q, "purpose"); err != nil {
		return err
	}
	principal, _ := PrincipalFromContext(r.Context())
	want := privguard.Purpose(q.Get("purpose"))
	if q.Has("purpose") && (want.Validate() != nil) {
		p := privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Invalid query", "purpose: want a purpose such as marketing.communications.sms")
		p.Field = "purpose"
		return p
	}
	if want != "" && !principal.Serves(want) {
		return purposeNotAllowed(principal, "purpose")
	}
	v, err := s.ledger.Subject(r.Context(), subject)
	if err != nil {
		return err
	}
	v.Purposes = servedPurposes(principal, v.Purposes, func(ps consent.PurposeState) privguard.Purpose { return ps.Purpose })
	if want != "" {
		v.Purposes = servedPurposes(Principal{Purposes: []privguard.Purpose{want}}, v.Purposes,
			func(ps consent.PurposeState) privguard.Purpose { return ps.Purpose })
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// getSubjectHistory answers every record of the subject; a scoped principal gets those
// of the purposes it serves only.
func (s *Server) getSubjectHistory(w http.ResponseWriter, r *http.Request) error {
	subject, err := s.subject(r)
	if err != nil {
		return err
	}
	h, err := s.ledger.History(r.Context(), subject)
	if err != nil {
		return err
	}
	principal, _ := PrincipalFromContext(r.Context())
	h = servedPurposes(principal, h, func(rec consent.Record) privguard.Purpose { return rec.Purpose })
	writeJSON(w, http.StatusOK, map[string]any{"subject": subject, "records": h})
	return nil
}

func (s *Server) getReceipt(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if len(id) > 64 {
		return privguard.NewProblem(http.StatusNotFound, TypeNotFound, "Not found", "")
	}
	if principal, _ := PrincipalFromContext(r.Context()); principal.Scoped() {
		rec, err := s.ledger.Record(r.Context(), id)
		if err != nil {
			return err
		}
		if !principal.Serves(rec.Purpose) {
			return purposeNotAllowed(principal, "")
		}
	}
	rc, err := s.ledger.Receipt(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rc)
	return nil
}

func (s *Server) getReceiptKeys(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, s.ledger.ReceiptKey())
	return nil
}

func purposes(in []string) []privguard.Purpose {
	if len(in) == 0 {
		return nil
	}
	out := make([]privguard.Purpose, len(in))
	for i, p := range in {
		out[i] = privguard.Purpose(p)
	}
	return out
}

func categories(in []string) []privguard.DataCategory {
	if len(in) == 0 {
		return nil
	}
	out := make([]privguard.DataCategory, len(in))
	for i, c := range in {
		out[i] = privguard.DataCategory(c)
	}
	return out
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
