package pgstore_test

import (
	"bytes"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/pgstore"
	"github.com/privguard/privguard/vault"
)

// vaultStore is what both stores implement.
type vaultStore interface {
	vault.Store
	vault.SecretStore
	vault.BatchShredder
}

// The vault store behaves as boltstore's does.
func TestVaultStoreConformance(t *testing.T) {
	stores := map[string]func(t *testing.T) vaultStore{
		"boltstore": func(t *testing.T) vaultStore { return openBolt(t).Vault() },
		"pgstore":   func(t *testing.T) vaultStore { return openDB(t).Vault() },
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			if _, err := s.WrappedKey(ctx, "cust-1"); !errors.Is(err, privguard.ErrNotFound) {
				t.Errorf("WrappedKey of none = %v; want ErrNotFound", err)
			}
			if err := s.PutWrappedKey(ctx, "cust-1", []byte("k1"), false); err != nil {
				t.Fatal(err)
			}
			if err := s.PutWrappedKey(ctx, "cust-1", []byte("k2"), false); !errors.Is(err, privguard.ErrConflict) {
				t.Errorf("PutWrappedKey over one = %v; want ErrConflict", err)
			}
			if err := s.PutWrappedKey(ctx, "cust-1", []byte("k3"), true); err != nil {
				t.Errorf("PutWrappedKey(replace): %v", err)
			}
			got, _ := s.WrappedKey(ctx, "cust-1")
			if string(got) != "k3" {
				t.Errorf("WrappedKey = %q; want k3", got)
			}
			got[0] = 'x' // the caller's copy
			if again, _ := s.WrappedKey(ctx, "cust-1"); string(again) != "k3" {
				t.Error("changing what WrappedKey returned changed the store")
			}
			if err := s.PutWrappedKeys(ctx, map[privguard.SubjectID][]byte{"cust-1": []byte("k4"), "cust-2": []byte("k5"), "cust-3": []byte("k6")}); err != nil {
				t.Fatal(err)
			}
			var subjects []string
			if err := s.EachWrappedKey(ctx, func(subject privguard.SubjectID, wrapped []byte) error {
				subjects = append(subjects, string(subject)+"="+string(wrapped))
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			slices.Sort(subjects)
			if !slices.Equal(subjects, []string{"cust-1=k4", "cust-2=k5", "cust-3=k6"}) {
				t.Errorf("EachWrappedKey = %v", subjects)
			}
			if err := s.Shred(ctx, "cust-1", [32]byte{1}); err != nil {
				t.Fatal(err)
			}
			if err := s.ShredAll(ctx, map[privguard.SubjectID][32]byte{"cust-2": {2}, "cust-9": {9}}); err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				subject privguard.SubjectID
				grave   [32]byte
				gone    bool
			}{{"cust-1", [32]byte{1}, true}, {"cust-2", [32]byte{2}, true}, {"cust-9", [32]byte{9}, true}, {"cust-3", [32]byte{3}, false}} {
				_, err := s.WrappedKey(ctx, c.subject)
				if gone := errors.Is(err, privguard.ErrNotFound); gone != c.gone {
					t.Errorf("WrappedKey(%s) after shredding = %v; want gone %v", c.subject, err, c.gone)
				}
				if ok, err := s.Shredded(ctx, c.grave); err != nil || ok != c.gone {
					t.Errorf("Shredded(%s) = %v, %v; want %v", c.subject, ok, err, c.gone)
				}
			}
			if err := s.Shred(ctx, "cust-1", [32]byte{1}); err != nil {
				t.Errorf("shredding again: %v", err)
			}
			v, err := s.Secret(ctx, "vault.kek-check", func() ([]byte, error) { return []byte("c1"), nil })
			if err != nil || string(v) != "c1" {
				t.Errorf("Secret = %q, %v", v, err)
			}
			if err := s.PutSecret(ctx, "vault.kek-check", []byte("c2")); err != nil {
				t.Fatal(err)
			}
			if v, _ := s.Secret(ctx, "vault.kek-check", func() ([]byte, error) { return []byte("never"), nil }); string(v) != "c2" {
				t.Errorf("Secret after PutSecret = %q; want c2", v)
			}
		})
	}
}

