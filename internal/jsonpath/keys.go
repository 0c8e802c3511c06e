package jsonpath

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Why keys are checked: privguard reads a body with exact key matching, but the service behind
// it may not. Go's encoding/json matches keys case-insensitively (with Unicode simple
// folding, so "ſ" is "s" and the Kelvin sign "K" is "k") and takes the last of two equal
// keys; encoding/json/v2 can also ignore '_' and '-'; Jackson, System.Text.Json and others
// can be configured either way. A body in which an enforced key could be read two ways is
// therefore refused, never guessed at: keys are compared by Fold, the loosest of them.

// KeyError says which key of a document could be read two ways.
type KeyError struct {
	// Path is the dotted path of the key as privguard knows it (the configured name, or, for
	// CheckDuplicates, the path of the object holding the repeated key followed by the key).
	Path string
	// Variant is true when the key appears under another spelling only (another case, or
	// characters that fold to the same), false when it appears more than once.
	Variant bool
}

func (e *KeyError) Error() string {
	if e.Variant {
		return "jsonpath: " + e.Path + " is spelled another way (case, '_' or '-', Unicode folding)"
	}
	return "jsonpath: " + e.Path + " appears more than once (under case folding or as a duplicate)"
}

// Errors of the checks.
var (
	// ErrNotJSON is returned for a document that is not valid JSON.
	ErrNotJSON = errors.New("jsonpath: not valid JSON")
	// ErrTooDeep is returned for a document nested deeper than MaxDepth.
	ErrTooDeep = errors.New("jsonpath: nested deeper than MaxDepth")
)

// MaxDepth is how deeply nested (objects and arrays) a document the checks walk: each level
// costs a pass over what it holds, so the depth bounds the work, and no API body privguard
// enforces needs more.
const MaxDepth = 64

// Fold returns key as the most lenient decoders in use match it: when Fold(a) == Fold(b),
// some decoder takes a and b for the same field. It covers Go's encoding/json (ASCII case,
// then Unicode simple folding: "ſ" is "s", the Kelvin sign "k"), encoding/json/v2's
// case:ignore (which also ignores '_' and '-'), full case folding (Python's casefold: "ß" is
// "ss", the ligatures "ﬁ" and "ﬆ" are spelled out), Java's character-wise equalsIgnoreCase
// ("ı" and "İ" are "i"), NFKC's fullwidth forms ("ｃ" is "c"), and C parsers that stop at a
// NUL (what follows it is dropped).
func Fold(key string) string { return fold(key, true) }

// FoldCase is Fold without dropping '_' and '-': how parameter names are compared by
// readers that ignore case (ASP.NET's model binding, Java's equalsIgnoreCase) but, unlike
// encoding/json/v2's case:ignore, keep user_id and userid apart.
func FoldCase(key string) string { return fold(key, false) }

func fold(key string, dropSeparators bool) string {
	if i := strings.IndexByte(key, 0); i >= 0 {
		key = key[:i]
	}
	if !needsFold(key, dropSeparators) {
		return key
	}
	var b strings.Builder
	b.Grow(len(key))
	for _, r := range key {
		switch {
		case (r == '_' || r == '-') && dropSeparators:
		case r < utf8.RuneSelf:
			if 'A' <= r && r <= 'Z' {
				r += 'a' - 'A'
			}
			b.WriteRune(r)
		case r >= 0xFF01 && r <= 0xFF5E: // fullwidth ASCII
			r -= 0xFEE0
			if 'A' <= r && r <= 'Z' {
				r += 'a' - 'A'
			}
			if !dropSeparators || (r != '_' && r != '-') {
				b.WriteRune(r)
			}
		case r == 'ı' || r == 'İ':
			b.WriteByte('i')
		case r == 'ß' || r == 'ẞ':
			b.WriteString("ss")
		case r >= 0xFB00 && r <= 0xFB06:
			b.WriteString([...]string{"ff", "fi", "fl", "ffi", "ffl", "st", "st"}[r-0xFB00])
		default:
			b.WriteRune(foldRune(r))
		}
	}
	return b.String()
}

