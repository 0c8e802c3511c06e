package identity_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/identity"
	"github.com/privguard/privguard/identity/identitytest"
)

var ctx = context.Background()

func TestNormalise(t *testing.T) {
	tests := []struct {
		name  string
		typ   identity.Type
		value string
		want  string // "" : refused
		field string // the refused field
	}{
		{name: "cn_international_dashes", typ: identity.Phone, value: "+86 138-0013-8000", want: "+8613800138000"},
		{name: "cn_national", typ: identity.Phone, value: "13800138000", want: "+8613800138000"},
		{name: "cn_00_prefix", typ: identity.Phone, value: "008613800138000", want: "+8613800138000"},
		{name: "cn_spaces_around", typ: identity.Phone, value: "  138 0013 8000 ", want: "+8613800138000"},
		{name: "us_punctuated", typ: identity.Phone, value: "+1 (650) 253-0000", want: "+16502530000"},
		{name: "phone_too_short", typ: identity.Phone, value: "12345", field: "value"},
		{name: "phone_letters", typ: identity.Phone, value: "call me", field: "value"},
		{name: "phone_empty", typ: identity.Phone, value: "", field: "value"},
		{name: "phone_invalid_cn", typ: identity.Phone, value: "10000000000", field: "value"},
		{name: "phone_huge", typ: identity.Phone, value: strings.Repeat("1", 500), field: "value"},
		{name: "email_upper", typ: identity.Email, value: "Alice.Smith@Example.COM", want: "alice.smith@example.com"},
		{name: "email_spaces_around", typ: identity.Email, value: "  bob@example.cn\t", want: "bob@example.cn"},
		{name: "email_plus", typ: identity.Email, value: "bob+news@example.cn", want: "bob+news@example.cn"},
		{name: "email_space_inside", typ: identity.Email, value: "bob smith@example.cn", field: "value"},
		{name: "email_no_at", typ: identity.Email, value: "example.com", field: "value"},
		{name: "email_no_domain_dot", typ: identity.Email, value: "bob@localhost", field: "value"},
		{name: "email_display_name", typ: identity.Email, value: "Bob <bob@example.com>", field: "value"},
		{name: "email_two_ats", typ: identity.Email, value: "a@b@example.com", field: "value"},
		{name: "email_empty", typ: identity.Email, value: "", field: "value"},
		{name: "wechat_openid", typ: identity.WeChatOpenID, value: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", want: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
		{name: "wechat_unionid", typ: identity.WeChatUnionID, value: "o6_bmasdasdsad6_2sgVt7hMZOPfL", want: "o6_bmasdasdsad6_2sgVt7hMZOPfL"},
		{name: "wechat_short", typ: identity.WeChatOpenID, value: "abc", field: "value"},
		{name: "wechat_bad_char", typ: identity.WeChatUnionID, value: "oUpF8uMu AJO", field: "value"},
		{name: "device", typ: identity.DeviceID, value: "IDFA:6D92078A-8246-4BA4-AE5B-76104861E7DC", want: "IDFA:6D92078A-8246-4BA4-AE5B-76104861E7DC"},
		{name: "device_control_char", typ: identity.DeviceID, value: "dev\x00ice", field: "value"},
		{name: "device_too_long", typ: identity.DeviceID, value: strings.Repeat("d", 129), field: "value"},
		{name: "device_bad_utf8", typ: identity.DeviceID, value: "dev\xffice", field: "value"},
		{name: "unknown_type", typ: "qq", value: "12345678", field: "type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := identity.Normalise(tt.typ, tt.value)
			if tt.want != "" {
				if err != nil || got != tt.want {
					t.Errorf("Normalise(%s, %q) = %q, %v; want %q", tt.typ, tt.value, got, err, tt.want)
				}
				return
			}
			var e *identity.Error
			if !errors.As(err, &e) || !errors.Is(err, privguard.ErrInvalid) || e.Field != tt.field {
				t.Fatalf("Normalise(%s, %q) = %q, %v; want an *Error on %q wrapping ErrInvalid", tt.typ, tt.value, got, err, tt.field)
			}
			if tt.value != "" && strings.Contains(err.Error(), tt.value) {
				t.Errorf("the error %q holds the value", err)
			}
		})
	}
}

