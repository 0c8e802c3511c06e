package retention

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/dsar"
)

// DefaultMaxSubjects is how many subjects one subject-level action (and each list of
// deletions and restrictions) takes per run when Planner.MaxSubjects is 0.
const DefaultMaxSubjects = 10000

// activityPage is how many subjects one ActivityReader call reads or checks.
const activityPage = 1000

// Store is one store of the data map as the planner sees it.
type Store struct {
	Name string
	// Kind is the store's type: postgres, mysql, redis or webhook.
	Kind   string
	Tables []dsar.TableMap
	// Keys are a Redis store's key templates: dated keys (with categories and DatedBy),
	// and the plain keys and set members requests erase (neither), which are not swept.
	Keys []KeySpec
	// Sweeper and Activity are the connector's capabilities; nil when it lacks them.
	Sweeper  dsar.Sweeper
	Activity dsar.ActivityReader
}

// KeySpec is a Redis key template.
type KeySpec struct {
	Template   string
	Categories []privguard.DataCategory
	// DatedBy is the hash field holding the key's date, or "ttl" (the key's TTL is its
	// retention); "" for a key that is not dated.
	DatedBy string
}

// Facts are the consent ledger's facts the subject-level rules run from (implemented by
// *consent.Ledger).
type Facts interface {
	// EachClosed calls fn with each subject whose account was closed (or service ended)
	// before before, and when.
	EachClosed(ctx context.Context, before time.Time, fn func(privguard.SubjectID, time.Time) error) error
	// EachLapsed calls fn with each subject whose consent for p is not in force now and
	// lapsed (withdrawn, refused or expired) before before, and when.
	EachLapsed(ctx context.Context, p privguard.Purpose, before time.Time, fn func(privguard.SubjectID, time.Time) error) error
	// RestrictedCategories returns the categories of s under a restriction in force now.
	RestrictedCategories(ctx context.Context, s privguard.SubjectID) ([]privguard.DataCategory, error)
}

