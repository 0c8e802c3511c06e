package config

import (
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// routeProblems checks the sidecar's route table the way the middleware will, but names
// what is wrong by its path in the file, before serve writes anything: a method that is not
// an HTTP method (a typo such as GIT would route nothing but requests that method), a
// pattern the router refuses or that conflicts with another, one locator per route, a path
// locator that is a wildcard of the pattern, pass routes that carry nothing else.
func (f *File) routeProblems() []string {
	var msgs []string
	mux := http.NewServeMux()
	seen := map[string]int{}
	for i, r := range f.Routes {
		at := fmt.Sprintf("routes[%d]", i)
		if j, dup := seen[r.Match]; dup {
			msgs = append(msgs, fmt.Sprintf("%s.match: %q is also routes[%d]", at, r.Match, j))
			continue
		}
		seen[r.Match] = i
		if method, _, ok := strings.Cut(strings.TrimSpace(r.Match), " "); ok && !slices.Contains(httpMethods(), method) {
			msgs = append(msgs, fmt.Sprintf("%s.match: %q is not an HTTP method (want one of %s)", at, method, strings.Join(httpMethods(), ", ")))
		}
		if err := register(mux, r.Match); err != "" {
			msgs = append(msgs, fmt.Sprintf("%s.match: %s", at, err))
		}
		locators := 0
		for _, l := range []Locator{r.Subject, r.Subjects} {
			for _, s := range []string{l.Path, l.Header, l.Query, l.JSON} {
				if s != "" {
					locators++
				}
			}
		}
		switch {
		case r.Pass:
			if r.Purpose != "" || len(r.Purposes) > 0 || locators > 0 || len(r.Fields) > 0 || len(r.Encrypt) > 0 ||
				r.Channel != "" || r.Recipient != "" || r.Role != "" || r.PIA != "" {
				msgs = append(msgs, at+": a pass route takes only match (it handles no personal data, so it has no purpose, subject, fields, encrypt, channel, recipient, role or pia)")
			}
			continue
		case locators != 1:
			msgs = append(msgs, at+": set exactly one of subject.path, subject.header, subject.query, subject.json or subjects.json")
		case r.Subjects.Path != "" || r.Subjects.Header != "" || r.Subjects.Query != "":
			msgs = append(msgs, at+".subjects: a batch is read from a JSON body field only (subjects.json)")
		case r.Subject.Path != "" && !strings.Contains(r.Match, "{"+r.Subject.Path+"}") && !strings.Contains(r.Match, "{"+r.Subject.Path+"...}"):
			msgs = append(msgs, fmt.Sprintf("%s.subject.path: %q is not a wildcard of the pattern %q", at, r.Subject.Path, r.Match))
		}
		if r.Subjects.JSON != "" && (len(r.Fields) > 0 || len(r.Encrypt) > 0) {
			msgs = append(msgs, at+": fields and encrypt are for routes about one subject, not a batch")
		}
	}
	return msgs
}

func httpMethods() []string {
	return []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
}

// registeredAt is the source position net/http puts into its conflict messages.
var registeredAt = regexp.MustCompile(` \(registered at [^)]*\)`)

// register registers pattern on mux, which panics on a malformed or conflicting pattern:
// that becomes the message, without net/http's source positions.
func register(mux *http.ServeMux, pattern string) (msg string) {
	defer func() {
		if v := recover(); v != nil {
			msg = strings.ReplaceAll(registeredAt.ReplaceAllString(fmt.Sprint(v), ""), "\n", ": ")
		}
	}()
	mux.Handle(pattern, http.NotFoundHandler())
	return ""
}

// unknownField is the decoder's message for a misspelt key.
var unknownField = regexp.MustCompile(`^line (\d+): field (\S+) not found in type config\.(\w+)$`)

// decodeProblem rewrites the YAML decoder's error in the file's terms: a misspelt key is
// named with the keys allowed there and the one probably meant, not with Go type names.
func decodeProblem(err error, doc []byte) error {
	te, ok := err.(*yaml.TypeError)
	if !ok {
		return fmt.Errorf("config: %w", err)
	}
	var msgs []string
	for _, e := range te.Errors {
		if m := wrongType.FindStringSubmatch(e); m != nil {
			line, _ := strconv.Atoi(m[1])
			if key := keyAtLine(doc, line, m[2] == "seq" || m[2] == "map"); key != "" {
				what := map[string]string{"seq": "a list", "map": "a mapping"}[m[2]]
				if what == "" {
					what = strconv.Quote(m[3])
				}
				msgs = append(msgs, fmt.Sprintf("line %d: %s: %s is not %s", line, key, what, kindOf(m[4])))
				continue
			}
		}
		m := unknownField.FindStringSubmatch(e)
		if m == nil {
			msgs = append(msgs, e)
			continue
		}
		keys := yamlKeysOf(m[3])
		msgs = append(msgs, fmt.Sprintf("line %s: unknown key %q%s", m[1], m[2], suggest(m[2], keys, "the keys there are")))
	}
	return problems(msgs)
}

// wrongType is yaml.v3's message for a value of the wrong type.
var wrongType = regexp.MustCompile("^line (\\d+): cannot unmarshal !!(\\w+)(?: `(.*)`)? into (.+)$")

// kindOf says in words what a Go type the YAML value was meant for takes.
func kindOf(goType string) string {
	switch {
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return "a whole number"
	case goType == "bool":
		return "true or false"
	case strings.HasPrefix(goType, "float"):
		return "a number"
	case goType == "string":
		return "a string"
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	default:
		return "a mapping of keys"
	}
}

// keyAtLine returns the dotted path of the key whose value starts on line of doc
// ("policy.memo_size", "routes[0].purpose"), or "": the innermost list or mapping there if
// container, else the innermost scalar.
func keyAtLine(doc []byte, line int, container bool) string {
	var root yaml.Node
	if yaml.Unmarshal(doc, &root) != nil {
		return ""
	}
	var find func(n *yaml.Node, path string) string
	find = func(n *yaml.Node, path string) string {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				if p := find(c, path); p != "" {
					return p
				}
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				if r := find(v, p); r != "" { // the innermost node on the line
					return r
				}
				if v.Line == line && (v.Kind == yaml.ScalarNode) != container {
					return p
				}
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				if r := find(c, p); r != "" {
					return r
				}
				if c.Line == line && (c.Kind == yaml.ScalarNode) != container {
					return p
				}
			}
		}
		return ""
	}
	return find(&root, "")
}

// yamlKeysOf returns the YAML keys of the configuration struct type called name.
func yamlKeysOf(name string) []string {
	var keys []string
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] {
			return
		}
		seen[t] = true
		for i := range t.NumField() {
			sf := t.Field(i)
			if t.Name() == name {
				if k, _, _ := strings.Cut(sf.Tag.Get("yaml"), ","); k != "" && k != "-" {
					keys = append(keys, k)
				}
			}
			walk(sf.Type)
		}
	}
	walk(reflect.TypeFor[File]())
	slices.Sort(keys)
	return slices.Compact(keys)
}
