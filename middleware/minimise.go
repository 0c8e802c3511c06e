package middleware

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"mime"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/internal/jsonpath"
)

// routeField is one of a route's response fields, with its rewrites prepared.
type routeField struct {
	category   privguard.DataCategory
	drop, mask fieldOp
}

// routeFields prepares the rewrites of a route's fields, in path order.
func routeFields(fields map[string]privguard.DataCategory) []routeField {
	out := make([]routeField, 0, len(fields))
	for _, path := range slices.Sorted(maps.Keys(fields)) {
		out = append(out, routeField{category: fields[path], drop: newFieldOp(path, nil), mask: newFieldOp(path, maskValue)})
	}
	return out
}

func within(c privguard.DataCategory, of []privguard.DataCategory) bool {
	for _, oc := range of {
		if c.Within(oc) {
			return true
		}
	}
	return false
}

// obligedOps appends to ops the rewrites d obliges: the fields to drop, then those to mask.
func obligedOps(fields []routeField, d privguard.Decision, ops []fieldOp) []fieldOp {
	for _, kind := range [...]privguard.ObligationKind{privguard.ObligeDrop, privguard.ObligeMask} {
		for _, o := range d.Obligations {
			if o.Kind != kind {
				continue
			}
			for _, f := range fields {
				if within(f.category, o.Categories) {
					if kind == privguard.ObligeDrop {
						ops = append(ops, f.drop)
					} else {
						ops = append(ops, f.mask)
					}
				}
			}
		}
	}
	return ops
}

// minimiser buffers a JSON response so that fields can be dropped or masked before it
// leaves. Nothing reaches the client before finish decides: flushes are absorbed (a
// streaming handler, or httputil.ReverseProxy streaming an upstream, would otherwise send
// the status and headers of a response that then cannot be minimised), hijacking is
// refused, informational (1xx) responses are dropped, and headers added after the status
// (trailers) are not sent.
type minimiser struct {
	http.ResponseWriter
	status   int
	sent     []string // the names of the handler's headers when it sent the status
	buf      bytes.Buffer
	limit    int
	overflow bool
}

func (m *minimiser) WriteHeader(code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		return // an Early Hints or Continue answer would send headers before finish
	}
	if m.status == 0 {
		m.status = code
		h := m.ResponseWriter.Header()
		m.sent = make([]string, 0, len(h))
		for k := range h {
			m.sent = append(m.sent, k)
		}
	}
}

func (m *minimiser) Write(b []byte) (int, error) {
	if m.status == 0 {
		m.WriteHeader(http.StatusOK)
	}
	if m.buf.Len()+len(b) > m.limit {
		m.overflow = true
		return len(b), nil // swallowed: the response is replaced in finish
	}
	return m.buf.Write(b)
}

// Flush and FlushError absorb flushes: the body is sent by finish.
func (m *minimiser) Flush() {}

// FlushError is what http.ResponseController calls; it finds it before Unwrap.
func (m *minimiser) FlushError() error { return nil }

// Hijack refuses: a hijacked connection would bypass the rewrite.
func (m *minimiser) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return nil, nil, http.ErrNotSupported
}

// Unwrap lets http.ResponseController reach the real writer (deadlines).
func (m *minimiser) Unwrap() http.ResponseWriter { return m.ResponseWriter }

// restoreHeader keeps only the headers the handler had when it sent the status: whatever
// it set after (trailer values, which httputil.ReverseProxy copies from the upstream after
// the body, even over a header of the same name), the trailers it announced and the Trailer
// announcement itself are not sent, since they were not minimised.
func (m *minimiser) restoreHeader() {
	h := m.ResponseWriter.Header()
	for _, v := range h.Values("Trailer") {
		for name := range strings.SplitSeq(v, ",") {
			h.Del(strings.TrimSpace(name))
		}
	}
	for k := range h {
		if k == "Trailer" || strings.HasPrefix(k, http.TrailerPrefix) || (m.sent != nil && !slices.Contains(m.sent, k)) {
			delete(h, k)
		}
	}
}

