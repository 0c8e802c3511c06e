package adminapi

import (
	"cmp"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/identity"
	"github.com/privguard/privguard/internal/authz"
)

// dueSoonWindow marks requests due within it in listings.
const dueSoonWindow = 72 * time.Hour

type requestBody struct {
	Type    string `json:"type" validate:"required,oneof=access portability categories correction deletion restriction objection explanation correct delete restrict object explain"`
	Subject string `json:"subject" validate:"required_without=Identifier,excluded_with=Identifier,max=128"`
	// Identifier names the subject by a verified identity link instead of its id.
	Identifier *identifierRef    `json:"identifier" validate:"omitempty"`
	Regime     string            `json:"regime" validate:"omitempty,oneof=pipl gdpr"` // default: the engine's
	Patch      map[string]string `json:"patch" validate:"max=64,dive,keys,max=100,endkeys,max=4096"`
	// TransferTo names a configured recipient a portability package goes to directly.
	TransferTo string        `json:"transfer_to" validate:"max=64"`
	Identity   *identityBody `json:"identity" validate:"excluded_with=IdentityToken"`
	// IdentityToken is a JWS the company's app signed for its logged-in user (see
	// dsar.TokenVerifier); a valid one for this subject verifies the request at once.
	IdentityToken string `json:"identity_token" validate:"max=4096"`
	// Trigger starts a proactive erasure (dsar.Triggers); no identity is needed.
	Trigger string `json:"trigger" validate:"omitempty,oneof=purpose_achieved service_ended retention_expired consent_withdrawn unlawful_processing,excluded_with=Identity IdentityToken"`
	// HumanReview, on an explanation, asks for a person to review the automated decision
	// (DSR-14); Statement is the subject's point of view.
	HumanReview bool   `json:"human_review"`
	Statement   string `json:"statement" validate:"max=2000"`
	// Requester is who asks when not the subject: a close relative of a deceased subject
	// (DSR-15), verified only by an operator who checked the proof.
	Requester *requesterBody `json:"requester"`
	// Lang is the language of the answer's summary (default by regime: pipl zh-CN, gdpr
	// en); Zone the IANA zone of its times (default: Asia/Shanghai under pipl, UTC under gdpr).
	Lang string `json:"lang" validate:"omitempty,oneof=zh-CN en"`
	Zone string `json:"zone" validate:"max=64"`
}

// requesterBody is a close relative asking for a deceased subject (PIPL Art. 49).
type requesterBody struct {
	Role     string `json:"role" validate:"required,oneof=close_relative"`
	Name     string `json:"name" validate:"required,max=200"`
	Relation string `json:"relation" validate:"required,oneof=spouse parent child sibling grandparent grandchild other"`
	Proof    string `json:"proof" validate:"required,max=2000"`
}

// identifierRef names a subject by one of its identifiers (identity.Type, the value).
type identifierRef struct {
	Type  string `json:"type" validate:"required,max=32"`
	Value string `json:"value" validate:"required,max=320"`
}

type extendBody struct {
	Months     int       `json:"months" validate:"required,min=1,max=2"`
	Reason     string    `json:"reason" validate:"required,max=2000"`
	NotifiedAt time.Time `json:"notified_at"`
}

type reasonBody struct {
	Reason string `json:"reason" validate:"required,max=2000"`
}

type rejectBody struct {
	Reason string `json:"reason" validate:"required,oneof=manifestly_unfounded excessive identity_not_established legal_exemption retention_obligation not_the_subject data_accurate"`
}

type approveBody struct {
	Note string `json:"note" validate:"required,max=2000"`
}

// reviewBody is a person's review of an automated decision (POST /v1/requests/{id}/review).
type reviewBody struct {
	Outcome string `json:"outcome" validate:"required,oneof=upheld changed"`
	Note    string `json:"note" validate:"required,max=2000"`
}

// humanReviewBody asks for a human review later (POST /v1/requests/{id}/human-review).
type humanReviewBody struct {
	Statement string `json:"statement" validate:"max=2000"`
}

type codeBody struct {
	Code string `json:"code" validate:"required,len=6,numeric"`
}

// identityBody is an operator's attestation. Its method can only be "operator": a
// verification by token or code is recorded by privguard when it checks one, never on
// someone's word.
type identityBody struct {
	Method string `json:"method" validate:"required,oneof=operator"`
	Note   string `json:"note" validate:"max=1000"`
}

// requestView is a request as the API shows it, with its deadline status.
type requestView struct {
	dsar.Request
	// Status and DueDate repeat State and Deadline.Due under the names the API promises.
	Status  dsar.State `json:"status"`
	DueDate time.Time  `json:"due_date"`
	Overdue bool       `json:"overdue"`
	DueSoon bool       `json:"due_soon"`
}

