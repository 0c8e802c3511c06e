package evidence

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
)

// ConsentKind is the manifest kind of a consent evidence export.
const ConsentKind = "privguard.consent-evidence"

// CheckpointPayloadType is the "type" of a consent export's signed checkpoint.
const CheckpointPayloadType = "privguard.consent-checkpoint/v1"

// The members of a consent evidence export, in the order they are written.
const (
	MemberRecords    = "records.jsonl"  // one record a line, with its receipt
	MemberCounts     = "counts.json"    // grants, withdrawals, expiries, refusals per day and purpose
	MemberInclusion  = "inclusion.json" // the Merkle proof of every record against the checkpoint
	MemberKey        = "key.jwk.json"   // the ledger's receipt key (public), as a JWK set
	MemberCheckpoint = "checkpoint.jws" // the signed checkpoint
)

// Line is one line of records.jsonl.
type Line struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"` // the record hash (hex SHA-256 of the encoding)
	// Record is the record as JSON. In a pseudonymous export the subject (and a guardian's
	// reference) is the keyed pseudonym and the capture's user agent, network prefix and IP
	// hash are left out.
	Record json.RawMessage `json:"record"`
	// Encoding is the stored encoding (base64), in an export about one subject only: the
	// record hash is its SHA-256, and Record what it decodes to.
	Encoding []byte `json:"encoding,omitempty"`
	// Receipt is the record's signed consent receipt (compact JWS).
	Receipt string `json:"receipt"`
}

// Count is the events of one purpose on one day (UTC).
type Count struct {
	Day         string `json:"day"`
	Purpose     string `json:"purpose"` // "*": a withdrawal of every purpose
	Grants      int    `json:"grants"`
	Withdrawals int    `json:"withdrawals"`
	Expiries    int    `json:"expiries"`
	Refusals    int    `json:"refusals"`
}

// Counts is counts.json.
type Counts struct {
	Scope  Scope   `json:"scope"`
	Totals Count   `json:"totals"` // Day and Purpose empty
	ByDay  []Count `json:"by_day"`
}

// Inclusion is inclusion.json: the multi-leaf RFC 6962 inclusion proof of the records.
type Inclusion struct {
	TreeSize uint64   `json:"tree_size"`
	Nodes    []string `json:"nodes"` // hex, in the order a left-to-right traversal needs them
}

// Checkpoint is the signed payload of checkpoint.jws: the ledger's head and Merkle root
// when the export was made, and what the export holds (its scope, its number of records,
// the SHA-256 of the members written before it), so that the signature covers all of it.
type Checkpoint struct {
	Type     string    `json:"type"`
	KeyID    string    `json:"key_id"`
	TreeSize uint64    `json:"tree_size"`
	Root     string    `json:"root_sha256"`
	HeadSeq  uint64    `json:"head_seq"`
	HeadHash string    `json:"head_sha256"`
	SignedAt time.Time `json:"signed_at"`
	Scope    Scope     `json:"scope"`
	Records  int       `json:"records"`
	// Members maps records.jsonl, counts.json, inclusion.json and key.jwk.json to their
	// SHA-256 (hex).
	Members map[string]string `json:"members"`
}

// Summary is what Export wrote.
type Summary struct {
	Records  int
	TreeSize uint64
	Root     string
	HeadHash string
	Totals   Count
}

// counter accumulates Counts.
type counter struct {
	byKey  map[[2]string]*Count
	totals Count
}

func newCounter() *counter { return &counter{byKey: map[[2]string]*Count{}} }

func (c *counter) add(purpose string, action consent.Action, t time.Time) {
	if purpose == "" {
		purpose = "*"
	}
	day := t.UTC().Format(time.DateOnly)
	k := [2]string{day, purpose}
	e := c.byKey[k]
	if e == nil {
		e = &Count{Day: day, Purpose: purpose}
		c.byKey[k] = e
	}
	for _, x := range []*Count{e, &c.totals} {
		switch action {
		case consent.ActionGrant:
			x.Grants++
		case consent.ActionWithdraw:
			x.Withdrawals++
		case consent.ActionExpire:
			x.Expiries++
		case consent.ActionRefuse:
			x.Refusals++
		}
	}
}

