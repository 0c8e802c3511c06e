package middleware

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/privguard/privguard"
)

// obligedFields returns the response paths to drop and to mask under d.
func obligedFields(fields map[string]privguard.DataCategory, d privguard.Decision) (drop, mask []string) {
	for _, o := range d.Obligations {
		if o.Kind != privguard.ObligeDrop && o.Kind != privguard.ObligeMask {
			continue
		}
		for path, c := range fields {
			for _, oc := range o.Categories {
				if c.Within(oc) {
					if o.Kind == privguard.ObligeDrop {
						drop = append(drop, path)
					} else {
						mask = append(mask, path)
					}
					break
				}
			}
		}
	}
	return drop, mask
}

// minimiser buffers a JSON response so that fields can be dropped or masked before it
// leaves. It keeps the handler's status and headers until finish.
type minimiser struct {
	http.ResponseWriter
	status   int
	buf      bytes.Buffer
	limit    int
	overflow bool
}

func (m *minimiser) WriteHeader(code int) {
	if m.status == 0 {
		m.status = code
	}
}

func (m *minimiser) Write(b []byte) (int, error) {
	if m.status == 0 {
		m.status = http.StatusOK
	}
	if m.buf.Len()+len(b) > m.limit {
		m.overflow = true
		return len(b), nil // swallowed: the response is replaced in finish
	}
	return m.buf.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer.
func (m *minimiser) Unwrap() http.ResponseWriter { return m.ResponseWriter }

// finish minimises the buffered body and sends it. A body that cannot be minimised (not
// JSON, too large, malformed) is never passed on.
func (m *minimiser) finish(drop, mask []string, cfg *Config) {
	if m.status == 0 {
		m.status = http.StatusOK
	}
	w := m.ResponseWriter
	if m.buf.Len() == 0 && !m.overflow {
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
	mt, _, _ := mime.ParseMediaType(w.Header().Get("Content-Type"))
	if mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		fail("response is not JSON")
		return
	}
	if w.Header().Get("Content-Encoding") != "" {
		fail("response is encoded")
		return
	}
	dec := json.NewDecoder(&m.buf)
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		fail("response is malformed JSON")
		return
	}
	for _, p := range drop {
		walk(doc, strings.Split(p, "."), func(obj map[string]any, key string) { delete(obj, key) })
	}
	for _, p := range mask {
		walk(doc, strings.Split(p, "."), func(obj map[string]any, key string) {
			if v, ok := obj[key]; ok {
				obj[key] = maskValue(v)
			}
		})
	}
	out, err := json.Marshal(doc)
	if err != nil {
		fail("response cannot be re-encoded")
		return
	}
	out = append(out, '\n')
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.Header().Del("Etag") // the body changed
	w.WriteHeader(m.status)
	_, _ = w.Write(out)
}

// walk calls fn for every object holding the last part of path, descending through
// objects and, element by element, arrays.
func walk(v any, path []string, fn func(obj map[string]any, key string)) {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			walk(e, path, fn)
		}
	case map[string]any:
		if len(path) == 1 {
			fn(x, path[0])
			return
		}
		if next, ok := x[path[0]]; ok {
			walk(next, path[1:], fn)
		}
	}
}

// maskValue masks a value for display (GB/T 35273 §7.2 style): phone numbers keep the first
// three and last four digits (138****5678), emails the first letter and the domain, other
// strings their first character; anything else becomes "***".
func maskValue(v any) any {
	s, ok := v.(string)
	if !ok {
		return "***"
	}
	r := []rune(s)
	switch {
	case len(r) == 0:
		return s
	case strings.Contains(s, "@"):
		at := strings.LastIndex(s, "@")
		return string([]rune(s[:at])[:1]) + "***" + s[at:]
	case len(r) >= 7 && digits(s):
		return string(r[:3]) + strings.Repeat("*", len(r)-7) + string(r[len(r)-4:])
	default:
		return string(r[:1]) + "***"
	}
}

func digits(s string) bool {
	n := 0
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			n++
		case c == '+' || c == '-' || c == ' ':
		default:
			return false
		}
	}
	return n >= 7
}