// view is r as the caller of req may see it. A correction's new values are personal data:
// only a principal who may approve corrections sees them in full, others see them masked
// (138****5678, SEC-08).
func (s *Server) view(req *http.Request, r dsar.Request) requestView {
	now := time.Now()
	open := !r.State.Final()
	r.Challenge = nil // a hashed six-digit code is guessable offline: never shown
	if len(r.Patch) > 0 && !s.mayCall(req, "POST /v1/requests/{id}/approve") {
		masked := make(map[privguard.DataCategory]string, len(r.Patch))
		for c, v := range r.Patch {
			masked[c] = privguard.Mask(v)
		}
		r.Patch = masked
	}
	if r.Requester != nil && r.Requester.Proof != "" && !s.mayCall(req, "POST /v1/requests/{id}/verify") {
		q := *r.Requester // the proof is for the operator who verifies the request
		q.Proof = privguard.Mask(q.Proof)
		r.Requester = &q
	}
	if r.Result != nil {
		res := *r.Result
		res.Token = nil // the download token's hash is the credential's verifier: not shown
		r.Result = &res
	}
	return requestView{Request: r, Status: r.State, DueDate: r.Deadline.Due, Overdue: open && dsar.Overdue(r.Deadline.Due, now),
		DueSoon: open && dsar.DueSoon(r.Deadline.Due, now, dueSoonWindow)}
}

func (s *Server) postRequest(w http.ResponseWriter, r *http.Request) error {
	var b requestBody
	if err := s.decode(w, r, MaxConsentBody, &b); err != nil {
		return err
	}
	subject, err := s.requestSubject(r, b)
	if err != nil {
		return err
	}
	req := dsar.Request{Type: dsar.ParseType(b.Type), Subject: subject, Regime: privguard.Regime(b.Regime), TransferTo: b.TransferTo,
		Lang: b.Lang, Zone: b.Zone}
	if b.Zone != "" && dsar.CheckZone(b.Zone) != nil {
		p := privguard.NewProblem(http.StatusUnprocessableEntity, TypeValidation, "The request breaks a rule",
			"zone: want an IANA time zone name such as Asia/Shanghai or Europe/Berlin")
		p.Field = "zone"
		return p
	}
	switch {
	case req.Type == dsar.TypeCorrection && len(b.Patch) == 0:
		p := privguard.NewProblem(http.StatusUnprocessableEntity, TypeValidation, "The request breaks a rule",
			`patch: a correction needs the new values, by data category ({"user.contact.email": "new@example.com"})`)
		p.Field = "patch"
		return p
	case req.Type != dsar.TypeCorrection && len(b.Patch) > 0:
		p := privguard.NewProblem(http.StatusUnprocessableEntity, TypeValidation, "The request breaks a rule",
			"patch: only a correction carries new values")
		p.Field = "patch"
		return p
	}
	switch {
	case (b.HumanReview || b.Statement != "") && req.Type != dsar.TypeExplanation:
		p := privguard.NewProblem(http.StatusUnprocessableEntity, TypeValidation, "The request breaks a rule",
			"human_review: a human review is of an automated decision: ask for it on an explanation request (PIPL Art. 24(3), GDPR Art. 22(3))")
		p.Field = "human_review"
		return p
	case b.Statement != "" && !b.HumanReview:
		p := privguard.NewProblem(http.StatusUnprocessableEntity, TypeValidation, "The request breaks a rule",
			"statement: the subject's point of view goes with a human review (human_review: true)")
		p.Field = "statement"
		return p
	case b.HumanReview:
		req.HumanReview = &dsar.Review{Statement: b.Statement}
	}
	if q := b.Requester; q != nil {
		if err := closeRelative(req, b); err != nil {
			return err
		}
		req.Requester = &dsar.Requester{Role: q.Role, Name: q.Name, Relation: q.Relation, Proof: q.Proof}
	}
	if len(b.Patch) > 0 {
		req.Patch = map[privguard.DataCategory]string{}
		for k, v := range b.Patch {
			req.Patch[privguard.DataCategory(k)] = v
		}
	}
	if b.IdentityToken != "" {
		if s.idTokens == nil {
			return privguard.NewProblem(http.StatusUnprocessableEntity, TypeValidation, "Identity tokens are not configured",
				"set dsar.identity_token_secret_file, or verify with a code")
		}
		vouched, err := s.idTokens.Subject(b.IdentityToken)
		if err != nil || vouched != subject {
			// One answer for a forged token and a token for someone else: no oracle.
			return privguard.NewProblem(http.StatusForbidden, TypeIdentityNotVerified, "Identity token does not verify for this subject", "")
		}
		req.Identity = &dsar.Identity{Method: "token"}
	}
	if (b.Trigger != "" || b.Identity != nil) && !s.may(r, authz.Attest) {
		// Saying the identity was checked, or that the controller erases on its own, is an
		// operator's word (dpo), not an app's: apps verify with a code or a signed token.
		return forbidden("identity or trigger: attesting an identity or starting the controller's own erasure is an operator's word; " +
			s.roleHint(authz.Attest, "use") + " (an app verifies with a code or identity_token)")
	}
	if b.Trigger != "" || b.Identity != nil {
		attest(r, &req, b.Trigger, b.Identity)
	}
	out, err := s.requests.Submit(r.Context(), req)
	if errors.Is(err, privguard.ErrInvalid) && (len(req.Patch) > 0 || req.TransferTo != "") {
		// The engine names the patch category or recipient it refuses (never a value).
		p := privguard.NewProblem(http.StatusUnprocessableEntity, TypeValidation, "The request breaks a rule",
			strings.TrimPrefix(strings.TrimSuffix(err.Error(), ": "+privguard.ErrInvalid.Error()), "dsar: "))
		p.Field = "patch"
		if req.TransferTo != "" && strings.Contains(err.Error(), "transfer_to") {
			p.Field = "transfer_to"
		}
		return p
	}
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/requests/"+out.ID)
	writeJSON(w, http.StatusCreated, s.view(r, out))
	return nil
}

