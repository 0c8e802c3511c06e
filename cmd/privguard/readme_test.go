package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// mdBlock is one fenced code block of README.md.
type mdBlock struct {
	section string // the "## " heading it is under
	lang    string // the fence's info string: sh, yaml, go
	line    int    // the line of its opening fence
	text    string
}

// readmeBlocks returns the fenced code blocks of the repository's README.md, in order.
func readmeBlocks(t *testing.T) []mdBlock {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var blocks []mdBlock
	var cur *mdBlock
	section := ""
	for i, line := range strings.Split(string(b), "\n") {
		switch {
		case cur != nil && strings.HasPrefix(line, "```"):
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.text += line + "\n"
		case strings.HasPrefix(line, "```"):
			cur = &mdBlock{section: section, lang: strings.TrimPrefix(line, "```"), line: i + 1}
		case strings.HasPrefix(line, "## "):
			section = strings.TrimPrefix(line, "## ")
		}
	}
	return blocks
}

// placeholder matches a <placeholder> a reader would have to replace by hand, which bash
// reads as a redirection (or sends as it is, in quotes).
var placeholder = regexp.MustCompile(`<[A-Za-z][^<>'"\n]*>`)

// Every shell block of the README runs as pasted, in order: it is valid bash, it has no
// <placeholder>, and every variable it uses was set by it or an earlier block.
func TestReadmeShellBlocksPaste(t *testing.T) {
	bash, bashErr := exec.LookPath("bash")
	set := map[string]bool{}
	n := 0
	for _, b := range readmeBlocks(t) {
		if b.lang != "sh" {
			continue
		}
		n++
		at := fmt.Sprintf("README.md:%d (%s)", b.line, b.section)
		if bashErr == nil {
			cmd := exec.Command(bash, "-n")
			cmd.Stdin = strings.NewReader(b.text)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s is not valid bash: %v\n%s", at, err, out)
			}
		}
		if p := placeholder.FindString(b.text); p != "" {
			t.Errorf("%s has the placeholder %s: set a variable in an earlier step instead", at, p)
		}
		code := shellCode(b.text)
		for _, line := range strings.Split(code, "\n") {
			if m := regexp.MustCompile(`^\s*(?:for\s+)?([A-Za-z_]\w*)(?:=|\s+in\s)`).FindStringSubmatch(line); m != nil {
				set[m[1]] = true
			}
		}
		for _, m := range regexp.MustCompile(`\$\{?([A-Za-z_]\w*)`).FindAllStringSubmatch(code, -1) {
			if !set[m[1]] {
				t.Errorf("%s uses $%s, which no earlier step sets", at, m[1])
			}
		}
	}
	if n < 10 {
		t.Fatalf("found %d shell blocks in README.md; the parser is broken", n)
	}
}

// shellCode returns the parts of script bash expands: without comments, single-quoted
// strings and the bodies of quoted heredocs (<<'EOF').
func shellCode(script string) string {
	var out strings.Builder
	lines := strings.Split(script, "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		var kept strings.Builder
		single, double := false, false
		for j := 0; j < len(line); j++ {
			c := line[j]
			switch {
			case single:
				single = c != '\''
				continue
			case c == '\'' && !double:
				single = true
				continue
			case c == '"':
				double = !double
			case c == '#' && !double && (j == 0 || line[j-1] == ' '):
				j = len(line)
				continue
			}
			kept.WriteByte(c)
		}
		out.WriteString(kept.String() + "\n")
		if m := regexp.MustCompile(`<<-?'(\w+)'`).FindStringSubmatch(line); m != nil {
			for i++; i < len(lines) && strings.TrimSpace(lines[i]) != m[1]; i++ {
			}
		}
	}
	return out.String()
}

