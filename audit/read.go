package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/valyala/fastjson"

	"github.com/privguard/privguard/journal"
)

// Line is one line of the log as [Walk] reads it.
type Line struct {
	// File is the file's name; Segment its number (0 for the active file); N the line's
	// number in it (1-based).
	File    string
	Segment uint64
	N       int64
	// Raw is the line without its newline, valid until the callback returns.
	Raw []byte
	// Sum is the line's SHA-256 (the next line's prev).
	Sum [sha256.Size]byte
	// Value is the parsed line, valid until the callback returns.
	Value *fastjson.Value
}

// BreakError says where the decision log's chain breaks: the file (segment) and line, or
// the checkpoint that does not match what is on disk.
type BreakError struct {
	File    string
	Segment uint64 // 0: the active file (or, with File empty, the log as a whole)
	Line    int64  // 0: the segment as a whole
	Problem string
}

func (e *BreakError) Error() string {
	switch {
	case e.File == "":
		return "decision log: " + e.Problem
	case e.Line == 0:
		return fmt.Sprintf("decision log %s: %s", e.File, e.Problem)
	}
	return fmt.Sprintf("decision log %s line %d: %s", e.File, e.Line, e.Problem)
}

// errRelist restarts a walk whose active file was rotated while it was being opened.
var errRelist = errors.New("audit: relist")

// Walk calls fn for every line of the log whose active file is path — its closed segments
// in order, then the active file — checking as it reads that each line links to the one
// before it, across segments: a removed, altered, reordered or unparsable line ends the
// walk with a *BreakError before fn sees it. The first line read may link to anything
// (retention deletes the oldest segments; [VerifyDir] checks that against the checkpoints).
// A last line of the active file without its newline is being written and is left out.
// Safe to run while the log is written and rotated. fn's error ends the walk and is
// returned.
func Walk(path string, fn func(*Line) error) error {
	var p fastjson.Parser
	var prevHex [2 * sha256.Size]byte
	havePrev := false
	var done uint64 // segments read
	l := &Line{}
	readFile := func(file string, seg uint64, active bool) error {
		f, err := os.Open(file)
		if errors.Is(err, os.ErrNotExist) && active {
			return nil
		}
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		defer f.Close()
		l.File, l.Segment, l.N = filepath.Base(file), seg, 0
		return eachLine(f, func(raw []byte, complete bool) error {
			if active && !complete {
				return nil
			}
			l.N++
			v, err := p.ParseBytes(raw)
			if err != nil || v.Type() != fastjson.TypeObject {
				return &BreakError{File: l.File, Segment: seg, Line: l.N, Problem: "not a decision line (altered or cut)"}
			}
			prev := v.GetStringBytes("prev")
			if havePrev && !bytes.Equal(prev, prevHex[:]) {
				if active && l.N == 1 {
					return errRelist
				}
				return &BreakError{File: l.File, Segment: seg, Line: l.N, Problem: "does not link to the line before it (a line or segment before it was removed, altered or reordered)"}
			}
			l.Raw, l.Value, l.Sum = raw, v, sha256.Sum256(raw)
			hex.Encode(prevHex[:], l.Sum[:])
			havePrev = true
			return fn(l)
		})
	}
	for attempt := 0; ; attempt++ {
		segs, err := listSegments(path)
		if err != nil {
			return err
		}
		for _, s := range segs {
			if s.n <= done {
				continue
			}
			if err := readFile(s.path, s.n, false); err != nil {
				return err
			}
			done = s.n
		}
		err = readFile(path, 0, true)
		if !errors.Is(err, errRelist) {
			return err
		}
		if attempt == 2 {
			return &BreakError{File: filepath.Base(path), Line: 1, Problem: "does not link to the last line of the last segment (a segment was removed or altered)"}
		}
	}
}

// Report is what [VerifyDir] found.
type Report struct {
	Lines    int64       `json:"lines"`
	Segments int         `json:"segments"`          // closed segments on disk, checked
	Deleted  int         `json:"deleted"`           // segments retention deleted (recorded)
	Pending  int         `json:"pending,omitempty"` // closed segments not checkpointed yet
	Chain    string      `json:"chain,omitempty"`   // hash of the chain's first line
	Head     string      `json:"head,omitempty"`    // hash of the last line
	Break    *BreakError `json:"break,omitempty"`   // nil: the log verifies
}

// VerifyOptions says whose checkpoints in the store are this log's.
type VerifyOptions struct {
	// Replica, on a store several replicas share, names the replica whose log this is:
	// its other chains must be here too. Empty: the store is this log's alone (the
	// embedded store of its data directory), so every chain it records must be here.
	Replica string
}