func TestMask(t *testing.T) {
	tests := []struct {
		typ        identity.Type
		norm, want string
	}{
		{identity.Phone, "+8613800135678", "+86 138****5678"},
		{identity.Phone, "+16502530000", "+1 650***0000"},
		{identity.Email, "alice@example.com", "a***@example.com"},
		{identity.WeChatOpenID, "oUpF8uMuAJO_M2pxb1Q9zNjWabcd", "wx…abcd"},
		{identity.DeviceID, "device-1234", "…1234"},
		{identity.DeviceID, "ab", "…b"},
	}
	for _, tt := range tests {
		if got := identity.Mask(tt.typ, tt.norm); got != tt.want {
			t.Errorf("Mask(%s, %q) = %q; want %q", tt.typ, tt.norm, got, tt.want)
		}
	}
}

func TestChannel(t *testing.T) {
	for typ, want := range map[identity.Type]string{identity.Phone: "sms", identity.Email: "email", identity.WeChatOpenID: "",
		identity.WeChatUnionID: "", identity.DeviceID: ""} {
		if got := typ.Channel(); got != want {
			t.Errorf("%s.Channel() = %q; want %q", typ, got, want)
		}
	}
}

// The outbox line names the channel and the address, and carries the code as its own field.
func TestOutboxLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.jsonl")
	o := &identity.Outbox{Path: path}
	if err := o.Send(ctx, "sms", "+8613800138000", identity.Message{Kind: "code", Code: "123456", Request: "req-1", Text: "code 123456"}); err != nil {
		t.Fatal(err)
	}
	exp := time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC)
	if err := o.Send(ctx, "email", "a@example.com", identity.Message{Kind: "download", Token: "tok", Request: "req-2", ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 {
		t.Fatalf("outbox = %s; want 2 lines", b)
	}
	if want := `{"channel":"sms","to":"+8613800138000","kind":"code","code":"123456","text":"code 123456","request":"req-1"}`; lines[0] != want {
		t.Errorf("line 1 = %s; want %s", lines[0], want)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"channel": "email", "to": "a@example.com", "kind": "download", "token": "tok", "request": "req-2", "expires_at": "2026-03-09T00:00:00Z"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("line 2 (-want +got):\n%s", diff)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("outbox mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
}

// The data file never holds an identifier in clear: neither as given nor normalised.
func TestNoClearValueInTheDataFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "privguard.db")
	db, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	v := identitytest.NewVault(t, db.Vault())
	r, err := identity.New(identity.Config{Store: db.Identity(), Vault: v, Sender: &identitytest.Capture{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Add(ctx, "cust-1", identity.Phone, "+86 139-1234-5678", "app"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Add(ctx, "cust-1", identity.Email, "Zhang.Wei@Example.com", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Add(ctx, "cust-1", identity.WeChatUnionID, "o6_bmSecretUnionId2sgVt7hMZOPfL", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := r.SendCode(ctx, "cust-1", mustHash(t, r, identity.Email, "zhang.wei@example.com"), ""); err != nil {
		t.Fatal(err)
	}
	v.Close()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, clear := range []string{"+8613912345678", "13912345678", "1234-5678", "zhang.wei@example.com", "Zhang.Wei", "zhang.wei", "o6_bmSecretUnionId2sgVt7hMZOPfL", "SecretUnionId"} {
		if bytes.Contains(bytes.ToLower(b), bytes.ToLower([]byte(clear))) {
			t.Errorf("the data file holds %q in clear", clear)
		}
	}
}

func mustHash(t *testing.T, r *identity.Registry, typ identity.Type, value string) string {
	t.Helper()
	l, err := r.Lookup(ctx, typ, value)
	if err != nil {
		t.Fatal(err)
	}
	return l.Hash
}
