package middleware

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"

	"github.com/privguard/privguard"
)

// Problem type slugs (after privguard.ProblemTypePrefix).
const (
	TypeDenied             = "denied"
	TypeUnavailable        = "decision-unavailable"
	TypeSubjectMissing     = "subject-missing"
	TypeInvalidSubject     = "invalid-subject"
	TypePurposeNotAllowed  = "purpose-not-allowed"
	TypeMalformedJSON      = "malformed-json"
	TypeBodyTooLarge       = "body-too-large"
	TypeUnmatched          = "route-not-configured"
	TypeResponseUnreadable = "response-not-minimisable"
)

// Response headers.
const (
	DecisionHeader        = "X-Privguard-Decision"
	NonPersonalisedHeader = "X-Privguard-Non-Personalised"
	RemovedHeader         = "X-Privguard-Removed"
)

// New returns the enforcing middleware for cfg. A malformed configuration is an error that
// names the route and field.
func New(cfg Config) (func(http.Handler) http.Handler, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := checkPatterns(cfg.Routes); err != nil {
		return nil, err
	}
	return func(next http.Handler) http.Handler {
		mux := http.NewServeMux()
		for i := range cfg.Routes {
			rt := &route{Route: cfg.Routes[i], cfg: &cfg, next: next}
			rt.categories = fieldCategories(rt.Fields)
			rt.encrypt = encryptPaths(rt.Route)
			mux.Handle(rt.Match, rt)
		}
		mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if cfg.DenyUnmatched {
				privguard.NewProblem(http.StatusForbidden, TypeUnmatched, "Route not configured",
					"this route is not in privguard's route table").Write(w)
				return
			}
			next.ServeHTTP(w, r)
		}))
		return mux
	}, nil
}

// route enforces one configured route.
type route struct {
	Route
	cfg        *Config
	next       http.Handler
	categories []privguard.DataCategory
	encrypt    []string // response and request paths sealed by the vault
}

// encryptPaths resolves a route's Encrypt entries (paths or categories of Fields) to paths.
func encryptPaths(r Route) []string {
	var out []string
	for _, e := range r.Encrypt {
		byCategory := false
		for path, c := range r.Fields {
			if c.Within(privguard.DataCategory(e)) {
				out = append(out, path)
				byCategory = true
			}
		}
		if !byCategory {
			out = append(out, e)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (rt *route) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	purpose, p := rt.purpose(r)
	if p != nil {
		p.Write(w)
		return
	}
	in := privguard.Input{Purpose: purpose, Categories: rt.categories, Regime: rt.cfg.Regime,
		Channel: rt.Channel, Recipient: rt.Recipient, Role: rt.Role, GPC: r.Header.Get("Sec-GPC") == "1"}
	if rt.Subjects.JSON != "" {
		ctx, cancel := context.WithTimeout(r.Context(), rt.cfg.BatchTimeout)
		defer cancel()
		rt.serveBatch(ctx, w, r, in)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), rt.cfg.Timeout)
	defer cancel()
	subject, p := rt.subject(w, r)
	if p != nil {
		p.Write(w)
		return
	}
	in.Subject = subject
	rt.countContacts(&in)
	d, err := rt.decide(ctx, &in)
	if err != nil {
		rt.unavailable(w, err)
		return
	}
	rt.record(&in, &d)
	w.Header().Set(DecisionHeader, d.ID)
	if !d.Allowed() {
		prob := privguard.NewProblem(http.StatusForbidden, TypeDenied, "Not allowed for this purpose",
			"the use of this subject's data for "+string(purpose)+" is not allowed")
		prob.Reasons = d.Reasons
		prob.Write(w)
		return
	}
	r = r.WithContext(withDecision(r.Context(), d))
	rt.addContact(subject)
	if has(d, privguard.ObligeNonPersonalised) {
		w.Header().Set(NonPersonalisedHeader, "1")
	}
	var open func([]byte) ([]byte, error)
	if len(rt.encrypt) > 0 {
		if p := rt.sealRequest(r.Context(), w, r, subject); p != nil {
			p.Write(w)
			return
		}
		open = func(doc []byte) ([]byte, error) {
			return rt.cfg.Crypter.OpenJSON(r.Context(), subject, doc, rt.encrypt)
		}
	}
	drop, mask := obligedFields(rt.Fields, d)
	if len(drop) == 0 && len(mask) == 0 && open == nil {
		rt.next.ServeHTTP(w, r)
		return
	}
	mw := &minimiser{ResponseWriter: w, limit: rt.cfg.MaxResponse}
	rt.next.ServeHTTP(mw, r)
	mw.finish(open, drop, mask, rt.cfg)
}

// sealRequest seals the route's Encrypt fields of a JSON request body before the handler
// (and whatever it stores) sees them.
func (rt *route) sealRequest(ctx context.Context, w http.ResponseWriter, r *http.Request, subject privguard.SubjectID) *privguard.Problem {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return nil
	}
	body, p := readBody(w, r, rt.cfg.MaxBody)
	if p != nil {
		return p
	}
	if !json.Valid(body) {
		return malformed("the body is not valid JSON")
	}
	sealed, err := rt.cfg.Crypter.SealJSON(ctx, subject, body, rt.encrypt)
	if err != nil {
		rt.cfg.Logger.Error("privguard: sealing request fields failed", "route", rt.Match, "err", err)
		return privguard.NewProblem(http.StatusServiceUnavailable, TypeUnavailable, "Fields could not be sealed",
			"the request was not passed on")
	}
	r.Body = io.NopCloser(bytes.NewReader(sealed))
	r.ContentLength = int64(len(sealed))
	r.Header.Set("Content-Length", strconv.Itoa(len(sealed)))
	return nil
}

