package middleware

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/internal/jsonpath"
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
	// TypeAmbiguous: the request could be read two ways (a key or locator repeated or
	// spelled another way), so what privguard checks might not be what the handler uses.
	TypeAmbiguous = "ambiguous-request"
	// TypeUnsupportedMediaType: a body privguard must inspect (to seal fields) but cannot.
	TypeUnsupportedMediaType = "unsupported-media-type"
	// TypePathNotCanonical: a path another router could read as a different route.
	TypePathNotCanonical = "path-not-canonical"
	// TypeMethodNotConfigured: an enforced path under a method no route has.
	TypeMethodNotConfigured = "method-not-configured"
	// TypeFrequencyUnavailable: the contact counter did not answer, and the channel's
	// sends are refused then (503, reason frequency.unavailable).
	TypeFrequencyUnavailable = "frequency-unavailable"
	// TypeCallerUnknown: CallerHeader names no caller credential accepted (unknown, or
	// revoked on the processor's termination) (401).
	TypeCallerUnknown = "caller.unknown"
	// TypeCallerPurposeNotAllowed: the caller is not scoped to the request's purpose (403,
	// reason caller.purpose_not_allowed).
	TypeCallerPurposeNotAllowed = "caller.purpose_not_allowed"
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
	var canon *canonical
	if cfg.StrictPaths {
		var err error
		if canon, err = newCanonical(cfg.Routes); err != nil {
			return nil, err
		}
	}
	return func(next http.Handler) http.Handler {
		e := &enforcer{mux: http.NewServeMux(), cfg: &cfg, canon: canon, next: next}
		catchAll := false
		for i := range cfg.Routes {
			rt := &route{Route: cfg.Routes[i], cfg: &cfg, canon: canon, next: next}
			rt.reserver, _ = cfg.Contacts.(ContactReserver)
			rt.categories = fieldCategories(rt.Fields)
			rt.encrypt = encryptPaths(rt.Route)
			rt.minimises = len(rt.Fields) > 0 || len(rt.encrypt) > 0
			rt.fields = routeFields(rt.Fields)
			rt.names = routeNames(rt.Route, rt.encrypt)
			e.mux.Handle(rt.Match, rt)
			catchAll = catchAll || rt.Match == "/"
		}
		if !catchAll {
			e.mux.Handle("/", http.HandlerFunc(e.unmatched))
		}
		return e
	}, nil
}

// enforcer is the middleware: strict path checks, then the route table.
type enforcer struct {
	mux   *http.ServeMux
	cfg   *Config
	canon *canonical
	next  http.Handler
}

func (e *enforcer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect {
		// No route takes CONNECT (ServeMux would answer it with a plain-text 404).
		privguard.NewProblem(http.StatusMethodNotAllowed, TypeMethodNotConfigured, "Method not configured",
			"privguard does not tunnel CONNECT").Write(w)
		return
	}
	if e.cfg.StrictPaths {
		if p := strictPath(r); p != nil {
			p.Write(w)
			return
		}
	}
	e.mux.ServeHTTP(w, r)
}

// unmatched serves a request no route matches: denied (and recorded) with DenyUnmatched,
// else passed on without privguard's headers.
func (e *enforcer) unmatched(w http.ResponseWriter, r *http.Request) {
	if e.canon != nil {
		if p := e.canon.check(r, "", false); p != nil {
			p.Write(w)
			return
		}
	}
	if e.cfg.DenyUnmatched {
		d := privguard.Decision{Effect: privguard.Deny, Reasons: []privguard.Reason{privguard.ReasonRouteNotConfigured}}
		if e.cfg.Recorder != nil {
			e.cfg.Recorder.Record(UnmatchedRoute, &privguard.Input{Regime: e.cfg.Regime}, &d)
		}
		prob := privguard.NewProblem(http.StatusForbidden, TypeUnmatched, "Route not configured",
			"this route is not in privguard's route table, so no purpose is declared for it")
		prob.Reasons = d.Reasons
		prob.Write(w)
		return
	}
	e.next.ServeHTTP(w, stripped(r))
}

