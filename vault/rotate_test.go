package vault_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/vault"
	"github.com/tink-crypto/tink-go/v2/tink"
)

func TestSubjectKeyRotation(t *testing.T) {
	// proves SEC-02 (rotation): old data still opens after rotation, new data uses the new key.
	e := open(t, "")
	old, _ := e.vault.Seal(ctx, "cust-1", []byte("old"), nil)
	if err := e.vault.RotateSubject(ctx, "cust-1"); err != nil {
		t.Fatal(err)
	}
	fresh, _ := e.vault.Seal(ctx, "cust-1", []byte("new"), nil)
	if bytes.Equal(old[1:5], fresh[1:5]) {
		t.Error("the key id did not change after rotation")
	}
	for _, c := range [][]byte{old, fresh} {
		if _, err := e.vault.Open(ctx, "cust-1", c, nil); err != nil {
			t.Errorf("Open after rotation: %v", err)
		}
	}
}

func TestKEKRotationRewrapsEverything(t *testing.T) {
	dir := t.TempDir()
	e := open(t, dir)
	cts := map[privguard.SubjectID][]byte{}
	for i := range 50 {
		s := privguard.SubjectID(fmt.Sprintf("s-%d", i))
		ct, err := e.vault.Seal(ctx, s, []byte("v-"+string(s)), nil)
		if err != nil {
			t.Fatal(err)
		}
		cts[s] = ct
	}
	e.db.Close()
	oldKEK, _ := vault.LoadLocalKEK(filepath.Join(dir, "master.keyset.json"), nil)
	newPath := filepath.Join(dir, "master.next.json")
	if err := vault.InitLocalKEK(newPath); err != nil {
		t.Fatal(err)
	}
	newKEK, _ := vault.LoadLocalKEK(newPath, nil)
	db, err := boltstore.Open(filepath.Join(dir, "privguard.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tomb := []byte("0123456789abcdef0123456789abcdef")
	v, _ := vault.New(vault.Config{Store: db.Vault(), KEK: newKEK, PreviousKEKs: []tink.AEAD{oldKEK}, TombstoneKey: tomb})
	var last vault.KEKProgress
	p, err := v.RotateKEK(ctx, func(p vault.KEKProgress) { last = p })
	if err != nil || p.Total != 50 || p.Rewrapped != 50 || p.Remaining != 0 || last.Rewrapped != 50 {
		t.Fatalf("RotateKEK = %+v, %v; want 50 rewrapped", p, err)
	}
	// Without the old KEK every subject still opens: the old KEK can now be destroyed.
	v2, _ := vault.New(vault.Config{Store: db.Vault(), KEK: newKEK, TombstoneKey: tomb})
	for s, ct := range cts {
		if pt, err := v2.Open(ctx, s, ct, nil); err != nil || string(pt) != "v-"+string(s) {
			t.Fatalf("Open(%s) after KEK rotation = %q, %v", s, pt, err)
		}
	}
	if p, _ := v2.RotateKEK(ctx, nil); p.Rewrapped != 0 || p.Remaining != 0 {
		t.Errorf("a second rotation rewrapped %d", p.Rewrapped)
	}
}

func TestBlindIndex(t *testing.T) {
	// proves SEC-04: a keyed, versioned token for equality lookups; not the value itself.
	e := open(t, "")
	a, err := e.vault.BlindIndex(ctx, "email", []byte("li.lei@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := e.vault.BlindIndex(ctx, "email", []byte("li.lei@example.com"))
	c, _ := e.vault.BlindIndex(ctx, "email", []byte("han.meimei@example.com"))
	d, _ := e.vault.BlindIndex(ctx, "phone", []byte("li.lei@example.com"))
	if a != b || a == c || a == d || !strings.HasPrefix(a, "bi1.") || strings.Contains(a, "li.lei") {
		t.Errorf("tokens %q %q %q %q: want equal for equal values, different across values and fields", a, b, c, d)
	}
	// Another vault (another key) gives other tokens.
	other := open(t, "")
	if x, _ := other.vault.BlindIndex(ctx, "email", []byte("li.lei@example.com")); x == a {
		t.Error("two vaults share a blind index")
	}
}

func TestKEKRotationKeepsBlindIndexAndCheck(t *testing.T) {
	dir := t.TempDir()
	e := open(t, dir)
	tok, err := e.vault.BlindIndex(ctx, "email", []byte("a@b.c"))
	if err != nil {
		t.Fatal(err)
	}
	e.db.Close()
	oldKEK, _ := vault.LoadLocalKEK(filepath.Join(dir, "master.keyset.json"), nil)
	vault.InitLocalKEK(filepath.Join(dir, "next.json"))
	newKEK, _ := vault.LoadLocalKEK(filepath.Join(dir, "next.json"), nil)
	db, _ := boltstore.Open(filepath.Join(dir, "privguard.db"), boltstore.Options{})
	defer db.Close()
	tomb := []byte("0123456789abcdef0123456789abcdef")
	v, _ := vault.New(vault.Config{Store: db.Vault(), KEK: newKEK, PreviousKEKs: []tink.AEAD{oldKEK}, TombstoneKey: tomb})
	if err := v.CheckKEK(ctx); err != nil {
		t.Fatalf("CheckKEK during rotation: %v", err)
	}
	if _, err := v.RotateKEK(ctx, nil); err != nil {
		t.Fatal(err)
	}
	v2, _ := vault.New(vault.Config{Store: db.Vault(), KEK: newKEK, TombstoneKey: tomb})
	if err := v2.CheckKEK(ctx); err != nil {
		t.Errorf("CheckKEK with the new KEK alone: %v", err)
	}
	if got, err := v2.BlindIndex(ctx, "email", []byte("a@b.c")); err != nil || got != tok {
		t.Errorf("blind index after KEK rotation = %q, %v; want %q", got, err, tok)
	}
	v3, _ := vault.New(vault.Config{Store: db.Vault(), KEK: oldKEK, TombstoneKey: tomb})
	if err := v3.CheckKEK(ctx); err != vault.ErrWrongKEK {
		t.Errorf("CheckKEK with the retired KEK = %v; want ErrWrongKEK", err)
	}
}
