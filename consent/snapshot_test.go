package consent

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/privguard/privguard"
)

// syncBuffer is a log destination safe for the ledger's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

var snapNow = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

func openSnapTest(t testing.TB, store *memStore, log *syncBuffer) *Ledger {
	t.Helper()
	cfg := Config{Store: store, Now: func() time.Time { return snapNow }}
	if log != nil {
		cfg.Logger = slog.New(slog.NewTextHandler(log, nil))
	}
	l, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

func grantSMS(subject privguard.SubjectID) Request {
	return Request{Subject: subject, Purpose: "marketing.communications.sms", Action: ActionGrant, Regime: privguard.RegimePIPL,
		Notice:  &NoticeRef{ID: "marketing", Version: 1, Language: "zh-CN"},
		Channel: ChannelApp, Method: MethodExplicit}
}

func withdrawSMS(subject privguard.SubjectID) Request {
	return Request{Subject: subject, Purpose: "marketing.communications.sms", Action: ActionWithdraw}
}

func mustAppend(t *testing.T, l *Ledger, reqs ...Request) {
	t.Helper()
	for _, req := range reqs {
		if _, _, err := l.Append(context.Background(), req); err != nil {
			t.Fatalf("Append(%s %s): %v", req.Action, req.Subject, err)
		}
	}
}

// snapStore is a ledger in memory with a few subjects, closed (so snapshotted at its head).
func snapStore(t *testing.T) *memStore {
	t.Helper()
	store := newMemStore()
	l := openSnapTest(t, store, nil)
	if _, _, err := l.RegisterNotice(context.Background(), testNotice()); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, grantSMS("s1"), grantSMS("s2"), withdrawSMS("s2"),
		Request{Subject: "s3", Action: ActionObject}, grantSMS("s3"))
	for i := range 300 {
		mustAppend(t, l, grantSMS(privguard.SubjectID("bulk-"+strings.Repeat("x", i%40)+string(rune('a'+i%26)))))
	}
	l.Close()
	if store.snapshot == nil {
		t.Fatal("Close wrote no snapshot")
	}
	return store
}

// answers is what a ledger says about the test subjects.
func answers(t *testing.T, l *Ledger) map[privguard.SubjectID]Status {
	t.Helper()
	out := map[privguard.SubjectID]Status{}
	for _, s := range []privguard.SubjectID{"s1", "s2", "s3", "s4", "unknown", "bulk-xa"} {
		st, _ := l.Check(context.Background(), s, "marketing.communications.sms")
		out[s] = st
	}
	return out
}

func TestSnapshotIgnoredUnlessItMatchesTheChain(t *testing.T) {
	cases := []struct {
		name   string
		edit   func(t *testing.T, s *memStore)
		reason string // "": the snapshot is used
	}{
		{"intact", nil, ""},
		{"byte_flipped", func(t *testing.T, s *memStore) { s.snapshot[len(s.snapshot)/2] ^= 0x10 }, "checksum"},
		{"last_byte_flipped", func(t *testing.T, s *memStore) { s.snapshot[len(s.snapshot)-1] ^= 1 }, "checksum"},
		{"truncated", func(t *testing.T, s *memStore) { s.snapshot = s.snapshot[:len(s.snapshot)/2] }, "unusable snapshot"}, // "truncated" or a length past the end
		{"checksum_cut", func(t *testing.T, s *memStore) { s.snapshot = s.snapshot[:len(s.snapshot)-5] }, "snapshot"},
		{"empty", func(t *testing.T, s *memStore) { s.snapshot = []byte{} }, "not a snapshot"},
		{"trailing_bytes", func(t *testing.T, s *memStore) { s.snapshot = append(s.snapshot, 0, 0) }, "after the state"},
		{"other_key", func(t *testing.T, s *memStore) { s.secrets["consent.table-hash"] = bytes.Repeat([]byte{7}, 16) }, "another table hash key"},
		{"notice_added", func(t *testing.T, s *memStore) {
			n := testNotice()
			n.Version = 2
			l := openSnapTest(t, s, nil)
			if _, _, err := l.RegisterNotice(context.Background(), n); err != nil {
				t.Fatal(err)
			}
			// A crash: the ledger's own snapshot at close is lost, the old one stays.
			old := s.snapshot
			l.Close()
			s.snapshot = old
		}, "other purposes or notices"},
		{"ledger_behind_snapshot", func(t *testing.T, s *memStore) { s.records = s.records[:len(s.records)-1] }, "ledger ends at"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := snapStore(t)
			if tc.edit != nil {
				tc.edit(t, store)
			}
			var log syncBuffer
			l := openSnapTest(t, store, &log)
			got := answers(t, l)
			used := l.snapSeq != 0
			l.Close()
			if tc.reason == "" {
				if !used || strings.Contains(log.String(), "ignored") {
					t.Fatalf("snapshot not used: %s", log.String())
				}
			} else {
				if used || !strings.Contains(log.String(), "snapshot ignored") || !strings.Contains(log.String(), tc.reason) {
					t.Fatalf("log = %q; want the snapshot ignored because %q", log.String(), tc.reason)
				}
			}
			store.snapshot = nil
			full := openSnapTest(t, store, nil)
			defer full.Close()
			if want := answers(t, full); !reflect.DeepEqual(got, want) {
				t.Errorf("answers = %+v; want %+v (full replay)", got, want)
			}
		})
	}
}

