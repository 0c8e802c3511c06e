package pgstore_test

import (
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
)

// benchRecords returns n records after (base, prev) with bodies of a real record's size.
func benchRecords(base uint64, prev [32]byte, n int) []consent.StoredRecord {
	out := make([]consent.StoredRecord, n)
	for i := range out {
		seq := base + 1 + uint64(i)
		body := make([]byte, 320) // a grant with its evidence encodes to about this
		copy(body, fmt.Sprintf("record %d after %x", seq, prev[:8]))
		h := sha256.Sum256(append(prev[:], body...))
		out[i] = consent.StoredRecord{Seq: seq, ID: fmt.Sprintf("0192f3c4-%08x-7000-8000-%012x", seq, seq), Subject: privguard.SubjectID(fmt.Sprintf("cust-%d", seq%100000)),
			Hash: h, Body: body, IdempotencyKey: fmt.Sprintf("idem-%d", seq), Fingerprint: h[:16]}
		prev = h
	}
	return out
}

// BenchmarkCommit measures one commit of a group of records (each with an idempotency
// key) on the shared store: one round trip, the head lock and PostgreSQL's WAL flush.
func BenchmarkCommit(b *testing.B) {
	for _, group := range []int{1, 64, 1024, 4096} {
		b.Run(fmt.Sprintf("group=%d", group), func(b *testing.B) {
			s := openDB(b).Consent()
			var base uint64
			var prev [32]byte
			var batches []*consent.Batch
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				if len(batches) == 0 { // built outside the timer
					for range 32 {
						recs := benchRecords(base, prev, group)
						batches = append(batches, &consent.Batch{Base: base, BaseHash: prev, Records: recs})
						base, prev = recs[group-1].Seq, recs[group-1].Hash
					}
				}
				batch := batches[0]
				batches = batches[1:]
				b.StartTimer()
				if err := s.Commit(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*group), "µs/record")
		})
	}
}

// BenchmarkScanRecords1M scans a ledger of 2^20 records (written once, before the timer:
// about 30 s; with -short, 2^16).
func BenchmarkScanRecords1M(b *testing.B) {
	total, group := 1<<20, 4096
	if testing.Short() {
		total = 1 << 16
	}
	s := openDB(b).Consent()
	var base uint64
	var prev [32]byte
	start := time.Now()
	for base < uint64(total) {
		recs := benchRecords(base, prev, group)
		if err := s.Commit(ctx, &consent.Batch{Base: base, BaseHash: prev, Records: recs}); err != nil {
			b.Fatal(err)
		}
		base, prev = recs[group-1].Seq, recs[group-1].Hash
	}
	b.Logf("wrote %d records in %v", total, time.Since(start).Round(time.Millisecond))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		n := 0
		if err := s.ScanRecords(ctx, 1, func(seq uint64, hash, body []byte) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
		if n != total {
			b.Fatalf("scanned %d records; want %d", n, total)
		}
	}
	b.ReportMetric(float64(b.N*total)/b.Elapsed().Seconds(), "records/s")
}
