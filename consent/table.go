package consent

import (
	"math"

	"github.com/privguard/privguard"
)

// table holds one shard's subjects. It stores no subject id: a subject is found by a keyed
// hash of its id (subjectHash: 24 bits that place it, 64 bits of tag; the shard took six
// more), and its state is held in a 24-byte element right in the open-addressing array, so
// that finding a subject reads one or two adjacent cache lines, and a batch of lookups can
// issue all its first loads before it needs any of them (see Ledger.Audience).
//
// The array is kept in order of placement hash (ordered linear probing, without wrapping
// round): an element sits at or after its home and no empty slot lies between the two. A
// lookup scans from its home until it finds its hash, an empty slot or a greater placement
// hash, so a miss costs as little as a hit even at the high load the table runs at (4/5
// after start-up, at most 7/8). Growing is one pass in order, by 5/4 (the size need not be a power of
// two: home = placement*homes >> 24).
//
// A subject whose state does not fit an element (more than one entry, subject-level facts,
// a recipient, or a field beyond the element's range) keeps it out of line in ext, found by
// a 32-bit index. Two stored subjects with the same hash, which the writer detects by
// reading a record of the stored one (see shards.put), are both kept in exact, keyed by
// their id; their element is then only a marker that sends lookups there.
//
// A table is guarded by its shard's lock; subjects are never removed.
type table struct {
	elems []elem // the last element is always empty, so every scan ends
	homes int    // home positions: len(elems) minus the tail that absorbs the last clusters
	used  int    // elements in use (markers included)
	marks int    // marker elements (elemShared)
	ext   []subjectState
	free  []uint32                             // free ext indexes
	exact map[privguard.SubjectID]subjectState // subjects whose hash another subject shares
}

// elem is one subject: its hash and, inline, its only entry.
type elem struct {
	place uint32 // placement hash (24 bits) << 8 | flags; 0: empty
	tagLo uint32
	tagHi uint32
	seq   uint32 // the only entry's deciding record, which also names the subject
	exp   uint32 // its expiry (entry.expires)
	word  uint32 // notice (16) << 16 | purpose (8) << 8 | entry bits (8); with elemExt, the ext index
}

// Element flags.
const (
	elemUsed   = 1 << iota
	elemExt    // the state is ext[word]
	elemShared // the hash is shared by two or more subjects, all held in exact
)

// subjectHash is a subject's keyed hash: the low bits of hi choose the shard, its top 24 bits
// place the subject in the shard's table, lo is the tag the element keeps.
type subjectHash struct{ hi, lo uint64 }

func (h subjectHash) shard() int        { return int(h.hi % shardCount) }
func (h subjectHash) placement() uint32 { return uint32(h.hi >> 40) }

// Table tuning.
const (
	loadOpen  = 4.0 / 5 // load a table is sized for at start-up: 30 bytes a subject
	loadGrow  = 7.0 / 8 // load at which it grows (to 7/10)
	growth    = 5.0 / 4
	minHomes  = 16
	placeBits = 24
)

func newTable(sizeHint int) table {
	homes := max(minHomes, int(math.Ceil(float64(sizeHint)/loadOpen)))
	return table{elems: make([]elem, homes+tailFor(homes)), homes: homes, ext: make([]subjectState, 1)}
}

// tailFor is the number of slots past the last home of a table of homes positions.
func tailFor(homes int) int { return 16 + homes/512 }

func (t *table) home(place uint32) int { return int(uint64(place) * uint64(t.homes) >> placeBits) }

func (e *elem) tag() uint64       { return uint64(e.tagHi)<<32 | uint64(e.tagLo) }
func (e *elem) placement() uint32 { return e.place >> 8 }

// find returns the index of the element with hash h, or -1.
func (t *table) find(h subjectHash) int {
	return t.scan(h, t.home(h.placement()))
}

// scan continues a lookup from index i (the home of h, possibly already loaded).
func (t *table) scan(h subjectHash, i int) int {
	place, tlo, thi := h.placement(), uint32(h.lo), uint32(h.lo>>32)
	for ; ; i++ {
		e := &t.elems[i]
		p := e.place >> 8
		if e.place == 0 || p > place {
			return -1
		}
		if p == place && e.tagLo == tlo && e.tagHi == thi {
			return i
		}
	}
}

// stateAt returns the state of the subject at index i, which must not be shared.
func (t *table) stateAt(i int) subjectState {
	e := &t.elems[i]
	if e.place&elemExt != 0 {
		return t.ext[e.word]
	}
	return subjectState{rec: uint64(e.seq), one: entry{seq: uint64(e.seq), expires: e.exp, notice: e.word >> 16,
		purpose: uint16(e.word >> 8 & 0xff), bits: uint8(e.word)}}
}

