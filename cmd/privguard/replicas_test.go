package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// replicaEnv is one shared PostgreSQL store (a schema of its own) and what every replica
// on it shares: the master key file and an admin token.
type replicaEnv struct {
	bin, dsn, schema, master, token, dir string
}

// newReplicaEnv makes a schema name, a master key and a token for replicas of a test; it
// skips the test without PRIVGUARD_TEST_POSTGRES_DSN.
func newReplicaEnv(t *testing.T) *replicaEnv {
	t.Helper()
	dsn := os.Getenv("PRIVGUARD_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("PRIVGUARD_TEST_POSTGRES_DSN is not set (CI sets it; see .ci/run)")
	}
	if testing.Short() {
		t.Skip("replica tests run the binary: not in -short")
	}
	dir := t.TempDir()
	env := &replicaEnv{bin: replicaBinary(t), dsn: dsn, schema: "pgt_" + strings.ToLower(rand.Text()[:10]), dir: dir,
		master: filepath.Join(dir, "master.keyset.json"), token: rand.Text()}
	if out, err := exec.Command(env.bin, "keys", "init", "--out", env.master).CombinedOutput(); err != nil {
		t.Fatalf("keys init --out: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, dsn); err == nil {
			c.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{env.schema}.Sanitize()+" CASCADE")
			c.Close(ctx)
		}
	})
	return env
}

var (
	replicaBinOnce sync.Once
	replicaBin     string
	replicaBinErr  error
)

// replicaBinary builds the binary once for every replica test.
func replicaBinary(t *testing.T) string {
	t.Helper()
	replicaBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "privguard-replica-bin")
		if err != nil {
			replicaBinErr = err
			return
		}
		replicaBin = filepath.Join(dir, "privguard")
		out, err := exec.Command("go", "build", "-o", replicaBin, ".").CombinedOutput()
		if err != nil {
			replicaBinErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if replicaBinErr != nil {
		t.Fatal(replicaBinErr)
	}
	return replicaBin
}

// replica is one running `privguard serve` on the shared store.
type replica struct {
	name, url string
	cmd       *exec.Cmd
	logs      *syncBuffer
	exited    chan struct{}
}

