package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func TestConsentVerifyNamesTamperedRecord(t *testing.T) {
	// proves CON-05: changing one stored byte makes `privguard consent verify` name that
	// record and exit non-zero.
	dir := t.TempDir()
	url, token, stop, _ := startServe(t, dir)
	post(t, url, token, "/v1/notices", `{"id":"n","version":1,"language":"en","text":"t","purposes":["marketing"],
		"controller":{"name":"E","contact":"p@example.com"},"retention":"1y","rights_channels":["x"]}`)
	for i := range 10 {
		post(t, url, token, "/v1/consents", `{"subject":"s-`+string(rune('a'+i))+`","purpose":"marketing.profiling","action":"grant",
			"regime":"pipl","notice":{"id":"n","version":1},"channel":"web","method":"explicit"}`)
	}
	stop()

	db, err := bolt.Open(filepath.Join(dir, dataFile), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("consent.records"))
		k := binary.BigEndian.AppendUint64(nil, 7)
		v := bytes.Clone(b.Get(k))
		i := bytes.Index(v, []byte("s-g")) // the subject of record 7
		v[i+2] = 'z'
		return b.Put(k, v)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"consent", "verify", "--data", dir}, os.Getenv, &out, &errb)
	if code != 1 || !strings.Contains(out.String(), "record 7 ") {
		t.Errorf("verify after tampering = %d %q %q; want exit 1 naming record 7", code, out.String(), errb.String())
	}
}

func TestConsentVerifyAnchor(t *testing.T) {
	dir := t.TempDir()
	url, token, stop, _ := startServe(t, dir)
	post(t, url, token, "/v1/notices", `{"id":"n","version":1,"language":"en","text":"t","purposes":["marketing"],
		"controller":{"name":"E","contact":"p@example.com"},"retention":"1y","rights_channels":["x"]}`)
	for i := range 5 {
		post(t, url, token, "/v1/consents", `{"subject":"s-`+string(rune('a'+i))+`","action":"object"}`)
	}
	stop()
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"consent", "verify", "--data", dir}, os.Getenv, &out, &errb); code != 0 {
		t.Fatalf("verify = %d %s", code, errb.String())
	}
	i := strings.Index(out.String(), "sha256 ")
	head := strings.TrimSpace(out.String()[i+len("sha256 "):])
	cases := []struct {
		anchor string
		code   int
	}{
		{"5:" + head, 0},
		{"4:" + head, 1}, // record 4 has another hash
		{"9:" + head, 1}, // beyond the ledger
		{"5:zz", 2},
		{"five", 2},
	}
	for _, tc := range cases {
		out.Reset()
		errb.Reset()
		if code := run(context.Background(), []string{"consent", "verify", "--data", dir, "--anchor", tc.anchor}, os.Getenv, &out, &errb); code != tc.code {
			t.Errorf("verify --anchor %s = %d (%s%s); want %d", tc.anchor, code, out.String(), errb.String(), tc.code)
		}
	}
}
