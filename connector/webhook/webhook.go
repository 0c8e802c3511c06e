// Package webhook is the connector for stores behind HTTP (SaaS tools that hold subjects'
// data: SMS and email senders, ad platforms) and the notifier of recipients (GDPR Art. 19).
//
// A webhook store is not a [dsar.Profiler]: the protocol has no call that lists a subject's
// tags item by item, so a subject's profile does not show what the other system derived,
// and a tag deletion has no task there (the subject's full erasure still reaches it).
//
// # Protocol
//
// privguard POSTs a JSON [Call] to the configured URL:
//
//	POST /privacy HTTP/1.1
//	Content-Type: application/json
//	Idempotency-Key: <request>:<store>:<op>
//	Privguard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//
//	{"id":"<request>:<store>:<op>","request":"<request>","op":"erase","subject":"cust-1"}
//
// op is export, erase, correct (with patch: category -> new value) or notify (with
// notice). The store answers 200 with an [Answer] when it is done ({"status":"done",
// "items":3} and, for export, "tables"), or 202 when it accepted the work and will call
// back. The callback is a POST of a [Callback] naming the call's id to the call's
// "callback" path on privguard's admin listener (/v1/callbacks/<store>), signed the same
// way with the same secret; a callback naming another task is refused. A call may be repeated
// with the same Idempotency-Key (retries, rechecks of pending work); the store must treat
// it as one. Any other status is a failure, retried with backoff; redirects are not
// followed. Signatures older or newer than [Tolerance] are refused.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/dsar"
)

// Defaults.
const (
	DefaultTimeout     = 30 * time.Second
	DefaultMaxResponse = 64 << 20
	// Tolerance is how far a signature's timestamp may be from now.
	Tolerance = 5 * time.Minute
	// MinSecret is the shortest shared secret accepted.
	MinSecret = 32
	// SignatureHeader carries the HMAC signature of a body.
	SignatureHeader = "Privguard-Signature"
)

// Ops.
const (
	OpExport  = dsar.OpExport
	OpErase   = dsar.OpErase
	OpCorrect = dsar.OpCorrect
	OpNotify  = dsar.OpNotify
)

// Call is what privguard sends.
type Call struct {
	// ID names the task ("<request>:<store>:<op>"): the idempotency key, and what a
	// callback must name.
	ID      string `json:"id"`
	Request string `json:"request"`
	// Store is the task's store as privguard names it (a recipient's is
	// "recipient:<name>"); Callback is the path to report completion to.
	Store    string                `json:"store"`
	Callback string                `json:"callback"`
	Op       string                `json:"op"`
	Subject  privguard.SubjectID   `json:"subject"`
	Patch    map[string]string     `json:"patch,omitempty"`
	Notice   *dsar.RecipientNotice `json:"notice,omitempty"`
}

// Answer is a store's synchronous answer.
type Answer struct {
	Status string       `json:"status"` // "done" (default) or "accepted"
	Items  int          `json:"items"`
	Tables []dsar.Table `json:"tables,omitempty"`
}

// Callback is a store's report that accepted work finished. ID is the call's id.
type Callback struct {
	ID      string       `json:"id"`
	Request string       `json:"request"`
	Op      string       `json:"op"`
	Status  string       `json:"status"` // "done" or "failed"
	Items   int          `json:"items"`
	Tables  []dsar.Table `json:"tables,omitempty"`
}

// Config configures [New].
type Config struct {
	Name   string
	URL    string
	Secret []byte
	// Client defaults to one with DefaultTimeout that does not follow redirects.
	Client      *http.Client
	MaxResponse int64
	Now         func() time.Time
}

// Connector is one webhook endpoint: a store (dsar.Connector, dsar.Rectifier) or a
// recipient (dsar.RecipientNotifier), taking completion callbacks (dsar.CallbackParser).
type Connector struct {
	name   string
	url    string
	secret []byte
	client *http.Client
	max    int64
	now    func() time.Time
}

var (
	_ dsar.Connector         = (*Connector)(nil)
	_ dsar.Rectifier         = (*Connector)(nil)
	_ dsar.RecipientNotifier = (*Connector)(nil)
	_ dsar.CallbackParser    = (*Connector)(nil)
	_ dsar.PackageReceiver   = (*Connector)(nil)
)

