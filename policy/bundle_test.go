package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/open-policy-agent/opa/v1/tester"

	"github.com/privguard/privguard"
)

var update = flag.Bool("update", false, "rewrite bundle/data.json from the default taxonomy")

// TestBundleDataMatchesTaxonomy keeps bundle/data.json (what `opa test` and `privguard policy
// test` load) equal to what the engine generates from the default taxonomy.
func TestBundleDataMatchesTaxonomy(t *testing.T) {
	tax, err := privguard.NewTaxonomy(privguard.DefaultPurposes())
	if err != nil {
		t.Fatal(err)
	}
	want, err := json.MarshalIndent(map[string]any{"privguard": Data(tax, DefaultFrequency())}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if *update {
		if err := os.WriteFile("bundle/data.json", want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile("bundle/data.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("bundle/data.json is out of date with the default taxonomy: run go test ./policy -run BundleData -update")
	}
}

// TestRegoUnitTests runs the bundle's own Rego tests (bundle/*_test.rego) through OPA's
// tester, as `privguard policy test` does.
func TestRegoUnitTests(t *testing.T) {
	dir := t.TempDir()
	err := fs.WalkDir(Bundle, "bundle", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := Bundle.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, filepath.Base(p)), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	results, err := tester.Run(context.Background(), dir)
	if err != nil {
		t.Fatalf("load the bundle: %v", err)
	}
	if len(results) < 20 {
		t.Fatalf("only %d Rego tests ran; every rule of the bundle has tests", len(results))
	}
	for _, r := range results {
		if !r.Pass() {
			t.Errorf("%s.%s: %v (failed at %v)", r.Package, r.Name, r.Error, r.FailedAt)
		}
	}
}