// decide fills the facts into in and asks the decider.
func (rt *route) decide(ctx context.Context, in *privguard.Input) (privguard.Decision, error) {
	if err := rt.cfg.Facts.Facts(ctx, in); err != nil {
		return privguard.Decision{}, fmt.Errorf("consent facts: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return privguard.Decision{}, err
	}
	return rt.cfg.Decider.Decide(ctx, *in)
}

// countContacts reads the subject's contacts on the route's channel into in.
func (rt *route) countContacts(in *privguard.Input) {
	if rt.cfg.Contacts != nil && rt.Channel != "" {
		in.Facts.Contacts = rt.cfg.Contacts.Contacts(in.Subject, rt.Channel)
	}
}

// addContact records that the request reaches subject on the route's channel.
func (rt *route) addContact(subject privguard.SubjectID) {
	if rt.cfg.Contacts != nil && rt.Channel != "" {
		rt.cfg.Contacts.AddContact(subject, rt.Channel)
	}
}

func (rt *route) record(in *privguard.Input, d *privguard.Decision) {
	if rt.cfg.Recorder != nil {
		rt.cfg.Recorder.Record(rt.Match, in, d)
	}
}

func (rt *route) unavailable(w http.ResponseWriter, err error) {
	rt.cfg.Logger.Error("privguard: no decision; failing closed", "route", rt.Match, "err", err)
	w.Header().Set("Retry-After", "1")
	privguard.NewProblem(http.StatusServiceUnavailable, TypeUnavailable, "No decision could be made",
		"the request was not passed on; retry later").Write(w)
}

// purpose returns the purpose the request declares (or the route's).
func (rt *route) purpose(r *http.Request) (privguard.Purpose, *privguard.Problem) {
	h := r.Header.Get(PurposeHeader)
	if h == "" {
		if rt.Purpose == "" {
			return "", privguard.NewProblem(http.StatusBadRequest, TypePurposeNotAllowed, "Purpose required",
				"declare one of the route's purposes in "+PurposeHeader)
		}
		return rt.Purpose, nil
	}
	p := privguard.Purpose(h)
	if p.Validate() != nil || (p != rt.Purpose && !slices.Contains(rt.Purposes, p)) {
		return "", privguard.NewProblem(http.StatusBadRequest, TypePurposeNotAllowed, "Purpose not allowed on this route",
			PurposeHeader+" must name one of the route's purposes")
	}
	return p, nil
}

// subject finds the single subject of the request.
func (rt *route) subject(w http.ResponseWriter, r *http.Request) (privguard.SubjectID, *privguard.Problem) {
	var s string
	switch l := rt.Subject; {
	case l.Path != "":
		s = r.PathValue(l.Path)
	case l.Header != "":
		s = r.Header.Get(l.Header)
	case l.Query != "":
		s = r.URL.Query().Get(l.Query)
	case l.JSON != "":
		body, p := readBody(w, r, rt.cfg.MaxBody)
		if p != nil {
			return "", p
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			return "", malformed("the body must be a JSON object")
		}
		if raw, ok := m[l.JSON]; ok {
			if err := json.Unmarshal(raw, &s); err != nil {
				return "", malformed(l.JSON + " must be a string")
			}
		}
	}
	if s == "" {
		return "", privguard.NewProblem(http.StatusBadRequest, TypeSubjectMissing, "Subject missing",
			"the request does not say whose data it is about")
	}
	subject := privguard.SubjectID(s)
	if subject.Validate() != nil {
		return "", privguard.NewProblem(http.StatusBadRequest, TypeInvalidSubject, "Malformed subject id",
			"must be 1 to 128 letters, digits or ._:@+- starting with a letter or digit")
	}
	return subject, nil
}

// serveBatch filters the subjects of a JSON body field down to those that may be contacted.
func (rt *route) serveBatch(ctx context.Context, w http.ResponseWriter, r *http.Request, in privguard.Input) {
	body, p := readBody(w, r, rt.cfg.MaxBody)
	if p != nil {
		p.Write(w)
		return
	}
	if !json.Valid(body) {
		malformed("the body is not valid JSON").Write(w)
		return
	}
	vs, ve, isObject, found := member(body, rt.Subjects.JSON)
	if !isObject {
		malformed("the body must be a JSON object").Write(w)
		return
	}
	if !found {
		privguard.NewProblem(http.StatusBadRequest, TypeSubjectMissing, "Subjects missing",
			rt.Subjects.JSON+" must list the subjects").Write(w)
		return
	}
	ids, spans, ok := stringArray(body[vs:ve])
	if !ok {
		malformed(rt.Subjects.JSON + " must be an array of subject ids").Write(w)
		return
	}
	subjects := make([]privguard.SubjectID, len(ids))
	for i, s := range ids {
		subjects[i] = privguard.SubjectID(s)
	}
	kept := make([]privguard.SubjectID, 0, len(subjects))
	var last privguard.Decision
	// Every subject of a batch is asked about the same use; decisions differ only by the
	// subject's facts, so each distinct set of facts is decided once.
	type facts struct {
		c privguard.ConsentFacts
		f privguard.SubjectFacts
	}
	valid := subjects[:0:0]
	pos := make([]int32, 0, len(subjects)) // position in the list of each valid subject
	for i, s := range subjects {
		if s.Validate() == nil { // a malformed id is nobody who consented
			valid = append(valid, s)
			pos = append(pos, int32(i))
		}
	}
	keepAt := make([]bool, len(subjects))
	all := make([]facts, len(valid))
	if br, ok := rt.cfg.Facts.(BatchFactsReader); ok {
		if err := br.FactsBatch(ctx, in, valid, func(i int, c privguard.ConsentFacts, f privguard.SubjectFacts) {
			all[i] = facts{c, f}
		}); err != nil {
			rt.unavailable(w, fmt.Errorf("consent facts: %w", err))
			return
		}
	} else {
		for i, s := range valid {
			one := in
			one.Subject = s
			if err := rt.cfg.Facts.Facts(ctx, &one); err != nil {
				rt.unavailable(w, fmt.Errorf("consent facts: %w", err))
				return
			}
			all[i] = facts{one.Consent, one.Facts}
		}
	}
	if rt.cfg.Contacts != nil && rt.Channel != "" {
		for i, s := range valid {
			all[i].f.Contacts = rt.cfg.Contacts.Contacts(s, rt.Channel)
		}
	}
	// Batches have few distinct sets of facts: a short list searched in order beats a map
	// keyed by five strings.
	type seen struct {
		k facts
		d privguard.Decision
	}
	var decided []seen
	for i, s := range valid {
		k := all[i]
		j := 0
		for j < len(decided) && decided[j].k != k {
			j++
		}
		if j == len(decided) {
			if err := ctx.Err(); err != nil {
				rt.unavailable(w, err)
				return
			}
			one := in
			one.Subject, one.Consent, one.Facts = s, k.c, k.f
			d, err := rt.cfg.Decider.Decide(ctx, one)
			if err != nil {
				rt.unavailable(w, err)
				return
			}
			decided = append(decided, seen{k, d})
			if d.Allowed() {
				last = d
			}
		}
		d := &decided[j].d
		if rt.cfg.Recorder != nil {
			one := in
			one.Subject, one.Consent, one.Facts = s, k.c, k.f
			rt.record(&one, d)
		}
		if d.Allowed() {
			kept = append(kept, s)
			keepAt[pos[i]] = true
			rt.addContact(s)
		}
	}
	removed := len(subjects) - len(kept)
	if removed > 0 {
		// Rewrite the array from the kept elements' own bytes: the rest of the body is copied
		// as it came.
		arr := body[vs:ve]
		out := make([]byte, 0, len(body))
		out = append(out, body[:vs]...)
		out = append(out, '[')
		n := 0
		for i, sp := range spans {
			if !keepAt[i] {
				continue
			}
			if n > 0 {
				out = append(out, ',')
			}
			out = append(out, arr[sp[0]:sp[1]]...)
			n++
		}
		out = append(out, ']')
		body = append(out, body[ve:]...)
	}
	batch := privguard.Decision{ID: last.ID, Effect: privguard.Allow, Revision: last.Revision}
	if removed > 0 {
		batch.Obligations = []privguard.Obligation{{Kind: privguard.ObligeDropSubjects, Remaining: removed}}
	}
	r2 := r.WithContext(withDecision(r.Context(), batch))
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.ContentLength = int64(len(body))
	r2.Header.Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set(RemovedHeader, strconv.Itoa(removed))
	rt.next.ServeHTTP(w, r2)
}

// readBody reads the whole request body (at most limit bytes) and puts it back for the
// handler.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *privguard.Problem) {
	if r.Body == nil {
		return nil, malformed("the body is empty")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, privguard.NewProblem(http.StatusRequestEntityTooLarge, TypeBodyTooLarge, "Body too large",
				"the body must be at most "+strconv.FormatInt(limit, 10)+" bytes")
		}
		return nil, malformed("the body could not be read")
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return body, nil
}

func malformed(detail string) *privguard.Problem {
	return privguard.NewProblem(http.StatusBadRequest, TypeMalformedJSON, "Malformed JSON", detail)
}

func has(d privguard.Decision, k privguard.ObligationKind) bool {
	return slices.ContainsFunc(d.Obligations, func(o privguard.Obligation) bool { return o.Kind == k })
}

// fieldCategories returns the distinct categories of a route's fields, sorted.
func fieldCategories(fields map[string]privguard.DataCategory) []privguard.DataCategory {
	var out []privguard.DataCategory
	for _, c := range fields {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}

type decisionKey struct{}

func withDecision(ctx context.Context, d privguard.Decision) context.Context {
	return context.WithValue(ctx, decisionKey{}, d)
}

// DecisionFromContext returns the decision that let the request through.
func DecisionFromContext(ctx context.Context) (privguard.Decision, bool) {
	d, ok := ctx.Value(decisionKey{}).(privguard.Decision)
	return d, ok
}

// NonPersonalised reports whether the handler must serve its non-personalised alternative
// (PIPL Art. 24(2)).
func NonPersonalised(ctx context.Context) bool {
	d, ok := DecisionFromContext(ctx)
	return ok && has(d, privguard.ObligeNonPersonalised)
}
