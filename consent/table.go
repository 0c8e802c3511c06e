package consent

import (
	"hash/maphash"
	"math/bits"

	"github.com/privguard/privguard"
)

// table holds one shard's subjects. It is an open-addressing index of 8-byte slots over an
// arena of elements that keep the subject id inline with its state, so that finding a
// subject touches two cache lines (its slot and its element), and so that a batch of
// lookups can issue all its slot loads before it needs any of them (see Ledger.Audience).
// Go's map would follow a pointer to compare string keys and cannot be probed in batches.
//
// Subject ids longer than shortKeyMax (rare) are indexed by an ordinary map instead.
// A table is guarded by its shard's lock; subjects are never removed.
type table struct {
	seed    maphash.Seed
	slots   []uint64 // 0: empty; otherwise fingerprint<<32 | (element index + 1)
	elems   []elem
	long    map[privguard.SubjectID]uint32 // element index of each long subject id
	longIDs map[uint32]privguard.SubjectID
}

type elem struct {
	key   shortKey // length 0 for a long subject id (kept in longIDs)
	state subjectState
}

// shortKeyMax is the longest subject id held inline.
const shortKeyMax = 31

// shortKey is a subject id of at most shortKeyMax bytes: its length, then its bytes.
type shortKey [shortKeyMax + 1]byte

func makeShortKey[T ~string | ~[]byte](id T) (k shortKey) {
	k[0] = byte(len(id))
	copy(k[1:], id)
	return k
}

func (k *shortKey) equal(s privguard.SubjectID) bool {
	return int(k[0]) == len(s) && string(k[1:1+len(s)]) == string(s)
}

func newTable(seed maphash.Seed, sizeHint int) table {
	n := 16
	if sizeHint > 4 {
		n = 1 << bits.Len(uint(sizeHint*2-1)) // load at most 1/2
	}
	return table{seed: seed, slots: make([]uint64, n), elems: make([]elem, 0, sizeHint),
		long: map[privguard.SubjectID]uint32{}, longIDs: map[uint32]privguard.SubjectID{}}
}

// hashKey is the hash of a short key's subject id (the same as hashing the id).
func (t *table) hashKey(k *shortKey) uint64 { return maphash.Bytes(t.seed, k[1:1+k[0]]) }

// slotTag and home position of a subject's hash (the low bits chose the shard).
func slotTag(h uint64) uint64           { return (h>>32 | 1) << 32 }
func home(h uint64, slots []uint64) int { return int(h>>8) & (len(slots) - 1) }

// find returns the element index of subject (hash h), or -1.
func (t *table) find(h uint64, subject privguard.SubjectID) int {
	if len(subject) > shortKeyMax {
		if i, ok := t.long[subject]; ok {
			return int(i)
		}
		return -1
	}
	p := home(h, t.slots)
	return t.probe(h, subject, p, t.slots[p])
}

// probe continues a lookup whose first slot p (holding s) was already loaded.
func (t *table) probe(h uint64, subject privguard.SubjectID, p int, s uint64) int {
	fp, mask := slotTag(h), len(t.slots)-1
	for s != 0 {
		if s&^0xffffffff == fp {
			if i := int(uint32(s)) - 1; t.elems[i].key.equal(subject) {
				return i
			}
		}
		p = (p + 1) & mask
		s = t.slots[p]
	}
	return -1
}

// get returns the state of subject (hash h).
func (t *table) get(h uint64, subject privguard.SubjectID) (subjectState, bool) {
	if i := t.find(h, subject); i >= 0 {
		return t.elems[i].state, true
	}
	return subjectState{}, false
}

// set stores the state of subject (hash h), adding the subject if it is new.
func (t *table) set(h uint64, subject privguard.SubjectID, st subjectState) {
	if i := t.find(h, subject); i >= 0 {
		t.elems[i].state = st
		return
	}
	i := len(t.elems)
	if len(subject) > shortKeyMax {
		t.elems = append(t.elems, elem{state: st})
		t.long[subject], t.longIDs[uint32(i)] = uint32(i), subject
		return
	}
	t.elems = append(t.elems, elem{key: makeShortKey(subject), state: st})
	if len(t.elems)*2 > len(t.slots) {
		t.grow()
	} else {
		t.place(h, i)
	}
}

// place puts element i (hash h) in the first free slot from its home.
func (t *table) place(h uint64, i int) {
	mask := len(t.slots) - 1
	p := home(h, t.slots)
	for t.slots[p] != 0 {
		p = (p + 1) & mask
	}
	t.slots[p] = slotTag(h) | uint64(i+1)
}

// grow doubles the slots and re-places every short subject (the seed comes from the shards).
func (t *table) grow() {
	t.slots = make([]uint64, len(t.slots)*2)
	for i := range t.elems {
		if k := &t.elems[i].key; k[0] != 0 {
			t.place(t.hashKey(k), i)
		}
	}
}

// count returns the number of subjects.
func (t *table) count() int { return len(t.elems) }

// subjectOf returns the id of element i (slow for long ids: not for hot paths).
func (t *table) subjectOf(i int) privguard.SubjectID {
	if k := &t.elems[i].key; k[0] != 0 {
		return privguard.SubjectID(k[1 : 1+k[0]])
	}
	return t.longIDs[uint32(i)]
}
