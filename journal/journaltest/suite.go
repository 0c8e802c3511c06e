package journaltest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/privguard/privguard/journal"
)

// Stores is what TestStore needs: a store of logs and sets.
type Stores interface {
	journal.Store
	journal.SetStore
}

// TestStore is the conformance suite of a journal store. newStore returns an empty store;
// two calls may return two handles on the same database (for the concurrency case) when
// shared is true.
func TestStore(t *testing.T, newStore func(t *testing.T) Stores) {
	ctx := context.Background()
	t.Run("append_and_read", func(t *testing.T) {
		s := newStore(t)
		j, err := journal.Open(s, "trail", nil)
		if err != nil {
			t.Fatal(err)
		}
		if h, err := s.JournalHead(ctx, "trail"); err != nil || h.Seq != 0 {
			t.Fatalf("empty head = %+v, %v", h, err)
		}
		if _, err := j.Append(ctx, map[string]string{"act": "one"}); err != nil {
			t.Fatal(err)
		}
		stored, err := j.Append(ctx, map[string]string{"act": "two"}, map[string]any{"act": "three", "zh": "个人信息"})
		if err != nil {
			t.Fatal(err)
		}
		if stored[1].Seq != 3 {
			t.Fatalf("third entry's seq = %d", stored[1].Seq)
		}
		var got []journal.Entry
		if err := s.JournalEntries(ctx, "trail", 2, func(e journal.Entry) error { got = append(got, e); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Seq != 2 || got[1].Hash != stored[1].Hash || string(got[1].Body) != string(stored[1].Body) {
			t.Fatalf("entries from 2 = %+v", got)
		}
		if !got[1].Time.Equal(stored[1].Time) {
			t.Fatalf("time round trip: %v, want %v", got[1].Time, stored[1].Time)
		}
		if n, err := journal.Verify(ctx, s, "trail"); err != nil || n != 3 {
			t.Fatalf("Verify = %d, %v", n, err)
		}
		// Another log is a chain of its own.
		other, _ := journal.Open(s, "incidents", nil)
		e, err := other.Append(ctx, "x")
		if err != nil || e[0].Seq != 1 || e[0].Prev != "" {
			t.Fatalf("first entry of another log = %+v, %v", e, err)
		}
	})
	t.Run("stale_head_refused", func(t *testing.T) {
		s := newStore(t)
		j, _ := journal.Open(s, "trail", nil)
		first, err := j.Append(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		stale := journal.Entry{Log: "trail", Seq: 1, Time: time.Now().UTC().Truncate(time.Microsecond), Body: []byte(`"b"`)}
		stale.Hash = stale.Sum()
		if err := s.AppendJournal(ctx, "trail", []journal.Entry{stale}); !errors.Is(err, journal.ErrHeadMoved) {
			t.Fatalf("append over the head = %v; want ErrHeadMoved", err)
		}
		wrongPrev := journal.Entry{Log: "trail", Seq: 2, Time: stale.Time, Body: []byte(`"b"`), Prev: "00"}
		wrongPrev.Hash = wrongPrev.Sum()
		if err := s.AppendJournal(ctx, "trail", []journal.Entry{wrongPrev}); !errors.Is(err, journal.ErrHeadMoved) {
			t.Fatalf("append with a wrong prev = %v; want ErrHeadMoved", err)
		}
		if h, _ := s.JournalHead(ctx, "trail"); h.Hash != first[0].Hash {
			t.Fatalf("head changed by a refused append: %+v", h)
		}
	})
	t.Run("concurrent_journals_one_order", func(t *testing.T) {
		s := newStore(t)
		const writers, each = 4, 25
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// A journal each, as replicas have.
				j, _ := journal.Open(s, "trail", nil)
				for i := range each {
					if _, err := j.Append(ctx, fmt.Sprintf("w%d-%d", w, i)); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if n, err := journal.Verify(ctx, s, "trail"); err != nil || n != writers*each {
			t.Fatalf("Verify = %d, %v; want %d entries", n, err, writers*each)
		}
	})
	t.Run("sets", func(t *testing.T) {
		s := newStore(t)
		added, size, err := s.AddToSet(ctx, "xb.2026", [][]byte{[]byte("a"), []byte("b"), []byte("a")}, 0)
		if err != nil || added != 2 || size != 2 {
			t.Fatalf("AddToSet = %d, %d, %v; want 2, 2", added, size, err)
		}
		added, size, err = s.AddToSet(ctx, "xb.2026", [][]byte{[]byte("b"), []byte("c")}, 3)
		if err != nil || added != 1 || size != 3 {
			t.Fatalf("AddToSet = %d, %d, %v; want 1, 3", added, size, err)
		}
		// Past the limit: nothing is added, the size stays, the count it would add is told.
		added, size, err = s.AddToSet(ctx, "xb.2026", [][]byte{[]byte("a"), []byte("d"), []byte("e")}, 4)
		if !errors.Is(err, journal.ErrSetLimit) || added != 2 || size != 3 {
			t.Fatalf("AddToSet past the limit = %d, %d, %v; want 2, 3, ErrSetLimit", added, size, err)
		}
		// Members already in it never count against the limit.
		if added, size, err = s.AddToSet(ctx, "xb.2026", [][]byte{[]byte("a"), []byte("c")}, 3); err != nil || added != 0 || size != 3 {
			t.Fatalf("AddToSet of members = %d, %d, %v; want 0, 3", added, size, err)
		}
		if n, err := s.SetSize(ctx, "xb.2026"); err != nil || n != 3 {
			t.Fatalf("SetSize = %d, %v", n, err)
		}
		// Concurrent adds under a limit never pass it.
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 10 {
					_, _, _ = s.AddToSet(ctx, "xb.limit", [][]byte{[]byte(fmt.Sprintf("%d-%d", w, i))}, 25)
				}
			}()
		}
		wg.Wait()
		if n, err := s.SetSize(ctx, "xb.limit"); err != nil || n != 25 {
			t.Fatalf("SetSize = %d, %v", n, err)
		}
		if n, err := s.SetSize(ctx, "xb.2027"); err != nil || n != 0 {
			t.Fatalf("SetSize of an unknown set = %d, %v", n, err)
		}
	})
}
