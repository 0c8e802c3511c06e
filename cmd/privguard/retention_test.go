package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/internal/config"
)

// retentionServices returns the three stores' addresses, or skips the test.
func retentionServices(t *testing.T) (pg, my, rd string) {
	pg, my, rd = os.Getenv("PRIVGUARD_TEST_POSTGRES_DSN"), os.Getenv("PRIVGUARD_TEST_MYSQL_DSN"), os.Getenv("PRIVGUARD_TEST_REDIS_ADDR")
	if pg == "" || my == "" || rd == "" {
		t.Skip("PRIVGUARD_TEST_POSTGRES_DSN, PRIVGUARD_TEST_MYSQL_DSN or PRIVGUARD_TEST_REDIS_ADDR is not set (CI sets them; see .ci/run)")
	}
	return pg, my, rd
}

// A time-travel test through serve's own wiring (the configuration, the connectors, the
// engine, the planner) on the real PostgreSQL, MariaDB and Redis: with the clock before
// any period ends nothing changes; past them exactly the expired rows are deleted
// (PostgreSQL, Redis) or anonymised (MariaDB), the report's counts are the stores'; a
// second run changes nothing.
//
// proves PUR-04
func TestRetentionTimeTravel(t *testing.T) {
	pgDSN, myDSN, rdAddr := retentionServices(t)
	ctx := context.Background()
	sfx := fmt.Sprintf("%d", time.Now().UnixNano()%1e9)
	pvT, ordT, key := "rt_pv_"+sfx, "rt_ord_"+sfx, "rt:"+sfx+":recent:{subject}"
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	pg := pgTable(t, pgDSN, pvT, `CREATE TABLE `+pvT+` (customer_id text NOT NULL, url text, viewed_at timestamptz)`,
		`CREATE INDEX ON `+pvT+` (viewed_at)`)
	my := myTable(t, myDSN, ordT, `CREATE TABLE `+ordT+` (customer_id varchar(64) NULL, item varchar(200) NOT NULL, ordered_at datetime NULL, store_id int NOT NULL, INDEX (ordered_at))`)
	rdb := goredis.NewClient(&goredis.Options{Addr: rdAddr})
	defer rdb.Close()
	// Rows on days 0..9 after base; one undated row each, which no sweep by date touches.
	for d := range 10 {
		at := base.Add(time.Duration(d) * 24 * time.Hour)
		s := fmt.Sprintf("c-%d", d)
		if _, err := pg.Exec(ctx, `INSERT INTO `+pvT+` VALUES ($1, $2, $3)`, s, "https://shop.example/p/"+s, at); err != nil {
			t.Fatal(err)
		}
		if _, err := my.Exec(`INSERT INTO `+ordT+` VALUES (?, ?, ?, 7)`, s, "item-"+s, at); err != nil {
			t.Fatal(err)
		}
		k := "rt:" + sfx + ":recent:" + s
		if err := rdb.HSet(ctx, k, "url", "/p/"+s, "updated_at", at.Format(time.RFC3339)).Err(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rdb.Del(context.Background(), k) })
	}
	pg.Exec(ctx, `INSERT INTO `+pvT+` VALUES ('c-undated', 'x', NULL)`)
	my.Exec(`INSERT INTO ` + ordT + ` VALUES ('c-undated', 'x', NULL, 7)`)

	h := newSweepHarness(t, fmt.Sprintf(`
retention:
  - {name: browsing-1y, categories: [user.behavior.browsing_history], purposes: [personalize.recommendation], period: 8760h, from: collected, then: delete}
  - {name: orders-30d, categories: [user.behavior.purchase_history], purposes: [personalize.recommendation], period: 720h, from: collected, then: anonymise}
dsar:
  stores:
    - {name: crm, type: postgres, dsn: %q, tables: [{table: %s, subject_column: customer_id, dated_by: viewed_at, columns: {url: user.behavior.browsing_history}, erase: delete}]}
    - {name: shop, type: mysql, dsn: %q, tables: [{table: %s, subject_column: customer_id, dated_by: ordered_at, columns: {item: user.behavior.purchase_history}, erase: delete}]}
    - {name: cache, type: redis, addr: %q, dated_keys: [{key: %q, categories: [user.behavior.browsing_history], dated_by: updated_at}]}
`, pgDSN, pvT, myDSN, ordT, rdAddr, key), base.Add(5*24*time.Hour), func(_ *sweepHarness, c *dsar.Config) {
		c.SweepBatch, c.SweepPause = 3, -1
	})
	run := func() retentionReport { t.Helper(); return h.run(t) }
	rows := func(rep retentionReport) map[string]int {
		out := map[string]int{}
		for _, a := range rep.Actions {
			out[a.Store] += a.Rows
		}
		return out
	}
	counts := func() (pgLeft, myLinked, rdLeft int) {
		t.Helper()
		if err := pg.QueryRow(ctx, `SELECT count(*) FROM `+pvT).Scan(&pgLeft); err != nil {
			t.Fatal(err)
		}
		if err := my.QueryRow(`SELECT count(*) FROM ` + ordT + ` WHERE customer_id IS NOT NULL`).Scan(&myLinked); err != nil {
			t.Fatal(err)
		}
		keys, err := rdb.Keys(ctx, "rt:"+sfx+":recent:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		return pgLeft, myLinked, len(keys)
	}

	// Day 5: no period has ended.
	if rep := run(); rep.State != "completed" || len(rows(rep)) > 0 && (rows(rep)["crm"]+rows(rep)["shop"]+rows(rep)["cache"]) != 0 {
		t.Fatalf("before any period ended: %+v", rep)
	}
	if p, m, r := counts(); p != 11 || m != 11 || r != 10 {
		t.Fatalf("before any period ended: pg %d, mysql linked %d, redis %d", p, m, r)
	}
	// 30 days and 3 days past day 0: the orders of days 0..2 are anonymised (cut-off day 3).
	h.now = base.Add(720*time.Hour + 3*24*time.Hour)
	rep := run()
	if got := rows(rep); rep.State != "completed" || got["shop"] != 3 || got["crm"] != 0 || got["cache"] != 0 {
		t.Fatalf("past 30 days: %v %+v", got, rep)
	}
	var anon int
	if err := my.QueryRow(`SELECT count(*) FROM ` + ordT + ` WHERE customer_id IS NULL AND item = '' AND ordered_at = '2025-01-01 00:00:00' AND store_id = 7`).Scan(&anon); err != nil || anon != 3 {
		t.Fatalf("anonymised rows as documented: %d, %v", anon, err)
	}
	// A year and 4 days past day 0: browsing of days 0..3 is deleted in PostgreSQL and Redis.
	h.now = base.Add(8760*time.Hour + 4*24*time.Hour)
	rep = run()
	if got := rows(rep); got["crm"] != 4 || got["cache"] != 4 || got["shop"] != 7 {
		t.Fatalf("past a year: %v %+v", got, rep)
	}
	if p, m, r := counts(); p != 7 || m != 1 || r != 6 {
		t.Fatalf("past a year: pg %d (want 7: days 4..9 and the undated), mysql linked %d (want the undated), redis %d", p, m, r)
	}
	var firstLeft time.Time
	if err := pg.QueryRow(ctx, `SELECT min(viewed_at) FROM `+pvT).Scan(&firstLeft); err != nil || !firstLeft.Equal(base.Add(4*24*time.Hour)) {
		t.Fatalf("the earliest row left is %v (%v), want day 4", firstLeft, err)
	}
	// Again at the same time: nothing more to change.
	if got := rows(run()); got["crm"]+got["shop"]+got["cache"] != 0 {
		t.Fatalf("a second run changed %v", got)
	}
}

