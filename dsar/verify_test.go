package dsar_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/dsar"
)

func sign(t *testing.T, alg jose.SignatureAlgorithm, key any, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(claims)
	jws, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestTokenVerifier(t *testing.T) {
	// proves DSR-02: identity is verified by a token the company's app signs for its
	// logged-in user; forged, expired, long-lived and foreign tokens are refused.
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	secret := []byte("0123456789abcdef0123456789abcdef")
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	v, err := dsar.NewTokenVerifier(func() time.Time { return now }, secret, pub)
	if err != nil {
		t.Fatal(err)
	}
	ok := map[string]any{"sub": "cust-1", "iat": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix()}
	for _, tc := range []struct {
		name  string
		token string
		want  privguard.SubjectID
	}{
		{"hs256", sign(t, jose.HS256, secret, ok), "cust-1"},
		{"eddsa", sign(t, jose.EdDSA, priv, ok), "cust-1"},
		{"wrong secret", sign(t, jose.HS256, []byte("ffffffffffffffffffffffffffffffff"), ok), ""},
		{"foreign ed25519 key", sign(t, jose.EdDSA, otherPriv, ok), ""},
		{"expired", sign(t, jose.HS256, secret, map[string]any{"sub": "cust-1", "iat": now.Add(-3 * time.Hour).Unix(), "exp": now.Add(-2 * time.Hour).Unix()}), ""},
		{"no exp", sign(t, jose.HS256, secret, map[string]any{"sub": "cust-1", "iat": now.Unix()}), ""},
		{"lives a week", sign(t, jose.HS256, secret, map[string]any{"sub": "cust-1", "iat": now.Unix(), "exp": now.Add(7 * 24 * time.Hour).Unix()}), ""},
		{"issued in the future", sign(t, jose.HS256, secret, map[string]any{"sub": "cust-1", "iat": now.Add(time.Hour).Unix(), "exp": now.Add(2 * time.Hour).Unix()}), ""},
		{"empty subject", sign(t, jose.HS256, secret, map[string]any{"sub": "", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}), ""},
		{"garbage", "not.a.jws", ""},
		{"huge", string(make([]byte, 10000)), ""},
	} {
		got, err := v.Subject(tc.token)
		if tc.want != "" {
			if err != nil || got != tc.want {
				t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
			}
			continue
		}
		if !errors.Is(err, dsar.ErrBadToken) {
			t.Errorf("%s: %q, %v; want ErrBadToken", tc.name, got, err)
		}
	}
	if _, err := dsar.NewTokenVerifier(nil, []byte("short")); err == nil {
		t.Error("a 5-byte HMAC secret was accepted")
	}
}

// captureNotifier keeps the codes it was asked to send.
type captureNotifier struct{ codes map[string]string }

func (c *captureNotifier) SendCode(_ context.Context, _ privguard.SubjectID, id, code string) error {
	c.codes[id] = code
	return nil
}

func TestOneTimeCode(t *testing.T) {
	// proves DSR-02: a one-time code sent to the subject verifies the request; wrong codes
	// are counted and a sixth try is refused; a code expires after ten minutes.
	c := &clock{time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	e, closeDB := open(t, t.TempDir(), c, nil, nil)
	defer closeDB()
	n := &captureNotifier{codes: map[string]string{}}
	r, err := e.Submit(ctx, dsar.Request{Type: dsar.TypeAccess, Subject: "cust-1", Regime: privguard.RegimePIPL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.VerifyCode(ctx, r.ID, "000000"); !errors.Is(err, dsar.ErrNotNotified) {
		t.Fatalf("verify before any code: %v", err)
	}
	if err := e.SendCode(ctx, r.ID, n); err != nil {
		t.Fatal(err)
	}
	code := n.codes[r.ID]
	if !regexp.MustCompile(`^\d{6}$`).MatchString(code) {
		t.Fatalf("code %q is not six digits", code)
	}
	stored, _ := e.Get(ctx, r.ID)
	if b, _ := json.Marshal(stored); regexp.MustCompile(`\b` + code + `\b`).Match(b) {
		t.Fatalf("the code is stored in clear: %s", b)
	}
	wrong := fmt.Sprintf("%06d", (atoi(code)+1)%1_000_000)
	for i := 0; i < dsar.CodeAttempts; i++ {
		if _, err := e.VerifyCode(ctx, r.ID, wrong); !errors.Is(err, dsar.ErrBadCode) {
			t.Fatalf("wrong code %d: %v", i, err)
		}
	}
	if _, err := e.VerifyCode(ctx, r.ID, code); !errors.Is(err, dsar.ErrNoAttempts) {
		t.Fatalf("right code after %d wrong ones: %v; want ErrNoAttempts", dsar.CodeAttempts, err)
	}

	// A fresh code resets the code's attempts; it expires after CodeTTL.
	c.t = c.t.Add(dsar.CodeResendInterval)
	if err := e.SendCode(ctx, r.ID, n); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(dsar.CodeTTL + time.Second)
	if _, err := e.VerifyCode(ctx, r.ID, n.codes[r.ID]); !errors.Is(err, dsar.ErrBadCode) {
		t.Fatalf("expired code: %v", err)
	}
	if err := e.SendCode(ctx, r.ID, n); err != nil {
		t.Fatal(err)
	}
	got, err := e.VerifyCode(ctx, r.ID, n.codes[r.ID])
	if err != nil || got.State != dsar.StateVerified || got.Identity == nil || got.Identity.Method != "code" {
		t.Fatalf("right code: %+v, %v", got.State, err)
	}
	if _, err := e.VerifyCode(ctx, r.ID, n.codes[r.ID]); !errors.Is(err, privguard.ErrConflict) {
		t.Errorf("code reused on a verified request: %v", err)
	}
	if err := e.SendCode(ctx, r.ID, n); !errors.Is(err, privguard.ErrConflict) {
		t.Errorf("code sent for a verified request: %v", err)
	}
}

func TestCodeGuessBudgetIsPerRequest(t *testing.T) {
	// proves DSR-02: an access or deletion request is verified only at the configured
	// assurance (a six-digit code with a bounded number of guesses): asking for new codes
	// does not buy new guesses. After CodeGuessBudget wrong codes over all of the request's
	// codes, even the right code is refused, and the request stays unverified, with no
	// task started.
	c := &clock{time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	e, closeDB := open(t, t.TempDir(), c, nil, nil)
	defer closeDB()
	n := &captureNotifier{codes: map[string]string{}}
	r, err := e.Submit(ctx, dsar.Request{Type: dsar.TypeDeletion, Subject: "cust-1", Regime: privguard.RegimeGDPR})
	if err != nil {
		t.Fatal(err)
	}
	guesses := 0
	for sends := 0; sends < dsar.CodeSendsPerRequest; sends++ {
		c.t = c.t.Add(dsar.CodeResendInterval)
		if err := e.SendCode(ctx, r.ID, n); errors.Is(err, dsar.ErrCodeBudget) {
			break
		} else if err != nil {
			t.Fatalf("send %d: %v", sends+1, err)
		}
		wrong := fmt.Sprintf("%06d", (atoi(n.codes[r.ID])+1)%1_000_000)
		for i := 0; i < dsar.CodeAttempts; i++ {
			_, err := e.VerifyCode(ctx, r.ID, wrong)
			if errors.Is(err, dsar.ErrCodeBudget) {
				break
			}
			if !errors.Is(err, dsar.ErrBadCode) {
				t.Fatalf("guess %d: %v", guesses+1, err)
			}
			guesses++
		}
	}
	if guesses >= dsar.CodeGuessBudget {
		t.Fatalf("%d wrong codes were checked; the budget is %d", guesses, dsar.CodeGuessBudget)
	}
	c.t = c.t.Add(dsar.CodeResendInterval)
	if err := e.SendCode(ctx, r.ID, n); !errors.Is(err, dsar.ErrCodeBudget) {
		t.Errorf("a new code after the budget: %v; want ErrCodeBudget", err)
	}
	if _, err := e.VerifyCode(ctx, r.ID, n.codes[r.ID]); !errors.Is(err, dsar.ErrCodeBudget) {
		t.Errorf("the right code after the budget: %v; want ErrCodeBudget", err)
	}
	got, _ := e.Get(ctx, r.ID)
	if got.State != dsar.StateAwaitingVerify || len(got.Tasks) != 0 || got.Identity != nil {
		t.Errorf("after the budget: %s, %d tasks, identity %v; want unverified and nothing started", got.State, len(got.Tasks), got.Identity)
	}
	// An operator can still verify the requester.
	if v, err := e.Verify(ctx, r.ID, dsar.Identity{Method: "operator", Operator: "dpo"}); err != nil || v.State != dsar.StateVerified {
		t.Errorf("operator verification after the budget: %v, %v", v.State, err)
	}
}

func TestCodeResendLimits(t *testing.T) {
	// A request is sent at most CodeSendsPerRequest codes, CodeResendInterval apart; a
	// refused send stores nothing, so the request stays small however often it is asked.
	c := &clock{time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	e, closeDB := open(t, t.TempDir(), c, nil, nil)
	defer closeDB()
	n := &captureNotifier{codes: map[string]string{}}
	r, err := e.Submit(ctx, dsar.Request{Type: dsar.TypeAccess, Subject: "cust-1", Regime: privguard.RegimePIPL})
	if err != nil {
		t.Fatal(err)
	}
	sent := 0
	for i := 0; i < 200; i++ {
		err := e.SendCode(ctx, r.ID, n)
		var cle *dsar.CodeLimitError
		switch {
		case err == nil:
			sent++
		case errors.As(err, &cle) && errors.Is(err, dsar.ErrCodeLimit):
			if sent < dsar.CodeSendsPerRequest && (cle.RetryAfter <= 0 || cle.RetryAfter > dsar.CodeResendInterval) {
				t.Fatalf("cooldown answer %d: retry after %s", i, cle.RetryAfter)
			}
			if sent >= dsar.CodeSendsPerRequest && cle.RetryAfter != 0 {
				t.Fatalf("after the last code: retry after %s; want 0 (waiting does not help)", cle.RetryAfter)
			}
		default:
			t.Fatalf("send %d: %v", i, err)
		}
		c.t = c.t.Add(10 * time.Second)
	}
	if sent != dsar.CodeSendsPerRequest {
		t.Errorf("%d codes sent in 200 asks over 33 minutes; want %d", sent, dsar.CodeSendsPerRequest)
	}
	got, _ := e.Get(ctx, r.ID)
	if b, _ := json.Marshal(got); len(b) > 4096 || len(got.Events) > 1+dsar.CodeSendsPerRequest {
		t.Errorf("the stored request grew to %d bytes and %d events", len(b), len(got.Events))
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func TestUnverifiedRequestExpiresAndDuplicatesFold(t *testing.T) {
	// proves DSR-02: a request never verified is closed after seven days, not kept open.
	c := &clock{time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	dir := t.TempDir()
	e, closeDB := open(t, dir, c, nil, nil)
	a, _ := e.Submit(ctx, dsar.Request{Type: dsar.TypeAccess, Subject: "cust-1", Regime: privguard.RegimeGDPR})
	closeDB()
	// After a restart, the same subject asking again while the first is open gets the open
	// request back.
	e, closeDB = open(t, dir, c, nil, nil)
	defer func() { closeDB() }()
	again, err := e.Submit(ctx, dsar.Request{Type: dsar.TypeAccess, Subject: "cust-1", Regime: privguard.RegimeGDPR})
	if err != nil || again.ID != a.ID {
		t.Errorf("duplicate access request: %s, %v; want the open %s", again.ID, err, a.ID)
	}
	other, _ := e.Submit(ctx, dsar.Request{Type: dsar.TypeAccess, Subject: "cust-2", Regime: privguard.RegimeGDPR})
	if other.ID == a.ID {
		t.Error("another subject's request folded into cust-1's")
	}
	c.t = c.t.Add(dsar.UnverifiedTTL - time.Minute)
	e.Step(ctx)
	if r, _ := e.Get(ctx, a.ID); r.State != dsar.StateAwaitingVerify {
		t.Fatalf("before seven days: %s", r.State)
	}
	c.t = c.t.Add(2 * time.Minute)
	e.Step(ctx)
	r, _ := e.Get(ctx, a.ID)
	if r.State != dsar.StateCancelled || r.Reason != "identity_not_verified" {
		t.Fatalf("after seven days: %s %q; want cancelled identity_not_verified", r.State, r.Reason)
	}
	// Once closed, a new request is a new request.
	fresh, _ := e.Submit(ctx, dsar.Request{Type: dsar.TypeAccess, Subject: "cust-1", Regime: privguard.RegimeGDPR})
	if fresh.ID == a.ID {
		t.Error("a new request after the first closed reused its id")
	}
}

// unreachable is a Notifier that cannot reach the subject (no verified address).
type unreachable struct{ captureNotifier }

var errNoAddress = errors.New("no verified phone or email")

func (unreachable) Reach(context.Context, privguard.SubjectID) error { return errNoAddress }

// A notifier that cannot reach the subject stops the code before it is spent: the request
// keeps its codes for when an address is linked.
func TestSendCodeAsksTheReacher(t *testing.T) {
	c := &clock{time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	e, closeDB := open(t, t.TempDir(), c, nil, nil)
	defer closeDB()
	r, err := e.Submit(ctx, dsar.Request{Type: dsar.TypeAccess, Subject: "cust-1", Regime: privguard.RegimePIPL})
	if err != nil {
		t.Fatal(err)
	}
	n := &unreachable{captureNotifier{codes: map[string]string{}}}
	for range dsar.CodeSendsPerRequest + 1 {
		if err := e.SendCode(ctx, r.ID, n); !errors.Is(err, errNoAddress) {
			t.Fatalf("SendCode = %v; want the Reacher's error", err)
		}
	}
	if len(n.codes) != 0 {
		t.Errorf("codes sent: %v; want none", n.codes)
	}
	if err := e.SendCode(ctx, r.ID, &n.captureNotifier); err != nil {
		t.Errorf("SendCode once the subject can be reached: %v; want sent (no code was spent)", err)
	}
}
