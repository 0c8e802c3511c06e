// Package identitytest is the conformance suite of identity.Store implementations
// (boltstore's and pgstore's) and of a Registry on them.
package identitytest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/identity"
	"github.com/privguard/privguard/vault"
)

// Stores are what a backend gives the suite: its identity store and its vault store (which
// must also be a vault.SecretStore, for the blind-index key).
type Stores struct {
	Identity identity.Store
	Vault    vault.Store
}

// TestStore runs the conformance suite. open returns fresh, empty stores each call.
func TestStore(t *testing.T, open func(t *testing.T) Stores) {
	ctx := context.Background()
	t.Run("put_get_list_delete", func(t *testing.T) {
		s := open(t).Identity
		if _, _, err := s.Link(ctx, identity.Phone, "aa"); !errors.Is(err, privguard.ErrNotFound) {
			t.Errorf("Link of nothing: %v; want ErrNotFound", err)
		}
		if got, err := s.SubjectLinks(ctx, "cust-1"); err != nil || len(got) != 0 {
			t.Errorf("SubjectLinks of nothing = %q, %v; want none", got, err)
		}
		must(t, s.PutLink(ctx, "cust-1", identity.Phone, "bb", []byte("b1")))
		must(t, s.PutLink(ctx, "cust-1", identity.Email, "aa", []byte("a1")))
		must(t, s.PutLink(ctx, "cust-10", identity.Email, "cc", []byte("c10"))) // a subject whose id extends another's
		must(t, s.PutLink(ctx, "cust-1", identity.Phone, "bb", []byte("b2")))   // the subject's own link: replaced
		if sub, body, err := s.Link(ctx, identity.Phone, "bb"); err != nil || sub != "cust-1" || string(body) != "b2" {
			t.Errorf("Link = %s, %q, %v; want cust-1, b2", sub, body, err)
		}
		got, err := s.SubjectLinks(ctx, "cust-1")
		if err != nil || !slices.EqualFunc(got, [][]byte{[]byte("a1"), []byte("b2")}, func(a, b []byte) bool { return string(a) == string(b) }) {
			t.Errorf("SubjectLinks = %q, %v; want [a1 b2] (by type: email before phone)", got, err)
		}
		if err := s.PutLink(ctx, "cust-2", identity.Phone, "bb", []byte("x")); !errors.Is(err, privguard.ErrConflict) {
			t.Errorf("PutLink of another subject's link: %v; want ErrConflict", err)
		}
		if sub, body, _ := s.Link(ctx, identity.Phone, "bb"); sub != "cust-1" || string(body) != "b2" {
			t.Errorf("after the conflict Link = %s, %q; want it unchanged", sub, body)
		}
		if err := s.DeleteLink(ctx, "cust-2", identity.Phone, "bb"); !errors.Is(err, privguard.ErrNotFound) {
			t.Errorf("DeleteLink by another subject: %v; want ErrNotFound", err)
		}
		must(t, s.DeleteLink(ctx, "cust-1", identity.Phone, "bb"))
		if err := s.DeleteLink(ctx, "cust-1", identity.Phone, "bb"); !errors.Is(err, privguard.ErrNotFound) {
			t.Errorf("DeleteLink twice: %v; want ErrNotFound", err)
		}
		must(t, s.PutLink(ctx, "cust-2", identity.Phone, "bb", []byte("now mine")))
		if n, err := s.DeleteSubjectLinks(ctx, "cust-1"); err != nil || n != 1 {
			t.Errorf("DeleteSubjectLinks = %d, %v; want 1", n, err)
		}
		if n, err := s.DeleteSubjectLinks(ctx, "cust-1"); err != nil || n != 0 {
			t.Errorf("DeleteSubjectLinks again = %d, %v; want 0", n, err)
		}
		if got, _ := s.SubjectLinks(ctx, "cust-10"); len(got) != 1 {
			t.Errorf("cust-10's links after cust-1's erasure: %q; want its one", got)
		}
	})

	t.Run("racing_subjects_one_wins", func(t *testing.T) {
		s := open(t).Identity
		errs := make([]error, 8)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() {
				errs[i] = s.PutLink(ctx, privguard.SubjectID(fmt.Sprintf("cust-%d", i)), identity.Email, "dd", []byte("x"))
			})
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, privguard.ErrConflict):
				t.Errorf("PutLink: %v; want nil or ErrConflict", err)
			}
		}
		if won != 1 {
			t.Errorf("%d subjects got the link; want 1", won)
		}
	})

	t.Run("registry", func(t *testing.T) { testRegistry(t, open(t)) })
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// NewVault returns a vault on s with a fresh local master key.
func NewVault(t *testing.T, s vault.Store) *vault.Vault {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kek.json")
	must(t, vault.InitLocalKEK(path))
	kek, err := vault.LoadLocalKEK(path, nil)
	must(t, err)
	v, err := vault.New(vault.Config{Store: s, KEK: kek, TombstoneKey: []byte("0123456789abcdef0123456789abcdef")})
	must(t, err)
	t.Cleanup(func() { v.Close() })
	return v
}