// VerifyDir checks the log whose active file is path against itself ([Walk]) and against
// the checkpoint log in store: every segment checkpointed and not deleted by retention is
// on disk with the lines, first and last hashes it had when closed (a deleted or
// truncated segment is found), retention deleted only the oldest segments, and the first
// line on disk links to the last one retention deleted. A break is in Report.Break; an
// error means the log could not be read.
func VerifyDir(ctx context.Context, path string, store journal.Store, opt VerifyOptions) (*Report, error) {
	rep := &Report{}
	cps, err := checkpoints(ctx, store)
	if err != nil {
		var br *journal.BreakError
		if errors.As(err, &br) {
			rep.Break = &BreakError{File: "checkpoint log", Problem: err.Error()}
			return rep, nil
		}
		return nil, err
	}
	type onDisk struct {
		file string
		seg  uint64
		ff   fileFacts
	}
	var files []*onDisk
	var cur *onDisk
	err = Walk(path, func(l *Line) error {
		if cur == nil || cur.file != l.File {
			cur = &onDisk{file: l.File, seg: l.Segment}
			files = append(files, cur)
		}
		h := hex.EncodeToString(l.Sum[:])
		if cur.ff.lines == 0 {
			cur.ff.firstPrev, cur.ff.first = string(l.Value.GetStringBytes("prev")), h
		}
		cur.ff.lines++
		cur.ff.last = h
		rep.Lines++
		return nil
	})
	var walkBreak *BreakError
	if errors.As(err, &walkBreak) {
		// Say first what the checkpoints tell of the segments before the break (a missing
		// or truncated one explains a link that breaks after it).
		if n := len(files); n > 0 && files[n-1].file == walkBreak.File {
			files = files[:n-1]
		}
		err = nil
	}
	if err != nil {
		return nil, err
	}
	before := func(n uint64) bool {
		return walkBreak == nil || walkBreak.Segment == 0 || n < walkBreak.Segment
	}
	// Files that hold no line yet (a fresh active file) are not part of the chain.
	if len(files) > 0 {
		rep.Chain = chainOf(files[0].ff.firstPrev, files[0].ff.first, cps)
		rep.Head = files[len(files)-1].ff.last
	}
	closed, deleted := ofChain(cps, rep.Chain)
	var nums []uint64
	for n := range closed {
		nums = append(nums, n)
	}
	slices.Sort(nums)
	present := map[uint64]*onDisk{}
	for _, f := range files {
		if f.seg != 0 {
			present[f.seg] = f
			if _, ok := closed[f.seg]; ok {
				rep.Segments++
			} else {
				rep.Pending++
			}
		}
	}
	fail := func(file string, seg uint64, line int64, problem string) (*Report, error) {
		rep.Break = &BreakError{File: file, Segment: seg, Line: line, Problem: problem}
		return rep, nil
	}
	wantFirstPrev, kept := "", false
	for _, n := range nums {
		c := closed[n]
		name := segmentName(filepath.Base(path), n)
		if deleted[n] {
			if kept {
				return fail(name, n, 0, "recorded deleted by retention after a newer segment was kept (retention deletes the oldest first)")
			}
			rep.Deleted++
			wantFirstPrev = c.Last
			delete(present, n) // a deletion a crash interrupted: the file may still be there
			continue
		}
		kept = true
		if !before(n) {
			break
		}
		f, ok := present[n]
		if !ok {
			return fail(name, n, 0, fmt.Sprintf("missing: its checkpoint records %d lines from %s to %s, and retention did not delete it",
				c.Lines, c.From.UTC().Format("2006-01-02T15:04:05Z"), c.To.UTC().Format("2006-01-02T15:04:05Z")))
		}
		switch {
		case f.ff.first != c.First || f.ff.firstPrev != c.FirstPrev:
			return fail(name, n, 1, "differs from the line its checkpoint recorded (altered)")
		case f.ff.lines < c.Lines:
			return fail(name, n, f.ff.lines+1, fmt.Sprintf("missing: the segment holds %d lines, its checkpoint records %d (truncated)", f.ff.lines, c.Lines))
		case f.ff.lines > c.Lines:
			return fail(name, n, c.Lines+1, fmt.Sprintf("added: the segment holds %d lines, its checkpoint records %d", f.ff.lines, c.Lines))
		case f.ff.last != c.Last:
			return fail(name, n, f.ff.lines, "differs from the last line its checkpoint recorded (altered)")
		}
	}
	if walkBreak != nil {
		rep.Break = walkBreak
		return rep, nil
	}
	// The first line on disk links to the last line retention deleted (or starts the chain).
	for _, f := range files {
		if _, gone := deleted[f.seg]; gone && f.seg != 0 {
			continue
		}
		if f.ff.firstPrev != wantFirstPrev {
			if wantFirstPrev == "" {
				return fail(f.file, f.seg, 1, "links to a line no checkpoint records: the segments before it were removed")
			}
			return fail(f.file, f.seg, 1, "does not link to the last line of the last segment retention deleted")
		}
		break
	}
	// The chains this store records for this log must all be here.
	for _, c := range cps {
		if c.Chain != rep.Chain && (opt.Replica == "" || c.Replica == opt.Replica) {
			return fail("", 0, 0, fmt.Sprintf("the checkpoint log records segment %d (%s) of a chain that is not in this directory (its files were removed)", c.Segment, c.File))
		}
	}
	return rep, nil
}
