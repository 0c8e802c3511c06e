package audit

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"github.com/privguard/privguard/journal"
)

// CheckpointLog is the journal log the checkpoints of closed segments are kept in.
const CheckpointLog = "decisions"

// Defaults of the segments.
const (
	// DefaultMaxSize is the size at which the active file is closed into a segment.
	DefaultMaxSize = 256 << 20
	// MinRetention is the shortest retention of closed segments: operation logs are kept
	// at least six months (CSL Art. 21(3), AUD-03), counted as 184 days.
	MinRetention = 184 * 24 * time.Hour
)

// maxLine bounds a line read back (a line is a few hundred bytes; a batch's as well).
const maxLine = 4 << 20

// Checkpoint is an entry of the checkpoint log: a segment closed (Kind "closed", with what
// it holds) or deleted by retention (Kind "deleted", with the same facts as when closed).
type Checkpoint struct {
	Kind string `json:"kind"`
	// Chain names the chain the segment belongs to: the hash of the first line ever written
	// to it (a data directory's log is one chain; several replicas' checkpoints share a
	// shared store's log).
	Chain   string `json:"chain"`
	Replica string `json:"replica,omitempty"`
	Segment uint64 `json:"segment"`
	File    string `json:"file"`
	Lines   int64  `json:"lines"`
	Bytes   int64  `json:"bytes"`
	// FirstPrev is the first line's prev: the last hash of the segment before it.
	FirstPrev string    `json:"first_prev"`
	First     string    `json:"first"` // hash of the first line
	Last      string    `json:"last"`  // hash of the last line
	From      time.Time `json:"from"`  // time of the first line
	To        time.Time `json:"to"`    // time of the last line
}

// Checkpoint kinds.
const (
	Closed  = "closed"
	Deleted = "deleted"
)

// segmentName returns the file name of segment n of the log whose active file is active
// ("decisions.log" -> "decisions-000001.log").
func segmentName(active string, n uint64) string {
	ext := filepath.Ext(active)
	return fmt.Sprintf("%s-%06d%s", strings.TrimSuffix(active, ext), n, ext)
}

