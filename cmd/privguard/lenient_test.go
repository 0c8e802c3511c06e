package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// lenientUpstream is the service an attacker hopes to find behind the sidecar: it reads
// requests as loosely as real frameworks do. It routes paths case-insensitively, ignores a
// trailing slash, decodes %2F before routing, resolves dot segments, strips ";..." matrix
// parameters and honours X-HTTP-Method-Override, _method and X-Original-URL; it splits the query on '&'
// and ';', matches parameter names case-insensitively and takes the last value (and a query
// parameter over a body field); it reads headers as CGI does ("X_Customer" is
// "X-Customer") and takes the last; it decodes every body as JSON whatever its type (and
// gunzips it), with encoding/json's case-insensitive, last-duplicate-wins keys. It records
// whom each request acted on, so a test can ask whether a request reached a subject.
type lenientUpstream struct {
	mu    sync.Mutex
	acted []lenientAct
}

// lenientAct is one thing the upstream did for a request.
type lenientAct struct {
	Op      string // "profile", "send", "customer", "orders", "tags", "contact", "delete", "health"
	Subject string
	Phone   string      // the phone number a contact update stored
	Address string      // the address a contact update stored
	Header  http.Header // the X-Privguard-* headers it received
}

func (u *lenientUpstream) record(a lenientAct) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.acted = append(u.acted, a)
}

// actedOn reports whether any request so far acted on subject, or stored phone.
func (u *lenientUpstream) actedOn(subject string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, a := range u.acted {
		if a.Subject == subject || (a.Phone != "" && a.Phone == subject) || (a.Address != "" && a.Address == subject) {
			return true
		}
	}
	return false
}

// count is how many times the upstream did op for subject.
func (u *lenientUpstream) count(op, subject string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, a := range u.acted {
		if a.Op == op && a.Subject == subject {
			n++
		}
	}
	return n
}

func (u *lenientUpstream) last() lenientAct {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.acted) == 0 {
		return lenientAct{}
	}
	return u.acted[len(u.acted)-1]
}

// lenientPath is the route a lenient framework sees for an escaped path.
func lenientPath(escaped string) string {
	p, err := url.PathUnescape(escaped)
	if err != nil {
		p = escaped
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if j := strings.IndexByte(s, ';'); j >= 0 {
			segs[i] = s[:j]
		}
	}
	p = path.Clean("/" + strings.Join(segs, "/"))
	return strings.ToLower(p)
}

// lenientQuery splits on '&' and ';', folds names, and keeps the last value.
func lenientQuery(raw string) map[string]string {
	out := map[string]string{}
	for _, part := range strings.FieldsFunc(raw, func(r rune) bool { return r == '&' || r == ';' }) {
		k, v, _ := strings.Cut(part, "=")
		k, _ = url.QueryUnescape(k)
		v, _ = url.QueryUnescape(v)
		out[strings.ToLower(k)] = v
	}
	return out
}

// lenientHeader is the last value of the header a CGI-style server knows as name.
func lenientHeader(h http.Header, name string) string {
	want := strings.ReplaceAll(strings.ToLower(name), "_", "-")
	v := ""
	for k, vs := range h {
		if strings.ReplaceAll(strings.ToLower(k), "_", "-") == want && len(vs) > 0 {
			v = vs[len(vs)-1]
		}
	}
	return v
}

const lenientProfile = `{"id":"%s","email":"li.lei@example.com","phone":"13812345678","history":["sku-1"]}`

func (u *lenientUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := lenientQuery(r.URL.RawQuery)
	method := r.Method
	if m := lenientHeader(r.Header, "X-HTTP-Method-Override"); m != "" {
		method = strings.ToUpper(m)
	}
	if m := q["_method"]; m != "" {
		method = strings.ToUpper(m)
	}
	var rd io.Reader = r.Body
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		if zr, err := gzip.NewReader(r.Body); err == nil {
			rd = zr
		}
	}
	raw, _ := io.ReadAll(rd)
	var body struct {
		Customer   string
		Recipients []string
		Phone      string
		Address    string
	}
	json.Unmarshal(raw, &body)
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		form := lenientQuery(string(raw))
		body.Phone, body.Address = form["phone"], form["address"]
	}
	own := http.Header{}
	for k, v := range r.Header {
		if strings.HasPrefix(strings.ToLower(k), "x-privguard-") {
			own[k] = v
		}
	}
	escaped := r.URL.EscapedPath()
	if u := lenientHeader(r.Header, "X-Original-URL"); u != "" {
		escaped = u // Symfony, IIS: the path a front proxy rewrote from
	}
	segs := strings.Split(strings.Trim(lenientPath(escaped), "/"), "/")
	w.Header().Set("Content-Type", "application/json")
	switch {
	case len(segs) == 3 && segs[0] == "api" && segs[1] == "profiles" && method == http.MethodDelete:
		u.record(lenientAct{Op: "delete", Subject: segs[2], Header: own})
	case len(segs) == 3 && segs[0] == "api" && segs[1] == "profiles":
		u.record(lenientAct{Op: "profile", Subject: segs[2], Header: own})
		u.serveProfile(w, r, segs[2], q)
	case len(segs) == 4 && segs[0] == "api" && segs[1] == "profiles" && segs[3] == "contact":
		phone := body.Phone
		if v, ok := q["phone"]; ok {
			phone = v
		}
		u.record(lenientAct{Op: "contact", Subject: segs[2], Phone: phone, Address: body.Address, Header: own})
		w.Write([]byte(`{"stored":true}`))
	case len(segs) == 4 && segs[0] == "api" && segs[1] == "campaigns" && segs[3] == "send":
		for _, s := range body.Recipients {
			u.record(lenientAct{Op: "send", Subject: s, Header: own})
		}
		json.NewEncoder(w).Encode(map[string]any{"recipients": body.Recipients})
	case len(segs) == 2 && segs[0] == "api" && segs[1] == "customers":
		c := body.Customer
		if v, ok := q["customer"]; ok {
			c = v // the query wins, as in frameworks that merge parameters
		}
		u.record(lenientAct{Op: "customer", Subject: c, Header: own})
		w.Write([]byte(`{"ok":true}`))
	case len(segs) == 2 && segs[0] == "api" && segs[1] == "orders":
		u.record(lenientAct{Op: "orders", Subject: q["uid"], Header: own})
		w.Write([]byte(`{"orders":[]}`))
	case len(segs) == 2 && segs[0] == "api" && segs[1] == "tags":
		u.record(lenientAct{Op: "tags", Subject: lenientHeader(r.Header, "X-Customer"), Header: own})
		w.Write([]byte(`{"tags":[]}`))
	default:
		u.record(lenientAct{Op: "health", Header: own})
		w.Write([]byte(`{"status":"ok"}`))
	}
}

