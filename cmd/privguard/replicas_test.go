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
	"net/http/httptest"
	"net/url"
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
// proxy in front of it), with storeExtra lines under store:, and returns its path.
func (env *replicaEnv) config(t *testing.T, name, dsn, storeExtra, topExtra string) string {
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
%svault:
  master_key_file: %s
admin:
  tokens: [{name: test, sha256: %s, roles: [admin]}]
%s`, dir, name, dsn, env.schema, storeExtra, env.master, hex.EncodeToString(sum[:]), topExtra)
	path := filepath.Join(dir, "privguard.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// start runs a replica and waits until it serves.
func (env *replicaEnv) start(t *testing.T, name, dsn, storeExtra string) *replica {
	t.Helper()
	return env.startWith(t, name, dsn, storeExtra, "")
}

// startWith is start with topExtra lines at the top level of the configuration.
func (env *replicaEnv) startWith(t *testing.T, name, dsn, storeExtra, topExtra string) *replica {
	t.Helper()
	r := &replica{name: name, logs: &syncBuffer{}, exited: make(chan struct{})}
	r.cmd = exec.Command(env.bin, "serve", "--config", env.config(t, name, dsn, storeExtra, topExtra))
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

// ackLog collects the records replicas acknowledged.
type ackLog struct {
	mu  sync.Mutex
	ids []string
}

func (a *ackLog) add(id string) { a.mu.Lock(); a.ids = append(a.ids, id); a.mu.Unlock() }

// grantLoad writes grants to new subjects through r until stop is closed; it counts every
// acknowledged record in acks, and calls bad for an answer that is neither 201 nor (if
// outageOK) a 503 or a broken connection.
func (env *replicaEnv) grantLoad(r *replica, prefix string, stop <-chan struct{}, acks *ackLog, bad func(string)) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		code, body, err := env.call(r, "POST", "/v1/consents", replicaGrant(fmt.Sprintf("%s-%d", prefix, i)))
		switch {
		case err == nil && code == http.StatusCreated:
			id, _ := body["id"].(string)
			if id == "" {
				bad(fmt.Sprintf("201 without a record id: %v", body))
				return
			}
			acks.add(id)
		default:
			bad(fmt.Sprintf("%d %v %v", code, body, err))
			return
		}
	}
}

// leases returns how many requests each replica holds a live lease on.
func (env *replicaEnv) leases(t *testing.T) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, env.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, `SELECT lease_holder, count(*) FROM `+pgx.Identifier{env.schema, "dsar_requests"}.Sanitize()+
		` WHERE lease_until > now() GROUP BY lease_holder`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var h string
		var n int
		if err := rows.Scan(&h, &n); err != nil {
			t.Fatal(err)
		}
		out[h] = n
	}
	return out
}

// missingIDs returns which of ids the store does not hold.
func (env *replicaEnv) missingIDs(t *testing.T, ids []string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, env.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	raw := make([][]byte, len(ids))
	for i, id := range ids {
		raw[i] = []byte(id)
	}
	rows, err := c.Query(ctx, `SELECT convert_from(x, 'UTF8') FROM unnest($1::bytea[]) AS x
		WHERE NOT EXISTS (SELECT 1 FROM `+pgx.Identifier{env.schema, "consent_records"}.Sanitize()+` r WHERE r.id = x)`, raw)
	if err != nil {
		t.Fatal(err)
	}
	missing, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return missing
}

// TestReplicasKilledDuringWrites kills one of three replicas with SIGKILL while all three
// take writes, 20 times (a different one each round, restarted after): the survivors
// answer every write throughout, every record any replica acknowledged is in the store,
// and the chain verifies.
//
// proves CON-05
func TestReplicasKilledDuringWrites(t *testing.T) {
	env := newReplicaEnv(t)
	rs := make([]*replica, 3)
	for i := range rs {
		rs[i] = env.start(t, fmt.Sprintf("r%d", i), env.dsn, "")
	}
	if code, body, err := env.call(rs[0], "POST", "/v1/notices", replicaNotice); err != nil || code != http.StatusCreated {
		t.Fatalf("notice: %d %v %v", code, body, err)
	}
	var acks ackLog
	const rounds, writers = 20, 4
	for round := range rounds {
		victim := round % 3
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for i, r := range rs {
			for w := range writers {
				wg.Go(func() {
					env.grantLoad(r, fmt.Sprintf("k%02d-%s-%d", round, r.name, w), stop, &acks, func(what string) {
						if i != victim {
							t.Errorf("round %d: survivor %s answered a write with %s", round, r.name, what)
						}
					})
				})
			}
		}
		time.Sleep(150 * time.Millisecond)
		rs[victim].kill()
		time.Sleep(150 * time.Millisecond)
		close(stop)
		wg.Wait()
		if t.Failed() {
			t.Fatalf("round %d; the killed replica's log:\n%s", round, rs[victim].logs.String())
		}
		rs[victim] = env.start(t, rs[victim].name, env.dsn, "")
	}
	if missing := env.missingIDs(t, acks.ids); len(missing) > 0 {
		t.Fatalf("%d of %d acknowledged records are not in the store, such as %s", len(missing), len(acks.ids), missing[0])
	}
	out := env.verifyStore(t)
	if !strings.HasPrefix(out, "OK: ") {
		t.Fatalf("consent verify --store:\n%s", out)
	}
	t.Logf("%d acknowledged records over %d kills; %s", len(acks.ids), rounds, strings.SplitN(out, "\n", 2)[0])
}

// TestReplicasStoreOutage cuts the PostgreSQL store away from three replicas in the middle
// of a write load (a TCP proxy in front of it) and restores it. No acknowledged write is
// lost; while the store is away, writes are refused, and once a replica could not confirm
// for max_staleness that it is current it decides nothing (consent reads 503, /readyz 503
// saying why) and never answers from older state; when the store is back, every replica
// serves again without a restart.
func TestReplicasStoreOutage(t *testing.T) {
	env := newReplicaEnv(t)
	u, err := url.Parse(env.dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newOutageProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	const stale = time.Second
	rs := make([]*replica, 3)
	for i := range rs {
		rs[i] = env.start(t, fmt.Sprintf("r%d", i), u.String(), "  max_staleness: 1s\n")
	}
	if code, body, err := env.call(rs[0], "POST", "/v1/notices", replicaNotice); err != nil || code != http.StatusCreated {
		t.Fatalf("notice: %d %v %v", code, body, err)
	}
	if code, _, err := env.call(rs[0], "POST", "/v1/consents", replicaGrant("probe")); err != nil || code != http.StatusCreated {
		t.Fatalf("probe grant: %d %v", code, err)
	}
	var acks ackLog
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, r := range rs {
		for w := range 4 {
			wg.Go(func() {
				for k := 0; ; k++ {
					env.grantLoad(r, fmt.Sprintf("o-%s-%d-%d", r.name, w, k), stop, &acks, func(string) { time.Sleep(20 * time.Millisecond) })
					select {
					case <-stop:
						return
					default:
					}
				}
			})
		}
	}
	// Readers: every answer about the probe subject, with the time it came back.
	type answer struct {
		at   time.Time
		code int
	}
	var amu sync.Mutex
	answers := map[string][]answer{}
	for _, r := range rs {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, code, _ := env.smsState(r, "probe")
				amu.Lock()
				answers[r.name] = append(answers[r.name], answer{time.Now(), code})
				amu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	cut := time.Now()
	proxy.set(proxyCut)
	time.Sleep(stale + 700*time.Millisecond)
	for _, r := range rs {
		code, body, err := env.call(r, "GET", "/readyz", "")
		if err != nil || code != http.StatusServiceUnavailable || !strings.Contains(fmt.Sprint(body["checks"]), "stale") {
			t.Errorf("%s /readyz during the outage: %d %v %v; want 503 saying it is stale", r.name, code, body, err)
		}
		if body["replica"] != r.name {
			t.Errorf("%s /readyz names replica %v", r.name, body["replica"])
		}
	}
	before := len(acks.ids)
	time.Sleep(300 * time.Millisecond)
	restored := time.Now()
	proxy.set(proxyUp)
	for _, r := range rs {
		deadline := time.Now().Add(15 * time.Second)
		for {
			code, _, err := env.call(r, "GET", "/readyz", "")
			if err == nil && code == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not ready 15s after the store came back; log:\n%s", r.name, r.logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Ready, each replica answers consent reads again: wait (on a loaded machine a read in
	// flight when the store came back may still answer 503) until every replica's latest
	// answer is 200, at least 500 ms and at most 15 s.
	time.Sleep(500 * time.Millisecond)
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		amu.Lock()
		recovered := true
		for _, as := range answers {
			recovered = recovered && len(as) > 0 && as[len(as)-1].code == http.StatusOK
		}
		amu.Unlock()
		if recovered {
			break
		}
	}
	close(stop)
	wg.Wait()
	if len(acks.ids) <= before {
		t.Errorf("no write acknowledged after the store came back")
	}
	amu.Lock()
	for name, as := range answers {
		closed := 0
		for _, a := range as {
			if a.code == http.StatusServiceUnavailable {
				closed++
			}
		}
		if closed == 0 {
			t.Errorf("%s never failed closed during the outage (%d answers)", name, len(as))
		}
		for _, a := range as {
			if a.code == http.StatusOK && a.at.After(cut.Add(stale+250*time.Millisecond)) && a.at.Before(restored) {
				t.Errorf("%s answered a consent read from memory %v after the store went away (max_staleness %v)", name, a.at.Sub(cut), stale)
				break
			}
		}
		if last := as[len(as)-1]; last.code != http.StatusOK {
			t.Errorf("%s still answers %d after the store came back", name, last.code)
		}
	}
	amu.Unlock()
	if missing := env.missingIDs(t, acks.ids); len(missing) > 0 {
		t.Fatalf("%d of %d acknowledged records are not in the store, such as %s", len(missing), len(acks.ids), missing[0])
	}
	if out := env.verifyStore(t); !strings.HasPrefix(out, "OK: ") {
		t.Fatalf("consent verify --store:\n%s", out)
	}
}

// TestReplicasShredReachesEveryReplica: a value sealed through one replica opens through
// the others (which then hold the subject's key in their caches); once the subject's keys
// are shredded through one replica, opening the value fails on every replica within the
// staleness bound, cache or not.
//
// proves SEC-06
func TestReplicasShredReachesEveryReplica(t *testing.T) {
	env := newReplicaEnv(t)
	rs := make([]*replica, 3)
	for i := range rs {
		rs[i] = env.start(t, fmt.Sprintf("r%d", i), env.dsn, "")
	}
	code, body, err := env.call(rs[0], "POST", "/v1/vault/seal", `{"subject":"cust-9","plaintext":"MTM4MDAxMzgwMDA=","context":"phone"}`)
	if err != nil || code != http.StatusOK {
		t.Fatalf("seal: %d %v %v", code, body, err)
	}
	open := fmt.Sprintf(`{"subject":"cust-9","ciphertext":%q,"context":"phone"}`, body["ciphertext"])
	for _, r := range rs {
		if code, body, err := env.call(r, "POST", "/v1/vault/open", open); err != nil || code != http.StatusOK || body["plaintext"] != "MTM4MDAxMzgwMDA=" {
			t.Fatalf("open through %s: %d %v %v", r.name, code, body, err)
		}
	}
	if code, body, err := env.call(rs[1], "DELETE", "/v1/vault/subjects/cust-9", ""); err != nil || code >= 300 {
		t.Fatalf("shred through r1: %d %v %v", code, body, err)
	}
	start := time.Now()
	for _, r := range rs {
		for {
			code, _, err := env.call(r, "POST", "/v1/vault/open", open)
			if err == nil && code != http.StatusOK {
				if code >= 500 {
					t.Fatalf("open through %s after the shred: %d, want a refusal that says shredded", r.name, code)
				}
				break
			}
			if time.Since(start) > 5*time.Second { // the default max_staleness
				t.Fatalf("the shredded subject's value still opens through %s after %v", r.name, time.Since(start))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	t.Logf("the shred reached every replica within %v", time.Since(start))
}

// countingStore is a webhook store (connector/webhook's protocol) that counts the erasure
// calls per subject, notices two at once for one subject, and takes delay over each.
type countingStore struct {
	delay      time.Duration
	mu         sync.Mutex
	calls      map[string]int
	inFlight   map[string]bool
	concurrent []string
	total      atomic.Int64
}

func (s *countingStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var call struct {
		Op      string `json:"op"`
		Subject string `json:"subject"`
	}
	if err := json.NewDecoder(r.Body).Decode(&call); err != nil {
		http.Error(w, "bad call", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	if s.inFlight[call.Subject] {
		s.concurrent = append(s.concurrent, call.Subject)
	}
	s.inFlight[call.Subject] = true
	s.mu.Unlock()
	time.Sleep(s.delay)
	s.mu.Lock()
	delete(s.inFlight, call.Subject)
	if call.Op == "erase" {
		s.calls[call.Subject]++
	}
	s.mu.Unlock()
	s.total.Add(1)
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"status":"done","items":1}`))
}

