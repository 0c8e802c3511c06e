package pgstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
	"github.com/privguard/privguard/pgstore"
)

// Two commits built on the same head: one wins, the other fails with ErrHeadMoved and
// writes nothing.
func TestCommitOnAMovedHeadFails(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	s1, s2 := openSchema(t, schema).Consent(), openSchema(t, schema).Consent()
	a := &consent.Batch{Records: consenttest.Records(0, [32]byte{}, "cust-a", "cust-a")}
	b := &consent.Batch{Records: consenttest.Records(0, [32]byte{}, "cust-b", "cust-b", "cust-b")}
	b.Records[0].IdempotencyKey, b.Records[0].Fingerprint = "idem-b", []byte("fp")
	b.Suppressions = []consent.StoredSuppression{{Key: [32]byte{7}, Seq: 1}}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, c := range []struct {
		s *pgstore.ConsentStore
		b *consent.Batch
	}{{s1, a}, {s2, b}} {
		wg.Go(func() { errs[i] = c.s.Commit(ctx, c.b) })
	}
	wg.Wait()
	winner, loser := a, b
	switch {
	case errs[0] == nil && errors.Is(errs[1], consent.ErrHeadMoved):
	case errs[1] == nil && errors.Is(errs[0], consent.ErrHeadMoved):
		winner, loser = b, a
	default:
		t.Fatalf("Commit errors = %v, %v; want one nil and one ErrHeadMoved", errs[0], errs[1])
	}
	last := winner.Records[len(winner.Records)-1]
	if seq, hash, err := s1.Head(ctx); err != nil || seq != last.Seq || !bytes.Equal(hash, last.Hash[:]) {
		t.Errorf("Head = %d, %v; want the winner's %d", seq, err, last.Seq)
	}
	for _, r := range loser.Records {
		if _, err := s1.SeqByID(ctx, r.ID); !errors.Is(err, privguard.ErrNotFound) {
			t.Errorf("the losing batch's record %s: SeqByID error %v; want ErrNotFound", r.ID, err)
		}
	}
	if loser == b {
		if _, _, ok, _ := s1.Idempotent(ctx, "idem-b"); ok {
			t.Error("the losing batch's idempotency key was written")
		}
		if _, ok, _ := s1.Suppression(ctx, [32]byte{7}); ok {
			t.Error("the losing batch's suppression was written")
		}
	}
	// A commit built on the winner's head goes through.
	next := consenttest.Records(last.Seq, last.Hash, "cust-c")
	if err := s2.Commit(ctx, &consent.Batch{Base: last.Seq, BaseHash: last.Hash, Records: next}); err != nil {
		t.Errorf("Commit on the new head: %v", err)
	}
	// The right seq but another hash (a fork) is refused too.
	fork := consenttest.Records(next[0].Seq, [32]byte{1}, "cust-d")
	if err := s1.Commit(ctx, &consent.Batch{Base: next[0].Seq, BaseHash: [32]byte{1}, Records: fork}); !errors.Is(err, consent.ErrHeadMoved) {
		t.Errorf("Commit on a forged base hash = %v; want ErrHeadMoved", err)
	}
}

