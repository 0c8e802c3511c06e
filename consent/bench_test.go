package consent_test

// Benchmarks of the consent ledger.
//
//	go test -run '^$' -bench 'Check|Grant' -benchmem -count 5 ./consent/
//	go test -run '^$' -bench 'Audience|Open|Verify' -benchmem -count 3 -benchtime 1x -timeout 30m ./consent/
//
// The fixtures (a 100,000-subject ledger for Check, a 1,000,000-subject ledger for Audience,
// Open and Verify) are built once per test process through Ledger.Append from many
// concurrent writers, in temporary directories that TestMain removes. Set
// PRIVGUARD_BENCH_SUBJECTS to build a smaller (or larger) big fixture.

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
)

// TestMain removes the benchmark fixtures when the test binary ends.
func TestMain(m *testing.M) {
	code := m.Run()
	benchCleanup()
	os.Exit(code)
}

var (
	benchCtx = context.Background()

	benchSink     consent.Status // keeps Check results alive
	benchSinkKept atomic.Int64

	benchDirsMu sync.Mutex
	benchDirs   []string
)

// benchTempDir makes a directory that outlives one benchmark run (b.TempDir does not) and is
// removed by TestMain.
func benchTempDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", "privguard-bench-")
	if err != nil {
		tb.Fatal(err)
	}
	benchDirsMu.Lock()
	benchDirs = append(benchDirs, dir)
	benchDirsMu.Unlock()
	return dir
}

func benchCleanup() {
	checkFix.close()
	bigFix.mu.Lock()
	bigFix.closeLocked()
	bigFix.mu.Unlock()
	benchDirsMu.Lock()
	defer benchDirsMu.Unlock()
	for _, d := range benchDirs {
		os.RemoveAll(d)
	}
	benchDirs = nil
}

// countingStore counts committed groups, to show how well group commit batches.
type countingStore struct {
	consent.Store
	commits atomic.Int64
	records atomic.Int64
}

func (s *countingStore) Commit(ctx context.Context, b *consent.Batch) error {
	err := s.Store.Commit(ctx, b)
	if err == nil {
		s.commits.Add(1)
		s.records.Add(int64(len(b.Records)))
	}
	return err
}

// WriteSnapshot and ReadSnapshot pass snapshots through to the store.
func (s *countingStore) WriteSnapshot(ctx context.Context, write func(io.Writer) error) error {
	return s.Store.(consent.Snapshotter).WriteSnapshot(ctx, write)
}

func (s *countingStore) ReadSnapshot(ctx context.Context, read func(io.Reader, int64) error) error {
	return s.Store.(consent.Snapshotter).ReadSnapshot(ctx, read)
}

func (s *countingStore) perCommit() float64 {
	c := s.commits.Load()
	if c == 0 {
		return 0
	}
	return float64(s.records.Load()) / float64(c)
}

// benchLedger is a ledger on a bbolt file.
type benchLedger struct {
	db    *boltstore.DB
	store *countingStore
	l     *consent.Ledger
}

func openBenchLedger(path string, tax *privguard.Taxonomy) (*benchLedger, error) {
	db, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		return nil, err
	}
	cs := &countingStore{Store: db.Consent()}
	l, err := consent.Open(benchCtx, consent.Config{Store: cs, Taxonomy: tax})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &benchLedger{db: db, store: cs, l: l}, nil
}

func (d *benchLedger) close() {
	if d == nil {
		return
	}
	d.l.Close()
	d.db.Close()
}

// registerBenchNotice registers the marketing notice (version 1, zh-CN) every grant cites.
func registerBenchNotice(l *consent.Ledger) error {
	_, _, err := l.RegisterNotice(benchCtx, consenttest.MarketingNotice(1, "zh-CN"))
	return err
}

