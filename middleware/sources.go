package middleware

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/internal/jsonpath"
)

// Why every source is checked: a route's locator names one place the subject is read from,
// but frameworks read a parameter from wherever they find it. Laravel's $request->id and
// input() take the JSON or form body before the query (also on a GET), and before the
// route's own path parameter; plain PHP's $_REQUEST adds cookies; Rails merges query and body
// parameters and wraps a JSON body under the controller's name (ParamsWrapper); Express's qs
// reads "uid[]=" as a list; PHP reads " uid", "uid\0x" and "user.id" as uid and user_id; Rack
// drops the brackets of "[uid]". So every name privguard enforces must mean one thing across
// the query, the body (at any depth), form and multipart fields, and cookies: a subject
// locator may be repeated elsewhere only with the same value, a batch or a sealed field not at
// all, and _method (which Laravel and Rack take as the real method) nowhere.

// paramName is the name PHP, Rack and qs give a query, form or cookie parameter k: cut at a
// NUL, leading spaces and brackets dropped, the root before the next bracket
// ("profile[phone]" sets profile, Rack reads "[uid]" as uid), '.' and ' ' read as '_' as
// PHP does.
func paramName(k string) string {
	if i := strings.IndexByte(k, 0); i >= 0 {
		k = k[:i]
	}
	k = strings.TrimLeft(k, " []")
	if i := strings.IndexAny(k, "[]"); i >= 0 {
		k = k[:i]
	}
	return strings.Map(func(r rune) rune {
		if r == '.' || r == ' ' {
			return '_'
		}
		return r
	}, k)
}

// looseName is the key names are compared by: paramName, then jsonpath.Fold (case, '_' and
// '-', Unicode folding).
func looseName(k string) string { return jsonpath.Fold(paramName(k)) }

func isMethodOverride(k string) bool { return strings.EqualFold(paramName(k), "_method") }

// sealedName is a sealed field, for the source checks.
type sealedName struct {
	path       []string
	root, leaf string // looseName of its first and last element
}

// names are the names a route enforces, computed once.
type names struct {
	locator string // looseName of the subject locator (path wildcard, query parameter, JSON key); "" for a header
	batch   bool   // the locator is a batch (no other occurrence allowed, whatever its value)
	sealed  []sealedName
}

func routeNames(r Route, encrypt []string) names {
	var n names
	switch {
	case r.Subject.Path != "":
		n.locator = looseName(r.Subject.Path)
	case r.Subject.Query != "":
		n.locator = looseName(r.Subject.Query)
	case r.Subject.JSON != "":
		n.locator = looseName(r.Subject.JSON)
	case r.Subjects.JSON != "":
		n.locator, n.batch = looseName(r.Subjects.JSON), true
	}
	for _, p := range encrypt {
		path := strings.Split(p, ".")
		n.sealed = append(n.sealed, sealedName{path: path, root: looseName(path[0]), leaf: looseName(path[len(path)-1])})
	}
	return n
}

// sealedParam reports whether a query, form or cookie parameter k could set a sealed field.
func (n *names) sealedParam(k string) bool {
	lk := looseName(k)
	for _, s := range n.sealed {
		if lk == s.root || lk == s.leaf {
			return true
		}
	}
	return false
}

// body is what a route read of a request body.
type body struct {
	data  []byte // nil: no body, or one of a type no framework parses into parameters (not read)
	media string // its media type, lower case ("" if none was sent)
	kind  bodyKind
}

type bodyKind int

const (
	bodyNone  bodyKind = iota // no Content-Type
	bodyJSON                  // application/json, */*+json
	bodyForm                  // application/x-www-form-urlencoded
	bodyMulti                 // multipart/form-data
	bodyText                  // text/plain
	bodyOther                 // anything else: not parsed into parameters
)

func kindOf(media string) bodyKind {
	switch {
	case media == "":
		return bodyNone
	case media == "application/json" || strings.HasSuffix(media, "+json"):
		return bodyJSON
	case media == "application/x-www-form-urlencoded":
		return bodyForm
	case media == "multipart/form-data":
		return bodyMulti
	case media == "text/plain":
		return bodyText
	}
	return bodyOther
}