// New checks cfg and returns the connector. The URL must be https, except on a loopback
// address (development and tests): the body carries personal data.
func New(cfg Config) (*Connector, error) {
	if cfg.Name == "" {
		return nil, errors.New("webhook: Config.Name is empty")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("webhook %s: URL is not absolute", cfg.Name)
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && loopback(u.Hostname())) {
		return nil, fmt.Errorf("webhook %s: URL must be https (http only on a loopback address)", cfg.Name)
	}
	if len(cfg.Secret) < MinSecret {
		return nil, fmt.Errorf("webhook %s: the secret must be at least %d bytes", cfg.Name, MinSecret)
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: DefaultTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if cfg.MaxResponse <= 0 {
		cfg.MaxResponse = DefaultMaxResponse
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Connector{name: cfg.Name, url: cfg.URL, secret: bytes.Clone(cfg.Secret), client: cfg.Client, max: cfg.MaxResponse, now: cfg.Now}, nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Name implements dsar.Connector.
func (c *Connector) Name() string { return c.name }

// Export implements dsar.Connector.
func (c *Connector) Export(ctx context.Context, subject privguard.SubjectID) (dsar.Export, error) {
	a, err := c.call(ctx, Call{Op: OpExport, Subject: subject})
	if err != nil {
		return dsar.Export{}, err
	}
	return dsar.Export{Store: c.name, Tables: a.Tables}, nil
}

// Erase implements dsar.Connector.
func (c *Connector) Erase(ctx context.Context, subject privguard.SubjectID) (dsar.Erased, error) {
	a, err := c.call(ctx, Call{Op: OpErase, Subject: subject})
	return dsar.Erased{Items: a.Items}, err
}

// Correct implements dsar.Rectifier: the store applies the patch to its own fields.
func (c *Connector) Correct(ctx context.Context, subject privguard.SubjectID, patch map[privguard.DataCategory]string) (int, error) {
	p := make(map[string]string, len(patch))
	for k, v := range patch {
		p[string(k)] = v
	}
	a, err := c.call(ctx, Call{Op: OpCorrect, Subject: subject, Patch: p})
	return a.Items, err
}

// NotifyRecipient implements dsar.RecipientNotifier.
func (c *Connector) NotifyRecipient(ctx context.Context, n dsar.RecipientNotice) error {
	_, err := c.call(ctx, Call{Op: OpNotify, Subject: n.Subject, Notice: &n})
	return err
}

// ReceivePackage implements dsar.PackageReceiver: it POSTs a portability package (the zip)
// to the recipient, signed like every call, with the request id and the zip's SHA-256
// (Repr-Digest) in headers; the request id is also in the zip's manifest.json, which the
// signature covers. 200, 201 or 204 is receipt.
func (c *Connector) ReceivePackage(ctx context.Context, requestID string, zip []byte, sha string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(zip))
	if err != nil {
		return c.failKind("transfer", dsar.KindOther, errors.New("bad request URL"))
	}
	sum, err := hex.DecodeString(sha)
	if err != nil {
		return c.failKind("transfer", dsar.KindOther, errors.New("bad checksum"))
	}
	req.Header.Set("Content-Type", "application/zip")
	req.Header.Set("User-Agent", "privguard")
	req.Header.Set("Idempotency-Key", requestID+":"+c.name+":transfer")
	req.Header.Set("X-Privguard-Request", requestID)
	req.Header.Set("Repr-Digest", "sha-256=:"+base64.StdEncoding.EncodeToString(sum)+":")
	req.Header.Set(SignatureHeader, Sign(c.secret, zip, c.now()))
	resp, err := c.client.Do(req)
	if err != nil {
		return c.failKind("transfer", dsar.KindOf(err), errors.New("no answer"))
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	switch resp.StatusCode {
	case http.StatusOK, http.StatusCreated, http.StatusNoContent:
		return nil
	}
	// 202 is no receipt: the package is destroyed once handed over, so the recipient
	// must have it when it answers.
	return c.failKind("transfer", statusKind(resp.StatusCode), fmt.Errorf("HTTP %d", resp.StatusCode))
}

func (c *Connector) fail(op string, err error) error {
	return c.failKind(op, dsar.KindBadAnswer, err)
}

func (c *Connector) failKind(op string, kind dsar.ErrorKind, err error) error {
	return &dsar.ConnectorError{Connector: c.name, Op: op, Kind: kind, Err: err}
}

// statusKind is the kind of a refusal by HTTP status.
func statusKind(code int) dsar.ErrorKind {
	switch code {
	case http.StatusUnauthorized, http.StatusForbidden:
		return dsar.KindAuthFailed // the store does not take our signature
	case http.StatusRequestTimeout, http.StatusGatewayTimeout:
		return dsar.KindTimeout
	}
	return dsar.KindBadAnswer
}

// call sends one signed call and reads the answer; 202 (or status "accepted") is
// dsar.ErrPending.
func (c *Connector) call(ctx context.Context, call Call) (Answer, error) {
	task := dsar.TaskInfo{Store: c.name, Op: call.Op}
	if t, ok := dsar.TaskFromContext(ctx); ok {
		task.Request, task.Store = t.Request, t.Store
	}
	call.ID, call.Request, call.Store = task.ID(), task.Request, task.Store
	call.Callback = "/v1/callbacks/" + url.PathEscape(task.Store)
	body, err := json.Marshal(call)
	if err != nil {
		return Answer{}, c.failKind(call.Op, dsar.KindOther, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return Answer{}, c.failKind(call.Op, dsar.KindOther, errors.New("bad request URL"))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "privguard")
	req.Header.Set("Idempotency-Key", call.ID)
	req.Header.Set(SignatureHeader, Sign(c.secret, body, c.now()))
	resp, err := c.client.Do(req)
	if err != nil {
		// The error names the URL, never the body; the engine logs only the op anyway.
		return Answer{}, c.failKind(call.Op, dsar.KindOf(err), errors.New("no answer"))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, c.max+1))
	switch {
	case err != nil:
		return Answer{}, c.failKind(call.Op, dsar.KindConnectionLost, errors.New("answer cut off"))
	case int64(len(b)) > c.max:
		return Answer{}, c.fail(call.Op, fmt.Errorf("answer larger than %d bytes", c.max))
	case resp.StatusCode == http.StatusAccepted:
		return Answer{}, dsar.ErrPending
	case resp.StatusCode != http.StatusOK:
		return Answer{}, c.failKind(call.Op, statusKind(resp.StatusCode), fmt.Errorf("HTTP %d", resp.StatusCode))
	}
	var a Answer
	if len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, &a); err != nil {
			return Answer{}, c.fail(call.Op, errors.New("answer is not JSON"))
		}
	}
	switch a.Status {
	case "", "done":
	case "accepted":
		return Answer{}, dsar.ErrPending
	default:
		return Answer{}, c.fail(call.Op, fmt.Errorf("answer status %q", a.Status))
	}
	if err := checkTables(a.Tables); err != nil {
		return Answer{}, c.fail(call.Op, err)
	}
	return a, nil
}

// checkTables refuses tables an access package could not hold truthfully.
func checkTables(ts []dsar.Table) error {
	for _, t := range ts {
		if t.Name == "" || len(t.Name) > 128 {
			return errors.New("answer has a table without a valid name")
		}
		for col, cat := range t.Categories {
			if col == "" || cat.Validate() != nil {
				return errors.New("answer has a column with an invalid data category")
			}
		}
	}
	return nil
}

// ParseCallback implements dsar.CallbackParser: it checks the signature and decodes body.
func (c *Connector) ParseCallback(signature string, body []byte) (dsar.Completion, error) {
	if err := Verify(c.secret, signature, body, c.now()); err != nil {
		return dsar.Completion{}, err
	}
	var cb Callback
	if err := json.Unmarshal(body, &cb); err != nil {
		return dsar.Completion{}, errors.New("callback is not JSON")
	}
	if cb.Request == "" || cb.ID == "" {
		return dsar.Completion{}, errors.New("callback names no request or task id")
	}
	if err := checkTables(cb.Tables); err != nil {
		return dsar.Completion{}, err
	}
	done := dsar.Completion{Task: cb.ID, Request: cb.Request, Items: cb.Items}
	switch cb.Status {
	case "done":
		if cb.Op == OpExport {
			done.Export = &dsar.Export{Store: c.name, Tables: cb.Tables}
		}
	case "failed":
		done.Failed = true
	default:
		return dsar.Completion{}, fmt.Errorf("callback status %q", cb.Status)
	}
	return done, nil
}

// Sign returns the Privguard-Signature header value for body at time t.
func Sign(secret, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Errors of [Verify].
var (
	ErrNoSignature  = errors.New("webhook: no signature")
	ErrStale        = errors.New("webhook: signature timestamp outside the tolerance")
	ErrBadSignature = errors.New("webhook: signature does not match")
)

// Verify checks a Privguard-Signature header value over body. Several v1 values are
// allowed (one per secret while a secret is rotated); one must match.
func Verify(secret []byte, header string, body []byte, now time.Time) error {
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	if ts == "" || len(sigs) == 0 {
		return ErrNoSignature
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrNoSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > Tolerance || d < -Tolerance {
		return ErrStale
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return ErrBadSignature
}