// segmentNumber parses a segment's file name; false if name is not one of active's.
func segmentNumber(active, name string) (uint64, bool) {
	ext := filepath.Ext(active)
	rest, ok := strings.CutPrefix(name, strings.TrimSuffix(active, ext)+"-")
	if !ok {
		return 0, false
	}
	digits, ok := strings.CutSuffix(rest, ext)
	if !ok || len(digits) < 6 {
		return 0, false
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	return n, err == nil && n > 0 && segmentName(active, n) == name
}

// segmentFile is a closed segment on disk.
type segmentFile struct {
	n    uint64
	path string
}

// listSegments returns the closed segments of the log whose active file is path, in order.
func listSegments(path string) ([]segmentFile, error) {
	dir, active := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	var out []segmentFile
	for _, de := range des {
		if n, ok := segmentNumber(active, de.Name()); ok && de.Type().IsRegular() {
			out = append(out, segmentFile{n: n, path: filepath.Join(dir, de.Name())})
		}
	}
	slices.SortFunc(out, func(a, b segmentFile) int { return cmpUint(a.n, b.n) })
	return out, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// fileFacts is what a segment file holds, as a checkpoint records it.
type fileFacts struct {
	lines, bytes     int64
	firstPrev, first string
	last             string
	from, to         time.Time
}

func (f *fileFacts) add(line []byte, p *fastjson.Parser) {
	sum := sha256.Sum256(line)
	h := hex.EncodeToString(sum[:])
	t, prev := lineTimePrev(line, p)
	if f.lines == 0 {
		f.firstPrev, f.first, f.from = prev, h, t
	}
	f.lines++
	f.bytes += int64(len(line)) + 1
	f.last, f.to = h, t
}

// lineTimePrev returns a line's time and prev (zero values for a line that is not an event).
func lineTimePrev(line []byte, p *fastjson.Parser) (time.Time, string) {
	v, err := p.ParseBytes(line)
	if err != nil {
		return time.Time{}, ""
	}
	t, _ := time.Parse(time.RFC3339Nano, string(v.GetStringBytes("time")))
	return t, string(v.GetStringBytes("prev"))
}

// readFacts reads the facts of the file at path.
func readFacts(path string) (fileFacts, error) {
	var ff fileFacts
	f, err := os.Open(path)
	if err != nil {
		return ff, fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	var p fastjson.Parser
	err = eachLine(f, func(line []byte, _ bool) error { ff.add(line, &p); return nil })
	if err != nil {
		return ff, fmt.Errorf("audit: read %s: %w", path, err)
	}
	return ff, nil
}

// eachLine calls fn for every line of r without its newline; complete is false for a last
// line without one (a line being written).
func eachLine(r io.Reader, fn func(line []byte, complete bool) error) error {
	br := bufio.NewReaderSize(r, 256<<10)
	var long []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(long)+len(chunk) > maxLine {
				return fmt.Errorf("a line is over %d bytes", maxLine)
			}
			long = append(long, chunk...)
			continue
		}
		line := chunk
		if long != nil {
			line = append(long, chunk...)
			long = nil
		}
		if err == io.EOF {
			if len(line) > 0 {
				return fn(line, false)
			}
			return nil
		}
		if err != nil {
			return err
		}
		if e := fn(line[:len(line)-1], true); e != nil {
			return e
		}
	}
}

// checkpoints reads the checkpoint log of store (chain-checked: a *journal.BreakError).
func checkpoints(ctx context.Context, store journal.Store) ([]Checkpoint, error) {
	var out []Checkpoint
	err := journal.Scan(ctx, store, CheckpointLog, 0, time.Time{}, func(e journal.Entry) error {
		var c Checkpoint
		if err := e.Decode(&c); err != nil {
			return err
		}
		out = append(out, c)
		return nil
	})
	return out, err
}

// chainOf returns the chain the files of a log belong to: the hash of its first line if the
// earliest file on disk starts the chain, else the chain of the checkpoint whose last hash
// that file continues; firstPrev itself if no checkpoint names it.
func chainOf(firstPrev, firstHash string, cps []Checkpoint) string {
	if firstPrev == "" {
		return firstHash
	}
	for _, c := range cps {
		if c.Last == firstPrev {
			return c.Chain
		}
	}
	return firstPrev
}

// ofChain returns the checkpoints of chain: the closed segments by number, and which of
// them retention deleted.
func ofChain(cps []Checkpoint, chain string) (closed map[uint64]Checkpoint, deleted map[uint64]bool) {
	closed, deleted = map[uint64]Checkpoint{}, map[uint64]bool{}
	for _, c := range cps {
		if c.Chain != chain {
			continue
		}
		switch c.Kind {
		case Closed:
			closed[c.Segment] = c
		case Deleted:
			deleted[c.Segment] = true
		}
	}
	return closed, deleted
}

// segmenter is the writer's side of the segments: the active file's facts, the chain, the
// next segment's number, the checkpoint log.
type segmenter struct {
	path      string
	maxSize   int64
	retention time.Duration
	replica   string
	cps       *journal.Journal // nil: no rotation, no retention
	store     journal.Store
	now       func() time.Time

	chain   string
	next    uint64 // the next closed segment's number
	active  fileFacts
	lastCut time.Time // last retention pass
}

// open reads the segments and the active file at start: the chain, the hash the next line
// links to, the segments whose checkpoint a crash left unwritten (written now), the
// segments retention had recorded deleted but not yet removed (removed now).
func (s *segmenter) open(ctx context.Context) (prev string, err error) {
	files, err := listSegments(s.path)
	if err != nil {
		return "", err
	}
	s.active, err = readFacts(s.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	s.next = 1
	if n := len(files); n > 0 {
		s.next = files[n-1].n + 1
	}
	var cps []Checkpoint
	if s.cps != nil {
		if cps, err = checkpoints(ctx, s.store); err != nil {
			return "", fmt.Errorf("audit: the checkpoint log: %w", err)
		}
	}
	// The earliest file on disk names the chain.
	var first fileFacts
	if len(files) > 0 {
		if first, err = readFirst(files[0].path); err != nil {
			return "", err
		}
	} else {
		first = s.active
	}
	if first.lines > 0 {
		s.chain = chainOf(first.firstPrev, first.first, cps)
	}
	closed, deleted := ofChain(cps, s.chain)
	for n := range closed {
		s.next = max(s.next, n+1)
	}
	prev = s.active.last
	if s.active.lines == 0 && len(files) > 0 {
		last, err := readFacts(files[len(files)-1].path)
		if err != nil {
			return "", err
		}
		prev = last.last
	}
	if s.cps == nil {
		return prev, nil
	}
	for _, f := range files {
		if deleted[f.n] {
			if err := os.Remove(f.path); err != nil {
				return "", fmt.Errorf("audit: retention: %w", err)
			}
			continue
		}
		if _, ok := closed[f.n]; ok {
			continue
		}
		ff, err := readFacts(f.path)
		if err != nil {
			return "", err
		}
		if err := s.checkpoint(ctx, Closed, f.n, ff); err != nil {
			return "", err
		}
	}
	return prev, s.expire(ctx)
}

// readFirst returns the facts of a file's first line.
func readFirst(path string) (fileFacts, error) {
	var ff fileFacts
	f, err := os.Open(path)
	if err != nil {
		return ff, fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	var p fastjson.Parser
	errFirst := errors.New("first")
	err = eachLine(f, func(line []byte, _ bool) error { ff.add(line, &p); return errFirst })
	if err != nil && err != errFirst {
		return ff, fmt.Errorf("audit: read %s: %w", path, err)
	}
	return ff, nil
}

func (s *segmenter) checkpoint(ctx context.Context, kind string, n uint64, ff fileFacts) error {
	c := Checkpoint{Kind: kind, Chain: s.chain, Replica: s.replica, Segment: n, File: filepath.Base(segmentName(s.path, n)),
		Lines: ff.lines, Bytes: ff.bytes, FirstPrev: ff.firstPrev, First: ff.first, Last: ff.last, From: ff.from, To: ff.to}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := s.cps.Append(ctx, c); err != nil {
		return fmt.Errorf("audit: checkpoint of segment %d: %w", n, err)
	}
	return nil
}

// wrote notes a line written to the active file.
func (s *segmenter) wrote(line []byte, t time.Time, prev, hash string) {
	if s.active.lines == 0 {
		s.active.firstPrev, s.active.first, s.active.from = prev, hash, t
		if s.chain == "" {
			s.chain = hash
		}
	}
	s.active.lines++
	s.active.bytes += int64(len(line)) + 1
	s.active.last, s.active.to = hash, t
}

// full reports whether a line of n bytes would take the active file past the size.
func (s *segmenter) full(n int) bool {
	return s.cps != nil && s.maxSize > 0 && s.active.lines > 0 && s.active.bytes+int64(n)+1 > s.maxSize
}

// rotate closes the active file f (flushed) into the next segment, records its checkpoint,
// applies the retention and returns the new active file.
func (s *segmenter) rotate(ctx context.Context, f *os.File) (*os.File, error) {
	if err := f.Sync(); err != nil {
		return f, fmt.Errorf("audit: sync: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("audit: close: %w", err)
	}
	n := s.next
	if err := os.Rename(s.path, segmentName(s.path, n)); err != nil {
		return nil, fmt.Errorf("audit: rotate: %w", err)
	}
	syncDir(filepath.Dir(s.path))
	s.next++
	closed := s.active
	s.active = fileFacts{}
	nf, err := os.OpenFile(s.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	// A checkpoint that cannot be written now is written at the next start (open).
	if err := s.checkpoint(ctx, Closed, n, closed); err != nil {
		return nf, err
	}
	return nf, s.expire(ctx)
}

// expire deletes the closed segments whose last line is older than the retention, oldest
// first, never the newest (the next line links to its last hash): each is recorded deleted
// in the checkpoint log before its file is removed.
func (s *segmenter) expire(ctx context.Context) error {
	if s.cps == nil || s.retention <= 0 {
		return nil
	}
	s.lastCut = s.now()
	cps, err := checkpoints(ctx, s.store)
	if err != nil {
		return fmt.Errorf("audit: retention: the checkpoint log: %w", err)
	}
	closed, deleted := ofChain(cps, s.chain)
	var nums []uint64
	for n := range closed {
		nums = append(nums, n)
	}
	slices.Sort(nums)
	cutoff := s.now().Add(-s.retention)
	for i, n := range nums {
		c := closed[n]
		if i == len(nums)-1 || !c.To.Before(cutoff) {
			break
		}
		if deleted[n] {
			continue
		}
		ff := fileFacts{lines: c.Lines, bytes: c.Bytes, firstPrev: c.FirstPrev, first: c.First, last: c.Last, from: c.From, to: c.To}
		if err := s.checkpoint(ctx, Deleted, n, ff); err != nil {
			return err
		}
		if err := os.Remove(segmentName(s.path, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("audit: retention: %w", err)
		}
	}
	return nil
}

// syncDir makes a rename in dir durable (best effort: not every file system can).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
