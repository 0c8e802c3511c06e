package middleware

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/privguard/privguard"
)

// Defaults.
const (
	DefaultDecisionTimeout = 50 * time.Millisecond
	DefaultBatchTimeout    = 10 * time.Second
	DefaultMaxBody         = 1 << 20
	DefaultMaxResponse     = 8 << 20
	// PurposeHeader lets a caller choose among a route's allowed purposes; on the way to
	// the handler it carries the purpose the request was allowed for.
	PurposeHeader = "X-Privguard-Purpose"
)

// CallerHeader carries a calling service's own credential (an entrusted processor's):
// with it, the request is decided only for the purposes the caller is scoped to. It never
// reaches the handler.
const CallerHeader = "X-Privguard-Caller"

// Callers authenticates the calling services that present a credential in
// [CallerHeader].
type Callers interface {
	// Caller returns the caller whose credential token is; ok is false for a token no
	// caller has, or whose credential was revoked (a terminated processor).
	Caller(token string) (c Caller, ok bool)
}

// Caller is an authenticated calling service.
type Caller struct {
	// Name is what the decision log records (never the credential).
	Name string
	// Purposes are the purposes (and their sub-purposes) the caller's requests may be
	// decided for.
	Purposes []privguard.Purpose
}

// Serves reports whether c may be decided for purpose.
func (c Caller) Serves(purpose privguard.Purpose) bool {
	for _, p := range c.Purposes {
		if purpose.Within(p) {
			return true
		}
	}
	return false
}

// Decider decides one use of personal data. policy.Engine implements it.
type Decider interface {
	Decide(ctx context.Context, in privguard.Input) (privguard.Decision, error)
}

// FactsReader fills in.Consent and in.Facts for in.Subject and in.Purpose.
// consent.Ledger implements it.
type FactsReader interface {
	Facts(ctx context.Context, in *privguard.Input) error
}

// Recorder receives every decision for the decision log (audit.Log implements it). It
// must not block: the request waits for it.
type Recorder interface {
	Record(route string, in *privguard.Input, d *privguard.Decision)
}

// BatchRecorder is a Recorder that takes all the decisions of a batch (a campaign's
// recipients) in one call, so that a batch of 100,000 is one entry in its buffer rather than
// 100,000 (audit.Log and the metrics recorder implement it). in is the batch's input,
// without subject and facts; entries must not be modified after the call.
type BatchRecorder interface {
	Recorder
	RecordBatch(route string, in *privguard.Input, entries []BatchEntry)
}

// BatchEntry is one subject's decision in a batch.
type BatchEntry struct {
	Subject  privguard.SubjectID
	Consent  string // the consent state the decision saw
	Decision *privguard.Decision
}

// RecordBatch gives entries to rec: at once if it is a BatchRecorder, one by one otherwise.
func RecordBatch(rec Recorder, route string, in *privguard.Input, entries []BatchEntry) {
	if br, ok := rec.(BatchRecorder); ok {
		br.RecordBatch(route, in, entries)
		return
	}
	for _, e := range entries {
		one := *in
		one.Subject, one.Consent.State = e.Subject, e.Consent
		rec.Record(route, &one, e.Decision)
	}
}

// Discloser checks and logs provisions of personal data to recipients. Disclose returns
// a reason for a provision refused (transfer.no_mechanism, transfer.threshold), an error
// for one it could not log; either way the data must not be provided.
type Discloser interface {
	Disclose(ctx context.Context, p privguard.Provision) (privguard.Reason, error)
}

// FieldCrypter seals and opens fields of JSON documents for a subject (vault.Vault
// implements it): routes with Encrypt fields have them sealed in request bodies before the
// handler (and its database) sees them, and opened in responses. SealJSON's error wraps
// privguard.ErrInvalid for a value that only looks sealed (400); any other is a 503.
type FieldCrypter interface {
	SealJSON(ctx context.Context, subject privguard.SubjectID, doc []byte, paths []string) ([]byte, error)
	OpenJSON(ctx context.Context, subject privguard.SubjectID, doc []byte, paths []string) ([]byte, error)
}

// BatchFactsReader is an optional capability of a FactsReader: the facts of many subjects
// asked about the same use, at once. fn may be called concurrently, in any order.
// consent.Ledger implements it with batched lookups.
type BatchFactsReader interface {
	FactsBatch(ctx context.Context, in privguard.Input, subjects []privguard.SubjectID, fn func(i int, c privguard.ConsentFacts, f privguard.SubjectFacts)) error
}

