package vault_test

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/vault"
)

// fakeTransit is a HashiCorp Vault transit engine for one key: encrypt and decrypt with
// AES-GCM, honouring associated_data as Vault does for non-derived keys.
type fakeTransit struct {
	gcm   cipher.AEAD
	calls atomic.Int64
}

func newFakeTransit() *fakeTransit {
	k := make([]byte, 32)
	rand.Read(k)
	b, _ := aes.NewCipher(k)
	g, _ := cipher.NewGCM(b)
	return &fakeTransit{gcm: g}
}

func (f *fakeTransit) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.calls.Add(1)
	if r.Header.Get("X-Vault-Token") != "test-token" {
		http.Error(w, `{"errors":["permission denied"]}`, http.StatusForbidden)
		return
	}
	var in map[string]string
	json.NewDecoder(r.Body).Decode(&in)
	ad, _ := base64.StdEncoding.DecodeString(in["associated_data"])
	switch {
	case strings.HasSuffix(r.URL.Path, "/transit/encrypt/kek"):
		pt, _ := base64.StdEncoding.DecodeString(in["plaintext"])
		nonce := make([]byte, 12)
		rand.Read(nonce)
		ct := f.gcm.Seal(nonce, nonce, pt, ad)
		json.NewEncoder(w).Encode(map[string]any{"data": map[string]string{"ciphertext": "vault:v1:" + base64.StdEncoding.EncodeToString(ct)}})
	case strings.HasSuffix(r.URL.Path, "/transit/decrypt/kek"):
		ct, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(in["ciphertext"], "vault:v1:"))
		if len(ct) < 12 {
			http.Error(w, `{"errors":["bad ciphertext"]}`, http.StatusBadRequest)
			return
		}
		pt, err := f.gcm.Open(nil, ct[:12], ct[12:], ad)
		if err != nil {
			http.Error(w, `{"errors":["cipher: message authentication failed"]}`, http.StatusBadRequest)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"data": map[string]string{"plaintext": base64.StdEncoding.EncodeToString(pt)}})
	default:
		http.NotFound(w, r)
	}
}

func TestKEKFromHashiCorpVault(t *testing.T) {
	transit := newFakeTransit()
	srv := httptest.NewTLSServer(transit)
	defer srv.Close()
	t.Setenv("VAULT_TOKEN", "test-token")
	t.Setenv("VAULT_SKIP_VERIFY", "true")
	uri := "hcvault://" + strings.TrimPrefix(srv.URL, "https://") + "/transit/keys/kek"
	kek, err := vault.KEKFromURI(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	db, err := boltstore.Open(filepath.Join(t.TempDir(), "v.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	v, _ := vault.New(vault.Config{Store: db.Vault(), KEK: kek, TombstoneKey: []byte("0123456789abcdef")})
	ct, err := v.Seal(ctx, "cust-1", []byte("13812345678"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 10 { // cached: no KMS round trip per value
		if _, err := v.Open(ctx, "cust-1", ct, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := transit.calls.Load(); n != 1 {
		t.Errorf("%d calls to the KMS for one subject; want 1 (wrap the keyset once, not every value)", n)
	}
	// A keyset wrapped for one subject does not unwrap as another's (the subject is the
	// associated data sent to Vault): a cold vault asked about a copied key fails.
	wrapped, _ := db.Vault().WrappedKey(ctx, "cust-1")
	db.Vault().PutWrappedKey(ctx, "cust-2", wrapped, false)
	cold, _ := vault.New(vault.Config{Store: db.Vault(), KEK: kek, TombstoneKey: []byte("0123456789abcdef")})
	if _, err := cold.Open(ctx, "cust-2", ct, nil); err == nil {
		t.Error("a keyset copied to another subject unwrapped")
	}
}

func TestKEKURIErrors(t *testing.T) {
	for _, uri := range []string{"", "file:///k", "hcvault://", "hcvault://host/notkeys", "local-kms://x"} {
		if _, err := vault.KEKFromURI(ctx, uri); err == nil {
			t.Errorf("KEKFromURI(%q) accepted", uri)
		}
	}
}
