package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown"

	"github.com/privguard/privguard"
)

// Query is the rule every privguard policy defines: {allow, reasons, obligations}.
const Query = "data.privguard.decision"

// Config configures [New].
type Config struct {
	// Taxonomy supplies data.privguard.purposes. If nil, the default purposes are used.
	Taxonomy *privguard.Taxonomy
	// Frequency supplies data.privguard.frequency. If nil, DefaultFrequency is used.
	Frequency map[string]FrequencyLimit
	// Modules are the policy's Rego modules by file name. If nil, the embedded default
	// bundle's modules (without its tests) are used.
	Modules map[string]string
	// CacheSize is how many decisions a memo generation holds at first; zero means
	// DefaultCacheSize, negative disables memoisation. A memo whose working set is larger
	// doubles its generations while two of them fit in MemoBytes.
	CacheSize int
	// MemoBytes bounds the memo's memory (an estimate: keys, decisions and bookkeeping of
	// both generations). Zero means DefaultMemoBytes.
	MemoBytes int64
	// MemoExactContacts keys memoised decisions by the exact contact count. By default the
	// key holds only whether the count is below the channel's limit in Frequency, and the
	// contact_budget obligation of a memoised decision is recomputed for the count (limit
	// minus count): the contract of the default policy, which reads subject.contacts only
	// to compare it with data.privguard.frequency[channel].max and to report what remains.
	// Set it for a policy that uses the count in any other way.
	MemoExactContacts bool
	// Logger receives operational messages. If nil, nothing is logged.
	Logger *slog.Logger
	// Assessments supply data.privguard.assessments: the impact assessments high-impact
	// processing needs (see [Assessment]). With none, such processing is denied
	// (pia.required). IDs must be unique.
	Assessments []Assessment
	// Recipients supply data.privguard.recipients: the parties routes provide data to, with
	// their countries, for telling a transfer abroad. Names must be unique.
	Recipients []Recipient
	// Location is the time zone whose calendar date is input.today, compared with the
	// assessments' dates. If nil, UTC.
	Location *time.Location
	// Now is the clock input.today is read from for an Input without a Time. If nil, the
	// system clock, read at every midnight of Location and once a minute (not per decision).
	Now func() time.Time
}

// Engine evaluates the policy. Create it with [New]; [Engine.Reload] swaps in a new policy
// atomically.
type Engine struct {
	cur       atomic.Pointer[compiled]
	data      map[string]any
	limits    map[string]int // contact limits per channel, as in data.privguard.frequency
	terms     *terms         // for building inputs and reading results
	noCancel  topdown.Cancel // for contexts that cannot be cancelled
	exact     bool           // Config.MemoExactContacts
	cacheSize int
	memoBytes int64
	log       *slog.Logger
	loc       *time.Location
	now       func() time.Time // Config.Now; nil: clock
	clock     *dayClock
	ids       atomic.Uint64
	hits      atomic.Uint64
	evals     atomic.Uint64

	mu       sync.Mutex // serialises reloads
	lastErr  error
	reloads  int
	failures int
}

// compiled is one version of the policy: its prepared query and its memo.
type compiled struct {
	pq       rego.PreparedEvalQuery
	revision string
	idPrefix string
	cache    *memo
}

