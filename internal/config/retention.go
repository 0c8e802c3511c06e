package config

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/retention"
)

// Retention floors and the defaults of retention_sweep.
const (
	// MinAssessmentRetention is the shortest period a `records: assessments` rule may state:
	// impact assessment reports are kept at least three years (PIPL Art. 56, AUD-03),
	// counted as 1096 days.
	MinAssessmentRetention = 26304 * time.Hour
	// MinProcessingRecordsRetention is the same floor for `records: processing_records`
	// (the records of processing, PIPL Art. 56, AUD-03).
	MinProcessingRecordsRetention = 26304 * time.Hour

	// DefaultRetentionEvery is how often serve runs the retention sweep.
	DefaultRetentionEvery = 24 * time.Hour
	// MinRetentionEvery is the shortest schedule retention_sweep.every may set.
	MinRetentionEvery = time.Minute
	// DefaultRetentionBatch is how many rows one sweep statement changes at most.
	DefaultRetentionBatch = 1000
	// MaxRetentionBatch bounds retention_sweep.batch.
	MaxRetentionBatch = 10000
	// DefaultRetentionPause is the pause between two batches on one store.
	DefaultRetentionPause = 20 * time.Millisecond
	// DefaultRetentionMaxSubjects is how many subjects one subject-level action takes per run.
	DefaultRetentionMaxSubjects = 10000
)

// The values of a retention rule's from, then and records.
var (
	retentionFroms   = []string{"collected", "last_active", "account_closed", "withdrawn"}
	retentionThens   = []string{"delete", "anonymise", "restrict"}
	retentionRecords = []string{"decision_log", "assessments", "processing_records"}
)

// RetentionRule is one entry of retention: how long data of some categories is kept for
// some purposes (categories, purposes, period, from, then), or how long one of privguard's
// own records is kept (records, period). Validated by retentionProblems and, for the names
// it uses, checkRetentionNames.
type RetentionRule struct {
	// Name names the rule in sweep actions and reports. Default
	// "<then>:<first category>:<from>:<index>"; unique.
	Name string `yaml:"name"`
	// Categories are the data categories the rule covers (and their sub-categories).
	Categories []string `yaml:"categories"`
	// Purposes are the purposes the data is kept for.
	Purposes []string `yaml:"purposes"`
	// Period is how long after From the data is kept: more than 0 from collected, 0 or more
	// otherwise.
	Period *Duration `yaml:"period"`
	// From is what the period runs from: collected, last_active, account_closed or withdrawn.
	From string `yaml:"from"`
	// Then is what happens when it ends: delete, anonymise or restrict.
	Then string `yaml:"then"`
	// Ground is the legal ground of a restrict rule (required then, refused otherwise).
	Ground string `yaml:"ground"`
	// Keep is how long a restrict rule keeps the data for storage and security only before
	// it is deleted (required then, refused otherwise).
	Keep *Duration `yaml:"keep"`
	// Records, instead of categories, names one of privguard's own records: decision_log
	// (sets the decision log's retention, in place of decision_log.retention), assessments
	// or processing_records (stated in the record of processing; privguard never deletes
	// them). The period must meet the floor (AUD-03).
	Records string `yaml:"records"`
}

// RetentionSweep schedules and paces the retention sweep.
type RetentionSweep struct {
	// Every is how often serve sweeps: a duration of at least 1m, or "0s" or "off" (only on
	// demand). Default DefaultRetentionEvery.
	Every string `yaml:"every"`
	// Batch is how many rows one statement changes (1..MaxRetentionBatch). Default
	// DefaultRetentionBatch.
	Batch int `yaml:"batch" validate:"omitempty,min=1,max=10000"`
	// Pause is the pause between two batches on one store. Default DefaultRetentionPause.
	Pause *Duration `yaml:"pause"`
	// MaxSubjects is how many subjects one subject-level action takes per run; the rest
	// wait for the next run. Default DefaultRetentionMaxSubjects.
	MaxSubjects int `yaml:"max_subjects" validate:"omitempty,min=1"`
}