// finish minimises the buffered body and sends it. A body that cannot be minimised (not
// JSON, too large, malformed) is never passed on.
func (m *minimiser) finish(open func([]byte) ([]byte, error), ops []fieldOp, cfg *Config) {
	if m.status == 0 {
		m.status = http.StatusOK
	}
	m.restoreHeader()
	w := m.ResponseWriter
	if m.buf.Len() == 0 && !m.overflow {
		// No body (HEAD, 204, 304): the length of the unminimised one is not passed on.
		w.Header().Del("Content-Length")
		w.WriteHeader(m.status)
		return
	}
	fail := func(why string) {
		cfg.Logger.Error("privguard: response not minimised; replaced", "why", why)
		h := w.Header()
		h.Del("Content-Length")
		h.Del("Content-Encoding")
		h.Del("Etag")
		privguard.NewProblem(http.StatusBadGateway, TypeResponseUnreadable, "Response could not be minimised",
			"the handler's response was withheld").Write(w)
	}
	if m.overflow {
		fail("response larger than MaxResponse")
		return
	}
	mt, params, _ := mime.ParseMediaType(w.Header().Get("Content-Type"))
	if mt != "application/json" && mt != privguard.ProblemContentType {
		// Another JSON media type (JSON:API, HAL) has another shape than the field paths.
		fail("response is not application/json")
		return
	}
	if !utf8Charset(params["charset"]) {
		fail("response is not UTF-8")
		return
	}
	if enc := w.Header().Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "identity") {
		fail("response is encoded")
		return
	}
	doc := bytes.TrimSpace(m.buf.Bytes())
	if !json.Valid(doc) {
		fail("response is malformed JSON")
		return
	}
	if open != nil {
		opened, err := open(doc)
		if err != nil {
			fail("sealed fields did not open")
			return
		}
		doc = opened
	}
	// The fast rewrite also refuses a field named twice or spelled another way (a client
	// that reads keys case-insensitively could read the variant privguard did not drop);
	// before the slow one, the document is checked for that on its own.
	out, err := rewriteFast(make([]byte, 0, len(doc)), doc, ops)
	if errors.Is(err, errSlowPath) {
		checked := make([]string, len(ops))
		for i, op := range ops {
			checked[i] = op.dotted
		}
		if err = jsonpath.CheckPaths(doc, checked); err == nil {
			out, err = rewrite(doc, ops)
		} else {
			err = errAmbiguousKey
		}
	}
	switch {
	case errors.Is(err, errAmbiguousKey):
		fail("response names a minimised field twice or in another spelling")
		return
	case err != nil:
		fail("response cannot be rewritten")
		return
	}
	out = append(out, '\n')
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.Header().Del("Etag") // the body changed
	w.WriteHeader(m.status)
	_, _ = w.Write(out)
}

// fieldOp drops (mask == nil) or masks the field at path.
type fieldOp struct {
	dotted string
	path   []string
	folds  []string // jsonpath.Fold of each element of path
	mask   func(any) any
}

func newFieldOp(dotted string, mask func(any) any) fieldOp {
	op := fieldOp{dotted: dotted, path: strings.Split(dotted, "."), mask: mask}
	op.folds = make([]string, len(op.path))
	for i, p := range op.path {
		op.folds[i] = jsonpath.Fold(p)
	}
	return op
}

// rewrite returns doc with ops applied (the slow path of rewriteFast: escaped keys,
// unusual layouts), through the shared path walker.
func rewrite(doc json.RawMessage, ops []fieldOp) (json.RawMessage, error) {
	paths := make([]string, len(ops))
	drop, masks := map[string]bool{}, map[string]func(any) any{}
	for i, op := range ops {
		p := strings.Join(op.path, ".")
		paths[i] = p
		if op.mask == nil {
			drop[p] = true
		} else if masks[p] == nil {
			masks[p] = op.mask
		}
	}
	return jsonpath.Rewrite(doc, paths, func(path string, val json.RawMessage) (json.RawMessage, error) {
		if drop[path] {
			return nil, nil
		}
		var x any
		if err := json.Unmarshal(val, &x); err != nil {
			return nil, err
		}
		return json.Marshal(masks[path](x))
	})
}

func firstByte(b []byte) byte {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c
	}
	return 0
}

// maskValue masks a value for display with privguard.Mask; anything but a string becomes
// "***".
func maskValue(v any) any {
	s, ok := v.(string)
	if !ok {
		return "***"
	}
	return privguard.Mask(s)
}
