package middleware

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/privguard/privguard/internal/jsonpath"
)

// errSlowPath means the fast rewrite met something it does not handle (an escaped key); the
// caller falls back to decoding.
var errSlowPath = errors.New("middleware: use the decoding rewrite")

// errAmbiguousKey means an object holds an op's key twice, or in another spelling that a
// lenient reader would take for it (jsonpath.MatchKey).
var errAmbiguousKey = errors.New("middleware: a field to rewrite is named twice or spelled another way")

// rewriteFast is rewrite without decoding: it walks doc (which must be valid JSON) member
// by member, copying the bytes of everything it keeps and descending only into the values
// on an op's path. It returns errSlowPath for input it does not handle.
func rewriteFast(dst, doc []byte, ops []fieldOp) ([]byte, error) {
	doc = bytes.TrimLeft(doc, " \t\r\n")
	if len(doc) == 0 {
		return dst, nil
	}
	switch doc[0] {
	case '{':
		if len(ops) > 64 {
			return nil, errSlowPath
		}
		var seen uint64 // the ops whose key this object has had
		dst = append(dst, '{')
		first := true
		for rawKey, val, j := jsonpath.Member(doc, 1); rawKey != nil; rawKey, val, j = jsonpath.Member(doc, j) {
			key := rawKey[1 : len(rawKey)-1]
			if bytes.IndexByte(key, '\\') >= 0 {
				return nil, errSlowPath
			}
			drop, mask := false, (func(any) any)(nil)
			var deeper []fieldOp
			for i, op := range ops {
				exact, variant := jsonpath.MatchKey(rawKey, op.path[0], op.folds[0])
				switch {
				case variant || (exact && seen&(1<<i) != 0):
					return nil, errAmbiguousKey
				case !exact:
					continue
				}
				seen |= 1 << i
				switch {
				case len(op.path) > 1:
					deeper = append(deeper, fieldOp{path: op.path[1:], folds: op.folds[1:], mask: op.mask})
				case op.mask == nil:
					drop = true
				default:
					mask = op.mask
				}
			}
			if drop {
				continue
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = append(dst, rawKey...)
			dst = append(dst, ':')
			switch {
			case mask != nil:
				var x any
				if err := json.Unmarshal(val, &x); err != nil {
					return nil, err
				}
				mv, err := json.Marshal(mask(x))
				if err != nil {
					return nil, err
				}
				dst = append(dst, mv...)
			case deeper != nil:
				var err error
				if dst, err = rewriteFast(dst, val, deeper); err != nil {
					return nil, err
				}
			default:
				dst = append(dst, val...)
			}
		}
		return append(dst, '}'), nil
	case '[':
		dst = append(dst, '[')
		first := true
		for val, j := jsonpath.Element(doc, 1); val != nil; val, j = jsonpath.Element(doc, j) {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			var err error
			if dst, err = rewriteFast(dst, val, ops); err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	}
	return append(dst, bytes.TrimSpace(doc)...), nil
}

// member finds the value of key in the top-level JSON object doc (valid JSON) and returns
// its byte span. ok is false if doc is not an object or has no such member.
func member(doc []byte, key string) (start, end int, isObject, ok bool) {
	open := len(doc) - len(bytes.TrimLeft(doc, " \t\r\n"))
	if open >= len(doc) || doc[open] != '{' {
		return 0, 0, false, false
	}
	for k, val, j := jsonpath.Member(doc, open+1); k != nil; k, val, j = jsonpath.Member(doc, j) {
		raw := k[1 : len(k)-1]
		if string(raw) == key || (bytes.IndexByte(raw, '\\') >= 0 && unquoteEq(k, key)) {
			start, end, ok = j-len(val), j, true // the last one wins, as in encoding/json
		}
	}
	return start, end, true, ok
}

func unquoteEq(quoted []byte, key string) bool {
	var s string
	return json.Unmarshal(quoted, &s) == nil && s == key
}

// stringArray returns the elements of the JSON array arr (valid JSON) as strings, with the
// byte span of each; ok is false if arr is not an array of strings.
func stringArray(arr []byte) (vals []string, spans [][2]int, ok bool) {
	open := len(arr) - len(bytes.TrimLeft(arr, " \t\r\n"))
	if open >= len(arr) || arr[open] != '[' {
		return nil, nil, false
	}
	// The ids without escapes are slices of one copy of the array, not a string each.
	all := string(arr)
	n := bytes.Count(arr, []byte{','}) + 1 // at least the number of elements
	vals, spans = make([]string, 0, n), make([][2]int, 0, n)
	for v, j := jsonpath.Element(arr, open+1); v != nil; v, j = jsonpath.Element(arr, j) {
		if v[0] != '"' {
			return nil, nil, false
		}
		raw := v[1 : len(v)-1]
		if bytes.IndexByte(raw, '\\') >= 0 {
			var s string // escapes to the heap: only for escaped ids
			if json.Unmarshal(v, &s) != nil {
				return nil, nil, false
			}
			vals = append(vals, s)
		} else {
			vals = append(vals, all[j-len(v)+1:j-1])
		}
		spans = append(spans, [2]int{j - len(v), j})
	}
	return vals, spans, true
}