// needsFold reports whether fold would change key (NUL already cut).
func needsFold(key string, dropSeparators bool) bool {
	for i := 0; i < len(key); i++ {
		if c := key[i]; c >= utf8.RuneSelf || ('A' <= c && c <= 'Z') || ((c == '_' || c == '-') && dropSeparators) {
			return true
		}
	}
	return false
}

// foldRune returns the smallest rune of r's simple fold orbit, lower-cased when that is
// ASCII, so that "K" (U+212A) folds to "k" and "ſ" (U+017F) to "s".
func foldRune(r rune) rune {
	min := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f < min {
			min = f
		}
	}
	if 'A' <= min && min <= 'Z' {
		min += 'a' - 'A'
	}
	return min
}

// CheckPaths reports whether every key on the dotted paths is spelled one way only in doc:
// in each object on a path (arrays are walked element by element), the path's key must
// appear at most once, counting every key that folds to it (Fold), and only in its exact
// spelling. A path whose key is absent is fine. The error is a *KeyError naming the path, or
// ErrNotJSON.
func CheckPaths(doc []byte, paths []string) error {
	if !json.Valid(doc) {
		return ErrNotJSON
	}
	for _, p := range paths {
		if err := checkPath(doc, p, p, true, 0); err != nil {
			return err
		}
	}
	return nil
}

// CheckMember is CheckPaths for one key of the top-level object (a key that may hold dots);
// a document that is not an object has no such key.
func CheckMember(doc []byte, key string) error {
	if !json.Valid(doc) {
		return ErrNotJSON
	}
	if d := bytes.TrimLeft(doc, " \t\r\n"); len(d) == 0 || d[0] != '{' {
		return nil
	}
	return checkPath(doc, key, key, false, 0)
}

// checkPath checks rest, the part of the path full below doc; split says whether rest is a
// dotted path or a single key.
func checkPath(doc []byte, full, rest string, split bool, depth int) error {
	if depth > MaxDepth {
		return ErrTooDeep
	}
	i := skipSpace(doc, 0)
	if i >= len(doc) {
		return nil
	}
	switch doc[i] {
	case '[':
		for v, j := Element(doc, skipSpace(doc, i+1)); v != nil; v, j = Element(doc, j) {
			if err := checkPath(v, full, rest, split, depth+1); err != nil {
				return err
			}
		}
		return nil
	case '{':
	default:
		return nil
	}
	head, tail, deeper := rest, "", false
	if split {
		head, tail, deeper = strings.Cut(rest, ".")
	}
	want := Fold(head)
	var found []byte
	n, variant := 0, false
	for key, val, j := Member(doc, skipSpace(doc, i+1)); key != nil; key, val, j = Member(doc, j) {
		if exact, folded := MatchKey(key, head, want); exact || folded {
			n++
			variant = variant || !exact
			found = val
		}
	}
	switch {
	case n > 1:
		return &KeyError{Path: full}
	case variant:
		return &KeyError{Path: full, Variant: true}
	case n == 0 || !deeper:
		return nil
	}
	return checkPath(found, full, tail, true, depth+1)
}

// CheckDuplicates reports whether doc has an object, at any depth, with two keys that fold
// to the same (Fold): an exact duplicate, or the same name in another case. The error is a
// *KeyError naming where, or ErrNotJSON.
func CheckDuplicates(doc []byte) error {
	if !json.Valid(doc) {
		return ErrNotJSON
	}
	return checkDuplicates(doc, nil, 0)
}

// pathTo is where checkDuplicates is: the keys from the top, built into a dotted path only
// when a duplicate is found (most documents have none, and their keys cost no path).
type pathTo struct {
	parent *pathTo
	key    string
}

func (p *pathTo) String() string {
	if p == nil {
		return ""
	}
	return join(p.parent.String(), p.key)
}

