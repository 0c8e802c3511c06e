package middleware

import (
	"bufio"
	"bytes"
	"encoding/json"
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
// route's own path parameter, and take any Content-Type holding "json" for JSON; plain PHP's
// $_REQUEST adds cookies; Rails merges query and body parameters and wraps a JSON body under
// the controller's name (ParamsWrapper), unless that name is already given; Rack parses an
// untyped POST body as a form; Express's qs reads "uid[]=" as a list; PHP reads " uid",
// "uid\0x", "user.id" and "user[id" as uid and user_id; Rack drops the brackets of "[uid]";
// ASP.NET's model binding ignores case. So every name privguard enforces must mean one thing
// across the query, the body, form and multipart fields, and cookies: a subject locator may
// be repeated elsewhere only with the same value, a batch or a sealed field not at all, and
// _method (which Laravel and Rack take as the real method) nowhere.

// paramName is the root name PHP, Rack and qs give a query, form or cookie parameter k: cut
// at a NUL, leading spaces and brackets dropped, the root before the next bracket
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
	return phpUnderscores(k)
}

func phpUnderscores(k string) string {
	return strings.Map(func(r rune) rune {
		if r == '.' || r == ' ' {
			return '_'
		}
		return r
	}, k)
}

// paramNames returns every name a framework may read parameter k as: its root (paramName),
// each bracketed segment ("customer_record[customer]" gives customer too: Rails' ParamsWrapper
// takes such a hash from the query), and PHP's reading of an unclosed bracket ("user[id" is
// user_id).
func paramNames(k string) []string {
	names := []string{paramName(k)}
	if i := strings.IndexByte(k, 0); i >= 0 {
		k = k[:i]
	}
	rest := strings.TrimLeft(k, " []")
	if i := strings.IndexByte(rest, '['); i >= 0 && !strings.Contains(rest[i:], "]") {
		names = append(names, phpUnderscores(rest[:i])+"_"+phpUnderscores(rest[i+1:]))
	}
	for {
		open := strings.IndexByte(rest, '[')
		if open < 0 {
			break
		}
		end := strings.IndexByte(rest[open:], ']')
		if end < 0 {
			break
		}
		if seg := rest[open+1 : open+end]; seg != "" {
			names = append(names, phpUnderscores(seg))
		}
		rest = rest[open+end+1:]
	}
	return names
}

// paramMatches reports whether any reading of parameter k is want (by FoldCase, as readers
// that ignore case compare).
func paramMatches(k, want string) bool {
	for _, n := range paramNames(k) {
		if jsonpath.FoldCase(n) == want {
			return true
		}
	}
	return false
}

func isMethodOverride(k string) bool {
	for _, n := range paramNames(k) {
		if strings.EqualFold(n, "_method") {
			return true
		}
	}
	return false
}

// sealedName is a sealed field, for the source checks.
type sealedName struct {
	path       []string
	root, leaf string // FoldCase of its first and last element, for parameters
	leafKey    string // Fold of its last element, for JSON keys
}

// names are the names a route enforces, computed once.
type names struct {
	exact  string // the locator's name as configured ("" for a header locator)
	param  string // its FoldCase, for parameters
	key    string // its Fold, for JSON keys
	batch  bool   // the locator is a batch (no other occurrence allowed, whatever its value)
	inBody bool   // the locator is a JSON body field
	sealed []sealedName
}

func routeNames(r Route, encrypt []string) names {
	var n names
	switch {
	case r.Subject.Path != "":
		n.exact = r.Subject.Path
	case r.Subject.Query != "":
		n.exact = r.Subject.Query
	case r.Subject.JSON != "":
		n.exact, n.inBody = r.Subject.JSON, true
	case r.Subjects.JSON != "":
		n.exact, n.inBody, n.batch = r.Subjects.JSON, true, true
	}
	if n.exact != "" {
		n.param, n.key = jsonpath.FoldCase(phpUnderscores(n.exact)), jsonpath.Fold(n.exact)
	}
	for _, p := range encrypt {
		path := strings.Split(p, ".")
		n.sealed = append(n.sealed, sealedName{path: path, root: jsonpath.FoldCase(phpUnderscores(path[0])),
			leaf: jsonpath.FoldCase(phpUnderscores(path[len(path)-1])), leafKey: jsonpath.Fold(path[len(path)-1])})
	}
	return n
}

