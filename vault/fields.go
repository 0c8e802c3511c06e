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
	"github.com/privguard/privguard/internal/jsonpath"
)

// SealedPrefix starts the JSON string a sealed field value is replaced with.
const SealedPrefix = "pgv1:"

// SealJSON seals the values at the dotted paths of doc (objects, and arrays element by
// element) for subject: each value's JSON encoding is sealed with its path as associated
// data and replaced by the string SealedPrefix+base64(ciphertext). A value already sealed is
// left as it is only if it opens, for this subject at this path: anything else that merely
// starts with SealedPrefix (a client's "pgv1:13812345678") is an error wrapping
// privguard.ErrInvalid, never passed on as if sealed. doc must be JSON.
func (v *Vault) SealJSON(ctx context.Context, subject privguard.SubjectID, doc []byte, paths []string) ([]byte, error) {
	return v.walkJSON(doc, paths, func(path string, val json.RawMessage) (json.RawMessage, error) {
		if bytes.Equal(bytes.TrimSpace(val), []byte("null")) {
			return val, nil
		}
		if isSealed(val) {
			if _, err := v.openValue(ctx, subject, val, path); err != nil {
				return nil, fmt.Errorf("vault: %s holds a value marked sealed that does not open here: %w", path, privguard.ErrInvalid)
			}
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
		pt, err := v.openValue(ctx, subject, val, path)
		if errors.Is(err, ErrShredded) || errors.Is(err, ErrNoKey) {
			return json.RawMessage("null"), nil
		}
		return pt, err
	})
}

// openValue opens one sealed value (a JSON string SealedPrefix+base64).
func (v *Vault) openValue(ctx context.Context, subject privguard.SubjectID, val json.RawMessage, path string) ([]byte, error) {
	var s string
	if err := json.Unmarshal(val, &s); err != nil {
		return nil, err
	}
	ct, err := base64.RawStdEncoding.DecodeString(strings.TrimPrefix(s, SealedPrefix))
	if err != nil {
		return nil, ErrTruncated
	}
	return v.Open(ctx, subject, ct, []byte(path))
}

func isSealed(val json.RawMessage) bool {
	val = bytes.TrimSpace(val)
	return len(val) > len(SealedPrefix)+2 && val[0] == '"' && bytes.HasPrefix(val[1:], []byte(SealedPrefix))
}

// walkJSON applies fn to the value at every path of doc and returns the document.
func (v *Vault) walkJSON(doc []byte, paths []string, fn jsonpath.Func) ([]byte, error) {
	out, err := jsonpath.Rewrite(doc, paths, fn)
	if err != nil {
		return nil, fmt.Errorf("vault: fields: %w", err)
	}
	return out, nil
}