// benchTaxonomy is the default taxonomy plus the group purpose "marketing.communications",
// so that a grant for it counts, as an ancestor, for "marketing.communications.sms" (the
// default taxonomy registers no purpose together with one of its ancestors).
func benchTaxonomy() *privguard.Taxonomy {
	consentOnly := map[privguard.Regime][]privguard.LegalBasis{
		privguard.RegimePIPL: {privguard.BasisConsent}, privguard.RegimeGDPR: {privguard.BasisConsent}}
	infos := append(privguard.DefaultPurposes(), privguard.PurposeInfo{
		Purpose: "marketing.communications", Description: "Marketing messages on every channel",
		Bases: consentOnly, Validity: privguard.DefaultConsentValidity, DirectMarketing: true,
		Categories: []privguard.DataCategory{"user.name.nickname", "user.contact"},
	})
	t, err := privguard.NewTaxonomy(infos)
	if err != nil {
		panic(err)
	}
	return t
}

// benchIP is a distinct IPv4 address for i.
func benchIP(i int) string {
	return netip.AddrFrom4([4]byte{100, byte(i >> 16), byte(i >> 8), byte(i)}).String()
}

// benchRequest is a complete grant as a collecting app sends it: real notice, IP, user agent.
func benchRequest(subject privguard.SubjectID, purpose privguard.Purpose, i int) consent.Request {
	return consent.Request{
		Subject: subject, Purpose: purpose, Action: consent.ActionGrant, Regime: privguard.RegimePIPL,
		Notice:  &consent.NoticeRef{ID: "marketing", Version: 1, Language: "zh-CN"},
		Channel: consent.ChannelApp, Method: consent.MethodExplicit,
		Evidence: consent.Evidence{UserAgent: "ExampleApp/7.2 (iOS 18)", UIScreen: "onboarding/consent"},
		IP:       benchIP(i),
	}
}

// appendConcurrently appends req(i) for every i in [0, n) from the given number of
// goroutines and returns the first error.
func appendConcurrently(l *consent.Ledger, n, writers int, req func(i int) consent.Request) error {
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for range writers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if _, _, err := l.Append(benchCtx, req(i)); err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("append %d: %w", i, err) })
					next.Store(int64(n))
					return
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}

func subjectID(prefix string, i int) privguard.SubjectID {
	return privguard.SubjectID(prefix + strconv.Itoa(10_000_000 + i)[1:]) // 7 digits, zero-padded
}

// ---------------------------------------------------------------------------------------
// Check

const (
	checkSubjects = 100_000
	checkWriters  = 64
)

// checkFix is 100,000 subjects, each granted "analytics.ab_testing" and the group purpose
// "marketing.communications".
type checkFixtureT struct {
	once    sync.Once
	err     error
	d       *benchLedger
	known   []privguard.SubjectID // shuffled
	unknown []privguard.SubjectID
}

var checkFix checkFixtureT

func (f *checkFixtureT) close() {
	f.d.close()
	f.d = nil
}

func checkFixture(b *testing.B) *benchLedger {
	b.Helper()
	f := &checkFix
	f.once.Do(func() {
		start := time.Now()
		d, err := openBenchLedger(filepath.Join(benchTempDir(b), "privguard.db"), benchTaxonomy())
		if err != nil {
			f.err = err
			return
		}
		f.d = d
		if f.err = registerBenchNotice(d.l); f.err != nil {
			return
		}
		purposes := [2]privguard.Purpose{"analytics.ab_testing", "marketing.communications"}
		f.err = appendConcurrently(d.l, 2*checkSubjects, checkWriters, func(i int) consent.Request {
			return benchRequest(subjectID("cust-", i/2), purposes[i%2], i)
		})
		if f.err != nil {
			return
		}
		// Random order over the whole ledger, but each id's bytes allocated in that order, as
		// ids decoded from a stream of requests would be: the benchmark then pays for the
		// ledger's memory accesses, not for fetching its own input.
		rng := rand.New(rand.NewPCG(1, 2))
		for _, k := range rng.Perm(checkSubjects) {
			f.known = append(f.known, subjectID("cust-", k))
		}
		for _, k := range rng.Perm(checkSubjects) {
			f.unknown = append(f.unknown, subjectID("anon-", k))
		}
		st := d.l.Stats()
		fmt.Fprintf(os.Stderr, "check fixture: %d subjects, %d records in %v (%d writers, %.1f records/commit)\n",
			st.Subjects, st.Records, time.Since(start).Round(time.Millisecond), checkWriters, d.store.perCommit())
	})
	if f.err != nil {
		b.Fatalf("check fixture: %v", f.err)
	}
	return f.d
}