// The README's API tour, pasted into bash against a fresh serve (the binary built from
// this package, on a free port, in a temporary directory), does what it says: every call
// succeeds, the grant is recorded, the receipt verifies with the published key, and after
// serve stops the ledger verifies.
func TestReadmeAPITour(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed: the README's shell blocks cannot be run")
	}
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed: the README's API tour cannot be run")
	}
	var tour []mdBlock
	for _, b := range readmeBlocks(t) {
		if b.section == "API tour" && b.lang == "sh" {
			tour = append(tour, b)
		}
	}
	if len(tour) == 0 {
		t.Fatal("README.md has no sh block under ## API tour")
	}
	bin := buildPrivguard(t)
	dir := t.TempDir()
	work := filepath.Join(dir, "calls")
	os.Mkdir(work, 0o700)

	// The first section's `go run ./cmd/privguard serve`, on a free port.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	serve := exec.CommandContext(ctx, bin, "serve", "--admin-listen", "127.0.0.1:0")
	serve.Dir = dir
	var serveErr syncBuffer
	serve.Stderr = &serveErr
	out, _ := serve.StdoutPipe()
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- serve.Wait() }()
	defer func() { serve.Process.Kill() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.Contains(line, "http://") {
		t.Fatalf("serve printed no address (%q, %v); stderr:\n%s", line, err, serveErr.String())
	}
	addr := strings.TrimPrefix(strings.TrimSpace(line[strings.Index(line, "http://"):]), "http://")

	// The reader's shell: curl also logs each call's status (-D) and body for the checks
	// below; `go run ./cmd/privguard` is the binary built above; stop_serve is the reader's
	// Ctrl-C.
	script := "set -eu\n" + curlLogger(work, curl) + fmt.Sprintf(`
go() {
  if [ "$1 $2" = "run ./cmd/privguard" ]; then shift 2; %[1]q "$@"; else echo "unexpected: go $*" >&2; return 127; fi
}
stop_serve() { kill -INT %[2]d; while kill -0 %[2]d 2>/dev/null; do sleep 0.1; done; }
`, bin, serve.Process.Pid)
	for _, b := range tour {
		script += "echo '### block README.md:" + fmt.Sprint(b.line) + "'\n" + stopServeFirst(strings.ReplaceAll(b.text, "127.0.0.1:8081", addr))
	}
	sh := exec.CommandContext(ctx, bash, "-c", script)
	sh.Dir = dir
	var stdout, stderr bytes.Buffer
	sh.Stdout, sh.Stderr = &stdout, &stderr
	if err := sh.Run(); err != nil {
		t.Fatalf("the API tour failed as pasted: %v\nstderr:\n%s\nstdout:\n%s", err, stderr.String(), stdout.String())
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("serve did not stop cleanly on Ctrl-C: %v", err)
		}
	default:
		t.Error("the tour's last block ran with serve still running")
	}

	calls := loggedCalls(work)
	find := func(method, path string) loggedCall {
		t.Helper()
		for _, c := range calls {
			isPost := strings.Contains(c.args, " -d ") || strings.Contains(c.args, " --data-binary ")
			if strings.Contains(c.args, "http://"+addr+path) && (method == "POST") == isPost {
				return c
			}
		}
		t.Errorf("the tour makes no %s %s call", method, path)
		return loggedCall{}
	}
	checkCalls(t, calls)
	if len(calls) != 9 {
		t.Errorf("the tour made %d calls; want 9 (notice, grant, state, history, withdraw, objection, receipt, keys, import)", len(calls))
	}
	if c := find("POST", "/v1/consents/import"); c.status != 200 || !strings.Contains(c.body, `"created":2,"replayed":0,"rejected":1`) {
		t.Errorf("import = %d %s; want 200, 2 created and 1 rejected", c.status, c.body)
	}
	if !strings.Contains(stdout.String(), "3 items: 0 created, 2 replayed, 1 rejected") || !strings.Contains(stdout.String(), "1 items: 1 created") {
		t.Errorf("privguard consent import did not replay two and refuse one, then import the fixed one:\n%s", stdout.String())
	}
	if c := find("POST", "/v1/notices"); c.status != 201 {
		t.Errorf("notice = %d; want 201", c.status)
	}
	var grant struct{ ID, Subject, Action string }
	for _, c := range calls {
		if strings.Contains(c.args, `"action": "grant"`) {
			json.Unmarshal([]byte(c.body), &grant)
			if c.status != 201 || grant.ID == "" || grant.Action != "grant" {
				t.Errorf("grant = %d %s; want 201 and the record", c.status, c.body)
			}
		}
	}
	if h := find("GET", "/v1/subjects/cust-8841/consents/history"); strings.Count(h.body, `"seq":`) != 1 || !strings.Contains(h.body, grant.ID) {
		t.Errorf("history after the grant = %s; want the grant", h.body)
	}
	receipt := find("GET", "/v1/consents/"+grant.ID+"/receipt")
	keys := find("GET", "/v1/receipts/keys")
	var signed struct{ JWS string }
	var jwks jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(receipt.body), &signed); err != nil || signed.JWS == "" {
		t.Fatalf("receipt body %q: %v", receipt.body, err)
	}
	if err := json.Unmarshal([]byte(keys.body), &jwks); err != nil {
		t.Fatalf("keys body %q: %v", keys.body, err)
	}
	jws, err := jose.ParseSigned(signed.JWS, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	k := jwks.Key(jws.Signatures[0].Header.KeyID)
	if len(k) != 1 {
		t.Fatalf("the receipt's key %q is not among the published keys", jws.Signatures[0].Header.KeyID)
	}
	payload, err := jws.Verify(k[0].Key)
	if err != nil || !strings.Contains(string(payload), grant.ID) {
		t.Errorf("receipt does not verify with the published key or names another record: %v %s", err, payload)
	}
	// Step 7, once serve has stopped.
	if !regexp.MustCompile(`(?m)^OK: 6 records, 1 notices verified`).MatchString(stdout.String()) {
		t.Errorf("consent verify did not report the tour's 6 records and 1 notice:\n%s", stdout.String())
	}
}