// config writes the configuration of replica name, connecting through dsn (the store, or a
// proxy in front of it), and returns its path.
func (env *replicaEnv) config(t *testing.T, name, dsn, extra string) string {
	t.Helper()
	dir := filepath.Join(env.dir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(env.token))
	cfg := fmt.Sprintf(`data: %s
admin_listen: 127.0.0.1:0
replica: %s
store:
  postgres: {dsn: %q, schema: %s}
vault:
  master_key_file: %s
admin:
  tokens: [{name: test, sha256: %s, roles: [admin]}]
%s`, dir, name, dsn, env.schema, env.master, hex.EncodeToString(sum[:]), extra)
	path := filepath.Join(dir, "privguard.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// start runs a replica and waits until it serves.
func (env *replicaEnv) start(t *testing.T, name, dsn, extra string) *replica {
	t.Helper()
	r := &replica{name: name, logs: &syncBuffer{}, exited: make(chan struct{})}
	r.cmd = exec.Command(env.bin, "serve", "--config", env.config(t, name, dsn, extra))
	r.cmd.Stderr = r.logs
	out, err := r.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.cmd.Wait(); close(r.exited) }()
	t.Cleanup(func() { r.kill() })
	lines := bufio.NewScanner(out)
	found := make(chan string, 1)
	go func() {
		for lines.Scan() {
			if l := lines.Text(); strings.Contains(l, "admin API on http://") {
				found <- strings.TrimSpace(l[strings.Index(l, "http://"):])
			}
		}
	}()
	select {
	case r.url = <-found:
	case <-r.exited:
		t.Fatalf("replica %s exited before serving:\n%s", name, r.logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("replica %s did not serve within 30s:\n%s", name, r.logs.String())
	}
	return r
}

// kill ends the replica with SIGKILL (no shutdown, no snapshot, no lease release).
func (r *replica) kill() {
	if r.cmd.Process != nil {
		r.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-r.exited
}

// call sends an authenticated JSON request to the replica.
func (env *replicaEnv) call(r *replica, method, path, body string) (int, map[string]any, error) {
	req, err := http.NewRequest(method, r.url+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+env.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := replicaClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out, nil
}

var replicaClient = &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 128}}

const replicaNotice = `{"id":"marketing","version":1,"language":"en","text":"We send offers by SMS.","purposes":["marketing"],
	"controller":{"name":"Example","contact":"privacy@example.com"},"retention":"13 months","rights_channels":["https://example.com/p"]}`

func replicaGrant(subject string) string {
	return fmt.Sprintf(`{"subject":%q,"purpose":"marketing.communications.sms","action":"grant","regime":"pipl",
		"notice":{"id":"marketing","version":1,"language":"en"},"channel":"app","method":"explicit",
		"evidence":{"user_agent":"test"}}`, subject)
}

func replicaWithdraw(subject string) string {
	return fmt.Sprintf(`{"subject":%q,"purpose":"marketing.communications.sms","action":"withdraw","channel":"app","method":"explicit"}`, subject)
}

// smsState returns the state of subject's SMS marketing consent as replica r sees it
// ("" if none), or the HTTP status when it does not answer 200.
func (env *replicaEnv) smsState(r *replica, subject string) (string, int, error) {
	code, body, err := env.call(r, "GET", "/v1/subjects/"+subject+"/consents", "")
	if err != nil || code != http.StatusOK {
		return "", code, err
	}
	ps, _ := body["purposes"].([]any)
	for _, p := range ps {
		m, _ := p.(map[string]any)
		if m["purpose"] == "marketing.communications.sms" {
			s, _ := m["state"].(string)
			return s, code, nil
		}
	}
	return "", code, nil
}

// verifyStore runs `privguard consent verify --store` and returns its output.
func (env *replicaEnv) verifyStore(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(env.bin, "consent", "verify", "--store", env.dsn, "--schema", env.schema).CombinedOutput()
	if err != nil {
		t.Fatalf("consent verify --store: %v\n%s", err, out)
	}
	return string(out)
}

// TestReplicasWithdrawalReachesEveryReplica runs three serve processes on one PostgreSQL
// store. Grants are written through all three at once; then each subject's withdrawal,
// recorded through one replica, is enforced by the next without anything written to it,
// well within the staleness bound; and the store holds one chain, with every acknowledged
// record, that `consent verify --store` verifies.
//
// proves CON-08
// proves CON-05
func TestReplicasWithdrawalReachesEveryReplica(t *testing.T) {
	env := newReplicaEnv(t)
	var rs []*replica
	for i := range 3 {
		rs = append(rs, env.start(t, fmt.Sprintf("r%d", i), env.dsn, ""))
	}
	if code, body, err := env.call(rs[0], "POST", "/v1/notices", replicaNotice); err != nil || code != http.StatusCreated {
		t.Fatalf("notice: %d %v %v", code, body, err)
	}
	const subjects = 60
	var wg sync.WaitGroup
	var acked atomic.Int64
	for i := range subjects {
		wg.Go(func() {
			// Through replica i%3; the notice was registered through replica 0 a moment ago.
			code, body, err := env.call(rs[i%3], "POST", "/v1/consents", replicaGrant(fmt.Sprintf("cust-%d", i)))
			if err != nil || code != http.StatusCreated {
				t.Errorf("grant %d through %s: %d %v %v", i, rs[i%3].name, code, body, err)
				return
			}
			acked.Add(1)
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	var worst time.Duration
	for i := range subjects {
		s := fmt.Sprintf("cust-%d", i)
		a, b := rs[i%3], rs[(i+1)%3]
		if st, _, err := env.smsState(b, s); err != nil || st != "given" {
			// The grant itself must have reached b too.
			deadline := time.Now().Add(2 * time.Second)
			for st != "given" && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
				st, _, err = env.smsState(b, s)
			}
			if st != "given" {
				t.Fatalf("%s on %s: state %q (%v), want given", s, b.name, st, err)
			}
		}
		if code, body, err := env.call(a, "POST", "/v1/consents", replicaWithdraw(s)); err != nil || code != http.StatusCreated {
			t.Fatalf("withdraw %s through %s: %d %v %v", s, a.name, code, body, err)
		}
		acked.Add(1)
		start := time.Now()
		for {
			st, code, err := env.smsState(b, s)
			if err == nil && code == http.StatusOK && st == "withdrawn" {
				break
			}
			if time.Since(start) > 2*time.Second {
				t.Fatalf("%s withdrawn through %s is %q on %s after 2s (status %d, %v)", s, a.name, st, b.name, code, err)
			}
			time.Sleep(time.Millisecond)
		}
		worst = max(worst, time.Since(start))
	}
	t.Logf("slowest withdrawal to reach another replica: %v", worst)
	out := env.verifyStore(t)
	if want := fmt.Sprintf("OK: %d records", acked.Load()); !strings.Contains(out, want) {
		t.Fatalf("consent verify --store:\n%s\nwant %q", out, want)
	}
}