// readBody reads what the route must see of r's body. A route that reads its subjects from
// the body takes JSON only (415 otherwise: a form parser would read other subjects out of the
// same bytes), a route that seals fields JSON or text (415 for forms and multipart); any
// body a framework parses into parameters (JSON, form, multipart, or untyped) is read whole,
// up to MaxBody, for the source checks, and must then be uncompressed UTF-8. Other bodies (an
// image upload) are streamed to the handler unread.
func (rt *route) readBody(w http.ResponseWriter, r *http.Request) (body, *privguard.Problem) {
	ct, p := oneHeader(r.Header, "Content-Type")
	if p != nil {
		return body{}, p
	}
	var b body
	var params map[string]string
	if ct != "" {
		mt, ps, err := mime.ParseMediaType(ct)
		if err != nil {
			return body{}, unsupported("the Content-Type cannot be parsed")
		}
		b.media, params = mt, ps
	}
	b.kind = kindOf(b.media)
	fromBody := rt.Subject.JSON != "" || rt.Subjects.JSON != ""
	switch {
	case fromBody && b.kind != bodyJSON && b.kind != bodyNone:
		return body{}, unsupported("this route reads its subjects from a JSON body: send it as application/json")
	case len(rt.encrypt) > 0 && b.kind != bodyJSON && b.kind != bodyNone && b.kind != bodyText:
		return body{}, unsupported("this route seals fields of JSON bodies; privguard cannot inspect this body, so it is not passed on")
	}
	hasBody := r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
	if !hasBody {
		if fromBody {
			return body{}, malformed("the body is empty")
		}
		return b, nil
	}
	if !fromBody && len(rt.encrypt) == 0 && b.kind == bodyOther {
		return b, nil // streamed: no framework reads parameters out of it
	}
	enc, p := oneHeader(r.Header, "Content-Encoding")
	if p != nil {
		return body{}, p
	}
	if enc != "" && !strings.EqualFold(enc, "identity") {
		return body{}, unsupported("privguard reads this body to enforce the route and cannot read it compressed; send it uncompressed")
	}
	if cs := params["charset"]; cs != "" && !strings.EqualFold(cs, "utf-8") {
		return body{}, unsupported("the body must be UTF-8")
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, rt.cfg.MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return body{}, privguard.NewProblem(http.StatusRequestEntityTooLarge, TypeBodyTooLarge, "Body too large",
				"the body must be at most "+strconv.FormatInt(rt.cfg.MaxBody, 10)+" bytes")
		}
		return body{}, malformed("the body could not be read")
	}
	b.data = data
	return b, nil
}

// checkSources refuses a request in which a name the route enforces could be read another
// way (see the top of this file). subject is the single subject privguard checked ("" for a
// batch): a locator's name may appear elsewhere only with that same value.
func (rt *route) checkSources(r *http.Request, b body, subject string) *privguard.Problem {
	n := &rt.names
	// The query: the locator's own parameter once, spelled as configured; anything else
	// that names it only with the same value.
	for k, vs := range r.URL.Query() {
		if rt.cfg.StrictPaths && isMethodOverride(k) {
			return notCanonical("_method is not accepted: send the request with its real method")
		}
		if n.sealedParam(k) {
			return ambiguous("the query string names a sealed field; send it in the JSON body")
		}
		if n.locator == "" || looseName(k) != n.locator {
			continue
		}
		if rt.Subject.Query != "" && k == rt.Subject.Query && len(vs) == 1 {
			continue // the locator itself
		}
		if n.batch || !allEqual(vs, subject) || rt.Subject.Query != "" {
			return ambiguous("the query string names the subject more than once or under another name")
		}
	}
	for _, c := range r.Cookies() {
		switch {
		case rt.cfg.StrictPaths && isMethodOverride(c.Name):
			return notCanonical("a _method cookie is not accepted")
		case n.sealedParam(c.Name):
			return ambiguous("a cookie is named like a sealed field")
		case n.locator != "" && looseName(c.Name) == n.locator && (n.batch || c.Value != subject):
			// PHP's $_REQUEST takes cookies over the query.
			return ambiguous("a cookie is named like the subject locator, with another value")
		}
	}
	if b.data == nil {
		return nil
	}
	var fields func(yield func(k string, vs []string) bool) error
	switch b.kind {
	case bodyForm:
		form, err := url.ParseQuery(string(b.data))
		if err != nil {
			return ambiguous("the form body cannot be parsed one way only (a semicolon or a bad escape)")
		}
		fields = func(yield func(string, []string) bool) error {
			for k, vs := range form {
				if !yield(k, vs) {
					break
				}
			}
			return nil
		}
	case bodyMulti:
		_, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		fields = func(yield func(string, []string) bool) error {
			mr := multipart.NewReader(bytes.NewReader(b.data), params["boundary"])
			for {
				part, err := mr.NextPart()
				if errors.Is(err, io.EOF) {
					return nil
				}
				if err != nil {
					return err
				}
				v, _ := io.ReadAll(io.LimitReader(part, int64(len(b.data))))
				if !yield(part.FormName(), []string{string(v)}) {
					return nil
				}
			}
		}
	default:
		return rt.checkJSONSources(b.data, b.kind, subject)
	}
	var prob *privguard.Problem
	err := fields(func(k string, vs []string) bool {
		switch {
		case rt.cfg.StrictPaths && isMethodOverride(k):
			prob = notCanonical("_method is not accepted: send the request with its real method")
		case n.sealedParam(k):
			prob = ambiguous("a form field is named like a sealed field")
		case n.locator != "" && looseName(k) == n.locator && (n.batch || !allEqual(vs, subject)):
			prob = ambiguous("a form field names the subject, with another value")
		}
		return prob == nil
	})
	if err != nil {
		return ambiguous("the multipart body cannot be parsed")
	}
	return prob
}

