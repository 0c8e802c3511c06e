package dsar

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/privguard/privguard"
)

// Verification settings. A six-digit code is guessed with probability 10⁻⁶ a try, so what
// bounds an attacker is the number of tries: CodeGuessBudget wrong codes per request, over
// all its codes (about 1 in 100,000), however many codes are sent.
const (
	CodeTTL      = 10 * time.Minute
	CodeAttempts = 5 // wrong tries one code survives; then a new code is needed
	// CodeGuessBudget is how many wrong codes a request survives, over all its codes; then
	// it can no longer be verified by code (an operator may still verify it).
	CodeGuessBudget = 10
	// CodeResendInterval is the least time between two codes for one request.
	CodeResendInterval = time.Minute
	// CodeSendsPerRequest is how many codes one request may be sent.
	CodeSendsPerRequest = 5
	UnverifiedTTL       = 7 * 24 * time.Hour // an unverified request expires after it
	maxTokenLength      = 4096
	tokenMaxLife        = 24 * time.Hour
	tokenClockSkew      = time.Minute
)

// Verification errors.
var (
	ErrBadToken = errors.New("dsar: identity token does not verify")
	ErrBadCode  = errors.New("dsar: wrong or expired code")
	// ErrNoAttempts: the code had CodeAttempts wrong tries; a new code may help.
	ErrNoAttempts = errors.New("dsar: too many wrong codes; ask for a new one")
	// ErrCodeBudget: the request had CodeGuessBudget wrong codes; no code verifies it any
	// more, and none is sent.
	ErrCodeBudget  = errors.New("dsar: too many wrong codes for this request; it can no longer be verified by code")
	ErrNotNotified = errors.New("dsar: no code was sent for this request")
	// ErrCodeLimit is wrapped by the *CodeLimitError of a code not sent.
	ErrCodeLimit = errors.New("dsar: code send limit reached")
)

// CodeLimitError is returned by [Engine.SendCode] when no code may be sent now. It wraps
// ErrCodeLimit.
type CodeLimitError struct {
	// RetryAfter is how long until a code may be sent; zero when waiting does not help
	// (the request had CodeSendsPerRequest codes).
	RetryAfter time.Duration
}

func (e *CodeLimitError) Error() string {
	if e.RetryAfter == 0 {
		return fmt.Sprintf("dsar: the request had its %d codes", CodeSendsPerRequest)
	}
	return fmt.Sprintf("dsar: a code was sent less than %s ago; retry in %s", CodeResendInterval, e.RetryAfter.Round(time.Second))
}

func (e *CodeLimitError) Unwrap() error { return ErrCodeLimit }

// TokenVerifier checks identity tokens the company's app signs for its logged-in user: a
// JWS (HS256 with a shared secret, or EdDSA with the app's Ed25519 key) whose payload holds
// {"sub": subject id, "exp": unix seconds, "iat": unix seconds}.
type TokenVerifier struct {
	keys []any // []byte for HS256, ed25519.PublicKey for EdDSA
	now  func() time.Time
}

// NewTokenVerifier accepts HMAC secrets ([]byte, at least 32 bytes) and Ed25519 public keys.
func NewTokenVerifier(now func() time.Time, keys ...any) (*TokenVerifier, error) {
	for _, k := range keys {
		if b, ok := k.([]byte); ok && len(b) < 32 {
			return nil, errors.New("dsar: HMAC token secret shorter than 32 bytes")
		}
	}
	if now == nil {
		now = time.Now
	}
	return &TokenVerifier{keys: keys, now: now}, nil
}

// Subject verifies token and returns the subject it vouches for.
func (v *TokenVerifier) Subject(token string) (privguard.SubjectID, error) {
	if len(token) > maxTokenLength {
		return "", ErrBadToken
	}
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.HS256, jose.EdDSA})
	if err != nil {
		return "", ErrBadToken
	}
	for _, k := range v.keys {
		payload, err := jws.Verify(k)
		if err != nil {
			continue
		}
		var claims struct {
			Sub string `json:"sub"`
			Exp int64  `json:"exp"`
			Iat int64  `json:"iat"`
		}
		if json.Unmarshal(payload, &claims) != nil {
			return "", ErrBadToken
		}
		now := v.now()
		exp, iat := time.Unix(claims.Exp, 0), time.Unix(claims.Iat, 0)
		if claims.Exp == 0 || now.After(exp.Add(tokenClockSkew)) || exp.Sub(iat) > tokenMaxLife || iat.After(now.Add(tokenClockSkew)) {
			return "", fmt.Errorf("%w: expired or too long-lived", ErrBadToken)
		}
		s := privguard.SubjectID(claims.Sub)
		if s.Validate() != nil {
			return "", ErrBadToken
		}
		return s, nil
	}
	return "", ErrBadToken
}

// Notifier sends a one-time code to the subject (email, SMS).
type Notifier interface {
	SendCode(ctx context.Context, subject privguard.SubjectID, requestID, code string) error
}

