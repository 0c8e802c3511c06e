// Package trail is the admin trail: every privileged act on privguard — an identity
// attested, a request approved, rejected or extended, a subject's keys shredded, keys
// rotated, a package downloaded, the policy reloaded, a register read by an auditor, a call
// refused to a principal's role — appended to the journal log "trail" with who did it, by
// which role, through what, on what, and how it ended. The log is hash-chained like every
// journal log (journal.Verify finds an altered or removed entry). Subjects are named by a
// keyed hash, as in the decision log, never by id.
package trail

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/privguard/privguard/internal/csvsafe"
	"github.com/privguard/privguard/journal"
)

// Log is the journal log of the trail.
const Log = "trail"

// Entry is one act.
type Entry struct {
	Principal string   `json:"principal"`
	Roles     []string `json:"roles,omitempty"`
	// Via is how the act came: api, cli or serve.
	Via string `json:"via"`
	// Act is the API route ("POST /v1/requests/{id}/approve") or the command ("keys rotate",
	// "policy reload").
	Act string `json:"act"`
	// Target names what the act was on: the route's path values ({id}, {store}; a
	// {subject} as its keyed hash) or a command's.
	Target map[string]string `json:"target,omitempty"`
	// Status is the HTTP status of an API act.
	Status int `json:"status,omitempty"`
	// Outcome: ok, refused (the principal may not) or failed.
	Outcome string `json:"outcome"`
	Replica string `json:"replica,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// Trail appends acts. Safe for concurrent use.
type Trail struct {
	store    journal.Store
	b        *journal.Batcher
	key      []byte
	replica  string
	log      *slog.Logger
	failures atomic.Int64
}

// Open returns the trail in store; key (≥ 32 bytes) hashes subjects; replica is written in
// every entry.
func Open(store journal.Store, key []byte, replica string, log *slog.Logger) (*Trail, error) {
	if len(key) < 32 {
		return nil, errors.New("trail: the subject key must be at least 32 bytes")
	}
	j, err := journal.Open(store, Log, nil)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Trail{store: store, b: journal.NewBatcher(j), key: key, replica: replica, log: log}, nil
}

// Close writes what is queued and stops.
func (t *Trail) Close() { t.b.Close() }

// Store returns the store the trail is in.
func (t *Trail) Store() journal.Store { return t.store }

// Subject returns the keyed hash a subject is named by in the trail ("hs_" and 22
// characters), the same for the same subject under the same key.
func (t *Trail) Subject(subject string) string {
	m := hmac.New(sha256.New, t.key)
	m.Write([]byte(subject))
	return "hs_" + base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// Record appends e. An entry that cannot be written is logged (without its target) and
// counted (Failures), and the error returned.
func (t *Trail) Record(ctx context.Context, e Entry) error {
	if e.Replica == "" {
		e.Replica = t.replica
	}
	if err := t.b.Append(ctx, &e); err != nil {
		t.failures.Add(1)
		t.log.Error("privguard: an act could not be written to the admin trail", "act", e.Act, "principal", e.Principal, "err", err)
		return fmt.Errorf("trail: %w", err)
	}
	return nil
}

// Failures counts entries that could not be written.
func (t *Trail) Failures() int64 { return t.failures.Load() }

// Stored is an entry as stored.
type Stored struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	Hash string    `json:"hash"`
	Entry
}

// Filter selects entries: From ≤ time < To, of one principal, of acts starting with Act,
// after a sequence number.
type Filter struct {
	From, To  time.Time
	Principal string
	Act       string
	After     uint64
}

// Entries calls fn for the entries of store that f selects, checking the chain as it
// reads (a *journal.BreakError if it breaks).
func Entries(ctx context.Context, store journal.Store, f Filter, fn func(Stored) error) error {
	return journal.Scan(ctx, store, Log, f.After, f.To, func(e journal.Entry) error {
		if !f.From.IsZero() && e.Time.Before(f.From) {
			return nil
		}
		s := Stored{Seq: e.Seq, Time: e.Time, Hash: e.Hash}
		if err := e.Decode(&s.Entry); err != nil {
			return err
		}
		if (f.Principal != "" && s.Principal != f.Principal) || (f.Act != "" && !strings.HasPrefix(s.Act, f.Act)) {
			return nil
		}
		return fn(s)
	})
}

// CSVHeader is the trail's heading, in Chinese and English.
var CSVHeader = []string{"序号 / Seq", "时间 / Time (UTC)", "主体 / Principal", "角色 / Roles", "途径 / Via", "操作 / Act",
	"对象 / Target", "状态 / Status", "结果 / Outcome", "实例 / Replica", "哈希 / Hash"}

// WriteCSV writes the entries f selects as CSV (UTF-8 with a BOM, cells defused).
func WriteCSV(ctx context.Context, w io.Writer, store journal.Store, f Filter) error {
	cw := csvsafe.NewWriter(w)
	if err := cw.Write(CSVHeader...); err != nil {
		return err
	}
	err := Entries(ctx, store, f, func(s Stored) error {
		keys := make([]string, 0, len(s.Target))
		for k := range s.Target {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var target []string
		for _, k := range keys {
			target = append(target, k+"="+s.Target[k])
		}
		status := ""
		if s.Status != 0 {
			status = strconv.Itoa(s.Status)
		}
		return cw.Write(strconv.FormatUint(s.Seq, 10), s.Time.UTC().Format(time.RFC3339Nano), s.Principal, strings.Join(s.Roles, " "),
			s.Via, s.Act, strings.Join(target, " "), status, s.Outcome, s.Replica, s.Hash)
	})
	if err != nil {
		return err
	}
	return cw.Flush()
}