// Schedule returns the interval in force; 0 means only on demand.
func (s RetentionSweep) Schedule() time.Duration {
	d, _ := s.schedule()
	return d
}

func (s RetentionSweep) schedule() (time.Duration, error) {
	switch s.Every {
	case "":
		return DefaultRetentionEvery, nil
	case "off", "0", "0s":
		return 0, nil
	}
	d, err := time.ParseDuration(s.Every)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration such as 24h, nor off", s.Every)
	}
	if d > 0 && d < MinRetentionEvery {
		return 0, fmt.Errorf("%s is under the minimum of 1m (0s or off: only on demand)", d)
	}
	return d, nil
}

// BatchRows returns the batch size in force.
func (s RetentionSweep) BatchRows() int {
	if s.Batch == 0 {
		return DefaultRetentionBatch
	}
	return s.Batch
}

// PauseFor returns the pause in force.
func (s RetentionSweep) PauseFor() time.Duration {
	if s.Pause == nil {
		return DefaultRetentionPause
	}
	return s.Pause.Duration
}

// SubjectsPerAction returns max_subjects in force.
func (s RetentionSweep) SubjectsPerAction() int {
	if s.MaxSubjects == 0 {
		return DefaultRetentionMaxSubjects
	}
	return s.MaxSubjects
}

// DatedKey is a Redis key of a subject with data categories and a date, which retention
// rules sweep (and requests erase, as they do keys).
type DatedKey struct {
	// Key is the key's template, with {subject}.
	Key string `yaml:"key" validate:"required,max=512,contains={subject}"`
	// Categories are the data categories the key holds.
	Categories []string `yaml:"categories" validate:"required,min=1,dive,required,max=100"`
	// DatedBy is the hash field holding the key's date (RFC 3339 or unix seconds), or "ttl":
	// the key's TTL is its retention.
	DatedBy string `yaml:"dated_by" validate:"required,max=128"`
}

// RetentionName returns the name of rule i: its name, or the default
// "<then>:<first category>:<from>:<index>" ("records:<records>:<index>" for a records rule).
func (f *File) RetentionName(i int) string {
	r := f.Retention[i]
	switch {
	case r.Name != "":
		return r.Name
	case r.Records != "":
		return fmt.Sprintf("records:%s:%d", r.Records, i)
	}
	first := ""
	if len(r.Categories) > 0 {
		first = r.Categories[0]
	}
	return fmt.Sprintf("%s:%s:%s:%d", r.Then, first, r.From, i)
}

// RecordsRetention returns the period of the `records: kind` rule, if there is one.
func (f *File) RecordsRetention(kind string) (time.Duration, bool) {
	for _, r := range f.Retention {
		if r.Records == kind && r.Period != nil {
			return r.Period.Duration, true
		}
	}
	return 0, false
}

// isName reports whether s is made of the characters names allow (as the validator's name).
func isName(s string) bool {
	return s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '-' && r != '_'
	}) < 0
}

