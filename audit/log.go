package audit

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/journal"
	"github.com/privguard/privguard/middleware"
)

// DefaultBuffer is how many events may wait for the writer.
const DefaultBuffer = 8192

// Event is one decision as logged.
type Event struct {
	Time        time.Time                `json:"time"`
	DecisionID  string                   `json:"decision_id"`
	Revision    string                   `json:"revision"`
	Replica     string                   `json:"replica,omitempty"` // the process that decided
	Route       string                   `json:"route,omitempty"`
	Subject     string                   `json:"subject"` // keyed hash, never the id
	Purpose     privguard.Purpose        `json:"purpose"`
	Categories  []privguard.DataCategory `json:"categories,omitempty"`
	Regime      privguard.Regime         `json:"regime"`
	Effect      privguard.Effect         `json:"effect"`
	Reasons     []privguard.Reason       `json:"reasons,omitempty"`
	Obligations []string                 `json:"obligations,omitempty"`
	Consent     string                   `json:"consent_state,omitempty"`
	// Assessment is the impact assessment the decision rested on (high-impact uses).
	Assessment string `json:"assessment,omitempty"`
	// Caller names the calling service that presented a caller credential (never the
	// credential itself).
	Caller string `json:"caller,omitempty"`
	Prev   string `json:"prev"` // SHA-256 of the previous line
}

// Config configures [Open].
type Config struct {
	// Path is the log file (appended to; created with mode 0600).
	Path string
	// Key is the HMAC key subjects are pseudonymised with (at least 16 bytes).
	Key []byte
	// Buffer bounds the waiting events; zero means DefaultBuffer.
	Buffer int
	// Logger receives write errors. If nil, nothing is logged.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Replica names the process in every line (several replicas' logs are collected
	// together). Empty: not written.
	Replica string
	// Checkpoints, if set, is the store the checkpoint log (CheckpointLog) is kept in:
	// the active file is closed into a numbered segment when it reaches MaxSize, each
	// closed segment is recorded there, and segments older than Retention are deleted.
	// If nil, the log is one file that grows.
	Checkpoints journal.Store
	// MaxSize is the active file's size at which it is closed into a segment; zero means
	// DefaultMaxSize.
	MaxSize int64
	// Retention is how long closed segments are kept, counted from their last line; zero
	// means they are kept. Below MinRetention, Open refuses it (AUD-03).
	Retention time.Duration
}

// Log is an open decision log.
type Log struct {
	replica string
	key     []byte
	now     func() time.Time
	log     *slog.Logger
	events  chan item
	dropped atomic.Uint64
	written atomic.Uint64
	done    chan struct{}
	once    sync.Once
	f       *os.File
	macs    sync.Pool // of *pseudonymiser
	seg     segmenter
}

// item is what waits for the writer: one event, or a batch's (expanded into an event per
// subject by the writer, so that a batch of 100,000 takes one place in the buffer).
type item struct {
	e       Event
	batch   []middleware.BatchEntry
	subject privguard.SubjectID // pseudonymised by the writer
}

// pseudonymiser is a keyed HMAC reused across calls, with a buffer for the input.
type pseudonymiser struct {
	mac hash.Hash
	buf []byte
}