// checkJSONSources checks the keys of a body that is JSON (a body that is not is left to
// the locator's own reading): the locator's name may appear at any depth other than its own
// place only with the subject as its value (Rails' ParamsWrapper reads a nested copy), a
// sealed field's name only at its path, _method not at the top.
func (rt *route) checkJSONSources(doc []byte, kind bodyKind, subject string) *privguard.Problem {
	n := &rt.names
	var prob *privguard.Problem
	err := jsonpath.Keys(doc, func(parents []string, key string, val []byte) error {
		lk := looseName(key)
		switch {
		case len(parents) == 0 && rt.cfg.StrictPaths && isMethodOverride(key):
			prob = notCanonical("_method is not accepted: send the request with its real method")
		case n.locator != "" && lk == n.locator:
			own := len(parents) == 0 && (key == rt.Subject.JSON || key == rt.Subjects.JSON)
			if !own && (n.batch || !jsonString(val, subject)) {
				prob = ambiguous("the body names the subject again, with another value (" + jsonPathOf(parents, key) + ")")
			}
		}
		for _, s := range n.sealed {
			if prob == nil && lk == s.leaf && !atPath(parents, key, s.path) {
				prob = ambiguous("the body holds a sealed field's name outside its path (" + jsonPathOf(parents, key) + ")")
			}
		}
		if prob != nil {
			return errStop
		}
		return nil
	})
	switch {
	case prob != nil:
		return prob
	case errors.Is(err, jsonpath.ErrTooDeep):
		return malformed("the body is nested deeper than " + strconv.Itoa(jsonpath.MaxDepth) + " levels")
	case errors.Is(err, jsonpath.ErrNotJSON) && kind == bodyJSON:
		// A lenient parser (comments, trailing commas, a BOM) could still read parameters
		// out of it; privguard cannot check them.
		return malformed("the body is not valid JSON")
	}
	return nil // untyped and not JSON: no framework reads parameters out of it
}

var errStop = errors.New("middleware: stop")

func atPath(parents []string, key string, path []string) bool {
	if len(parents)+1 != len(path) || key != path[len(path)-1] {
		return false
	}
	for i, p := range parents {
		if p != path[i] {
			return false
		}
	}
	return true
}

// jsonPathOf names a key by the path of keys to it (configured names or the body's own, never
// values).
func jsonPathOf(parents []string, key string) string {
	p := strings.Join(append(parents[:len(parents):len(parents)], key), ".")
	if len(p) > 100 {
		p = p[:100] + "..."
	}
	return strconv.Quote(p)
}

func allEqual(vs []string, want string) bool {
	for _, v := range vs {
		if v != want {
			return false
		}
	}
	return want != ""
}

// jsonString reports whether the JSON value val is the string want.
func jsonString(val []byte, want string) bool {
	val = bytes.TrimSpace(val)
	if want == "" || len(val) < 2 || val[0] != '"' {
		return false
	}
	if bytes.IndexByte(val, '\\') < 0 {
		return string(val[1:len(val)-1]) == want
	}
	return unquoteEq(val, want)
}
