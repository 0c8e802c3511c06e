package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/privguard/privguard/internal/config"
	"github.com/privguard/privguard/policy"
)

// redisFrequency returns the frequency_store configuration of a test's own key prefix on
// the test Redis (skipping without one), with a shared key file when keyFile is set.
func redisFrequency(t *testing.T, keyFile string) string {
	t.Helper()
	addr := os.Getenv("PRIVGUARD_TEST_REDIS_ADDR")
	if addr == "" {
		t.Skip("PRIVGUARD_TEST_REDIS_ADDR is not set (e.g. 127.0.0.1:6379): the shared frequency store is not tested")
	}
	var b [6]byte
	rand.Read(b[:])
	s := "frequency_store:\n  redis:\n    addr: " + addr + "\n    key_prefix: \"pgtest:" + hex.EncodeToString(b[:]) + ":\"\n"
	if keyFile != "" {
		s += "    key_file: " + keyFile + "\n"
	}
	return s
}

// TestSidecarReplicasShareFrequency: two sidecars, each with a store of its own and the
// same frequency_store, let two texts a week reach ok between them, not two each.
func TestSidecarReplicasShareFrequency(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "frequency.key")
	os.WriteFile(keyFile, []byte(strings.Repeat("k", 32)+"\n"), 0o600)
	shared := redisFrequency(t, keyFile) + "policy:\n  frequency:\n    sms: {max: 2}\n" // the default window (168h)
	a, upA, _ := bypassSidecar(t, shared)
	b, upB, _ := bypassSidecar(t, shared)
	send := attack{method: "POST", target: "/api/campaigns/1/send", body: `{"recipients":["ok"]}`}
	for i, proxy := range []string{a, b, a, b} {
		code, body := send.send(t, proxy)
		switch {
		case i < 2 && code != http.StatusOK:
			t.Errorf("send %d = %d %s; want 200", i+1, code, body)
		case i >= 2 && (code != http.StatusForbidden || !strings.Contains(body, "frequency.exceeded")):
			t.Errorf("send %d = %d %s; want 403 frequency.exceeded (two already sent, one through each replica)", i+1, code, body)
		}
	}
	if n := upA.count("send", "ok") + upB.count("send", "ok"); n != 2 {
		t.Errorf("the upstreams texted ok %d times; want 2", n)
	}
}

// TestServeRefusesAnotherFrequencyKey: a replica whose subject key differs from the one
// the others count under would count apart from them; serve refuses to start.
func TestServeRefusesAnotherFrequencyKey(t *testing.T) {
	store := redisFrequency(t, "")
	bypassSidecar(t, store) // records its store's key
	dir := t.TempDir()
	cfg := filepath.Join(dir, "privguard.yaml")
	os.WriteFile(cfg, []byte("listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\nupstream: http://127.0.0.1:9\ndata_dir: "+dir+"\n"+store), 0o600)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if code := run(ctx, []string{"serve", "--config", cfg}, func(string) string { return "" }, &stdout, &stderr); code == 0 {
		t.Fatalf("serve with another store's key = 0; want a refusal. stderr:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "different subject key") || !strings.Contains(stderr.String(), "key_file") {
		t.Errorf("stderr does not say why, or what to do:\n%s", stderr.String())
	}
}

// TestSidecarFrequencyStoreDown: with Redis unreachable, texts (on_unavailable: deny by
// default) are refused with 503, pushes configured to allow go ahead.
func TestSidecarFrequencyStoreDown(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "frequency.key")
	os.WriteFile(keyFile, []byte(strings.Repeat("k", 32)), 0o600)
	cfg := "frequency_store:\n  redis: {addr: " + closedPort(t) + ", key_file: " + keyFile + ", timeout: 200ms}\n" +
		"policy:\n  frequency:\n    sms: {max: 1000, window: 168h}\n    email: {on_unavailable: allow}\n"
	proxy, up, logs := bypassSidecar(t, cfg)
	start := time.Now()
	code, body := attack{method: "POST", target: "/api/campaigns/1/send", body: `{"recipients":["ok"]}`}.send(t, proxy)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "frequency.unavailable") {
		t.Errorf("sms with Redis down = %d %s; want 503 frequency.unavailable", code, body)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the refusal took %s; want it within the timeout or so", d)
	}
	if n := up.count("send", "ok"); n != 0 {
		t.Errorf("the upstream texted ok %d times; want 0", n)
	}
	if !strings.Contains(logs.String(), "frequency_store.redis does not answer") {
		t.Errorf("serve did not warn at start that Redis does not answer:\n%s", logs.String())
	}
}

// closedPort returns a local address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// A channel of policy.frequency that sets only on_unavailable keeps its default limit.
func TestFrequencyKeepsDefaults(t *testing.T) {
	two := 2
	cfg := &config.File{Policy: config.Policy{Frequency: map[string]config.Frequency{
		"email": {OnUnavailable: "allow"}, "sms": {Max: &two}, "push": {Window: "1h"}}}}
	got := frequency(cfg)
	want := map[string]policy.FrequencyLimit{"email": {Max: 7, Window: "168h"}, "sms": {Max: 2, Window: "168h"},
		"push": {Max: 5, Window: "1h"}, "wechat": {Max: 4, Window: "168h"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("frequency (-want +got):\n%s", diff)
	}
}
