package consent

import (
	"fmt"
	"hash/maphash"
	"testing"
	"unsafe"

	"github.com/privguard/privguard"
)

func TestLayout(t *testing.T) {
	// A table element with one entry is one cache line: Check and Audience rely on it.
	if got := unsafe.Sizeof(entry{}); got != 24 {
		t.Errorf("entry is %d bytes; want 24", got)
	}
	if got := unsafe.Sizeof(elem{}); got != 64 {
		t.Errorf("elem is %d bytes; want 64", got)
	}
}

func TestExpirySecondsRoundsDown(t *testing.T) {
	cases := []struct {
		ns   int64
		want int64 // Unix nanoseconds after the round trip
	}{
		{0, 0},
		{(expiryEpoch + 100) * 1e9, (expiryEpoch + 100) * 1e9},
		{(expiryEpoch+100)*1e9 + 999_999_999, (expiryEpoch + 100) * 1e9},
		{1, (expiryEpoch + 1) * 1e9}, // before the epoch: already expired, never "never"
	}
	for _, tc := range cases {
		if got := expiryNano(expirySeconds(tc.ns)); got != tc.want {
			t.Errorf("expiryNano(expirySeconds(%d)) = %d; want %d", tc.ns, got, tc.want)
		}
	}
}

func TestTableGrowsAndFinds(t *testing.T) {
	seed := maphash.MakeSeed()
	tb := newTable(seed, 0)
	const n = 5000
	id := func(i int) privguard.SubjectID {
		if i%7 == 0 {
			return privguard.SubjectID(fmt.Sprintf("a-long-subject-identifier-beyond-31-bytes-%06d", i))
		}
		return privguard.SubjectID(fmt.Sprintf("s-%d", i))
	}
	for i := range n {
		s := id(i)
		tb.set(maphash.String(seed, string(s)), s, subjectState{one: entry{seq: uint64(i + 1)}})
	}
	for i := range n {
		s := id(i)
		st, ok := tb.get(maphash.String(seed, string(s)), s)
		if !ok || st.one.seq != uint64(i+1) {
			t.Fatalf("get(%s) = %v, %v; want seq %d", s, st.one.seq, ok, i+1)
		}
		if got := tb.subjectOf(tb.find(maphash.String(seed, string(s)), s)); got != s {
			t.Fatalf("subjectOf = %s; want %s", got, s)
		}
	}
	if _, ok := tb.get(maphash.String(seed, "absent"), "absent"); ok {
		t.Error("found a subject never added")
	}
	if tb.count() != n || len(tb.slots) < 2*(n-n/7) {
		t.Errorf("count %d slots %d; want %d and load at most 1/2", tb.count(), len(tb.slots), n)
	}
}