func BenchmarkCheck(b *testing.B) {
	b.ReportAllocs()
	if testing.Short() {
		b.Skip("builds a 100,000-subject ledger")
	}
	l := checkFixture(b).l
	known, unknown := checkFix.known, checkFix.unknown
	loop := func(subjects []privguard.SubjectID, purpose privguard.Purpose, want privguard.Reason) func(*testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			for _, s := range subjects[:100] {
				if st, _ := l.Check(benchCtx, s, purpose); st.Reason != want {
					b.Fatalf("Check(%s, %s) = %s; want %s", s, purpose, st.Reason, want)
				}
			}
			var st consent.Status
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				st, _ = l.Check(benchCtx, subjects[i%len(subjects)], purpose)
			}
			benchSink = st
		}
	}
	b.Run("given", loop(known, "analytics.ab_testing", privguard.ReasonConsentGiven))
	b.Run("unknown_subject", loop(unknown, "analytics.ab_testing", privguard.ReasonConsentMissing))
	b.Run("ancestor_purpose", loop(known, "marketing.communications.sms", privguard.ReasonConsentGiven))
	// The same lookups over 1,000 subjects only: the ledger's part stays in the CPU caches,
	// which shows how much of the cost above is memory latency.
	b.Run("given_hot1000", loop(known[:1000], "analytics.ab_testing", privguard.ReasonConsentGiven))
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		var worker atomic.Int64
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := int(worker.Add(1)) * 15_485_863 // each goroutine starts elsewhere in the list
			allowed := 0
			for pb.Next() {
				st, _ := l.Check(benchCtx, known[i%len(known)], "analytics.ab_testing")
				if st.Allowed {
					allowed++
				}
				i++
			}
			benchSinkKept.Add(int64(allowed))
		})
	})
}

// ---------------------------------------------------------------------------------------
// Grant

func BenchmarkGrant(b *testing.B) {
	b.ReportAllocs()
	for _, writers := range []int{1, 64} {
		b.Run("writers="+strconv.Itoa(writers), func(b *testing.B) {
			b.ReportAllocs()
			d, err := openBenchLedger(filepath.Join(b.TempDir(), "privguard.db"), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer d.close()
			if err := registerBenchNotice(d.l); err != nil {
				b.Fatal(err)
			}
			reqs := make([]consent.Request, b.N)
			for i := range reqs {
				reqs[i] = benchRequest(subjectID("g-", i), "marketing.communications.sms", i)
			}
			d.store.commits.Store(0)
			d.store.records.Store(0)
			b.ResetTimer()
			err = appendConcurrently(d.l, b.N, writers, func(i int) consent.Request { return reqs[i] })
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "grants/s")
			b.ReportMetric(d.store.perCommit(), "grants/commit")
		})
	}
}

// ---------------------------------------------------------------------------------------
// 1,000,000 subjects: Audience, Open, Verify

const (
	bigDefaultSubjects = 1_000_000
	bigWriters         = 1024 // enough waiting writers to fill large commit groups
	smsPurpose         = privguard.Purpose("marketing.communications.sms")
)

func bigSubjects() int {
	if v := os.Getenv("PRIVGUARD_BENCH_SUBJECTS"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 8 {
			return n
		}
	}
	return bigDefaultSubjects
}

// bigFixture is a ledger of n subjects with exactly one record each (n records):
//
//	k%4 == 0, 1: granted marketing.communications.sms         (n/2, kept by Audience)
//	k%4 == 2:    granted marketing.communications.email only  (n/4, never granted SMS)
//	k%4 == 3:    withdrew marketing.communications.sms        (n/4)
type bigFixture struct {
	once  sync.Once
	err   error
	path  string
	n     int
	build time.Duration

	mu sync.Mutex
	d  *benchLedger // nil while the file is closed

	list []privguard.SubjectID // the Audience input, built on demand
	kept int                   // how many of list Audience keeps
}

