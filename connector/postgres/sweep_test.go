package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/connector/postgres"
	"github.com/privguard/privguard/dsar"
)

var (
	cut  = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	old  = time.Date(2025, 3, 17, 13, 45, 0, 0, time.UTC) // before cut
	newT = time.Date(2025, 9, 2, 8, 0, 0, 0, time.UTC)    // after cut
)

// sweepRow is a row of the sweep test table; tag (unmapped) names it.
type sweepRow struct {
	tag, subject string
	at           *time.Time
}

// sweepFixture is a table per id type: id (the subject column), email (mapped, nullable),
// score (mapped, NOT NULL), note (not mapped), at (dated_by and last_active_by).
type sweepFixture struct {
	pool  *pgxpool.Pool
	c     *postgres.Connector
	table string
}

func newSweepFixture(t *testing.T, idType, suffix string, erase dsar.EraseMode, rows []sweepRow) sweepFixture {
	t.Helper()
	dsn := testDSN(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	exec(t, pool, `CREATE EXTENSION IF NOT EXISTS citext`,
		`CREATE COLLATION IF NOT EXISTS pgtest_nocase (provider = icu, locale = 'und-u-ks-level1', deterministic = false)`)
	table := "pgsweep_" + suffix
	exec(t, pool, `DROP TABLE IF EXISTS `+table,
		`CREATE TABLE `+table+` (tag text PRIMARY KEY, id `+idType+`, email text, score int NOT NULL, note text, at timestamptz)`,
		`CREATE INDEX ON `+table+` (at)`)
	t.Cleanup(func() { pool.Exec(context.Background(), `DROP TABLE IF EXISTS `+table) })
	for _, r := range rows {
		if _, err := pool.Exec(ctx, `INSERT INTO `+table+` VALUES ($1, $2, $3, 7, 'kept', $4)`, r.tag, r.subject, r.tag+"@example.com", r.at); err != nil {
			t.Fatal(err)
		}
	}
	c, err := postgres.New(ctx, postgres.Config{Name: "crm", DSN: dsn, Tables: []postgres.Table{{
		Table: table, SubjectColumn: "id", Erase: erase, DatedBy: "at", LastActiveBy: "at",
		Columns: map[string]privguard.DataCategory{"email": "user.contact.email", "score": "user.behavior"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.CheckMap(ctx); err != nil {
		t.Fatalf("CheckMap: %v", err)
	}
	return sweepFixture{pool, c, table}
}

// state returns each row by tag: "id|email|score|note|at" (NULLs as "-").
func (f sweepFixture) state(t *testing.T) map[string]string {
	t.Helper()
	rows, err := f.pool.Query(context.Background(), `SELECT tag, concat_ws('|', COALESCE(id::text, '-'), COALESCE(email, '-'), score, note,
		COALESCE(to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), '-')) FROM `+f.table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var tag, v string
		if err := rows.Scan(&tag, &v); err != nil {
			t.Fatal(err)
		}
		out[tag] = v
	}
	return out
}

// sweepAll runs a in batches of limit until more is false and returns the counts per call.
func sweepAll(t *testing.T, s dsar.Sweeper, a dsar.SweepAction, limit int) []int {
	t.Helper()
	var ns []int
	for range 100 {
		n, more, err := s.Sweep(context.Background(), a, limit)
		if err != nil {
			t.Fatalf("Sweep: %v", err)
		}
		if n > limit {
			t.Fatalf("Sweep changed %d rows, limit %d", n, limit)
		}
		ns = append(ns, n)
		if !more {
			return ns
		}
	}
	t.Fatal("Sweep never said done")
	return nil
}

func tp(t time.Time) *time.Time { return &t }

var idTypes = []struct{ name, idType string }{
	{"text", "text"},
	{"citext", "citext"},
	{"nocase", "text COLLATE pgtest_nocase"},
}

// TestSweepDeleteBefore: exactly the rows dated before the cut-off go, in batches of the
// limit; undated rows stay; a repeat changes nothing.
func TestSweepDeleteBefore(t *testing.T) {
	var rows []sweepRow
	for i, tag := range []string{"o1", "o2", "o3", "o4", "o5"} {
		rows = append(rows, sweepRow{tag, "S-" + string(rune('1'+i)), tp(old)})
	}
	rows = append(rows, sweepRow{"edge", "S-9", tp(cut)}, sweepRow{"n1", "S-1", tp(newT)}, sweepRow{"null1", "S-1", nil}, sweepRow{"null2", "S-2", nil})
	f := newSweepFixture(t, "text", "del_before", dsar.EraseDelete, rows)
	a := dsar.SweepAction{Rule: "r", Table: f.table, Mode: dsar.SweepDelete, Before: cut}
	if n, err := f.c.CountSweep(context.Background(), a); err != nil || n != 5 {
		t.Fatalf("CountSweep = %d, %v; want 5", n, err)
	}
	if ns := sweepAll(t, f.c, a, 2); !slices.Equal(ns, []int{2, 2, 1}) {
		t.Errorf("batches = %v, want [2 2 1]", ns)
	}
	got := f.state(t)
	if len(got) != 4 || got["edge"] == "" || got["n1"] == "" || got["null1"] == "" || got["null2"] == "" {
		t.Errorf("rows left = %v, want edge, n1, null1, null2", got)
	}
	if ns := sweepAll(t, f.c, a, 2); !slices.Equal(ns, []int{0}) {
		t.Errorf("repeat: batches = %v, want [0]", ns)
	}
	if n, err := f.c.CountSweep(context.Background(), a); err != nil || n != 0 {
		t.Errorf("CountSweep after = %d, %v; want 0", n, err)
	}
}

// lookalikes are ids a case- or accent-insensitive comparison, or one ignoring trailing
// spaces, would take for "S-1".
var lookalikes = []string{"s-1", "S-1 ", "Ś-1", " S-1"}

func lookalikeRows() []sweepRow {
	rows := []sweepRow{{"mine-old", "S-1", tp(old)}, {"mine-new", "S-1", tp(newT)}, {"mine-null", "S-1", nil}}
	for i, id := range lookalikes {
		rows = append(rows, sweepRow{"other-" + string(rune('a'+i)), id, tp(old)})
	}
	return rows
}

// TestSweepSubjectsExact: a Subjects action changes exactly the named subjects' rows, on
// every id type, never those of ids that differ by case, accent or spaces.
func TestSweepSubjectsExact(t *testing.T) {
	for _, tc := range idTypes {
		t.Run(tc.name, func(t *testing.T) {
			for _, mode := range []dsar.SweepMode{dsar.SweepDelete, dsar.SweepAnonymise, dsar.SweepClear} {
				t.Run(string(mode), func(t *testing.T) {
					f := newSweepFixture(t, tc.idType, "subj_"+tc.name+"_"+string(mode), dsar.EraseNull, lookalikeRows())
					before := f.state(t)
					a := dsar.SweepAction{Rule: "r", Table: f.table, Mode: mode, Subjects: []privguard.SubjectID{"S-1", "S-404"}}
					if mode == dsar.SweepClear {
						a.Columns = []string{"email"}
					}
					if n, err := f.c.CountSweep(context.Background(), a); err != nil || n != 3 {
						t.Fatalf("CountSweep = %d, %v; want 3", n, err)
					}
					if ns := sweepAll(t, f.c, a, 2); !slices.Equal(ns, []int{2, 1}) {
						t.Errorf("batches = %v, want [2 1]", ns)
					}
					after := f.state(t)
					for tag, v := range before {
						changed := after[tag] != v
						if mine := tag[:4] == "mine"; changed != mine {
							t.Errorf("row %s: %q -> %q", tag, v, after[tag])
						}
					}
					if ns := sweepAll(t, f.c, a, 2); !slices.Equal(ns, []int{0}) {
						t.Errorf("repeat: batches = %v, want [0]", ns)
					}
					if mode == dsar.SweepClear && after["mine-old"] != "S-1|-|7|kept|2025-03-17 13:45" {
						t.Errorf("cleared row = %q", after["mine-old"])
					}
				})
			}
		})
	}
}

// TestSweepAnonymise: the rows before the cut-off lose their subject (NULL, or the
// anonymous id when NOT NULL) and mapped values (NULL or neutral), their date is cut to
// the month; unmapped columns stay; undated and later rows are untouched; a repeat
// changes nothing.
func TestSweepAnonymise(t *testing.T) {
	for _, notNull := range []bool{false, true} {
		name := "nullable"
		idType := "text"
		if notNull {
			name, idType = "notnull", "text NOT NULL"
		}
		t.Run(name, func(t *testing.T) {
			rows := []sweepRow{{"o1", "S-1", tp(old)}, {"o2", "S-2", tp(old)}, {"o3", "S-3", tp(old)},
				{"n1", "S-1", tp(newT)}, {"null1", "S-1", nil}}
			f := newSweepFixture(t, idType, "anon_"+name, dsar.EraseDelete, rows)
			before := f.state(t)
			a := dsar.SweepAction{Rule: "r", Table: f.table, Mode: dsar.SweepAnonymise, Before: cut}
			if ns := sweepAll(t, f.c, a, 2); !slices.Equal(ns, []int{2, 1}) {
				t.Errorf("batches = %v, want [2 1]", ns)
			}
			after := f.state(t)
			anon := "-"
			if notNull {
				anon = dsar.AnonymousSubject
			}
			for _, tag := range []string{"o1", "o2", "o3"} {
				if want := anon + "|-|0|kept|2025-03-01 00:00"; after[tag] != want {
					t.Errorf("row %s = %q, want %q", tag, after[tag], want)
				}
			}
			for _, tag := range []string{"n1", "null1"} {
				if after[tag] != before[tag] {
					t.Errorf("row %s changed: %q -> %q", tag, before[tag], after[tag])
				}
			}
			if ns := sweepAll(t, f.c, a, 2); !slices.Equal(ns, []int{0}) {
				t.Errorf("repeat: batches = %v, want [0]", ns)
			}
			if n, err := f.c.CountSweep(context.Background(), a); err != nil || n != 0 {
				t.Errorf("CountSweep after = %d, %v; want 0", n, err)
			}
		})
	}
}

// TestSweepClearMask: a clear on a mask table masks the columns named (and only those),
// with both conditions.
func TestSweepClearMask(t *testing.T) {
	rows := []sweepRow{{"mine-old", "S-1", tp(old)}, {"mine-new", "S-1", tp(newT)}, {"other-old", "S-2", tp(old)}}
	f := newSweepFixture(t, "citext", "clear_mask", dsar.EraseMask, rows)
	before := f.state(t)
	a := dsar.SweepAction{Rule: "r", Table: f.table, Mode: dsar.SweepClear, Columns: []string{"email"}, Before: cut, Subjects: []privguard.SubjectID{"S-1"}}
	if ns := sweepAll(t, f.c, a, 10); !slices.Equal(ns, []int{1}) {
		t.Errorf("batches = %v, want [1]", ns)
	}
	after := f.state(t)
	if want := "S-1|" + dsar.MaskValue + "|7|kept|2025-03-17 13:45"; after["mine-old"] != want {
		t.Errorf("mine-old = %q, want %q", after["mine-old"], want)
	}
	if after["mine-new"] != before["mine-new"] || after["other-old"] != before["other-old"] {
		t.Errorf("other rows changed: %v -> %v", before, after)
	}
	if ns := sweepAll(t, f.c, a, 10); !slices.Equal(ns, []int{0}) {
		t.Errorf("repeat: batches = %v, want [0]", ns)
	}
}

// TestSweepRefusesBadActions: actions the connector cannot carry out safely are errors,
// and change nothing.
func TestSweepRefusesBadActions(t *testing.T) {
	f := newSweepFixture(t, "text", "bad", dsar.EraseDelete, []sweepRow{{"o1", "S-1", tp(old)}})
	for _, a := range []dsar.SweepAction{
		{Table: f.table, Mode: dsar.SweepDelete},                                        // neither cut-off nor subjects
		{Table: "pgsweep_nope", Mode: dsar.SweepDelete, Before: cut},                    // not in the map
		{Table: f.table, Mode: dsar.SweepExpire, Before: cut},                           // not a SQL mode
		{Table: f.table, Mode: dsar.SweepClear, Before: cut},                            // no columns
		{Table: f.table, Mode: dsar.SweepClear, Before: cut, Columns: []string{"note"}}, // unmapped
	} {
		if _, _, err := f.c.Sweep(context.Background(), a, 10); err == nil {
			t.Errorf("Sweep(%+v) accepted", a)
		}
		if _, err := f.c.CountSweep(context.Background(), a); err == nil {
			t.Errorf("CountSweep(%+v) accepted", a)
		}
	}
	if len(f.state(t)) != 1 {
		t.Error("a refused action changed rows")
	}
}

// TestActivity: Inactive pages through the subjects whose latest activity is before the
// cut-off, ids compared exactly; LastActive returns each named subject's latest activity.
func TestActivity(t *testing.T) {
	for _, tc := range idTypes {
		t.Run(tc.name, func(t *testing.T) {
			rows := []sweepRow{
				{"a1", "A", tp(old)}, {"a2", "a", tp(old)}, {"a3", "A ", tp(old)},
				{"b1", "B", tp(old)}, {"b2", "B", tp(newT)}, // active again
				{"c1", "C", tp(old.Add(-time.Hour))}, {"c2", "C", tp(old)}, {"c3", "C", nil},
				{"d1", "D", nil}, // never dated
				{"e1", "E", tp(newT)},
			}
			f := newSweepFixture(t, tc.idType, "act_"+tc.name, dsar.EraseDelete, rows)
			ctx := context.Background()
			all, err := f.c.Inactive(ctx, f.table, cut, "", 100)
			if err != nil {
				t.Fatal(err)
			}
			want := []privguard.SubjectID{"A", "C", "a"} // "A " is not a subject id: left out
			if !slices.Equal(all, want) {
				t.Errorf("Inactive = %q, want %q", all, want)
			}
			var paged []privguard.SubjectID
			var after privguard.SubjectID
			for range 10 {
				page, err := f.c.Inactive(ctx, f.table, cut, after, 1)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) == 0 {
					break
				}
				paged = append(paged, page...)
				after = page[len(page)-1]
			}
			if !slices.Equal(paged, want) {
				t.Errorf("Inactive paged = %q, want %q", paged, want)
			}
			last, err := f.c.LastActive(ctx, f.table, []privguard.SubjectID{"A", "B", "C", "D", "Z"})
			if err != nil {
				t.Fatal(err)
			}
			if len(last) != 3 || !last["A"].Equal(old) || !last["B"].Equal(newT) || !last["C"].Equal(old) {
				t.Errorf("LastActive = %v", last)
			}
		})
	}
}

// TestCheckMapDatedColumns: a missing dated_by or last_active_by column is a MapError
// naming it; a dated_by column no index leads with is a logged warning.
func TestCheckMapDatedColumns(t *testing.T) {
	dsn := testDSN(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	exec(t, pool, `DROP TABLE IF EXISTS pgsweep_map`, `CREATE TABLE pgsweep_map (uid text, email text, at timestamptz, seen timestamptz)`,
		`CREATE INDEX ON pgsweep_map (seen, at)`)
	t.Cleanup(func() { pool.Exec(context.Background(), `DROP TABLE IF EXISTS pgsweep_map`) })
	check := func(tb postgres.Table) (error, string) {
		var logs bytes.Buffer
		c, err := postgres.New(ctx, postgres.Config{Name: "crm", DSN: dsn, Tables: []postgres.Table{tb},
			Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.CheckMap(ctx), logs.String()
	}
	base := postgres.Table{Table: "pgsweep_map", SubjectColumn: "uid", Erase: dsar.EraseDelete,
		Columns: map[string]privguard.DataCategory{"email": "user.contact.email"}}
	for _, missing := range []postgres.Table{
		func() postgres.Table { tb := base; tb.DatedBy = "nope"; return tb }(),
		func() postgres.Table { tb := base; tb.LastActiveBy = "nope"; return tb }(),
	} {
		var me *dsar.MapError
		if err, _ := check(missing); !errors.As(err, &me) || me.Column != "nope" || me.Kind != dsar.KindColumnMissing {
			t.Errorf("CheckMap(%+v) = %v, want the missing column", missing, err)
		}
	}
	tb := base
	tb.DatedBy, tb.LastActiveBy = "at", "seen"
	if err, logs := check(tb); err != nil || !strings.Contains(logs, "no index leads with the dated_by column") || !strings.Contains(logs, "column=at") {
		t.Errorf("unindexed dated_by: err %v, logs %q; want a warning", err, logs)
	}
	tb.DatedBy = "seen"
	if err, logs := check(tb); err != nil || logs != "" {
		t.Errorf("indexed dated_by: err %v, logs %q; want neither", err, logs)
	}
	// A text column would be compared as text ('12/01/2026' < '2025-...'): refused.
	tb.DatedBy, tb.LastActiveBy = "email", ""
	tb.Columns = nil
	if err, _ := check(tb); err == nil || !strings.Contains(err.Error(), "column email is text") {
		t.Errorf("text dated_by: %v; want refused, naming the type", err)
	}
}