// UnmatchedRoute is the route name Recorder gets for a request no route matched.
const UnmatchedRoute = "(unmatched)"

// stripped returns r without privguard's headers (r itself if it has none).
func stripped(r *http.Request) *http.Request {
	h := withoutOwnHeaders(r.Header)
	if len(h) == len(r.Header) {
		return r
	}
	r2 := r.WithContext(r.Context())
	r2.Header = h
	return r2
}

// route enforces one configured route.
type route struct {
	Route
	cfg        *Config
	canon      *canonical // nil unless StrictPaths
	next       http.Handler
	categories []privguard.DataCategory
	encrypt    []string // response and request paths sealed by the vault
	minimises  bool     // the response may be rewritten (fields to drop or mask, or to open)
	fields     []routeField
	names      names           // what the source checks look for
	reserver   ContactReserver // cfg.Contacts, if it can reserve
	countErrAt atomic.Int64    // when a counter error was last logged (UnixNano)
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
	if rt.canon != nil {
		if p := rt.canon.check(r, rt.Match, rt.Pass); p != nil {
			p.Write(w)
			return
		}
	}
	if rt.Pass {
		rt.next.ServeHTTP(w, stripped(r))
		return
	}
	if p := rt.checkRequest(r); p != nil {
		p.Write(w)
		return
	}
	purpose, p := rt.purpose(r)
	if p != nil {
		p.Write(w)
		return
	}
	caller, p := rt.caller(r, purpose)
	if p != nil {
		p.Write(w)
		return
	}
	b, p := rt.readBody(w, r)
	if p != nil {
		p.Write(w)
		return
	}
	in := privguard.Input{Purpose: purpose, Categories: rt.categories, Regime: rt.cfg.Regime,
		Channel: rt.channel(purpose), Recipient: rt.Recipient, Role: rt.Role, PIAID: rt.PIA, GPC: gpc(r.Header), Caller: caller}
	if rt.Subjects.JSON != "" {
		if p := rt.checkSources(r, b, ""); p != nil {
			p.Write(w)
			return
		}
		// The decision's time starts once the body is read: a slow upload is not a slow
		// decision.
		ctx, cancel := context.WithTimeout(r.Context(), rt.cfg.BatchTimeout)
		defer cancel()
		rt.serveBatch(ctx, w, r, in, b.data)
		return
	}
	subject, p := rt.subject(r, b)
	if p != nil {
		p.Write(w)
		return
	}
	if p := rt.checkSources(r, b, string(subject)); p != nil {
		p.Write(w)
		return
	}
	if len(rt.encrypt) > 0 {
		// Checked before the decision, so that a body privguard cannot seal is refused
		// without counting a contact; sealed after it.
		if p := rt.sealable(b); p != nil {
			p.Write(w)
			return
		}
	}
	x := new(exchange) // what the rest of the request needs, in one allocation
	x.deadline.init(r.Context(), rt.cfg.Timeout)
	defer x.deadline.release()
	in.Subject = subject
	rt.countContacts(&in)
	d, err := rt.decide(&x.deadline, &in)
	if err != nil {
		rt.unavailable(w, err)
		return
	}
	uncountable := false
	if d.Allowed() && rt.reserves(in.Channel) {
		// The counter's own timeout bounds the reservation, not the decision's: a shared
		// counter is a network round trip away.
		d, uncountable = rt.reserve(r.Context(), &x.deadline, &in, d)
	}
	unlogged := false
	if d.Allowed() && rt.discloses() {
		d, unlogged = rt.disclose(r.Context(), &in, d, []privguard.SubjectID{subject})
	}
	rt.record(&in, &d)
	x.id[0] = d.ID
	w.Header()[DecisionHeader] = x.id[:]
	if uncountable {
		w.Header().Set("Retry-After", "1")
		frequencyUnavailable([]privguard.Reason{privguard.ReasonFrequencyUnavailable}).Write(w)
		return
	}
	if unlogged {
		rt.unlogged(w)
		return
	}
	if !d.Allowed() {
		prob := privguard.NewProblem(http.StatusForbidden, TypeDenied, "Not allowed for this purpose",
			"the use of this subject's data for "+string(purpose)+" is not allowed")
		prob.Reasons = d.Reasons
		prob.Write(w)
		return
	}
	x.decision = d
	r = rt.forward(r, purpose, &x.decision, &x.ctx)
	if b.data != nil {
		setBody(r, b.data)
	}
	rt.addContact(in.Channel, subject)
	x.own.ResponseWriter = w
	x.own.fixed[0] = headerPair{DecisionHeader, x.id[:]}
	if has(d, privguard.ObligeNonPersonalised) {
		x.own.fixed[1] = headerPair{NonPersonalisedHeader, one}
	}
	w = &x.own
	var open func([]byte) ([]byte, error)
	if len(rt.encrypt) > 0 {
		if p := rt.seal(r.Context(), r, subject, b.data); p != nil {
			p.Write(w)
			return
		}
		open = func(doc []byte) ([]byte, error) {
			return rt.cfg.Crypter.OpenJSON(r.Context(), subject, doc, rt.encrypt)
		}
	}
	ops := obligedOps(rt.fields, d, x.ops[:0])
	if len(ops) == 0 && open == nil {
		rt.next.ServeHTTP(w, r)
		return
	}
	mw := &x.minimiser
	mw.ResponseWriter, mw.limit = w, rt.cfg.MaxResponse
	rt.next.ServeHTTP(mw, r)
	mw.finish(open, ops, rt.cfg)
}

