package policy_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/policy"
)

func writeModule(t *testing.T, dir, name, src string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

const denyAll = "package privguard\ndecision := {\"allow\": false, \"reasons\": [\"policy.closed\"], \"obligations\": []}\n"

func TestReloadSwapsAndRejects(t *testing.T) {
	dir := t.TempDir()
	m, err := policy.DefaultModules()
	if err != nil {
		t.Fatal(err)
	}
	for name, src := range m {
		writeModule(t, dir, filepath.Base(name), src)
	}
	e := newEngine(t, policy.Config{})
	if d, _ := e.Decide(ctx, sms()); !d.Allowed() {
		t.Fatal("default policy denies the consenting adult")
	}
	rev := e.Revision()

	// A policy that does not compile is rejected; the old one keeps serving.
	writeModule(t, dir, "privguard.rego", "package privguard\ndecision := {\n")
	if err := e.ReloadDir(ctx, dir); err == nil {
		t.Fatal("a broken policy was accepted")
	}
	if st := e.Status(); st.Revision != rev || st.LastError == nil || st.Failures != 1 {
		t.Errorf("after a broken reload: %+v; want the old revision and the error", st)
	}
	if d, _ := e.Decide(ctx, sms()); !d.Allowed() {
		t.Error("the old policy stopped serving after a rejected reload")
	}

	// A policy that fails its own tests is rejected too.
	writeModule(t, dir, "privguard.rego", denyAll)
	writeModule(t, dir, "privguard_test.rego", "package privguard_test\ntest_allows if data.privguard.decision.allow with input as {}\n")
	if err := e.ReloadDir(ctx, dir); err == nil || !strings.Contains(err.Error(), "tests fail") {
		t.Fatalf("a policy failing its tests: %v; want rejected", err)
	}

	// A good policy is swapped in and the memo starts afresh.
	os.Remove(filepath.Join(dir, "privguard_test.rego"))
	if err := e.ReloadDir(ctx, dir); err != nil {
		t.Fatal(err)
	}
	d, err := e.Decide(ctx, sms())
	if err != nil || d.Allowed() || d.Reasons[0] != "policy.closed" || d.Revision == rev {
		t.Errorf("after reload: %+v %v; want the new deny-all policy under a new revision", d, err)
	}
}

func TestWatchReloadsOnChange(t *testing.T) {
	dir := t.TempDir()
	writeModule(t, dir, "p.rego", "package privguard\ndecision := {\"allow\": true, \"reasons\": [\"allow\"], \"obligations\": []}\n")
	modules, err := policy.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, policy.Config{Modules: modules})
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go e.Watch(wctx, dir, 10*time.Millisecond)
	// The change is written again now and then (each time a little different), so the test
	// does not depend on Watch having read the old policy before the first write.
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		if i%20 == 0 {
			writeModule(t, dir, "p.rego", fmt.Sprintf("%s# write %d\n", denyAll, i))
		}
		if d, _ := e.Decide(ctx, privguard.Input{Purpose: "x"}); !d.Allowed() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("Watch did not reload the changed policy within 5s")
}
