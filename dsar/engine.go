package dsar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/privguard/privguard"
)

// Retry defaults.
const (
	DefaultBaseBackoff = time.Second
	DefaultMaxBackoff  = 10 * time.Minute
	DefaultWorkers     = 8
	DefaultBatch       = 2000
	DefaultLeaseBatch  = 256
	// DefaultTaskTimeout bounds one task on one store: a store that stops answering fails
	// the task (retried later) instead of holding the engine.
	DefaultTaskTimeout = 2 * time.Minute
)

// Config configures [New].
type Config struct {
	Store      Store
	Connectors []Connector
	// Deadlines computes due dates; nil means NewDeadlines(nil, 0).
	Deadlines *Deadlines
	// OnErased runs once every store erased a deletion's subject (shred the vault keys,
	// record the erasure in the consent ledger). An error keeps the request open and retried.
	OnErased func(ctx context.Context, subject privguard.SubjectID) error
	// OnErasedAll, if set, does OnErased's work for every deletion of a batch whose stores
	// all erased it, at once (one vault transaction, the ledger's records grouped). If it
	// fails, each request falls back to OnErased. It must be idempotent, as OnErased is.
	OnErasedAll func(ctx context.Context, subjects []privguard.SubjectID) error
	// OnSubjectFact applies restriction and objection requests (through the consent
	// ledger). Nil completes them without action.
	OnSubjectFact func(ctx context.Context, r Request) error
	BaseBackoff   time.Duration
	MaxBackoff    time.Duration
	// Recourse overrides DefaultRecourse per regime (name your authority and court).
	Recourse map[privguard.Regime]string
	// DefaultRegime applies to requests that do not name one (default PIPL, whose deadline
	// is the shorter): a subject need not know which law applies (DSR-01).
	DefaultRegime privguard.Regime
	// Recipients are told of every erasure, rectification and restriction (GDPR Art. 19):
	// each is one more task of those requests.
	Recipients []RecipientNotifier
	// Workers is how many requests Step advances at once (default DefaultWorkers).
	Workers int
	// Batch is how many requests Step takes together (default DefaultBatch): their
	// erasures on a store that erases in batches (BatchEraser) are one call, and their
	// writes one transaction if the Store is a BatchStore.
	Batch int
	// TaskTimeout bounds one task on one store (default DefaultTaskTimeout).
	TaskTimeout time.Duration
	// Sealer encrypts access results at rest (vault.Vault); access, portability and
	// categories requests are refused without one.
	Sealer Sealer
	// Results stores the sealed results; nil means Store, if it is a ResultStore.
	Results ResultStore
	// Disclose supplies what an access answer says beside the data (purposes, recipients,
	// retention, source, consent history, rights). Nil leaves those sections empty.
	Disclose func(ctx context.Context, r Request) (Disclosure, error)
	// Explain answers explanation requests (DSR-14): per automated-decision purpose, its
	// logic, model and features and the subject's recent decisions. Explanation requests
	// are refused without it. An error keeps the request open and retried.
	Explain func(ctx context.Context, r Request) (Explanation, error)
	// Notifier, if it is a LinkNotifier, sends the subject the download link of a
	// finished access request.
	Notifier Notifier
	// ResultTTL is how long a package can be downloaded (default DefaultResultTTL).
	ResultTTL time.Duration
	// Replica names this process among the replicas that share a Store with the Leaser
	// capability: the holder of its leases. It must be unique among the replicas running
	// at once. Default: the host name. Unused without a Leaser.
	Replica string
	// LeaseTTL is how long a lease lasts unless renewed (default DefaultLeaseTTL). Work in
	// flight renews its leases every LeaseTTL/3.
	LeaseTTL time.Duration
	// LeaseBatch is how many requests a replica leases at a time on a shared store (default
	// DefaultLeaseBatch, at most Batch): the work spreads over the replicas in parts of this
	// size, and a replica that dies loses at most this much unwritten progress, which the
	// next holder does again (store tasks are idempotent).
	LeaseBatch int
	// SweepBatch is how many rows one statement of a retention run changes (default
	// DefaultSweepBatch); SweepPause the pause between its statements on one store (default
	// DefaultSweepPause; negative: none), which keeps the store's load low; SweepBudget how
	// long a retention task works in one round (default DefaultSweepBudget, at most half
	// of TaskTimeout) before its progress is written.
	// RetentionOf, if set, states the retention rules that apply to a data category; an
	// access package names them beside each category held (PIPL Art. 17(1)(3), GDPR Art.
	// 15(1)(d)).
	RetentionOf func(privguard.DataCategory) []string
	SweepBatch  int
	SweepPause  time.Duration
	SweepBudget time.Duration
	Now         func() time.Time
	Logger      *slog.Logger
}

