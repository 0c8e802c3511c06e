package policy

import (
	"encoding/binary"
	"hash/maphash"
	"slices"
	"sync"

	"github.com/privguard/privguard"
)

// DefaultCacheSize is how many distinct decisions a memo generation holds at first.
const DefaultCacheSize = 1 << 14

// DefaultMemoBytes bounds the memory of the memo (both generations, estimated).
const DefaultMemoBytes = 64 << 20

// Contact buckets: what the memo key records of subject.contacts.
const (
	contactsNoLimit = 'n' // the channel has no limit: the count does not matter
	contactsBelow   = 'b' // below the channel's limit: alike but for the budget
	contactsAtLimit = 'o' // at or over the limit
)

// memo is a bounded decision cache of two generations: when the current one is full it
// becomes the previous one and the oldest is dropped, so recently used decisions survive.
//
// It adapts to its working set: the keys memoised recently (eight times the generation
// size, at least) are remembered as ghosts in a Bloom filter. A miss on a ghost is an
// input that was memoised and evicted, i.e. the working set is larger than the memo; when
// an eighth of a generation's size of misses (or promotions from the previous generation)
// were such, the generations become twice as large, for as long as two of them fit in
// maxBytes. Inputs seen once do not make it grow.
type memo struct {
	mu       sync.RWMutex
	size     int   // entries per generation
	maxBytes int64 // bound on the estimated bytes of both generations
	seed     maphash.Seed

	cur, prev           map[string]privguard.Decision
	curBytes, prevBytes int64
	ghosts              ghosts
	reused              int // ghost misses and promotions in the current generation
	grown               int // how many times the generation size doubled
}

func newMemo(size int, maxBytes int64) *memo {
	m := &memo{size: size, maxBytes: maxBytes, seed: maphash.MakeSeed(),
		cur: make(map[string]privguard.Decision, min(size, 1<<16))}
	m.ghosts.reset(size)
	return m
}

// get looks key up; a decision found in the previous generation moves to the current one.
func (m *memo) get(key []byte) (privguard.Decision, bool) {
	m.mu.RLock()
	d, ok := m.cur[string(key)]
	if !ok && m.prev != nil {
		d, ok = m.prev[string(key)]
		if ok {
			m.mu.RUnlock()
			m.mu.Lock()
			m.reused++
			m.putLocked(string(key), d)
			m.mu.Unlock()
			return d, true
		}
	}
	m.mu.RUnlock()
	return d, ok
}

// put memoises d, decided on a miss of key.
func (m *memo) put(key string, d privguard.Decision) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ghosts.has(maphash.String(m.seed, key)) {
		m.reused++
	}
	m.putLocked(key, d)
}

func (m *memo) putLocked(key string, d privguard.Decision) {
	if _, ok := m.cur[key]; ok {
		return
	}
	if m.reused >= max(m.size/8, 16) {
		m.grow()
	}
	size := entryBytes(key, &d)
	if len(m.cur) >= m.size || m.curBytes+size > m.maxBytes/2 {
		m.rotate()
	}
	m.cur[key] = d
	m.curBytes += size
	m.ghosts.add(maphash.String(m.seed, key))
}

// grow doubles the generation size, the current generation included, if two of the larger
// ones fit in maxBytes: the working set is larger than the memo.
func (m *memo) grow() {
	m.reused = 0
	n := len(m.cur)
	if n == 0 {
		return
	}
	perEntry := m.curBytes / int64(n)
	if next := 2 * m.size; int64(next)*perEntry*2 <= m.maxBytes {
		m.size = next
		m.grown++
		m.ghosts.reset(next)
	}
}

// rotate starts a new generation: the current one becomes the previous one, whose
// entries are dropped.
func (m *memo) rotate() {
	m.prev, m.prevBytes = m.cur, m.curBytes
	m.cur, m.curBytes = make(map[string]privguard.Decision, min(m.size, 1<<16)), 0
	m.reused = 0
}