// retentionProblems checks retention, retention_sweep and the stores' dated columns and
// keys, each problem named by its path (and a rule also by its name): the shape of each
// rule (a data rule's categories, purposes, period, from and then; restrict's ground and
// keep; a records rule's floor, AUD-03), unique names, one rule per record kind, and
// records: decision_log not together with decision_log.retention. The names of categories
// and purposes are checked by checkRetentionNames (they need the taxonomy).
func (f *File) retentionProblems() []string {
	var msgs []string
	names := map[string]int{}
	records := map[string]int{}
	for i, r := range f.Retention {
		name := f.RetentionName(i)
		at := fmt.Sprintf("retention[%d] (%s)", i, name)
		add := func(key, format string, args ...any) {
			msgs = append(msgs, fmt.Sprintf("%s.%s: %s", at, key, fmt.Sprintf(format, args...)))
		}
		if r.Name != "" && (len(r.Name) > 64 || !isName(r.Name)) {
			add("name", "must be at most 64 letters, digits, '-' and '_'")
		}
		if j, dup := names[name]; dup {
			add("name", "%q also names retention[%d]; rule names are unique", name, j)
		} else {
			names[name] = i
		}
		if r.Period == nil {
			add("period", "is required (a duration such as 8760h)")
		}
		if r.Records != "" {
			if !slices.Contains(retentionRecords, r.Records) {
				add("records", "%q is not allowed; must be one of %s", r.Records, strings.Join(retentionRecords, ", "))
				continue
			}
			for _, k := range []struct {
				key string
				set bool
			}{{"categories", len(r.Categories) > 0}, {"purposes", len(r.Purposes) > 0}, {"from", r.From != ""},
				{"then", r.Then != ""}, {"ground", r.Ground != ""}, {"keep", r.Keep != nil}} {
				if k.set {
					add(k.key, "a records rule takes only name, records and period")
				}
			}
			if j, dup := records[r.Records]; dup {
				add("records", "%s also has a rule at retention[%d]; one rule per record", r.Records, j)
			}
			records[r.Records] = i
			if r.Period == nil {
				continue
			}
			floor, why := MinDecisionLogRetention, "184 days: operation logs are kept at least six months, CSL Art. 21(3)"
			if r.Records != "decision_log" {
				floor, why = MinAssessmentRetention, "1096 days: impact assessments and records of processing are kept at least three years, PIPL Art. 56"
				if r.Records == "processing_records" {
					floor = MinProcessingRecordsRetention
				}
			}
			if r.Period.Duration < floor {
				add("period", "must be at least %s (%s)", hours(floor), why)
			}
			if r.Records == "decision_log" && f.DecisionLog.Retention != nil {
				add("records", "decision_log.retention is set too; set the decision log's retention in one place")
			}
			continue
		}
		if len(r.Categories) == 0 {
			add("categories", "is required: the data categories the rule covers (or records: for privguard's own records)")
		}
		for j, c := range r.Categories {
			if c == "" || len(c) > 100 {
				add(fmt.Sprintf("categories[%d]", j), "must be a data category name of at most 100 characters")
			}
		}
		if len(r.Purposes) == 0 {
			add("purposes", "is required: the purposes the data is kept for")
		}
		for j, p := range r.Purposes {
			if p == "" || len(p) > 100 {
				add(fmt.Sprintf("purposes[%d]", j), "must be a purpose name of at most 100 characters")
			}
		}
		switch {
		case r.From == "":
			add("from", "is required: one of %s", strings.Join(retentionFroms, ", "))
		case !slices.Contains(retentionFroms, r.From):
			add("from", "%q is not allowed; must be one of %s", r.From, strings.Join(retentionFroms, ", "))
		}
		switch {
		case r.Then == "":
			add("then", "is required: one of %s", strings.Join(retentionThens, ", "))
		case !slices.Contains(retentionThens, r.Then):
			add("then", "%q is not allowed; must be one of %s", r.Then, strings.Join(retentionThens, ", "))
		}
		if r.Period != nil && r.From == "collected" && r.Period.Duration == 0 {
			add("period", "must be more than 0 from collected")
		}
		if r.Then == "restrict" {
			if r.From == "collected" {
				add("then", "restrict needs a subject to restrict, so it runs from last_active, account_closed or withdrawn, not collected")
			}
			switch {
			case strings.TrimSpace(r.Ground) == "":
				add("ground", "is required with then: restrict: the legal ground for keeping the data (e.g. \"会计档案管理办法 Art. 14: accounting records 30 years\")")
			case len([]rune(r.Ground)) > 500:
				add("ground", "must be at most 500 characters")
			}
			if r.Keep == nil || r.Keep.Duration == 0 {
				add("keep", "is required with then: restrict, and more than 0: how long the data is kept for storage and security only before it is deleted")
			}
		} else {
			if r.Ground != "" {
				add("ground", "only a then: restrict rule takes a ground")
			}
			if r.Keep != nil {
				add("keep", "only a then: restrict rule takes keep")
			}
		}
	}
	if _, err := f.RetentionSweep.schedule(); err != nil {
		msgs = append(msgs, "retention_sweep.every: "+err.Error())
	}
	for i, s := range f.DSAR.Stores {
		if len(s.DatedKeys) > 0 && s.Type != "redis" {
			msgs = append(msgs, fmt.Sprintf("dsar.stores[%d].dated_keys: only a redis store has keys", i))
		}
		if s.Type != "postgres" && s.Type != "mysql" {
			continue
		}
		for j, t := range s.Tables {
			if t.DatedBy != "" && t.DatedBy == t.SubjectColumn {
				msgs = append(msgs, fmt.Sprintf("dsar.stores[%d].tables[%d].dated_by: %q is the subject column", i, j, t.DatedBy))
			}
			if _, mapped := t.Columns[t.DatedBy]; t.DatedBy != "" && mapped {
				msgs = append(msgs, fmt.Sprintf("dsar.stores[%d].tables[%d].dated_by: %q is a mapped personal column; the date a row is swept by must not be one it clears", i, j, t.DatedBy))
			}
		}
	}
	return msgs
}