func checkDuplicates(doc []byte, at *pathTo, depth int) error {
	if depth > MaxDepth {
		return ErrTooDeep
	}
	i := skipSpace(doc, 0)
	if i >= len(doc) {
		return nil
	}
	switch doc[i] {
	case '[':
		for v, j := Element(doc, skipSpace(doc, i+1)); v != nil; v, j = Element(doc, j) {
			if err := checkDuplicates(v, at, depth+1); err != nil {
				return err
			}
		}
	case '{':
		var seenBuf [16]string
		seen := seenBuf[:0] // objects are small: a list beats a map
		for raw, val, j := Member(doc, skipSpace(doc, i+1)); raw != nil; raw, val, j = Member(doc, j) {
			key := unquote(raw)
			f := Fold(key)
			if slices.Contains(seen, f) {
				return &KeyError{Path: join(at.String(), key)}
			}
			seen = append(seen, f)
			switch {
			case len(val) > 0 && (val[0] == '{' || val[0] == '['):
				if err := checkDuplicates(val, &pathTo{at, key}, depth+1); err != nil {
					return err
				}
			case depth+1 > MaxDepth: // as deep as a container there would be
				return ErrTooDeep
			}
		}
	}
	return nil
}

func join(at, key string) string {
	if at == "" {
		return key
	}
	return at + "." + key
}

// Member returns the member of an object that starts at obj[i], or at the ',' or spaces
// before it: its key as the quoted literal, the bytes of its value, and where the next one
// starts; key is nil after the last member. obj must be valid JSON (json.Valid) and i just
// past its '{' or at the end of a previous member: it scans, it does not check.
//
//	for key, val, j := jsonpath.Member(obj, open+1); key != nil; key, val, j = jsonpath.Member(obj, j) { ... }
func Member(obj []byte, i int) (key, val []byte, next int) {
	i = skipSpace(obj, i)
	if i < len(obj) && obj[i] == ',' {
		i = skipSpace(obj, i+1)
	}
	if i >= len(obj) || obj[i] != '"' {
		return nil, nil, i
	}
	ke := skipString(obj, i)
	vs := skipSpace(obj, skipSpace(obj, ke)+1) // past ':'
	ve := skipValue(obj, vs)
	return obj[i:ke], obj[vs:ve], ve
}

// Element returns the element of an array that starts at arr[i], or at the ',' or spaces
// before it, and where the next one starts (it ends there); nil after the last. As for
// Member, arr must be valid JSON.
func Element(arr []byte, i int) (val []byte, next int) {
	i = skipSpace(arr, i)
	if i < len(arr) && arr[i] == ',' {
		i = skipSpace(arr, i+1)
	}
	if i >= len(arr) || arr[i] == ']' {
		return nil, i
	}
	ve := skipValue(arr, i)
	return arr[i:ve], ve
}

// MatchKey compares the quoted key literal raw (as Member returns it) with want, whose Fold
// is folded: exact when it decodes to want, variant when it decodes to another spelling
// with the same fold. Plain ASCII keys, the common case, are compared without decoding or
// allocating.
func MatchKey(raw []byte, want, folded string) (exact, variant bool) {
	body := raw[1 : len(raw)-1]
	for _, c := range body {
		if c == '\\' || c >= utf8.RuneSelf {
			key := unquote(raw)
			return key == want, key != want && Fold(key) == folded
		}
	}
	if string(body) == want {
		return true, false
	}
	if !needsFold(string(body), true) { // the conversion does not allocate
		return false, string(body) == folded
	}
	return false, Fold(string(body)) == folded
}

// unquote returns the string the JSON string literal q (valid) stands for. Invalid UTF-8
// becomes U+FFFD, as encoding/json decodes it.
func unquote(q []byte) string {
	raw := q[1 : len(q)-1]
	escaped := false
	for _, c := range raw {
		if c == '\\' || c >= utf8.RuneSelf {
			escaped = true
			break
		}
	}
	if !escaped {
		return string(raw)
	}
	var s string
	_ = json.Unmarshal(q, &s)
	return s
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string literal at b[i] (valid JSON).
func skipString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(b)
}

// skipValue returns the index after the value at b[i] (valid JSON).
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = skipString(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
		j++
	}
	return j
}
