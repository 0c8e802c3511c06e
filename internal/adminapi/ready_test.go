package adminapi_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/internal/adminapi"
)

// failingFS mounts a small ext4 file system (a loop device over a file in t.TempDir(),
// errors=remount-ro) and returns its mount point and fail, which makes it fail the way a
// disk does: ext4 records an error and remounts itself read-only, so every write to a file
// already open gets EROFS while reads are still served. It is unmounted when the test ends
// (register what uses it afterwards, so that it is closed first).
//
// A tmpfs remounted read-only would be simpler, but the kernel refuses to remount a file
// system read-only (EBUSY) while a file on it is open for writing, and bbolt holds its
// file open read-write; an ext4 error is how a live file system goes read-only.
func failingFS(t *testing.T) (dir string, fail func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a file system it can make fail (run as root, as CI does)")
	}
	for _, tool := range []string{"mkfs.ext4", "mount", "umount", "findmnt"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s to mount a file system it can make fail", tool)
		}
	}
	base := t.TempDir()
	img, mnt := filepath.Join(base, "fs.img"), filepath.Join(base, "mnt")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 16<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", img).CombinedOutput(); err != nil {
		t.Skipf("mkfs.ext4: %v %s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop,errors=remount-ro", img, mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a loop device here (%v %s)", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", mnt, err, out)
		}
	})
	src, err := exec.Command("findmnt", "-n", "-o", "SOURCE", mnt).Output()
	if err != nil {
		t.Fatalf("findmnt: %v", err)
	}
	trigger := filepath.Join("/sys/fs/ext4", filepath.Base(strings.TrimSpace(string(src))), "trigger_fs_error")
	if _, err := os.Stat(trigger); err != nil {
		t.Skipf("this kernel cannot be told to fail ext4 (%v)", err)
	}
	return mnt, func() {
		t.Helper()
		if err := os.WriteFile(trigger, []byte("privguard readiness test"), 0o200); err != nil {
			t.Fatalf("trigger_fs_error: %v", err)
		}
		if err := os.WriteFile(filepath.Join(mnt, "canary"), nil, 0o600); err == nil {
			t.Fatal("the file system still takes writes after the error")
		}
	}
}

func TestReadyzReflectsTheAbilityToCommit(t *testing.T) {
	// Readiness means privguard can commit: once the file system under the data file
	// goes read-only, /readyz says unavailable, even before any write has failed (reads
	// still work, so a read-only check passed).
	dir, fail := failingFS(t)
	clk := &consenttest.Clock{}
	db, err := boltstore.Open(filepath.Join(dir, "privguard.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	l, err := consent.Open(context.Background(), consent.Config{Store: db.Consent(), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	eng, err := dsar.New(dsar.Config{Store: db.DSAR(), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	tokens := adminapi.Tokens{}
	tokens.Add(token, adminapi.Principal{Name: "ops", Roles: []string{"admin"}})
	api, err := adminapi.New(adminapi.Config{Ledger: l, Tokens: tokens, Requests: eng, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv, ledger: l}
	ready := func() (int, map[string]any) {
		var out struct {
			Status string         `json:"status"`
			Checks map[string]any `json:"checks"`
		}
		resp := e.do("GET", "/readyz", "", nil, &out)
		return resp.StatusCode, out.Checks
	}

	if st, checks := ready(); st != 200 || checks["consent_store"] != "ok" || checks["request_store"] != "ok" {
		t.Fatalf("healthy: /readyz = %d %v; want 200 with both stores ok", st, checks)
	}
	if resp := e.do("POST", "/v1/consents", `{"subject":"cust-1","action":"object"}`, nil, nil); resp.StatusCode != 201 {
		t.Fatalf("healthy: a write = %d; want 201", resp.StatusCode)
	}

	fail()
	clk.Advance(consent.ProbeInterval) // the last good commit no longer vouches
	st, checks := ready()
	if st != 503 || checks["consent_store"] != "unavailable" || checks["request_store"] != "unavailable" {
		t.Errorf("read-only, nothing written yet: /readyz = %d %v; want 503 with both stores unavailable", st, checks)
	}
	var p map[string]any
	if resp := e.do("POST", "/v1/consents", `{"subject":"cust-2","action":"object"}`, nil, &p); resp.StatusCode != 503 {
		t.Errorf("read-only: a write = %d %v; want 503", resp.StatusCode, p)
	}
	if st, checks := ready(); st != 503 {
		t.Errorf("read-only, after a failed commit: /readyz = %d %v; want 503", st, checks)
	}
	b, _ := json.Marshal(checks)
	if strings.Contains(string(b), "read-only") || strings.Contains(string(b), dir) {
		t.Errorf("the readiness answer shows internals: %s", b)
	}
}
