package middleware

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/privguard/privguard/internal/jsonpath"
)

// FuzzRewriteFastAgrees checks the scanning rewrite against the decoding one: for any valid
// JSON document both give the same value (or the fast one asks for the slow path).
func FuzzRewriteFastAgrees(f *testing.F) {
	for _, s := range []string{`{"email":"a@b.c","history":[1,2],"tags":[{"name":"vip","x":1}]}`,
		`[{"email":1},{"phone":"13812345678"}]`, `{"a":{"email":"x"},"email":{"email":2}}`, ` { "email" : "x" , "y" : [ ] } `,
		`{"e\u006dail":1}`, `{"tags":{"name":[1]}}`, `"s"`, `12`, `{"email":"a","email":"b"}`} {
		f.Add(s)
	}
	ops := []fieldOp{newFieldOp("email", nil), newFieldOp("tags.name", nil), newFieldOp("phone", maskValue)}
	f.Fuzz(func(t *testing.T, doc string) {
		if !json.Valid([]byte(doc)) {
			return
		}
		fast, err := rewriteFast(nil, []byte(doc), ops)
		if errors.Is(err, errSlowPath) {
			return
		}
		if errors.Is(err, errAmbiguousKey) {
			// Only if the document really names a field two ways.
			if jsonpath.CheckPaths([]byte(doc), []string{"email", "tags.name", "phone"}) == nil {
				t.Fatalf("rewriteFast(%q) says ambiguous; CheckPaths does not", doc)
			}
			return
		}
		if jsonpath.CheckPaths([]byte(doc), []string{"email", "tags.name", "phone"}) != nil {
			t.Fatalf("rewriteFast(%q) missed an ambiguous field", doc)
		}
		if err != nil {
			t.Fatalf("rewriteFast(%q): %v", doc, err)
		}
		slow, err := rewrite([]byte(doc), ops)
		if err != nil {
			t.Fatalf("rewrite(%q): %v", doc, err)
		}
		var a, b any
		if err := json.Unmarshal(fast, &a); err != nil {
			t.Fatalf("rewriteFast(%q) = %q: invalid JSON", doc, fast)
		}
		json.Unmarshal(slow, &b)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("rewriteFast(%q) = %s; rewrite = %s", doc, fast, slow)
		}
	})
}

func TestMemberAndStringArray(t *testing.T) {
	doc := []byte(` {"text":"hi","recip\u0069ents":["a","b\"c", "d"] , "n":1}`)
	s, e, isObj, ok := member(doc, "recipients")
	if !isObj || !ok {
		t.Fatalf("member = %v %v", isObj, ok)
	}
	vals, spans, ok := stringArray(doc[s:e])
	if !ok || len(vals) != 3 || vals[1] != `b"c` || string(doc[s:e][spans[2][0]:spans[2][1]]) != `"d"` {
		t.Errorf("stringArray = %q %v %v", vals, spans, ok)
	}
	if _, _, ok := stringArray([]byte(`["a",1]`)); ok {
		t.Error("an array with a number was accepted as strings")
	}
	if _, _, isObj, _ := member([]byte(`[1]`), "x"); isObj {
		t.Error("an array was taken for an object")
	}
}