// Another process's key creation is a conflict for this one.
func TestPutWrappedKeyConflictAcrossProcesses(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	a, b := openSchema(t, schema).Vault(), openSchema(t, schema).Vault()
	if err := a.PutWrappedKey(ctx, "cust-1", []byte("from a"), false); err != nil {
		t.Fatal(err)
	}
	if err := b.PutWrappedKey(ctx, "cust-1", []byte("from b"), false); !errors.Is(err, privguard.ErrConflict) {
		t.Errorf("the second process's PutWrappedKey = %v; want ErrConflict", err)
	}
	if got, _ := b.WrappedKey(ctx, "cust-1"); string(got) != "from a" {
		t.Errorf("WrappedKey = %q; want the first process's", got)
	}
}

func TestTombstonesAfter(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	a, b := openSchema(t, schema).Vault(), openSchema(t, schema).Vault()
	a.Shred(ctx, "cust-1", [32]byte{1})
	b.ShredAll(ctx, map[privguard.SubjectID][32]byte{"cust-2": {2}, "cust-3": {3}})
	a.Shred(ctx, "cust-1", [32]byte{1}) // again: keeps its place
	a.Shred(ctx, "cust-4", [32]byte{4})
	var cursors []uint64
	var graves []byte
	if err := b.TombstonesAfter(ctx, 0, func(c uint64, g [32]byte) error {
		cursors, graves = append(cursors, c), append(graves, g[0])
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(cursors) != 4 || !slices.IsSorted(cursors) || graves[0] != 1 || graves[3] != 4 || !bytes.ContainsRune(graves[1:3], 2) {
		t.Fatalf("TombstonesAfter(0) = cursors %v, tombstones %v; want 1, {2, 3}, 4 in increasing cursors", cursors, graves)
	}
	var rest []byte
	b.TombstonesAfter(ctx, cursors[2], func(_ uint64, g [32]byte) error { rest = append(rest, g[0]); return nil })
	if !bytes.Equal(rest, []byte{4}) {
		t.Errorf("TombstonesAfter(third) = %v; want [4]", rest)
	}
}

// A real vault on the shared store: sealed in one process, opened in another; shredded in
// one, unreadable in the other; one blind-index key for both.
func TestVaultAcrossProcesses(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	kekPath := filepath.Join(t.TempDir(), "kek.json")
	if err := vault.InitLocalKEK(kekPath); err != nil {
		t.Fatal(err)
	}
	kek, err := vault.LoadLocalKEK(kekPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	newVault := func(db *pgstore.DB) *vault.Vault {
		v, err := vault.New(vault.Config{Store: db.Vault(), KEK: kek, TombstoneKey: []byte("0123456789abcdef0123456789abcdef"), CacheSize: -1})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	v1, v2 := newVault(openSchema(t, schema)), newVault(openSchema(t, schema))
	ct, err := v1.Seal(ctx, "cust-1", []byte("13812345678"), []byte("phone"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := v2.Open(ctx, "cust-1", ct, []byte("phone")); err != nil || string(pt) != "13812345678" {
		t.Fatalf("Open in the other process = %q, %v", pt, err)
	}
	i1, err1 := v1.BlindIndex(ctx, "phone", []byte("13812345678"))
	i2, err2 := v2.BlindIndex(ctx, "phone", []byte("13812345678"))
	if err1 != nil || err2 != nil || i1 != i2 {
		t.Errorf("BlindIndex = %q, %v and %q, %v; want one token", i1, err1, i2, err2)
	}
	if err := v2.Shred(ctx, "cust-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := v1.Open(ctx, "cust-1", ct, []byte("phone")); !errors.Is(err, vault.ErrShredded) {
		t.Errorf("Open after the other process shredded = %v; want ErrShredded", err)
	}
}