// closeRelative checks a close relative's request (DSR-15, PIPL Art. 49): only access, a
// copy, correction or deletion, to the relative, and never verified at submission (by the
// subject's token, or an operator's word before the proof is checked).
func closeRelative(req dsar.Request, b requestBody) error {
	rule := func(field, detail string) error {
		p := privguard.NewProblem(http.StatusUnprocessableEntity, TypeValidation, "The request breaks a rule", detail)
		p.Field = field
		return p
	}
	switch {
	case !slices.Contains(dsar.CloseRelativeTypes, req.Type):
		return rule("type", fmt.Sprintf("PIPL Art. 49: a close relative may ask for access, a copy (portability), correction or deletion of a deceased person's data, not %s", req.Type))
	case b.TransferTo != "":
		return rule("transfer_to", "PIPL Art. 49: a close relative's copy goes to the relative, not to another handler")
	case b.IdentityToken != "" || b.Identity != nil || b.Trigger != "":
		return rule("requester", "a close relative's request is verified by an operator after checking the proof (POST /v1/requests/{id}/verify), never by the subject's token or code")
	}
	return nil
}

// requestSubject is the subject a request names: its id, or the subject of a verified
// identifier. An identifier not linked and one linked but not verified get the same 422,
// so that the answer tells nothing about whom a phone or email belongs to.
func (s *Server) requestSubject(r *http.Request, b requestBody) (privguard.SubjectID, error) {
	if b.Identifier == nil {
		return validSubject(b.Subject)
	}
	if s.identities == nil {
		p := privguard.NewProblem(http.StatusUnprocessableEntity, TypeValidation, "Identifiers are not configured", "name the subject by its id")
		p.Field = "identifier"
		return "", p
	}
	subject, err := s.identities.Resolve(r.Context(), identity.Type(b.Identifier.Type), b.Identifier.Value)
	switch {
	case errors.Is(err, identity.ErrNotVerified):
		p := privguard.NewProblem(http.StatusUnprocessableEntity, TypeValidation, "The request breaks a rule",
			"identifier: no subject has this identifier verified")
		p.Field = "identifier"
		return "", p
	case err != nil:
		return "", identifierProblem(err, "identifier.")
	}
	return subject, nil
}

// attest puts the caller's word on req (the caller may attest: authz.Attest): a
// controller's trigger, or the operator's check of the subject's identity.
func attest(r *http.Request, req *dsar.Request, trigger string, identity *identityBody) {
	p, _ := PrincipalFromContext(r.Context())
	if trigger != "" {
		req.Trigger, req.Identity = trigger, &dsar.Identity{Operator: p.Name}
		return
	}
	req.Identity = &dsar.Identity{Method: "operator", Note: identity.Note, Operator: p.Name}
}

// MaxBulkSubjects bounds the subjects of one POST /v1/requests/bulk.
const MaxBulkSubjects = 10_000

// bulkBody is POST /v1/requests/bulk: a request of Type for each of Subjects, stored in one
// durable write, attested by the operator (identity) or started by the controller (trigger).
type bulkBody struct {
	Type     string        `json:"type" validate:"required,oneof=deletion restriction objection delete restrict object"`
	Subjects []string      `json:"subjects" validate:"required,min=1,max=10000"`
	Regime   string        `json:"regime" validate:"omitempty,oneof=pipl gdpr"`
	Identity *identityBody `json:"identity" validate:"required_without=Trigger,excluded_with=Trigger"`
	Trigger  string        `json:"trigger" validate:"omitempty,oneof=purpose_achieved service_ended retention_expired consent_withdrawn unlawful_processing"`
}

