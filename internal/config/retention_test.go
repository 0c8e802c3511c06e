package config

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/retention"
)

const retentionYAML = `retention:
  - name: browsing-1y
    categories: [user.behavior.browsing_history]
    purposes: [personalize.recommendation]
    period: 8760h
    from: collected
    then: delete
  - categories: [user.contact]
    purposes: [marketing.communications.sms]
    period: 720h
    from: withdrawn
    then: anonymise
  - name: accounting
    categories: [user.financial]
    purposes: [essential.service]
    period: 0s
    from: account_closed
    then: restrict
    ground: "会计档案管理办法 Art. 14: accounting records 30 years"
    keep: 262800h
  - {records: decision_log, period: 8784h}
  - {records: assessments, period: 26304h}
  - {records: processing_records, period: 30000h}
retention_sweep: {every: 12h, batch: 500, pause: 50ms, max_subjects: 100}
dsar:
  stores:
    - name: crm
      type: postgres
      dsn: postgres://x
      tables:
        - {table: page_views, subject_column: customer_id, dated_by: viewed_at, columns: {url: user.behavior.browsing_history}, erase: delete}
        - {table: customers, subject_column: id, last_active_by: last_login_at, columns: {email: user.contact.email}, erase: mask}
    - name: cache
      type: redis
      addr: 127.0.0.1:6379
      dated_keys:
        - {key: "profile:{subject}", categories: [user.behavior.browsing_history], dated_by: updated_at}
        - {key: "recent:{subject}", categories: [user.behavior], dated_by: ttl}
`

func TestRetentionParse(t *testing.T) {
	f, err := Parse([]byte(retentionYAML))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Taxonomy(); err != nil {
		t.Fatal(err)
	}
	if len(f.Retention) != 6 || f.RetentionName(0) != "browsing-1y" || f.RetentionName(1) != "anonymise:user.contact:withdrawn:1" {
		t.Errorf("rules %+v, names %q %q", f.Retention, f.RetentionName(0), f.RetentionName(1))
	}
	if f.DecisionLog.Keep() != 8784*time.Hour {
		t.Errorf("decision log retention = %v; want 8784h from records: decision_log", f.DecisionLog.Keep())
	}
	if d, ok := f.RecordsRetention("assessments"); !ok || d != 26304*time.Hour {
		t.Errorf("RecordsRetention(assessments) = %v, %v", d, ok)
	}
	s := f.RetentionSweep
	if s.Schedule() != 12*time.Hour || s.BatchRows() != 500 || s.PauseFor() != 50*time.Millisecond || s.SubjectsPerAction() != 100 {
		t.Errorf("sweep %+v", s)
	}
	tb := f.DSAR.Stores[0].Tables
	if tb[0].DatedBy != "viewed_at" || tb[1].LastActiveBy != "last_login_at" || f.DSAR.Stores[1].DatedKeys[1].DatedBy != "ttl" {
		t.Errorf("stores %+v", f.DSAR.Stores)
	}
}

func TestRetentionSweepDefaults(t *testing.T) {
	f, err := Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	s := f.RetentionSweep
	if s.Schedule() != DefaultRetentionEvery || s.BatchRows() != DefaultRetentionBatch || s.PauseFor() != DefaultRetentionPause || s.SubjectsPerAction() != DefaultRetentionMaxSubjects {
		t.Errorf("defaults %+v", s)
	}
	for _, off := range []string{"off", "0s"} {
		f, err := Parse([]byte("retention_sweep: {every: " + off + "}"))
		if err != nil || f.RetentionSweep.Schedule() != 0 {
			t.Errorf("every: %s = %v, %v; want 0 (on demand)", off, f, err)
		}
	}
}

// rule is a valid data rule with extra keys.
func rule(extra string) string {
	return "retention:\n  - {categories: [user.contact], purposes: [essential.service], period: 720h, from: collected, then: delete" + extra + "}\n"
}

