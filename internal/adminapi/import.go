package adminapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
)

// Import limits.
const (
	// MaxImportItem is the longest line (one item) of an import; a longer one is refused
	// alone, as a 413 problem, and skipped without being held.
	MaxImportItem = MaxConsentBody
	// importChunkItems and importChunkBytes bound a chunk: the items read, decoded and
	// handed to the ledger together (one or a few group commits). At most three chunks are
	// held at once (one read, one decoded and waiting, one committing), so an import of any
	// length holds a few megabytes.
	importChunkItems = consent.MaxGroup
	importChunkBytes = 4 << 20
	// importIdle is how long an import may go without finishing a chunk (reading it, or
	// writing its answers); serve's per-request timeouts do not apply to an import.
	importIdle = time.Minute
)

// NDJSONContentType is the media type of an import's body and answer: one JSON value a line.
const NDJSONContentType = "application/x-ndjson"

// importItem is one line of POST /v1/consents/import: a POST /v1/consents body, plus the
// idempotency key that the single endpoint takes as a header.
type importItem struct {
	consentBody
	IdempotencyKey string `json:"idempotency_key" validate:"max=255"`
}

// Import outcomes, per item.
const (
	OutcomeCreated  = "created"  // recorded now
	OutcomeReplayed = "replayed" // recorded earlier under the same idempotency key
	OutcomeRejected = "rejected" // the item breaks a rule: fix it before sending it again
	OutcomeFailed   = "failed"   // privguard could not record it now: send it again as it is
)

// importChunk is a run of consecutive items of one import.
type importChunk struct {
	first int           // index of items[0]
	items []importEntry // in order
}

type importEntry struct {
	line    []byte // the item (within the chunk's buffer), nil once decoded
	tooBig  bool
	req     consent.Request
	problem *privguard.Problem
}

// importConsents is POST /v1/consents/import: an NDJSON stream of consent records made
// elsewhere, each line a POST /v1/consents body (plus "idempotency_key"), answered as an
// NDJSON stream: one line per item in order ({"index", "outcome", "id", "seq"} or
// {"index", "outcome", "problem"}), then {"summary": ...}. Items are decided one by one
// (consent.Ledger.Import); one that breaks a rule is answered alone and the others go on.
//
// The body is read in chunks of up to 4,096 items; a chunk is handed to the ledger only
// once it has been read whole, and its answers are written once it is committed. A body
// cut short (the connection lost, a truncated chunked body) drops the chunk being read;
// the summary then says complete: false and next_index, the first item not committed.
// Every item answered created or replayed is committed; of the items not answered, only
// those of a chunk read whole before the connection failed may be (their answers were
// lost with it), which idempotency keys make safe to send again.
func (s *Server) importConsents(w http.ResponseWriter, r *http.Request) error {
	if err := bodyType(r, NDJSONContentType, "send Content-Type: "+NDJSONContentType+", one JSON object a line"); err != nil {
		return err
	}
	if r.Header.Get("Idempotency-Key") != "" {
		p := privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Idempotency-Key is per item",
			"give each line its own idempotency_key instead")
		p.Field = "Idempotency-Key"
		return p
	}
	q := r.URL.Query()
	if err := onceQuery(q); err != nil {
		return err
	}
	failuresOnly := false
	switch q.Get("answers") {
	case "", "all":
	case "failures":
		failuresOnly = true
	default:
		p := privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Bad answers parameter", "answers is all (the default) or failures")
		p.Field = "answers"
		return p
	}
	principal, _ := PrincipalFromContext(r.Context())
	rc := http.NewResponseController(w)
	_ = rc.EnableFullDuplex() // answers stream while the body is still read (HTTP/1.1)
	_ = rc.SetReadDeadline(time.Now().Add(importIdle))
	_ = rc.SetWriteDeadline(time.Now().Add(importIdle))

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	chunks := make(chan *importChunk, 1)
	readerDone := make(chan struct{})
	var readEnd error // how reading ended: nil at the body's end; set before chunks closes
	go func() {
		defer close(readerDone)
		readEnd = s.readImport(ctx, r.Body, rc, principal, chunks)
	}()
	defer func() {
		cancel()
		select {
		case <-readerDone:
		default:
			_ = rc.SetReadDeadline(time.Now()) // a reader blocked on the body returns at once
			<-readerDone
		}
		// The connection may serve another request: take the import's deadlines off it
		// (a server with timeouts sets its own when it reads the next request).
		_ = rc.SetReadDeadline(time.Time{})
		_ = rc.SetWriteDeadline(time.Time{})
	}()

	h := w.Header()
	h.Set("Content-Type", NDJSONContentType)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	out := bufio.NewWriterSize(w, 64<<10)
	var sum importSummary
	sum.Complete = true
	var reqs []consent.Request
	var results []consent.Result
	var at []int
	for chunk := range chunks {
		reqs, at = reqs[:0], at[:0]
		for i := range chunk.items {
			if e := &chunk.items[i]; e.problem == nil {
				reqs = append(reqs, e.req)
				at = append(at, i)
			}
		}
		results = append(results[:0], make([]consent.Result, len(reqs))...)
		// A chunk read whole is decided whole, even if the client goes away meanwhile:
		// what is queued is committed, and a half-queued chunk would be a harder story.
		s.ledger.Import(context.WithoutCancel(ctx), reqs, results)
		k := 0
		var buf []byte
		for i := range chunk.items {
			e := &chunk.items[i]
			index := chunk.first + i
			sum.Items++
			if e.problem == nil {
				res := &results[k]
				k++
				if res.Err != nil {
					p, retry := s.problemOf(r, res.Err)
					if p.Field == "Idempotency-Key" {
						p.Field = "idempotency_key" // in an import the key is the line's own field
					}
					e.problem = p
					if retry {
						sum.Failed++
						buf = appendProblemAnswer(buf[:0], index, OutcomeFailed, p)
					} else {
						sum.Rejected++
						buf = appendProblemAnswer(buf[:0], index, OutcomeRejected, p)
					}
					out.Write(buf)
					continue
				}
				outcome := OutcomeCreated
				if res.Replayed {
					outcome = OutcomeReplayed
					sum.Replayed++
				} else {
					sum.Created++
				}
				if !failuresOnly {
					buf = appendRecordAnswer(buf[:0], index, outcome, &res.Record)
					out.Write(buf)
				}
				continue
			}
			sum.Rejected++
			buf = appendProblemAnswer(buf[:0], index, OutcomeRejected, e.problem)
			out.Write(buf)
		}
		_ = rc.SetWriteDeadline(time.Now().Add(importIdle))
		if err := out.Flush(); err != nil {
			return nil // the client went away; what was committed is committed
		}
		_ = rc.Flush()
	}
	<-readerDone // readEnd is set
	sum.NextIndex = sum.Items
	if readEnd != nil {
		sum.Complete, sum.Error = false, readEnd.Error()
	}
	b, _ := json.Marshal(struct {
		Summary importSummary `json:"summary"`
	}{sum})
	out.Write(append(b, '\n'))
	_ = out.Flush()
	return nil
}