// stopServeFirst puts the reader's Ctrl-C of serve (stop_serve) before each line of script
// that runs consent verify or consent export, which the README says to run with serve
// stopped.
func stopServeFirst(script string) string {
	var out strings.Builder
	for _, line := range strings.SplitAfter(script, "\n") {
		if strings.Contains(line, "privguard consent verify") || strings.Contains(line, "privguard consent export") {
			out.WriteString("stop_serve\n")
		}
		out.WriteString(line)
	}
	return out.String()
}

// curlLogger returns a bash function that stands in for curl (at curlPath): it runs it and
// keeps each call's arguments, response headers and body under work, for loggedCalls.
func curlLogger(work, curlPath string) string {
	return fmt.Sprintf(`curl() {
  local f; f=$(mktemp %[1]q/call.XXXXXX)
  echo "$f" >> %[1]q/calls.log
  printf '%%s ' "$@" > "$f.a"
  %[2]q -D "$f.h" "$@" | tee "$f.b"
  return "${PIPESTATUS[0]}"
}
`, work, curlPath)
}

// loggedCall is one curl call a README block made.
type loggedCall struct {
	args, body string
	status     int
}

// loggedCalls returns the calls curlLogger kept under work, in order.
func loggedCalls(work string) []loggedCall {
	var calls []loggedCall
	logText, _ := os.ReadFile(filepath.Join(work, "calls.log"))
	for _, f := range strings.Fields(string(logText)) {
		args, _ := os.ReadFile(f + ".a")
		h, _ := os.ReadFile(f + ".h")
		body, _ := os.ReadFile(f + ".b")
		c := loggedCall{args: string(args), body: string(body)}
		fmt.Sscanf(string(h), "HTTP/%s %d", new(string), &c.status)
		calls = append(calls, c)
	}
	return calls
}