// Stats counts decisions answered from the memo and evaluated by OPA.
type Stats struct {
	MemoHits    uint64
	Evaluations uint64
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats { return Stats{MemoHits: e.hits.Load(), Evaluations: e.evals.Load()} }

// New compiles the policy into a prepared query. A policy that does not compile is an error.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.Taxonomy == nil {
		t, err := privguard.NewTaxonomy(privguard.DefaultPurposes())
		if err != nil {
			return nil, err
		}
		cfg.Taxonomy = t
	}
	if cfg.Frequency == nil {
		cfg.Frequency = DefaultFrequency()
	}
	if cfg.Modules == nil {
		m, err := DefaultModules()
		if err != nil {
			return nil, err
		}
		cfg.Modules = m
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MemoBytes <= 0 {
		cfg.MemoBytes = DefaultMemoBytes
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	data, err := dataWith(cfg)
	if err != nil {
		return nil, err
	}
	e := &Engine{data: data, cacheSize: cfg.CacheSize, memoBytes: cfg.MemoBytes,
		exact: cfg.MemoExactContacts, limits: make(map[string]int, len(cfg.Frequency)), log: cfg.Logger,
		terms: newTerms(cfg.Taxonomy, cfg.Frequency, termStrings(cfg)...), noCancel: topdown.NewCancel(), loc: cfg.Location, now: cfg.Now}
	for ch, l := range cfg.Frequency {
		e.limits[ch] = l.Max
	}
	if e.now == nil {
		e.clock = startDayClock(e, cfg.Location)
	}
	c, err := e.compile(ctx, cfg.Modules)
	if err != nil {
		return nil, err
	}
	e.cur.Store(c)
	return e, nil
}

// compile prepares modules with the engine's data.
func (e *Engine) compile(ctx context.Context, modules map[string]string) (*compiled, error) {
	opts := []func(*rego.Rego){rego.Query(Query), rego.Store(inmem.NewFromObjectWithOpts(map[string]any{"privguard": e.data}, inmem.OptReturnASTValuesOnRead(true)))}
	names := make([]string, 0, len(modules))
	for name := range modules {
		names = append(names, name)
	}
	slices.Sort(names)
	h := sha256.New()
	for _, name := range names {
		opts = append(opts, rego.Module(name, modules[name]))
		fmt.Fprintf(h, "%s\x00%s\x00", name, modules[name])
	}
	fmt.Fprintf(h, "%v", e.data)
	pq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy: compile: %w", err)
	}
	c := &compiled{pq: pq, revision: hex.EncodeToString(h.Sum(nil))[:16]}
	c.idPrefix = c.revision[:8] + "-"
	if e.cacheSize >= 0 {
		size := e.cacheSize
		if size == 0 {
			size = DefaultCacheSize
		}
		c.cache = newMemo(size, e.memoBytes)
	}
	return c, nil
}

// Reload compiles modules and, if they compile, swaps them in atomically: decisions in
// flight finish on the old policy, the next ones use the new one, and the memo starts
// empty. A policy that does not compile is rejected and the old one keeps serving; the
// error is kept for [Engine.Status].
func (e *Engine) Reload(ctx context.Context, modules map[string]string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.compile(ctx, modules)
	e.reloads++
	if err != nil {
		e.failures++
		e.lastErr = err
		e.log.Error("policy reload rejected; the previous policy keeps serving", "revision", e.cur.Load().revision, "err", err)
		return err
	}
	old := e.cur.Swap(c)
	e.lastErr = nil
	e.log.Info("policy reloaded", "from", old.revision, "to", c.revision)
	return nil
}

// Status describes the policy in service and the last reload.
type Status struct {
	Revision  string
	LastError error // nil when the last reload succeeded (or none was tried)
	Reloads   int
	Failures  int
	MemoHits  uint64
	Evaluated uint64
}

// Status returns the engine's status.
func (e *Engine) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	return Status{Revision: e.cur.Load().revision, LastError: e.lastErr, Reloads: e.reloads, Failures: e.failures,
		MemoHits: e.hits.Load(), Evaluated: e.evals.Load()}
}

// DefaultModules returns the embedded default policy's modules (tests excluded).
func DefaultModules() (map[string]string, error) {
	out := map[string]string{}
	err := fs.WalkDir(Bundle, "bundle", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) != ".rego" || strings.HasSuffix(p, "_test.rego") {
			return err
		}
		b, err := Bundle.ReadFile(p)
		out[p] = string(b)
		return err
	})
	return out, err
}

// Revision identifies the policy and data the engine evaluates.
func (e *Engine) Revision() string { return e.cur.Load().revision }

// Decide returns the decision for in. in.Subject is never shown to the policy, so decisions
// are memoised on the rest of the input and the date (input.today: the date of in.Time, or
// of the engine's clock when it is zero, in Config.Location). An error means no decision:
// fail closed. The slices of the returned Decision are shared with the memo and must not be
// modified.
func (e *Engine) Decide(ctx context.Context, in privguard.Input) (privguard.Decision, error) {
	c := e.cur.Load()
	today := e.today(&in)
	if c.cache == nil {
		d, err := e.eval(ctx, c, &in, today)
		if err != nil {
			return privguard.Decision{}, err
		}
		d.ID = c.decisionID(e.ids.Add(1))
		return d, nil
	}
	limit, bucket := e.contactsBucket(&in)
	var buf [256]byte
	key := appendMemoKey(buf[:0], &in, bucket, e.exact)
	key = append(key, today.date...) // the key is self-delimiting before it: unambiguous
	if d, ok := c.cache.get(key); ok {
		e.hits.Add(1)
		if bucket == contactsBelow && !e.exact {
			d.Obligations = withBudget(d.Obligations, limit-in.Facts.Contacts)
		}
		d.ID = c.decisionID(e.ids.Add(1))
		return d, nil
	}
	d, err := e.eval(ctx, c, &in, today)
	if err != nil {
		return privguard.Decision{}, err
	}
	if e.exact || budgetFollowsLimit(d.Obligations, bucket, limit-in.Facts.Contacts) {
		c.cache.put(string(key), d)
	}
	d.ID = c.decisionID(e.ids.Add(1))
	return d, nil
}