// TestReplicasWorkRequestsOnce: deletions the controller starts itself (a retention
// trigger, DSR-09) for 150 subjects, submitted through one replica, are worked by all
// three, 16 at a time each; the replica holding the most is killed with SIGKILL. The others
// take its requests over when its leases lapse and complete every one; the store is never
// called for one subject by two replicas at once, and is asked to erase each subject once —
// again only for what the killed replica held (its work done but not yet written).
//
// proves DSR-09
func TestReplicasWorkRequestsOnce(t *testing.T) {
	env := newReplicaEnv(t)
	store := &countingStore{delay: 40 * time.Millisecond, calls: map[string]int{}, inFlight: map[string]bool{}}
	srv := httptest.NewServer(store)
	t.Cleanup(srv.Close)
	secret := filepath.Join(env.dir, "store.secret")
	if err := os.WriteFile(secret, []byte(strings.Repeat("s", 40)), 0o600); err != nil {
		t.Fatal(err)
	}
	dsarCfg := fmt.Sprintf("dsar:\n  lease_ttl: 3s\n  lease_batch: 16\n  stores:\n    - {name: crm, type: webhook, webhook: {url: %q, secret_file: %s}}\n", srv.URL, secret)
	rs := make([]*replica, 3)
	for i := range rs {
		rs[i] = env.startWith(t, fmt.Sprintf("r%d", i), env.dsn, "", dsarCfg)
	}
	const n = 150
	subjects := make([]string, n)
	for i := range subjects {
		subjects[i] = fmt.Sprintf("del-%03d", i)
	}
	body, _ := json.Marshal(map[string]any{"type": "deletion", "subjects": subjects, "trigger": "retention_expired"})
	code, out, err := env.call(rs[0], "POST", "/v1/requests/bulk", string(body))
	if err != nil || code >= 300 {
		t.Fatalf("bulk deletion: %d %v %v", code, out, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for store.total.Load() < n/5 {
		if time.Now().After(deadline) {
			t.Fatalf("the store saw %d calls in 20s", store.total.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The victim is the replica holding the most requests now.
	held := env.leases(t)
	victim := 0
	for i, r := range rs {
		if held[r.name] > held[rs[victim].name] {
			victim = i
		}
	}
	if held[rs[victim].name] == 0 {
		t.Fatalf("no replica holds a lease while the store is being called: %v", held)
	}
	rs[victim].kill()
	t.Logf("leases held when %s was killed: %v", rs[victim].name, held)
	survivor := rs[(victim+1)%3]
	deadline = time.Now().Add(60 * time.Second)
	for {
		done := 0
		store.mu.Lock()
		done = len(store.calls)
		store.mu.Unlock()
		if done == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d subjects erased after 60s; %s's log:\n%s", done, n, survivor.name, survivor.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Every request completed, through either survivor.
	deadline = time.Now().Add(30 * time.Second)
	for {
		code, page, err := env.call(survivor, "GET", "/v1/requests?state=completed&limit=1000", "")
		items, _ := page["requests"].([]any)
		if err == nil && code == http.StatusOK && len(items) == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("requests completed: %d (%d %v)", len(items), code, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	if len(store.concurrent) > 0 {
		t.Fatalf("the store was called for %v by two replicas at once", store.concurrent)
	}
	twice := 0
	for s, c := range store.calls {
		if c > 1 {
			twice++
			t.Logf("%s erased %d times (held by the killed replica)", s, c)
		}
	}
	// Done again: at most what the killed replica held (lease_batch), done but not written.
	if twice > 16 {
		t.Fatalf("%d subjects erased more than once; at most the killed replica's leased batch (16) may be", twice)
	}
}

// TestReplicasRefuseASharedDataDirectory: a second serve on the data directory of a running
// replica is refused (its decision log and outbox would interleave), although the store is
// shared.
func TestReplicasRefuseASharedDataDirectory(t *testing.T) {
	env := newReplicaEnv(t)
	env.start(t, "r0", env.dsn, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, env.bin, "serve", "--config", env.config(t, "r0", env.dsn, "", "")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "in use by another privguard serve") {
		t.Fatalf("a second serve on r0's data directory: %v\n%s", err, out)
	}
}