func (c *counter) result(s Scope) Counts {
	out := Counts{Scope: s, Totals: c.totals, ByDay: make([]Count, 0, len(c.byKey))}
	for _, e := range c.byKey {
		out.ByDay = append(out.ByDay, *e)
	}
	sort.Slice(out.ByDay, func(i, j int) bool {
		a, b := out.ByDay[i], out.ByDay[j]
		return a.Day < b.Day || a.Day == b.Day && a.Purpose < b.Purpose
	})
	return out
}

// Export writes the consent evidence of scope (which must pass [Scope.Check]) to w: a zip with records.jsonl (the records
// in scope with their signed receipts), counts.json, inclusion.json (their Merkle proof
// against the checkpoint), key.jwk.json, checkpoint.jws (the ledger's head and root and
// the export's contents, signed with the receipt key) and manifest.json. It reads the whole
// ledger once, up to the head it finds at the start, checking the chain; if the chain
// does not verify, it stops with an error wrapping the *consent.Break that names the
// record, having written part of a file: write to a temporary file and keep it only on
// success. Memory is the Merkle frontier and the proof, not the records.
func Export(ctx context.Context, l *consent.Ledger, scope Scope, w io.Writer, now time.Time, generator string) (Summary, error) {
	return export(ctx, l, scope, w, now, generator, nil)
}

// export is Export; edit, in tests, changes line n (1-based) of records.jsonl before it is
// written, hashed and signed.
func export(ctx context.Context, l *consent.Ledger, scope Scope, w io.Writer, now time.Time, generator string, edit func(n int, ln *Line)) (Summary, error) {
	if err := scope.Check(l); err != nil {
		return Summary{}, err
	}
	if scope.pseudonymous() {
		scope.From, scope.To = scope.From.UTC(), scope.To.UTC()
	}
	bw := NewWriter(w, ConsentKind)
	rw, err := bw.Create(MemberRecords, now)
	if err != nil {
		return Summary{}, err
	}
	enc := json.NewEncoder(rw)
	var tree prover
	counts := newCounter()
	n := 0
	// The lines (a receipt signed and two JSON encodings each) are made on every processor,
	// a batch at a time, and written in ledger order.
	var batch []*pending
	var buf []byte
	flush := func() error {
		workers := runtime.GOMAXPROCS(0)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := w; i < len(batch); i += workers {
					batch[i].ln, batch[i].err = line(ctx, l, scope, batch[i].r, batch[i].body)
				}
			})
		}
		wg.Wait()
		for _, p := range batch {
			if p.err != nil {
				return p.err
			}
			n++
			if edit != nil {
				edit(n, &p.ln)
				if err := enc.Encode(p.ln); err != nil {
					return err
				}
				continue
			}
			buf = appendLine(buf[:0], &p.ln)
			if _, err := rw.Write(buf); err != nil {
				return err
			}
		}
		batch = batch[:0]
		return nil
	}
	headSeq, headHash, err := l.Walk(ctx, func(r *consent.Record, body []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		in := scope.holds(r.Subject, r.Purpose, r.Action, r.Time)
		tree.add(r.Hash, in)
		if !in {
			return nil
		}
		counts.add(string(r.Purpose), r.Action, r.Time)
		p := &pending{r: r}
		if !scope.pseudonymous() {
			p.body = bytes.Clone(body)
		}
		if batch = append(batch, p); len(batch) == exportBatch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		var brk *consent.Break
		if errors.As(err, &brk) {
			return Summary{}, fmt.Errorf("evidence: the ledger's chain is broken at %w", brk)
		}
		return Summary{}, fmt.Errorf("evidence: %w", err)
	}
	root, proof := tree.finish()
	c := counts.result(scope)
	if err := writeJSON(bw, MemberCounts, now, c); err != nil {
		return Summary{}, err
	}
	inc := Inclusion{TreeSize: tree.size, Nodes: make([]string, len(proof))}
	for i, p := range proof {
		inc.Nodes[i] = hex.EncodeToString(p[:])
	}
	if err := writeJSON(bw, MemberInclusion, now, inc); err != nil {
		return Summary{}, err
	}
	if err := writeJSON(bw, MemberKey, now, l.ReceiptKey()); err != nil {
		return Summary{}, err
	}
	cp := Checkpoint{Type: CheckpointPayloadType, KeyID: l.ReceiptKeyID(), TreeSize: tree.size, Root: hex.EncodeToString(root[:]),
		HeadSeq: headSeq, HeadHash: hex.EncodeToString(headHash[:]), SignedAt: now.UTC(), Scope: scope, Records: n,
		Members: map[string]string{}}
	for _, m := range []string{MemberRecords, MemberCounts, MemberInclusion, MemberKey} {
		cp.Members[m] = bw.Sum(m)
	}
	payload, err := json.Marshal(cp)
	if err != nil {
		return Summary{}, err
	}
	jws, err := l.SignCheckpoint(payload)
	if err != nil {
		return Summary{}, err
	}
	cw, err := bw.Create(MemberCheckpoint, now)
	if err != nil {
		return Summary{}, err
	}
	if _, err := io.WriteString(cw, jws+"\n"); err != nil {
		return Summary{}, err
	}
	if err := bw.Close(now, generator); err != nil {
		return Summary{}, err
	}
	return Summary{Records: n, TreeSize: tree.size, Root: cp.Root, HeadHash: cp.HeadHash, Totals: c.Totals}, nil
}

