package consent_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
)

// Environment of the crash child.
const (
	crashDirEnv   = "PRIVGUARD_CRASH_DIR"   // directory of the ledger file
	crashRoundEnv = "PRIVGUARD_CRASH_ROUND" // round number, to make subjects unique
)

// crashPurposes are the purposes the crash child grants, in turn.
var crashPurposes = []privguard.Purpose{"marketing.communications.sms", "marketing.communications.email",
	"analytics.ab_testing", "marketing.profiling"}

// openFile opens the ledger file in dir with boltstore.Open and consent.Open. The caller
// closes the ledger, then the file.
func openFile(dir string) (*consent.Ledger, *boltstore.DB, error) {
	db, err := boltstore.Open(filepath.Join(dir, "privguard.db"), boltstore.Options{})
	if err != nil {
		return nil, nil, err
	}
	l, err := consent.Open(context.Background(), consent.Config{Store: db.Consent()})
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return l, db, nil
}

// TestCrashChild is the process TestCrashKeepsAcknowledgedWrites kills. It appends grants
// from 8 goroutines as fast as it can and prints "ACK <id> <subject> <purpose>" for each
// only after Append returned it, until it is killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("run only as the child of TestCrashKeepsAcknowledgedWrites")
	}
	round := os.Getenv(crashRoundEnv)
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		// os.Stdout is unbuffered: one write per line, which reaches the pipe at once.
		fmt.Fprintf(os.Stdout, format+"\n", args...)
	}
	l, db, err := openFile(dir)
	if err != nil {
		say("ERR open: %v", err)
		t.Fatalf("open: %v", err)
	}
	defer db.Close()
	defer l.Close()
	if _, _, err := l.RegisterNotice(ctx, consenttest.MarketingNotice(1, "zh-CN")); err != nil {
		say("ERR RegisterNotice: %v", err)
		t.Fatalf("RegisterNotice: %v", err)
	}
	// If the parent dies without killing this process, stop on our own.
	deadline := time.Now().Add(20 * time.Second)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				subject := privguard.SubjectID(fmt.Sprintf("r%s-g%d-%06d", round, g, i))
				purpose := crashPurposes[(g+i)%len(crashPurposes)]
				rec, _, err := l.Append(ctx, grant(subject, purpose))
				if err != nil {
					say("ERR Append(%s, %s): %v", subject, purpose, err)
					t.Errorf("Append(%s, %s): %v", subject, purpose, err)
					return
				}
				say("ACK %s %s %s", rec.ID, subject, purpose)
			}
		})
	}
	wg.Wait()
}

// crashAck is a write the crash child acknowledged.
type crashAck struct {
	id      string
	subject privguard.SubjectID
	purpose privguard.Purpose
}

// TestCrashKeepsAcknowledgedWrites kills a process that is appending to the ledger with
// SIGKILL at a random moment, 20 times over the same file, and checks after each kill that
// the ledger opens, verifies without a break and holds every write the process acknowledged
// before it died, in every round so far, with the state Check reports.
//
// It proves the durability of acknowledged writes: Append returns only once its record is
// committed, so a crash loses at most writes that were never acknowledged, and never leaves
// the file in a state that does not open or verify. (A SIGKILL leaves the page cache intact;
// this does not simulate power loss.)
func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test in -short mode")
	}
	const rounds = 20
	dir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed>>32))
	var acked []crashAck
	seen := map[string]bool{}
	for round := 1; round <= rounds; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashRoundEnv+"="+strconv.Itoa(round))
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatalf("round %d: start child: %v", round, err)
		}
		delay := 50*time.Millisecond + time.Duration(rng.Int64N(int64(350*time.Millisecond)))
		time.Sleep(delay)
		if err := cmd.Process.Kill(); err != nil { // SIGKILL
			t.Fatalf("round %d: kill: %v", round, err)
		}
		err := cmd.Wait()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child ended with %v; want it killed by SIGKILL\nstdout (tail):\n%s\nstderr:\n%s",
				round, err, tail(stdout.String(), 2000), stderr.String())
		}

		// Only complete lines: the child may have died in the middle of a line.
		out := stdout.String()
		out = out[:strings.LastIndexByte(out, '\n')+1]
		n := 0
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			switch {
			case len(f) > 0 && f[0] == "ERR":
				t.Fatalf("round %d: child: %s", round, sc.Text())
			case len(f) == 4 && f[0] == "ACK":
				if seen[f[1]] {
					t.Fatalf("round %d: record id %s acknowledged twice", round, f[1])
				}
				seen[f[1]] = true
				acked = append(acked, crashAck{id: f[1], subject: privguard.SubjectID(f[2]), purpose: privguard.Purpose(f[3])})
				n++
			}
		}
		checkAfterCrash(t, dir, round, acked)
		t.Logf("round %d: killed after %v, %d writes acknowledged (%d in all)", round, delay.Round(time.Millisecond), n, len(acked))
	}
	if len(acked) == 0 {
		t.Fatal("no write was acknowledged in any round; the test proved nothing")
	}
}

// checkAfterCrash opens the ledger in dir after a crash and checks it holds every
// acknowledged write.
func checkAfterCrash(t *testing.T, dir string, round int, acked []crashAck) {
	t.Helper()
	l, db, err := openFile(dir)
	if err != nil {
		t.Fatalf("round %d: open after crash: %v", round, err)
	}
	defer db.Close()
	defer l.Close()
	rep, err := consent.Verify(ctx, db.Consent())
	if err != nil {
		t.Fatalf("round %d: Verify() error = %v", round, err)
	}
	if rep.Break != nil {
		t.Fatalf("round %d: Verify() = %v; want no break", round, rep.Break)
	}
	if got := l.Stats().Records; got != rep.Records || rep.Records < uint64(len(acked)) {
		t.Fatalf("round %d: Stats().Records = %d, Verify().Records = %d; want equal and at least the %d acknowledged",
			round, got, rep.Records, len(acked))
	}
	for _, a := range acked {
		rec, err := l.Record(ctx, a.id)
		if err != nil {
			t.Fatalf("round %d: Record(%s) error = %v; want the acknowledged grant of %s", round, a.id, err, a.subject)
		}
		if rec.Subject != a.subject || rec.Purpose != a.purpose || rec.Action != consent.ActionGrant {
			t.Fatalf("round %d: Record(%s) = %s %s %s; want grant %s %s", round, a.id, rec.Action, rec.Subject, rec.Purpose,
				a.subject, a.purpose)
		}
		st, err := l.Check(ctx, a.subject, a.purpose)
		if err != nil || !st.Allowed {
			t.Fatalf("round %d: Check(%s, %s) = %+v, %v; want allowed", round, a.subject, a.purpose, st, err)
		}
	}
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
