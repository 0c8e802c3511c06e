package middleware

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/privguard/privguard"
)

// Why paths are checked: privguard matches a request against the route table exactly as
// net/http's ServeMux does, but the service behind a sidecar may not. Many frameworks match
// paths case-insensitively, ignore a trailing slash, decode %2F before routing, resolve
// "%2e%2e" segments, strip ";jsessionid=..." matrix parameters or honour
// X-HTTP-Method-Override. Each of these lets a request that privguard saw as unrouted (or as
// another route) reach an enforced endpoint. With Config.StrictPaths such requests are
// refused before any route sees them.

// rerouting reports the headers frameworks take as the real method (X-HTTP-Method-Override
// and its kin) or the real path (X-Original-URL, X-Rewrite-URL: Symfony, IIS, Zend): with
// them a request privguard saw for one route is served by another.
func rerouting(name string) bool {
	for _, h := range [...]string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override", "X-Original-Url", "X-Rewrite-Url"} {
		if sameHeader(name, h) {
			return true
		}
	}
	return false
}

// strictPath refuses a request whose path or method another server could read another way.
func strictPath(r *http.Request) *privguard.Problem {
	if strings.Contains(strings.ToLower(r.URL.EscapedPath()), "%2f") {
		return notCanonical("the path holds an encoded slash (%2F)")
	}
	path := r.URL.Path
	if strings.ContainsAny(path, "\\;%\x00") {
		return notCanonical("the path holds a backslash, a semicolon (matrix parameters), a double-encoded escape or NUL")
	}
	if !utf8.ValidString(path) {
		// Overlong forms (%C0%AE is '.' to some decoders) and other invalid UTF-8.
		return notCanonical("the path is not valid UTF-8")
	}
	for seg := range strings.SplitSeq(strings.TrimPrefix(path, "/"), "/") {
		if seg != "" && strings.Trim(seg, ". \t\uff0e\u3002") == "" {
			// ".", "..", and what Windows, NFKC or a lenient router reads as them: "...",
			// ".. ", fullwidth dots.
			return notCanonical("the path holds a dot segment")
		}
	}
	if strings.Contains(path, "//") {
		return notCanonical("the path holds an empty segment (//)")
	}
	for k := range r.Header {
		if rerouting(k) {
			return notCanonical(k + " is not accepted: send the request with its real method and path")
		}
	}
	for _, u := range r.Header.Values("Upgrade") {
		if strings.Contains(strings.ToLower(u), "h2c") {
			// An h2c upgrade through a proxy opens a tunnel no route sees.
			return notCanonical("Upgrade: h2c is not accepted")
		}
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return ambiguous("the query string cannot be parsed one way only (a semicolon, a bad escape, or too many parameters)")
	}
	for k := range q {
		if isMethodOverride(k) {
			return notCanonical("_method is not accepted: send the request with its real method")
		}
	}
	return nil
}

// canonical matches requests the way a lenient server would (paths lower-cased, a trailing
// slash ignored) to find those that privguard would route differently from it.
type canonical struct {
	// byMethod holds every route's pattern, method kept, lower-cased and without a trailing
	// slash; keys maps those patterns back to the routes' own patterns.
	byMethod *http.ServeMux
	keys     map[string]string
	// paths holds, for each enforced route, its path alone (any method): a request for an
	// enforced path with a method no route has is refused.
	paths []*http.ServeMux
}

// newCanonical builds the lenient view of routes. Two routes that a lenient server could not
// tell apart (they differ only by case) are an error.
func newCanonical(routes []Route) (c *canonical, err error) {
	c = &canonical{byMethod: http.NewServeMux(), keys: map[string]string{}}
	for _, r := range routes {
		method, host, path := splitPattern(r.Match)
		key := joinPattern(method, strings.ToLower(host), canonicalPattern(path))
		if other, dup := c.keys[key]; dup {
			return nil, fmt.Errorf("middleware: routes %q and %q differ only by case or a trailing slash", other, r.Match)
		}
		if err := register(c.byMethod, key); err != nil {
			return nil, fmt.Errorf("middleware: route %q read case-insensitively: %v", r.Match, err)
		}
		c.keys[key] = r.Match
		if !r.Pass {
			m := http.NewServeMux()
			if err := register(m, joinPattern("", strings.ToLower(host), canonicalPattern(path))); err != nil {
				return nil, fmt.Errorf("middleware: route %q: %v", r.Match, err)
			}
			c.paths = append(c.paths, m)
		}
	}
	return c, nil
}

func register(m *http.ServeMux, pattern string) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%v", v)
		}
	}()
	m.Handle(pattern, http.NotFoundHandler())
	return nil
}

// check refuses r if a lenient server would route it to another route than the one privguard
// chose (matched is that route's Match, "" for none). A request privguard routes to no
// enforced route (matched is "" or a pass route without a method) is also refused when its
// path is an enforced route's under another method.
func (c *canonical) check(r *http.Request, matched string, pass bool) *privguard.Problem {
	path := strings.ToLower(r.URL.Path)
	if len(path) > 1 {
		path = strings.TrimRight(path, "/")
	}
	lr := &http.Request{Method: r.Method, Host: strings.ToLower(r.Host), URL: &url.URL{Path: path}}
	if _, p := c.byMethod.Handler(lr); p != "" && c.keys[p] != matched {
		return notCanonical("the path differs from a configured route only by case or a trailing slash; send it as configured")
	}
	if matched != "" && (!pass || hasMethod(matched)) {
		return nil
	}
	for _, m := range c.paths {
		if _, p := m.Handler(lr); p != "" {
			return privguard.NewProblem(http.StatusMethodNotAllowed, TypeMethodNotConfigured, "Method not configured",
				"this path is enforced, but not for the method "+r.Method)
		}
	}
	return nil
}

func hasMethod(pattern string) bool {
	m, _, _ := splitPattern(pattern)
	return m != ""
}

// splitPattern splits a ServeMux pattern "[METHOD ][HOST]/PATH".
func splitPattern(p string) (method, host, path string) {
	p = strings.TrimSpace(p)
	if i := strings.IndexAny(p, " \t"); i >= 0 {
		method, p = p[:i], strings.TrimLeft(p[i:], " \t")
	}
	if i := strings.IndexByte(p, '/'); i > 0 {
		host, p = p[:i], p[i:]
	}
	return method, host, p
}

func joinPattern(method, host, path string) string {
	if method == "" {
		return host + path
	}
	return method + " " + host + path
}

// canonicalPattern lower-cases the literal segments of a pattern's path. A trailing slash is
// kept: it makes the pattern a subtree, which a request path without it also reaches.
// Wildcard names are kept: they are not matched against.
func canonicalPattern(path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if !strings.HasPrefix(s, "{") {
			segs[i] = strings.ToLower(s)
		}
	}
	return strings.Join(segs, "/")
}

func notCanonical(detail string) *privguard.Problem {
	return privguard.NewProblem(http.StatusBadRequest, TypePathNotCanonical, "Path not canonical", detail)
}

func ambiguous(detail string) *privguard.Problem {
	return privguard.NewProblem(http.StatusBadRequest, TypeAmbiguous, "Ambiguous request", detail)
}