// sealedParam reports whether a query, form or cookie parameter k could set a sealed field.
func (n *names) sealedParam(k string) bool {
	for _, s := range n.sealed {
		if paramMatches(k, s.root) || paramMatches(k, s.leaf) {
			return true
		}
	}
	return false
}

// body is what a route read of a request body.
type body struct {
	data  []byte // nil: no body, or one not read (a type no framework parses into parameters)
	media string // its media type, lower case ("" if none was sent)
	kind  bodyKind
}

type bodyKind int

const (
	bodyNone  bodyKind = iota // no Content-Type
	bodyJSON                  // any type with "json" in it (Laravel's isJson)
	bodyForm                  // application/x-www-form-urlencoded
	bodyMulti                 // multipart/*
	bodyText                  // text/plain
	bodyOther                 // anything else: not parsed into parameters
)

// kindOf classifies a body by its whole Content-Type value (parameters too: Laravel's
// isJson finds "/json" in `application/x-www-form-urlencoded; a="/json"`).
func kindOf(ct, media string) bodyKind {
	switch {
	case media == "":
		return bodyNone
	case strings.Contains(strings.ToLower(ct), "json"):
		return bodyJSON
	case media == "application/x-www-form-urlencoded":
		return bodyForm
	case strings.HasPrefix(media, "multipart/"):
		return bodyMulti
	case media == "text/plain":
		return bodyText
	}
	return bodyOther
}

// utf8Charset reports whether a charset parameter names UTF-8 or a subset of it.
func utf8Charset(cs string) bool {
	switch strings.ToLower(cs) {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
		return true
	}
	return false
}

// looksLikeJSON reports whether a body's first bytes are what a lenient JSON reader would
// take for JSON: '{' or '[' after spaces or a byte order mark, or UTF-16/32 (NUL bytes).
func looksLikeJSON(head []byte) bool {
	head = bytes.TrimPrefix(head, []byte("\xef\xbb\xbf"))
	if bytes.HasPrefix(head, []byte("\xff\xfe")) || bytes.HasPrefix(head, []byte("\xfe\xff")) || bytes.IndexByte(head, 0) >= 0 {
		return true
	}
	head = bytes.TrimLeft(head, " \t\r\n")
	return len(head) > 0 && (head[0] == '{' || head[0] == '[')
}

// readBody reads what the route must see of r's body. A route that reads its subjects from
// the body takes JSON only (415 otherwise: a form parser would read other subjects out of the
// same bytes), a route that seals fields JSON or text (415 for forms and multipart). Any body
// a framework parses into parameters (JSON, form, multipart, untyped, or anything that looks
// like JSON) is read whole, up to MaxBody, for the source checks, and must then be
// uncompressed UTF-8; a leading byte order mark is dropped. Other bodies (an image upload)
// are streamed to the handler unread.
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
	b.kind = kindOf(ct, b.media)
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
	if !fromBody && len(rt.encrypt) == 0 && (b.kind == bodyOther || b.kind == bodyText) {
		// Streamed unread, unless it looks like JSON to a lenient reader.
		br := bufio.NewReaderSize(r.Body, 512)
		head, _ := br.Peek(512)
		r.Body = struct {
			io.Reader
			io.Closer
		}{br, r.Body}
		if !looksLikeJSON(head) {
			return b, nil
		}
		b.kind = bodyJSON
	}
	enc, p := oneHeader(r.Header, "Content-Encoding")
	if p != nil {
		return body{}, p
	}
	if enc != "" && !strings.EqualFold(enc, "identity") {
		return body{}, unsupported("privguard reads this body to enforce the route and cannot read it compressed; send it uncompressed")
	}
	if !utf8Charset(params["charset"]) {
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
	b.data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	return b, nil
}

// query is r.URL.Query(), without the empty map when there is no query.
func query(r *http.Request) url.Values {
	if r.URL.RawQuery == "" {
		return nil
	}
	return r.URL.Query()
}

