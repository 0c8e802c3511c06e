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
// X-HTTP-Method-Override, _method (query, form, multipart or JSON body) and X-Original-URL.
// A parameter is read from every source a framework merges: the path; the query and form
// or multipart fields (split on '&' and ';', any case as ASP.NET binds them, names as PHP,
// Rack, qs and Rails read them: lenientNames); an untyped body as a form (Rack) and as
// JSON; any Content-Type holding "json" as JSON (Laravel); a byte order mark skipped; JSON
// keys compared as encoding/json/v2's case:ignore does, at the top and one level down under
// the controller's ParamsWrapper name; cookies as PHP's $_REQUEST reads them (raw, exact
// names). A gzipped body is inflated (Express). Headers and request trailers are read as
// PHP does (every byte but letters and digits is a '-'), the last one winning. It records
// whom each request acted on, so a test can ask whether a request reached a subject.
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

// lenientNames are the names frameworks read a query, form or multipart parameter k as, lower
// case: PHP cuts at NUL, drops leading spaces and brackets, reads '.' and ' ' as '_' and an
// unclosed "user[id" as user_id; Rack reads "[uid]" as uid; qs and Rails read "uid[]" as uid
// and "campaign[recipients][]" as recipients under campaign (ParamsWrapper takes that hash).
func lenientNames(k string) []string {
	if i := strings.IndexByte(k, 0); i >= 0 {
		k = k[:i]
	}
	k = strings.TrimLeft(k, " []")
	php := func(s string) string { return strings.ToLower(strings.NewReplacer(".", "_", " ", "_").Replace(s)) }
	root := k
	if i := strings.IndexAny(k, "[]"); i >= 0 {
		root = k[:i]
	}
	names := []string{php(root)}
	if i := strings.IndexByte(k, '['); i >= 0 && !strings.Contains(k[i:], "]") {
		names = append(names, php(k[:i]+"_"+k[i+1:]))
	}
	for rest := k; ; {
		o := strings.IndexByte(rest, '[')
		if o < 0 {
			break
		}
		c := strings.IndexByte(rest[o:], ']')
		if c < 0 {
			break
		}
		names = append(names, php(rest[o+1:o+c]))
		rest = rest[o+c+1:]
	}
	return names
}

// lenientKey is how encoding/json/v2's case:ignore compares JSON keys: case and '_' and '-'
// ignored.
func lenientKey(k string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r == '-' {
			return -1
		}
		return unicode.ToLower(r)
	}, k)
}

// lenientQuery splits on '&' and ';' and keeps every value of every name.
func lenientQuery(raw string) map[string][]string {
	out := map[string][]string{}
	for _, part := range strings.FieldsFunc(raw, func(r rune) bool { return r == '&' || r == ';' }) {
		k, v, _ := strings.Cut(part, "=")
		k, _ = url.QueryUnescape(k)
		v, _ = url.QueryUnescape(v)
		for _, n := range lenientNames(k) {
			out[n] = append(out[n], v)
		}
	}
	return out
}

// params are the readings of every parameter a request carries: by lenientNames for the
// query, forms and multipart fields, by exact PHP name for cookies, by lenientKey for JSON
// keys (at the top, and one level down under the controller's wrapper name, as ParamsWrapper
// reads them).
type params struct {
	named   map[string][]string
	cookies map[string][]string
	keys    map[string][]string
}

// get returns every reading of the parameter called name.
func (p params) get(name string) []string {
	var out []string
	out = append(out, p.named[strings.ToLower(name)]...)
	out = append(out, p.cookies[name]...)
	return append(out, p.keys[lenientKey(name)]...)
}

// readParams collects the request's parameters from the query, the cookies and the body;
// wrapper is the ParamsWrapper key of the route's controller.
func readParams(r *http.Request, raw []byte, wrapper string) params {
	p := params{named: lenientQuery(r.URL.RawQuery), cookies: map[string][]string{}, keys: map[string][]string{}}
	for _, line := range r.Header.Values("Cookie") { // raw, as PHP reads them
		for pair := range strings.SplitSeq(line, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(pair), "=")
			for _, n := range lenientNames(k) {
				p.cookies[n] = append(p.cookies[n], v)
			}
		}
	}
	ct := r.Header.Get("Content-Type")
	mt, ps, _ := mime.ParseMediaType(ct)
	switch {
	case strings.Contains(strings.ToLower(ct), "json"): // Laravel's isJson
		p.json(raw, wrapper)
	case mt == "application/x-www-form-urlencoded":
		for k, vs := range lenientQuery(string(raw)) {
			p.named[k] = append(p.named[k], vs...)
		}
	case mt == "multipart/form-data":
		mr := multipart.NewReader(bytes.NewReader(raw), ps["boundary"])
		for part, err := mr.NextPart(); err == nil; part, err = mr.NextPart() {
			v, _ := io.ReadAll(part)
			for _, n := range lenientNames(part.FormName()) {
				p.named[n] = append(p.named[n], string(v))
			}
		}
	case ct == "": // Rack parses an untyped POST as a form; Go handlers decode it as JSON
		for k, vs := range lenientQuery(string(raw)) {
			p.named[k] = append(p.named[k], vs...)
		}
		p.json(raw, wrapper)
	default: // a lenient JSON reader (get_json(force=True)) after a byte order mark
		p.json(bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf")), wrapper)
	}
	return p
}

