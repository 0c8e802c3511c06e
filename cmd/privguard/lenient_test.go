package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
)

// lenientUpstream is the service an attacker hopes to find behind the sidecar: it reads
// requests as loosely as real frameworks do, and acts on every reading it finds. It routes
// paths case-insensitively, ignores a trailing slash, decodes %2F before routing, resolves
// dot segments, strips ";..." matrix parameters and a ".format" suffix (Rails), and honours
// X-HTTP-Method-Override, _method (query, form or JSON body) and X-Original-URL. A parameter
// is read from every source a framework merges: the path, the query (split on '&' and ';',
// names normalised as PHP, Rack and qs do: " uid", "uid\0x", "[uid]", "uid[]", "user.id",
// any case, '_' and '-' ignored as encoding/json/v2's case:ignore does), a form or
// multipart body, a JSON body at any depth (Rails' ParamsWrapper), sent as JSON or not (and
// gunzipped, as Express does), and cookies (PHP's $_REQUEST). Headers are read as CGI does
// ("X_Customer" is "X-Customer"), the last one winning. It records whom each request acted
// on, so a test can ask whether a request reached a subject.
type lenientUpstream struct {
	mu    sync.Mutex
	acted []lenientAct
}

type lenientAct struct {
	Op      string // "profile", "send", "customer", "orders", "tags", "contact", "delete", "health"
	Subject string
	Phone   string      // the phone number a contact update stored
	Address string      // the address a contact update stored
	Header  http.Header // the X-Privguard-* headers it received
	Spoofed []string    // forwarding headers only a trusted proxy may send, as received
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

// since returns the acts recorded after the first n.
func (u *lenientUpstream) since(n int) []lenientAct {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]lenientAct(nil), u.acted[n:]...)
}

// len is how many acts were recorded.
func (u *lenientUpstream) len() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.acted)
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

// lenientName normalises a parameter name as the loosest frameworks do.
func lenientName(k string) string {
	if i := strings.IndexByte(k, 0); i >= 0 {
		k = k[:i]
	}
	k = strings.TrimLeft(k, " []")
	if i := strings.IndexAny(k, "[]"); i >= 0 {
		k = k[:i]
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '_', '-', '.', ' ':
			return -1
		}
		return unicode.ToLower(r)
	}, k)
}

// lenientQuery splits on '&' and ';' and keeps every value of every name, by lenientName.
func lenientQuery(raw string) map[string][]string {
	out := map[string][]string{}
	for _, part := range strings.FieldsFunc(raw, func(r rune) bool { return r == '&' || r == ';' }) {
		k, v, _ := strings.Cut(part, "=")
		k, _ = url.QueryUnescape(k)
		v, _ = url.QueryUnescape(v)
		out[lenientName(k)] = append(out[lenientName(k)], v)
	}
	return out
}

// params are the readings of every parameter a request carries, by lenientName.
type params map[string][]string

func (p params) add(k string, v ...string) { p[lenientName(k)] = append(p[lenientName(k)], v...) }

// read collects the request's parameters from the query, the cookies and the body.
func readParams(r *http.Request, raw []byte) params {
	p := params{}
	for k, vs := range lenientQuery(r.URL.RawQuery) {
		p[k] = append(p[k], vs...)
	}
	for _, c := range r.Cookies() {
		p.add(c.Name, c.Value)
	}
	mt, ps, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "application/x-www-form-urlencoded":
		for k, vs := range lenientQuery(string(raw)) {
			p[k] = append(p[k], vs...)
		}
	case "multipart/form-data":
		mr := multipart.NewReader(bytes.NewReader(raw), ps["boundary"])
		for part, err := mr.NextPart(); err == nil; part, err = mr.NextPart() {
			v, _ := io.ReadAll(part)
			p.add(part.FormName(), string(v))
		}
	default:
		var doc any
		if json.Unmarshal(raw, &doc) == nil {
			p.walk(doc)
		}
	}
	return p
}