// checkSources refuses a request in which a name the route enforces could be read another
// way (see the top of this file). subject is the single subject privguard checked ("" for a
// batch): a locator's name may appear elsewhere only with that same value.
func (rt *route) checkSources(r *http.Request, b body, subject string) *privguard.Problem {
	for k, vs := range query(r) {
		if p := rt.checkParam(k, vs, subject, true); p != nil {
			return p
		}
	}
	if p := rt.checkCookies(r, subject); p != nil {
		return p
	}
	if b.data == nil {
		return nil
	}
	switch b.kind {
	case bodyForm:
		form, err := url.ParseQuery(string(b.data))
		if err != nil {
			return ambiguous("the form body cannot be parsed one way only (a semicolon or a bad escape)")
		}
		for k, vs := range form {
			if p := rt.checkParam(k, vs, subject, false); p != nil {
				return p
			}
		}
		return nil
	case bodyMulti:
		return rt.checkMultipart(r, b.data, subject)
	case bodyNone:
		// Rack parses an untyped POST body as a form: read it the loose way too.
		for _, part := range strings.FieldsFunc(string(b.data), func(c rune) bool { return c == '&' || c == ';' }) {
			k, v, _ := strings.Cut(part, "=")
			if uk, err := url.QueryUnescape(k); err == nil {
				k = uk
			}
			if uv, err := url.QueryUnescape(v); err == nil {
				v = uv
			}
			if p := rt.checkParam(k, []string{v}, subject, false); p != nil {
				return p
			}
		}
	}
	return rt.checkJSONSources(b.data, b.kind, subject)
}

// checkParam checks one query, form or multipart parameter k with its values. fromQuery
// says k is from the query string, where a query locator itself stands.
func (rt *route) checkParam(k string, vs []string, subject string, fromQuery bool) *privguard.Problem {
	n := &rt.names
	switch {
	case rt.cfg.StrictPaths && isMethodOverride(k):
		return notCanonical("_method is not accepted: send the request with its real method")
	case n.sealedParam(k):
		return ambiguous("a parameter is named like a sealed field; send it in the JSON body, at its path")
	case n.exact == "" || !paramMatches(k, n.param):
		return nil
	case fromQuery && rt.Subject.Query != "" && k == rt.Subject.Query && len(vs) == 1:
		return nil // the locator itself
	case n.batch || rt.Subject.Query != "" || !allEqual(vs, subject):
		return ambiguous("a parameter names the subject again, or under another spelling, with another value")
	}
	return nil
}

// checkCookies reads the Cookie headers raw, as PHP does (net/http drops names such as
// "uid[]"): a cookie PHP's $_REQUEST would take for the locator (its names compared exactly,
// as PHP does) must carry the subject; none may be named like a sealed field or _method.
func (rt *route) checkCookies(r *http.Request, subject string) *privguard.Problem {
	n := &rt.names
	for _, line := range r.Header.Values("Cookie") {
		for pair := range strings.SplitSeq(line, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(pair), "=")
			if k == "" {
				continue
			}
			if uk, err := url.QueryUnescape(k); err == nil {
				k = uk // PHP decodes cookie names
			}
			switch {
			case rt.cfg.StrictPaths && isMethodOverride(k):
				return notCanonical("a _method cookie is not accepted")
			case n.sealedParam(k):
				return ambiguous("a cookie is named like a sealed field")
			case n.exact == "":
				continue
			}
			for _, name := range paramNames(k) {
				if name == phpUnderscores(n.exact) && (n.batch || strings.Trim(v, " ") != subject) {
					// PHP's $_REQUEST takes cookies over the query.
					return ambiguous("a cookie is named like the subject locator, with another value")
				}
			}
		}
	}
	return nil
}

