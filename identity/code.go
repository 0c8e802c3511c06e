package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/privguard/privguard"
)

// Verification codes of links: as a data-subject request's (dsar/verify.go), a six-digit
// code is stored hashed, lives CodeTTL and survives CodeAttempts wrong tries; a link is
// sent at most CodeSendsPerDay codes a day, CodeResendInterval apart, and after
// CodeGuessBudget wrong codes since its last verification no code verifies it (the app can
// still attest it, or remove and add it again).
const (
	CodeTTL            = 10 * time.Minute
	CodeAttempts       = 5
	CodeGuessBudget    = 10
	CodeResendInterval = time.Minute
	CodeSendsPerDay    = 5
	codeWindow         = 24 * time.Hour
)

// Errors of SendCode and VerifyCode.
var (
	ErrBadCode     = errors.New("identity: wrong or expired code")
	ErrNoAttempts  = errors.New("identity: too many wrong codes; ask for a new one")
	ErrCodeBudget  = errors.New("identity: too many wrong codes for this identifier; it can no longer be verified by code")
	ErrNotNotified = errors.New("identity: no code was sent for this identifier")
	// ErrCodeLimit is wrapped by the *CodeLimitError of a code not sent.
	ErrCodeLimit = errors.New("identity: code send limit reached")
)

// CodeLimitError is returned by [Registry.SendCode] when no code may be sent now.
type CodeLimitError struct {
	// RetryAfter is how long until a code may be sent.
	RetryAfter time.Duration
}

func (e *CodeLimitError) Error() string {
	return fmt.Sprintf("identity: no code may be sent to this identifier for %s", e.RetryAfter.Round(time.Second))
}

func (e *CodeLimitError) Unwrap() error { return ErrCodeLimit }

// challenge is a link's pending code, hashed, and the counts that bound guessing and sending.
type challenge struct {
	Hash      string      `json:"hash,omitempty"`
	ExpiresAt time.Time   `json:"expires_at,omitzero"`
	Attempts  int         `json:"attempts,omitempty"`
	Wrong     int         `json:"wrong,omitempty"`
	Sent      []time.Time `json:"sent,omitempty"` // within the last day, oldest first
}

func linkCodeHash(hash, code string) string {
	h := sha256.Sum256([]byte("privguard/identity/code\x00" + hash + "\x00" + code))
	return hex.EncodeToString(h[:])
}

// SendCode sends a fresh one-time code to subject's link hash (a phone or email) to
// verify it; earlier codes stop working. lang is the text's language ("" bilingual).
// Limits: a *CodeLimitError; after CodeGuessBudget wrong codes ErrCodeBudget; a type
// without a channel ErrNoChannel; a link already verified an error wrapping
// privguard.ErrConflict; not the subject's link privguard.ErrNotFound.
func (r *Registry) SendCode(ctx context.Context, subject privguard.SubjectID, hash, lang string) (time.Time, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, err := r.find(ctx, subject, "", hash)
	if err != nil {
		return time.Time{}, err
	}
	if rec.Type.Channel() == "" {
		return time.Time{}, ErrNoChannel
	}
	if rec.Verified {
		return time.Time{}, fmt.Errorf("identity: the identifier is verified already: %w", privguard.ErrConflict)
	}
	now := r.now().UTC()
	c := rec.Code
	if c == nil {
		c = &challenge{}
	}
	var sent []time.Time
	for _, t := range c.Sent {
		if now.Sub(t) < codeWindow {
			sent = append(sent, t)
		}
	}
	switch {
	case c.Wrong >= CodeGuessBudget:
		return time.Time{}, ErrCodeBudget
	case len(sent) >= CodeSendsPerDay:
		return time.Time{}, &CodeLimitError{RetryAfter: sent[0].Add(codeWindow).Sub(now)}
	case len(sent) > 0 && now.Sub(sent[len(sent)-1]) < CodeResendInterval:
		return time.Time{}, &CodeLimitError{RetryAfter: CodeResendInterval - now.Sub(sent[len(sent)-1])}
	}
	x, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return time.Time{}, err
	}
	code := fmt.Sprintf("%06d", x.Int64())
	expires := now.Add(CodeTTL)
	rec.Code = &challenge{Hash: linkCodeHash(rec.Hash, code), ExpiresAt: expires, Wrong: c.Wrong, Sent: append(sent, now)}
	if err := r.put(ctx, rec); err != nil {
		return time.Time{}, err
	}
	m := Message{Kind: KindCode, Code: code, Lang: lang, ExpiresAt: expires, Text: codeText(code, lang)}
	if err := r.Send(ctx, rec.Link, m); err != nil {
		return time.Time{}, err
	}
	return expires, nil
}

func codeText(code, lang string) string {
	en := "Your verification code is " + code + ". It expires in 10 minutes."
	zh := "您的验证码为 " + code + "，10 分钟内有效。"
	switch lang {
	case "en":
		return en
	case "zh", "zh-CN":
		return zh
	}
	return en + " / " + zh
}

// VerifyCode checks a code sent by SendCode and, if right, verifies the link with evidence
// "code". Errors: ErrNotNotified, ErrBadCode, ErrNoAttempts (the code had CodeAttempts
// wrong tries), ErrCodeBudget; a link already verified returns it.
func (r *Registry) VerifyCode(ctx context.Context, subject privguard.SubjectID, hash, code string) (Link, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, err := r.find(ctx, subject, "", hash)
	if err != nil {
		return Link{}, err
	}
	if rec.Verified {
		return rec.Link, nil
	}
	c, now := rec.Code, r.now().UTC()
	switch {
	case c == nil || c.Hash == "":
		return Link{}, ErrNotNotified
	case c.Wrong >= CodeGuessBudget:
		return Link{}, ErrCodeBudget
	case c.Attempts >= CodeAttempts:
		return Link{}, ErrNoAttempts
	}
	if now.After(c.ExpiresAt) || subtle.ConstantTimeCompare([]byte(c.Hash), []byte(linkCodeHash(rec.Hash, code))) != 1 {
		c.Attempts++
		c.Wrong++
		if err := r.put(ctx, rec); err != nil {
			return Link{}, err
		}
		if c.Wrong >= CodeGuessBudget {
			return Link{}, ErrCodeBudget
		}
		return Link{}, ErrBadCode
	}
	rec.verify(now, "code")
	return rec.Link, r.put(ctx, rec)
}
