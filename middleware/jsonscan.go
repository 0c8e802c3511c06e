package middleware

import (
	"bytes"
	"encoding/json"
	"errors"
)

// errSlowPath means the fast rewrite met something it does not handle (an escaped key); the
// caller falls back to decoding.
var errSlowPath = errors.New("middleware: use the decoding rewrite")

// rewriteFast is rewrite without decoding: it walks doc (which must be valid JSON) member
// by member, copying the bytes of everything it keeps and descending only into the values
// on an op's path. It returns errSlowPath for input it does not handle.
func rewriteFast(dst, doc []byte, ops []fieldOp) ([]byte, error) {
	i := skipSpace(doc, 0)
	if i >= len(doc) {
		return append(dst, doc...), nil
	}
	switch doc[i] {
	case '{':
		dst = append(dst, '{')
		i = skipSpace(doc, i+1)
		first := true
		for i < len(doc) && doc[i] != '}' {
			ks := i
			ke, err := skipString(doc, i)
			if err != nil {
				return nil, err
			}
			key := doc[ks+1 : ke-1]
			if bytes.IndexByte(key, '\\') >= 0 {
				return nil, errSlowPath
			}
			i = skipSpace(doc, ke)
			i = skipSpace(doc, i+1) // ':'
			vs := i
			ve, err := skipValue(doc, i)
			if err != nil {
				return nil, err
			}
			drop, mask := false, (func(any) any)(nil)
			var deeper []fieldOp
			for _, op := range ops {
				if op.path[0] != string(key) {
					continue
				}
				switch {
				case len(op.path) > 1:
					deeper = append(deeper, fieldOp{path: op.path[1:], mask: op.mask})
				case op.mask == nil:
					drop = true
				default:
					mask = op.mask
				}
			}
			if !drop {
				if !first {
					dst = append(dst, ',')
				}
				first = false
				dst = append(dst, doc[ks:ke]...)
				dst = append(dst, ':')
				switch {
				case mask != nil:
					var x any
					if err := json.Unmarshal(doc[vs:ve], &x); err != nil {
						return nil, err
					}
					mv, err := json.Marshal(mask(x))
					if err != nil {
						return nil, err
					}
					dst = append(dst, mv...)
				case deeper != nil:
					if dst, err = rewriteFast(dst, doc[vs:ve], deeper); err != nil {
						return nil, err
					}
				default:
					dst = append(dst, doc[vs:ve]...)
				}
			}
			i = skipSpace(doc, ve)
			if i < len(doc) && doc[i] == ',' {
				i = skipSpace(doc, i+1)
			}
		}
		return append(dst, '}'), nil
	case '[':
		dst = append(dst, '[')
		i = skipSpace(doc, i+1)
		first := true
		for i < len(doc) && doc[i] != ']' {
			ve, err := skipValue(doc, i)
			if err != nil {
				return nil, err
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			if dst, err = rewriteFast(dst, doc[i:ve], ops); err != nil {
				return nil, err
			}
			i = skipSpace(doc, ve)
			if i < len(doc) && doc[i] == ',' {
				i = skipSpace(doc, i+1)
			}
		}
		return append(dst, ']'), nil
	}
	return append(dst, bytes.TrimSpace(doc)...), nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

var errTruncated = errors.New("middleware: truncated JSON")

// skipString returns the index after the string starting at b[i] ('"').
func skipString(b []byte, i int) (int, error) {
	if i >= len(b) || b[i] != '"' {
		return 0, errTruncated
	}
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, errTruncated
}

// skipValue returns the index after the value starting at b[i].
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errTruncated
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				e, err := skipString(b, j)
				if err != nil {
					return 0, err
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, errTruncated
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
		j++
	}
	return j, nil
}

// member finds the value of key in the top-level JSON object doc (valid JSON) and returns
// its byte span. ok is false if doc is not an object or has no such member.
func member(doc []byte, key string) (start, end int, isObject, ok bool) {
	i := skipSpace(doc, 0)
	if i >= len(doc) || doc[i] != '{' {
		return 0, 0, false, false
	}
	i = skipSpace(doc, i+1)
	for i < len(doc) && doc[i] != '}' {
		ks := i
		ke, err := skipString(doc, i)
		if err != nil {
			return 0, 0, true, false
		}
		k := doc[ks+1 : ke-1]
		i = skipSpace(doc, skipSpace(doc, ke)+1)
		ve, err := skipValue(doc, i)
		if err != nil {
			return 0, 0, true, false
		}
		if string(k) == key || (bytes.IndexByte(k, '\\') >= 0 && unquoteEq(doc[ks:ke], key)) {
			start, end, ok = i, ve, true // the last one wins, as in encoding/json
		}
		i = skipSpace(doc, ve)
		if i < len(doc) && doc[i] == ',' {
			i = skipSpace(doc, i+1)
		}
	}
	return start, end, true, ok
}

func unquoteEq(quoted []byte, key string) bool {
	var s string
	return json.Unmarshal(bytes.TrimSpace(quoted), &s) == nil && s == key
}

// stringArray returns the elements of the JSON array arr (valid JSON) as strings, with the
// byte span of each; ok is false if arr is not an array of strings.
func stringArray(arr []byte) (vals []string, spans [][2]int, ok bool) {
	i := skipSpace(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return nil, nil, false
	}
	i = skipSpace(arr, i+1)
	for i < len(arr) && arr[i] != ']' {
		if arr[i] != '"' {
			return nil, nil, false
		}
		e, err := skipString(arr, i)
		if err != nil {
			return nil, nil, false
		}
		raw := arr[i+1 : e-1]
		if bytes.IndexByte(raw, '\\') >= 0 {
			var s string // escapes to the heap: only for escaped ids
			if json.Unmarshal(arr[i:e], &s) != nil {
				return nil, nil, false
			}
			vals = append(vals, s)
		} else {
			vals = append(vals, string(raw))
		}
		spans = append(spans, [2]int{i, e})
		i = skipSpace(arr, e)
		if i < len(arr) && arr[i] == ',' {
			i = skipSpace(arr, i+1)
		}
	}
	return vals, spans, true
}
