package consent

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"
	"unsafe"

	"github.com/privguard/privguard"
)

// A snapshot is the in-memory state written out whole (tables, out-of-line states, interned
// names), stamped with the chain head it reflects, so that Open replays only the records
// after it. It is trusted only if everything it depends on still holds: the same hash key,
// the same purposes and notices, a head that is a record of the stored chain with the same
// hash, and an HMAC (under a key derived from the hash key) over every byte. Anything else
// and Open ignores it, says why in the log, and replays every record.
//
// Layout (integers little-endian except the table elements, which are copied as they lie
// in memory; the byte-order mark and element size say how):
//
//	magic | byte-order mark u32 | element size u32 | shards u32 | key id [32]
//	head seq u64 | head hash [32] | config digest [32]
//	recipients: n u32, then each name | notice versions: n u32, then each (id, version u32)
//	per shard: homes u64 | elements u64 | used u64 | markers u64 | elements (raw)
//	           ext n u32, then each state | free n u32, then each u32
//	           exact n u32, then each (id, state)
//	state: rec u64 | entry | more n u32, entries | facts u8 (0: none), then restricted u8,
//	       three seqs u64, age band | (version 2) more u8 (0: none), then closed at u64,
//	       scoped n u32, then each (seq u64, expires u64, categories n u32, each)
//	HMAC-SHA256 of all the above [32]

// snapshotMagic is the version written; snapshotMagicV1 is also read (its facts have no
// closure or scoped restriction).
const (
	snapshotMagic   = "privguard consent snapshot 2\n"
	snapshotMagicV1 = "privguard consent snapshot 1\n"
)

// DefaultSnapshotInterval is how often the writer snapshots the state when records were
// added since the last snapshot (see Config.SnapshotInterval).
const DefaultSnapshotInterval = 10 * time.Minute

// errSnapshot marks a snapshot that is unusable (it is then ignored).
var errSnapshot = errors.New("unusable snapshot")

// snapshotKeys returns the id of the table hash key written into a snapshot and the key of
// its HMAC.
func (l *Ledger) snapshotKeys() (id [32]byte, mac []byte) {
	var k [16]byte
	binary.LittleEndian.PutUint64(k[:], l.tableKey[0])
	binary.LittleEndian.PutUint64(k[8:], l.tableKey[1])
	id = sha256.Sum256(append([]byte("privguard snapshot key id\x00"), k[:]...))
	m := sha256.Sum256(append([]byte("privguard snapshot mac key\x00"), k[:]...))
	return id, m[:]
}

// configDigest is what a snapshot's state depends on besides the records: the purposes (and
// their order, which indexes them) and the stored notices (a material change marks grants).
func (l *Ledger) configDigest(noticeDigest [32]byte) [32]byte {
	h := sha256.New()
	for _, p := range l.purposes {
		h.Write([]byte(p.Purpose))
		h.Write([]byte{0})
	}
	h.Write(noticeDigest[:])
	return [32]byte(h.Sum(nil))
}

// noticeDigest hashes the stored notices in the store's order.
func (l *Ledger) noticeDigest(ctx context.Context) ([32]byte, error) {
	h := sha256.New()
	err := l.store.ScanNotices(ctx, func(body []byte) error {
		writeNotice(h, body)
		return nil
	})
	return [32]byte(h.Sum(nil)), err
}

func writeNotice(h hash.Hash, body []byte) {
	h.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(body))))
	h.Write(body)
}

// snapshot writes the state through the store, if it keeps snapshots and records were added
// since the last one. Only the writer goroutine (or Close, once it has ended) calls it.
func (l *Ledger) snapshot(ctx context.Context) error {
	sn, ok := l.store.(Snapshotter)
	if !ok || (l.headSeq == l.snapSeq && !l.snapOld) {
		return nil
	}
	start := time.Now()
	nd, err := l.noticeDigest(ctx)
	if err != nil {
		return fmt.Errorf("consent: snapshot: read notices: %w", err)
	}
	err = sn.WriteSnapshot(ctx, func(w io.Writer) error { return l.encodeSnapshot(w, l.configDigest(nd)) })
	if err != nil {
		return fmt.Errorf("consent: snapshot: %w", err)
	}
	l.snapSeq, l.snapOld = l.headSeq, false
	l.log.Info("consent ledger snapshot written", "records", l.headSeq, "subjects", l.state.count(),
		"elapsed", time.Since(start).Round(time.Millisecond).String())
	return nil
}