// Locator says where a request carries a subject id (exactly one field set): a path
// wildcard of the route's pattern, a header, a query parameter, or a top-level field of a
// JSON body. For a batch, JSON names a top-level field holding an array of subject ids.
type Locator struct {
	Path   string
	Header string
	Query  string
	JSON   string
}

func (l Locator) set() int {
	n := 0
	for _, s := range []string{l.Path, l.Header, l.Query, l.JSON} {
		if s != "" {
			n++
		}
	}
	return n
}

// Route maps requests to a purpose, data categories and a subject.
type Route struct {
	// Match is a net/http ServeMux pattern, such as "GET /api/profiles/{id}".
	Match string
	// Pass declares that the route handles no personal data (health checks, static
	// assets): its requests reach the handler without a decision, only stripped of
	// privguard's headers. A pass route has no purpose, subject, fields or encryption.
	Pass bool
	// Purpose is the route's purpose; the default when Purposes lets callers choose.
	Purpose privguard.Purpose
	// Purposes, if set, are the purposes a caller may declare with X-Privguard-Purpose.
	Purposes []privguard.Purpose
	// Fields maps dotted JSON paths of the response ("email", "profile.phone") to the data
	// categories they hold; they are dropped or masked as the decision says. Arrays on the
	// path are walked element by element.
	Fields map[string]privguard.DataCategory
	// Subject locates the one subject the request is about.
	Subject Locator
	// Subjects locates a batch of subjects (a campaign's recipients) in a JSON body field;
	// the handler sees only those that may be contacted.
	Subjects Locator
	// Channel is the outreach channel, for frequency limits. If empty, it is derived from
	// the purpose: marketing.communications.sms (or a purpose below it) is "sms", and so
	// for email, push and wechat.
	Channel string
	// Recipient names the handler the route provides data to (third-party sharing,
	// cross-border transfer): consent must be separate consent for that recipient.
	Recipient string
	// Role is the calling service's role, as the policy sees it.
	Role string
	// PIA names the impact assessment the route's processing rests on (Input.PIAID): the
	// policy then accepts only that one as covering it. Empty: the policy finds a current
	// assessment covering the use, where one is needed (sensitive data, automated decisions,
	// large-scale profiling, a recipient, a transfer abroad).
	PIA string
	// Encrypt lists fields sealed in JSON request bodies and opened in responses: dotted
	// paths, or data categories of Fields (every field of the category). Needs Crypter.
	Encrypt []string
}

// Config configures [New].
type Config struct {
	Routes  []Route
	Decider Decider
	Facts   FactsReader
	// Regime is the law that applies to the subjects of this service.
	Regime privguard.Regime
	// Timeout bounds a request's decisions; zero means DefaultDecisionTimeout.
	Timeout time.Duration
	// BatchTimeout bounds the decisions for a batch of subjects; zero means
	// DefaultBatchTimeout.
	BatchTimeout time.Duration
	// MaxBody bounds a request body read to find subjects; zero means DefaultMaxBody.
	MaxBody int64
	// MaxResponse bounds a response body buffered for minimisation; zero means
	// DefaultMaxResponse.
	MaxResponse int
	// Recorder, if set, receives every decision (the decision log).
	Recorder Recorder
	// Crypter seals and opens the routes' Encrypt fields.
	Crypter FieldCrypter
	// Discloser, if set, checks and logs every allowed request on a route with a Recipient
	// before the handler sees it (disclosure.Gate: the disclosure log, transfer mechanisms,
	// the cross-border counts). A provision it refuses is denied with its reason; one it
	// cannot log is refused (503).
	Discloser Discloser
	// Contacts, if set, counts contacts per subject and channel on routes with a Channel, for
	// the policy's frequency limits.
	Contacts ContactCounter
	// AllowUncounted names the channels whose sends go ahead uncounted when Contacts is a
	// [ContactReserver] that fails (a shared counter that does not answer); such an allow
	// carries the reason frequency.uncounted, so the decision log says so. On every other
	// channel the send is refused: 503 frequency-unavailable for one subject, the reason
	// frequency.unavailable for each subject of a batch.
	AllowUncounted map[string]bool
	// DenyUnmatched denies (403, recorded) requests no route matches. By default they reach
	// the handler unenforced, stripped of privguard's headers: right when the middleware
	// wraps only handlers whose every route is in the table, wrong in front of a whole
	// service (the sidecar denies by default).
	DenyUnmatched bool
	// StrictPaths refuses (400) requests a more lenient router than net/http's could send
	// somewhere else: encoded slashes, dot segments, empty segments, matrix parameters,
	// double-encoded escapes, method overrides, malformed query strings, and paths that
	// differ from a route only by case or a trailing slash; and (405) an enforced path
	// under a method no route has. The sidecar turns it on by default.
	StrictPaths bool
	// Callers, if set, authenticates requests that carry [CallerHeader]: an unknown or
	// revoked credential is refused (401 caller-unknown), a purpose the caller is not
	// scoped to denied (403 caller.purpose_not_allowed, recorded with the caller's name).
	// If nil, a request carrying the header is refused as from an unknown caller.
	Callers Callers
	// Logger receives errors (never personal data). If nil, nothing is logged.
	Logger *slog.Logger
}