// Planner plans one retention run.
type Planner struct {
	Rules  []Rule
	Stores []Store
	// Facts is needed by rules from account_closed and withdrawn, and by restrict rules.
	Facts Facts
	// Covers decides which rules cover a category. Nil: Within.
	Covers Covers
	// MaxSubjects caps the subjects of each subject-level action, and the deletions and
	// restrictions per run. 0: DefaultMaxSubjects.
	MaxSubjects int
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// Plan is what one retention run does.
type Plan struct {
	At time.Time `json:"at"`
	// Actions are the sweep actions per store name, sorted by table (key template), then
	// columns, then rule.
	Actions map[string][]dsar.SweepAction `json:"actions"`
	// Deletions are the subjects whose every category in every store expired by
	// subject-level rules that delete, to be deleted whole by deletion requests.
	Deletions []Deletion `json:"deletions,omitempty"`
	// Restrictions are the restrictions restrict rules start, only those not already in
	// force.
	Restrictions []Restriction `json:"restrictions,omitempty"`
	// Skipped are the tables (keys, stores, rules) the run leaves, and why.
	Skipped []Skip `json:"skipped,omitempty"`
	// Kept are the data a rule expired but another rule keeps.
	Kept []Kept `json:"kept,omitempty"`
	// Deferred is how many subjects are left for the next run by MaxSubjects.
	Deferred int `json:"deferred,omitempty"`
}

// Deletion is a subject deleted whole: an ordinary deletion request with Trigger
// (service_ended, consent_withdrawn or retention_expired; DSR-09, DSR-12).
type Deletion struct {
	Subject privguard.SubjectID `json:"subject"`
	Trigger string              `json:"trigger"`
	Rule    string              `json:"rule"`
}

// Restriction moves a subject's Categories to storage and security only until Until, on
// Ground (a ledger restrict record).
type Restriction struct {
	Subject    privguard.SubjectID      `json:"subject"`
	Categories []privguard.DataCategory `json:"categories"`
	Until      time.Time                `json:"until"`
	Ground     string                   `json:"ground"`
	Rule       string                   `json:"rule"`
}

// Skip is a table (key template; Table "" for a whole store or a rule) the run leaves.
type Skip struct {
	Store  string `json:"store,omitempty"`
	Table  string `json:"table,omitempty"`
	Rule   string `json:"rule,omitempty"`
	Reason string `json:"reason"`
}

// Kept says that data of Category in Store's Table that Rule expired is kept by KeptBy
// (for its Purposes): for Subjects subjects (0 when Rule runs from collection, which is
// judged by row, not by subject).
type Kept struct {
	Store    string                 `json:"store"`
	Table    string                 `json:"table"`
	Category privguard.DataCategory `json:"category"`
	Rule     string                 `json:"rule"`
	KeptBy   string                 `json:"kept_by"`
	Purposes []privguard.Purpose    `json:"purposes"`
	Subjects int                    `json:"subjects"`
}

// Skip reasons.
const (
	ReasonNoDatedBy    = "table has no dated_by"
	ReasonNotDated     = "not dated"
	ReasonWebhook      = "a webhook store is not swept; subject-level actions reach it only through full deletions"
	ReasonCannotSweep  = "the store's connector cannot sweep"
	ReasonNoActivity   = "no table has last_active_by"
	ReasonActivityLack = "the store's connector cannot read last activity, so the rule judges no subject"
)

// subjects maps subjects to the time their rule's period started (the trigger).
type subjects map[privguard.SubjectID]time.Time

// planning is one Plan call's state.
type planning struct {
	*Planner
	now      time.Time
	covers   Covers
	max      int
	expired  []subjects // per subject-level rule: expired for deletion
	restrict []subjects // per restrict rule: restricted, not yet expired
	gone     subjects   // deleted whole
	deferred map[privguard.SubjectID]bool
	plan     Plan
}

// column is one mapped column (or dated key) and the rules covering it.
type column struct {
	name  string // "" for a key
	cats  []privguard.DataCategory
	rules []int // covering rules, in rule order; nil: no rule covers a category
}

// Plan plans a run at Now. It returns an error for an invalid rule, a subject-level rule
// without the Facts it needs, or an error of Facts or an ActivityReader.
func (p *Planner) Plan(ctx context.Context) (Plan, error) {
	g := &planning{Planner: p, covers: p.Covers, max: p.MaxSubjects, deferred: map[privguard.SubjectID]bool{}}
	if g.covers == nil {
		g.covers = Within
	}
	if g.max <= 0 {
		g.max = DefaultMaxSubjects
	}
	if p.Now != nil {
		g.now = p.Now()
	} else {
		g.now = time.Now()
	}
	g.plan = Plan{At: g.now, Actions: map[string][]dsar.SweepAction{}}
	if err := g.checkRules(); err != nil {
		return Plan{}, err
	}
	g.expired = make([]subjects, len(p.Rules))
	g.restrict = make([]subjects, len(p.Rules))
	held := Uncovered(nil, p.Stores, g.covers) // every category held (no rule covers any)
	for i, r := range p.Rules {
		if !r.subjectLevel() {
			continue
		}
		if r.Then != ThenRestrict && !slices.ContainsFunc(held, func(c privguard.DataCategory) bool { return r.covers(c, g.covers) }) {
			g.expired[i] = subjects{} // covers nothing the stores hold: nothing to read
			continue
		}
		started, err := g.started(ctx, r)
		if err != nil {
			return Plan{}, fmt.Errorf("retention: rule %s: %w", r.Name, err)
		}
		g.expired[i] = subjects{}
		if r.Then == ThenRestrict {
			g.restrict[i] = subjects{}
		}
		for s, at := range started {
			if r.Then == ThenRestrict && !at.Add(r.Period+r.Keep).Before(g.now) {
				g.restrict[i][s] = at
			} else {
				g.expired[i][s] = at
			}
		}
	}
	g.deletions()
	if err := g.restrictions(ctx); err != nil {
		return Plan{}, err
	}
	for _, s := range p.Stores {
		g.store(s)
	}
	g.plan.Deferred = len(g.deferred)
	sortPlan(&g.plan)
	return g.plan, nil
}

// checkRules refuses rules the planner cannot carry out.
func (g *planning) checkRules() error {
	for _, r := range g.Rules {
		switch {
		case !slices.Contains([]From{FromCollected, FromLastActive, FromAccountClosed, FromWithdrawn}, r.From):
			return fmt.Errorf("retention: rule %s: unknown from %q", r.Name, r.From)
		case !slices.Contains([]Then{ThenDelete, ThenAnonymise, ThenRestrict}, r.Then):
			return fmt.Errorf("retention: rule %s: unknown then %q", r.Name, r.Then)
		case r.Period < 0 || r.Keep < 0 || (r.From == FromCollected && r.Period == 0):
			return fmt.Errorf("retention: rule %s: period must be more than 0 (0 or more when not from collected), keep 0 or more", r.Name)
		case r.Then == ThenRestrict && r.From == FromCollected:
			return fmt.Errorf("retention: rule %s: restrict needs a subject, so it cannot run from collected", r.Name)
		case len(r.Categories) == 0:
			return fmt.Errorf("retention: rule %s: no categories", r.Name)
		case r.From == FromWithdrawn && len(r.Purposes) == 0:
			return fmt.Errorf("retention: rule %s: from withdrawn needs purposes", r.Name)
		case g.Facts == nil && (r.From == FromAccountClosed || r.From == FromWithdrawn || r.Then == ThenRestrict):
			return fmt.Errorf("retention: rule %s runs from %s (then %s) but the planner has no Facts", r.Name, r.From, r.Then)
		}
	}
	return nil
}

// started returns the subjects whose period of r started before now - r.Period, with the
// time it started.
func (g *planning) started(ctx context.Context, r Rule) (subjects, error) {
	before := g.now.Add(-r.Period)
	out := subjects{}
	collect := func(into subjects) func(privguard.SubjectID, time.Time) error {
		return func(s privguard.SubjectID, at time.Time) error {
			if at.Before(before) {
				if prev, ok := into[s]; !ok || at.After(prev) {
					into[s] = at
				}
			}
			return nil
		}
	}
	switch r.From {
	case FromAccountClosed:
		if err := g.Facts.EachClosed(ctx, before, collect(out)); err != nil {
			return nil, err
		}
	case FromWithdrawn:
		// Lapsed for every purpose; started when the last of them lapsed.
		for i, p := range r.Purposes {
			lapsed := subjects{}
			if err := g.Facts.EachLapsed(ctx, p, before, collect(lapsed)); err != nil {
				return nil, err
			}
			if i == 0 {
				out = lapsed
				continue
			}
			for s, at := range out {
				l, ok := lapsed[s]
				switch {
				case !ok:
					delete(out, s)
				case l.After(at):
					out[s] = l
				}
			}
		}
		// The service's end ends the purposes consent was given for (PIPL Art. 47(1)(2)): a
		// closed account counts as lapsed from its closure, whatever its consent says.
		closed := subjects{}
		if err := g.Facts.EachClosed(ctx, before, collect(closed)); err != nil {
			return nil, err
		}
		for s, at := range closed {
			if prev, ok := out[s]; !ok || at.Before(prev) {
				out[s] = at
			}
		}
	case FromLastActive:
		return g.inactive(ctx, r, before)
	}
	return out, nil
}

// activityTable is a table with last_active_by and its store's reader.
type activityTable struct {
	store, table string
	reader       dsar.ActivityReader
}

// inactive returns the subjects whose latest activity over every table with
// last_active_by is before before, with that activity. A store that cannot read activity
// makes the rule judge no one (its subjects may be active there).
func (g *planning) inactive(ctx context.Context, r Rule, before time.Time) (subjects, error) {
	var tables []activityTable
	lacking := false
	for _, s := range g.Stores {
		for _, t := range s.Tables {
			if t.LastActiveBy == "" {
				continue
			}
			if s.Activity == nil {
				g.plan.Skipped = append(g.plan.Skipped, Skip{Store: s.Name, Table: t.Table, Rule: r.Name, Reason: ReasonActivityLack})
				lacking = true
				continue
			}
			tables = append(tables, activityTable{s.Name, t.Table, s.Activity})
		}
	}
	if lacking {
		return subjects{}, nil
	}
	if len(tables) == 0 {
		g.plan.Skipped = append(g.plan.Skipped, Skip{Rule: r.Name, Reason: ReasonNoActivity})
		return subjects{}, nil
	}
	candidates := map[privguard.SubjectID]bool{}
	for _, t := range tables {
		var after privguard.SubjectID
		for {
			page, err := t.reader.Inactive(ctx, t.table, before, after, activityPage)
			if err != nil {
				return nil, fmt.Errorf("activity in %s/%s: %w", t.store, t.table, err)
			}
			for _, s := range page {
				candidates[s] = true
			}
			if len(page) < activityPage {
				break
			}
			if next := page[len(page)-1]; next > after {
				after = next
			} else {
				return nil, fmt.Errorf("activity in %s/%s: Inactive did not advance past %d subjects", t.store, t.table, len(candidates))
			}
		}
	}
	ids := slices.Sorted(maps.Keys(candidates))
	latest := subjects{}
	for from := 0; from < len(ids); from += activityPage {
		chunk := ids[from:min(from+activityPage, len(ids))]
		for _, t := range tables {
			last, err := t.reader.LastActive(ctx, t.table, chunk)
			if err != nil {
				return nil, fmt.Errorf("activity in %s/%s: %w", t.store, t.table, err)
			}
			for s, at := range last {
				if candidates[s] && at.After(latest[s]) {
					latest[s] = at
				}
			}
		}
	}
	out := subjects{}
	for s, at := range latest {
		if at.Before(before) {
			out[s] = at
		}
	}
	return out, nil
}

// columns returns the mapped columns of t (sorted) and the rules covering each.
func (g *planning) columns(t dsar.TableMap) []column {
	var out []column
	for _, name := range slices.Sorted(maps.Keys(t.Columns)) {
		out = append(out, g.column(name, []privguard.DataCategory{t.Columns[name]}))
	}
	return out
}

// column is the column of categories cats: the rules covering any of them, nil if one of
// them is covered by none.
func (g *planning) column(name string, cats []privguard.DataCategory) column {
	c := column{name: name, cats: cats}
	seen := map[int]bool{}
	for _, cat := range cats {
		n := 0
		for i, r := range g.Rules {
			if r.covers(cat, g.covers) {
				n++
				seen[i] = true
			}
		}
		if n == 0 {
			return column{name: name, cats: cats}
		}
	}
	c.rules = slices.Sorted(maps.Keys(seen))
	return c
}

// condition is a composite condition: Before from the rules from collected (zero if
// none), the subject-level rules whose expired subjects intersect.
type condition struct {
	before    time.Time
	collected []int
	subject   []int
	anonymise bool
}

func (g *planning) condition(rules []int) condition {
	var c condition
	var longest time.Duration
	for _, i := range rules {
		r := g.Rules[i]
		if r.Then == ThenAnonymise {
			c.anonymise = true
		}
		if r.subjectLevel() {
			c.subject = append(c.subject, i)
			continue
		}
		c.collected = append(c.collected, i)
		longest = max(longest, r.Period)
	}
	if len(c.collected) > 0 {
		c.before = g.now.Add(-longest)
	}
	return c
}

// subjectsOf returns the subjects every rule of c expired, less those deleted whole,
// sorted; nil if c has no subject-level rule.
func (g *planning) subjectsOf(c condition) []privguard.SubjectID {
	if len(c.subject) == 0 {
		return nil
	}
	smallest := slices.MinFunc(c.subject, func(a, b int) int { return cmp.Compare(len(g.expired[a]), len(g.expired[b])) })
	var out []privguard.SubjectID
	for s := range g.expired[smallest] {
		if _, gone := g.gone[s]; gone {
			continue
		}
		in := true
		for _, i := range c.subject {
			if _, ok := g.expired[i][s]; !ok {
				in = false
				break
			}
		}
		if in {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// capped keeps max of ids, counting the rest deferred.
//
// The window of max ids starts at an offset that moves with the run's time, wrapping
// around: subjects whose data an earlier run already erased stay eligible (a narrow
// erasure leaves the fact it runs from), and a fixed first window would hold them forever
// while later subjects wait.
func (g *planning) capped(ids []privguard.SubjectID) []privguard.SubjectID {
	if len(ids) <= g.max {
		return ids
	}
	off := int(uint64(g.now.UnixNano()) % uint64(len(ids)))
	rotated := append(slices.Clone(ids[off:]), ids[:off]...)
	for _, s := range rotated[g.max:] {
		g.deferred[s] = true
	}
	out := rotated[:g.max:g.max]
	slices.Sort(out)
	return out
}

func (g *planning) names(rules []int) string {
	var names []string
	for _, i := range rules {
		names = append(names, g.Rules[i].Name)
	}
	return strings.Join(names, "+")
}

// deletions finds the subjects every column of every store expired for, by subject-level
// rules that delete (no rule from collected, none that anonymises): they are deleted whole.
func (g *planning) deletions() {
	g.gone = subjects{}
	used := map[int]bool{}
	for _, s := range g.Stores {
		var cols []column
		for _, t := range s.Tables {
			cols = append(cols, g.columns(t)...)
		}
		for _, k := range s.Keys {
			if k.DatedBy != "" && len(k.Categories) > 0 {
				cols = append(cols, g.column("", k.Categories))
			}
		}
		for _, c := range cols {
			cond := g.condition(c.rules)
			if c.rules == nil || len(cond.collected) > 0 || cond.anonymise {
				return
			}
			for _, i := range cond.subject {
				used[i] = true
			}
		}
	}
	if len(used) == 0 {
		return
	}
	rules := slices.Sorted(maps.Keys(used))
	ids := g.subjectsOf(condition{subject: rules})
	trigger := "retention_expired"
	for _, i := range rules {
		switch g.Rules[i].From {
		case FromAccountClosed:
			trigger = "service_ended"
		case FromWithdrawn:
			if trigger != "service_ended" {
				trigger = "consent_withdrawn"
			}
		}
	}
	name := g.names(rules)
	for _, s := range ids {
		g.gone[s] = time.Time{}
	}
	for _, s := range g.capped(ids) {
		g.plan.Deletions = append(g.plan.Deletions, Deletion{Subject: s, Trigger: trigger, Rule: name})
	}
}

// restrictions lists the restrictions the restrict rules start that are not in force.
func (g *planning) restrictions(ctx context.Context) error {
	for i, r := range g.Rules {
		if r.Then != ThenRestrict {
			continue
		}
		var due []privguard.SubjectID
		for _, s := range slices.Sorted(maps.Keys(g.restrict[i])) {
			if _, gone := g.gone[s]; gone {
				continue
			}
			held, err := g.Facts.RestrictedCategories(ctx, s)
			if err != nil {
				return fmt.Errorf("retention: rule %s: restricted categories: %w", r.Name, err)
			}
			if !slices.ContainsFunc(r.Categories, func(c privguard.DataCategory) bool {
				return !slices.ContainsFunc(held, func(h privguard.DataCategory) bool { return g.covers(h, c) })
			}) {
				continue // already in force for every category of the rule
			}
			due = append(due, s)
		}
		for _, s := range g.capped(due) {
			g.plan.Restrictions = append(g.plan.Restrictions, Restriction{Subject: s, Categories: slices.Clone(r.Categories),
				Until: g.restrict[i][s].Add(r.Period + r.Keep), Ground: r.Ground, Rule: r.Name})
		}
	}
	return nil
}

// group is the columns of a table under one condition: the same cut-off and the same
// subjects, whichever rules give them.
type group struct {
	cond     condition
	subjects []privguard.SubjectID
	rules    map[int]bool
	columns  []string
}

func (gr *group) same(c condition, subjects []privguard.SubjectID) bool {
	return gr.cond.before.Equal(c.before) && (len(gr.cond.subject) > 0) == (len(c.subject) > 0) && slices.Equal(gr.subjects, subjects)
}

// store plans the actions of one store.
func (g *planning) store(s Store) {
	if len(g.Rules) == 0 {
		return
	}
	if s.Kind == "webhook" {
		g.plan.Skipped = append(g.plan.Skipped, Skip{Store: s.Name, Reason: ReasonWebhook})
		return
	}
	var actions []dsar.SweepAction
	for _, t := range s.Tables {
		actions = append(actions, g.table(s.Name, t)...)
	}
	for _, k := range s.Keys {
		actions = append(actions, g.key(s.Name, k)...)
	}
	if len(actions) == 0 {
		return
	}
	if s.Sweeper == nil {
		for _, t := range uniqueTables(actions) {
			g.plan.Skipped = append(g.plan.Skipped, Skip{Store: s.Name, Table: t, Reason: ReasonCannotSweep})
		}
		return
	}
	g.plan.Actions[s.Name] = actions
}

func uniqueTables(actions []dsar.SweepAction) []string {
	var out []string
	for _, a := range actions {
		if !slices.Contains(out, a.Table) {
			out = append(out, a.Table)
		}
	}
	return out
}

// table plans the actions of one SQL table.
func (g *planning) table(store string, t dsar.TableMap) []dsar.SweepAction {
	cols := g.columns(t)
	if len(cols) == 0 {
		return nil
	}
	var groups []*group
	whole := true // every mapped column expires under a condition
	noDate := map[string]bool{}
	for _, c := range cols {
		if c.rules == nil {
			whole = false
			continue
		}
		cond := g.condition(c.rules)
		g.kept(store, t.Table, c)
		if len(cond.collected) > 0 && t.DatedBy == "" {
			whole = false
			noDate[g.names(cond.collected)] = true
			continue
		}
		subjects := g.subjectsOf(cond)
		if len(cond.subject) > 0 && len(subjects) == 0 {
			whole = false // expired for no one now
			continue
		}
		k := slices.IndexFunc(groups, func(gr *group) bool { return gr.same(cond, subjects) })
		if k < 0 {
			groups = append(groups, &group{cond: cond, subjects: subjects, rules: map[int]bool{}})
			k = len(groups) - 1
		}
		gr := groups[k]
		gr.cond.anonymise = gr.cond.anonymise || cond.anonymise
		for _, i := range c.rules {
			gr.rules[i] = true
		}
		gr.columns = append(gr.columns, c.name)
	}
	for _, rule := range slices.Sorted(maps.Keys(noDate)) {
		g.plan.Skipped = append(g.plan.Skipped, Skip{Store: store, Table: t.Table, Rule: rule, Reason: ReasonNoDatedBy})
	}
	var out []dsar.SweepAction
	for _, gr := range groups {
		a := dsar.SweepAction{Rule: g.names(slices.Sorted(maps.Keys(gr.rules))), Table: t.Table, Before: gr.cond.before}
		if len(gr.cond.subject) > 0 {
			a.Subjects = g.capped(gr.subjects)
		}
		switch {
		case whole && len(groups) == 1 && gr.cond.anonymise:
			a.Mode = dsar.SweepAnonymise
		case whole && len(groups) == 1:
			a.Mode = dsar.SweepDelete
		default:
			a.Mode, a.Columns = dsar.SweepClear, gr.columns
		}
		out = append(out, a)
	}
	return out
}

// key plans the action of one Redis key template. A dated key is deleted (anonymising a
// key would leave nothing of use), or given its TTL.
func (g *planning) key(store string, k KeySpec) []dsar.SweepAction {
	if k.DatedBy == "" || len(k.Categories) == 0 {
		g.plan.Skipped = append(g.plan.Skipped, Skip{Store: store, Table: k.Template, Reason: ReasonNotDated})
		return nil
	}
	c := g.column("", k.Categories)
	if c.rules == nil {
		return nil
	}
	cond := g.condition(c.rules)
	g.kept(store, k.Template, c)
	a := dsar.SweepAction{Rule: g.names(c.rules), Table: k.Template, Mode: dsar.SweepDelete, Before: cond.before}
	if k.DatedBy == "ttl" && len(cond.collected) > 0 {
		var longest time.Duration
		for _, i := range cond.collected {
			longest = max(longest, g.Rules[i].Period)
		}
		a.Mode, a.Before, a.Period = dsar.SweepExpire, time.Time{}, longest
	}
	if len(cond.subject) > 0 {
		if a.Subjects = g.capped(g.subjectsOf(cond)); len(a.Subjects) == 0 {
			return nil
		}
	}
	return []dsar.SweepAction{a}
}

// kept reports, for column c under cond, the data a rule expired that another keeps.
func (g *planning) kept(store, table string, c column) {
	for _, i := range c.rules {
		r := g.Rules[i]
		for _, j := range c.rules {
			if i == j {
				continue
			}
			r2 := g.Rules[j]
			n := 0 // for a rule from collected: judged by row, not counted by subject
			switch {
			case r.subjectLevel():
				for s := range g.expired[i] {
					if _, ok := g.expired[j][s]; !ok || !r2.subjectLevel() {
						n++ // r2 has not expired s, or keeps s's rows younger than its cut-off
					}
				}
				if n == 0 {
					continue
				}
			case !r2.subjectLevel() && r2.Period <= r.Period:
				continue // r's cut-off is the later one: nothing r expired is kept by r2
			}
			cat := c.cats[0]
			for _, h := range c.cats {
				if r2.covers(h, g.covers) && r.covers(h, g.covers) {
					cat = h
					break
				}
			}
			g.plan.Kept = append(g.plan.Kept, Kept{Store: store, Table: table, Category: cat, Rule: r.Name, KeptBy: r2.Name,
				Purposes: slices.Clone(r2.Purposes), Subjects: n})
		}
	}
}

// sortPlan puts the lists in order and drops repeated Kept entries (one per table and
// category).
func sortPlan(p *Plan) {
	for name, actions := range p.Actions {
		slices.SortStableFunc(actions, func(a, b dsar.SweepAction) int {
			return cmp.Or(cmp.Compare(a.Table, b.Table), cmp.Compare(strings.Join(a.Columns, ","), strings.Join(b.Columns, ",")), cmp.Compare(a.Rule, b.Rule))
		})
		p.Actions[name] = actions
	}
	slices.SortFunc(p.Deletions, func(a, b Deletion) int { return cmp.Compare(a.Subject, b.Subject) })
	slices.SortFunc(p.Restrictions, func(a, b Restriction) int {
		return cmp.Or(cmp.Compare(a.Subject, b.Subject), cmp.Compare(a.Rule, b.Rule))
	})
	slices.SortFunc(p.Skipped, func(a, b Skip) int {
		return cmp.Or(cmp.Compare(a.Store, b.Store), cmp.Compare(a.Table, b.Table), cmp.Compare(a.Rule, b.Rule), cmp.Compare(a.Reason, b.Reason))
	})
	p.Skipped = slices.Compact(p.Skipped)
	keptKey := func(k Kept) string {
		return strings.Join([]string{k.Store, k.Table, string(k.Category), k.Rule, k.KeptBy}, "\x00")
	}
	slices.SortStableFunc(p.Kept, func(a, b Kept) int { return cmp.Compare(keptKey(a), keptKey(b)) })
	p.Kept = slices.CompactFunc(p.Kept, func(a, b Kept) bool { return keptKey(a) == keptKey(b) })
}

// Uncovered returns the data categories the stores' tables and dated keys hold that no
// rule covers (nil covers: Within), sorted: such data is kept indefinitely, which serve
// warns of once per category.
func Uncovered(rules []Rule, stores []Store, covers Covers) []privguard.DataCategory {
	if covers == nil {
		covers = Within
	}
	seen := map[privguard.DataCategory]bool{}
	check := func(c privguard.DataCategory) {
		if !seen[c] && !slices.ContainsFunc(rules, func(r Rule) bool { return r.covers(c, covers) }) {
			seen[c] = true
		}
	}
	for _, s := range stores {
		for _, t := range s.Tables {
			for _, c := range t.Columns {
				check(c)
			}
		}
		for _, k := range s.Keys {
			for _, c := range k.Categories {
				check(c)
			}
		}
	}
	return slices.Sorted(maps.Keys(seen))
}
