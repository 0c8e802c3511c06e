package privguard_test

import (
	"encoding/json"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

type goPackage struct {
	ImportPath string
	Doc        string
	Imports    []string
	Deps       []string
	Standard   bool
}

// listPackages runs `go list -json ./...` for the module.
func listPackages(t *testing.T) []goPackage {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", "./...").Output()
	if err != nil {
		t.Skipf("go list is not available: %v", err)
	}
	var pkgs []goPackage
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p goPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// heavy names the dependencies only their adapter packages may import (go-redis has two:
// the data-subject connector and the shared frequency counter, two concerns on one driver).
var heavy = map[string][]string{
	"github.com/open-policy-agent/opa":    {"policy"},
	"github.com/tink-crypto/tink-go":      {"vault"},
	"go.etcd.io/bbolt":                    {"boltstore"},
	"github.com/jackc/pgx":                {"connector/postgres", "pgstore", "bench/replicas", "bench/retention"}, // the harnesses read statistics and seed tables
	"github.com/pressly/goose":            {"connector/postgres", "pgstore"},
	"github.com/go-sql-driver/mysql":      {"connector/mysql", "bench/retention"}, // the harness seeds its table
	"github.com/redis/go-redis":           {"connector/redis", "redislimit"},
	"github.com/casbin/casbin":            {"internal/authz"},
	"github.com/valyala/fastjson":         {"audit"}, // reads the decision log back
	"github.com/prometheus/client_golang": nil,
}

const module = "github.com/privguard/privguard"

func isStd(path string) bool { return !strings.Contains(strings.SplitN(path, "/", 2)[0], ".") }

func TestImportRules(t *testing.T) {
	for _, p := range listPackages(t) {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		// The root package, internal/jsonpath and middleware see only the standard library
		// (middleware also those two), so that wrapping a handler pulls in nothing heavy.
		if rel == "" || rel == "middleware" || rel == "internal/jsonpath" {
			for _, d := range p.Deps {
				if !isStd(d) && d != module && d != module+"/internal/jsonpath" {
					t.Errorf("%s depends on %s; it may use only the standard library, the root package and internal/jsonpath", p.ImportPath, d)
				}
			}
		}
		// Each heavy dependency is imported directly only by its adapter package.
		for _, imp := range p.Imports {
			for dep, owners := range heavy {
				if !strings.HasPrefix(imp, dep) || len(owners) == 0 {
					continue
				}
				if !slices.ContainsFunc(owners, func(o string) bool { return rel == o || strings.HasPrefix(rel, o+"/") }) {
					t.Errorf("%s imports %s; only %s may", p.ImportPath, imp, strings.Join(owners, " and "))
				}
			}
		}
	}
}

func TestEveryPackageHasADocComment(t *testing.T) {
	for _, p := range listPackages(t) {
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("package %s has no package doc comment", p.ImportPath)
		}
	}
}