// ghosts is a pair of Bloom filters (three bits per key, sixteen bits per key of their
// window) over the keys memoised lately: the current one takes the keys until it holds
// window of them, then replaces the older one, so that at least the last window keys are
// remembered. A false positive (well under 1%) only counts towards growing.
type ghosts struct {
	cur, old []uint64
	n        int // keys in cur
	window   int
}

func (g *ghosts) reset(size int) {
	g.window = max(8*size, 1<<12)
	words := 1
	for words*64 < 16*g.window {
		words *= 2
	}
	g.cur, g.old, g.n = make([]uint64, words), make([]uint64, words), 0
}

func (g *ghosts) bits(h uint64) (uint64, uint64, uint64) {
	mask := uint64(len(g.cur)*64 - 1)
	return h & mask, (h >> 21) & mask, (h>>42 | h<<22) & mask
}

func (g *ghosts) add(h uint64) {
	if g.n >= g.window {
		g.cur, g.old, g.n = g.old, g.cur, 0
		clear(g.cur)
	}
	a, b, c := g.bits(h)
	g.cur[a/64] |= 1 << (a % 64)
	g.cur[b/64] |= 1 << (b % 64)
	g.cur[c/64] |= 1 << (c % 64)
	g.n++
}

func (g *ghosts) has(h uint64) bool {
	a, b, c := g.bits(h)
	in := func(f []uint64) bool {
		return f[a/64]&(1<<(a%64)) != 0 && f[b/64]&(1<<(b%64)) != 0 && f[c/64]&(1<<(c%64)) != 0
	}
	return in(g.cur) || in(g.old)
}

// memoStats describes a memo for tests and benchmarks.
type memoStats struct {
	size, entries, grown int
	bytes                int64
}

func (m *memo) stats() memoStats {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return memoStats{size: m.size, entries: len(m.cur) + len(m.prev), grown: m.grown, bytes: m.curBytes + m.prevBytes}
}

// entryBytes estimates the memory one entry holds: the map slot, the key, its share of
// the ghost filters, the decision and what its slices point to (the revision is shared).
func entryBytes(key string, d *privguard.Decision) int64 {
	n := 176 + len(key) + 16*len(d.Reasons)
	for _, r := range d.Reasons {
		n += len(r)
	}
	for _, o := range d.Obligations {
		n += 80 + 16*len(o.Categories) + 16*len(o.Subjects)
		for _, c := range o.Categories {
			n += len(c)
		}
	}
	return int64(n)
}

// appendMemoKey appends to b the part of in decisions depend on, in a canonical,
// unambiguous form (strings length-prefixed). Categories are sorted so that the same set
// in another order hits the same entry. Of the contact count only its bucket is kept
// (see [contactsBucket]) unless exact is set.
func appendMemoKey(b []byte, in *privguard.Input, bucket byte, exact bool) []byte {
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	str(string(in.Purpose))
	str(string(in.Regime))
	str(in.Role)
	str(in.Channel)
	str(in.Recipient)
	str(in.PIAID)
	str(in.Consent.State)
	str(string(in.Consent.Reason))
	str(in.Facts.AgeBand)
	flags := [...]bool{in.GPC, in.Consent.Allowed, in.Consent.Guardian, in.Consent.Separate, in.Consent.Sensitive,
		in.Facts.Restricted, in.Facts.ObjectedToDM, in.Facts.PersonalisationOff, in.Facts.GPCOptOut, in.Facts.Minor}
	var bits uint16
	for i, f := range flags {
		if f {
			bits |= 1 << i
		}
	}
	b = binary.LittleEndian.AppendUint16(b, bits)
	if exact {
		b = append(b, '=')
		b = binary.AppendVarint(b, int64(in.Facts.Contacts))
	} else {
		b = append(b, bucket)
	}
	cats := in.Categories
	if !slices.IsSorted(cats) {
		var tmp [16]privguard.DataCategory
		if len(cats) <= len(tmp) {
			cats = append(tmp[:0], cats...)
		} else {
			cats = slices.Clone(cats)
		}
		slices.Sort(cats)
	}
	b = binary.AppendUvarint(b, uint64(len(cats)))
	for _, c := range cats {
		str(string(c))
	}
	return b
}
