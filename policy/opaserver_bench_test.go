package policy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/privguard/privguard/policy"
)

// BenchmarkVersusOPAServer compares privguard's in-process decision with the same policy
// and input asked of an OPA server over localhost HTTP (`opa run --server`, the setup many
// teams use). It needs an opa binary built from the OPA module (see BENCHMARKS.md):
// PRIVGUARD_OPA_BIN=/path/to/opa.
func BenchmarkVersusOPAServer(b *testing.B) {
	bin := os.Getenv("PRIVGUARD_OPA_BIN")
	if bin == "" {
		b.Skip("PRIVGUARD_OPA_BIN is not set")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "run", "--server", "--addr", addr, "--log-level", "error", "bundle")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get("http://" + addr + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatal("opa server did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	in := sms()
	body, _ := json.Marshal(map[string]any{"input": in})
	url := "http://" + addr + "/v1/data/privguard/decision"
	b.Run("opa_server_http", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			resp, err := client.Post(url, "application/json", bytes.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			var out struct {
				Result struct {
					Allow bool `json:"allow"`
				} `json:"result"`
			}
			json.NewDecoder(resp.Body).Decode(&out)
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if !out.Result.Allow {
				b.Fatal(fmt.Sprintf("opa server denied: %s", body))
			}
		}
	})
	b.Run("in_process_cold", func(b *testing.B) {
		e := newEngine(b, policy.Config{CacheSize: -1})
		b.ReportAllocs()
		for b.Loop() {
			if d, err := e.Decide(ctx, in); err != nil || !d.Allowed() {
				b.Fatal(d, err)
			}
		}
	})
	b.Run("in_process_warm", func(b *testing.B) {
		e := newEngine(b, policy.Config{})
		b.ReportAllocs()
		for b.Loop() {
			if d, err := e.Decide(ctx, in); err != nil || !d.Allowed() {
				b.Fatal(d, err)
			}
		}
	})
}
