package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/privguard/privguard/policy"
)

// newPolicyTestFlags defines the flags of 'privguard policy test'.
func newPolicyTestFlags(fs *flag.FlagSet) *bool {
	return fs.Bool("v", false, "list every test, not only failures")
}

// policyTest runs the Rego unit tests (*_test.rego) of a policy directory with OPA's
// tester, the way `go test ./policy` runs the default bundle's.
func policyTest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("policy test")
	verbose := newPolicyTestFlags(fs)
	dirs, code, ok := parseFlags(fs, "policy test", args, stdout, stderr)
	if !ok {
		return code
	}
	if len(dirs) == 0 {
		return usageError(stderr, "policy test", "name at least one policy directory (the default bundle: policy/bundle)")
	}
	for _, dir := range dirs {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			fmt.Fprintf(stderr, "privguard: %s is not a directory\n", dir)
			return 2
		}
	}
	results, err := policy.RunTests(ctx, dirs...)
	if err != nil {
		fmt.Fprintf(stderr, "privguard: %v\n", err)
		return 2
	}
	passed, failed := 0, 0
	for _, r := range results {
		if r.Passed {
			passed++
			if *verbose {
				fmt.Fprintf(stdout, "PASS %s (%v)\n", r.Name, r.Duration)
			}
			continue
		}
		failed++
		fmt.Fprintf(stdout, "FAIL %s: %s\n", r.Name, r.Error)
	}
	fmt.Fprintf(stdout, "%d passed, %d failed\n", passed, failed)
	if failed > 0 || passed == 0 {
		return 1
	}
	return 0
}
