package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/connector/redis"
	"github.com/privguard/privguard/dsar"
)

const (
	crashSubjects = 4000 // enough that a run takes longer than the kill delays
	// crashBatch is how many requests one Step takes together: their hooks run before the
	// batch's one transaction commits, so a kill re-runs at most one batch's hooks.
	crashBatch = 50
)

// crashEngine opens the engine of the kill -9 test: a Redis store, and an erasure hook that
// appends the subject to dir/erased.log.
func crashEngine(t *testing.T, dir, rdAddr string) (*dsar.Engine, func()) {
	t.Helper()
	db, err := boltstore.Open(filepath.Join(dir, dataFile), boltstore.Options{LockTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	cache, err := redis.New(redis.Config{Name: "cache", Addr: rdAddr, Keys: []string{"crash:profile:{subject}"}, SetMembers: []string{"crash:segment:*"}})
	if err != nil {
		t.Fatal(err)
	}
	log, err := os.OpenFile(filepath.Join(dir, "erased.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	e, err := dsar.New(dsar.Config{Store: db.DSAR(), Connectors: []dsar.Connector{cache}, Batch: crashBatch,
		OnErased: func(_ context.Context, s privguard.SubjectID) error {
			_, err := log.WriteString(string(s) + "\n") // a write(2): survives the kill of this process
			return err
		}})
	if err != nil {
		t.Fatal(err)
	}
	return e, func() { log.Close(); cache.Close(); db.Close() }
}

// TestDSARCrashChild is the child process of TestBulkErasureSurvivesKill9.
func TestDSARCrashChild(t *testing.T) {
	dir := os.Getenv("PRIVGUARD_DSAR_CRASH_DIR")
	if dir == "" {
		t.Skip("child of TestBulkErasureSurvivesKill9")
	}
	e, closeAll := crashEngine(t, dir, os.Getenv("PRIVGUARD_TEST_REDIS_ADDR"))
	defer closeAll()
	for {
		ran, err := e.Step(context.Background())
		if err != nil || ran == 0 {
			return
		}
	}
}

// TestBulkErasureSurvivesKill9 kills the engine with SIGKILL at random moments during a bulk
// erasure: on restart every request resumes; none is lost or duplicated, every subject is
// erased, nothing else is, and the erasure hook ran at most once more per request that was
// in flight at a kill (one batch of them: the batch commits in one transaction).
func TestBulkErasureSurvivesKill9(t *testing.T) {
	// Requests survive a crash and complete; the stores end up erased.
	rdAddr := os.Getenv("PRIVGUARD_TEST_REDIS_ADDR")
	if rdAddr == "" {
		t.Skip("PRIVGUARD_TEST_REDIS_ADDR is not set (CI sets it; see .ci/run)")
	}
	if testing.Short() {
		t.Skip("kills child processes")
	}
	ctx := context.Background()
	rd := goredis.NewClient(&goredis.Options{Addr: rdAddr})
	defer rd.Close()
	subjects := make([]string, crashSubjects)
	p := rd.Pipeline()
	for i := range subjects {
		subjects[i] = fmt.Sprintf("crash-%d", i)
		p.HSet(ctx, "crash:profile:"+subjects[i], "city", "Shanghai")
		p.SAdd(ctx, "crash:segment:all", subjects[i])
	}
	p.SAdd(ctx, "crash:segment:all", "keep-me")
	p.Set(ctx, "crash:profile:keep-me", "1", 0)
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	defer rd.Del(context.Background(), "crash:segment:all", "crash:profile:keep-me")

	dir := t.TempDir()
	e, closeAll := crashEngine(t, dir, rdAddr)
	for _, s := range subjects {
		if _, err := e.Submit(ctx, dsar.Request{Type: dsar.TypeDeletion, Subject: privguard.SubjectID(s), Regime: privguard.RegimePIPL,
			Identity: &dsar.Identity{Method: "operator"}}); err != nil {
			t.Fatal(err)
		}
	}
	closeAll()

	kills := 0
	for round := 0; round < 20 && kills < 4; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestDSARCrashChild$")
		cmd.Env = append(os.Environ(), "PRIVGUARD_DSAR_CRASH_DIR="+dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case <-exited:
		case <-time.After(time.Duration(30+rand.IntN(150)) * time.Millisecond):
			cmd.Process.Kill()
			<-exited
			kills++
		}
	}
	if kills == 0 {
		t.Fatal("no run was killed; the test proved nothing")
	}

	e, closeAll = crashEngine(t, dir, rdAddr)
	defer closeAll()
	for {
		ran, err := e.Step(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ran == 0 {
			break
		}
	}
	all, err := e.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[privguard.SubjectID]bool{}
	for _, r := range all {
		if r.State != dsar.StateCompleted {
			t.Errorf("%s: %s", r.Subject, r.State)
		}
		if seen[r.Subject] {
			t.Errorf("%s has two requests", r.Subject)
		}
		seen[r.Subject] = true
	}
	if len(all) != crashSubjects {
		t.Errorf("%d requests; want %d", len(all), crashSubjects)
	}
	left, _ := rd.Keys(ctx, "crash:profile:crash-*").Result()
	members, _ := rd.SMembers(ctx, "crash:segment:all").Result()
	if len(left) != 0 || len(members) != 1 || members[0] != "keep-me" {
		t.Errorf("left after the bulk erasure: %d profiles, segment %v", len(left), members)
	}
	if n, _ := rd.Exists(ctx, "crash:profile:keep-me").Result(); n != 1 {
		t.Error("a key of no request was erased")
	}
	b, _ := os.ReadFile(filepath.Join(dir, "erased.log"))
	hooks := map[string]int{}
	lines := strings.Fields(string(b))
	for _, s := range lines {
		hooks[s]++
	}
	if len(hooks) != crashSubjects {
		t.Errorf("the erasure hook ran for %d subjects; want %d", len(hooks), crashSubjects)
	}
	if extra := len(lines) - crashSubjects; extra > kills*crashBatch {
		t.Errorf("the hook ran %d extra times over %d kills; at most %d requests are in flight per kill", extra, kills, crashBatch)
	}
	for s, n := range hooks {
		if n > kills+1 {
			t.Errorf("the hook ran %d times for %s over %d kills", n, s, kills)
		}
	}
	t.Logf("%d kills; hook re-runs after a kill: %d", kills, len(lines)-crashSubjects)
}
