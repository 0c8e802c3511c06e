package policy

import (
	"context"
	"fmt"
	"time"

	"github.com/open-policy-agent/opa/v1/tester"
)

// TestResult is the outcome of one Rego unit test.
type TestResult struct {
	Name     string // package-qualified rule name
	Passed   bool
	Error    string // why it failed, if it did
	Duration time.Duration
}

// RunTests runs the Rego unit tests (test_* rules) found in the policy directories, with
// their data files, through OPA's tester. An error means the policy did not load.
func RunTests(ctx context.Context, dirs ...string) ([]TestResult, error) {
	results, err := tester.Run(ctx, dirs...)
	if err != nil {
		return nil, fmt.Errorf("policy: load tests: %w", err)
	}
	out := make([]TestResult, 0, len(results))
	for _, r := range results {
		tr := TestResult{Name: r.Package + "." + r.Name, Passed: r.Pass(), Duration: r.Duration}
		if !tr.Passed {
			tr.Error = "failed"
			if r.Error != nil {
				tr.Error = r.Error.Error()
			}
		}
		out = append(out, tr)
	}
	return out, nil
}