func TestRetentionProblems(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
		names      bool // found by Taxonomy (the names), not Parse
	}{
		{"no_categories", "retention:\n  - {name: r1, purposes: [essential.service], period: 720h, from: collected, then: delete}\n", []string{"retention[0] (r1).categories: is required"}, false},
		{"no_purposes", "retention:\n  - {categories: [user.contact], period: 720h, from: collected, then: delete}\n", []string{"retention[0] (delete:user.contact:collected:0).purposes: is required"}, false},
		{"no_period", "retention:\n  - {name: r, categories: [user.contact], purposes: [essential.service], from: collected, then: delete}\n", []string{"retention[0] (r).period: is required"}, false},
		{"zero_period_collected", strings.Replace(rule(""), "720h", "0s", 1), []string{"period: must be more than 0 from collected"}, false},
		{"bad_from", strings.Replace(rule(""), "collected", "created", 1), []string{`.from: "created" is not allowed`}, false},
		{"no_from", strings.Replace(rule(""), "from: collected, ", "", 1), []string{".from: is required"}, false},
		{"bad_then", strings.Replace(rule(""), "then: delete", "then: purge", 1), []string{`.then: "purge" is not allowed`}, false},
		{"bad_name", rule(", name: \"a b\""), []string{"retention[0] (a b).name: must be at most 64"}, false},
		{"duplicate_name", rule(", name: x") + strings.TrimPrefix(rule(", name: x"), "retention:\n"), []string{`retention[1] (x).name: "x" also names retention[0]`}, false},
		{"restrict_collected", strings.Replace(rule(", ground: g, keep: 1h"), "then: delete", "then: restrict", 1), []string{"restrict needs a subject"}, false},
		{"restrict_no_ground", strings.Replace(strings.Replace(rule(", keep: 1h"), "then: delete", "then: restrict", 1), "collected", "withdrawn", 1), []string{".ground: is required with then: restrict"}, false},
		{"restrict_no_keep", strings.Replace(strings.Replace(rule(", ground: g"), "then: delete", "then: restrict", 1), "collected", "withdrawn", 1), []string{".keep: is required with then: restrict"}, false},
		{"ground_without_restrict", rule(", ground: g"), []string{".ground: only a then: restrict rule"}, false},
		{"keep_without_restrict", rule(", keep: 1h"), []string{".keep: only a then: restrict rule"}, false},
		{"unknown_category", strings.Replace(rule(""), "user.contact", "user.contakt", 1), []string{`retention[0] (delete:user.contakt:collected:0).categories[0]: unknown data category "user.contakt"; did you mean "user.contact"?`}, true},
		{"unknown_purpose", strings.Replace(rule(""), "essential.service", "essential.servise", 1), []string{`.purposes[0]: unknown purpose "essential.servise"; did you mean "essential.service"?`}, true},
		{"purpose_group", strings.Replace(rule(""), "essential.service", "marketing", 1), []string{`.purposes[0]: unknown purpose "marketing"`}, true},
		{"unknown_key", rule(", perod: 1h"), []string{"perod"}, false},
		{"records_unknown", "retention:\n  - {records: logs, period: 9000h}\n", []string{`retention[0] (records:logs:0).records: "logs" is not allowed`}, false},
		{"records_with_categories", "retention:\n  - {records: assessments, period: 30000h, categories: [user.contact]}\n", []string{"retention[0] (records:assessments:0).categories: a records rule takes only"}, false},
		{"records_twice", "retention:\n  - {records: assessments, period: 30000h}\n  - {records: assessments, period: 40000h}\n", []string{"retention[1] (records:assessments:1).records: assessments also has a rule at retention[0]"}, false},
		{"decision_log_short", "retention:\n  - {records: decision_log, period: 4415h}\n", []string{"retention[0] (records:decision_log:0).period: must be at least 4416h (184 days"}, false},
		{"decision_log_twice", "decision_log: {retention: 9000h}\nretention:\n  - {records: decision_log, period: 9000h}\n", []string{"decision_log.retention is set too"}, false},
		{"every_too_short", "retention_sweep: {every: 30s}\n", []string{"retention_sweep.every: 30s is under the minimum of 1m"}, false},
		{"every_not_duration", "retention_sweep: {every: daily}\n", []string{`retention_sweep.every: "daily" is not a duration`}, false},
		{"batch_too_big", "retention_sweep: {batch: 10001}\n", []string{"retention_sweep.batch"}, false},
		{"dated_keys_on_sql", "dsar:\n  stores:\n    - {name: c, type: postgres, dsn: x, dated_keys: [{key: 'a:{subject}', categories: [user.contact], dated_by: ttl}]}\n", []string{"dsar.stores[0].dated_keys: only a redis store"}, false},
		{"dated_key_without_subject", "dsar:\n  stores:\n    - {name: c, type: redis, addr: 'h:1', dated_keys: [{key: 'a', categories: [user.contact], dated_by: ttl}]}\n", []string{"dsar.stores[0].dated_keys[0].key"}, false},
		{"dated_key_unknown_category", "dsar:\n  stores:\n    - {name: c, type: redis, addr: 'h:1', dated_keys: [{key: 'a:{subject}', categories: [user.contakt], dated_by: ttl}]}\n", []string{`dsar.stores[0].dated_keys[0].categories[0]: unknown data category "user.contakt"`}, true},
		{"dated_by_is_mapped", "dsar:\n  stores:\n    - {name: c, type: postgres, dsn: x, tables: [{table: t, subject_column: s, dated_by: e, columns: {e: user.contact.email}, erase: delete}]}\n", []string{`dsar.stores[0].tables[0].dated_by: "e" is a mapped personal column`}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse([]byte(tc.yaml))
			if tc.names {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				_, err = f.Taxonomy()
			}
			if err == nil {
				t.Fatalf("no error for\n%s", tc.yaml)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q; want it to contain %q", err, w)
				}
			}
		})
	}
}