// checkCalls fails t for every call that did not succeed.
func checkCalls(t *testing.T, calls []loggedCall) {
	t.Helper()
	for _, c := range calls {
		if c.status < 200 || c.status > 299 {
			t.Errorf("curl %s = %d; want 2xx. Body: %s", c.args, c.status, c.body)
		}
	}
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// The whole README, every shell block in order, pasted into one bash session the way a
// reader would: serve started and restarted where a block starts it (stopped first, as the
// text says), the example upstream, the databases of the deletion example, the access
// download. Ports are free ones instead of 8080, 8081 and 9000, and the example's tables
// get a prefix of this test's own; everything else runs as written.
func TestReadmeRunsAsPasted(t *testing.T) {
	dsns := needServices(t, "POSTGRES_DSN", "MYSQL_DSN", "REDIS_ADDR")
	if !strings.HasPrefix(dsns[0], "postgres://postgres@127.0.0.1:5432/test") || !strings.HasPrefix(dsns[1], "root@tcp(127.0.0.1:3306)/test") || dsns[2] != "127.0.0.1:6379" {
		t.Skip("the PRIVGUARD_TEST_* services are not at the addresses the README's example uses")
	}
	tools := map[string]string{}
	for _, tool := range []string{"bash", "curl", "psql", "mysql"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Skipf("%s is not installed: the README's blocks cannot all be run", tool)
		}
		tools[tool] = p
	}
	bin := buildPrivguard(t)
	upstream := buildPackage(t, "../../examples/sidecar/upstream")
	repo, _ := filepath.Abs(filepath.Join("..", ".."))
	dir := t.TempDir()
	work := filepath.Join(dir, ".calls")
	os.Mkdir(work, 0o700)
	os.Symlink(filepath.Join(repo, "policy"), filepath.Join(dir, "policy"))     // policy test policy/bundle
	os.Symlink(filepath.Join(repo, "examples"), filepath.Join(dir, "examples")) // ropa --config examples/...
	admin, sidecar, up := freeAddr(t), freeAddr(t), freeAddr(t)
	tables := strings.NewReplacer("customers", "readmetest_customers", "orders", "readmetest_orders", "user_tags", "readmetest_user_tags")
	t.Cleanup(func() {
		exec.Command(tools["psql"], "postgres://postgres@127.0.0.1:5432/test", "-c", "DROP TABLE IF EXISTS readmetest_customers, readmetest_orders").Run()
		exec.Command(tools["mysql"], "-h", "127.0.0.1", "-u", "root", "test", "-e", "DROP TABLE IF EXISTS readmetest_user_tags").Run()
	})

	// go run ./cmd/privguard is the binary built above; serve runs in the background (the
	// reader's other terminal) and is stopped before the next one starts, or before a
	// block that needs the data file; dsar commands are pointed at its port.
	script := "set -eu\ntrap 'kill $(jobs -p) 2>/dev/null' EXIT\n" + curlLogger(work, tools["curl"]) + fmt.Sprintf(`
SERVE=
stop_serve() { if [ -n "$SERVE" ]; then kill -INT "$SERVE"; wait "$SERVE"; SERVE=; fi; }
go() {
  case "$1 $2 ${3:-}" in
  "run ./cmd/privguard serve")
    shift 3; stop_serve
    %[1]q serve "$@" --admin-listen %[2]s >> serve.log 2>&1 & SERVE=$!
    for _ in $(seq 300); do command curl -s -o /dev/null http://%[2]s/ && return 0; sleep 0.1; done
    echo "serve did not start:" >&2; cat serve.log >&2; return 1;;
  "run ./cmd/privguard dsar") shift 3; %[1]q dsar "$1" --admin http://%[2]s "${@:2}";;
  "run ./cmd/privguard "*) shift 2; %[1]q "$@";;
  "run ./examples/sidecar/upstream ") exec %[3]q -listen %[4]s;;
  "test ./... ") echo "(go test ./... is not run here)";;
  *) echo "unexpected: go $*" >&2; return 127;;
  esac
}
`, bin, admin, upstream, up)
	for _, b := range readmeBlocks(t) {
		if b.lang != "sh" {
			continue
		}
		text := strings.NewReplacer("127.0.0.1:8081", admin, "127.0.0.1:8080", sidecar, "127.0.0.1:9000", up).Replace(b.text)
		if b.section == "A deletion, end to end" {
			text = tables.Replace(text)
		}
		script += fmt.Sprintf("echo '### README.md:%d'\n%s", b.line, stopServeFirst(text))
	}
	script += "stop_serve\n"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sh := exec.CommandContext(ctx, tools["bash"], "-c", script)
	sh.Dir = dir
	var stdout, stderr bytes.Buffer
	sh.Stdout, sh.Stderr = &stdout, &stderr
	if err := sh.Run(); err != nil {
		serveLog, _ := os.ReadFile(filepath.Join(dir, "serve.log"))
		t.Fatalf("the README's blocks failed as pasted: %v\nstderr:\n%s\nstdout:\n%s\nserve.log:\n%s", err, stderr.String(), stdout.String(), serveLog)
	}
	checkCalls(t, loggedCalls(work))
	if zip, err := os.ReadFile(filepath.Join(dir, "copy.zip")); err != nil || !bytes.HasPrefix(zip, []byte("PK")) {
		t.Errorf("the access example's copy.zip is not a zip (%v)", err)
	}
	for _, want := range []string{"passed, 0 failed", "register.csv\t", "OK: ", "OK: consent evidence export, subject cust-8841"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("the README's output lacks %q:\n%s", want, stdout.String())
		}
	}
}

// buildPackage builds the main package at dir into a temporary directory.
func buildPackage(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), filepath.Base(dir))
	if out, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, dir).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", dir, err, out)
	}
	return bin
}