var bigFix bigFixture

func bigRequest(k int) consent.Request {
	s := subjectID("cust-", k)
	switch k % 4 {
	case 2:
		return benchRequest(s, "marketing.communications.email", k)
	case 3:
		return consent.Request{Subject: s, Purpose: smsPurpose, Action: consent.ActionWithdraw,
			Channel: consent.ChannelWeb, Evidence: consent.Evidence{UserAgent: "Mozilla/5.0"}, IP: benchIP(k)}
	default:
		return benchRequest(s, smsPurpose, k)
	}
}

// built builds the fixture once per process.
func (f *bigFixture) built(b *testing.B) {
	b.Helper()
	f.once.Do(func() {
		f.n = bigSubjects()
		f.path = filepath.Join(benchTempDir(b), "privguard.db")
		start := time.Now()
		d, err := openBenchLedger(f.path, nil)
		if err != nil {
			f.err = err
			return
		}
		f.d = d
		if f.err = registerBenchNotice(d.l); f.err != nil {
			return
		}
		if f.err = appendConcurrently(d.l, f.n, bigWriters, bigRequest); f.err != nil {
			return
		}
		f.build = time.Since(start)
		st, _ := os.Stat(f.path)
		fmt.Fprintf(os.Stderr, "big fixture: %d subjects, %d records in %v (%d writers, %.1f records/commit, file %d MB)\n",
			d.l.Stats().Subjects, d.l.Stats().Records, f.build.Round(time.Millisecond), bigWriters, d.store.perCommit(), st.Size()>>20)
	})
	if f.err != nil {
		b.Fatalf("big fixture: %v", f.err)
	}
}

// ledger returns the fixture's open ledger, opening the file if it is closed.
func (f *bigFixture) ledger(b *testing.B) *consent.Ledger {
	f.built(b)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.d == nil {
		d, err := openBenchLedger(f.path, nil)
		if err != nil {
			b.Fatal(err)
		}
		f.d = d
	}
	return f.d.l
}

// closed closes the fixture's file (another open of it would wait for its lock) and drops
// the Audience list, and returns the file's path.
func (f *bigFixture) closed(b *testing.B) string {
	f.built(b)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closeLocked()
	f.list = nil
	return f.path
}

func (f *bigFixture) closeLocked() {
	f.d.close()
	f.d = nil
}

// BenchmarkSnapshot is the snapshot the writer takes (periodically and at Close) of the
// 1,000,000-subject ledger: writes wait for it.
func BenchmarkSnapshot(b *testing.B) {
	b.ReportAllocs()
	if testing.Short() {
		b.Skip("builds a 1,000,000-record ledger")
	}
	path := bigFix.closed(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		// Without a snapshot Open replays every record, and Close writes a new snapshot.
		if err := os.Remove(boltstore.SnapshotPath(path)); err != nil {
			b.Fatal(err)
		}
		d, err := openBenchLedger(path, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		d.l.Close()
		b.StopTimer()
		d.db.Close()
	}
	b.StopTimer()
	st, err := os.Stat(boltstore.SnapshotPath(path))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(st.Size())/(1<<20), "fileMB")
}

// audience returns n subject ids, shuffled: every granted subject (n/2), half of the
// email-only ones (n/8), half of the withdrawn ones (n/8) and n/4 unknown subjects.
func (f *bigFixture) audience() ([]privguard.SubjectID, int) {
	if f.list != nil {
		return f.list, f.kept
	}
	type id struct {
		prefix string
		k      int
	}
	ids := make([]id, 0, f.n)
	kept := 0
	for k := range f.n {
		switch k % 8 {
		case 0, 1, 4, 5: // k%4 is 0 or 1: granted
			ids = append(ids, id{"cust-", k})
			kept++
		case 2, 3: // email only (k%8 == 2) or withdrawn (k%8 == 3)
			ids = append(ids, id{"cust-", k})
		}
	}
	for i := 0; len(ids) < f.n; i++ {
		ids = append(ids, id{"anon-", i})
	}
	rng := rand.New(rand.NewPCG(3, 4))
	rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	// The strings are allocated in list order, as a decoded request body would hold them.
	list := make([]privguard.SubjectID, len(ids))
	for i, x := range ids {
		list[i] = subjectID(x.prefix, x.k)
	}
	f.list, f.kept = list, kept
	return list, kept
}