// snapWriter writes a snapshot through a buffer into w and the HMAC.
type snapWriter struct {
	bw  *bufio.Writer
	buf []byte
}

func (w *snapWriter) u8(v uint8)     { w.bw.WriteByte(v) }
func (w *snapWriter) u16(v uint16)   { w.bw.Write(binary.LittleEndian.AppendUint16(w.buf[:0], v)) }
func (w *snapWriter) u32(v uint32)   { w.bw.Write(binary.LittleEndian.AppendUint32(w.buf[:0], v)) }
func (w *snapWriter) u64(v uint64)   { w.bw.Write(binary.LittleEndian.AppendUint64(w.buf[:0], v)) }
func (w *snapWriter) bytes(b []byte) { w.u32(uint32(len(b))); w.bw.Write(b) }
func (w *snapWriter) str(s string)   { w.u32(uint32(len(s))); w.bw.WriteString(s) }
func (w *snapWriter) entry(e *entry) {
	w.u64(e.seq)
	w.u32(e.expires)
	w.u32(e.recipient)
	w.u32(e.notice)
	w.u16(e.purpose)
	w.u8(e.bits)
}
func (w *snapWriter) fixed(b [32]byte) { w.bw.Write(b[:]) }

func (w *snapWriter) state(st *subjectState) {
	w.u64(st.rec)
	w.entry(&st.one)
	more := st.more()
	w.u32(uint32(len(more)))
	for i := range more {
		w.entry(&more[i])
	}
	f := st.facts()
	if f == nil {
		w.u8(0)
		return
	}
	w.u8(1)
	if f.restricted {
		w.u8(1)
	} else {
		w.u8(0)
	}
	w.u64(f.objectionSeq)
	w.u64(f.gpcSeq)
	w.u64(f.persOffSeq)
	w.str(string(f.ageBand))
	m := f.more
	if m == nil {
		w.u8(0)
		return
	}
	w.u8(1)
	w.u64(uint64(m.closedAt))
	w.u32(uint32(len(m.scoped)))
	for _, r := range m.scoped {
		w.u64(r.seq)
		w.u64(uint64(r.expires))
		w.u32(uint32(len(r.categories)))
		for _, c := range r.categories {
			w.str(string(c))
		}
	}
}

// elemBytes is the memory of a table's elements.
func elemBytes(elems []elem) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(elems))), len(elems)*int(unsafe.Sizeof(elem{})))
}

// byteOrderMark is 0x01020304 as this machine stores a uint32.
func byteOrderMark() []byte { return binary.NativeEndian.AppendUint32(nil, 0x01020304) }