// importSummary is the last line of an import's answer.
type importSummary struct {
	Items    int `json:"items"` // items read and answered
	Created  int `json:"created"`
	Replayed int `json:"replayed"`
	Rejected int `json:"rejected"`
	Failed   int `json:"failed"`
	// Complete reports that the body was read to its end; when it was not, Error says why
	// and NextIndex is the first item neither answered nor committed.
	Complete  bool   `json:"complete"`
	NextIndex int    `json:"next_index"`
	Error     string `json:"error,omitempty"`
}

func appendRecordAnswer(b []byte, index int, outcome string, rec *consent.Record) []byte {
	b = append(b, `{"index":`...)
	b = strconv.AppendInt(b, int64(index), 10)
	b = append(b, `,"outcome":"`...)
	b = append(b, outcome...)
	b = append(b, `","id":`...)
	b = strconv.AppendQuote(b, rec.ID) // a UUID: nothing to escape
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, rec.Seq, 10)
	return append(b, "}\n"...)
}

func appendProblemAnswer(b []byte, index int, outcome string, p *privguard.Problem) []byte {
	pj, _ := json.Marshal(p)
	b = append(b, `{"index":`...)
	b = strconv.AppendInt(b, int64(index), 10)
	b = append(b, `,"outcome":"`...)
	b = append(b, outcome...)
	b = append(b, `","problem":`...)
	b = append(b, pj...)
	return append(b, "}\n"...)
}

// errBodyCut is why an import's body could not be read to its end.
var (
	errBodyCut       = errors.New("the body was cut short (connection lost or truncated): the items from next_index on were not committed")
	errImportStopped = errors.New("the import stopped before the end of the body: the items from next_index on were not committed")
)