// Reacher is the optional capability of a [Notifier] to say whether it can reach a
// subject at all (identity.Notifier: a verified phone or email is linked). SendCode asks it
// before it spends one of the request's codes, and returns its error.
type Reacher interface {
	Reach(ctx context.Context, subject privguard.SubjectID) error
}

// challenge is a request's one-time codes, stored hashed in the request: the pending code
// (Hash empty once verified) and the counts that bound guessing and sending. It holds at
// most CodeSendsPerRequest times, so the stored request stays small however often a code
// is asked for.
type challenge struct {
	Hash      string    `json:"hash,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
	Attempts  int       `json:"attempts"`        // wrong tries of the pending code
	Wrong     int       `json:"wrong,omitempty"` // wrong tries of every code of the request
	// Sent are the times codes were sent, oldest first.
	Sent []time.Time `json:"sent,omitempty"`
}

// wrong is the request's count of wrong codes (a challenge stored before Wrong existed
// counts its pending code's).
func (c *challenge) wrong() int { return max(c.Wrong, c.Attempts) }

func codeHash(requestID, code string) string {
	h := sha256.Sum256([]byte(requestID + "\x00" + code))
	return hex.EncodeToString(h[:])
}

// SendCode sends a fresh one-time code for request id through n. Earlier codes stop working.
// A request is sent at most CodeSendsPerRequest codes, CodeResendInterval apart: otherwise
// the error is a *CodeLimitError (wrapping ErrCodeLimit) saying when to retry. After
// CodeGuessBudget wrong codes it returns ErrCodeBudget; for a request not awaiting
// verification, an error wrapping privguard.ErrConflict.
func (e *Engine) SendCode(ctx context.Context, id string, n Notifier) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, err := e.awaitingVerification(ctx, id)
	if err != nil {
		return err
	}
	if r.Requester != nil {
		return ErrOperatorOnly
	}
	now := e.cfg.Now().UTC()
	c := r.Challenge
	if c == nil {
		c = &challenge{}
	}
	switch {
	case c.wrong() >= CodeGuessBudget:
		return ErrCodeBudget
	case len(c.Sent) >= CodeSendsPerRequest:
		return &CodeLimitError{}
	case len(c.Sent) > 0 && now.Sub(c.Sent[len(c.Sent)-1]) < CodeResendInterval:
		return &CodeLimitError{RetryAfter: CodeResendInterval - now.Sub(c.Sent[len(c.Sent)-1])}
	}
	if rn, ok := n.(Reacher); ok {
		if err := rn.Reach(ctx, r.Subject); err != nil {
			return err
		}
	}
	x, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return err
	}
	code := fmt.Sprintf("%06d", x.Int64())
	r.Challenge = &challenge{Hash: codeHash(r.ID, code), ExpiresAt: now.Add(CodeTTL), Wrong: c.wrong(),
		Sent: append(slices.Clone(c.Sent), now)}
	r.event(now, "code sent", "")
	if err := e.put(ctx, &r); err != nil {
		return err
	}
	return n.SendCode(ctx, r.Subject, r.ID, code)
}

// VerifyCode checks a one-time code and, if right, verifies the request. A wrong or
// expired code returns ErrBadCode; the CodeAttempts+1st try of one code ErrNoAttempts, and
// once the request had CodeGuessBudget wrong codes every try returns ErrCodeBudget, the
// right code too. Refused tries past those limits change nothing stored.
func (e *Engine) VerifyCode(ctx context.Context, id, code string) (Request, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, err := e.awaitingVerification(ctx, id)
	if err != nil {
		return Request{}, err
	}
	if r.Requester != nil {
		return Request{}, ErrOperatorOnly
	}
	c := r.Challenge
	now := e.cfg.Now().UTC()
	switch {
	case c == nil || c.Hash == "":
		return Request{}, ErrNotNotified
	case c.wrong() >= CodeGuessBudget:
		return Request{}, ErrCodeBudget
	case c.Attempts >= CodeAttempts:
		return Request{}, ErrNoAttempts
	}
	if now.After(c.ExpiresAt) || subtle.ConstantTimeCompare([]byte(c.Hash), []byte(codeHash(r.ID, code))) != 1 {
		c.Wrong = c.wrong() + 1
		c.Attempts++
		r.event(now, "wrong or expired code", "")
		if err := e.put(ctx, &r); err != nil {
			return Request{}, err
		}
		if c.Wrong >= CodeGuessBudget {
			return Request{}, ErrCodeBudget
		}
		return Request{}, ErrBadCode
	}
	c.Hash = "" // the counts stay: they bound what the request was sent
	e.verified(&r, &Identity{Method: "code"}, now)
	return r, e.put(ctx, &r)
}

// expireUnverified cancels requests left unverified for UnverifiedTTL.
func (e *Engine) expireUnverified(ctx context.Context, all []Request) error {
	now := e.cfg.Now().UTC()
	for _, r := range all {
		if r.State != StateAwaitingVerify || now.Sub(r.ReceivedAt) < UnverifiedTTL {
			continue
		}
		e.mu.Lock()
		cur, err := e.get(ctx, r.ID)
		if err == nil && expire(&cur, now) {
			err = e.put(ctx, &cur)
		}
		e.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}