func (l *Ledger) encodeSnapshot(out io.Writer, config [32]byte) error {
	keyID, macKey := l.snapshotKeys()
	mac := hmac.New(sha256.New, macKey)
	w := &snapWriter{bw: bufio.NewWriterSize(io.MultiWriter(out, mac), 1<<20), buf: make([]byte, 0, 8)}
	w.bw.WriteString(snapshotMagic)
	w.bw.Write(byteOrderMark())
	w.u32(uint32(unsafe.Sizeof(elem{})))
	w.u32(shardCount)
	w.fixed(keyID)
	w.u64(l.headSeq)
	w.fixed(l.headHash)
	w.fixed(config)

	in := l.interns
	in.mu.RLock()
	names := make([]string, len(in.recipients)+1)
	for name, id := range in.recipients {
		names[id] = name
	}
	nvs := in.noticeList
	in.mu.RUnlock()
	w.u32(uint32(len(names) - 1))
	for _, name := range names[1:] {
		w.str(name)
	}
	w.u32(uint32(len(nvs)))
	for _, nv := range nvs {
		w.str(nv.id)
		w.u32(nv.version)
	}

	for i := range l.state.s {
		// Only the writer changes the tables, and it is the caller: no lock needed.
		t := &l.state.s[i].t
		w.u64(uint64(t.homes))
		w.u64(uint64(len(t.elems)))
		w.u64(uint64(t.used))
		w.u64(uint64(t.marks))
		w.bw.Write(elemBytes(t.elems))
		w.u32(uint32(len(t.ext)))
		for k := range t.ext {
			w.state(&t.ext[k])
		}
		w.u32(uint32(len(t.free)))
		for _, x := range t.free {
			w.u32(x)
		}
		w.u32(uint32(len(t.exact)))
		for id, st := range t.exact {
			w.str(string(id))
			w.state(&st)
		}
	}
	if err := w.bw.Flush(); err != nil {
		return err
	}
	_, err := out.Write(mac.Sum(nil))
	return err
}

// snapReader reads a snapshot, feeding the HMAC, and never allocates more than the bytes
// left could hold.
type snapReader struct {
	br   *bufio.Reader
	mac  hash.Hash
	left int64 // bytes not yet read, trailer included
	v1   bool  // a version 1 snapshot
	buf  [32]byte
	err  error
}

func (r *snapReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format+": %w", append(args, errSnapshot)...)
	}
}

func (r *snapReader) read(b []byte) {
	if r.err != nil {
		clear(b)
		return
	}
	if int64(len(b)) > r.left-sha256.Size {
		r.fail("truncated")
		clear(b)
		return
	}
	if _, err := io.ReadFull(r.br, b); err != nil {
		r.fail("truncated (%v)", err)
		clear(b)
		return
	}
	r.left -= int64(len(b))
	r.mac.Write(b)
}

func (r *snapReader) u8() uint8   { r.read(r.buf[:1]); return r.buf[0] }
func (r *snapReader) u16() uint16 { r.read(r.buf[:2]); return binary.LittleEndian.Uint16(r.buf[:2]) }
func (r *snapReader) u32() uint32 { r.read(r.buf[:4]); return binary.LittleEndian.Uint32(r.buf[:4]) }
func (r *snapReader) u64() uint64 { r.read(r.buf[:8]); return binary.LittleEndian.Uint64(r.buf[:8]) }
func (r *snapReader) fixed() (b [32]byte) {
	r.read(b[:])
	return b
}

// count reads a length (u32) of items of at least size bytes each.
func (r *snapReader) count(size int64) int {
	n := int64(r.u32())
	if r.err == nil && n*size > r.left {
		r.fail("a length beyond the end")
		return 0
	}
	return int(n)
}

func (r *snapReader) str() string {
	n := r.count(1)
	if r.err != nil {
		return ""
	}
	b := make([]byte, n)
	r.read(b)
	return string(b)
}

func (r *snapReader) entry() entry {
	return entry{seq: r.u64(), expires: r.u32(), recipient: r.u32(), notice: r.u32(), purpose: r.u16(), bits: r.u8()}
}

func (r *snapReader) state(purposes int) subjectState {
	st := subjectState{rec: r.u64(), one: r.entry()}
	check := func(e *entry) {
		if int(e.purpose) >= purposes {
			r.fail("purpose index %d out of range", e.purpose)
		}
	}
	check(&st.one)
	var more []entry
	if n := r.count(23); n > 0 {
		more = make([]entry, n)
		for i := range more {
			more[i] = r.entry()
			check(&more[i])
		}
	}
	var f *facts
	if r.u8() == 1 {
		f = &facts{restricted: r.u8() == 1, objectionSeq: r.u64(), gpcSeq: r.u64(), persOffSeq: r.u64(), ageBand: AgeBand(r.str())}
		if !r.v1 && r.u8() == 1 {
			m := &factsMore{closedAt: int64(r.u64())}
			if n := r.count(20); n > 0 {
				m.scoped = make([]scopedRestriction, n)
				for i := range m.scoped {
					sc := &m.scoped[i]
					sc.seq, sc.expires = r.u64(), int64(r.u64())
					sc.categories = make([]privguard.DataCategory, r.count(4))
					for k := range sc.categories {
						sc.categories[k] = privguard.DataCategory(r.str())
					}
				}
			}
			f.more = m
		}
	}
	st.setExt(more, f)
	return st
}

