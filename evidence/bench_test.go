package evidence_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
	"github.com/privguard/privguard/evidence"
)

// largeRecords is the size of the large ledger (PRIVGUARD_BENCH_RECORDS, default 1,000,000).
func largeRecords() int {
	if n, err := strconv.Atoi(os.Getenv("PRIVGUARD_BENCH_RECORDS")); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}

// largeLedger builds (once; kept in PRIVGUARD_BENCH_DIR if set, for `privguard consent
// export --data` to be measured on it) a ledger of largeRecords records, one subject each,
// all on 2026-01-05: of every four, two sms grants, an email grant and an sms withdrawal.
func largeLedger(b *testing.B) string {
	b.Helper()
	dir := os.Getenv("PRIVGUARD_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, "privguard.db")
	if _, err := os.Stat(path); err == nil {
		return path
	}
	db, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	clock := &consenttest.Clock{}
	l, err := consent.Open(ctx, consent.Config{Store: db.Consent(), Now: clock.Now})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	if _, _, err := l.RegisterNotice(ctx, consenttest.MarketingNotice(1, "zh-CN")); err != nil {
		b.Fatal(err)
	}
	n := largeRecords()
	start := time.Now()
	const writers = 256
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for k := w; k < n; k += writers {
				s := privguard.SubjectID("cust-" + strconv.Itoa(k))
				req := consent.Request{Subject: s, Purpose: "marketing.communications.sms", Action: consent.ActionGrant, Regime: privguard.RegimePIPL,
					Notice: &consent.NoticeRef{ID: "marketing", Version: 1, Language: "zh-CN"}, Channel: consent.ChannelApp, Method: consent.MethodExplicit,
					Evidence: consent.Evidence{UserAgent: "Mozilla/5.0"}, IP: "198.51.100.7"}
				switch k % 4 {
				case 2:
					req.Purpose = "marketing.communications.email"
				case 3:
					req = consent.Request{Subject: s, Purpose: "marketing.communications.sms", Action: consent.ActionWithdraw, Channel: consent.ChannelWeb}
				}
				if _, _, err := l.Append(ctx, req); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "large ledger: %d records in %v\n", n, time.Since(start).Round(time.Millisecond))
	return path
}

// BenchmarkExportLarge is the export by purpose (marketing.communications: every record
// of the ledger) of the large ledger, and its verification.
func BenchmarkExportLarge(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a 1,000,000-record ledger")
	}
	path := largeLedger(b)
	db, err := boltstore.Open(path, boltstore.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	l, err := consent.Open(ctx, consent.Config{Store: db.Consent(), SnapshotInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	scope := evidence.Scope{Purpose: "marketing.communications", From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)}
	var file bytes.Buffer
	b.Run("export", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			file.Reset()
			if _, err := evidence.Export(ctx, l, scope, &file, time.Now(), "bench"); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(file.Len())/(1<<20), "MB")
	})
	b.Run("verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := verify(file.Bytes()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