// today returns the date in decides on.
func (e *Engine) today(in *privguard.Input) *day {
	switch {
	case !in.Time.IsZero():
		return dayOf(in.Time, e.loc)
	case e.now != nil:
		return dayOf(e.now(), e.loc)
	}
	return e.clock.cur.Load()
}

// contactsBucket returns the channel's contact limit and where in.Facts.Contacts is
// relative to it.
func (e *Engine) contactsBucket(in *privguard.Input) (limit int, bucket byte) {
	limit, ok := e.limits[in.Channel]
	switch {
	case !ok:
		return 0, contactsNoLimit
	case in.Facts.Contacts < limit:
		return limit, contactsBelow
	default:
		return limit, contactsAtLimit
	}
}

// budgetFollowsLimit reports whether a decision may be memoised under a contacts bucket:
// its contact_budget obligation, if any, is the limit minus the count (so that it can be
// recomputed for another count below the limit). A budget anywhere else (no limit, or at
// the limit) might depend on the exact count, so that decision is not memoised.
func budgetFollowsLimit(obs []privguard.Obligation, bucket byte, remaining int) bool {
	for _, o := range obs {
		if o.Kind == privguard.ObligeContactBudget && (bucket != contactsBelow || o.Remaining != remaining) {
			return false
		}
	}
	return true
}

// withBudget returns obs with the contact budget set to remaining, copied if it changes.
func withBudget(obs []privguard.Obligation, remaining int) []privguard.Obligation {
	for i, o := range obs {
		if o.Kind == privguard.ObligeContactBudget && o.Remaining != remaining {
			obs = slices.Clone(obs)
			obs[i].Remaining = remaining
		}
	}
	return obs
}

// decisionID returns the id of the n-th decision of c.
func (c *compiled) decisionID(n uint64) string {
	var b [40]byte
	return string(strconv.AppendUint(append(b[:0], c.idPrefix...), n, 36))
}

// eval runs the prepared query of c. The input is built as an AST value, the result is
// read as one (no JSON conversion either way), and the evaluation records no metrics.
func (e *Engine) eval(ctx context.Context, c *compiled, in *privguard.Input, today *day) (privguard.Decision, error) {
	e.evals.Add(1)
	var result *ast.Term
	opts := [...]rego.EvalOption{
		rego.EvalParsedInput(e.terms.input(in, today.term)),
		rego.EvalMetrics(metrics.NoOp()),
		rego.EvalGenerateJSON(func(t *ast.Term, _ *rego.EvalContext) (any, error) {
			result = t
			return nil, nil
		}),
		nil,
	}
	n := len(opts) - 1
	if deadline, ok := ctx.Deadline(); ok {
		// The deadline is what bounds an evaluation (a cancelled request's evaluation, which
		// takes microseconds, is let finish): a timer cancels it, rather than OPA's goroutine
		// watching ctx, which would also make a lazily built context (the middleware's)
		// build its channel and timer. Done is not called.
		if err := ctx.Err(); err != nil {
			return privguard.Decision{}, fmt.Errorf("policy: evaluate: %w: %w", err, privguard.ErrUnavailable)
		}
		cancel := topdown.NewCancel()
		t := time.AfterFunc(time.Until(deadline), cancel.Cancel)
		defer t.Stop()
		opts[n] = rego.EvalExternalCancel(cancel)
		n++
	} else if ctx.Done() == nil {
		// Nothing can cancel the evaluation: spare OPA its goroutine watching ctx.
		opts[n] = rego.EvalExternalCancel(e.noCancel)
		n++
	}
	rs, err := c.pq.Eval(ctx, opts[:n]...)
	if err != nil {
		return privguard.Decision{}, fmt.Errorf("policy: evaluate: %w: %w", err, privguard.ErrUnavailable)
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 || result == nil {
		return privguard.Decision{}, fmt.Errorf("policy: %s is undefined: %w", Query, privguard.ErrUnavailable)
	}
	d, err := e.terms.result.parseDecision(result.Value)
	if err != nil {
		return privguard.Decision{}, fmt.Errorf("policy: %w: %w", err, privguard.ErrUnavailable)
	}
	d.Revision = c.revision
	return d, nil
}
