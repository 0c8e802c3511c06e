package disclosure

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/journal"
)

// Log is the journal log of provisions.
const Log = "disclosures"

// Mechanism is a transfer mechanism.
type Mechanism string

// Mechanisms under PIPL (Art. 38, the 2024 provisions) and GDPR (Arts. 45-49).
const (
	CACAssessment    Mechanism = "cac_assessment"
	StandardContract Mechanism = "standard_contract"
	Certification    Mechanism = "certification"
	Exemption        Mechanism = "exemption"
	Adequacy         Mechanism = "adequacy"
	SCC              Mechanism = "scc"
	BCR              Mechanism = "bcr"
	Derogation       Mechanism = "derogation"
)

// Regime returns the regime the mechanism belongs to ("" if unknown).
func (m Mechanism) Regime() privguard.Regime {
	switch m {
	case CACAssessment, StandardContract, Certification, Exemption:
		return privguard.RegimePIPL
	case Adequacy, SCC, BCR, Derogation:
		return privguard.RegimeGDPR
	}
	return ""
}

// Bounds are the most people a PIPL mechanism lets leave the PRC in a calendar year: All,
// people in total; Sensitive, people with sensitive data. Zero means none; -1, no bound.
type Bounds struct{ All, Sensitive int64 }

// Thresholds of the 2024 provisions.
const (
	ThresholdExempt    = 100_000   // fewer than this, without sensitive data: exempt (Art. 5(4))
	ThresholdAssess    = 1_000_000 // this many or more: a CAC assessment (Art. 7)
	ThresholdSensitive = 10_000    // this many or more with sensitive data: a CAC assessment
)

// Bounds returns m's bounds under PIPL.
func (m Mechanism) Bounds() Bounds {
	switch m {
	case Exemption:
		return Bounds{All: ThresholdExempt - 1, Sensitive: 0}
	case StandardContract, Certification:
		return Bounds{All: ThresholdAssess - 1, Sensitive: ThresholdSensitive - 1}
	case CACAssessment:
		return Bounds{All: -1, Sensitive: -1}
	}
	return Bounds{}
}

// Transfer is a recipient's transfer mechanism.
type Transfer struct {
	Mechanism Mechanism `json:"mechanism"`
	Ref       string    `json:"ref,omitempty"`
	// Date it took effect (zero: in effect); Expires, when it lapses (zero: never).
	Date    time.Time `json:"date,omitzero"`
	Expires time.Time `json:"expires,omitzero"`
}

// current reports whether t is in effect at now.
func (t Transfer) current(now time.Time) bool {
	return (t.Date.IsZero() || !now.Before(t.Date)) && (t.Expires.IsZero() || now.Before(t.Expires))
}

// Recipient is a party data is provided to.
type Recipient struct {
	Name string
	// Country is its ISO 3166-1 alpha-2 code; "" (undeclared) counts as abroad.
	Country   string
	Role      string // processor, handler, joint
	Transfers []Transfer
}

// Abroad reports whether data provided to a recipient in country leaves the regime's
// territory (privguard.Abroad): under PIPL, anywhere but the mainland; under GDPR, outside
// the EEA; an undeclared country is abroad.
func Abroad(regime privguard.Regime, country string) bool { return privguard.Abroad(regime, country) }

// Config configures a [Gate].
type Config struct {
	Log  journal.Store
	Sets journal.SetStore
	// Key is the HMAC key of the people counted (at least 32 bytes); keep it in the store
	// (a secret), so that every replica counts one person once.
	Key        []byte
	Recipients []Recipient
	// Sensitive reports sensitive categories (nil: privguard.DataCategory.Sensitive).
	Sensitive func(privguard.DataCategory) bool
	Now       func() time.Time // nil: time.Now
	// Logger receives the threshold warnings (counts, never people). Nil: discard.
	Logger *slog.Logger
}

// Gate checks, counts and logs provisions. Safe for concurrent use.
type Gate struct {
	cfg        Config
	log        *journal.Batcher
	recipients map[string]Recipient

	mu     sync.Mutex
	counts map[string]int64 // set name → size last seen
	// warned remembers the marks already warned about, per set.
	warned map[string]int64
	people atomic.Int64 // this year's PIPL counts, for the metrics
	sens   atomic.Int64
}