func (p params) json(raw []byte, wrapper string) {
	var doc map[string]any
	if json.Unmarshal(raw, &doc) != nil {
		return
	}
	p.addKeys(doc)
	for k, v := range doc {
		if m, ok := v.(map[string]any); ok && lenientKey(k) == lenientKey(wrapper) {
			p.addKeys(m)
		}
	}
}

func (p params) addKeys(m map[string]any) {
	for k, v := range m {
		switch y := v.(type) {
		case string:
			p.keys[lenientKey(k)] = append(p.keys[lenientKey(k)], y)
		case []any:
			for _, e := range y {
				if s, ok := e.(string); ok {
					p.keys[lenientKey(k)] = append(p.keys[lenientKey(k)], s)
				}
			}
		}
	}
}

// lenientHeader is the last value of the header PHP knows as name (case folded, every byte
// but letters and digits read as '-'), from the headers or, as PHP's server merges them, the
// trailers.
func lenientHeader(r *http.Request, name string) string {
	norm := func(s string) string {
		return strings.Map(func(c rune) rune {
			if unicode.IsLetter(c) || unicode.IsDigit(c) {
				return unicode.ToLower(c)
			}
			return '-'
		}, s)
	}
	v := ""
	for _, h := range []http.Header{r.Header, r.Trailer} {
		for k, vs := range h {
			if norm(k) == norm(name) && len(vs) > 0 && vs[len(vs)-1] != "" {
				v = vs[len(vs)-1]
			}
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
	segs0 := strings.Split(strings.Trim(lenientPath(r.URL.EscapedPath()), "/"), "/")
	wrapper := map[string]string{"campaigns": "campaign", "customers": "customer_record", "profiles": "profile"}[segs0[min(1, len(segs0)-1)]]
	p := readParams(r, raw, wrapper)
	method := r.Method
	if m := lenientHeader(r, "X-HTTP-Method-Override"); m != "" {
		method = strings.ToUpper(m)
	}
	if m := p.get("_method"); len(m) > 0 { // anywhere
		method = strings.ToUpper(m[len(m)-1])
	}
	own := http.Header{}
	for _, h := range []http.Header{r.Header, r.Trailer} {
		for k, v := range h {
			if n := strings.ToLower(k); strings.HasPrefix(strings.NewReplacer("_", "-", ".", "-").Replace(n), "x-privguard-") && len(v) > 0 && v[0] != "" {
				own[k] = append(own[k], v...)
			}
		}
	}
	var spoofed []string
	for _, h := range []string{"X-Real-Ip", "X-Forwarded-Prefix", "X_real_ip"} {
		spoofed = append(spoofed, r.Header.Values(h)...)
	}
	escaped := r.URL.EscapedPath()
	if u := lenientHeader(r, "X-Original-URL"); u != "" {
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
		for _, s := range append([]string{fromPath}, p.get(name)...) {
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
		for _, v := range p.get("phone") {
			u.record(lenientAct{Op: "contact", Phone: v, Header: own})
		}
		for _, v := range p.get("address") {
			u.record(lenientAct{Op: "contact", Address: v, Header: own})
		}
		w.Write([]byte(`{"stored":true}`))
	case len(segs) == 4 && segs[0] == "api" && segs[1] == "campaigns" && segs[3] == "send":
		actOn("send", "", "recipients")
		json.NewEncoder(w).Encode(map[string]any{"recipients": p.get("recipients")})
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
		u.record(lenientAct{Op: "tags", Subject: lenientHeader(r, "X-Customer"), Header: own})
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
	if err != nil && !(os.IsNotExist(err) && strings.Contains(body, "tokens:")) { // configured tokens: none is written
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
