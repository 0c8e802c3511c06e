package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// exportLedger starts serve on a fresh data directory, records a notice and grants for
// s-a..s-e (s-b withdraws), saves the API's by-purpose export and the receipt keys, and
// stops serve. It returns the directory and the files saved.
func exportLedger(t *testing.T) (dir, apiExport, keys string) {
	t.Helper()
	dir = t.TempDir()
	url, token, stop, _ := startServe(t, dir)
	post(t, url, token, "/v1/notices", `{"id":"n","version":1,"language":"en","text":"t","purposes":["marketing"],
		"controller":{"name":"E","contact":"p@example.com"},"retention":"1y","rights_channels":["x"]}`)
	for i := range 5 {
		if c := post(t, url, token, "/v1/consents", `{"subject":"s-`+string(rune('a'+i))+`","purpose":"marketing.profiling","action":"grant",
			"regime":"pipl","notice":{"id":"n","version":1},"channel":"web","method":"explicit"}`); c != 201 {
			t.Fatalf("grant = %d", c)
		}
	}
	post(t, url, token, "/v1/consents", `{"subject":"s-b","purpose":"marketing.profiling","action":"withdraw"}`)
	today := time.Now().UTC().Format(time.DateOnly)
	tomorrow := time.Now().UTC().Add(24 * time.Hour).Format(time.DateOnly)
	save := func(path, name string, auth bool) string {
		req, _ := http.NewRequest("GET", url+path, nil)
		if auth {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s = %d %s", path, resp.StatusCode, b)
		}
		out := filepath.Join(t.TempDir(), name)
		os.WriteFile(out, b, 0o600)
		return out
	}
	apiExport = save("/v1/consents/export?purpose=marketing&from="+today+"&to="+tomorrow, "api.zip", true)
	keys = save("/v1/receipts/keys", "keys.json", false)
	if c := stop(); c != 0 {
		t.Fatalf("serve exited %d", c)
	}
	return dir, apiExport, keys
}

func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(context.Background(), args, os.Getenv, &out, &errb)
	return code, out.String(), errb.String()
}

