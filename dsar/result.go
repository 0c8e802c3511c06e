package dsar

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/privguard/privguard"
)

// ResultStore keeps the sealed parts and packages of access requests apart from the
// requests themselves (boltstore.DSARStore is the embedded default).
type ResultStore interface {
	PutResult(ctx context.Context, key string, body []byte) error
	// Result returns what is stored under key, or an error wrapping privguard.ErrNotFound.
	Result(ctx context.Context, key string) ([]byte, error)
	// DeleteResult deletes key; deleting a missing key is not an error.
	DeleteResult(ctx context.Context, key string) error
}

// Sealer encrypts results at rest (vault.Vault). Each request's results are sealed under a
// key of their own, which is shredded once the package is downloaded or expires: the
// copy cannot be read again, even from a backup of the store.
type Sealer interface {
	Seal(ctx context.Context, subject privguard.SubjectID, plaintext, ad []byte) ([]byte, error)
	Open(ctx context.Context, subject privguard.SubjectID, ciphertext, ad []byte) ([]byte, error)
	Shred(ctx context.Context, subject privguard.SubjectID) error
}

// LinkNotifier is the optional capability of a [Notifier] to send the subject the
// download token of a finished access request.
type LinkNotifier interface {
	SendLink(ctx context.Context, subject privguard.SubjectID, requestID, token string, expires time.Time) error
}

// DefaultResultTTL is how long a finished package can be downloaded.
const DefaultResultTTL = 7 * 24 * time.Hour

// Errors of [Engine.Download] and [Engine.IssueLink].
var (
	// ErrNoResult: the request has no package (not an access request, or not finished).
	ErrNoResult = fmt.Errorf("dsar: the request has no result yet: %w", privguard.ErrConflict)
	// ErrBadDownloadToken: the token is not the request's current download token.
	ErrBadDownloadToken = errors.New("dsar: wrong download token")
	// ErrResultGone: the package was downloaded already or expired, and is destroyed.
	ErrResultGone = errors.New("dsar: the result was downloaded already or has expired")
)

// Result describes an access request's package. The package itself is stored sealed
// (see [ResultStore]); Result is what the request shows.
type Result struct {
	SHA256       string    `json:"sha256"` // of the zip
	Bytes        int       `json:"bytes"`
	Files        int       `json:"files"`
	CreatedAt    time.Time `json:"created_at"`
	ExpiresAt    time.Time `json:"expires_at"`
	DownloadedAt time.Time `json:"downloaded_at,omitzero"`
	// DeliveringUntil is set while the package is being handed over (see Download).
	DeliveringUntil time.Time `json:"delivering_until,omitzero"`
	// Purged reports that the package and its key are destroyed (downloaded or expired).
	Purged bool `json:"purged,omitempty"`
	// Token is the current download token, hashed; hidden from API views.
	Token *Token `json:"token,omitempty"`
}

// Token is a download token's hash. Only the hash is stored.
type Token struct {
	Hash string `json:"hash"`
}

// gone reports whether the package can no longer be downloaded.
func (r *Result) gone(now time.Time) bool {
	return r.Purged || !r.DownloadedAt.IsZero() || now.After(r.ExpiresAt)
}

// resultKey is the vault subject whose key seals request id's results.
func resultKey(id string) privguard.SubjectID { return privguard.SubjectID("dsar-result:" + id) }

func partKey(id, store string) string { return id + "/part/" + store }
func packageKey(id string) string     { return id + "/package" }

func resultAD(key string) []byte { return []byte("privguard/dsar/result/v1\x00" + key) }

func tokenHash(requestID, token string) string {
	h := sha256.Sum256([]byte("privguard/dsar/download\x00" + requestID + "\x00" + token))
	return hex.EncodeToString(h[:])
}

// producesResult reports whether requests of type t end with a package.
func (t Type) producesResult() bool {
	return t == TypeAccess || t == TypePortability || t == TypeCategories
}

// sealPut seals body under request id's key and stores it under key.
func (e *Engine) sealPut(ctx context.Context, id, key string, body []byte) error {
	ct, err := e.cfg.Sealer.Seal(ctx, resultKey(id), body, resultAD(key))
	if err != nil {
		return fmt.Errorf("dsar: seal result: %w", err)
	}
	if err := e.cfg.Results.PutResult(ctx, key, ct); err != nil {
		return fmt.Errorf("dsar: store result: %w: %w", err, privguard.ErrUnavailable)
	}
	return nil
}

// getOpen reads and opens what sealPut stored.
func (e *Engine) getOpen(ctx context.Context, id, key string) ([]byte, error) {
	ct, err := e.cfg.Results.Result(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("dsar: read result: %w", err)
	}
	pt, err := e.cfg.Sealer.Open(ctx, resultKey(id), ct, resultAD(key))
	if err != nil {
		return nil, fmt.Errorf("dsar: open result: %w", err)
	}
	return pt, nil
}

