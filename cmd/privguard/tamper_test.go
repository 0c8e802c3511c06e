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
