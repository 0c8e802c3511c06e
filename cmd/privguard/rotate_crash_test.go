package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
)

// TestRotateKEKChild is the child process of TestRotateKEKSurvivesKill9.
func TestRotateKEKChild(t *testing.T) {
	dir := os.Getenv("PRIVGUARD_ROTATE_DIR")
	if dir == "" {
		t.Skip("child of TestRotateKEKSurvivesKill9")
	}
	run(context.Background(), []string{"keys", "rotate-kek", "--data", dir}, os.Getenv, io.Discard, io.Discard)
}

// TestRotateKEKSurvivesKill9 kills a KEK rotation at random moments: after every kill every
// subject key still opens, and a final run completes the rotation.
func TestRotateKEKSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes")
	}
	dir := t.TempDir()
	const n = 6000
	log := slog.New(slog.DiscardHandler)
	seal := func() map[privguard.SubjectID][]byte {
		db, err := boltstore.Open(filepath.Join(dir, dataFile), boltstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		v, err := openVault(context.Background(), dir, db, true, log)
		if err != nil {
			t.Fatal(err)
		}
		cts := map[privguard.SubjectID][]byte{}
		for i := range n {
			s := privguard.SubjectID(fmt.Sprintf("s-%d", i))
			ct, err := v.Seal(context.Background(), s, []byte("v"+string(s)), nil)
			if err != nil {
				t.Fatal(err)
			}
			cts[s] = ct
		}
		return cts
	}
	cts := seal()
	checkAll := func(round int) {
		db, err := boltstore.Open(filepath.Join(dir, dataFile), boltstore.Options{})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		defer db.Close()
		v, err := openVault(context.Background(), dir, db, false, log)
		if err != nil {
			t.Fatalf("round %d: open vault: %v", round, err)
		}
		for s, ct := range cts {
			if pt, err := v.Open(context.Background(), s, ct, nil); err != nil || !bytes.Equal(pt, []byte("v"+string(s))) {
				t.Fatalf("round %d: %s does not open: %v", round, s, err)
			}
		}
	}
	// Kill rotate-kek runs at random moments until three were interrupted mid-rotation (the
	// next key file is there after the kill) or one completed; then finish in process.
	rounds, interrupted := 0, 0
	for ; rounds < 40 && interrupted < 3; rounds++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRotateKEKChild$")
		cmd.Env = append(os.Environ(), "PRIVGUARD_ROTATE_DIR="+dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(20+rand.IntN(150)) * time.Millisecond)
		cmd.Process.Kill()
		err := cmd.Wait()
		if _, statErr := os.Stat(filepath.Join(dir, nextKeyFile)); statErr == nil && err != nil {
			interrupted++
		}
		checkAll(rounds)
	}
	if interrupted == 0 {
		t.Fatalf("no rotation was interrupted mid-way in %d rounds: the test proved nothing", rounds)
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"keys", "rotate-kek", "--data", dir}, os.Getenv, &out, &errb); code != 0 {
		t.Fatalf("resuming rotate-kek = %d %s %s", code, out.String(), errb.String())
	}
	if _, err := os.Stat(filepath.Join(dir, nextKeyFile)); err == nil {
		t.Fatal("the rotation never completed")
	}
	checkAll(rounds + 1)
	t.Logf("%d rounds, %d interrupted mid-rotation, then completed", rounds+1, interrupted)
}