// checkMultipart checks a multipart body's fields. A part no parser agrees on is refused:
// privguard reads it with Go's parser, and PHP, Rack, Django and Werkzeug read the
// boundary, the part headers and what follows the close delimiter each their own way.
func (rt *route) checkMultipart(r *http.Request, data []byte, subject string) *privguard.Problem {
	bad := func(why string) *privguard.Problem {
		return ambiguous("the multipart body cannot be read one way only: " + why)
	}
	_, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	boundary := params["boundary"]
	for k := range params {
		if k != "boundary" && k != "charset" {
			return bad("its Content-Type has a parameter other than boundary and charset")
		}
	}
	if boundary == "" || strings.ContainsAny(boundary, ";\"',\\") {
		return bad("the boundary is missing or holds ; \" ' , or \\")
	}
	mr := multipart.NewReader(bytes.NewReader(data), boundary)
	parts := 0
	for {
		part, err := mr.NextRawPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return bad("a part does not parse")
		}
		parts++
		cd := part.Header.Values("Content-Disposition")
		if len(cd) != 1 || strings.Contains(strings.ToLower(cd[0]), "name*") || len(part.Header.Values("Content-Transfer-Encoding")) > 0 {
			return bad("a part has no single plain Content-Disposition, or has a Content-Transfer-Encoding")
		}
		disp, dp, err := mime.ParseMediaType(cd[0])
		name := dp["name"]
		if err != nil || disp != "form-data" || name == "" || strings.ContainsAny(name, "'\"") {
			return bad("a part's Content-Disposition is not form-data with a name")
		}
		v, _ := io.ReadAll(part)
		if p := rt.checkParam(name, []string{string(v)}, subject, false); p != nil {
			return p
		}
	}
	// Every delimiter in the body must be one Go's parser took (parts+1 of them, the last
	// closing), and nothing but white space may follow the close delimiter.
	delim := []byte("--" + boundary)
	if c := bytes.Count(data, delim); c != parts+1 {
		return bad("the boundary appears where privguard's parser did not take it for a delimiter")
	}
	end := bytes.LastIndex(data, append(delim, '-', '-'))
	if end < 0 || len(bytes.TrimSpace(data[end+len(delim)+2:])) > 0 {
		return bad("something follows the close delimiter")
	}
	return nil
}

// checkJSONSources checks the keys of a body that is JSON (a body that is not is left to
// the locator's own reading): at the top, the locator's name other than in its own place
// only with the subject as its value, _method not at all; one level down, in an object (Rails'
// ParamsWrapper reads params[:wrapper][:key] when the wrapper is given), the name of a body
// locator with the subject only and a batch's not at all; a sealed field's name at the top or
// one level down only at its path.
func (rt *route) checkJSONSources(doc []byte, kind bodyKind, subject string) *privguard.Problem {
	n := &rt.names
	if !jsonValid(doc) {
		if kind == bodyJSON {
			// A lenient parser (comments, trailing commas, NaN) could still read
			// parameters out of it; privguard cannot check them.
			return malformed("the body is not valid JSON")
		}
		return nil // untyped and not JSON: no framework reads parameters out of it as JSON
	}
	root := bytes.TrimLeft(doc, " \t\r\n")
	if len(root) == 0 || root[0] != '{' {
		return nil
	}
	check := func(parents []string, key string, val []byte) *privguard.Problem {
		lk := jsonpath.Fold(key)
		// A body locator is read by a JSON decoder, which may ignore '_' and '-' (Fold); a
		// path or query locator repeated in the body is read by the framework's parameter
		// bag, which keeps them (_id is not id).
		locator := (n.inBody && lk == n.key) || (!n.inBody && jsonpath.FoldCase(key) == jsonpath.FoldCase(n.exact))
		switch {
		case len(parents) == 0 && rt.cfg.StrictPaths && isMethodOverride(key):
			return notCanonical("_method is not accepted: send the request with its real method")
		case n.exact != "" && locator && (len(parents) == 0 || n.inBody):
			own := len(parents) == 0 && key == n.exact && n.inBody
			if !own && (n.batch || !jsonString(val, subject)) {
				return ambiguous("the body names the subject again, with another value (" + jsonPathOf(parents, key) + ")")
			}
		}
		for _, s := range n.sealed {
			if lk == s.leafKey && !atPath(parents, key, s.path) {
				return ambiguous("the body holds a sealed field's name outside its path (" + jsonPathOf(parents, key) + ")")
			}
		}
		return nil
	}
	for key, val, j := jsonpath.Member(root, 1); key != nil; key, val, j = jsonpath.Member(root, j) {
		k := unquoteKey(key)
		if p := check(nil, k, val); p != nil {
			return p
		}
		if v := bytes.TrimLeft(val, " \t\r\n"); len(v) > 0 && v[0] == '{' {
			parents := []string{k}
			for key2, val2, j2 := jsonpath.Member(v, 1); key2 != nil; key2, val2, j2 = jsonpath.Member(v, j2) {
				if p := check(parents, unquoteKey(key2), val2); p != nil {
					return p
				}
			}
		}
	}
	return nil
}

func jsonValid(doc []byte) bool { return json.Valid(doc) }

// unquoteKey returns the key a quoted key literal (valid JSON) stands for.
func unquoteKey(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1])
	}
	var s string
	_ = json.Unmarshal(raw, &s)
	return s
}

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