// readImport reads body into chunks, decodes each chunk's items in parallel and sends the
// chunks in order. It returns nil once it has read the body to its end, or why it could
// not (the chunk it was reading is dropped). Blank lines are not items.
func (s *Server) readImport(ctx context.Context, body io.Reader, rc *http.ResponseController, principal Principal, chunks chan<- *importChunk) (end error) {
	defer close(chunks)
	br := bufio.NewReaderSize(body, MaxImportItem+2) // the item and its CR LF
	index := 0
	send := func(c *importChunk) bool {
		select {
		case chunks <- c:
			return true
		case <-ctx.Done():
			return false
		}
	}
	// buf holds the lines of the chunk being read; they are decoded before the chunk is
	// sent, so the next chunk reuses it.
	buf := make([]byte, 0, importChunkBytes+MaxImportItem)
	var spans [][2]int
	tooBig := map[int]bool{}
	for {
		c := &importChunk{first: index}
		buf, spans = buf[:0], spans[:0]
		clear(tooBig)
		var readErr error
		for len(spans) < importChunkItems && len(buf) < importChunkBytes {
			line, err := br.ReadSlice('\n')
			if errors.Is(err, bufio.ErrBufferFull) {
				for errors.Is(err, bufio.ErrBufferFull) { // skip the rest of the line
					_, err = br.ReadSlice('\n')
				}
				if err != nil && !errors.Is(err, io.EOF) {
					readErr = err
					break
				}
				tooBig[len(spans)] = true
				spans = append(spans, [2]int{len(buf), len(buf)})
				if err != nil {
					readErr = io.EOF
					break
				}
				continue
			}
			if err != nil && !errors.Is(err, io.EOF) {
				readErr = err
				break
			}
			item := bytes.TrimSpace(line)
			if index == 0 && len(spans) == 0 && c.first == 0 {
				item = bytes.TrimPrefix(item, utf8BOM) // the first line of a file saved with a byte order mark
			}
			if len(item) > 0 {
				if len(item) > MaxImportItem {
					tooBig[len(spans)] = true
					spans = append(spans, [2]int{len(buf), len(buf)})
				} else {
					spans = append(spans, [2]int{len(buf), len(buf) + len(item)})
					buf = append(buf, item...)
				}
			}
			if err != nil {
				readErr = io.EOF
				break
			}
		}
		if readErr != nil && !errors.Is(readErr, io.EOF) {
			return errBodyCut // nothing of this chunk is committed
		}
		c.items = make([]importEntry, len(spans))
		for i, sp := range spans {
			c.items[i].line = buf[sp[0]:sp[1]]
			c.items[i].tooBig = tooBig[i]
		}
		index += len(spans)
		s.decodeImport(principal, c.items)
		if len(c.items) > 0 && !send(c) {
			return errImportStopped
		}
		_ = rc.SetReadDeadline(time.Now().Add(importIdle))
		if readErr != nil { // io.EOF: the body's end
			return nil
		}
	}
}

// decodeImport decodes and validates items, spread over the processors.
func (s *Server) decodeImport(principal Principal, items []importEntry) {
	if len(items) == 0 {
		return
	}
	workers := min(runtime.GOMAXPROCS(0), max(1, len(items)/64))
	per := (len(items) + workers - 1) / max(1, workers)
	var wg sync.WaitGroup
	for lo := 0; lo < len(items); lo += per {
		part := items[lo:min(lo+per, len(items))]
		wg.Go(func() {
			for i := range part {
				s.decodeImportItem(principal, &part[i])
			}
		})
	}
	wg.Wait()
}

func (s *Server) decodeImportItem(principal Principal, e *importEntry) {
	defer func() { e.line = nil }()
	if e.tooBig {
		e.problem = jsonProblem(&http.MaxBytesError{Limit: MaxImportItem}, MaxImportItem)
		return
	}
	var it importItem
	if err := s.decodeBytes(e.line, MaxImportItem, &it); err != nil {
		e.problem = unembed(asProblem(err))
		return
	}
	if !printable(it.IdempotencyKey) {
		p := privguard.NewProblem(http.StatusUnprocessableEntity, TypeValidation, "The request breaks a rule",
			"idempotency_key: at most 255 printable ASCII characters")
		p.Field, p.Errors = "idempotency_key", []privguard.FieldError{{Field: "idempotency_key", Rule: "printascii"}}
		e.problem = p
		return
	}
	req, err := consentRequest(principal, &it.consentBody)
	if err != nil {
		e.problem = asProblem(err)
		return
	}
	if it.IdempotencyKey != "" {
		req.IdempotencyKey = principal.Name + "\x00" + it.IdempotencyKey
	}
	e.req = req
}

// asProblem is the problem of a decoding error (always a problem already).
func asProblem(err error) *privguard.Problem {
	var p *privguard.Problem
	if errors.As(err, &p) {
		return p
	}
	return privguard.NewProblem(http.StatusBadRequest, TypeMalformedJSON, "Malformed JSON", "")
}

// unembed names the fields of a problem about an import item as the item's keys: the
// validator names a field of the embedded consentBody "consentBody.subject".
func unembed(p *privguard.Problem) *privguard.Problem {
	const prefix = "consentBody."
	p.Field = strings.TrimPrefix(p.Field, prefix)
	p.Detail = strings.TrimPrefix(p.Detail, prefix)
	for i := range p.Errors {
		p.Errors[i].Field = strings.TrimPrefix(p.Errors[i].Field, prefix)
	}
	return p
}
