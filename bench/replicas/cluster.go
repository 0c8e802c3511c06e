package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// env is what every replica of one bench run shares: the binary, the PostgreSQL server,
// the master key file and the admin token, and the work directory under which each replica
// has its data directory. It owns every process and schema it creates: cleanup ends and
// drops them all, whatever state the run is in.
type env struct {
	bin, dsn, work, master, token string
	pprofDir                      string

	mu       sync.Mutex
	replicas []*replica
	schemas  []string
	nextPort int
}

// newEnv creates the master key and the token. work must exist.
func newEnv(ctx context.Context, bin, dsn, work string) (*env, error) {
	e := &env{bin: bin, dsn: dsn, work: work, master: filepath.Join(work, "master.keyset.json"), token: rand.Text()}
	out, err := exec.CommandContext(ctx, bin, "keys", "init", "--out", e.master).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("privguard keys init --out: %w\n%s", err, out)
	}
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL (-dsn; /work/shared/services.sh starts it): %w", err)
	}
	c.Close(ctx)
	return e, nil
}

// newSchema names a schema for one measurement; the replicas create and migrate it, and
// cleanup drops it.
func (e *env) newSchema(what string) string {
	s := fmt.Sprintf("bench_replicas_%s_%s", what, strings.ToLower(rand.Text()[:8]))
	e.mu.Lock()
	e.schemas = append(e.schemas, s)
	e.mu.Unlock()
	return s
}

// dropSchema drops a schema now (it is also dropped by cleanup if this fails).
func (e *env) dropSchema(schema string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, e.dsn)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, s := range e.schemas {
		if s == schema {
			e.schemas = append(e.schemas[:i], e.schemas[i+1:]...)
			break
		}
	}
	return nil
}

// cleanup kills every replica still running and drops every schema created. It is safe to
// call more than once.
func (e *env) cleanup() {
	e.mu.Lock()
	rs := e.replicas
	e.replicas = nil
	schemas := append([]string(nil), e.schemas...)
	e.mu.Unlock()
	for _, r := range rs {
		r.kill()
	}
	for _, s := range schemas {
		if err := e.dropSchema(s); err != nil {
			fmt.Fprintf(os.Stderr, "replicas: could not drop schema %s (drop it by hand): %v\n", s, err)
		}
	}
}

// replicaSpec says how to start one replica.
type replicaSpec struct {
	name   string
	schema string // "" for the embedded bbolt store in its data directory
	// pprofPort, if not zero, is passed as PRIVGUARD_PPROF_ADDR (a binary built with -tags pprof serves it).
	pprofPort int
}

// replica is one running `privguard serve`.
type replica struct {
	name, url, dir string
	pprof          string // host:port of net/http/pprof, if asked for
	cmd            *exec.Cmd
	started        time.Time // just before the process was started
	exited         chan struct{}
	log            *os.File
}

// freePort returns a loopback port that was free a moment ago. The admin API is given a
// fixed port rather than :0 so that /readyz can be polled from the moment the process
// starts (serve prints its address only once the ledger is open).
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// config writes the replica's configuration and returns its path.
func (e *env) config(spec replicaSpec, dir, admin string) (string, error) {
	sum := sha256.Sum256([]byte(e.token))
	cfg := fmt.Sprintf("data: %s\nadmin_listen: %s\nreplica: %s\nvault:\n  master_key_file: %s\nadmin:\n  tokens: [{name: bench, sha256: %s, roles: [admin]}]\n",
		dir, admin, spec.name, e.master, hex.EncodeToString(sum[:]))
	if spec.schema != "" {
		cfg += fmt.Sprintf("store:\n  postgres: {dsn: %q, schema: %s}\n", e.dsn, spec.schema)
	}
	path := filepath.Join(dir, "privguard.yaml")
	return path, os.WriteFile(path, []byte(cfg), 0o600)
}