// A notice already stored fails the commit with ErrHeadMoved, records of the batch
// included; a commit of notices only checks the head and leaves it.
func TestNoticeCommitsCheckTheHead(t *testing.T) {
	t.Parallel()
	s := openDB(t).Consent()
	n1 := consent.StoredNotice{Key: "marketing\x00\x00\x00\x00\x01\x00en", Body: []byte(`{"v":1}`)}
	if err := s.Commit(ctx, &consent.Batch{Notices: []consent.StoredNotice{n1}}); err != nil {
		t.Fatal(err)
	}
	if seq, _, _ := s.Head(ctx); seq != 0 {
		t.Errorf("Head after a notice = %d; want 0", seq)
	}
	recs := consenttest.Records(0, [32]byte{}, "cust-1")
	if err := s.Commit(ctx, &consent.Batch{Records: recs, Notices: []consent.StoredNotice{{Key: n1.Key, Body: []byte(`{"v":2}`)}}}); !errors.Is(err, consent.ErrHeadMoved) {
		t.Fatalf("Commit of a stored notice = %v; want ErrHeadMoved", err)
	}
	if seq, _, _ := s.Head(ctx); seq != 0 {
		t.Errorf("Head after the refused commit = %d; want 0", seq)
	}
	if _, _, err := s.Record(ctx, 1); !errors.Is(err, privguard.ErrNotFound) {
		t.Errorf("the refused batch's record: %v; want ErrNotFound", err)
	}
	if err := s.Commit(ctx, &consent.Batch{Records: recs}); err != nil {
		t.Fatal(err)
	}
	n2 := consent.StoredNotice{Key: "marketing\x00\x00\x00\x00\x02\x00en", Body: []byte(`{"v":2}`)}
	if err := s.Commit(ctx, &consent.Batch{Notices: []consent.StoredNotice{n2}}); !errors.Is(err, consent.ErrHeadMoved) {
		t.Errorf("a notice built on a stale head = %v; want ErrHeadMoved", err)
	}
	if err := s.Commit(ctx, &consent.Batch{Base: 1, BaseHash: recs[0].Hash, Notices: []consent.StoredNotice{n2}}); err != nil {
		t.Errorf("a notice on the current head: %v", err)
	}
	if seq, _, _ := s.Head(ctx); seq != 1 {
		t.Errorf("Head after a notice = %d; want 1 still", seq)
	}
	var cursors []uint64
	var bodies []string
	if err := s.NoticesAfter(ctx, 0, func(c uint64, b []byte) error {
		cursors, bodies = append(cursors, c), append(bodies, string(b))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(cursors) != 2 || cursors[0] >= cursors[1] || bodies[0] != `{"v":1}` || bodies[1] != `{"v":2}` {
		t.Fatalf("NoticesAfter(0) = %v %q; want two, increasing, in commit order", cursors, bodies)
	}
	var after []string
	s.NoticesAfter(ctx, cursors[0], func(_ uint64, b []byte) error { after = append(after, string(b)); return nil })
	if len(after) != 1 || after[0] != `{"v":2}` {
		t.Errorf("NoticesAfter(first) = %q; want the second only", after)
	}
}

// Many writers in two "processes", each retrying on ErrHeadMoved, build one chain: no
// fork, no gap, every acknowledged record there once.
func TestConcurrentCommitsFormOneChain(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	stores := []consent.Store{openSchema(t, schema).Consent(), openSchema(t, schema).Consent()}
	const writers, rounds = 50, 8
	var acked, moved atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		s := stores[w%2]
		wg.Go(func() {
			for r := range rounds {
				n, _ := rand.Int(rand.Reader, big.NewInt(4))
				subjects := make([]privguard.SubjectID, 1+n.Int64())
				for i := range subjects {
					subjects[i] = privguard.SubjectID(fmt.Sprintf("w%d-r%d-%d", w, r, i))
				}
				for {
					seq, hash, err := s.Head(ctx)
					if err != nil {
						errs <- err
						return
					}
					base := [32]byte(append(hash, make([]byte, 32)...)[:32])
					b := &consent.Batch{Base: seq, BaseHash: base, Records: consenttest.Records(seq, base, subjects...)}
					err = s.Commit(ctx, b)
					if errors.Is(err, consent.ErrHeadMoved) {
						moved.Add(1)
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					acked.Add(int64(len(subjects)))
					break
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var want uint64 = 1
	var prev [32]byte
	err := stores[0].ScanRecords(ctx, 1, func(seq uint64, hash, body []byte) error {
		if seq != want {
			return fmt.Errorf("record %d follows %d", seq, want-1)
		}
		if h := sha256.Sum256(append(prev[:], body...)); !bytes.Equal(h[:], hash) {
			return fmt.Errorf("record %d does not chain onto record %d (a fork)", seq, seq-1)
		}
		want++
		copy(prev[:], hash)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := int64(want - 1); got != acked.Load() {
		t.Errorf("%d records stored; %d acknowledged", got, acked.Load())
	}
	t.Logf("%d records in %d commits by %d writers, %d retries on a moved head", acked.Load(), writers*rounds, writers, moved.Load())
}

// Changes tells a process about another's commit, and not about its own.
func TestChangesFollowsAnotherProcess(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	writer, follower := openSchema(t, schema), openSchema(t, schema)
	ch := follower.Consent().Changes()
	select { // the listener signals once it listens
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("the listener did not start")
	}
	recs := consenttest.Records(0, [32]byte{}, "cust-1")
	if err := follower.Consent().Commit(ctx, &consent.Batch{Records: recs}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
		t.Error("Changes fired for the process's own commit")
	case <-time.After(300 * time.Millisecond):
	}
	more := consenttest.Records(1, recs[0].Hash, "cust-2")
	if err := writer.Consent().Commit(ctx, &consent.Batch{Base: 1, BaseHash: recs[0].Hash, Records: more}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("Changes did not fire after another process committed")
	}
}

// Eight goroutines in two processes creating one secret at once all get the same value.
func TestSecretCreatedOnceAcrossProcesses(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	dbs := []*pgstore.DB{openSchema(t, schema), openSchema(t, schema)}
	values := make([][]byte, 8)
	errs := make([]error, 8)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range values {
		wg.Go(func() {
			<-start
			values[i], errs[i] = dbs[i%2].Consent().Secret(ctx, "audit.subject-hmac", func() ([]byte, error) {
				b := make([]byte, 32)
				rand.Read(b)
				return b, nil
			})
		})
	}
	close(start)
	wg.Wait()
	for i := range values {
		if errs[i] != nil {
			t.Fatalf("Secret %d: %v", i, errs[i])
		}
		if !bytes.Equal(values[i], values[0]) {
			t.Fatalf("Secret %d = %x; goroutine 0 got %x", i, values[i], values[0])
		}
	}
}

// A snapshot of a few MB reads back whole.
func TestSnapshotRoundTrip(t *testing.T) {
	t.Parallel()
	s := openDB(t).Consent()
	want := make([]byte, 5<<20)
	rand.Read(want)
	start := time.Now()
	if err := s.WriteSnapshot(ctx, func(w io.Writer) error { _, err := w.Write(want); return err }); err != nil {
		t.Fatal(err)
	}
	wrote := time.Since(start)
	var got []byte
	if err := s.ReadSnapshot(ctx, func(r io.Reader, size int64) error {
		var err error
		got, err = io.ReadAll(r)
		if int64(len(got)) != size {
			return fmt.Errorf("size %d; read %d bytes", size, len(got))
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the snapshot read back (%d bytes) differs from the one written (%d bytes)", len(got), len(want))
	}
	t.Logf("5 MiB snapshot: written in %v, read in %v", wrote.Round(time.Millisecond), (time.Since(start) - wrote).Round(time.Millisecond))
}

// The listener reconnects by itself when its connection is killed, and signals then
// (notifications may have been lost), and follows commits again.
func TestChangesReconnects(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	writer, follower := openSchema(t, schema), openSchema(t, schema)
	ch := follower.Consent().Changes()
	wait := func(what string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("no signal %s", what)
		}
	}
	wait("when the listener started")
	conn, err := pgx.Connect(ctx, testDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var killed int
	if err := conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query = $1`,
		`LISTEN "`+schema+`_consent"`).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminated %d listener connections (%v); want 1", killed, err)
	}
	wait("after the listener's connection was killed")
	time.Sleep(200 * time.Millisecond) // the reconnection signals too
	for len(ch) > 0 {
		<-ch
	}
	recs := consenttest.Records(0, [32]byte{}, "cust-1")
	if err := writer.Consent().Commit(ctx, &consent.Batch{Records: recs}); err != nil {
		t.Fatal(err)
	}
	wait("for a commit after the reconnection")
}

// TestIdempotentAllAgreesWithIdempotent: the batched lookup of a group's keys answers what
// one lookup per key does: stored keys with their record and fingerprint, others absent.
func TestIdempotentAllAgreesWithIdempotent(t *testing.T) {
	db := openDB(t)
	s := db.Consent()
	recs := benchRecords(0, [32]byte{}, 5)
	for i := range recs {
		recs[i].IdempotencyKey, recs[i].Fingerprint = fmt.Sprintf("key-%d", i), []byte{byte(i), 0xff}
	}
	recs[4].IdempotencyKey = "" // a record without a key
	if err := s.Commit(ctx, &consent.Batch{Records: recs}); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	keys := []string{"key-0", "key-3", "key-4", "nope", "key-1"}
	hits, err := s.IdempotentAll(ctx, keys)
	if err != nil {
		t.Fatalf("IdempotentAll: %v", err)
	}
	for _, k := range keys {
		seq, fp, ok, err := s.Idempotent(ctx, k)
		if err != nil {
			t.Fatalf("Idempotent(%s): %v", k, err)
		}
		h, got := hits[k]
		if got != ok || h.Seq != seq || string(h.Fingerprint) != string(fp) {
			t.Errorf("%s: IdempotentAll %+v (%v), Idempotent %d %x (%v)", k, h, got, seq, fp, ok)
		}
	}
	if len(hits) != 3 {
		t.Errorf("IdempotentAll found %d keys; want 3", len(hits))
	}
}

// TestCommitLockedHoldsTheHead: while one process builds its batch under CommitLocked,
// another's commit on the same head waits for it and then finds the head moved; the locked
// batch is committed.
func TestCommitLockedHoldsTheHead(t *testing.T) {
	schema := newSchema(t)
	a, b := openSchema(t, schema).Consent(), openSchema(t, schema).Consent()
	recs := benchRecords(0, [32]byte{}, 2)
	started := make(chan struct{})
	other := make(chan error, 1)
	err := a.CommitLocked(ctx, func(ctx context.Context, head uint64, hash [32]byte) (*consent.Batch, error) {
		if head != 0 {
			t.Errorf("locked head %d; want 0", head)
		}
		go func() {
			close(started)
			other <- b.Commit(ctx, &consent.Batch{Records: benchRecords(0, [32]byte{9}, 1)})
		}()
		<-started
		time.Sleep(200 * time.Millisecond) // b's commit is waiting on the head now
		return &consent.Batch{Records: recs[:1], Base: head, BaseHash: hash}, nil
	})
	if err != nil {
		t.Fatalf("CommitLocked: %v", err)
	}
	if err := <-other; !errors.Is(err, consent.ErrHeadMoved) {
		t.Fatalf("the other commit on the locked head: %v; want ErrHeadMoved", err)
	}
	seq, _, err := a.Head(ctx)
	if err != nil || seq != 1 {
		t.Fatalf("head %d, %v; want 1", seq, err)
	}
}