// walk adds every string (or list of strings) under every key of a JSON value, at any depth.
func (p params) walk(v any) {
	switch x := v.(type) {
	case map[string]any:
		for k, v := range x {
			switch y := v.(type) {
			case string:
				p.add(k, y)
			case []any:
				for _, e := range y {
					if s, ok := e.(string); ok {
						p.add(k, s)
					}
				}
			}
			p.walk(v)
		}
	case []any:
		for _, e := range x {
			p.walk(e)
		}
	}
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
	var rd io.Reader = r.Body
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		if zr, err := gzip.NewReader(r.Body); err == nil {
			rd = zr
		}
	}
	raw, _ := io.ReadAll(rd)
	p := readParams(r, raw)
	method := r.Method
	if m := lenientHeader(r.Header, "X-HTTP-Method-Override"); m != "" {
		method = strings.ToUpper(m)
	}
	if m := p["method"]; len(m) > 0 { // _method, anywhere
		method = strings.ToUpper(m[len(m)-1])
	}
	own := http.Header{}
	for k, v := range r.Header {
		if strings.HasPrefix(strings.ToLower(k), "x-privguard-") {
			own[k] = v
		}
	}
	var spoofed []string
	for _, h := range []string{"X-Real-Ip", "X-Forwarded-Prefix", "X_real_ip"} {
		spoofed = append(spoofed, r.Header.Values(h)...)
	}
	escaped := r.URL.EscapedPath()
	if u := lenientHeader(r.Header, "X-Original-URL"); u != "" {
		escaped = u // Symfony, IIS: the path a front proxy rewrote from
	}
	segs := strings.Split(strings.Trim(lenientPath(escaped), "/"), "/")
	// actOn records an act for the path's subject (a ".format" suffix stripped) and every
	// other reading of name.
	actOn := func(op, fromPath, name string) {
		if i := strings.LastIndexByte(fromPath, '.'); i > 0 {
			fromPath = fromPath[:i]
		}
		seen := map[string]bool{}
		for _, s := range append([]string{fromPath}, p[lenientName(name)]...) {
			if s != "" && !seen[s] {
				seen[s] = true
				u.record(lenientAct{Op: op, Subject: s, Header: own})
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	switch {
	case len(segs) == 3 && segs[0] == "api" && segs[1] == "profiles" && method == http.MethodDelete:
		actOn("delete", segs[2], "id")
	case len(segs) == 3 && segs[0] == "api" && segs[1] == "profiles":
		actOn("profile", segs[2], "id")
		u.serveProfile(w, r, segs[2], lenientQuery(r.URL.RawQuery))
	case len(segs) == 3 && segs[0] == "api" && segs[1] == "sms":
		actOn("sms", segs[2], "id")
		w.Write([]byte(`{"sent":true}`))
	case len(segs) == 4 && segs[0] == "api" && segs[1] == "profiles" && segs[3] == "contact":
		actOn("contact", segs[2], "id")
		for _, v := range p["phone"] {
			u.record(lenientAct{Op: "contact", Phone: v, Header: own})
		}
		for _, v := range p["address"] {
			u.record(lenientAct{Op: "contact", Address: v, Header: own})
		}
		w.Write([]byte(`{"stored":true}`))
	case len(segs) == 4 && segs[0] == "api" && segs[1] == "campaigns" && segs[3] == "send":
		actOn("send", "", "recipients")
		json.NewEncoder(w).Encode(map[string]any{"recipients": p["recipients"]})
	case len(segs) == 2 && segs[0] == "api" && segs[1] == "customers":
		actOn("customer", "", "customer")
		w.Write([]byte(`{"ok":true}`))
	case len(segs) == 2 && segs[0] == "api" && segs[1] == "orders":
		actOn("orders", "", "uid")
		q := lenientQuery(r.URL.RawQuery)
		if q["forge"] != nil { // an upstream's own X-Privguard-* response headers
			w.Header().Set("X-Privguard-Decision", "forged")
			w.Header().Set("X-Privguard-Non-Personalised", "1")
		}
		if q["hints"] != nil { // Early Hints: httputil.ReverseProxy clears its headers after
			w.Header().Set("Link", "</app.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
		}
		w.Write([]byte(`{"orders":[]}`))
	case len(segs) == 2 && segs[0] == "api" && segs[1] == "tags":
		u.record(lenientAct{Op: "tags", Subject: lenientHeader(r.Header, "X-Customer"), Header: own})
		w.Write([]byte(`{"tags":[]}`))
	default:
		u.record(lenientAct{Op: "health", Header: own, Spoofed: spoofed})
		w.Write([]byte(`{"status":"ok"}`))
	}
}

// serveProfile answers a profile read; the query asks for the ways an upstream's response
// can slip past minimisation: stream (flush, then a body that is not JSON), trailer (the
// email in a trailer), variant (the email twice, in two spellings). A Range header is
// honoured, Accept-Encoding: gzip compresses, and Accept: application/vnd.api+json gets a
// JSON:API document (the email under data.attributes).
func (u *lenientUpstream) serveProfile(w http.ResponseWriter, r *http.Request, id string, q map[string][]string) {
	doc := strings.Replace(lenientProfile, "%s", id, 1)
	switch {
	case strings.Contains(r.Header.Get("Accept"), "application/vnd.api+json"):
		w.Header().Set("Content-Type", "application/vnd.api+json")
		w.Write([]byte(`{"data":{"id":"` + id + `","attributes":{"email":"li.lei@example.com","history":["sku-1"]}}}`))
		return
	case q["stream"] != nil:
		w.WriteHeader(http.StatusOK)
		w.Write([]byte(`{"id":"` + id + `","email":"li.lei@example.com"`))
		http.NewResponseController(w).Flush()
		time.Sleep(50 * time.Millisecond)
		w.Write([]byte(` -- not JSON after all`))
		return
	case q["trailer"] != nil:
		w.Header().Set("Trailer", "X-Email")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte(doc))
		w.Header().Set("X-Email", "li.lei@example.com")
		return
	case q["variant"] != nil:
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