// proves AUD-03: a rule for the impact assessments or the records of processing that keeps
// them less than three years (26304h, 1096 days) is refused; three years exactly is accepted.
func TestRetentionRecordsFloor(t *testing.T) {
	for _, kind := range []string{"assessments", "processing_records"} {
		for _, tc := range []struct {
			period string
			ok     bool
		}{{"26304h", true}, {"43800h", true}, {"26303h", false}, {"8760h", false}, {"0s", false}} {
			y := "retention:\n  - {records: " + kind + ", period: " + tc.period + "}\n"
			_, err := Parse([]byte(y))
			switch {
			case tc.ok && err != nil:
				t.Errorf("%s for %s: %v; want accepted", tc.period, kind, err)
			case !tc.ok && (err == nil || !strings.Contains(err.Error(), "period: must be at least 26304h (1096 days")):
				t.Errorf("%s for %s: %v; want refused under the three-year floor", tc.period, kind, err)
			}
		}
	}
}

func TestRetentionRules(t *testing.T) {
	f, err := Parse([]byte(retentionYAML))
	if err != nil {
		t.Fatal(err)
	}
	rules := f.RetentionRules()
	want := []retention.Rule{
		{Name: "browsing-1y", Categories: []privguard.DataCategory{"user.behavior.browsing_history"}, Purposes: []privguard.Purpose{"personalize.recommendation"},
			Period: 8760 * time.Hour, From: retention.FromCollected, Then: retention.ThenDelete},
		{Name: "anonymise:user.contact:withdrawn:1", Categories: []privguard.DataCategory{"user.contact"}, Purposes: []privguard.Purpose{"marketing.communications.sms"},
			Period: 720 * time.Hour, From: retention.FromWithdrawn, Then: retention.ThenAnonymise},
		{Name: "accounting", Categories: []privguard.DataCategory{"user.financial"}, Purposes: []privguard.Purpose{"essential.service"},
			From: retention.FromAccountClosed, Then: retention.ThenRestrict, Ground: "会计档案管理办法 Art. 14: accounting records 30 years", Keep: 262800 * time.Hour},
	}
	if diff := cmp.Diff(want, rules); diff != "" {
		t.Errorf("RetentionRules (-want +got):\n%s", diff)
	}
	keys := f.DSAR.Stores[1].RetentionKeys()
	if len(keys) != 2 || keys[0].Template != "profile:{subject}" || keys[0].DatedBy != "updated_at" || keys[1].Categories[0] != "user.behavior" {
		t.Errorf("RetentionKeys = %+v", keys)
	}
}