// Capture is a Sender that keeps what it was asked to send.
type Capture struct {
	mu   sync.Mutex
	Sent []Sent
}

// Sent is one message a Capture was handed.
type Sent struct {
	Channel, Address string
	Message          identity.Message
}

// Send implements identity.Sender.
func (c *Capture) Send(_ context.Context, channel, address string, m identity.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Sent = append(c.Sent, Sent{channel, address, m})
	return nil
}

// Last returns the last message sent.
func (c *Capture) Last() Sent {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.Sent) == 0 {
		return Sent{}
	}
	return c.Sent[len(c.Sent)-1]
}

func testRegistry(t *testing.T, st Stores) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	v := NewVault(t, st.Vault)
	sent := &Capture{}
	r, err := identity.New(identity.Config{Store: st.Identity, Vault: v, Sender: sent, Now: clock})
	must(t, err)

	phone, err := r.Add(ctx, "cust-1", identity.Phone, "+86 138-0013-8000", "")
	must(t, err)
	if phone.Verified || phone.Masked != "+86 138****8000" || len(phone.Hash) != 32 || phone.Subject != "cust-1" {
		t.Errorf("Add phone = %+v; want unverified, masked +86 138****8000, a 32-hex hash", phone)
	}
	again, err := r.Add(ctx, "cust-1", identity.Phone, "13800138000", "")
	if err != nil || again != phone {
		t.Errorf("Add of the same number, written differently = %+v, %v; want the same link %+v", again, err, phone)
	}
	if _, err := r.Add(ctx, "cust-2", identity.Phone, "008613800138000", ""); !errors.Is(err, privguard.ErrConflict) {
		t.Errorf("Add of cust-1's number to cust-2: %v; want ErrConflict", err)
	}
	if _, err := r.Add(ctx, "cust-1", identity.Phone, "12", ""); !errors.Is(err, privguard.ErrInvalid) {
		t.Errorf("Add of a bad number: %v; want ErrInvalid", err)
	}
	email, err := r.Add(ctx, "cust-1", identity.Email, " Alice@Example.COM ", "portal-app")
	must(t, err)
	if !email.Verified || email.Evidence != "app:portal-app" || !email.VerifiedAt.Equal(now) || email.Masked != "a***@example.com" {
		t.Errorf("Add attested email = %+v; want verified by app:portal-app now, masked a***@example.com", email)
	}
	wx, err := r.Add(ctx, "cust-1", identity.WeChatOpenID, "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "")
	must(t, err)

	if got, err := r.Lookup(ctx, identity.Email, "alice@example.com"); err != nil || got != email {
		t.Errorf("Lookup email = %+v, %v; want %+v", got, err, email)
	}
	if _, err := r.Lookup(ctx, identity.Email, "bob@example.com"); !errors.Is(err, privguard.ErrNotFound) {
		t.Errorf("Lookup of an unknown email: %v; want ErrNotFound", err)
	}
	if s, err := r.Resolve(ctx, identity.Email, "ALICE@example.com"); err != nil || s != "cust-1" {
		t.Errorf("Resolve verified email = %s, %v; want cust-1", s, err)
	}
	_, errUnverified := r.Resolve(ctx, identity.Phone, "13800138000")
	_, errUnknown := r.Resolve(ctx, identity.Phone, "13900139000")
	if !errors.Is(errUnverified, identity.ErrNotVerified) || !errors.Is(errUnknown, identity.ErrNotVerified) || errUnverified.Error() != errUnknown.Error() {
		t.Errorf("Resolve unverified = %v, unknown = %v; want the same ErrNotVerified", errUnverified, errUnknown)
	}
	links, err := r.Links(ctx, "cust-1")
	if err != nil || len(links) != 3 {
		t.Fatalf("Links = %+v, %v; want 3", links, err)
	}

	// Codes go to a phone first, links to an email first; only verified links are used.
	if l, err := r.Reachable(ctx, "cust-1", identity.KindCode); err != nil || l.Hash != email.Hash {
		t.Errorf("Reachable(code) = %+v, %v; want the verified email (the phone is not verified)", l, err)
	}
	// A code verifies the phone.
	if _, err := r.VerifyCode(ctx, "cust-1", phone.Hash, "000000"); !errors.Is(err, identity.ErrNotNotified) {
		t.Errorf("VerifyCode before a code was sent: %v; want ErrNotNotified", err)
	}
	if _, err := r.SendCode(ctx, "cust-1", phone.Hash, ""); err != nil {
		t.Fatal(err)
	}
	got := sent.Last()
	if got.Channel != "sms" || got.Address != "+8613800138000" || got.Message.Kind != "code" || len(got.Message.Code) != 6 {
		t.Fatalf("code sent = %+v; want a six-digit code by sms to +8613800138000", got)
	}
	if _, err := r.SendCode(ctx, "cust-1", phone.Hash, ""); !errors.Is(err, identity.ErrCodeLimit) {
		t.Errorf("a second code at once: %v; want ErrCodeLimit", err)
	}
	if _, err := r.VerifyCode(ctx, "cust-1", phone.Hash, wrong(got.Message.Code)); !errors.Is(err, identity.ErrBadCode) {
		t.Errorf("VerifyCode wrong: %v; want ErrBadCode", err)
	}
	if _, err := r.VerifyCode(ctx, "cust-2", phone.Hash, got.Message.Code); !errors.Is(err, privguard.ErrNotFound) {
		t.Errorf("VerifyCode of cust-1's link as cust-2: %v; want ErrNotFound", err)
	}
	now = now.Add(time.Minute)
	vp, err := r.VerifyCode(ctx, "cust-1", phone.Hash, got.Message.Code)
	if err != nil || !vp.Verified || vp.Evidence != "code" {
		t.Errorf("VerifyCode right = %+v, %v; want verified by code", vp, err)
	}
	if l, err := r.Reachable(ctx, "cust-1", identity.KindCode); err != nil || l.Hash != phone.Hash {
		t.Errorf("Reachable(code) = %+v, %v; want the phone", l, err)
	}
	if l, err := r.Reachable(ctx, "cust-1", identity.KindDownload); err != nil || l.Hash != email.Hash {
		t.Errorf("Reachable(download) = %+v, %v; want the email", l, err)
	}
	n := identity.Notifier{Registry: r}
	must(t, n.SendLink(ctx, "cust-1", "req-1", "tok-1", now.Add(time.Hour)))
	if got := sent.Last(); got.Channel != "email" || got.Address != "alice@example.com" || got.Message.Token != "tok-1" || got.Message.Request != "req-1" {
		t.Errorf("link sent = %+v; want the token by email to alice@example.com", got)
	}
	if err := r.Send(ctx, wx, identity.Message{Kind: identity.KindCode}); !errors.Is(err, identity.ErrNoChannel) {
		t.Errorf("Send to a WeChat id: %v; want ErrNoChannel", err)
	}
	if err := n.SendCode(ctx, "cust-9", "req-9", "123456"); !errors.Is(err, identity.ErrNoAddress) {
		t.Errorf("SendCode to a subject without links: %v; want ErrNoAddress", err)
	}

	if err := r.Remove(ctx, "cust-2", identity.WeChatOpenID, wx.Hash); !errors.Is(err, privguard.ErrNotFound) {
		t.Errorf("Remove of cust-1's link as cust-2: %v; want ErrNotFound", err)
	}
	must(t, r.Remove(ctx, "cust-1", identity.WeChatOpenID, wx.Hash))
	if k, err := r.EraseSubject(ctx, "cust-1"); err != nil || k != 2 {
		t.Errorf("EraseSubject = %d, %v; want 2", k, err)
	}
	if links, err := r.Links(ctx, "cust-1"); err != nil || len(links) != 0 {
		t.Errorf("Links after EraseSubject = %+v, %v; want none", links, err)
	}
	// The value is free again: another subject may link it.
	if _, err := r.Add(ctx, "cust-2", identity.Phone, "13800138000", ""); err != nil {
		t.Errorf("Add of an erased subject's number to another: %v", err)
	}
}

func wrong(code string) string {
	if code == "000000" {
		return "000001"
	}
	return "000000"
}