// exchange is what an enforced single-subject request needs beyond the request, allocated
// together.
type exchange struct {
	deadline  deadline // of the decision
	id        [1]string
	decision  privguard.Decision
	ctx       decisionContext
	own       ownResponseHeaders
	minimiser minimiser
	ops       [4]fieldOp
}

// acceptJSON is the Accept header of a request whose response is rewritten (shared, as one).
var acceptJSON = []string{"application/json"}[:1:1]

// one is the value "1" of a header (shared: header values are not modified in place).
var one = []string{"1"}[:1:1]

// setBody gives r (privguard's own copy of the request) body as its body.
func setBody(r *http.Request, body []byte) {
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.Header.Set("Content-Length", strconv.Itoa(len(body)))
}

// forward returns the request the handler gets: with the decision in its context, and
// privguard's headers (the decision's, none of the client's). On a route whose response
// may be rewritten, the request also loses what would make the response unreadable,
// partial or shaped otherwise: Accept-Encoding (privguard rewrites only identity-encoded
// JSON), Range and If-Range (a byte range of a JSON document can itself be valid JSON that
// no field path reaches), and the client's Accept (replaced by application/json).
//
// d and ctx are where the decision and the request's new context are kept (the caller's
// storage, so that the request's state is allocated once).
func (rt *route) forward(r *http.Request, purpose privguard.Purpose, d *privguard.Decision, ctx *decisionContext) *http.Request {
	ctx.Context, ctx.d = r.Context(), d
	r2 := r.WithContext(ctx)
	r2.Header = decisionHeaders(r.Header, purpose, *d)
	r2.Trailer = nil // a client's trailers could carry a locator or privguard's headers after the body
	if rt.minimises {
		for _, h := range []string{"Accept-Encoding", "Range", "If-Range"} {
			delete(r2.Header, h)
		}
		// The client does not choose the representation: field paths are written for the
		// plain JSON one (a JSON:API response would hold them under data.attributes).
		r2.Header["Accept"] = acceptJSON
	}
	return r2
}