func BenchmarkAudience(b *testing.B) {
	b.ReportAllocs()
	if testing.Short() {
		b.Skip("builds a 1,000,000-subject ledger")
	}
	l := bigFix.ledger(b)
	list, kept := bigFix.audience()
	var out []privguard.SubjectID
	var err error
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, err = l.Audience(benchCtx, smsPurpose, list)
	}
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if len(out) != kept {
		b.Fatalf("Audience kept %d of %d; want %d", len(out), len(list), kept)
	}
	b.ReportMetric(float64(len(list)), "subjects")
	b.ReportMetric(float64(len(out)), "kept")
	b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N), "ms/op")
}

// BenchmarkOpen is the rebuild of the in-memory state from the 1,000,000-record file by
// replaying every record (the snapshot is removed first). B/subject is the heap the open
// ledger holds per subject: (heap in use after Open - before) / subjects.
func BenchmarkOpen(b *testing.B) { benchOpen(b, false) }

// BenchmarkOpenFromSnapshot is Open from the snapshot the ledger wrote when it was closed.
func BenchmarkOpenFromSnapshot(b *testing.B) { benchOpen(b, true) }

func benchOpen(b *testing.B, fromSnapshot bool) {
	b.ReportAllocs()
	if testing.Short() {
		b.Skip("builds a 1,000,000-record ledger")
	}
	path := bigFix.closed(b) // closing wrote a snapshot
	if _, err := os.Stat(boltstore.SnapshotPath(path)); err != nil {
		b.Fatalf("no snapshot after Close: %v", err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var d *benchLedger
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if d != nil {
			d.l.Close() // writes the snapshot (not timed)
			d.db.Close()
			d = nil
		}
		if !fromSnapshot {
			if err := os.Remove(boltstore.SnapshotPath(path)); err != nil && !os.IsNotExist(err) {
				b.Fatal(err)
			}
		}
		runtime.GC()
		db, err := boltstore.Open(path, boltstore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		l, err := consent.Open(benchCtx, consent.Config{Store: db.Consent()})
		b.StopTimer()
		if err != nil {
			db.Close()
			b.Fatal(err)
		}
		d = &benchLedger{db: db, l: l}
		b.StartTimer()
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	st := d.l.Stats()
	if st.Records != uint64(bigFix.n) || st.Subjects != bigFix.n {
		b.Fatalf("rebuilt %d records, %d subjects; want %d", st.Records, st.Subjects, bigFix.n)
	}
	const mb = 1 << 20
	b.ReportMetric(float64(after.HeapInuse)/mb, "heapMB")
	b.ReportMetric((float64(after.HeapInuse)-float64(before.HeapInuse))/mb, "ledgerMB")
	b.ReportMetric((float64(after.HeapInuse)-float64(before.HeapInuse))/float64(st.Subjects), "B/subject")
	b.ReportMetric(float64(st.Records)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	// Hand the open ledger to the fixture for the benchmarks that follow.
	bigFix.mu.Lock()
	bigFix.closeLocked()
	bigFix.d = d
	bigFix.mu.Unlock()
}

func BenchmarkVerify(b *testing.B) {
	b.ReportAllocs()
	if testing.Short() {
		b.Skip("builds a 1,000,000-record ledger")
	}
	bigFix.ledger(b)
	store := bigFix.d.db.Consent()
	var rep consent.Report
	var err error
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rep, err = consent.Verify(benchCtx, store)
	}
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if rep.Break != nil || rep.Records != uint64(bigFix.n) {
		b.Fatalf("Verify = %d records, break %v; want %d records and no break", rep.Records, rep.Break, bigFix.n)
	}
	b.ReportMetric(float64(rep.Records)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
