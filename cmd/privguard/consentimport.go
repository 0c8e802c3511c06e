package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/privguard/privguard/internal/config"
)

// importFlags are the flags of 'privguard consent import'.
type importFlags struct {
	admin, data, tokenFile, rest, answers string
}

func newImportFlags(fs *flag.FlagSet) *importFlags {
	f := &importFlags{}
	fs.StringVar(&f.admin, "admin", "http://"+config.DefaultAdminListen, "admin API `URL` of the running serve")
	fs.StringVar(&f.data, "data", config.DefaultDataDir, "data `directory` holding admin.token")
	fs.StringVar(&f.tokenFile, "token-file", "", "`file` holding the admin token (default DIR/admin.token; $PRIVGUARD_ADMIN_TOKEN wins)")
	fs.StringVar(&f.rest, "rest", "", "write every item not committed (rejected, failed, or not reached) to this `file`, as it was, to fix and import again")
	fs.StringVar(&f.answers, "answers", "", "write the server's answer lines (one per item, then the summary) to this `file`")
	return f
}

// loadAdminToken returns the admin token: $PRIVGUARD_ADMIN_TOKEN, else the token file
// (default DIR/admin.token).
func loadAdminToken(getenv func(string) string, data, tokenFile string) (string, error) {
	if t := getenv("PRIVGUARD_ADMIN_TOKEN"); t != "" {
		return t, nil
	}
	if tokenFile == "" {
		tokenFile = filepath.Join(data, adminTokenFile)
	}
	b, err := os.ReadFile(tokenFile)
	if err != nil {
		return "", fmt.Errorf("admin token: %w (use --token-file or PRIVGUARD_ADMIN_TOKEN)", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// pendingItem is an item sent and not yet answered.
type pendingItem struct {
	line int    // in the file, from 1
	text []byte // as read, without the line end
}

// consentImport runs 'privguard consent import FILE': it streams FILE (NDJSON, "-" for
// stdin) to POST /v1/consents/import and reads the answers as they come. Exit 0 if every
// item was committed, 1 if any was not, 2 for a usage or operational error.
func consentImport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := newFlagSet("consent import")
	f := newImportFlags(fs)
	positional, code, ok := parseFlags(fs, "consent import", args, stdout, stderr)
	if !ok {
		return code
	}
	if len(positional) != 1 {
		c, _ := lookup("consent import")
		return usageError(stderr, "consent import", "usage: privguard "+c.usage)
	}
	token, err := loadAdminToken(getenv, f.data, f.tokenFile)
	if err != nil {
		fmt.Fprintf(stderr, "privguard: %v\n", err)
		return 2
	}
	in := io.Reader(os.Stdin)
	if positional[0] != "-" {
		file, err := os.Open(positional[0])
		if err != nil {
			fmt.Fprintf(stderr, "privguard: %v\n", err)
			return 2
		}
		defer file.Close()
		in = file
	}
	var rest, answers *bufio.Writer
	for _, o := range []struct {
		path string
		w    **bufio.Writer
	}{{f.rest, &rest}, {f.answers, &answers}} {
		if o.path == "" {
			continue
		}
		if same(o.path, positional[0]) || (o.path == f.rest && f.rest == f.answers) {
			fmt.Fprintf(stderr, "privguard: consent import: %s would be overwritten while it is read: write --rest and --answers to other files\n", o.path)
			return 2
		}
		file, err := os.OpenFile(o.path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			fmt.Fprintf(stderr, "privguard: %v\n", err)
			return 2
		}
		defer file.Close()
		*o.w = bufio.NewWriterSize(file, 256<<10)
		defer (*o.w).Flush()
	}

	// The sender reads the file and streams it; every item it sends waits in pending until
	// its answer (in order) says what became of it.
	var (
		mu      sync.Mutex
		pending []pendingItem
		readErr error
	)
	pr, pw := io.Pipe()
	go func() {
		br := bufio.NewReaderSize(in, 256<<10)
		bw := bufio.NewWriterSize(pw, 256<<10)
		for n := 1; ; n++ {
			line, err := br.ReadBytes('\n')
			if len(line) > 0 {
				text := bytes.TrimRight(line, "\r\n")
				if len(bytes.TrimSpace(text)) > 0 { // the server does not count blank lines
					mu.Lock()
					pending = append(pending, pendingItem{line: n, text: text})
					mu.Unlock()
				}
				bw.Write(text)
				bw.WriteByte('\n')
			}
			if err != nil {
				if !errors.Is(err, io.EOF) {
					mu.Lock()
					readErr = err
					mu.Unlock()
					pw.CloseWithError(err) // the body is cut: the server commits no partial chunk
					return
				}
				break
			}
		}
		pw.CloseWithError(bw.Flush())
	}()

	base := strings.TrimSuffix(f.admin, "/")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/consents/import", pr)
	if err != nil {
		fmt.Fprintf(stderr, "privguard: %v\n", err)
		return 2
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			fmt.Fprintf(stderr, "privguard: no privguard serve answers at %s: start it (privguard serve), or point --admin at it\n", base)
		} else {
			fmt.Fprintf(stderr, "privguard: import: %v\n", err)
		}
		return 2
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var p struct{ Title, Detail string }
		json.Unmarshal(b, &p)
		fmt.Fprintf(stderr, "privguard: import: %s: %s: %s\n", resp.Status, p.Title, p.Detail)
		return 2
	}

	// next pops the pending items up to index (the index-th item sent, from 0).
	popped := 0
	next := func(index int) (pendingItem, bool) {
		mu.Lock()
		defer mu.Unlock()
		for len(pending) > 0 && popped < index {
			keep(rest, pending[0]) // an item the server skipped: cannot happen, but not lost
			pending, popped = pending[1:], popped+1
		}
		if len(pending) == 0 || popped != index {
			return pendingItem{}, false
		}
		it := pending[0]
		pending, popped = pending[1:], popped+1
		return it, true
	}
	var (
		summary  *importSummaryLine
		notDone  int
		shown    int
		maxShown = 20
	)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		if answers != nil {
			answers.Write(sc.Bytes())
			answers.WriteByte('\n')
		}
		var a struct {
			Index   *int               `json:"index"`
			Outcome string             `json:"outcome"`
			Problem *importProblemLine `json:"problem"`
			Summary *importSummaryLine `json:"summary"`
		}
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			fmt.Fprintf(stderr, "privguard: import: unreadable answer: %v\n", err)
			return 2
		}
		if a.Summary != nil {
			summary = a.Summary
			continue
		}
		if a.Index == nil || a.Outcome == "created" || a.Outcome == "replayed" {
			if a.Index != nil {
				next(*a.Index)
			}
			continue
		}
		notDone++
		it, ok := next(*a.Index)
		if ok {
			keep(rest, it)
		}
		if shown < maxShown && a.Problem != nil {
			shown++
			field := ""
			if a.Problem.Field != "" {
				field = a.Problem.Field + ": "
			}
			fmt.Fprintf(stderr, "line %d: %s: %s%s\n", it.line, a.Outcome, field, a.Problem.say())
		}
	}
	scanErr := sc.Err()
	// Whatever was sent and not answered was not committed (or its answer was lost): it
	// belongs to the rest.
	mu.Lock()
	unanswered := len(pending)
	for _, it := range pending {
		keep(rest, it)
	}
	pending = nil
	readFailed := readErr
	mu.Unlock()
	if shown < notDone {
		fmt.Fprintf(stderr, "... and %d more not committed\n", notDone-shown)
	}
	if summary == nil {
		fmt.Fprintf(stderr, "privguard: import: the answer ended early (%v): %d items were answered; the rest may or may not be committed: import the --rest file again with idempotency keys\n",
			scanErr, popped-unanswered)
		return 1
	}
	fmt.Fprintf(stdout, "%d items: %d created, %d replayed, %d rejected, %d failed\n",
		summary.Items, summary.Created, summary.Replayed, summary.Rejected, summary.Failed)
	switch {
	case readFailed != nil:
		fmt.Fprintf(stderr, "privguard: reading the file: %v; the items from index %d on were not committed\n", readFailed, summary.NextIndex)
	case !summary.Complete:
		fmt.Fprintf(stderr, "privguard: import stopped: %s (first item not committed: index %d)\n", summary.Error, summary.NextIndex)
	}
	if notDone+unanswered > 0 || !summary.Complete || readFailed != nil {
		if rest != nil {
			fmt.Fprintf(stderr, "the %d items not committed are in %s: fix the rejected ones and import it again\n", notDone+unanswered, f.rest)
		}
		return 1
	}
	return 0
}

func keep(rest *bufio.Writer, it pendingItem) {
	if rest != nil {
		rest.Write(it.text)
		rest.WriteByte('\n')
	}
}

type importSummaryLine struct {
	Items, Created, Replayed, Rejected, Failed int
	Complete                                   bool
	NextIndex                                  int `json:"next_index"`
	Error                                      string
}

type importProblemLine struct {
	Title, Detail, Field string
	Errors               []struct{ Field, Rule, Detail string }
}

func (p *importProblemLine) say() string {
	if p.Detail != "" {
		return strings.TrimPrefix(p.Detail, p.Field+": ")
	}
	if len(p.Errors) > 0 && p.Errors[0].Detail != "" {
		return p.Errors[0].Detail
	}
	return p.Title
}

// same reports whether paths a and b name the same file (b may be "-", standard input).
func same(a, b string) bool {
	if b == "-" {
		return false
	}
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	if errA != nil || errB != nil {
		return filepath.Clean(a) == filepath.Clean(b)
	}
	return os.SameFile(fa, fb)
}