// New returns a gate; Close stops its writer.
func New(cfg Config) (*Gate, error) {
	if cfg.Log == nil || cfg.Sets == nil {
		return nil, errors.New("disclosure: a journal store and a set store are needed")
	}
	if len(cfg.Key) < 32 {
		return nil, errors.New("disclosure: the counting key must be at least 32 bytes")
	}
	if cfg.Sensitive == nil {
		cfg.Sensitive = privguard.DataCategory.Sensitive
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	j, err := journal.Open(cfg.Log, Log, cfg.Now)
	if err != nil {
		return nil, err
	}
	g := &Gate{cfg: cfg, log: journal.NewBatcher(j), recipients: map[string]Recipient{}, counts: map[string]int64{}, warned: map[string]int64{}}
	for _, r := range cfg.Recipients {
		g.recipients[r.Name] = r
	}
	return g, nil
}

// Close stops the writer once the entries queued are written.
func (g *Gate) Close() error {
	g.log.Close()
	return nil
}

// append logs e, waiting for its group's write.
func (g *Gate) append(ctx context.Context, e *Entry) error {
	if err := g.log.Append(ctx, e); err != nil {
		return fmt.Errorf("disclosure: log the provision: %w: %w", err, privguard.ErrUnavailable)
	}
	return nil
}

// Entry is the body of a disclosure-log entry.
type Entry struct {
	Kind       string                   `json:"kind"`
	Route      string                   `json:"route,omitempty"`
	Recipient  string                   `json:"recipient"`
	Country    string                   `json:"country,omitempty"`
	Role       string                   `json:"role,omitempty"`
	Purpose    privguard.Purpose        `json:"purpose"`
	Categories []privguard.DataCategory `json:"categories,omitempty"`
	Sensitive  bool                     `json:"sensitive,omitempty"`
	Regime     privguard.Regime         `json:"regime"`
	People     int                      `json:"people"`
	Abroad     bool                     `json:"abroad,omitempty"`
	Transfer   *Transfer                `json:"transfer,omitempty"`
	Decision   string                   `json:"decision,omitempty"`
}

// Disclose checks p, counts its people if it leaves the PRC, and logs it. It returns a
// reason if p is refused (transfer.no_mechanism, transfer.threshold); an error if it could
// not be counted or logged (p must not go ahead: privguard.ErrUnavailable).
func (g *Gate) Disclose(ctx context.Context, p privguard.Provision) (privguard.Reason, error) {
	now := g.cfg.Now()
	e := g.entry(p, "route", now)
	if e.Abroad {
		if e.Transfer == nil {
			return privguard.ReasonTransferNoMechanism, nil
		}
		if reason, err := g.count(ctx, p, *e.Transfer, e.Sensitive, now); reason != "" || err != nil {
			return reason, err
		}
	}
	if err := g.append(ctx, &e); err != nil {
		return "", err
	}
	return "", nil
}

// Record logs p without checking or counting it: a notice to a recipient about people
// whose data it holds already (an erasure, a correction, a restriction), which must go
// whatever the transfer's state, since it serves the subject's rights.
func (g *Gate) Record(ctx context.Context, p privguard.Provision) error {
	e := g.entry(p, "notice", g.cfg.Now())
	return g.append(ctx, &e)
}

// entry is p's log entry (Kind defaults to kind), with the recipient's country and role
// and, for a transfer abroad, the mechanism in force at now (nil if none is).
func (g *Gate) entry(p privguard.Provision, kind string, now time.Time) Entry {
	rc := g.recipients[p.Recipient]
	e := Entry{Kind: p.Kind, Route: p.Route, Recipient: p.Recipient, Country: rc.Country, Role: rc.Role,
		Purpose: p.Purpose, Categories: p.Categories, Regime: p.Regime, People: len(p.Subjects), Decision: p.Decision,
		Abroad: Abroad(p.Regime, rc.Country), Sensitive: slices.ContainsFunc(p.Categories, g.cfg.Sensitive)}
	if e.Kind == "" {
		e.Kind = kind
	}
	if e.Abroad {
		if t, ok := strongest(rc.Transfers, p.Regime, now); ok {
			e.Transfer = &t
		}
	}
	return e
}

// strongest returns the current mechanism of transfers for regime with the widest bounds.
func strongest(transfers []Transfer, regime privguard.Regime, now time.Time) (Transfer, bool) {
	var best Transfer
	found := false
	for _, t := range transfers {
		if t.Mechanism.Regime() != regime || !t.current(now) {
			continue
		}
		if !found || wider(t.Mechanism.Bounds(), best.Mechanism.Bounds()) {
			best, found = t, true
		}
	}
	return best, found
}

func wider(a, b Bounds) bool {
	if a.All < 0 {
		return b.All >= 0
	}
	return b.All >= 0 && a.All > b.All
}

// Year returns the calendar year of t in China Standard Time, the year the 2024
// provisions count in.
func Year(t time.Time) int { return t.In(cst).Year() }

var cst = time.FixedZone("CST", 8*3600)

// SetName returns the name of the set of people counted for regime in year; sensitive
// names the set of those with sensitive data.
func SetName(regime privguard.Regime, year int, sensitive bool) string {
	n := "xb." + string(regime) + "." + strconv.Itoa(year)
	if sensitive {
		n += ".sensitive"
	}
	return n
}

// count adds p's people to this year's counts under t's bounds.
func (g *Gate) count(ctx context.Context, p privguard.Provision, t Transfer, sensitive bool, now time.Time) (privguard.Reason, error) {
	if len(p.Subjects) == 0 {
		return "", nil
	}
	members := make([][]byte, len(p.Subjects))
	for i, s := range p.Subjects {
		m := hmac.New(sha256.New, g.cfg.Key)
		m.Write([]byte(s))
		members[i] = m.Sum(nil)[:16]
	}
	b := Bounds{All: -1, Sensitive: -1}
	if p.Regime == privguard.RegimePIPL {
		b = t.Mechanism.Bounds()
	}
	year := Year(now)
	if sensitive {
		if b.Sensitive == 0 {
			g.cfg.Logger.Warn("privguard: a transfer of sensitive data abroad refused: the recipient's mechanism allows none",
				"recipient", p.Recipient, "mechanism", t.Mechanism)
			return privguard.ReasonTransferThreshold, nil
		}
		if reason, err := g.add(ctx, SetName(p.Regime, year, true), members, b.Sensitive, p); reason != "" || err != nil {
			return reason, err
		}
	}
	return g.add(ctx, SetName(p.Regime, year, false), members, b.All, p)
}

func (g *Gate) add(ctx context.Context, set string, members [][]byte, bound int64, p privguard.Provision) (privguard.Reason, error) {
	limit := bound
	if limit < 0 {
		limit = 0 // no bound
	}
	_, size, err := g.cfg.Sets.AddToSet(ctx, set, members, limit)
	if errors.Is(err, journal.ErrSetLimit) {
		g.cfg.Logger.Warn("privguard: a transfer abroad refused: it would take the people exported this year past its mechanism's bound",
			"set", set, "people", size, "bound", bound, "recipient", p.Recipient)
		return privguard.ReasonTransferThreshold, nil
	}
	if err != nil {
		return "", fmt.Errorf("disclosure: count the people of a transfer: %w", err)
	}
	g.seen(set, size)
	return "", nil
}

// marks returns the thresholds a set is watched against.
func marks(set string) []int64 {
	if len(set) > 10 && set[len(set)-10:] == ".sensitive" {
		return []int64{ThresholdSensitive}
	}
	return []int64{ThresholdExempt, ThresholdAssess}
}

// seen records a set's size and warns as it approaches (80 %, 90 %) and reaches each
// threshold, once per mark per process.
func (g *Gate) seen(set string, size int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.counts[set] = max(g.counts[set], size)
	if set == SetName(privguard.RegimePIPL, Year(g.cfg.Now()), false) {
		g.people.Store(g.counts[set])
	} else if set == SetName(privguard.RegimePIPL, Year(g.cfg.Now()), true) {
		g.sens.Store(g.counts[set])
	}
	for _, t := range marks(set) {
		for _, mark := range []int64{t * 8 / 10, t * 9 / 10, t} {
			if size >= mark && g.warned[set] < mark {
				g.warned[set] = mark
				g.cfg.Logger.Warn("privguard: people exported this year near a cross-border threshold",
					"set", set, "people", size, "threshold", t, "at", fmt.Sprintf("%d%%", mark*100/t))
			}
		}
	}
}

// Counts returns this year's PIPL counts as last seen by this process (for the metrics).
func (g *Gate) Counts() (people, sensitive int64) { return g.people.Load(), g.sens.Load() }

// Load reads this year's counts from the store (at start, so that the metrics and the
// warnings know what other processes counted).
func (g *Gate) Load(ctx context.Context) error {
	year := Year(g.cfg.Now())
	for _, sens := range []bool{false, true} {
		set := SetName(privguard.RegimePIPL, year, sens)
		n, err := g.cfg.Sets.SetSize(ctx, set)
		if err != nil {
			return fmt.Errorf("disclosure: read the cross-border count: %w", err)
		}
		g.mu.Lock()
		g.counts[set] = n
		// Marks already passed were warned about by whoever passed them.
		for _, t := range marks(set) {
			for _, mark := range []int64{t * 8 / 10, t * 9 / 10, t} {
				if n >= mark {
					g.warned[set] = mark
				}
			}
		}
		g.mu.Unlock()
		g.seen(set, n)
	}
	return nil
}

// Journal returns the store the gate logs to, for reading the log.
func (g *Gate) Journal() journal.Store { return g.cfg.Log }