// serveProfile answers a profile read; the query asks for the ways an upstream's response
// can slip past minimisation: stream (flush, then a body that is not JSON), trailer (the
// email in a trailer), variant (the email twice, in two spellings). A Range header is
// honoured, and Accept-Encoding: gzip compresses.
func (u *lenientUpstream) serveProfile(w http.ResponseWriter, r *http.Request, id string, q map[string]string) {
	doc := strings.Replace(lenientProfile, "%s", id, 1)
	switch {
	case q["stream"] != "":
		w.WriteHeader(http.StatusOK)
		w.Write([]byte(`{"id":"` + id + `","email":"li.lei@example.com"`))
		http.NewResponseController(w).Flush()
		time.Sleep(50 * time.Millisecond)
		w.Write([]byte(` -- not JSON after all`))
		return
	case q["trailer"] != "":
		w.Header().Set("Trailer", "X-Email")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte(doc))
		w.Header().Set("X-Email", "li.lei@example.com")
		return
	case q["variant"] != "":
		w.Write([]byte(`{"id":"` + id + `","email":"li.lei@example.com","EMAIL":"li.lei@example.com"}`))
		return
	case strings.Contains(r.Header.Get("Accept-Encoding"), "gzip"):
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		zw.Write([]byte(doc))
		zw.Close()
		return
	}
	http.ServeContent(w, r, "profile.json", time.Time{}, strings.NewReader(doc))
}

// sidecarRun is a `privguard serve` with a sidecar, started by startSidecar.
type sidecarRun struct {
	proxy, admin, token, dir string
	logs                     *syncBuffer
	// stop cancels serve and returns its exit code (once; later calls return 0).
	stop func() int
}

// startSidecar runs `privguard serve --config` with the given configuration body (listen,
// admin_listen, upstream and data_dir are filled in) in front of upstream. It is stopped
// when the test ends.
func startSidecar(t *testing.T, upstream, body string) sidecarRun {
	t.Helper()
	s := sidecarRun{dir: t.TempDir(), logs: &syncBuffer{}}
	cfg := filepath.Join(s.dir, "privguard.yaml")
	text := "listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\nupstream: " + upstream + "\ndata_dir: " + s.dir + "\n" + body
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--config", cfg}, os.Getenv, pw, s.logs)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	for (s.proxy == "" || s.admin == "") && sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, "http://"); i >= 0 {
			u := strings.Fields(line[i:])[0]
			if strings.Contains(line, "sidecar") {
				s.proxy = u
			} else {
				s.admin = u
			}
		}
	}
	go io.Copy(io.Discard, pr)
	if s.proxy == "" || s.admin == "" {
		cancel()
		t.Fatalf("serve did not print both addresses; logs:\n%s", s.logs.String())
	}
	tok, err := os.ReadFile(filepath.Join(s.dir, "admin.token"))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	s.token = strings.TrimSpace(string(tok))
	var once sync.Once
	s.stop = func() int {
		code := 0
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(20 * time.Second):
				t.Error("serve did not stop within 20s")
				code = -1
			}
		})
		return code
	}
	t.Cleanup(func() { s.stop() })
	return s
}

// rawRequest sends req exactly as built (header names as given, the URL's opaque path
// kept) and returns the status, the body and the response.
func rawRequest(t *testing.T, req *http.Request) (int, string, *http.Response) {
	t.Helper()
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp
}

// newRawRequest builds a request whose path is sent byte for byte as target (escapes and
// all) to base.
func newRawRequest(t *testing.T, method, base, target, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, base+"/", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	if body == "" {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	p, q, _ := strings.Cut(target, "?")
	req.URL.Opaque = "//" + req.URL.Host + p
	req.URL.RawQuery = q
	return req
}