// checkRequest refuses what a route cannot enforce whatever the decision: a Connection
// header that would have a proxy drop a header privguard checked or set, a protocol upgrade
// on a route whose response is rewritten (the upgraded stream bypasses the rewrite), and a
// query string servers split differently.
func (rt *route) checkRequest(r *http.Request) *privguard.Problem {
	if p := checkConnection(r.Header); p != nil {
		return p
	}
	if rt.minimises && r.Header.Get("Upgrade") != "" {
		return privguard.NewProblem(http.StatusBadRequest, TypeAmbiguous, "Upgrade not allowed",
			"the responses of this route are minimised; a protocol upgrade would bypass that")
	}
	if r.URL.RawQuery != "" {
		if _, err := url.ParseQuery(r.URL.RawQuery); err != nil {
			return ambiguous("the query string cannot be parsed one way only (a semicolon, a bad escape, or too many parameters)")
		}
	}
	return nil
}

// gpc reports a Global Privacy Control opt-out: any Sec-GPC value of "1" counts, so that a
// second header cannot hide one the handler might see.
func gpc(h http.Header) bool {
	return slices.Contains(h["Sec-Gpc"], "1") // the canonical spelling: h.Values would canonicalise it anew
}

// channel is the route's outreach channel: its own, or the one its purpose names.
func (rt *route) channel(p privguard.Purpose) string {
	if rt.Channel != "" {
		return rt.Channel
	}
	return privguard.ChannelOf(p)
}

// sealable checks the body of a route that seals fields (readBody has read it and checked
// its type): privguard must seal whatever body the handler could parse as JSON, so a
// non-empty body must be JSON privguard can read, whatever its media type (handlers often
// decode without looking at it), with each sealed key once and spelled as configured;
// anything else is refused (415), never forwarded.
func (rt *route) sealable(b body) *privguard.Problem {
	if len(b.data) == 0 {
		return nil
	}
	switch err := jsonpath.CheckPaths(b.data, rt.encrypt); {
	case errors.Is(err, jsonpath.ErrNotJSON) && b.kind == bodyJSON:
		return malformed("the body is not valid JSON")
	case errors.Is(err, jsonpath.ErrNotJSON):
		return unsupported("this route seals fields of JSON bodies; privguard cannot inspect this body, so it is not passed on")
	case err != nil:
		return ambiguousKey(err)
	}
	return nil
}

// seal seals the route's Encrypt fields of body (checked by sealable) into r's body before
// the handler (and whatever it stores) sees them.
func (rt *route) seal(ctx context.Context, r *http.Request, subject privguard.SubjectID, body []byte) *privguard.Problem {
	if len(body) == 0 {
		return nil
	}
	sealed, err := rt.cfg.Crypter.SealJSON(ctx, subject, body, rt.encrypt)
	if errors.Is(err, privguard.ErrInvalid) {
		return privguard.NewProblem(http.StatusBadRequest, TypeMalformedJSON, "Value looks sealed but is not",
			"a sealed field holds a value marked sealed that privguard did not seal for this subject and field; send the plain value")
	}
	if err != nil {
		rt.cfg.Logger.Error("privguard: sealing request fields failed", "route", rt.Match, "err", err)
		return privguard.NewProblem(http.StatusServiceUnavailable, TypeUnavailable, "Fields could not be sealed",
			"the request was not passed on")
	}
	setBody(r, sealed)
	return nil
}

func unsupported(detail string) *privguard.Problem {
	return privguard.NewProblem(http.StatusUnsupportedMediaType, TypeUnsupportedMediaType, "Unsupported body", detail)
}