func TestConsentExportAndVerify(t *testing.T) {
	dir, apiExport, keys := exportLedger(t)
	out := t.TempDir()
	today := time.Now().UTC().Format(time.DateOnly)
	tomorrow := time.Now().UTC().Add(24 * time.Hour).Format(time.DateOnly)
	byPurpose, bySubject := filepath.Join(out, "purpose.zip"), filepath.Join(out, "subject.zip")

	code, stdout, stderr := runCLI("consent", "export", "--data", dir, "--purpose", "marketing", "--from", today, "--to", tomorrow, "--out", byPurpose)
	if code != 0 || !strings.Contains(stdout, "6 records (5 grants, 1 withdrawals") {
		t.Fatalf("consent export --purpose = %d %q %q", code, stdout, stderr)
	}
	if st, err := os.Stat(byPurpose); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("the export's mode = %v (%v); want 0600", st, err)
	}
	if code, stdout, stderr = runCLI("consent", "export", "--data", dir, "--subject", "s-b", "--out", bySubject); code != 0 {
		t.Fatalf("consent export --subject = %d %q %q", code, stdout, stderr)
	}
	for _, f := range []string{byPurpose, bySubject, apiExport} {
		code, stdout, stderr := runCLI("verify", "--key", keys, f)
		if code != 0 || !strings.HasPrefix(stdout, "OK: consent evidence export") || !strings.Contains(stdout, "--anchor 6:") {
			t.Errorf("verify %s = %d %q %q; want OK with the head", filepath.Base(f), code, stdout, stderr)
		}
	}
	// The anchor verify prints checks against the ledger.
	_, stdout, _ = runCLI("verify", byPurpose)
	anchor := stdout[strings.Index(stdout, "--anchor ")+len("--anchor "):]
	anchor = strings.TrimSuffix(strings.TrimSpace(anchor), ")")
	if code, stdout, stderr := runCLI("consent", "verify", "--data", dir, "--anchor", anchor); code != 0 {
		t.Errorf("consent verify --anchor %s = %d %q %q", anchor, code, stdout, stderr)
	}

	// A key that is not the ledger's.
	other := filepath.Join(out, "other.json")
	os.WriteFile(other, []byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`), 0o600)
	if code, stdout, _ := runCLI("verify", "--key", other, byPurpose); code != 1 || !strings.Contains(stdout, "not in") {
		t.Errorf("verify --key other = %d %q; want exit 1", code, stdout)
	}
	// A member altered: the zip's own check or the manifest names it.
	raw, _ := os.ReadFile(byPurpose)
	i := bytes.Index(raw, []byte("counts.json"))
	bad := bytes.Clone(raw)
	bad[i+len("counts.json")+40] ^= 0xff // inside the member's compressed data
	tampered := filepath.Join(out, "tampered.zip")
	os.WriteFile(tampered, bad, 0o600)
	if code, stdout, _ := runCLI("verify", tampered); code != 1 || !strings.HasPrefix(stdout, "FAIL: ") {
		t.Errorf("verify of an altered file = %d %q; want exit 1 and FAIL", code, stdout)
	}
	// Not an export: the data file, a text file.
	notes := filepath.Join(out, "notes.txt")
	os.WriteFile(notes, []byte("hello"), 0o600)
	for _, f := range []string{filepath.Join(dir, dataFile), notes} {
		if code, _, stderr := runCLI("verify", f); code != 2 || !strings.Contains(stderr, "not an evidence bundle") || !strings.Contains(stderr, "consent verify") {
			t.Errorf("verify %s = %d %q; want exit 2 saying it is not an evidence file", f, code, stderr)
		}
	}
	// Usage.
	for _, args := range [][]string{
		{"consent", "export", "--data", dir, "--subject", "s-a"},
		{"consent", "export", "--data", dir, "--purpose", "marketing", "--out", filepath.Join(out, "x.zip")},
		{"consent", "export", "--data", dir, "--subject", "s-a", "--purpose", "marketing", "--out", filepath.Join(out, "x.zip")},
		{"consent", "export", "--data", dir, "--purpose", "marketing.carrier_pigeon", "--from", today, "--to", tomorrow, "--out", filepath.Join(out, "x.zip")},
		{"verify"},
		{"verify", "a.zip", "b.zip"},
	} {
		if code, _, stderr := runCLI(args...); code != 2 || stderr == "" {
			t.Errorf("%v = %d %q; want a usage error", args, code, stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "x.zip")); err == nil {
		t.Errorf("a refused export left a file")
	}
}

func TestConsentExportRefusesBrokenChain(t *testing.T) {
	dir, _, _ := exportLedger(t)
	db, err := bolt.Open(filepath.Join(dir, dataFile), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	// proves CON-05: one byte of record 3's stored row changed in place (its subject): the
	// export names the chain break at record 3, exits 1 and writes no file.
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("consent.records"))
		k := binary.BigEndian.AppendUint64(nil, 3)
		v := bytes.Clone(b.Get(k))
		i := bytes.Index(v[32:], []byte("s-c"))
		v[32+i+2] = 'z'
		return b.Put(k, v)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "e.zip")
	code, stdout, stderr := runCLI("consent", "export", "--data", dir, "--subject", "s-a", "--out", out)
	if code != 1 || !strings.Contains(stdout, "chain is broken at record 3 ") {
		t.Errorf("export of a ledger with record 3 altered = %d %q %q; want exit 1 naming record 3", code, stdout, stderr)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), "*")); len(left) != 0 {
		t.Errorf("the failed export left %v", left)
	}
}

func TestConsentExportInterrupted(t *testing.T) {
	dir, _, _ := exportLedger(t)
	out := filepath.Join(t.TempDir(), "e.zip")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	if code := run(ctx, []string{"consent", "export", "--data", dir, "--subject", "s-a", "--out", out}, os.Getenv, &stdout, &stderr); code == 0 {
		t.Fatalf("export with a cancelled context = 0; want a failure")
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), "*")); len(left) != 0 {
		t.Errorf("the interrupted export left %v", left)
	}
}