// start starts a replica and returns once the process runs; wait for it with ready.
func (e *env) start(spec replicaSpec) (*replica, error) {
	dir, err := os.MkdirTemp(e.work, spec.name+"-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	admin := fmt.Sprintf("127.0.0.1:%d", port)
	path, err := e.config(spec, dir, admin)
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		return nil, err
	}
	r := &replica{name: spec.name, url: "http://" + admin, dir: dir, exited: make(chan struct{}), log: logf}
	r.cmd = exec.Command(e.bin, "serve", "--config", path, "--log-level", "warn")
	r.cmd.Stdout, r.cmd.Stderr = nil, logf
	// A replica must not outlive the bench, even if the bench is killed.
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	r.cmd.Env = os.Environ()
	if spec.pprofPort != 0 {
		r.pprof = fmt.Sprintf("127.0.0.1:%d", spec.pprofPort)
		r.cmd.Env = append(r.cmd.Env, "PRIVGUARD_PPROF_ADDR="+r.pprof)
	}
	r.started = time.Now()
	if err := r.cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	go func() { r.cmd.Wait(); close(r.exited) }()
	e.mu.Lock()
	e.replicas = append(e.replicas, r)
	e.mu.Unlock()
	return r, nil
}

// startReady starts replicas and waits until all answer /readyz 200.
func (e *env) startReady(ctx context.Context, specs ...replicaSpec) ([]*replica, error) {
	rs := make([]*replica, len(specs))
	for i, s := range specs {
		r, err := e.start(s)
		if err != nil {
			return nil, err
		}
		rs[i] = r
	}
	for _, r := range rs {
		if _, err := e.ready(ctx, r, 2*time.Minute); err != nil {
			return nil, err
		}
	}
	return rs, nil
}

// ready polls the replica's /readyz until it answers 200 and returns when it did, as
// measured from the process start. Connection errors (not listening yet) are retried at
// once; 503 answers (listening, not ready) too.
func (e *env) ready(ctx context.Context, r *replica, timeout time.Duration) (time.Duration, error) {
	c := newConn(r.url)
	defer c.close()
	req := getRequest("/readyz", e.token)
	deadline := time.Now().Add(timeout)
	for {
		status, _, err := c.do(req)
		if err == nil && status == 200 {
			return time.Since(r.started), nil
		}
		select {
		case <-r.exited:
			return 0, fmt.Errorf("replica %s exited before it was ready:\n%s", r.name, r.logTail())
		case <-ctx.Done():
			return 0, ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("replica %s not ready after %s (last: %d %v):\n%s", r.name, timeout, status, err, r.logTail())
		}
		if err != nil {
			time.Sleep(500 * time.Microsecond)
		} else {
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// logTail is the end of the replica's log (privguard logs no personal data; the bench's
// subjects are generated anyway).
func (r *replica) logTail() string {
	b, _ := os.ReadFile(r.log.Name())
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-15):], "\n")
}

// stop ends the replica gracefully (SIGTERM: the ledger writes its snapshot at close) and
// waits up to a minute before killing it.
func (r *replica) stop() error {
	if r.cmd.Process == nil {
		return nil
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(time.Minute):
		r.kill()
		return fmt.Errorf("replica %s did not stop within a minute of SIGTERM; killed", r.name)
	}
	r.log.Close()
	if st := r.cmd.ProcessState; st != nil && !st.Success() {
		return fmt.Errorf("replica %s: %s:\n%s", r.name, st, r.logTail())
	}
	return nil
}

// kill ends the replica with SIGKILL (no snapshot) and waits for it.
func (r *replica) kill() {
	select {
	case <-r.exited:
		return
	default:
	}
	if r.cmd.Process != nil {
		r.cmd.Process.Kill()
	}
	<-r.exited
	r.log.Close()
}

// stopAll stops replicas gracefully, in parallel.
func stopAll(rs []*replica) error {
	errs := make([]error, len(rs))
	var wg sync.WaitGroup
	for i, r := range rs {
		wg.Go(func() { errs[i] = r.stop() })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// rssBytes is the process's resident set (VmRSS).
func rssBytes(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(rest), "%d", &kb)
			return kb << 10, nil
		}
	}
	return 0, errors.New("no VmRSS")
}