// keepExport renders one store's export of an access request into its part of the
// package and stores it sealed until every store has answered.
func (e *Engine) keepExport(ctx context.Context, r *Request, x Export) error {
	b, err := renderPart(x, r.Type != TypeCategories, e.cfg.Now().UTC())
	if err != nil {
		return err
	}
	return e.sealPut(ctx, r.ID, partKey(r.ID, x.Store), b)
}

// buildResult assembles r's package from the stored parts once every task is done, stores
// it sealed, and returns its description with the first download token.
func (e *Engine) buildResult(ctx context.Context, r *Request, now time.Time) (*Result, string, error) {
	parts := make([][]byte, 0, len(r.Tasks))
	for _, t := range r.Tasks {
		if IsRecipientTask(t.Store) {
			continue
		}
		b, err := e.getOpen(ctx, r.ID, partKey(r.ID, t.Store))
		if err != nil {
			return nil, "", err
		}
		parts = append(parts, b)
	}
	var d Disclosure
	if e.cfg.Disclose != nil {
		var err error
		if d, err = e.cfg.Disclose(ctx, *r); err != nil {
			return nil, "", fmt.Errorf("dsar: disclosure: %w", err)
		}
	}
	if d.Complaint == "" {
		d.Complaint = e.recourse(r.Regime)
	}
	// The statutory rights text is always there; the controller's configured text adds to it.
	d.rightsAdded = d.Rights
	d.Rights = rightsText(r.Regime, d.Rights)
	d.retentionOf = e.cfg.RetentionOf
	zip, files, err := buildPackage(*r, parts, &d, now)
	if err != nil {
		return nil, "", err
	}
	if err := e.sealPut(ctx, r.ID, packageKey(r.ID), zip); err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(zip)
	token := newToken()
	return &Result{SHA256: hex.EncodeToString(sum[:]), Bytes: len(zip), Files: files, CreatedAt: now,
		ExpiresAt: now.Add(e.cfg.ResultTTL), Token: &Token{Hash: tokenHash(r.ID, token)}}, token, nil
}

func newToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// deliver hands over a package the batch finished, once the request that holds it is
// stored: the parts are dropped, and the package goes to the controller the subject named
// or its download link to the subject.
func (e *Engine) deliver(ctx context.Context, r Request, token string) {
	e.dropParts(ctx, r)
	if r.TransferTo != "" {
		e.transfer(ctx, r, token)
	} else {
		e.sendLink(ctx, r, token)
	}
}

// dropParts deletes r's stored parts once the request that holds the package is stored
// (before, a failed write would leave a request whose parts are gone). Failures are left
// to purge, which deletes them with the package.
func (e *Engine) dropParts(ctx context.Context, r Request) {
	for _, t := range r.Tasks {
		if err := e.cfg.Results.DeleteResult(ctx, partKey(r.ID, t.Store)); err != nil {
			e.cfg.Logger.Warn("dsar: result part not deleted", "request", r.ID, "err", describe("privguard", err))
			return
		}
	}
}

// sendLink sends a fresh token to the subject through the configured notifier, if it can
// send links. A failure is recorded on the request; an operator can issue a new link.
func (e *Engine) sendLink(ctx context.Context, r Request, token string) {
	ln, ok := e.cfg.Notifier.(LinkNotifier)
	if !ok || token == "" {
		return
	}
	if err := ln.SendLink(ctx, r.Subject, r.ID, token, r.Result.ExpiresAt); err != nil {
		e.cfg.Logger.Warn("dsar: download link not sent", "request", r.ID, "err", describe("notifier", err))
		e.note(ctx, r.ID, "download link not sent", "")
	}
}

// IssueLink mints a new download token for request id's package (the old one stops
// working) and returns it with its expiry. Use it when the subject lost the first one, or
// to hand the link over through the company's own portal.
func (e *Engine) IssueLink(ctx context.Context, id string) (string, time.Time, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, err := e.get(ctx, id)
	if err != nil {
		return "", time.Time{}, err
	}
	now := e.cfg.Now().UTC()
	switch {
	case r.Result == nil:
		return "", time.Time{}, ErrNoResult
	case r.Result.gone(now):
		return "", time.Time{}, ErrResultGone
	}
	token := newToken()
	r.Result.Token = &Token{Hash: tokenHash(r.ID, token)}
	r.event(now, "download link issued", "")
	if err := e.put(ctx, &r); err != nil {
		return "", time.Time{}, err
	}
	return token, r.Result.ExpiresAt, nil
}

// DeliveryWindow is how long a download in progress keeps others away. A delivery cut
// by a crash frees the package again after it: the copy is not lost.
const DeliveryWindow = 15 * time.Minute