// Open opens (or creates) the log at cfg.Path and starts its writer. An existing log is
// continued: its last line's hash starts the chain.
func Open(cfg Config) (*Log, error) {
	if len(cfg.Key) < 16 {
		return nil, errors.New("audit: key shorter than 16 bytes")
	}
	if cfg.Buffer == 0 {
		cfg.Buffer = DefaultBuffer
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxSize == 0 {
		cfg.MaxSize = DefaultMaxSize
	}
	if cfg.Retention != 0 && cfg.Retention < MinRetention {
		return nil, fmt.Errorf("audit: a retention of %v is under the floor of %v (operation logs are kept at least six months: CSL Art. 21(3))", cfg.Retention, MinRetention)
	}
	seg := segmenter{path: cfg.Path, maxSize: cfg.MaxSize, retention: cfg.Retention, replica: cfg.Replica, store: cfg.Checkpoints, now: cfg.Now}
	if cfg.Checkpoints != nil {
		j, err := journal.Open(cfg.Checkpoints, CheckpointLog, cfg.Now)
		if err != nil {
			return nil, err
		}
		seg.cps = j
	}
	prev, err := seg.open(context.Background())
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(cfg.Path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	l := &Log{replica: cfg.Replica, key: cfg.Key, now: cfg.Now, log: cfg.Logger, events: make(chan item, cfg.Buffer), done: make(chan struct{}), f: f, seg: seg}
	l.macs.New = func() any { return &pseudonymiser{mac: hmac.New(sha256.New, l.key)} }
	go l.run(prev)
	return l, nil
}

// Pseudonym returns the keyed hash a subject is logged under; with the key, a DPO can find
// a subject's decisions, without it the log names nobody.
func (l *Log) Pseudonym(s privguard.SubjectID) string {
	p := l.macs.Get().(*pseudonymiser)
	p.mac.Reset()
	p.buf = append(p.buf[:0], s...)
	p.mac.Write(p.buf)
	var sum [sha256.Size]byte
	var out [3 + 32]byte
	copy(out[:], "hs_")
	hex.Encode(out[3:], p.mac.Sum(sum[:0])[:16])
	if cap(p.buf) <= 1<<10 { // an odd huge id is not kept
		l.macs.Put(p)
	}
	return string(out[:])
}

// Record logs a decision about in without blocking; if the buffer is full the event is
// dropped and counted. Personal data in in (the subject id) never reaches the log.
func (l *Log) Record(route string, in *privguard.Input, d *privguard.Decision) {
	l.enqueue(item{e: l.event(route, in, in.Consent.State, d), subject: in.Subject}, 1)
}

// RecordBatch implements middleware.BatchRecorder: the batch takes one place in the buffer,
// and the writer logs one event per subject, as Record would. If the buffer is full, the
// batch's events are dropped and counted.
func (l *Log) RecordBatch(route string, in *privguard.Input, entries []middleware.BatchEntry) {
	if len(entries) == 0 {
		return
	}
	l.enqueue(item{e: l.event(route, in, "", nil), batch: entries}, uint64(len(entries)))
}

func (l *Log) enqueue(it item, n uint64) {
	select {
	case l.events <- it:
	default:
		l.dropped.Add(n)
	}
}

// event is the event of a decision d about in, without its subject; d nil leaves the
// decision's fields for the writer (a batch).
func (l *Log) event(route string, in *privguard.Input, consent string, d *privguard.Decision) Event {
	e := Event{Time: l.now().UTC(), Route: route, Purpose: in.Purpose, Categories: in.Categories, Regime: in.Regime, Consent: consent, Caller: in.Caller}
	if d != nil {
		e.decided(d)
	}
	return e
}

func (e *Event) decided(d *privguard.Decision) {
	e.DecisionID, e.Revision, e.Effect, e.Reasons, e.Obligations, e.Assessment = d.ID, d.Revision, d.Effect, d.Reasons, nil, d.Assessment
	for _, o := range d.Obligations {
		e.Obligations = append(e.Obligations, string(o.Kind))
	}
}

// Dropped returns how many events were dropped because the buffer was full.
func (l *Log) Dropped() uint64 { return l.dropped.Load() }

// Written returns how many events were written.
func (l *Log) Written() uint64 { return l.written.Load() }

// Close writes what is buffered, syncs and closes the file. Record must not be called after.
func (l *Log) Close() error {
	l.once.Do(func() { close(l.events) })
	<-l.done
	if l.f == nil {
		return errors.New("audit: the active file could not be reopened after a rotation")
	}
	if err := l.f.Sync(); err != nil {
		l.f.Close()
		return fmt.Errorf("audit: sync: %w", err)
	}
	return l.f.Close()
}

func (l *Log) run(prev string) {
	defer close(l.done)
	ctx := context.Background()
	w := bufio.NewWriterSize(l.f, 64<<10)
	var line []byte // reused
	write := func(e *Event) {
		e.Prev, e.Replica = prev, l.replica
		line = e.appendJSON(line[:0])
		if l.seg.full(len(line)) {
			l.rotate(ctx, w)
		}
		sum := sha256.Sum256(line)
		hash := hex.EncodeToString(sum[:])
		l.seg.wrote(line, e.Time, prev, hash)
		prev = hash
		w.Write(append(line, '\n'))
		l.written.Add(1)
	}
	tick := time.NewTicker(time.Hour)
	defer tick.Stop()
	for {
		var it item
		var ok bool
		select {
		case it, ok = <-l.events:
		case <-tick.C:
			if err := l.seg.expire(ctx); err != nil {
				l.log.Error("audit: retention", "err", err)
			}
			continue
		}
		if !ok {
			break
		}
		if it.batch == nil {
			it.e.Subject = l.Pseudonym(it.subject)
			write(&it.e)
		}
		var last *privguard.Decision
		for _, b := range it.batch {
			if b.Decision != last {
				it.e.decided(b.Decision)
				last = b.Decision
			}
			it.e.Subject, it.e.Consent = l.Pseudonym(b.Subject), b.Consent
			write(&it.e)
		}
		if len(l.events) == 0 {
			if err := w.Flush(); err != nil {
				l.log.Error("audit: write", "err", err)
			}
		}
	}
	if err := w.Flush(); err != nil {
		l.log.Error("audit: write", "err", err)
	}
}

// rotate closes the active file into a segment and continues on a new one (w is reset to
// it). A failure is logged; lines go on to whichever file is open.
func (l *Log) rotate(ctx context.Context, w *bufio.Writer) {
	if err := w.Flush(); err != nil {
		l.log.Error("audit: write", "err", err)
	}
	f, err := l.seg.rotate(ctx, l.f)
	if err != nil {
		l.log.Error("audit: rotate", "err", err)
	}
	if f == nil {
		if f, err = os.OpenFile(l.seg.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err != nil {
			l.log.Error("audit: reopen after rotation", "err", err)
			f = nil
		}
	}
	l.f = f
	if f != nil {
		w.Reset(f)
	} else {
		w.Reset(io.Discard)
	}
}

// Verify checks the chain of the log read from r and returns the number of lines, or the
// 1-based number of the first line whose prev does not match the line before it.
func Verify(r io.Reader) (lines int, bad int, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	prev := ""
	for sc.Scan() {
		lines++
		var e struct {
			Prev string `json:"prev"`
		}
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Prev != prev {
			return lines, lines, nil
		}
		sum := sha256.Sum256(sc.Bytes())
		prev = hex.EncodeToString(sum[:])
	}
	return lines, 0, sc.Err()
}

// Pseudonym returns the keyed hash a subject is logged under with key, as [Log.Pseudonym]
// does: a DPO's tool finds a subject's decisions with it, without the log naming anyone.
func Pseudonym(key []byte, s privguard.SubjectID) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return "hs_" + hex.EncodeToString(m.Sum(nil)[:16])
}