// TestSnapshotCannotHideAWithdrawal: a snapshot that says a subject consents is never
// believed over a ledger that records the withdrawal, whether the withdrawal came after the
// snapshot or the ledger's chain is another one from the snapshot's head on.
func TestSnapshotCannotHideAWithdrawal(t *testing.T) {
	ctx := context.Background()
	allowed := func(l *Ledger) bool {
		st, _ := l.Check(ctx, "s1", "marketing.communications.sms")
		return st.Allowed
	}
	t.Run("withdrawn_after_the_snapshot", func(t *testing.T) {
		store := snapStore(t) // s1 granted, snapshot at the head
		l := openSnapTest(t, store, nil)
		old := store.snapshot
		mustAppend(t, l, withdrawSMS("s1"))
		l.Close()
		store.snapshot = old // the crash lost the snapshot at close
		l = openSnapTest(t, store, nil)
		defer l.Close()
		if l.snapSeq == 0 || allowed(l) {
			t.Fatalf("from snapshot %d: s1 allowed = %v; want the withdrawal replayed", l.snapSeq, allowed(l))
		}
	})
	t.Run("other_chain_same_length", func(t *testing.T) {
		a := snapStore(t) // s1 granted at the head
		b := newMemStore()
		for k, v := range a.secrets {
			b.secrets[k] = v
		}
		l := openSnapTest(t, b, nil)
		if _, _, err := l.RegisterNotice(ctx, testNotice()); err != nil {
			t.Fatal(err)
		}
		mustAppend(t, l, grantSMS("s1"))
		for len(b.records) < len(a.records)-1 {
			mustAppend(t, l, grantSMS("other"))
		}
		mustAppend(t, l, withdrawSMS("s1"))
		l.Close()
		if len(b.records) != len(a.records) {
			t.Fatalf("chains of %d and %d records", len(b.records), len(a.records))
		}
		b.snapshot = a.snapshot
		var log syncBuffer
		l = openSnapTest(t, b, &log)
		defer l.Close()
		if l.snapSeq != 0 || allowed(l) || !strings.Contains(log.String(), "another hash") {
			t.Fatalf("s1 allowed = %v with A's snapshot over B's chain (log %q); want the snapshot ignored", allowed(l), log.String())
		}
	})
}

// BenchmarkMemoryPerSubject reports the heap an opened ledger holds per subject
// ((heap in use after Open - before) / subjects) for subjects with one purpose record, and
// with two purposes and a subject-level fact. PRIVGUARD_BENCH_SUBJECTS sets the size
// (default 200,000).
func BenchmarkMemoryPerSubject(b *testing.B) {
	n := 200_000
	if v, err := strconv.Atoi(os.Getenv("PRIVGUARD_BENCH_SUBJECTS")); err == nil && v > 0 {
		n = v
	}
	for _, shape := range []string{"one_purpose", "two_purposes_and_a_fact"} {
		b.Run(shape, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			store := newMemStore()
			l := openSnapTest(b, store, nil)
			if _, _, err := l.RegisterNotice(ctx, testNotice()); err != nil {
				b.Fatal(err)
			}
			var wg sync.WaitGroup
			var next atomic.Int64
			for range 64 {
				wg.Go(func() {
					for {
						i := int(next.Add(1) - 1)
						if i >= n {
							return
						}
						s := privguard.SubjectID("cust-" + strconv.Itoa(10_000_000 + i)[1:])
						reqs := []Request{grantSMS(s)}
						if shape != "one_purpose" {
							g := grantSMS(s)
							g.Purpose = "analytics.ab_testing"
							reqs = append(reqs, g, Request{Subject: s, Action: ActionDeclareAge, AgeBand: AgeAdult})
						}
						for _, req := range reqs {
							if _, _, err := l.Append(ctx, req); err != nil {
								b.Error(err)
								return
							}
						}
					}
				})
			}
			wg.Wait()
			l.Close()
			l = nil
			store.snapshot = nil // measure the full replay's tables
			var before, after runtime.MemStats
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				if l != nil {
					l.Close()
					l = nil
				}
				runtime.GC()
				runtime.ReadMemStats(&before)
				b.StartTimer()
				l = openSnapTest(b, store, nil)
			}
			b.StopTimer()
			runtime.GC()
			runtime.ReadMemStats(&after)
			if got := l.Stats().Subjects; got != n {
				b.Fatalf("%d subjects; want %d", got, n)
			}
			b.ReportMetric((float64(after.HeapInuse)-float64(before.HeapInuse))/float64(n), "B/subject")
			l.Close()
		})
	}
}