// validate checks c and fills defaults. Errors name the route and field.
func (c *Config) validate() error {
	var errs []error
	if c.Decider == nil {
		errs = append(errs, errors.New("Decider is nil"))
	}
	if c.Facts == nil {
		errs = append(errs, errors.New("Facts is nil"))
	}
	if !c.Regime.Valid() {
		errs = append(errs, fmt.Errorf("Regime %q: want pipl or gdpr", c.Regime))
	}
	seen := map[string]bool{}
	for i, r := range c.Routes {
		at := fmt.Sprintf("Routes[%d] (%s)", i, r.Match)
		if r.Match == "" || seen[r.Match] {
			errs = append(errs, fmt.Errorf("%s: Match is empty or repeated", at))
		}
		seen[r.Match] = true
		if r.Pass {
			if r.Purpose != "" || len(r.Purposes) > 0 || r.Subject.set()+r.Subjects.set() > 0 || len(r.Fields) > 0 ||
				len(r.Encrypt) > 0 || r.Channel != "" || r.Recipient != "" || r.Role != "" || r.PIA != "" {
				errs = append(errs, fmt.Errorf("%s: a Pass route has no purpose, subject, fields, encryption, channel, recipient, role or assessment", at))
			}
			continue
		}
		if r.Purpose == "" && len(r.Purposes) == 0 {
			errs = append(errs, fmt.Errorf("%s: no Purpose", at))
		}
		for _, p := range append([]privguard.Purpose{r.Purpose}, r.Purposes...) {
			if p != "" && p.Validate() != nil {
				errs = append(errs, fmt.Errorf("%s: purpose %q is malformed", at, p))
			}
		}
		if n := r.Subject.set() + r.Subjects.set(); n != 1 {
			errs = append(errs, fmt.Errorf("%s: set exactly one of Subject.{Path,Header,Query,JSON} or Subjects.JSON", at))
		}
		if r.Subjects.set() == 1 && r.Subjects.JSON == "" {
			errs = append(errs, fmt.Errorf("%s: Subjects is read from a JSON body field only", at))
		}
		if r.Subject.Path != "" && !strings.Contains(r.Match, "{"+r.Subject.Path+"}") {
			errs = append(errs, fmt.Errorf("%s: Subject.Path %q is not a wildcard of the pattern", at, r.Subject.Path))
		}
		for path, cat := range r.Fields {
			if path == "" || cat.Validate() != nil {
				errs = append(errs, fmt.Errorf("%s: Fields[%q] = %q is malformed", at, path, cat))
			}
		}
		if len(r.Encrypt) > 0 && c.Crypter == nil {
			errs = append(errs, fmt.Errorf("%s: Encrypt needs a Crypter (the vault)", at))
		}
		if (len(r.Encrypt) > 0 || len(r.Fields) > 0) && r.Subjects.JSON != "" {
			// A batch is decided subject by subject: there is no one decision to minimise
			// its response by, so a Fields map there would silently do nothing.
			errs = append(errs, fmt.Errorf("%s: Fields and Encrypt are for single-subject routes", at))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("middleware: %w", errors.Join(errs...))
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultDecisionTimeout
	}
	if c.BatchTimeout == 0 {
		c.BatchTimeout = DefaultBatchTimeout
	}
	if c.MaxBody == 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.MaxResponse == 0 {
		c.MaxResponse = DefaultMaxResponse
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// checkPatterns registers every pattern on a scratch mux, which panics on a malformed or
// conflicting pattern: turn that into an error.
func checkPatterns(routes []Route) (err error) {
	mux := http.NewServeMux()
	for _, r := range routes {
		func() {
			defer func() {
				if v := recover(); v != nil {
					err = errors.Join(err, fmt.Errorf("middleware: route %q: %v", r.Match, v))
				}
			}()
			mux.Handle(r.Match, http.NotFoundHandler())
		}()
	}
	return err
}