// get returns the state of subject (hash h). An unknown subject whose hash equals a stored
// one's (probability about 2^-88 per stored subject of the shard) would read that one's
// state; see ARCHITECTURE.md.
func (t *table) get(h subjectHash, subject privguard.SubjectID) (subjectState, bool) {
	i := t.find(h)
	if i < 0 {
		return subjectState{}, false
	}
	return t.stateOf(i, subject)
}

// stateOf is get for an element already found.
func (t *table) stateOf(i int, subject privguard.SubjectID) (subjectState, bool) {
	if t.elems[i].place&elemShared != 0 {
		st, ok := t.exact[subject]
		return st, ok
	}
	return t.stateAt(i), true
}

// inline reports whether st fits an element.
func inline(st *subjectState) bool {
	e := &st.one
	return st.ext == nil && e.seq != 0 && e.seq == st.rec && e.seq <= math.MaxUint32 && e.recipient == 0 &&
		e.notice <= math.MaxUint16 && e.purpose <= math.MaxUint8
}

// store puts st into the element at index i (not shared), inline if it fits.
func (t *table) store(i int, st subjectState) {
	e := &t.elems[i]
	if inline(&st) {
		if e.place&elemExt != 0 {
			t.ext[e.word] = subjectState{}
			t.free = append(t.free, e.word)
			e.place &^= elemExt
		}
		e.seq, e.exp = uint32(st.one.seq), st.one.expires
		e.word = st.one.notice<<16 | uint32(st.one.purpose)<<8 | uint32(st.one.bits)
		return
	}
	if e.place&elemExt != 0 {
		t.ext[e.word] = st
		return
	}
	var x uint32
	if n := len(t.free); n > 0 {
		x, t.free = t.free[n-1], t.free[:n-1]
		t.ext[x] = st
	} else {
		if len(t.ext) > math.MaxUint32 {
			panic("consent: more out-of-line states than a table indexes")
		}
		x = uint32(len(t.ext))
		t.ext = append(t.ext, st)
	}
	e.place |= elemExt
	e.seq, e.exp, e.word = 0, 0, x
}

// share turns the element at index i into a marker for subjects held in exact, moving its
// state (of subject owner) there.
func (t *table) share(i int, owner privguard.SubjectID) {
	st := t.stateAt(i)
	e := &t.elems[i]
	if e.place&elemExt != 0 {
		t.ext[e.word] = subjectState{}
		t.free = append(t.free, e.word)
	}
	e.place = e.place&^elemExt | elemShared
	t.marks++
	e.seq, e.exp, e.word = 0, 0, 0
	if t.exact == nil {
		t.exact = map[privguard.SubjectID]subjectState{}
	}
	t.exact[owner] = st
}

// insert adds a subject with hash h (not yet in the table) and returns its index.
func (t *table) insert(h subjectHash) int {
	if float64(t.used+1) > float64(t.homes)*loadGrow {
		t.grow()
	}
	place := h.placement()
	for {
		i := t.home(place)
		for t.elems[i].place != 0 && t.elems[i].placement() <= place {
			i++
		}
		j := i
		for t.elems[j].place != 0 {
			j++
		}
		if j == len(t.elems)-1 {
			t.grow() // the tail is full: keep the last element empty
			continue
		}
		copy(t.elems[i+1:j+1], t.elems[i:j])
		t.elems[i] = elem{place: place<<8 | elemUsed, tagLo: uint32(h.lo), tagHi: uint32(h.lo >> 32)}
		t.used++
		return i
	}
}

// grow re-places every element in a table 5/4 as large.
func (t *table) grow() { t.resize(int(float64(t.homes)*growth) + 1) }

// resize re-places every element in a table of homes positions (at least as many as are
// used), in one pass: the order of placement hashes is the order of the array.
func (t *table) resize(homes int) {
	homes = max(homes, minHomes, t.used+1)
	for tail := tailFor(homes); ; tail *= 2 {
		elems := make([]elem, homes+tail)
		nt := table{homes: homes}
		next, ok := 0, true
		for k := range t.elems {
			e := &t.elems[k]
			if e.place == 0 {
				continue
			}
			i := max(next, nt.home(e.placement()))
			if i >= len(elems)-1 {
				ok = false
				break
			}
			elems[i] = *e
			next = i + 1
		}
		if ok {
			t.elems, t.homes = elems, homes
			return
		}
	}
}

// fit shrinks the table to the load it is sized for at start-up, if it is well below it
// (a full replay sizes it by records, not subjects).
func (t *table) fit() {
	if want := int(math.Ceil(float64(t.used) / loadOpen)); want < t.homes*7/8 {
		t.resize(want)
	}
}

// count returns the number of subjects.
func (t *table) count() int { return t.used - t.marks + len(t.exact) }