// postRequestsBulk submits a bulk erasure (or restriction, objection) at once: the
// operator's word for every subject, one durable write instead of one per request.
func (s *Server) postRequestsBulk(w http.ResponseWriter, r *http.Request) error {
	var b bulkBody
	if err := s.decode(w, r, int64(MaxBulkSubjects)*200+4096, &b); err != nil {
		return err
	}
	if !s.may(r, authz.Attest) {
		return forbidden("a bulk request is an operator's word for every subject; " + s.roleHint(authz.Attest, "use"))
	}
	reqs := make([]dsar.Request, len(b.Subjects))
	for i, raw := range b.Subjects {
		subject, err := validSubject(raw)
		if err != nil {
			p := err.(*privguard.Problem)
			p.Field = fmt.Sprintf("subjects[%d]", i)
			return p
		}
		reqs[i] = dsar.Request{Type: dsar.ParseType(b.Type), Subject: subject, Regime: privguard.Regime(b.Regime)}
		attest(r, &reqs[i], b.Trigger, b.Identity)
	}
	// The subjects are personal data: more of them than dual_control.export_rows need a
	// second approver (SEC-07). The approval is bound to this body, as decoded.
	params, err := json.Marshal(b)
	if err != nil {
		return err
	}
	if err := s.dualControl(r, "POST /v1/requests/bulk", params, len(reqs)); err != nil {
		return err
	}
	out, err := s.requests.SubmitAll(r.Context(), reqs)
	if err != nil {
		return err
	}
	type brief struct {
		ID    string     `json:"id"`
		State dsar.State `json:"state"`
	}
	resp := struct {
		Requests []brief `json:"requests"`
	}{Requests: make([]brief, len(out))}
	for i, o := range out {
		resp.Requests[i] = brief{o.ID, o.State}
	}
	writeJSON(w, http.StatusCreated, resp)
	return nil
}

func (s *Server) getRequest(w http.ResponseWriter, r *http.Request) error {
	out, err := s.requests.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.view(r, out))
	return nil
}

// listRequests returns a page of requests, oldest first: ?status= (or state=), overdue=,
// limit= (1..1000, default 100) and after= (the next cursor of the previous page).
func (s *Server) listRequests(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := onceQuery(q, []string{"status", "state"}); err != nil {
		return err
	}
	f := dsar.Filter{State: dsar.State(cmp.Or(q.Get("status"), q.Get("state"))), After: q.Get("after"), Limit: 100}
	switch o := q.Get("overdue"); o {
	case "":
	case "true", "false":
		b := o == "true"
		f.Overdue = &b
	default:
		return privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Invalid query", "overdue: want true or false")
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			return privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Invalid query", "limit: want 1 to 1000")
		}
		f.Limit = n
	}
	if len(f.After) > 64 {
		return privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Invalid query", "after is too long")
	}
	if f.State != "" && !slices.Contains(dsar.States(), f.State) {
		var names []string
		for _, st := range dsar.States() {
			names = append(names, string(st))
		}
		p := privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Invalid query", "status: want one of "+strings.Join(names, ", "))
		p.Field = "status"
		return p
	}
	page, next, err := s.requests.Page(r.Context(), f, time.Now())
	if err != nil {
		return err
	}
	// Each request names its subject: a page of more than dual_control.export_rows needs a
	// second approver (SEC-07), bound to this query.
	if err := s.dualControl(r, "GET /v1/requests", []byte(q.Encode()), len(page)); err != nil {
		return err
	}
	views := make([]requestView, 0, len(page))
	for _, x := range page {
		if x.Type == dsar.TypeRetention {
			continue // a retention run: /v1/retention/runs/{id}
		}
		views = append(views, s.view(r, x))
	}
	out := map[string]any{"requests": views}
	if next != "" {
		out["next"] = next
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) verifyRequest(w http.ResponseWriter, r *http.Request) error {
	var b identityBody
	if err := s.decode(w, r, MaxConsentBody, &b); err != nil {
		return err
	}
	p, _ := PrincipalFromContext(r.Context())
	out, err := s.requests.Verify(r.Context(), r.PathValue("id"), dsar.Identity{Method: "operator", Note: b.Note, Operator: p.Name})
	if errors.Is(err, privguard.ErrConflict) {
		return privguard.NewProblem(http.StatusConflict, TypeConflict, "Not awaiting verification", "")
	}
	if errors.Is(err, privguard.ErrInvalid) {
		p := privguard.NewProblem(http.StatusUnprocessableEntity, TypeValidation, "The request breaks a rule",
			"note: a close relative's request is verified after checking the proof of death and of the relationship: say which proof was checked")
		p.Field = "note"
		return p
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.view(r, out))
	return nil
}

