package journal_test

import (
	"context"
	"errors"
	"testing"

	"github.com/privguard/privguard/journal"
	"github.com/privguard/privguard/journal/journaltest"
)

func TestMem(t *testing.T) {
	journaltest.TestStore(t, func(t *testing.T) journaltest.Stores { return &journaltest.Mem{} })
}

func TestVerifyFindsTampering(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name    string
		tamper  func([]journal.Entry) []journal.Entry
		wantSeq uint64
	}{
		{"body_altered", func(l []journal.Entry) []journal.Entry {
			l[4].Body = []byte(`{"act":"shred","principal":"someone else"}`)
			return l
		}, 5},
		{"entry_removed", func(l []journal.Entry) []journal.Entry { return append(l[:3:3], l[4:]...) }, 4},
		{"entries_swapped", func(l []journal.Entry) []journal.Entry { l[2], l[3] = l[3], l[2]; return l }, 3},
		{"rehashed_but_unlinked", func(l []journal.Entry) []journal.Entry {
			l[4].Body = []byte(`{"act":"forged"}`)
			l[4].Hash = l[4].Sum() // the next entry's prev no longer matches
			return l
		}, 6},
		{"last_removed", func(l []journal.Entry) []journal.Entry { return l[:len(l)-1] }, 8},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := &journaltest.Mem{}
			j, _ := journal.Open(m, "trail", nil)
			for i := range 8 {
				if _, err := j.Append(ctx, map[string]int{"i": i}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := journal.Verify(ctx, m, "trail"); err != nil {
				t.Fatalf("untouched: %v", err)
			}
			head, _ := m.JournalHead(ctx, "trail")
			m.Tamper("trail", tc.tamper)
			if tc.name == "last_removed" {
				// A chain cut at its end is still a chain: it is found against the head
				// a checkpoint recorded.
				if _, err := journal.Verify(ctx, m, "trail"); err != nil {
					t.Fatalf("Verify of a truncated chain = %v", err)
				}
				_, err := journal.VerifyHead(ctx, m, "trail", head)
				var be *journal.BreakError
				if !errors.As(err, &be) || be.Seq != tc.wantSeq {
					t.Fatalf("VerifyHead = %v; want a break at %d", err, tc.wantSeq)
				}
				return
			}
			_, err := journal.Verify(ctx, m, "trail")
			var be *journal.BreakError
			if !errors.As(err, &be) || be.Seq != tc.wantSeq {
				t.Fatalf("Verify = %v; want a break at %d", err, tc.wantSeq)
			}
		})
	}
}

func TestNames(t *testing.T) {
	for _, bad := range []string{"", "Trail", "a/b", "x y", string(make([]byte, 65))} {
		if err := journal.ValidName(bad); err == nil {
			t.Errorf("ValidName(%q) = nil", bad)
		}
	}
	if _, err := journal.Open(&journaltest.Mem{}, "admin.trail", nil); err != nil {
		t.Fatal(err)
	}
}

func TestBatcherAndAppendAfter(t *testing.T) {
	ctx := context.Background()
	s := &journaltest.Mem{}
	j, _ := journal.Open(s, "trail", nil)
	b := journal.NewBatcher(j)
	errs := make(chan error, 100)
	for i := range 100 {
		go func() { errs <- b.Append(ctx, i) }()
	}
	for range 100 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	b.Close()
	if err := b.Append(ctx, "late"); !errors.Is(err, journal.ErrClosed) {
		t.Fatalf("Append after Close = %v", err)
	}
	head, _ := j.Head(ctx)
	if head.Seq != 100 {
		t.Fatalf("head %d", head.Seq)
	}
	if _, err := j.AppendAfter(ctx, head, "used"); err != nil {
		t.Fatal(err)
	}
	// A second writer that read the same head loses.
	if _, err := j.AppendAfter(ctx, head, "used again"); !errors.Is(err, journal.ErrHeadMoved) {
		t.Fatalf("AppendAfter on a moved head = %v; want ErrHeadMoved", err)
	}
	if n, err := journal.Verify(ctx, s, "trail"); err != nil || n != 101 {
		t.Fatalf("Verify = %d, %v", n, err)
	}
}
