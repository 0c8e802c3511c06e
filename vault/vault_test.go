package vault_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/vault"
)

var ctx = context.Background()

type env struct {
	dir   string
	db    *boltstore.DB
	vault *vault.Vault
	logs  *bytes.Buffer
}

func open(t testing.TB, dir string) *env {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	kekPath := filepath.Join(dir, "master.keyset.json")
	if _, err := os.Stat(kekPath); err != nil {
		if err := vault.InitLocalKEK(kekPath); err != nil {
			t.Fatal(err)
		}
	}
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	kek, err := vault.LoadLocalKEK(kekPath, log)
	if err != nil {
		t.Fatal(err)
	}
	db, err := boltstore.Open(filepath.Join(dir, "privguard.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.New(vault.Config{Store: db.Vault(), KEK: kek, TombstoneKey: []byte("0123456789abcdef0123456789abcdef"), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{dir: dir, db: db, vault: v, logs: logs}
	t.Cleanup(func() { db.Close() })
	return e
}

func TestSealOpenRoundTrip(t *testing.T) {
	// proves SEC-02 (vault side): personal fields are envelope-encrypted per subject.
	e := open(t, "")
	pt := []byte("13812345678")
	ct, err := e.vault.Seal(ctx, "cust-1", pt, []byte("user.contact.phone_number"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(ct, pt) || ct[0] != vault.FormatV1 || len(ct) != 5+12+len(pt)+16 {
		t.Fatalf("ciphertext %x: want version, key id, nonce, data, tag and no plaintext", ct)
	}
	got, err := e.vault.Open(ctx, "cust-1", ct, []byte("user.contact.phone_number"))
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Open = %q, %v; want the plaintext", got, err)
	}
	// Another Seal of the same value differs (random nonce).
	ct2, _ := e.vault.Seal(ctx, "cust-1", pt, []byte("user.contact.phone_number"))
	if bytes.Equal(ct, ct2) {
		t.Error("two seals of one value are equal")
	}
}

func TestOpenFailuresAreDistinct(t *testing.T) {
	e := open(t, "")
	ad := []byte("field")
	ct, err := e.vault.Seal(ctx, "cust-1", []byte("li.lei@example.com"), ad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.vault.Seal(ctx, "cust-2", []byte("x"), ad); err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte { c := bytes.Clone(ct); c[i] ^= 1; return c }
	cases := []struct {
		name    string
		subject privguard.SubjectID
		ct, ad  []byte
		want    error
	}{
		{"tampered_data", "cust-1", flip(len(ct) - 20), ad, vault.ErrTampered},
		{"tampered_tag", "cust-1", flip(len(ct) - 1), ad, vault.ErrTampered},
		{"other_field", "cust-1", ct, []byte("other"), vault.ErrTampered},
		{"truncated", "cust-1", ct[:20], ad, vault.ErrTruncated},
		{"empty", "cust-1", nil, ad, vault.ErrTruncated},
		{"unknown_version", "cust-1", append([]byte{0x7f}, ct[1:]...), ad, vault.ErrFormat},
		{"retargeted_to_other_subject", "cust-2", ct, ad, vault.ErrUnknownKey},
		{"unknown_key_id", "cust-1", flip(3), ad, vault.ErrUnknownKey},
		{"subject_without_key", "cust-9", ct, ad, vault.ErrNoKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.vault.Open(ctx, tc.subject, tc.ct, tc.ad)
			if !errors.Is(err, tc.want) {
				t.Errorf("Open = %v; want %v", err, tc.want)
			}
		})
	}
}

func TestShredMakesEveryCopyUnreadable(t *testing.T) {
	// proves SEC-06: after the shred, every copy (here: a "backup" of the ciphertext) fails
	// to decrypt, and the shred is an audit event.
	dir := t.TempDir()
	e := open(t, dir)
	ct, err := e.vault.Seal(ctx, "cust-7", []byte("li.lei@example.com"), nil)
	if err != nil {
		t.Fatal(err)
	}
	backup := bytes.Clone(ct)
	if err := e.vault.Shred(ctx, "cust-7"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.vault.Open(ctx, "cust-7", backup, nil); !errors.Is(err, vault.ErrShredded) {
		t.Errorf("Open after shred = %v; want ErrShredded", err)
	}
	if _, err := e.vault.Seal(ctx, "cust-7", []byte("new"), nil); !errors.Is(err, vault.ErrShredded) {
		t.Errorf("Seal after shred = %v; want ErrShredded (a shredded subject's data must not come back)", err)
	}
	if !strings.Contains(e.logs.String(), "shredded") {
		t.Error("no audit event for the shred")
	}
	e.db.Close()
	e2 := open(t, dir) // across a restart, with a cold cache
	if _, err := e2.vault.Open(ctx, "cust-7", backup, nil); !errors.Is(err, vault.ErrShredded) {
		t.Errorf("Open after restart = %v; want ErrShredded", err)
	}
}

func TestWrongMasterKeyOpensNothing(t *testing.T) {
	dir := t.TempDir()
	e := open(t, dir)
	ct, _ := e.vault.Seal(ctx, "cust-3", []byte("secret"), nil)
	e.db.Close()
	os.Remove(filepath.Join(dir, "master.keyset.json"))
	e2 := open(t, dir) // a new, different master key
	if _, err := e2.vault.Open(ctx, "cust-3", ct, nil); !errors.Is(err, privguard.ErrUnavailable) {
		t.Errorf("Open with another master key = %v; want ErrUnavailable", err)
	}
	if _, err := vault.LoadLocalKEK(filepath.Join(t.TempDir(), "none.json"), nil); !errors.Is(err, vault.ErrNoMasterKey) {
		t.Errorf("missing master key: %v; want ErrNoMasterKey", err)
	}
	if err := vault.InitLocalKEK(filepath.Join(dir, "master.keyset.json")); err == nil {
		t.Error("InitLocalKEK overwrote an existing master key")
	}
}

func TestLooseMasterKeyPermissionsWarn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.json")
	if err := vault.InitLocalKEK(path); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("master key mode %v; want 0600", st.Mode().Perm())
	}
	os.Chmod(path, 0o644)
	var logs bytes.Buffer
	if _, err := vault.LoadLocalKEK(path, slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "READABLE BY OTHER USERS") {
		t.Errorf("no loud warning for a 0644 master key: %q", logs.String())
	}
}

func TestNoSecretsInLogsOrErrors(t *testing.T) {
	// proves SEC-08 (vault side): no plaintext, subject id or key material in logs or errors.
	e := open(t, "")
	const canary = "canary-qzxw-plaintext"
	ct, err := e.vault.Seal(ctx, "subj-qzxw", []byte(canary), nil)
	if err != nil {
		t.Fatal(err)
	}
	var errs []string
	for _, c := range [][]byte{ct[:10], append([]byte{9}, ct[1:]...), append(bytes.Clone(ct[:len(ct)-1]), ct[len(ct)-1]^1)} {
		if _, err := e.vault.Open(ctx, "subj-qzxw", c, nil); err != nil {
			errs = append(errs, err.Error())
		}
	}
	e.vault.Shred(ctx, "subj-qzxw")
	_, err = e.vault.Open(ctx, "subj-qzxw", ct, nil)
	errs = append(errs, err.Error())
	raw, _ := os.ReadFile(filepath.Join(e.dir, "master.keyset.json"))
	all := e.logs.String() + strings.Join(errs, "\n")
	for _, leak := range []string{"qzxw", string(raw[20:40])} {
		if strings.Contains(all, leak) {
			t.Errorf("%q leaked into logs or errors:\n%s", leak, all)
		}
	}
}

func FuzzOpen(f *testing.F) {
	e := open(f, "")
	ct, err := e.vault.Seal(ctx, "fuzz-1", []byte("hello"), []byte("ad"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ct)
	f.Add(ct[:5])
	f.Add([]byte{1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, c []byte) {
		pt, err := e.vault.Open(ctx, "fuzz-1", c, []byte("ad"))
		if err == nil && !bytes.Equal(pt, []byte("hello")) {
			t.Fatalf("Open(%x) = %q: a forged ciphertext opened", c, pt)
		}
	})
}

func TestShreddedKeyBytesGoneAfterCompaction(t *testing.T) {
	// proves SEC-06 (storage side): bbolt keeps a deleted wrapped key in free pages;
	// after compaction no byte sequence of it remains in the data file.
	dir := t.TempDir()
	e := open(t, dir)
	if _, err := e.vault.Seal(ctx, "cust-shred", []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	wrapped, err := e.db.Vault().WrappedKey(ctx, "cust-shred")
	if err != nil {
		t.Fatal(err)
	}
	needle := wrapped[len(wrapped)-48:] // the encrypted key material (and its tag)
	if err := e.vault.Shred(ctx, "cust-shred"); err != nil {
		t.Fatal(err)
	}
	e.db.Close()
	path := filepath.Join(dir, "privguard.db")
	raw, _ := os.ReadFile(path)
	t.Logf("wrapped key still in the file after Delete: %v (bbolt's free pages)", bytes.Contains(raw, needle))
	if _, _, err := boltstore.CompactFile(path); err != nil {
		t.Fatal(err)
	}
	raw, _ = os.ReadFile(path)
	if bytes.Contains(raw, needle) {
		t.Fatal("the shredded wrapped key is still in the data file after compaction")
	}
	e2 := open(t, dir)
	if _, err := e2.vault.Seal(ctx, "cust-shred", []byte("x"), nil); !errors.Is(err, vault.ErrShredded) {
		t.Errorf("the tombstone did not survive compaction: %v", err)
	}
}

// ShredAll shreds every subject it names, in one transaction, and no other.
func TestShredAll(t *testing.T) {
	dir := t.TempDir()
	e := open(t, dir)
	cts := map[privguard.SubjectID][]byte{}
	for _, s := range []privguard.SubjectID{"cust-1", "cust-2", "cust-3"} {
		ct, err := e.vault.Seal(ctx, s, []byte("li.lei@example.com"), nil)
		if err != nil {
			t.Fatal(err)
		}
		cts[s] = ct
	}
	if err := e.vault.ShredAll(ctx, []privguard.SubjectID{"cust-1", "cust-3", "cust-never-sealed"}); err != nil {
		t.Fatal(err)
	}
	if err := e.vault.ShredAll(ctx, []privguard.SubjectID{"cust-1"}); err != nil {
		t.Errorf("ShredAll again = %v; want it idempotent", err)
	}
	if err := e.vault.ShredAll(ctx, []privguard.SubjectID{"cust-2", "bad id"}); err == nil {
		t.Error("a malformed subject id was accepted")
	}
	e.db.Close()
	e2 := open(t, dir)
	for s, ct := range cts {
		_, err := e2.vault.Open(ctx, s, ct, nil)
		if shredded := s != "cust-2"; shredded != errors.Is(err, vault.ErrShredded) {
			t.Errorf("Open(%s) after ShredAll = %v; shredded: %v", s, err, shredded)
		}
	}
	if _, err := e2.vault.Seal(ctx, "cust-never-sealed", []byte("x"), nil); !errors.Is(err, vault.ErrShredded) {
		t.Errorf("Seal for a shredded subject that had no key = %v; want ErrShredded", err)
	}
}