// loadedSnapshot is a snapshot read and verified, not yet checked against the chain.
type loadedSnapshot struct {
	seq     uint64
	hash    [32]byte
	state   *shards
	interns *interns
}

// readSnapshot decodes and verifies a snapshot of size bytes. Any error wraps errSnapshot or
// is the reader's.
func (l *Ledger) readSnapshot(src io.Reader, size int64, config [32]byte) (*loadedSnapshot, error) {
	keyID, macKey := l.snapshotKeys()
	r := &snapReader{br: bufio.NewReaderSize(src, 1<<20), mac: hmac.New(sha256.New, macKey), left: size}
	magic := make([]byte, len(snapshotMagic))
	r.read(magic)
	if r.err != nil || (string(magic) != snapshotMagic && string(magic) != snapshotMagicV1) {
		return nil, fmt.Errorf("not a snapshot of this version: %w", errSnapshot)
	}
	r.v1 = string(magic) == snapshotMagicV1
	var bom [4]byte
	r.read(bom[:])
	if string(bom[:]) != string(byteOrderMark()) || r.u32() != uint32(unsafe.Sizeof(elem{})) || r.u32() != shardCount {
		return nil, fmt.Errorf("written by a build with another memory layout: %w", errSnapshot)
	}
	if r.fixed() != keyID {
		return nil, fmt.Errorf("written under another table hash key: %w", errSnapshot)
	}
	snap := &loadedSnapshot{seq: r.u64(), hash: r.fixed()}
	if r.fixed() != config {
		return nil, fmt.Errorf("written with other purposes or notices: %w", errSnapshot)
	}
	in := newInterns()
	for i := range r.count(4) {
		in.recipients[r.str()] = uint32(i + 1)
	}
	for range r.count(8) {
		nv := noticeVersion{id: r.str(), version: r.u32()}
		in.noticeList = append(in.noticeList, nv)
		in.notices[nv] = uint32(len(in.noticeList))
	}
	s := newShards(l.tableKey, 0)
	s.hashFn = l.hashFn
	for i := range s.s {
		t := &s.s[i].t
		homes, n := r.u64(), r.u64()
		used, marks := r.u64(), r.u64()
		if r.err != nil {
			break
		}
		if n < 1 || homes < minHomes || homes >= n || used >= n || marks > used ||
			int64(n) > r.left/int64(unsafe.Sizeof(elem{})) {
			r.fail("shard %d: impossible table size", i)
			break
		}
		t.homes, t.used, t.marks = int(homes), int(used), int(marks)
		t.elems = make([]elem, n)
		r.read(elemBytes(t.elems))
		t.ext = make([]subjectState, r.count(36))
		for k := range t.ext {
			t.ext[k] = r.state(len(l.purposes))
		}
		if len(t.ext) == 0 {
			r.fail("shard %d: no out-of-line slot 0", i)
		}
		t.free = make([]uint32, r.count(4))
		for k := range t.free {
			t.free[k] = r.u32()
		}
		if n := r.count(40); n > 0 {
			t.exact = make(map[privguard.SubjectID]subjectState, n)
			for range n {
				id := privguard.SubjectID(r.str())
				t.exact[id] = r.state(len(l.purposes))
			}
		}
		if r.err == nil {
			if err := checkLoadedTable(t, len(l.purposes)); err != nil {
				r.fail("shard %d: %v", i, err)
			}
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	sum := r.mac.Sum(nil)
	var trailer [sha256.Size]byte
	if r.left != sha256.Size {
		return nil, fmt.Errorf("%d bytes after the state: %w", r.left-sha256.Size, errSnapshot)
	}
	if _, err := io.ReadFull(r.br, trailer[:]); err != nil {
		return nil, fmt.Errorf("truncated checksum: %w", errSnapshot)
	}
	if !hmac.Equal(sum, trailer[:]) {
		return nil, fmt.Errorf("checksum does not match: %w", errSnapshot)
	}
	snap.state, snap.interns = s, in
	return snap, nil
}

// checkLoadedTable checks what lookups rely on not to fail: the counts, the last element
// empty, and every out-of-line index and purpose in range. (The HMAC already vouches for
// the bytes; this guards against a snapshot written by a faulty build.)
func checkLoadedTable(t *table, purposes int) error {
	if t.elems[len(t.elems)-1].place != 0 {
		return errors.New("last element in use")
	}
	used, marks := 0, 0
	for i := range t.elems {
		e := &t.elems[i]
		switch {
		case e.place == 0:
			continue
		case e.place&elemShared != 0:
			marks++
		case e.place&elemExt != 0:
			if e.word == 0 || int(e.word) >= len(t.ext) {
				return fmt.Errorf("element %d: out-of-line index %d out of range", i, e.word)
			}
		case int(e.word>>8&0xff) >= purposes:
			return fmt.Errorf("element %d: purpose index out of range", i)
		}
		used++
	}
	if used != t.used || marks != t.marks {
		return errors.New("element counts do not match")
	}
	if (marks == 0) != (len(t.exact) == 0) {
		return errors.New("shared elements and exact subjects do not match")
	}
	for _, x := range t.free {
		if x == 0 || int(x) >= len(t.ext) {
			return errors.New("free index out of range")
		}
	}
	return nil
}

// loadSnapshot returns the stored snapshot if it can be trusted for the stored chain (head
// seq headSeq), or nil, having logged why not.
func (l *Ledger) loadSnapshot(ctx context.Context, headSeq uint64, config [32]byte) *loadedSnapshot {
	sn, ok := l.store.(Snapshotter)
	if !ok {
		return nil
	}
	start := time.Now()
	var snap *loadedSnapshot
	err := sn.ReadSnapshot(ctx, func(r io.Reader, size int64) error {
		var err error
		snap, err = l.readSnapshot(r, size, config)
		return err
	})
	if errors.Is(err, privguard.ErrNotFound) {
		return nil
	}
	if err == nil {
		err = l.checkSnapshotHead(ctx, snap, headSeq)
	}
	if err != nil {
		l.log.Warn("consent ledger snapshot ignored; replaying every record", "err", err)
		return nil
	}
	l.log.Info("consent ledger snapshot loaded", "records", snap.seq, "elapsed", time.Since(start).Round(time.Millisecond).String())
	return snap
}

// checkSnapshotHead checks that the snapshot's head is a record of the stored chain, with the
// same hash: since every record carries the hash of the one before, the snapshot then
// reflects exactly the stored records up to it, and the records after it are replayed.
func (l *Ledger) checkSnapshotHead(ctx context.Context, snap *loadedSnapshot, headSeq uint64) error {
	if snap.seq > headSeq {
		return fmt.Errorf("it reflects record %d but the ledger ends at %d: %w", snap.seq, headSeq, errSnapshot)
	}
	if snap.seq == 0 {
		return nil
	}
	hash, _, err := l.store.Record(ctx, snap.seq)
	if errors.Is(err, privguard.ErrNotFound) {
		return fmt.Errorf("its head, record %d, is not stored: %w", snap.seq, errSnapshot)
	}
	if err != nil {
		return fmt.Errorf("read its head, record %d: %w", snap.seq, err)
	}
	if string(hash) != string(snap.hash[:]) {
		return fmt.Errorf("its head, record %d, has another hash in the ledger: %w", snap.seq, errSnapshot)
	}
	return nil
}
