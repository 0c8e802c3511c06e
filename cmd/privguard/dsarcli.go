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
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/internal/config"
)

// dsarFlags are the flags of the dsar subcommands; each subcommand defines the common ones
// and its own (newDsarFlags), the others stay zero.
type dsarFlags struct {
	admin, data, tokenFile                            string
	typ, subject, subjectsFile, regime, note, trigger string
	patch                                             patchFlag
	approveNote, outFile, state                       string
	overdue                                           bool
	approval                                          string
}

// newDsarFlags defines the flags of 'privguard dsar sub'.
func newDsarFlags(fs *flag.FlagSet, sub string) *dsarFlags {
	f := &dsarFlags{patch: patchFlag{}}
	fs.StringVar(&f.admin, "admin", "http://"+config.DefaultAdminListen, "admin API `URL` of the running serve")
	fs.StringVar(&f.data, "data", config.DefaultDataDir, "data `directory` holding admin.token")
	fs.StringVar(&f.tokenFile, "token-file", "", "`file` holding the admin token (default DIR/admin.token; $PRIVGUARD_ADMIN_TOKEN wins)")
	switch sub {
	case "submit":
		fs.StringVar(&f.typ, "type", "", "request `type`: access, portability, categories, correction, deletion, restriction, objection or explanation")
		fs.StringVar(&f.subject, "subject", "", "the subject's `id`")
		fs.StringVar(&f.subjectsFile, "subjects-file", "", "`file` of subject ids, one per line")
		fs.StringVar(&f.regime, "regime", "", "the `law`: pipl or gdpr (default: the server's regime)")
		fs.StringVar(&f.note, "operator-note", "", "how you verified the requester's identity (you attest that you did)")
		fs.StringVar(&f.trigger, "trigger", "", "`why` the controller erases on its own (--type deletion): purpose_achieved, service_ended, retention_expired, consent_withdrawn or unlawful_processing")
		fs.Var(f.patch, "patch", "`CATEGORY=VALUE` to correct, repeatable (--type correction)")
	case "approve":
		fs.StringVar(&f.approveNote, "note", "", "how the correction was checked (required)")
	case "result", "register":
		fs.StringVar(&f.outFile, "out", "", "`file` to write to (created, mode 0600)")
	case "list":
		fs.StringVar(&f.state, "state", "", "only requests in this `state`")
		fs.StringVar(&f.state, "status", "", "only requests in this `state` (same as --state)")
		fs.BoolVar(&f.overdue, "overdue", false, "only overdue requests")
		fs.StringVar(&f.approval, "approval", "", "the `approval` another dpo gave for a list over dual_control.export_rows (first page)")
	}
	return f
}

// adminClient calls the admin API.
type adminClient struct {
	base  string
	token string
	http  *http.Client
	// header, if set, is sent with every call (X-Privguard-Approval).
	header http.Header
}

func (c *adminClient) call(ctx context.Context, method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	for k, v := range c.header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return fmt.Errorf("no privguard serve answers at %s: start it (privguard serve), or point --admin at it", c.base)
		}
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var p struct{ Title, Detail string }
		json.Unmarshal(b, &p)
		if p.Detail == "" {
			return fmt.Errorf("%s: %s", resp.Status, p.Title)
		}
		return fmt.Errorf("%s: %s: %s", resp.Status, p.Title, p.Detail)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// dsarCmd runs 'privguard dsar CMD ARGS...'; args[0] is a dsar subcommand.
func dsarCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cmd := args[0]
	fs := newFlagSet("dsar " + cmd)
	f := newDsarFlags(fs, cmd)
	positional, code, ok := parseFlags(fs, "dsar "+cmd, args[1:], stdout, stderr)
	if !ok {
		return code
	}
	admin, data, tokenFile := &f.admin, &f.data, &f.tokenFile
	typ, subject, subjectsFile, regime, note, trigger, patch := &f.typ, &f.subject, &f.subjectsFile, &f.regime, &f.note, &f.trigger, f.patch
	approveNote, outFile, state, overdue := &f.approveNote, &f.outFile, &f.state, &f.overdue
	usage := func() int {
		c, _ := lookup("dsar " + cmd)
		return usageError(stderr, "dsar "+cmd, "usage: privguard "+c.usage)
	}
	if want := map[string]int{"status": 1, "retry": 1, "approve": 1, "result": 1}[cmd]; len(positional) != want {
		return usage()
	}
	token, err := loadAdminToken(getenv, *data, *tokenFile)
	if err != nil {
		fmt.Fprintf(stderr, "privguard: %v\n", err)
		return 2
	}
	c := &adminClient{base: strings.TrimSuffix(*admin, "/"), token: token, http: &http.Client{Timeout: 30 * time.Second}}
	switch cmd {
	case "submit":
		return dsarSubmit(ctx, c, submitOptions{typ: *typ, subject: *subject, subjectsFile: *subjectsFile, regime: *regime,
			note: *note, trigger: *trigger, patch: patch}, stdout, stderr)
	case "approve":
		if *approveNote == "" {
			return usage()
		}
		var out struct{ ID, State string }
		if err := c.call(ctx, "POST", "/v1/requests/"+url.PathEscape(positional[0])+"/approve", map[string]string{"note": *approveNote}, &out); err != nil {
			fmt.Fprintf(stderr, "privguard: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "%s\t%s\n", out.ID, out.State)
		return 0
	case "register":
		if *outFile == "" {
			return usage()
		}
		return dsarRegister(ctx, c, *outFile, stdout, stderr)
	case "result":
		if *outFile == "" {
			return usage()
		}
		return dsarResult(ctx, c, positional[0], *outFile, stdout, stderr)
	case "status", "retry":
		method, path := "GET", "/v1/requests/"+url.PathEscape(positional[0])
		if cmd == "retry" {
			method, path = "POST", path+"/retry"
		}
		var out json.RawMessage
		if err := c.call(ctx, method, path, nil, &out); err != nil {
			fmt.Fprintf(stderr, "privguard: %v\n", err)
			return 1
		}
		var pretty bytes.Buffer
		json.Indent(&pretty, out, "", "  ")
		fmt.Fprintln(stdout, pretty.String())
		return 0
	case "list":
		q := url.Values{}
		if *state != "" {
			q.Set("state", *state)
		}
		if *overdue {
			q.Set("overdue", "true")
		}
		type row struct {
			ID, Type, State, Regime string
			Overdue                 bool
			DueSoon                 bool `json:"due_soon"`
			Deadline                struct{ Due time.Time }
		}
		var rows []row
		q.Set("limit", "1000")
		if f.approval != "" {
			// An approval is for one call: the first page.
			c.header = http.Header{"X-Privguard-Approval": {f.approval}}
		}
		for {
			var out struct {
				Requests []row
				Next     string
			}
			if err := c.call(ctx, "GET", "/v1/requests?"+q.Encode(), nil, &out); err != nil {
				fmt.Fprintf(stderr, "privguard: %v\n", err)
				return 1
			}
			rows = append(rows, out.Requests...)
			c.header = nil
			if out.Next == "" {
				break
			}
			q.Set("after", out.Next)
		}
		out := struct{ Requests []row }{rows}
		fmt.Fprintf(stdout, "%-36s  %-12s  %-5s  %-22s  %-10s  %s\n", "ID", "TYPE", "LAW", "STATE", "DUE", "")
		for _, r := range out.Requests {
			mark := ""
			if r.Overdue {
				mark = "OVERDUE"
			} else if r.DueSoon {
				mark = "due soon"
			}
			fmt.Fprintf(stdout, "%-36s  %-12s  %-5s  %-22s  %-10s  %s\n", r.ID, r.Type, r.Regime, r.State, r.Deadline.Due.Format(time.DateOnly), mark)
		}
		return 0
	}
	return usageError(stderr, "dsar", fmt.Sprintf("unknown command %q", cmd))
}

// submitOptions are the flags of 'privguard dsar submit'.
type submitOptions struct {
	typ, subject, subjectsFile, regime, note, trigger string
	patch                                             patchFlag
}

// patchFlag collects repeated --patch CATEGORY=VALUE flags.
type patchFlag map[string]string

func (p patchFlag) String() string { return "" }

func (p patchFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return errors.New("want CATEGORY=VALUE")
	}
	p[k] = val
	return nil
}

func dsarSubmit(ctx context.Context, c *adminClient, o submitOptions, stdout, stderr io.Writer) int {
	if o.typ == "" || (o.subject == "") == (o.subjectsFile == "") {
		fmt.Fprint(stderr, "privguard dsar submit: need --type and exactly one of --subject, --subjects-file\n")
		return 2
	}
	subjects, lines := []string{o.subject}, []int{1}
	if o.subjectsFile != "" {
		f, err := os.Open(o.subjectsFile)
		if err != nil {
			fmt.Fprintf(stderr, "privguard: %v\n", err)
			return 2
		}
		defer f.Close()
		subjects, lines = subjects[:0], lines[:0]
		sc := bufio.NewScanner(f)
		for n := 1; sc.Scan(); n++ {
			if s := strings.TrimSpace(sc.Text()); s != "" && !strings.HasPrefix(s, "#") {
				subjects, lines = append(subjects, s), append(lines, n)
			}
		}
		if err := sc.Err(); err != nil {
			fmt.Fprintf(stderr, "privguard: %s: %v\n", o.subjectsFile, err)
			return 2
		}
	}
	body := map[string]any{"type": o.typ}
	if o.regime != "" {
		body["regime"] = o.regime
	}
	if o.note != "" {
		body["identity"] = map[string]string{"method": "operator", "note": o.note}
	}
	if o.trigger != "" {
		body["trigger"] = o.trigger
	}
	if len(o.patch) > 0 {
		body["patch"] = map[string]string(o.patch)
	}
	if o.subjectsFile != "" && (o.note != "" || o.trigger != "") && len(o.patch) == 0 && bulkType(o.typ) {
		return dsarSubmitBulk(ctx, c, body, subjects, lines, stdout, stderr)
	}
	failed := 0
	start := time.Now()
	for i, s := range subjects {
		body["subject"] = s
		var out struct{ ID, State string }
		if err := c.call(ctx, "POST", "/v1/requests", body, &out); err != nil {
			// Name the line, not the id: the id is personal data and stderr may be logged.
			fmt.Fprintf(stderr, "line %d: %v\n", lines[i], err)
			failed++
			continue
		}
		fmt.Fprintf(stdout, "%s\t%s\n", out.ID, out.State)
		if len(subjects) > 1 && ((i+1)%100 == 0 || i+1 == len(subjects)) {
			fmt.Fprintf(stderr, "\rsubmitted %d/%d (%.0f/s)", i+1, len(subjects), float64(i+1)/time.Since(start).Seconds())
		}
	}
	if len(subjects) > 1 {
		fmt.Fprintln(stderr)
	}
	if failed > 0 {
		fmt.Fprintf(stderr, "privguard: %d of %d submissions failed\n", failed, len(subjects))
		return 1
	}
	return 0
}