// Download hands request id's package (a zip) to deliver, for the right token, once.
// Before deliver runs, the package is marked as being delivered, durably, so a second
// caller gets ErrResultGone meanwhile (and, if privguard dies mid-way, until
// DeliveryWindow has passed). If deliver fails (the client went away) the mark is taken
// back and the package stays available; if it succeeds the package is marked downloaded
// and destroyed (its key shredded). An unknown request, one without a package and a wrong
// token all get ErrBadDownloadToken, so that the route tells a caller without the token
// nothing.
func (e *Engine) Download(ctx context.Context, id, token string, deliver func(zip []byte, res Result) error) (Result, error) {
	e.mu.Lock()
	r, err := e.get(ctx, id)
	if errors.Is(err, privguard.ErrNotFound) {
		err = ErrBadDownloadToken
	}
	if err != nil {
		e.mu.Unlock()
		return Result{}, err
	}
	now := e.cfg.Now().UTC()
	res := r.Result
	switch {
	case res == nil || res.Token == nil || subtle.ConstantTimeCompare([]byte(res.Token.Hash), []byte(tokenHash(r.ID, token))) != 1:
		e.mu.Unlock()
		return Result{}, ErrBadDownloadToken
	case res.gone(now) || now.Before(res.DeliveringUntil):
		e.mu.Unlock()
		return Result{}, ErrResultGone
	}
	zip, err := e.getOpen(ctx, r.ID, packageKey(r.ID))
	if err == nil {
		if sum := sha256.Sum256(zip); hex.EncodeToString(sum[:]) != res.SHA256 {
			err = errors.New("dsar: stored package does not match its checksum")
		}
	}
	if err == nil {
		res.DeliveringUntil = now.Add(DeliveryWindow)
		err = e.put(ctx, &r)
	}
	e.mu.Unlock()
	if err != nil {
		return Result{}, err
	}

	derr := deliver(zip, *res)

	// What follows must happen even when the client went away (its context is done).
	ctx = context.WithoutCancel(ctx)
	e.mu.Lock()
	defer e.mu.Unlock()
	if cur, err := e.get(ctx, id); err == nil {
		r = cur
	} else {
		e.cfg.Logger.Error("dsar: request not read again after a download", "request", r.ID, "err", describe("privguard", err))
	}
	now = e.cfg.Now().UTC()
	r.Result.DeliveringUntil = time.Time{}
	if derr != nil {
		r.event(now, "download interrupted; the result stays available", "")
		if err := e.put(ctx, &r); err != nil {
			e.cfg.Logger.Error("dsar: interrupted download not taken back", "request", r.ID, "err", describe("privguard", err))
		}
		return Result{}, derr
	}
	r.Result.DownloadedAt = now
	r.event(now, "result downloaded", "")
	if err := e.put(ctx, &r); err != nil {
		// Delivered but not recorded: the package is destroyed now all the same.
		e.cfg.Logger.Error("dsar: download not recorded", "request", r.ID, "err", describe("privguard", err))
	}
	if err := e.purge(ctx, &r, now); err != nil {
		// Marked downloaded: nobody can fetch it again; the sweep destroys it later.
		e.cfg.Logger.Warn("dsar: downloaded package not yet destroyed", "request", r.ID, "err", describe("privguard", err))
	}
	return *r.Result, nil
}

// purge destroys r's package and parts and stores r so. e.mu must be held.
func (e *Engine) purge(ctx context.Context, r *Request, now time.Time) error {
	if err := e.destroy(ctx, r, now); err != nil {
		return err
	}
	return e.put(ctx, r)
}

// destroy destroys r's package and parts (shreds their key, deletes the ciphertexts) and
// records it on r, for the caller to store.
func (e *Engine) destroy(ctx context.Context, r *Request, now time.Time) error {
	if err := e.cfg.Sealer.Shred(ctx, resultKey(r.ID)); err != nil {
		return err
	}
	keys := []string{packageKey(r.ID)}
	for _, t := range r.Tasks {
		keys = append(keys, partKey(r.ID, t.Store))
	}
	for _, k := range keys {
		if err := e.cfg.Results.DeleteResult(ctx, k); err != nil {
			return err
		}
	}
	if r.Result == nil {
		r.Result = &Result{}
	}
	r.Result.Purged = true
	r.event(now, "result destroyed", "")
	return nil
}

// purgeDone destroys the packages that were downloaded or expired, and the parts of
// cancelled access requests. A failure is logged and retried on the next Step.
func (e *Engine) purgeDone(ctx context.Context) {
	if e.cfg.Sealer == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.loadIndex(ctx); err != nil {
		return // openRequests says so
	}
	now := e.cfg.Now().UTC()
	for id, expires := range e.results {
		if now.Before(expires) {
			continue
		}
		r, err := e.get(ctx, id)
		if err == nil && r.Result != nil && now.Before(r.Result.DeliveringUntil) {
			continue // being handed over: its download decides
		}
		if err == nil {
			err = e.purge(ctx, &r, now)
		}
		if err != nil {
			e.cfg.Logger.Error("dsar: destroying a result failed", "request", id, "err", describe("privguard", err))
		}
	}
}