// Engine runs requests. All methods are safe for concurrent use; requests are processed
// one step at a time by [Engine.Step] (or the loop of [Engine.Run]). The engine reads in
// one direction: intake (intake.go, verify.go, manage.go) stores requests; the scheduler
// (scheduler.go) finds the due ones, or leases them from a shared store (lease.go), and
// runs their rounds; the core (core.go) decides each round's next work from a request and
// an event; the executors (execute.go, tasks.go, recipients.go, result.go) do the work.
type Engine struct {
	cfg Config
	// leaser is cfg.Store if it shares requests among replicas; nil when alone.
	leaser     Leaser
	connectors map[string]Connector
	names      []string
	// recipients are keyed by their task name ("recipient:" + name).
	recipients     map[string]RecipientNotifier
	recipientNames []string
	mu             sync.Mutex // serialises request reads-then-writes
	stepMu         sync.Mutex // one Step at a time
	// open indexes open requests by subject and type (the duplicate check), loaded from the
	// store on first use and kept current by put. Guarded by mu.
	open   map[openKey]string
	active map[string]bool // ids of requests not yet final
	// results maps the requests whose results still exist to when they must be destroyed.
	results map[string]time.Time
	// personal lists, per subject, the requests that hold its personal data (holdsPersonal),
	// to scrub when the subject is erased.
	personal map[privguard.SubjectID][]string
	// bySubject indexes every request of a subject (OfSubject), alone with the store.
	bySubject map[privguard.SubjectID][]string
	// unscrubbed are erasures finished before requests were scrubbed (an older data file).
	unscrubbed []string
	// batch, while Step writes a batch of rounds, holds what put wrote since (see
	// commitBatch). Guarded by mu.
	batch *writeBatch
}

type openKey struct {
	subject privguard.SubjectID
	typ     Type
	// transferTo keeps a copy for the subject and a transfer to another controller apart.
	transferTo string
}

// New returns an engine.
func New(cfg Config) (*Engine, error) {
	if cfg.Store == nil {
		return nil, errors.New("dsar: Config.Store is nil")
	}
	if cfg.Deadlines == nil {
		d, err := NewDeadlines(nil, 0)
		if err != nil {
			return nil, err
		}
		cfg.Deadlines = d
	}
	if cfg.BaseBackoff == 0 {
		cfg.BaseBackoff = DefaultBaseBackoff
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.TaskTimeout <= 0 {
		cfg.TaskTimeout = DefaultTaskTimeout
	}
	if cfg.SweepBatch <= 0 {
		cfg.SweepBatch = DefaultSweepBatch
	}
	if cfg.SweepPause == 0 {
		cfg.SweepPause = DefaultSweepPause
	}
	if cfg.SweepBudget <= 0 {
		cfg.SweepBudget = DefaultSweepBudget
	}
	if cfg.DefaultRegime == "" {
		cfg.DefaultRegime = privguard.RegimePIPL
	}
	if cfg.ResultTTL <= 0 {
		cfg.ResultTTL = DefaultResultTTL
	}
	if cfg.Results == nil {
		cfg.Results, _ = cfg.Store.(ResultStore)
	}
	if cfg.Sealer != nil && cfg.Results == nil {
		return nil, errors.New("dsar: Config.Sealer is set but there is no ResultStore")
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.LeaseBatch <= 0 {
		cfg.LeaseBatch = DefaultLeaseBatch
	}
	cfg.LeaseBatch = min(cfg.LeaseBatch, cfg.Batch)
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if _, shared := cfg.Store.(Leaser); shared && cfg.Replica == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			return nil, fmt.Errorf("dsar: Config.Replica is empty and the host has no name: %v: %w", err, privguard.ErrInvalid)
		}
		cfg.Replica = host
	}
	e := &Engine{cfg: cfg, connectors: map[string]Connector{}, recipients: map[string]RecipientNotifier{}}
	e.leaser, _ = cfg.Store.(Leaser)
	for _, rn := range cfg.Recipients {
		name := recipientTask(rn.Name())
		if _, dup := e.recipients[name]; dup {
			return nil, fmt.Errorf("dsar: two recipients named %q", rn.Name())
		}
		e.recipients[name] = rn
		e.recipientNames = append(e.recipientNames, name)
	}
	slices.Sort(e.recipientNames)
	for _, c := range cfg.Connectors {
		if _, dup := e.connectors[c.Name()]; dup {
			return nil, fmt.Errorf("dsar: two connectors named %q", c.Name())
		}
		e.connectors[c.Name()] = c
		e.names = append(e.names, c.Name())
	}
	slices.Sort(e.names)
	return e, nil
}

// backoff is exponential with full jitter, capped.
func (e *Engine) backoff(attempt int) time.Duration {
	d := e.cfg.BaseBackoff << min(max(attempt, 1)-1, 20)
	if d <= 0 || d > e.cfg.MaxBackoff {
		d = e.cfg.MaxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

// describe names a failure without its text, which could hold personal data: the store,
// the operation if a connector named it, and the kind ("crm: erase failed: timeout").
func describe(store string, err error) string {
	var ce *ConnectorError
	if errors.As(err, &ce) {
		return ce.Connector + ": " + ce.Op + " failed: " + string(KindOf(err))
	}
	return store + ": failed: " + string(KindOf(err))
}