// A withdrawal erases, after its grace period, the data held only for the withdrawn
// purpose: a subject who withdrew personalisation loses its browsing history, keeps its
// orders (the service still needs them, by a rule that runs from collection), and the
// report says which rule keeps them; a subject who did not withdraw keeps everything.
//
// proves CON-09
func TestRetentionWithdrawalErasesOnlyWhatNoPurposeKeeps(t *testing.T) {
	pgDSN, _, _ := retentionServices(t)
	ctx := context.Background()
	sfx := fmt.Sprintf("%d", time.Now().UnixNano()%1e9)
	pvT, ordT := "rw_pv_"+sfx, "rw_ord_"+sfx
	pg := pgTable(t, pgDSN, pvT, `CREATE TABLE `+pvT+` (customer_id text NOT NULL, url text, viewed_at timestamptz)`)
	pgTable(t, pgDSN, ordT, `CREATE TABLE `+ordT+` (customer_id text NOT NULL, item text, ordered_at timestamptz)`)
	base := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for _, s := range []string{"withdrew", "stayed"} {
		for d := range 3 {
			at := base.Add(time.Duration(d) * time.Hour)
			pg.Exec(ctx, `INSERT INTO `+pvT+` VALUES ($1, 'https://shop.example/p', $2)`, s, at)
			pg.Exec(ctx, `INSERT INTO `+ordT+` VALUES ($1, 'item', $2)`, s, at)
		}
	}
	h := newSweepHarness(t, fmt.Sprintf(`
retention:
  - {name: browsing-withdrawn, categories: [user.behavior.browsing_history], purposes: [personalize.recommendation], period: 48h, from: withdrawn, then: delete}
  - {name: orders-withdrawn, categories: [user.behavior.purchase_history], purposes: [personalize.recommendation], period: 48h, from: withdrawn, then: delete}
  - {name: orders-service, categories: [user.behavior.purchase_history], purposes: [essential.service], period: 26304h, from: collected, then: delete}
dsar:
  stores:
    - name: crm
      type: postgres
      dsn: %q
      tables:
        - {table: %s, subject_column: customer_id, dated_by: viewed_at, columns: {url: user.behavior.browsing_history}, erase: delete}
        - {table: %s, subject_column: customer_id, dated_by: ordered_at, columns: {item: user.behavior.purchase_history}, erase: delete}
`, pgDSN, pvT, ordT), base.Add(24*time.Hour), nil)
	if _, _, err := h.ledger.RegisterNotice(ctx, consenttest.MarketingNotice(1, "zh-CN")); err != nil {
		t.Fatal(err)
	}
	for _, s := range []privguard.SubjectID{"withdrew", "stayed"} {
		if _, _, err := h.ledger.Append(ctx, consent.Request{Subject: s, Purpose: "personalize.recommendation", Action: consent.ActionGrant,
			Regime: privguard.RegimePIPL, Notice: &consent.NoticeRef{ID: "marketing", Version: 1, Language: "zh-CN"},
			Channel: consent.ChannelApp, Method: consent.MethodExplicit}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := h.ledger.Append(ctx, consent.Request{Subject: "withdrew", Purpose: "personalize.recommendation", Action: consent.ActionWithdraw}); err != nil {
		t.Fatal(err)
	}
	left := func(table, s string) int {
		var n int
		if err := pg.QueryRow(ctx, `SELECT count(*) FROM `+table+` WHERE customer_id = $1`, s).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	sweep := func() retentionReport { t.Helper(); return h.run(t) }
	// Within the grace period nothing goes.
	h.now = base.Add(24*time.Hour + 47*time.Hour)
	sweep()
	if left(pvT, "withdrew") != 3 || left(ordT, "withdrew") != 3 {
		t.Fatal("erased within the grace period")
	}
	// Past it: the browsing history of the subject who withdrew is erased, nothing else.
	h.now = base.Add(24*time.Hour + 49*time.Hour)
	rep := sweep()
	if left(pvT, "withdrew") != 0 || left(ordT, "withdrew") != 3 || left(pvT, "stayed") != 3 || left(ordT, "stayed") != 3 {
		t.Fatalf("after the grace period: browsing %d orders %d (withdrew), browsing %d orders %d (stayed); %+v",
			left(pvT, "withdrew"), left(ordT, "withdrew"), left(pvT, "stayed"), left(ordT, "stayed"), rep)
	}
	kept := false
	for _, k := range rep.Kept {
		if k.Table == ordT && k.Rule == "orders-withdrawn" && k.KeptBy == "orders-service" && k.Subjects == 1 {
			kept = true
		}
	}
	if !kept || rep.Deletions != 0 {
		t.Fatalf("the report does not say the service keeps the orders: %+v", rep)
	}
}

// Account cancellation (注销): once the app records that the account closed, the rules
// that run from it erase the subject in every store when their period ends — here every
// category the stores hold, so the subject gets an ordinary deletion request with trigger
// service_ended, which deletes its rows in PostgreSQL and MariaDB; another subject's rows
// stay; the next run plans nothing for the erased subject. A rule that runs from the
// withdrawal of consent does not hold the data of a closed account: the service's end
// ends the purpose too, though the subject never withdrew.
//
// proves DSR-12
func TestRetentionAccountClosedErasesEverywhere(t *testing.T) {
	pgDSN, myDSN, _ := retentionServices(t)
	ctx := context.Background()
	sfx := fmt.Sprintf("%d", time.Now().UnixNano()%1e9)
	custT, ordT := "ra_cust_"+sfx, "ra_ord_"+sfx
	pg := pgTable(t, pgDSN, custT, `CREATE TABLE `+custT+` (id text NOT NULL, email text, last_login_at timestamptz)`,
		`INSERT INTO `+custT+` VALUES ('closing', 'a@example.com', now()), ('staying', 'b@example.com', now())`)
	my := myTable(t, myDSN, ordT, `CREATE TABLE `+ordT+` (customer_id varchar(64) NOT NULL, item varchar(200))`,
		`INSERT INTO `+ordT+` VALUES ('closing', 'x'), ('closing', 'y'), ('staying', 'z')`)
	h := newSweepHarness(t, fmt.Sprintf(`
retention:
  - {name: account-30d, categories: [user], purposes: [essential.service], period: 720h, from: account_closed, then: delete}
  - {name: orders-withdrawn, categories: [user.behavior.purchase_history], purposes: [personalize.recommendation], period: 720h, from: withdrawn, then: delete}
dsar:
  stores:
    - {name: crm, type: postgres, dsn: %q, tables: [{table: %s, subject_column: id, columns: {email: user.contact.email}, erase: delete}]}
    - {name: shop, type: mysql, dsn: %q, tables: [{table: %s, subject_column: customer_id, columns: {item: user.behavior.purchase_history}, erase: delete}]}
`, pgDSN, custT, myDSN, ordT), time.Now().UTC(), func(h *sweepHarness, c *dsar.Config) {
		c.OnErased = func(ctx context.Context, s privguard.SubjectID) error {
			_, _, err := h.ledger.Append(ctx, consent.Request{Subject: s, Action: consent.ActionErase, ActorType: consent.ActorSystem})
			return err
		}
	})
	if _, _, err := h.ledger.Append(ctx, consent.Request{Subject: "closing", Action: consent.ActionCloseAccount, ActorType: consent.ActorSubject}); err != nil {
		t.Fatal(err)
	}
	rr, engine := h.rr, h.engine
	rows := func(s string) int {
		var a, b int
		pg.QueryRow(ctx, `SELECT count(*) FROM `+custT+` WHERE id = $1`, s).Scan(&a)
		my.QueryRow(`SELECT count(*) FROM `+ordT+` WHERE customer_id = ?`, s).Scan(&b)
		return a + b
	}
	// Within the 30 days nothing is planned.
	h.now = h.now.Add(719 * time.Hour)
	if _, rep, err := rr.Run(ctx, false); err != nil || rep.(retentionReport).Deletions != 0 {
		t.Fatalf("within the period: %+v %v", rep, err)
	}
	for range 5 {
		engine.Step(ctx)
	}
	h.now = h.now.Add(2 * time.Hour)
	_, rep, err := rr.Run(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	r := rep.(retentionReport)
	if r.Deletions != 1 || len(r.Requests) != 1 {
		t.Fatalf("past the period: %+v", r)
	}
	del, err := engine.Get(ctx, r.Requests[0])
	if err != nil || del.Type != dsar.TypeDeletion || del.Subject != "closing" || del.Trigger != "service_ended" {
		t.Fatalf("the deletion request: %+v %v", del, err)
	}
	for range 10 {
		engine.Step(ctx)
	}
	if del, _ = engine.Get(ctx, del.ID); del.State != dsar.StateCompleted || rows("closing") != 0 || rows("staying") != 2 {
		t.Fatalf("after the deletion: %s, closing %d rows, staying %d rows", del.State, rows("closing"), rows("staying"))
	}
	for range 5 {
		engine.Step(ctx)
	}
	if _, rep, err = rr.Run(ctx, false); err != nil || rep.(retentionReport).Deletions != 0 {
		t.Fatalf("the erased subject was planned again: %+v %v", rep, err)
	}
}

// sweepHarness is serve's retention wiring (the configuration, the connectors, the engine
// on a bbolt file, the ledger, the sweeper) on a clock the test moves.
type sweepHarness struct {
	now    time.Time
	rr     *retentionRunner
	engine *dsar.Engine
	ledger *consent.Ledger
}

// newSweepHarness wires yaml's stores and rules at now; set, if given, changes the
// engine's configuration.
func newSweepHarness(t *testing.T, yaml string, now time.Time, set func(*sweepHarness, *dsar.Config)) *sweepHarness {
	t.Helper()
	h := &sweepHarness{now: now}
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.Taxonomy(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	conns, closeConns, err := connectors(context.Background(), cfg.DSAR.Stores, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeConns)
	db, err := boltstore.Open(filepath.Join(t.TempDir(), "privguard.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	h.ledger = consenttest.Open(t, "", consent.Config{Now: h.clock})
	ec := dsar.Config{Store: db.DSAR(), Connectors: conns, Now: h.clock}
	if set != nil {
		set(h, &ec)
	}
	if h.engine, err = dsar.New(ec); err != nil {
		t.Fatal(err)
	}
	h.rr = newRetention(cfg, conns, h.engine, h.ledger, log)
	h.rr.planner.Now = h.clock
	return h
}

func (h *sweepHarness) clock() time.Time { return h.now }

// run starts a retention run and steps the engine until the run finished.
func (h *sweepHarness) run(t *testing.T) retentionReport {
	t.Helper()
	ctx := context.Background()
	id, _, err := h.rr.Run(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		if _, err := h.engine.Step(ctx); err != nil {
			t.Fatal(err)
		}
		rep, err := h.rr.Report(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r := rep.(retentionReport); r.finished() {
			return r
		}
	}
	t.Fatal("the run did not finish")
	return retentionReport{}
}
