package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/privguard/privguard/policy"
)

// policyTest runs the Rego unit tests (*_test.rego) of a policy directory with OPA's
// tester, the way `go test ./policy` runs the default bundle's.
func policyTest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("privguard policy test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	verbose := fs.Bool("v", false, "list every test, not only failures")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: privguard policy test [-v] DIR...

Runs the Rego unit tests (rules named test_* in *_test.rego files) of the policy in each
DIR, with the data files (data.json) found there. Exits 1 if a test fails, 2 if the policy
does not load. The default bundle is in policy/bundle of the source tree.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	for _, dir := range fs.Args() {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			fmt.Fprintf(stderr, "privguard: %s is not a directory\n", dir)
			return 2
		}
	}
	results, err := policy.RunTests(ctx, fs.Args()...)
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