// requestRegister is the DPO's register of every request: JSON (default) or, with
// ?format=csv, CSV. Both carry the same fields (dsar.RegisterEntry) and no subject ids.
func (s *Server) requestRegister(w http.ResponseWriter, r *http.Request) error {
	all, err := s.requests.List(r.Context())
	if err != nil {
		return err
	}
	q := r.URL.Query()
	if err := onceQuery(q); err != nil {
		return err
	}
	switch q.Get("format") {
	case "", "json":
	case "csv":
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="privguard-request-register.csv"`)
		w.WriteHeader(http.StatusOK)
		return dsar.WriteRegisterCSV(w, all, time.Now())
	default:
		return privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Invalid query", "format: want json or csv")
	}
	// The same entries as the CSV: no subject ids, no free text (GET /v1/requests/{id}
	// shows a request in full to whoever may read it).
	now := time.Now()
	writeJSON(w, http.StatusOK, map[string]any{"generated_at": now.UTC(), "summary": dsar.Register(all, now),
		"requests": dsar.RegisterEntries(all, now)})
	return nil
}

// sendCode sends a fresh one-time code to the subject of a request awaiting verification.
// Codes are bounded per request (the engine: dsar.CodeSendsPerRequest, one per
// dsar.CodeResendInterval) and per subject (codeLimiter); past a bound the answer is 429
// with Retry-After when waiting helps.
func (s *Server) sendCode(w http.ResponseWriter, r *http.Request) error {
	if s.notifier == nil {
		return privguard.NewProblem(http.StatusServiceUnavailable, TypeUnavailable, "No code notifier is configured", "")
	}
	id := r.PathValue("id")
	req, err := s.requests.Get(r.Context(), id)
	if err != nil {
		return err
	}
	now := s.now()
	if wait, ok := s.codes.reserve(req.Subject, now); !ok {
		return tooManyCodes(w, wait, fmt.Sprintf("this subject was sent %d codes in the last %s", s.codes.max, CodeSubjectWindow))
	}
	err = s.requests.SendCode(r.Context(), id, s.notifier)
	if err != nil {
		s.codes.release(req.Subject, now)
	}
	var limit *dsar.CodeLimitError
	switch {
	case errors.Is(err, dsar.ErrOperatorOnly):
		return operatorOnly()
	case errors.Is(err, identity.ErrNoAddress):
		return privguard.NewProblem(http.StatusConflict, TypeNoAddress, "Cannot send a code",
			"no verified phone or email is linked to the subject (POST /v1/subjects/{subject}/identifiers); an operator can verify the requester (POST /v1/requests/{id}/verify)")
	case errors.Is(err, privguard.ErrConflict):
		return privguard.NewProblem(http.StatusConflict, TypeConflict, "Not awaiting verification", "")
	case errors.As(err, &limit) && limit.RetryAfter > 0:
		return tooManyCodes(w, limit.RetryAfter, fmt.Sprintf("a code was sent less than %s ago", dsar.CodeResendInterval))
	case errors.As(err, &limit):
		return tooManyCodes(w, 0, fmt.Sprintf("this request was sent its %d codes; an operator can verify the requester (POST /v1/requests/{id}/verify)",
			dsar.CodeSendsPerRequest))
	case errors.Is(err, dsar.ErrCodeBudget):
		return codeBudgetSpent()
	case err != nil:
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"sent": true, "expires_in_seconds": int(dsar.CodeTTL.Seconds())})
	return nil
}

// tooManyCodes is the 429 of a code not sent; Retry-After is set when waiting helps.
func tooManyCodes(w http.ResponseWriter, wait time.Duration, why string) *privguard.Problem {
	detail := why
	if wait > 0 {
		secs := int((wait + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		detail += fmt.Sprintf("; retry in %d s", secs)
	}
	return privguard.NewProblem(http.StatusTooManyRequests, TypeTooManyCodes, "No code sent", detail)
}

// operatorOnly refuses a code for a close relative's request: the deceased subject's code
// proves nothing of the relative (DSR-15).
func operatorOnly() *privguard.Problem {
	return privguard.NewProblem(http.StatusConflict, TypeConflict, "Verified by an operator only",
		"a close relative's request is verified by an operator after checking the proof of death and of the relationship (POST /v1/requests/{id}/verify)")
}

func codeBudgetSpent() *privguard.Problem {
	return privguard.NewProblem(http.StatusTooManyRequests, TypeTooManyAttempts, "Too many wrong codes",
		fmt.Sprintf("this request had %d wrong codes and can no longer be verified by code; an operator can verify the requester",
			dsar.CodeGuessBudget))
}

// verifyCode checks the one-time code the subject received.
func (s *Server) verifyCode(w http.ResponseWriter, r *http.Request) error {
	var b codeBody
	if err := s.decode(w, r, MaxConsentBody, &b); err != nil {
		return err
	}
	out, err := s.requests.VerifyCode(r.Context(), r.PathValue("id"), b.Code)
	switch {
	case errors.Is(err, dsar.ErrOperatorOnly):
		return operatorOnly()
	case errors.Is(err, privguard.ErrConflict):
		return privguard.NewProblem(http.StatusConflict, TypeConflict, "Not awaiting verification", "")
	case errors.Is(err, dsar.ErrCodeBudget):
		return codeBudgetSpent()
	case errors.Is(err, dsar.ErrNoAttempts):
		return privguard.NewProblem(http.StatusTooManyRequests, TypeTooManyAttempts, "Too many wrong codes", "ask for a new code")
	case errors.Is(err, dsar.ErrBadCode), errors.Is(err, dsar.ErrNotNotified):
		return privguard.NewProblem(http.StatusForbidden, TypeIdentityNotVerified, "Wrong or expired code", "")
	case err != nil:
		return err
	}
	writeJSON(w, http.StatusOK, s.view(r, out))
	return nil
}

// extendRequest records a GDPR Art. 12(3) extension.
func (s *Server) extendRequest(w http.ResponseWriter, r *http.Request) error {
	var b extendBody
	if err := s.decode(w, r, MaxConsentBody, &b); err != nil {
		return err
	}
	out, err := s.requests.Extend(r.Context(), r.PathValue("id"), b.Months, b.Reason, b.NotifiedAt)
	return s.requestChanged(w, r, out, err)
}

// cancelRequest closes an open request with a reason.
func (s *Server) cancelRequest(w http.ResponseWriter, r *http.Request) error {
	var b reasonBody
	if err := s.decode(w, r, MaxConsentBody, &b); err != nil {
		return err
	}
	out, err := s.requests.Cancel(r.Context(), r.PathValue("id"), b.Reason)
	return s.requestChanged(w, r, out, err)
}

// rejectRequest refuses an open request with a reason code; the answer carries the recourse.
func (s *Server) rejectRequest(w http.ResponseWriter, r *http.Request) error {
	var b rejectBody
	if err := s.decode(w, r, MaxConsentBody, &b); err != nil {
		return err
	}
	out, err := s.requests.Reject(r.Context(), r.PathValue("id"), b.Reason)
	return s.requestChanged(w, r, out, err)
}

func (s *Server) requestChanged(w http.ResponseWriter, r *http.Request, out dsar.Request, err error) error {
	switch {
	case errors.Is(err, privguard.ErrConflict):
		return privguard.NewProblem(http.StatusConflict, TypeConflict, "The request is closed", "")
	case errors.Is(err, dsar.ErrExtensionRefused):
		// The error names the rule broken (Art. 12(3)), never personal data.
		return privguard.NewProblem(http.StatusUnprocessableEntity, TypeExtensionRefused, "Extension refused", err.Error())
	case err != nil:
		return err
	}
	writeJSON(w, http.StatusOK, s.view(r, out))
	return nil
}

// approveRequest approves a verified correction's patch; the approving principal and the
// note (how the new data was checked) go into the request's audit trail.
func (s *Server) approveRequest(w http.ResponseWriter, r *http.Request) error {
	var b approveBody
	if err := s.decode(w, r, MaxConsentBody, &b); err != nil {
		return err
	}
	p, _ := PrincipalFromContext(r.Context())
	out, err := s.requests.Approve(r.Context(), r.PathValue("id"), p.Name, b.Note)
	if errors.Is(err, privguard.ErrConflict) {
		return privguard.NewProblem(http.StatusConflict, TypeConflict, "Not awaiting approval", "")
	}
	return s.requestChanged(w, r, out, err)
}

// reviewRequest records a person's review of the automated decision an explanation
// request awaits a review of (DSR-14): upheld or changed, with what was found.
func (s *Server) reviewRequest(w http.ResponseWriter, r *http.Request) error {
	var b reviewBody
	if err := s.decode(w, r, MaxConsentBody, &b); err != nil {
		return err
	}
	p, _ := PrincipalFromContext(r.Context())
	out, err := s.requests.Review(r.Context(), r.PathValue("id"), p.Name, b.Outcome, b.Note)
	if errors.Is(err, privguard.ErrConflict) {
		return privguard.NewProblem(http.StatusConflict, TypeConflict, "Not awaiting a review",
			"only an explanation request whose subject asked for a human review awaits one")
	}
	return s.requestChanged(w, r, out, err)
}

// askHumanReview asks, after the explanation, for a person to review the automated
// decision (DSR-14); a completed explanation request is reopened for it.
func (s *Server) askHumanReview(w http.ResponseWriter, r *http.Request) error {
	var b humanReviewBody
	if err := s.decode(w, r, MaxConsentBody, &b); err != nil {
		return err
	}
	out, err := s.requests.RequestReview(r.Context(), r.PathValue("id"), b.Statement)
	switch {
	case errors.Is(err, privguard.ErrInvalid):
		return privguard.NewProblem(http.StatusUnprocessableEntity, TypeValidation, "The request breaks a rule",
			"a human review is of an automated decision: ask for it on an explanation request")
	case errors.Is(err, privguard.ErrConflict):
		return privguard.NewProblem(http.StatusConflict, TypeConflict, "No review can be asked for",
			"the request was rejected or cancelled, or its decision was reviewed already")
	}
	return s.requestChanged(w, r, out, err)
}

// retryRequest makes a request's failed tasks due now.
func (s *Server) retryRequest(w http.ResponseWriter, r *http.Request) error {
	out, _, err := s.requests.Retry(r.Context(), r.PathValue("id"))
	return s.requestChanged(w, r, out, err)
}

// issueLink mints a new download token for a finished access request's package; the old
// one stops working. The token is shown once.
func (s *Server) issueLink(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	token, expires, err := s.requests.IssueLink(r.Context(), id)
	if err := resultError(err); err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, map[string]any{"token": token, "expires_at": expires,
		"path": "/v1/requests/" + url.PathEscape(id) + "/result"})
	return nil
}

// downloadResult returns the package once, for the download token in the
// X-Privguard-Download-Token header. The token is never taken from the URL: a link checker
// or a mail scanner that follows a URL must not use up the one download, so the link the
// subject gets leads to your portal, which calls this with the header. HEAD is refused
// for the same reason.
func (s *Server) downloadResult(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		return privguard.NewProblem(http.StatusMethodNotAllowed, TypeMethodNotAllowed, "Method not allowed", "GET with the download token")
	}
	token := r.Header.Get("X-Privguard-Download-Token")
	if token == "" || len(token) > 256 || len(r.Header.Values("X-Privguard-Download-Token")) > 1 {
		return privguard.NewProblem(http.StatusForbidden, TypeIdentityNotVerified, "Download token required",
			"send it in X-Privguard-Download-Token")
	}
	id := r.PathValue("id")
	started := false
	_, err := s.requests.Download(r.Context(), id, token, func(zip []byte, res dsar.Result) error {
		started = true
		sum, _ := hex.DecodeString(res.SHA256)
		h := w.Header()
		h.Set("Content-Type", "application/zip")
		h.Set("Content-Disposition", `attachment; filename="privguard-`+safeFilename(id)+`.zip"`)
		h.Set("Content-Length", strconv.Itoa(len(zip)))
		h.Set("Repr-Digest", "sha-256=:"+base64.StdEncoding.EncodeToString(sum)+":")
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		if _, err := w.Write(zip); err != nil {
			return err
		}
		// Only a body the client took counts as delivered.
		return http.NewResponseController(w).Flush()
	})
	if started && err != nil {
		// The body may be half written: nothing more can be said to this client, and the
		// package stays available for another try.
		s.log.Warn("download not completed", "route", r.Pattern, "err", err)
		return nil
	}
	return resultError(err)
}

func resultError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, privguard.ErrNotFound):
		return privguard.NewProblem(http.StatusNotFound, TypeNotFound, "Not found", "")
	case errors.Is(err, dsar.ErrNoResult):
		return privguard.NewProblem(http.StatusConflict, TypeNoResult, "No result yet",
			"the request is not an access request or is not finished")
	case errors.Is(err, dsar.ErrBadDownloadToken):
		return privguard.NewProblem(http.StatusForbidden, TypeIdentityNotVerified, "Wrong download token", "")
	case errors.Is(err, dsar.ErrResultGone):
		return privguard.NewProblem(http.StatusGone, TypeResultGone, "The result is gone",
			"it was downloaded already, has expired, or its request was cancelled; a new access request gives a new copy")
	}
	return err
}

// safeFilename keeps a request id usable in a Content-Disposition header.
func safeFilename(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x80 && (r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r)) {
			return r
		}
		return '_'
	}, s)
}

// getSchema serves the published JSON Schemas of access packages.
func (s *Server) getSchema(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if strings.ContainsAny(name, "/\\") || !strings.HasSuffix(name, ".schema.json") {
		return privguard.NewProblem(http.StatusNotFound, TypeNotFound, "Not found", "")
	}
	b, err := dsar.Schemas.ReadFile("schema/" + name)
	if err != nil {
		return privguard.NewProblem(http.StatusNotFound, TypeNotFound, "Not found", "")
	}
	w.Header().Set("Content-Type", "application/schema+json")
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(b)
	return err
}

// Callback limits. A callback's body is read before it can be authenticated (its HMAC
// covers the body), so what an unauthenticated caller can make privguard hold is bounded:
// nothing for a name that takes no callbacks, MaxAckCallback for a recipient's
// acknowledgement, MaxCallbackBody for a store's report, and CallbackBudget over all
// callbacks being read at once.
const (
	// MaxAckCallback bounds a recipient's callback: it only says done or failed (a few
	// hundred bytes).
	MaxAckCallback = 64 << 10
	// DefaultMaxCallbackBody bounds a store's callback, which for an access request carries
	// the store's export: as large as the webhook connector accepts the same tables in a
	// synchronous answer (webhook.DefaultMaxResponse), so a store that answers later is not
	// held to less and its access requests do not fail for good.
	DefaultMaxCallbackBody = 64 << 20
	// DefaultCallbackBudget bounds the callback bytes held at once: two store callbacks of
	// the largest size, or a thousand acknowledgements. A callback reserves its declared
	// length, or its cap when it declares none, before it is read, and past the budget
	// gets 503 with Retry-After (stores retry; the engine asks a waiting store again
	// anyway). Reserving up front rather than as bytes arrive keeps memory bounded by the
	// budget (a callback refused half-read would leave its bytes behind for the garbage
	// collector while others filled the budget again); the price is that a slow sender
	// holds its reservation until the server's read timeout.
	DefaultCallbackBudget = 2 * DefaultMaxCallbackBody
)

// callbackBudget counts the bytes reserved by the callbacks being read.
type callbackBudget struct {
	mu    sync.Mutex
	max   int64
	inUse int64
}

// take reserves n bytes, or reports false if that would pass the budget.
func (b *callbackBudget) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.inUse+n > b.max {
		return false
	}
	b.inUse += n
	return true
}

func (b *callbackBudget) give(n int64) {
	b.mu.Lock()
	b.inUse -= n
	b.mu.Unlock()
}

// callback applies a webhook store's or recipient's completion report. Before any of the
// body is read: a name that takes no callbacks gets 404, a request without a signature
// 401, a declared length over what the sender's callbacks can need 413, and a callback
// that would pass the budget of bytes held at once 503.
func (s *Server) callback(w http.ResponseWriter, r *http.Request) error {
	store := r.PathValue("store")
	limit := int64(0)
	switch s.requests.Callbacks(store) {
	case dsar.AckCallbacks:
		limit = MaxAckCallback
	case dsar.ExportCallbacks:
		limit = s.maxCallback
	default:
		return privguard.NewProblem(http.StatusNotFound, TypeNotFound, "Not found", "no store or recipient of that name takes callbacks")
	}
	sig := r.Header.Get("Privguard-Signature")
	if sig == "" || len(sig) > 1024 {
		return callbackNotAuthentic()
	}
	if r.ContentLength > limit {
		return privguard.NewProblem(http.StatusRequestEntityTooLarge, TypeBodyTooLarge, "Body too large",
			fmt.Sprintf("a callback to this path is at most %d bytes", limit))
	}
	reserve := limit
	if r.ContentLength >= 0 {
		reserve = r.ContentLength
	}
	if !s.callbacks.take(reserve) {
		w.Header().Set("Retry-After", "1")
		return privguard.NewProblem(http.StatusServiceUnavailable, TypeUnavailable, "Too many callbacks at once", "retry shortly")
	}
	defer s.callbacks.give(reserve)
	body, err := readBody(http.MaxBytesReader(w, r.Body, limit), r.ContentLength, limit)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return privguard.NewProblem(http.StatusRequestEntityTooLarge, TypeBodyTooLarge, "Body too large",
			fmt.Sprintf("a callback to this path is at most %d bytes", limit))
	case err != nil:
		return privguard.NewProblem(http.StatusBadRequest, TypeMalformedJSON, "Body not read", "the body ends early")
	}
	err = s.requests.Complete(r.Context(), store, sig, body)
	if errors.Is(err, dsar.ErrBadCallback) {
		return callbackNotAuthentic()
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func callbackNotAuthentic() *privguard.Problem {
	return privguard.NewProblem(http.StatusUnauthorized, TypeUnauthenticated, "Callback not authentic",
		"sign the body with the store's secret (Privguard-Signature: t=...,v1=...)")
}

// readBody reads r (a MaxBytesReader of limit bytes) whole, into one buffer: of exactly
// length bytes when the length is declared, else of limit bytes, of which only what the
// body fills is touched. Nothing is copied as the body grows, so it costs its own size in
// memory, not up to twice that.
func readBody(r io.Reader, length, limit int64) ([]byte, error) {
	if length >= 0 {
		b := make([]byte, length)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	b := make([]byte, limit+1)
	n, err := io.ReadFull(r, b)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return b[:n], nil
	case err != nil:
		return nil, err
	}
	return nil, &http.MaxBytesError{Limit: limit} // more than limit bytes
}
