package outreach_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
	"github.com/privguard/privguard/identity"
	"github.com/privguard/privguard/identity/identitytest"
	"github.com/privguard/privguard/outreach"
	"github.com/privguard/privguard/vault"
)

// suppressionEnv is a real ledger and a real identity registry on bbolt, as serve wires
// them, and a suppression export over both.
type suppressionEnv struct {
	*env
	ids *identity.Registry
	v   *vault.Vault
	s   *outreach.Suppressions
}

func newSuppressionEnv(t *testing.T) *suppressionEnv {
	t.Helper()
	e := newEnv(t)
	db, err := boltstore.Open(filepath.Join(t.TempDir(), "privguard.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	v := identitytest.NewVault(t, db.Vault())
	ids, err := identity.New(identity.Config{Store: db.Identity(), Vault: v})
	if err != nil {
		t.Fatal(err)
	}
	return &suppressionEnv{env: e, ids: ids, v: v, s: &outreach.Suppressions{Ledger: e.l, Addresses: ids}}
}

func (e *suppressionEnv) link(subject privguard.SubjectID, typ identity.Type, value string) {
	e.t.Helper()
	if _, err := e.ids.Add(ctx, subject, typ, value, "crm"); err != nil {
		e.t.Fatal(err)
	}
}

func (e *suppressionEnv) export(q outreach.SuppressionQuery) outreach.SuppressionPage {
	e.t.Helper()
	p, err := e.s.Export(ctx, q)
	if err != nil {
		e.t.Fatalf("Export(%+v): %v", q, err)
	}
	return p
}

// sha is the SHA-256 of s, computed here apart from the package.
func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func phones(p outreach.SuppressionPage) []string {
	var out []string
	for _, h := range p.Hashes {
		out = append(out, h.Phone)
	}
	slices.Sort(out)
	return out
}

func sorted(s ...string) []string { slices.Sort(s); return s }

// The export lists the subjects who withdrew, refused or objected, as the SHA-256 of the
// normalised address (E.164 with '+', or its digits; the email trimmed and lower-cased),
// not those who consent or never answered; and an erased subject, whose links are gone,
// has no hash left.
//
// proves MKT-04: a withdrawal, refusal or objection reaches a vendor that takes no webhooks
// (an ad platform's exclusion list) as the hash of the subject's address.
func TestSuppressionsFull(t *testing.T) {
	e := newSuppressionEnv(t)
	e.link("granted", identity.Phone, "+8613800000001")
	e.record("granted", sms, consent.ActionGrant)
	e.link("withdrew", identity.Phone, "138 0000 0002") // a Chinese number without +86
	e.link("withdrew", identity.Email, "  Wang.Fang@Example.COM ")
	e.record("withdrew", sms, consent.ActionGrant)
	e.record("withdrew", sms, consent.ActionWithdraw)
	e.link("refused", identity.Phone, "+8613800000003")
	e.record("refused", sms, consent.ActionRefuse)
	e.link("objected", identity.Phone, "+8613800000004")
	e.record("objected", sms, consent.ActionGrant)
	e.record("objected", "", consent.ActionObject)
	e.link("silent", identity.Phone, "+8613800000005")
	e.record("silent", email, consent.ActionWithdraw) // another channel's choice
	e.link("all", identity.Phone, "+8613800000007")
	e.record("all", sms, consent.ActionGrant)
	e.record("all", "", consent.ActionWithdraw) // every purpose
	e.link("erased", identity.Phone, "+8613800000006")
	e.record("erased", sms, consent.ActionWithdraw)
	if _, _, err := e.l.Append(ctx, consent.Request{Subject: "erased", Action: consent.ActionErase, ActorType: consent.ActorSystem}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ids.EraseSubject(ctx, "erased"); err != nil {
		t.Fatal(err)
	}

	p := e.export(outreach.SuppressionQuery{Channel: outreach.ChannelSMS})
	want := sorted(sha("+8613800000002"), sha("+8613800000003"), sha("+8613800000004"), sha("+8613800000007"))
	if got := phones(p); !slices.Equal(got, want) {
		t.Errorf("sms hashes = %v; want %v", got, want)
	}
	if p.Channel != "sms" || p.More || p.Next == "" || p.Next == "0" {
		t.Errorf("page = %+v; want channel sms, a cursor at the head, no more", p)
	}
	p = e.export(outreach.SuppressionQuery{Channel: outreach.ChannelSMS, PhoneFormat: outreach.PhoneDigits})
	if got, want := phones(p), sorted(sha("8613800000002"), sha("8613800000003"), sha("8613800000004"), sha("8613800000007")); !slices.Equal(got, want) {
		t.Errorf("sms hashes (digits) = %v; want %v", got, want)
	}
	p = e.export(outreach.SuppressionQuery{Channel: outreach.ChannelEmail})
	// "withdrew" withdrew SMS only: on email it is listed only once it objects.
	if len(p.Hashes) != 0 {
		t.Errorf("email hashes = %+v; want none", p.Hashes)
	}
	e.record("withdrew", "", consent.ActionObject)
	p = e.export(outreach.SuppressionQuery{Channel: outreach.ChannelEmail})
	if want := []outreach.SuppressionHash{{Email: sha("wang.fang@example.com")}}; !slices.Equal(p.Hashes, want) {
		t.Errorf("email hashes = %+v; want %+v", p.Hashes, want)
	}
}

// An incremental export lists only the subjects with a ledger record after the cursor;
// a limit splits the export into pages whose cursors lose no subject.
func TestSuppressionsIncremental(t *testing.T) {
	e := newSuppressionEnv(t)
	for i, s := range []privguard.SubjectID{"s1", "s2", "s3"} {
		e.link(s, identity.Phone, "+861380000001"+string(rune('1'+i)))
		e.record(s, sms, consent.ActionRefuse)
	}
	first := e.export(outreach.SuppressionQuery{Channel: outreach.ChannelSMS})
	if len(first.Hashes) != 3 {
		t.Fatalf("full export = %+v; want 3 hashes", first.Hashes)
	}
	if p := e.export(outreach.SuppressionQuery{Channel: outreach.ChannelSMS, Since: first.Next}); len(p.Hashes) != 0 || p.Next != first.Next {
		t.Errorf("nothing new: page = %+v; want no hash, the same cursor", p)
	}
	e.link("s4", identity.Phone, "+8613800000020")
	e.record("s4", sms, consent.ActionGrant)
	e.record("s4", sms, consent.ActionWithdraw)
	e.record("s2", "", consent.ActionObject)
	p := e.export(outreach.SuppressionQuery{Channel: outreach.ChannelSMS, Since: first.Next})
	if got, want := phones(p), sorted(sha("+8613800000020"), sha("+8613800000012")); !slices.Equal(got, want) {
		t.Errorf("since %s: hashes = %v; want s4's and s2's %v", first.Next, got, want)
	}

	// Pages of one subject each walk every subject once, in order.
	var got []string
	since := ""
	for range 10 {
		p := e.export(outreach.SuppressionQuery{Channel: outreach.ChannelSMS, Since: since, Limit: 1})
		got = append(got, phones(p)...)
		since = p.Next
		if !p.More {
			break
		}
	}
	want := []string{sha("+8613800000011"), sha("+8613800000012"), sha("+8613800000013"), sha("+8613800000020"), sha("+8613800000012")}
	if !slices.Equal(got, want) {
		t.Errorf("paged hashes = %v; want %v", got, want)
	}
}

// A query the export cannot answer is an ErrSuppressionQuery (wrapping ErrInvalid).
func TestSuppressionsBadQuery(t *testing.T) {
	e := newSuppressionEnv(t)
	for _, q := range []outreach.SuppressionQuery{
		{Channel: "push"}, {Channel: ""}, {Channel: "sms", Since: "-1"}, {Channel: "sms", Since: "x"},
		{Channel: "sms", Limit: -1}, {Channel: "sms", Limit: outreach.MaxSuppressionLimit + 1}, {Channel: "sms", PhoneFormat: "e.164"},
	} {
		if _, err := e.s.Export(ctx, q); !errors.Is(err, outreach.ErrSuppressionQuery) || !errors.Is(err, privguard.ErrInvalid) {
			t.Errorf("Export(%+v) = %v; want ErrSuppressionQuery", q, err)
		}
	}
}

// quiet is a view of a shared store that never says another process committed: its
// ledger follows only on its (hour-long) poll, so it lags as a replica may.
type quiet struct{ *consenttest.View }

func (quiet) Changes() <-chan struct{} { return nil }

// On a shared store, a replica's page stops at the records it has applied: a record
// another replica wrote and this one has not followed is not passed by the cursor, so a
// page from any replica since that cursor lists it.
func TestSuppressionsLaggingReplica(t *testing.T) {
	shared := consenttest.NewShared()
	open := func(store consent.Store) *consent.Ledger {
		t.Helper()
		l, err := consent.Open(ctx, consent.Config{Store: store, FollowInterval: time.Hour, MaxStaleness: 3 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	a := open(quiet{shared.View()})
	if _, _, err := a.RegisterNotice(ctx, consenttest.MarketingNotice(1, "zh-CN")); err != nil {
		t.Fatal(err)
	}
	e := newSuppressionEnv(t)
	e.l = a
	e.link("s1", identity.Phone, "+8613800000031")
	e.record("s1", sms, consent.ActionRefuse)
	b := open(quiet{shared.View()}) // replays s1's refusal at open, then lags
	e.link("s2", identity.Phone, "+8613800000032")
	e.record("s2", sms, consent.ActionRefuse) // on a, not yet on b

	pb, err := (&outreach.Suppressions{Ledger: b, Addresses: e.ids}).Export(ctx, outreach.SuppressionQuery{Channel: outreach.ChannelSMS})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := phones(pb), []string{sha("+8613800000031")}; !slices.Equal(got, want) {
		t.Errorf("lagging replica: hashes = %v; want s1's only", got)
	}
	pa, err := (&outreach.Suppressions{Ledger: a, Addresses: e.ids}).Export(ctx, outreach.SuppressionQuery{Channel: outreach.ChannelSMS, Since: pb.Next})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := phones(pa), []string{sha("+8613800000032")}; !slices.Equal(got, want) {
		t.Errorf("since the lagging replica's cursor %s: hashes = %v; want s2's %v", pb.Next, got, want)
	}
}