// appendLine appends ln as a line of JSON, as encoding/json would write it, without its
// cost (a quarter of an export's): Record is compact JSON from json.Marshal, Hash hex and
// Receipt a compact JWS (base64url and dots), none of which needs escaping.
func appendLine(b []byte, ln *Line) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, ln.Seq, 10)
	b = append(b, `,"hash":"`...)
	b = append(b, ln.Hash...)
	b = append(b, `","record":`...)
	b = append(b, ln.Record...)
	if ln.Encoding != nil {
		b = append(b, `,"encoding":"`...)
		b = base64.StdEncoding.AppendEncode(b, ln.Encoding)
		b = append(b, '"')
	}
	b = append(b, `,"receipt":"`...)
	b = append(b, ln.Receipt...)
	return append(b, "\"}\n"...)
}

// exportBatch is how many lines Export makes in parallel before it writes them.
const exportBatch = 512

// pending is a record in scope whose line is being made.
type pending struct {
	r    *consent.Record
	body []byte // the encoding, in an export about one subject
	ln   Line
	err  error
}

// line makes the line of record r: its receipt, and its JSON (pseudonymous if the scope is).
func line(ctx context.Context, l *consent.Ledger, scope Scope, r *consent.Record, body []byte) (Line, error) {
	rc, err := l.ReceiptOf(ctx, r, scope.pseudonymous())
	if err != nil {
		return Line{}, err
	}
	view := *r
	ln := Line{Seq: r.Seq, Hash: hex.EncodeToString(r.Hash[:]), Receipt: rc.JWS, Encoding: body}
	if scope.pseudonymous() {
		view.Subject = privguard.SubjectID(l.Pseudonym(r.Subject))
		if r.Guardian != nil {
			g := *r.Guardian
			g.Reference = l.Pseudonym(privguard.SubjectID(g.Reference))
			view.Guardian = &g
		}
		view.Evidence.UserAgent, view.Evidence.IPPrefix, view.Evidence.IPHash = "", "", nil
	}
	ln.Record, err = json.Marshal(view)
	return ln, err
}

func writeJSON(bw *Writer, name string, now time.Time, v any) error {
	w, err := bw.Create(name, now)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// CountPeriod counts the grants, withdrawals, expiries and refusals of every purpose in
// the ledger from ≤ time < to, per day and purpose, in one chain-checked walk (Walk): the
// consent statistics of an audit pack. It names no subject. A broken chain stops it with
// the *consent.Break.
func CountPeriod(ctx context.Context, l *consent.Ledger, from, to time.Time) (Counts, error) {
	c := newCounter()
	_, _, err := l.Walk(ctx, func(r *consent.Record, _ []byte) error {
		if !r.Time.Before(from) && r.Time.Before(to) {
			c.add(string(r.Purpose), r.Action, r.Time)
		}
		return nil
	})
	if err != nil {
		return Counts{}, err
	}
	return c.result(Scope{From: from, To: to}), nil
}
