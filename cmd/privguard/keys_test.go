package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/privguard/privguard/vault"
)

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func TestVaultThroughServeAndKeys(t *testing.T) {
	dir := t.TempDir()
	url, token, stop, _ := startServe(t, dir)
	if st, err := os.Stat(filepath.Join(dir, masterKeyFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("first serve did not create a 0600 master key: %v", err)
	}
	call := func(method, path, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, url+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	code, m := call("POST", "/v1/vault/seal", `{"subject":"cust-1","plaintext":"MTM4MTIzNDU2Nzg=","context":"user.contact.phone_number"}`)
	ct, _ := m["ciphertext"].(string)
	if code != http.StatusOK || ct == "" {
		t.Fatalf("seal = %d %v", code, m)
	}
	code, m = call("POST", "/v1/vault/open", `{"subject":"cust-1","ciphertext":"`+ct+`","context":"user.contact.phone_number"}`)
	if code != http.StatusOK || m["plaintext"] != "MTM4MTIzNDU2Nzg=" {
		t.Fatalf("open = %d %v", code, m)
	}
	if code, m = call("POST", "/v1/vault/open", `{"subject":"cust-1","ciphertext":"`+ct+`","context":"other"}`); code != 422 || m["detail"] != "tampered" {
		t.Errorf("open with another context = %d %v; want 422 tampered", code, m)
	}
	if code, m = call("POST", "/v1/vault/blind-index", `{"field":"email","value":"a@b.c"}`); code != 200 || !strings.HasPrefix(m["token"].(string), "bi1.") {
		t.Errorf("blind index = %d %v", code, m)
	}
	if code, _ = call("DELETE", "/v1/vault/subjects/cust-1", ""); code != http.StatusNoContent {
		t.Fatalf("shred = %d", code)
	}
	if code, m = call("POST", "/v1/vault/open", `{"subject":"cust-1","ciphertext":"`+ct+`"}`); code != http.StatusGone {
		t.Errorf("open after shred = %d %v; want 410", code, m)
	}
	call("POST", "/v1/vault/seal", `{"subject":"cust-2","plaintext":"eA=="}`)
	stop()

	run2 := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), append(args, "--data", dir), os.Getenv, &out, &errb)
		if len(args) > 2 { // keys shred SUBJECT: the flag after the argument is not parsed
			code = run(context.Background(), append([]string{args[0], args[1], "--data", dir}, args[2:]...), os.Getenv, &out, &errb)
		}
		return code, out.String() + errb.String()
	}
	if code, out := run2("keys", "status"); code != 0 || !strings.Contains(out, "subject keys: 1") {
		t.Errorf("keys status = %d %q", code, out)
	}
	if code, out := run2("keys", "rotate"); code != 0 || !strings.Contains(out, "rotated 1") {
		t.Errorf("keys rotate = %d %q", code, out)
	}
	if code, out := run2("keys", "rotate-kek"); code != 0 || !strings.Contains(out, "KEK rotated") {
		t.Errorf("keys rotate-kek = %d %q", code, out)
	}
	if code, out := run2("keys", "shred", "cust-2"); code != 0 {
		t.Errorf("keys shred = %d %q", code, out)
	}
	if code, out := run2("keys", "compact"); code != 0 || !strings.Contains(out, "compacted") {
		t.Errorf("keys compact = %d %q", code, out)
	}
	if code, out := run2("keys", "init"); code == 0 || !strings.Contains(out, "never overwritten") {
		t.Errorf("keys init over an existing key = %d %q; want refused", code, out)
	}
	// serve still starts with the rotated master key.
	_, _, stop, _ = startServe(t, dir)
	stop()
}

func TestServeRefusesMissingOrWrongMasterKey(t *testing.T) {
	// Missing or wrong master key: serve refuses to start with a clear message; nothing is written.
	dir := t.TempDir()
	_, _, stop, _ := startServe(t, dir)
	stop()
	db := filepath.Join(dir, dataFile)
	before := fileHash(t, db)
	os.Rename(filepath.Join(dir, masterKeyFile), filepath.Join(dir, "kept-elsewhere.json"))
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"serve", "--data", dir, "--admin-listen", "127.0.0.1:0"}, os.Getenv, &out, &errb); code != 2 ||
		!strings.Contains(errb.String(), "no master key") {
		t.Errorf("serve without the master key = %d %q", code, errb.String())
	}
	if _, err := os.Stat(filepath.Join(dir, masterKeyFile)); err == nil {
		t.Error("serve created a new master key over existing data")
	}
	if err := vault.InitLocalKEK(filepath.Join(dir, masterKeyFile)); err != nil { // a different key
		t.Fatal(err)
	}
	errb.Reset()
	if code := run(context.Background(), []string{"serve", "--data", dir, "--admin-listen", "127.0.0.1:0"}, os.Getenv, &out, &errb); code != 2 ||
		!strings.Contains(errb.String(), "not the one this data was encrypted with") {
		t.Errorf("serve with the wrong master key = %d %q", code, errb.String())
	}
	if fileHash(t, db) != before {
		t.Error("the data file changed although serve refused to start")
	}
}