// hours writes d as the config file does ("26304h").
func hours(d time.Duration) string { return fmt.Sprintf("%dh", int64(d/time.Hour)) }

// checkRetentionNames reports the data categories and purposes the retention rules and the
// stores' dated keys name that are not known, by path: a category is a known one (built in
// or declared; an ancestor covers its children), a purpose a registered one, named exactly
// (a withdrawn rule looks up each purpose's consent).
func (f *File) checkRetentionNames(purposes []string, cats *privguard.Taxonomy) []string {
	var msgs []string
	for i, r := range f.Retention {
		at := fmt.Sprintf("retention[%d] (%s)", i, f.RetentionName(i))
		for j, c := range r.Categories {
			if c != "" && !cats.Known(privguard.DataCategory(c)) {
				msgs = append(msgs, fmt.Sprintf("%s.categories[%d]: unknown data category %q%s", at, j, c, suggestCategory(c, cats)))
			}
		}
		for j, p := range r.Purposes {
			if p != "" && !slices.Contains(purposes, p) {
				msgs = append(msgs, fmt.Sprintf("%s.purposes[%d]: unknown purpose %q%s", at, j, p, suggestPurpose(p, purposes)))
			}
		}
	}
	for i, s := range f.DSAR.Stores {
		for j, k := range s.DatedKeys {
			for n, c := range k.Categories {
				if !cats.Known(privguard.DataCategory(c)) {
					msgs = append(msgs, fmt.Sprintf("dsar.stores[%d].dated_keys[%d].categories[%d]: unknown data category %q%s", i, j, n, c, suggestCategory(c, cats)))
				}
			}
		}
	}
	return msgs
}

// RetentionRules returns the data rules of retention (not the records rules) for the
// planner, each with its name (RetentionName). Call it on a file Parse and Taxonomy
// accepted.
func (f *File) RetentionRules() []retention.Rule {
	var out []retention.Rule
	for i, r := range f.Retention {
		if r.Records != "" {
			continue
		}
		rule := retention.Rule{Name: f.RetentionName(i), From: retention.From(r.From), Then: retention.Then(r.Then), Ground: r.Ground}
		for _, c := range r.Categories {
			rule.Categories = append(rule.Categories, privguard.DataCategory(c))
		}
		for _, p := range r.Purposes {
			rule.Purposes = append(rule.Purposes, privguard.Purpose(p))
		}
		if r.Period != nil {
			rule.Period = r.Period.Duration
		}
		if r.Keep != nil {
			rule.Keep = r.Keep.Duration
		}
		out = append(out, rule)
	}
	return out
}

// RetentionKeys returns a redis store's key templates for the planner: its dated keys,
// then its plain keys and set members (not dated: the planner reports them skipped).
func (s Store) RetentionKeys() []retention.KeySpec {
	var out []retention.KeySpec
	for _, k := range s.DatedKeys {
		spec := retention.KeySpec{Template: k.Key, DatedBy: k.DatedBy}
		for _, c := range k.Categories {
			spec.Categories = append(spec.Categories, privguard.DataCategory(c))
		}
		out = append(out, spec)
	}
	for _, k := range slices.Concat(s.Keys, s.SetMembers) {
		out = append(out, retention.KeySpec{Template: k})
	}
	return out
}
