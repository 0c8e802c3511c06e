package vault_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/vault"
)

func TestSealAndOpenJSONFields(t *testing.T) {
	// proves SEC-02: personal fields are sealed before they reach a store, and only opened
	// for callers that go through the vault.
	e := open(t, "")
	doc := []byte(`{"id":"c-1","phone":"13812345678","email":"li.lei@example.com","addresses":[{"city":"Hangzhou","street":"1 West Lake Rd"}],"tags":["vip"]}`)
	paths := []string{"phone", "email", "addresses.street"}
	sealed, err := e.vault.SealJSON(ctx, "c-1", doc, paths)
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{"13812345678", "li.lei", "West Lake"} {
		if bytes.Contains(sealed, []byte(leak)) {
			t.Errorf("sealed document still contains %q: %s", leak, sealed)
		}
	}
	if !bytes.Contains(sealed, []byte(`"city":"Hangzhou"`)) || !bytes.Contains(sealed, []byte(vault.SealedPrefix)) {
		t.Errorf("sealed document lost other fields or has no sealed values: %s", sealed)
	}
	again, _ := e.vault.SealJSON(ctx, "c-1", sealed, paths)
	if !bytes.Equal(again, sealed) {
		t.Error("sealing a sealed document changed it")
	}
	// Something that only looks sealed is not taken for sealed: neither a client's
	// "pgv1:" plaintext, nor another subject's sealed value, nor one of another field.
	otherSubject, _ := e.vault.SealJSON(ctx, "c-2", doc, paths)
	var os, own map[string]any
	json.Unmarshal(otherSubject, &os)
	json.Unmarshal(sealed, &own)
	for name, fake := range map[string]string{
		"plaintext":     `{"phone":"pgv1:13812345678"}`,
		"other_subject": `{"phone":"` + os["phone"].(string) + `"}`,
		"other_field":   `{"phone":"` + own["email"].(string) + `"}`,
	} {
		if out, err := e.vault.SealJSON(ctx, "c-1", []byte(fake), paths); !errors.Is(err, privguard.ErrInvalid) {
			t.Errorf("%s: SealJSON = %s, %v; want ErrInvalid", name, out, err)
		}
	}
	opened, err := e.vault.OpenJSON(ctx, "c-1", sealed, paths)
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	json.Unmarshal(doc, &a)
	json.Unmarshal(opened, &b)
	if !jsonEqual(a, b) {
		t.Errorf("OpenJSON = %s; want %s", opened, doc)
	}
	// A value moved to another field does not open.
	var m map[string]any
	json.Unmarshal(sealed, &m)
	m["email"] = m["phone"]
	moved, _ := json.Marshal(m)
	if _, err := e.vault.OpenJSON(ctx, "c-1", moved, paths); !errors.Is(err, vault.ErrTampered) {
		t.Errorf("moved field: %v; want ErrTampered", err)
	}
	// After a shred, sealed fields come back as null.
	e.vault.Shred(ctx, "c-1")
	gone, err := e.vault.OpenJSON(ctx, "c-1", sealed, paths)
	if err != nil || !bytes.Contains(gone, []byte(`"phone":null`)) {
		t.Errorf("after shred: %s, %v; want the fields null", gone, err)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
