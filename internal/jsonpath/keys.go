package jsonpath

import (
	"encoding/json"
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Why keys are checked: privguard reads a body with exact, first-class key matching, but the
// service behind it may not. Go's encoding/json matches keys case-insensitively (with
// Unicode simple folding, so "ſ" is "s" and the Kelvin sign "K" is "k") and takes the last of
// two equal keys; Jackson, System.Text.Json and others can be configured either way. A body in
// which an enforced key could be read two ways is therefore refused, never guessed at.

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
		return "jsonpath: " + e.Path + " is spelled another way (case or Unicode folding)"
	}
	return "jsonpath: " + e.Path + " appears more than once (under case folding or as a duplicate)"
}

// ErrNotJSON is returned for a document that is not valid JSON.
var ErrNotJSON = errors.New("jsonpath: not valid JSON")

// Fold returns key as a case-insensitive decoder matches it: Fold(a) == Fold(b) exactly when
// Go's encoding/json would take a and b for the same field (ASCII case, then Unicode simple
// case folding: every rune is replaced by the smallest rune of its fold orbit).
func Fold(key string) string {
	ascii := true
	for i := 0; i < len(key); i++ {
		if c := key[i]; c >= utf8.RuneSelf || ('A' <= c && c <= 'Z') {
			ascii = false
			break
		}
	}
	if ascii {
		return key
	}
	var b strings.Builder
	b.Grow(len(key))
	for _, r := range key {
		if r < utf8.RuneSelf {
			if 'A' <= r && r <= 'Z' {
				r += 'a' - 'A'
			}
			b.WriteRune(r)
			continue
		}
		b.WriteRune(foldRune(r))
	}
	return b.String()
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
		if err := checkPath(doc, p, strings.Split(p, ".")); err != nil {
			return err
		}
	}
	return nil
}

// CheckMember is CheckPaths for the one top-level key of an object (a key that may hold
// dots).
func CheckMember(doc []byte, key string) error {
	if !json.Valid(doc) {
		return ErrNotJSON
	}
	return checkPath(doc, key, []string{key})
}

func checkPath(doc []byte, full string, path []string) error {
	i := skipSpace(doc, 0)
	if i >= len(doc) {
		return nil
	}
	switch doc[i] {
	case '[':
		var err error
		elements(doc[i:], func(v []byte) bool {
			err = checkPath(v, full, path)
			return err == nil
		})
		return err
	case '{':
	default:
		return nil
	}
	want := Fold(path[0])
	var below [][]byte
	variant := false
	members(doc[i:], func(key string, val []byte) bool {
		if key == path[0] || Fold(key) == want {
			variant = variant || key != path[0]
			below = append(below, val)
		}
		return len(below) < 2
	})
	switch {
	case len(below) > 1:
		return &KeyError{Path: full}
	case variant:
		return &KeyError{Path: full, Variant: true}
	case len(path) == 1:
		return nil
	}
	for _, v := range below {
		if err := checkPath(v, full, path[1:]); err != nil {
			return err
		}
	}
	return nil
}

// CheckDuplicates reports whether doc has an object, at any depth, with two keys that fold
// to the same (Fold): an exact duplicate, or the same name in another case. The error is a
// *KeyError naming where, or ErrNotJSON.
func CheckDuplicates(doc []byte) error {
	if !json.Valid(doc) {
		return ErrNotJSON
	}
	return checkDuplicates(doc, "")
}

func checkDuplicates(doc []byte, at string) error {
	i := skipSpace(doc, 0)
	if i >= len(doc) {
		return nil
	}
	var err error
	switch doc[i] {
	case '[':
		elements(doc[i:], func(v []byte) bool {
			err = checkDuplicates(v, at)
			return err == nil
		})
	case '{':
		var seen []string // objects are small: a list beats a map
		members(doc[i:], func(key string, val []byte) bool {
			f := Fold(key)
			for _, s := range seen {
				if s == f {
					err = &KeyError{Path: join(at, key)}
					return false
				}
			}
			seen = append(seen, f)
			err = checkDuplicates(val, join(at, key))
			return err == nil
		})
	}
	return err
}

func join(at, key string) string {
	if at == "" {
		return key
	}
	return at + "." + key
}

// members calls fn with every member of the object obj (valid JSON, starting with '{'): its
// key, unescaped, and the bytes of its value. fn returns false to stop.
func members(obj []byte, fn func(key string, val []byte) bool) {
	i := skipSpace(obj, 1)
	for i < len(obj) && obj[i] != '}' {
		ke := skipString(obj, i)
		key := unquote(obj[i:ke])
		i = skipSpace(obj, skipSpace(obj, ke)+1) // past ':'
		ve := skipValue(obj, i)
		if !fn(key, obj[i:ve]) {
			return
		}
		i = skipSpace(obj, ve)
		if i < len(obj) && obj[i] == ',' {
			i = skipSpace(obj, i+1)
		}
	}
}

// elements calls fn with the bytes of every element of the array arr (valid JSON, starting
// with '['). fn returns false to stop.
func elements(arr []byte, fn func(val []byte) bool) {
	i := skipSpace(arr, 1)
	for i < len(arr) && arr[i] != ']' {
		ve := skipValue(arr, i)
		if !fn(arr[i:ve]) {
			return
		}
		i = skipSpace(arr, ve)
		if i < len(arr) && arr[i] == ',' {
			i = skipSpace(arr, i+1)
		}
	}
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
