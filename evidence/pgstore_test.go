package evidence_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
	"github.com/privguard/privguard/evidence"
	"github.com/privguard/privguard/pgstore"
)

// TestExportOnSharedStore exports from a ledger on the PostgreSQL shared store that
// follows another process's writes: the export holds both ledgers' records in one chain
// and verifies; a row altered in the database is a chain break the export names.
func TestExportOnSharedStore(t *testing.T) {
	dsn := os.Getenv("PRIVGUARD_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("PRIVGUARD_TEST_POSTGRES_DSN is not set: the shared-store export test needs PostgreSQL " +
			"(e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable; CI sets it)")
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "evtest_" + hex.EncodeToString(b[:])
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
		conn.Close(ctx)
	})
	open := func() *consent.Ledger {
		db, err := pgstore.Open(ctx, dsn, pgstore.Options{Schema: schema, Migrate: true})
		if err != nil {
			t.Fatal(err)
		}
		l, err := consent.Open(ctx, consent.Config{Store: db.Consent()})
		if err != nil {
			db.Close()
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close(); db.Close() })
		return l
	}
	a, bl := open(), open()
	if _, _, err := a.RegisterNotice(ctx, consenttest.MarketingNotice(1, "zh-CN")); err != nil {
		t.Fatal(err)
	}
	grant := func(l *consent.Ledger, s privguard.SubjectID) {
		t.Helper()
		var err error
		for range 50 { // b sees a's notice once it has followed it
			if _, _, err = l.Append(ctx, consent.Request{Subject: s, Purpose: "marketing.communications.sms", Action: consent.ActionGrant,
				Regime: privguard.RegimePIPL, Notice: &consent.NoticeRef{ID: "marketing", Version: 1, Language: "zh-CN"},
				Channel: consent.ChannelWeb, Method: consent.MethodExplicit}); err == nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatal(err)
	}
	for i, s := range subjects {
		grant([]*consent.Ledger{a, bl}[i%2], s)
	}
	now := evidence.Scope{Purpose: "marketing", From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour)}
	var buf bytes.Buffer
	sum, err := evidence.Export(ctx, bl, now, &buf, time.Now(), "test")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := verify(buf.Bytes())
	if err != nil || rep.Records != len(subjects) || sum.TreeSize != uint64(len(subjects)) {
		t.Fatalf("export on the shared store: %+v %v; want %d records that verify", rep, err, len(subjects))
	}
	// proves CON-05: a ledger row rewritten in the shared database, its hash made to
	// match, is a chain break at the next record, and the export refuses to run, naming it.
	var body []byte
	if err := conn.QueryRow(ctx, "SELECT body FROM "+schema+".consent_records WHERE seq = 2").Scan(&body); err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(body, []byte("cust-"))
	body[i] = 'K'
	h := sha256.Sum256(body)
	if _, err := conn.Exec(ctx, "UPDATE "+schema+".consent_records SET body = $1, hash = $2 WHERE seq = 2", body, h[:]); err != nil {
		t.Fatal(err)
	}
	_, err = evidence.Export(ctx, bl, now, &bytes.Buffer{}, time.Now(), "test")
	var brk *consent.Break
	if !errors.As(err, &brk) || brk.Seq != 3 || !strings.Contains(err.Error(), "record 3") {
		t.Fatalf("export after record 2 was rewritten = %v; want a break at record 3", err)
	}
}