// ambiguousKey is the problem for a jsonpath.KeyError: it names the configured key, never a
// value.
func ambiguousKey(err error) *privguard.Problem {
	var ke *jsonpath.KeyError
	if !errors.As(err, &ke) {
		return ambiguous("the body could be read two ways")
	}
	p := ambiguous(ke.Path + " appears more than once or under another spelling (case, Unicode folding); send it once, spelled as configured")
	p.Field = ke.Path
	return p
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

func (rt *route) discloses() bool { return rt.Recipient != "" && rt.cfg.Discloser != nil }

// disclose has the provision of subjects' data, allowed by d, checked and logged; it
// returns d, or the deny that replaces it (unlogged: the log could not be written).
func (rt *route) disclose(ctx context.Context, in *privguard.Input, d privguard.Decision, subjects []privguard.SubjectID) (_ privguard.Decision, unlogged bool) {
	reason, err := rt.cfg.Discloser.Disclose(ctx, privguard.Provision{Kind: "route", Route: rt.Match, Recipient: rt.Recipient,
		Purpose: in.Purpose, Categories: in.Categories, Regime: in.Regime, Subjects: subjects, Decision: d.ID})
	if err != nil {
		rt.cfg.Logger.Error("privguard: the provision to a recipient could not be logged; refused", "route", rt.Match, "err", err)
		reason, unlogged = privguard.ReasonDisclosureUnavailable, true
	}
	if reason == "" {
		return d, false
	}
	return privguard.Decision{ID: d.ID, Effect: privguard.Deny, Reasons: []privguard.Reason{reason}, Revision: d.Revision}, unlogged
}

// unlogged answers a provision refused because the disclosure log could not be written.
func (rt *route) unlogged(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "1")
	p := privguard.NewProblem(http.StatusServiceUnavailable, TypeUnavailable, "The provision could not be logged",
		"the request was not passed on; retry later")
	p.Reasons = []privguard.Reason{privguard.ReasonDisclosureUnavailable}
	p.Write(w)
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

// caller authenticates the caller the request names in CallerHeader (none: ""), and
// denies a purpose the caller is not scoped to; that deny is recorded with the caller's
// name.
func (rt *route) caller(r *http.Request, purpose privguard.Purpose) (string, *privguard.Problem) {
	token, prob := oneHeader(r.Header, CallerHeader)
	if prob != nil || token == "" {
		return "", prob
	}
	var c Caller
	ok := false
	if rt.cfg.Callers != nil && len(token) <= maxCallerToken {
		c, ok = rt.cfg.Callers.Caller(token)
	}
	if !ok {
		return "", privguard.NewProblem(http.StatusUnauthorized, TypeCallerUnknown, "Unknown caller",
			CallerHeader+" is not a caller credential privguard accepts (unknown, or revoked)")
	}
	if !c.Serves(purpose) {
		d := privguard.Decision{Effect: privguard.Deny, Reasons: []privguard.Reason{privguard.ReasonCallerPurposeNotAllowed}}
		rt.record(&privguard.Input{Purpose: purpose, Categories: rt.categories, Regime: rt.cfg.Regime, Recipient: rt.Recipient,
			Role: rt.Role, Caller: c.Name}, &d)
		p := privguard.NewProblem(http.StatusForbidden, TypeCallerPurposeNotAllowed, "Purpose not allowed for this caller",
			"the caller is not scoped to the request's purpose")
		p.Reasons = d.Reasons
		return "", p
	}
	return c.Name, nil
}

// maxCallerToken bounds the caller credential looked up.
const maxCallerToken = 512

// purpose returns the purpose the request declares (or the route's).
func (rt *route) purpose(r *http.Request) (privguard.Purpose, *privguard.Problem) {
	h, prob := oneHeader(r.Header, PurposeHeader)
	if prob != nil {
		return "", prob
	}
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

// subject finds the single subject of the request: from the path, a header or query
// parameter given once, or a JSON body field given once and spelled as configured
// (checkSources then refuses other names for it in the query, cookies and body).
func (rt *route) subject(r *http.Request, b body) (privguard.SubjectID, *privguard.Problem) {
	var s string
	switch l := rt.Subject; {
	case l.Path != "":
		s = r.PathValue(l.Path)
		if rt.cfg.StrictPaths && strings.Contains(s, ".") {
			// Rails and Spring read "cust.json" as cust in the json format.
			return "", notCanonical("a subject in the path may not hold a '.': a framework that reads a format suffix would act on another id")
		}
	case l.Header != "":
		v, p := oneHeader(r.Header, l.Header)
		if p != nil {
			return "", p
		}
		s = v
	case l.Query != "":
		vs := r.URL.Query()[l.Query]
		if len(vs) > 1 {
			return "", ambiguous("the query parameter " + l.Query + " is given more than once")
		}
		if len(vs) == 1 {
			s = vs[0]
		}
	case l.JSON != "":
		switch err := jsonpath.CheckMember(b.data, l.JSON); {
		case errors.Is(err, jsonpath.ErrNotJSON):
			return "", malformed("the body must be a JSON object")
		case err != nil:
			return "", ambiguousKey(err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b.data, &m); err != nil {
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
			privguard.SubjectIDRule)
	}
	return subject, nil
}

// serveBatch filters the subjects of a JSON body field down to those that may be contacted.
func (rt *route) serveBatch(ctx context.Context, w http.ResponseWriter, r *http.Request, in privguard.Input, body []byte) {
	switch err := jsonpath.CheckMember(body, rt.Subjects.JSON); {
	case errors.Is(err, jsonpath.ErrNotJSON):
		malformed("the body is not valid JSON").Write(w)
		return
	case err != nil:
		ambiguousKey(err).Write(w)
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
	if len(ids) == 0 {
		privguard.NewProblem(http.StatusBadRequest, TypeSubjectMissing, "Subjects missing",
			rt.Subjects.JSON+" is empty: list the subjects").Write(w)
		return
	}
	subjects := make([]privguard.SubjectID, len(ids))
	for i, s := range ids {
		subjects[i] = privguard.SubjectID(s)
	}
	kept := make([]privguard.SubjectID, 0, len(subjects))
	var last privguard.Decision
	var deniedFor []privguard.Reason // every reason any subject was refused for
	// Every subject of a batch is asked about the same use; decisions differ only by the
	// subject's facts, so each distinct set of facts is decided once.
	type facts struct {
		c privguard.ConsentFacts
		f privguard.SubjectFacts
	}
	valid := subjects[:0:0]
	pos := make([]int32, 0, len(subjects)) // position in the list of each valid subject
	// A subject named twice is kept once: five copies of one id would be five messages,
	// all counted against a frequency limit read before any of them was sent.
	once := make(map[privguard.SubjectID]struct{}, len(subjects))
	for i, s := range subjects {
		if s.Validate() != nil { // a malformed id is nobody who consented
			continue
		}
		if _, dup := once[s]; dup {
			continue
		}
		once[s] = struct{}{}
		valid = append(valid, s)
		pos = append(pos, int32(i))
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
	if rt.cfg.Contacts != nil && in.Channel != "" && rt.reserver == nil {
		for i, s := range valid {
			all[i].f.Contacts = rt.cfg.Contacts.Contacts(s, in.Channel)
		}
	}
	// Batches have few distinct sets of facts: a short list searched in order beats a map
	// keyed by five strings.
	type seen struct {
		k facts
		d privguard.Decision
	}
	var decided []seen
	final := make([]*privguard.Decision, len(valid)) // each valid subject's decision
	var entries []BatchEntry                         // for the Recorder, given to it once the batch is decided
	record := func(n int) {
		if rt.cfg.Recorder == nil || n == 0 {
			return
		}
		entries = make([]BatchEntry, n)
		for i, s := range valid[:n] {
			entries[i] = BatchEntry{Subject: s, Consent: all[i].c.State, Decision: final[i]}
		}
		RecordBatch(rt.cfg.Recorder, rt.Match, &in, entries)
	}
	at := make([]int32, len(valid)) // each valid subject's entry in decided
	for i, s := range valid {
		k := all[i]
		j := 0
		for j < len(decided) && decided[j].k != k {
			j++
		}
		if j == len(decided) {
			err := ctx.Err()
			var d privguard.Decision
			if err == nil {
				one := in
				one.Subject, one.Consent, one.Facts = s, k.c, k.f
				d, err = rt.cfg.Decider.Decide(ctx, one)
			}
			if err != nil {
				for n := range i {
					final[n] = &decided[at[n]].d
				}
				record(i) // what was decided before the failure
				rt.unavailable(w, err)
				return
			}
			decided = append(decided, seen{k, d})
		}
		at[i] = int32(j)
	}
	for i := range valid {
		final[i] = &decided[at[i]].d
	}
	uncountable := false
	if rt.reserves(in.Channel) {
		uncountable = rt.reserveBatch(ctx, final, func(i int) privguard.Input {
			one := in
			one.Subject, one.Consent, one.Facts = valid[i], all[i].c, all[i].f
			return one
		})
	}
	for i, s := range valid {
		d := final[i]
		if d.Allowed() {
			last = *d
			kept = append(kept, s)
			keepAt[pos[i]] = true
			rt.addContact(in.Channel, s)
			continue
		}
		for _, r := range d.Reasons {
			if !slices.Contains(deniedFor, r) {
				deniedFor = append(deniedFor, r)
			}
		}
	}
	if len(kept) > 0 && rt.discloses() {
		// The batch goes to the recipient as one provision: refused, nobody is sent.
		d, unlogged := rt.disclose(ctx, &in, last, kept)
		if !d.Allowed() {
			for i := range final {
				if final[i].Allowed() {
					final[i] = &d
				}
			}
			record(len(valid))
			if unlogged {
				rt.unlogged(w)
				return
			}
			w.Header().Set(RemovedHeader, strconv.Itoa(len(subjects)))
			prob := privguard.NewProblem(http.StatusForbidden, TypeDenied, "The batch may not be provided",
				"the batch may not be provided to "+rt.Recipient)
			prob.Reasons = d.Reasons
			prob.Write(w)
			return
		}
	}
	record(len(valid))
	if len(kept) == 0 {
		// Nobody may be contacted: the handler is not called, since an empty list can mean
		// "everyone" to it.
		slices.Sort(deniedFor)
		prob := privguard.NewProblem(http.StatusForbidden, TypeDenied, "Nobody in the batch may be contacted",
			"no subject of "+rt.Subjects.JSON+" may be contacted for "+string(in.Purpose))
		if uncountable {
			// Some could have been, but their contacts could not be counted.
			prob = frequencyUnavailable(nil)
			w.Header().Set("Retry-After", "1")
		}
		prob.Reasons = deniedFor
		w.Header().Set(RemovedHeader, strconv.Itoa(len(subjects)))
		prob.Write(w)
		return
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
	r2 := rt.forward(r, in.Purpose, &batch, new(decisionContext))
	r2.Header[RemovedHeader] = []string{strconv.Itoa(removed)}
	setBody(r2, body)
	own := http.Header{RemovedHeader: {strconv.Itoa(removed)}}
	if batch.ID != "" {
		own[DecisionHeader] = []string{batch.ID}
	}
	rt.next.ServeHTTP(&ownResponseHeaders{ResponseWriter: w, own: own}, r2)
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

// decisionContext is context.WithValue(parent, decisionKey{}, d), kept in the request's
// exchange instead of allocated.
type decisionContext struct {
	context.Context
	d *privguard.Decision
}

func (c *decisionContext) Value(key any) any {
	if key == (decisionKey{}) {
		return c.d
	}
	return c.Context.Value(key)
}

// DecisionFromContext returns the decision that let the request through.
func DecisionFromContext(ctx context.Context) (privguard.Decision, bool) {
	if d, ok := ctx.Value(decisionKey{}).(*privguard.Decision); ok {
		return *d, true
	}
	return privguard.Decision{}, false
}

// NonPersonalised reports whether the handler must serve its non-personalised alternative
// (PIPL Art. 24(2)).
func NonPersonalised(ctx context.Context) bool {
	d, ok := DecisionFromContext(ctx)
	return ok && has(d, privguard.ObligeNonPersonalised)
}
