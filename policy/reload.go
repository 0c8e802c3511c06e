package policy

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// DefaultWatchInterval is how often Watch looks at a policy directory.
const DefaultWatchInterval = 2 * time.Second

// LoadDir reads the Rego modules of dir (its *.rego files, tests excluded).
func LoadDir(dir string) (map[string]string, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.rego"))
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	out := map[string]string{}
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.rego") {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		}
		out[filepath.Base(p)] = string(b)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("policy: no .rego module in %s", dir)
	}
	return out, nil
}

// ReloadDir loads dir, runs its own Rego tests (if it has any) and, if they pass and the
// policy compiles, swaps it in (see [Engine.Reload]). A policy that fails its tests is
// rejected like one that does not compile: the previous policy keeps serving.
func (e *Engine) ReloadDir(ctx context.Context, dir string) error {
	modules, err := LoadDir(dir)
	if err == nil {
		err = testDir(ctx, dir)
	}
	if err != nil {
		e.mu.Lock()
		e.reloads++
		e.failures++
		e.lastErr = err
		e.mu.Unlock()
		e.log.Error("policy reload rejected; the previous policy keeps serving", "dir", dir, "err", err)
		return err
	}
	return e.Reload(ctx, modules)
}

// testDir runs the Rego tests of dir; no tests is not an error.
func testDir(ctx context.Context, dir string) error {
	tests, _ := filepath.Glob(filepath.Join(dir, "*_test.rego"))
	if len(tests) == 0 {
		return nil
	}
	results, err := RunTests(ctx, dir)
	if err != nil {
		return err
	}
	var failed []string
	for _, r := range results {
		if !r.Passed {
			failed = append(failed, r.Name)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("policy: %d of its own tests fail: %s", len(failed), strings.Join(failed, ", "))
	}
	return nil
}

// Watch reloads dir whenever its .rego or .json files change, until ctx ends. Every change
// goes through ReloadDir: a broken or failing policy is rejected and reported, and the
// previous one keeps serving.
func (e *Engine) Watch(ctx context.Context, dir string, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultWatchInterval
	}
	last, _ := fingerprintDir(dir)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fp, err := fingerprintDir(dir)
		if err != nil || fp == last {
			continue
		}
		last = fp
		_ = e.ReloadDir(ctx, dir) // logged and kept in Status
	}
}

// fingerprintDir hashes the names, sizes and modification times of dir's policy files.
func fingerprintDir(dir string) ([32]byte, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return [32]byte{}, err
	}
	h := sha256.New()
	names := []string{}
	for _, e := range entries {
		if n := e.Name(); strings.HasSuffix(n, ".rego") || strings.HasSuffix(n, ".json") {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		st, err := os.Stat(filepath.Join(dir, n))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return [32]byte{}, err
		}
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00", n, st.Size(), st.ModTime().UnixNano())
	}
	return [32]byte(h.Sum(nil)), nil
}
