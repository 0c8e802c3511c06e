package consent_test

import (
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
)

// TestConcurrencyWritersAndReaders runs 64 writers of 200 grants each, half on subjects of
// their own and half on 16 subjects all writers share, while readers call Check. It checks
// that every write is acknowledged once, visible to Check as soon as Append returns and
// never lost, that the records are numbered 1 to 12800 without gaps or duplicates, and that
// the ledger verifies. Run it under -race too.
func TestConcurrencyWritersAndReaders(t *testing.T) {
	const (
		writers   = 64
		perWriter = 200
		shared    = 16
		readers   = 4
		total     = writers * perWriter
	)
	db, err := boltstore.Open(filepath.Join(t.TempDir(), "privguard.db"), boltstore.Options{})
	if err != nil {
		t.Fatalf("boltstore.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	clock := &consenttest.Clock{}
	l, err := consent.Open(ctx, consent.Config{Store: db.Consent(), Now: clock.Now})
	if err != nil {
		t.Fatalf("consent.Open: %v", err)
	}
	t.Cleanup(func() { l.Close() }) // runs before db.Close
	if _, _, err := l.RegisterNotice(ctx, consenttest.MarketingNotice(1, "zh-CN")); err != nil {
		t.Fatalf("RegisterNotice: %v", err)
	}

	sharedSubject := func(i int) privguard.SubjectID { return privguard.SubjectID(fmt.Sprintf("shared-%02d", i)) }
	recs := make([][]consent.Record, writers)
	var done atomic.Bool
	var checks atomic.Int64
	var writersWG, readersWG sync.WaitGroup
	for r := range readers {
		readersWG.Go(func() {
			// Only grants are written and the clock stands still: once a subject and purpose
			// is allowed, it stays allowed.
			allowed := map[string]bool{}
			for n := 0; !done.Load(); n++ {
				s := sharedSubject((r + n) % shared)
				p := crashPurposes[n%len(crashPurposes)]
				if n%3 == 0 {
					s = privguard.SubjectID(fmt.Sprintf("w%02d-%03d", (r*17+n)%writers, (n/writers)%perWriter))
				}
				st, err := l.Check(ctx, s, p)
				if err != nil {
					t.Errorf("Check(%s, %s) error = %v", s, p, err)
					return
				}
				key := string(s) + " " + string(p)
				switch {
				case st.Allowed:
					allowed[key] = true
				case allowed[key]:
					t.Errorf("Check(%s, %s) = %+v; want allowed, as it was before", s, p, st)
					return
				case st.Reason != privguard.ReasonConsentMissing:
					t.Errorf("Check(%s, %s) = %+v; want allowed or consent.missing", s, p, st)
					return
				}
				// Let the writers run: with few processors, spinning readers would hold them up for
				// whole scheduler time slices at every hand-off to and from the ledger's writer.
				runtime.Gosched()
				checks.Add(1)
			}
		})
	}
	for w := range writers {
		writersWG.Go(func() {
			for i := range perWriter {
				s := privguard.SubjectID(fmt.Sprintf("w%02d-%03d", w, i))
				if i%2 == 1 {
					s = sharedSubject((w + i) % shared)
				}
				p := crashPurposes[(w+i)%len(crashPurposes)]
				rec, replayed, err := l.Append(ctx, grant(s, p))
				if err != nil || replayed {
					t.Errorf("Append(%s, %s) = replayed %v, error %v; want a new record", s, p, replayed, err)
					return
				}
				// A write takes effect on the very next Check after Append returns.
				if st, _ := l.Check(ctx, s, p); !st.Allowed {
					t.Errorf("Check(%s, %s) right after its grant = %+v; want allowed", s, p, st)
				}
				recs[w] = append(recs[w], rec)
			}
		})
	}
	writersWG.Wait()
	done.Store(true)
	readersWG.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%d Checks ran concurrently with the writes", checks.Load())

	if got, want := l.Stats(), (consent.Stats{Records: total, Subjects: writers*perWriter/2 + shared}); got != want {
		t.Errorf("Stats() = %+v; want %+v", got, want)
	}
	rep, err := consent.Verify(ctx, db.Consent())
	if err != nil {
		t.Fatalf("Verify() error = %v", err)
	}
	if rep.Break != nil || rep.Records != total {
		t.Errorf("Verify() = break %v, %d records; want no break, %d records", rep.Break, rep.Records, total)
	}
	seqs := make([]bool, total+1)
	ids := map[string]bool{}
	for _, rs := range recs {
		for _, want := range rs {
			if want.Seq < 1 || want.Seq > total || seqs[want.Seq] {
				t.Fatalf("record %s has seq %d: out of 1..%d or given twice", want.ID, want.Seq, total)
			}
			seqs[want.Seq] = true
			if ids[want.ID] {
				t.Fatalf("record id %s returned twice", want.ID)
			}
			ids[want.ID] = true
			got, err := l.Record(ctx, want.ID)
			if err != nil {
				t.Fatalf("Record(%s) error = %v; want the record", want.ID, err)
			}
			if got.Seq != want.Seq || got.Hash != want.Hash || got.Subject != want.Subject || got.Purpose != want.Purpose {
				t.Fatalf("Record(%s) = seq %d %s %s %x; want seq %d %s %s %x", want.ID, got.Seq, got.Subject, got.Purpose,
					got.Hash, want.Seq, want.Subject, want.Purpose, want.Hash)
			}
		}
	}
	if len(ids) != total {
		t.Errorf("%d records returned; want %d", len(ids), total)
	}
}
