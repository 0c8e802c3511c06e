// Package jsonpath rewrites the values at dotted paths ("address.city") of a JSON
// document: the middleware drops and masks response fields with it, the vault seals and
// opens them. It also checks that the keys privguard enforces can be read one way only
// (CheckPaths, CheckDuplicates): no duplicates, no spellings a case-insensitive decoder would
// take for them. Standard library only, so that the middleware stays light.
package jsonpath

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Func returns the new value for the value at path, or nil to remove the member.
type Func func(path string, val json.RawMessage) (json.RawMessage, error)

type op struct {
	full string   // the whole path, as given
	rest []string // what is left of it below this level
}

// Rewrite applies fn to the value at every path of doc, descending through objects and,
// element by element, arrays. Each object or array on the way is decoded once, whatever
// the number of paths; every other value is copied as it is, and an object nothing changed
// in is returned as it was. A path given twice is applied once.
func Rewrite(doc json.RawMessage, paths []string, fn Func) (json.RawMessage, error) {
	ops := make([]op, 0, len(paths))
	seen := map[string]bool{}
	for _, p := range paths {
		if !seen[p] {
			seen[p] = true
			ops = append(ops, op{full: p, rest: strings.Split(p, ".")})
		}
	}
	return rewrite(doc, ops, fn)
}

func rewrite(doc json.RawMessage, ops []op, fn Func) (json.RawMessage, error) {
	d := bytes.TrimSpace(doc)
	if len(d) == 0 {
		return doc, nil
	}
	switch d[0] {
	case '{':
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(d, &obj); err != nil {
			return nil, err
		}
		changed := false
		deeper := map[string][]op{}
		for _, o := range ops {
			val, ok := obj[o.rest[0]]
			switch {
			case !ok:
			case len(o.rest) > 1:
				deeper[o.rest[0]] = append(deeper[o.rest[0]], op{full: o.full, rest: o.rest[1:]})
			default:
				nv, err := fn(o.full, val)
				if err != nil {
					return nil, err
				}
				if nv == nil {
					delete(obj, o.rest[0])
				} else {
					obj[o.rest[0]] = nv
				}
				changed = true
			}
		}
		for k, sub := range deeper {
			if _, ok := obj[k]; !ok {
				continue // removed at this level by a shorter path
			}
			nv, err := rewrite(obj[k], sub, fn)
			if err != nil {
				return nil, err
			}
			obj[k], changed = nv, true
		}
		if !changed {
			return doc, nil
		}
		return json.Marshal(obj)
	case '[':
		var arr []json.RawMessage
		if err := json.Unmarshal(d, &arr); err != nil {
			return nil, err
		}
		for i := range arr {
			nv, err := rewrite(arr[i], ops, fn)
			if err != nil {
				return nil, err
			}
			arr[i] = nv
		}
		return json.Marshal(arr)
	}
	return doc, nil
}