// bulkType reports the request types POST /v1/requests/bulk takes.
func bulkType(t string) bool {
	switch t {
	case "deletion", "delete", "restriction", "restrict", "objection", "object":
		return true
	}
	return false
}

// bulkChunk is how many subjects one POST /v1/requests/bulk carries.
const bulkChunk = 5_000

// dsarSubmitBulk submits the operator-attested requests of a subjects file through
// POST /v1/requests/bulk, bulkChunk at a time (each chunk is one durable write).
func dsarSubmitBulk(ctx context.Context, c *adminClient, body map[string]any, subjects []string, lines []int, stdout, stderr io.Writer) int {
	delete(body, "subject")
	failed := 0
	// A malformed id fails its own line, not the chunk it would be sent in.
	valid, validLines := subjects[:0:0], lines[:0:0]
	for i, s := range subjects {
		if privguard.SubjectID(s).Validate() != nil {
			fmt.Fprintf(stderr, "line %d: the subject %s\n", lines[i], privguard.SubjectIDRule)
			failed++
			continue
		}
		valid, validLines = append(valid, s), append(validLines, lines[i])
	}
	total := len(subjects)
	subjects, lines = valid, validLines
	start := time.Now()
	for from := 0; from < len(subjects); from += bulkChunk {
		to := min(from+bulkChunk, len(subjects))
		body["subjects"] = subjects[from:to]
		var out struct {
			Requests []struct{ ID, State string }
		}
		if err := c.call(ctx, "POST", "/v1/requests/bulk", body, &out); err != nil {
			// Name the lines, not the ids: the ids are personal data and stderr may be logged.
			fmt.Fprintf(stderr, "lines %d-%d: %v\n", lines[from], lines[to-1], err)
			failed += to - from
			continue
		}
		for _, r := range out.Requests {
			fmt.Fprintf(stdout, "%s\t%s\n", r.ID, r.State)
		}
		fmt.Fprintf(stderr, "\rsubmitted %d/%d (%.0f/s)", to, len(subjects), float64(to)/time.Since(start).Seconds())
	}
	fmt.Fprintln(stderr)
	if failed > 0 {
		fmt.Fprintf(stderr, "privguard: %d of %d submissions failed\n", failed, total)
		return 1
	}
	return 0
}

// dsarResult mints a download token and saves the package to out (mode 0600). The
// package is destroyed on the server once downloaded.
func dsarResult(ctx context.Context, c *adminClient, id, out string, stdout, stderr io.Writer) int {
	// The file is made first: once downloaded, the server's copy is gone.
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		fmt.Fprintf(stderr, "privguard: %v\n", err)
		return 1
	}
	n, digest, err := download(ctx, c, id, f)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("%s: %w (the server has destroyed its copy; submit a new access request)", out, cerr)
	}
	if err != nil {
		os.Remove(out)
		fmt.Fprintf(stderr, "privguard: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s\t%d bytes\t%s\n", out, n, digest)
	return 0
}

// download mints a download token for request id and copies the package to w.
func download(ctx context.Context, c *adminClient, id string, w io.Writer) (int64, string, error) {
	var link struct{ Token, Path string }
	if err := c.call(ctx, "POST", "/v1/requests/"+url.PathEscape(id)+"/link", nil, &link); err != nil {
		return 0, "", err
	}
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+link.Path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("X-Privguard-Download-Token", link.Token)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, "", fmt.Errorf("download: %s", resp.Status)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, "", fmt.Errorf("download cut off: %w (the server has destroyed its copy; submit a new access request)", err)
	}
	return n, resp.Header.Get("Repr-Digest"), nil
}

// dsarRegister saves the request register as CSV (mode 0600).
func dsarRegister(ctx context.Context, c *adminClient, out string, stdout, stderr io.Writer) int {
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+"/v1/requests/register?format=csv", nil)
	if err != nil {
		fmt.Fprintf(stderr, "privguard: %v\n", err)
		return 1
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "privguard: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "privguard: register: %s\n", resp.Status)
		return 1
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		fmt.Fprintf(stderr, "privguard: %v\n", err)
		return 1
	}
	n, err := io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintf(stderr, "privguard: %s: %v\n", out, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s\t%d bytes\n", out, n)
	return 0
}
