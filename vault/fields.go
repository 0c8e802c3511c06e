package vault

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/privguard/privguard"
)

// SealedPrefix starts the JSON string a sealed field value is replaced with.
const SealedPrefix = "pgv1:"

// SealJSON seals the values at the dotted paths of doc (objects, and arrays element by
// element) for subject: each value's JSON encoding is sealed with its path as associated
// data and replaced by the string SealedPrefix+base64(ciphertext). Values already sealed
// are left as they are. doc must be JSON.
func (v *Vault) SealJSON(ctx context.Context, subject privguard.SubjectID, doc []byte, paths []string) ([]byte, error) {
	return v.walkJSON(doc, paths, func(path string, val json.RawMessage) (json.RawMessage, error) {
		if isSealed(val) || bytes.Equal(bytes.TrimSpace(val), []byte("null")) {
			return val, nil
		}
		ct, err := v.Seal(ctx, subject, bytes.TrimSpace(val), []byte(path))
		if err != nil {
			return nil, err
		}
		return json.Marshal(SealedPrefix + base64.RawStdEncoding.EncodeToString(ct))
	})
}

// OpenJSON reverses SealJSON. A value of a shredded subject (or one the vault has no key
// for) becomes null: the data is gone. Any other failure (a tampered or moved value) is an
// error, so that the caller can withhold the document.
func (v *Vault) OpenJSON(ctx context.Context, subject privguard.SubjectID, doc []byte, paths []string) ([]byte, error) {
	return v.walkJSON(doc, paths, func(path string, val json.RawMessage) (json.RawMessage, error) {
		if !isSealed(val) {
			return val, nil
		}
		var s string
		if err := json.Unmarshal(val, &s); err != nil {
			return nil, err
		}
		ct, err := base64.RawStdEncoding.DecodeString(strings.TrimPrefix(s, SealedPrefix))
		if err != nil {
			return nil, ErrTruncated
		}
		pt, err := v.Open(ctx, subject, ct, []byte(path))
		if errors.Is(err, ErrShredded) || errors.Is(err, ErrNoKey) {
			return json.RawMessage("null"), nil
		}
		return pt, err
	})
}

func isSealed(val json.RawMessage) bool {
	val = bytes.TrimSpace(val)
	return len(val) > len(SealedPrefix)+2 && val[0] == '"' && bytes.HasPrefix(val[1:], []byte(SealedPrefix))
}

// walkJSON applies fn to the value at every path of doc and returns the document. Each
// object or array on the paths is decoded once, whatever the number of paths; values off
// the paths are copied as they are.
func (v *Vault) walkJSON(doc []byte, paths []string, fn func(path string, val json.RawMessage) (json.RawMessage, error)) ([]byte, error) {
	ops := make([]pathOp, len(paths))
	for i, p := range paths {
		ops[i] = pathOp{full: p, rest: strings.Split(p, ".")}
	}
	out, err := walkOps(doc, ops, fn)
	if err != nil {
		return nil, fmt.Errorf("vault: fields: %w", err)
	}
	return out, nil
}

type pathOp struct {
	full string   // the whole path: the associated data
	rest []string // what is left of it below this level
}

func walkOps(doc json.RawMessage, ops []pathOp, fn func(string, json.RawMessage) (json.RawMessage, error)) (json.RawMessage, error) {
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
		deeper := map[string][]pathOp{}
		for _, op := range ops {
			val, ok := obj[op.rest[0]]
			if !ok {
				continue
			}
			if len(op.rest) > 1 {
				deeper[op.rest[0]] = append(deeper[op.rest[0]], pathOp{full: op.full, rest: op.rest[1:]})
				continue
			}
			nv, err := fn(op.full, val)
			if err != nil {
				return nil, err
			}
			obj[op.rest[0]], changed = nv, true
		}
		for k, sub := range deeper {
			nv, err := walkOps(obj[k], sub, fn)
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
			nv, err := walkOps(arr[i], ops, fn)
			if err != nil {
				return nil, err
			}
			arr[i] = nv
		}
		return json.Marshal(arr)
	}
	return doc, nil
}
