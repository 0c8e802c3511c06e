package jsonpath_test

import (
	"encoding/json"
	"testing"

	"github.com/privguard/privguard/internal/jsonpath"
)

func TestRewrite(t *testing.T) {
	upper := func(path string, v json.RawMessage) (json.RawMessage, error) {
		if path == "drop" || path == "address" {
			return nil, nil
		}
		return json.RawMessage(`"` + path + `"`), nil
	}
	for _, tc := range []struct{ doc, want string }{
		{`{"a":1,"b":{"c":2,"d":3},"drop":4}`, `{"a":"a","b":{"c":"b.c","d":3}}`},
		{`[{"a":1},{"x":1},{"b":[{"c":1},{"c":2}]}]`, `[{"a":"a"},{"x":1},{"b":[{"c":"b.c"},{"c":"b.c"}]}]`},
		{`{"x": 1,  "y": [1, 2]}`, `{"x": 1,  "y": [1, 2]}`}, // nothing on the paths: the bytes as they were
		{`{"address":{"city":"Shanghai"}}`, `{}`},            // removed by the shorter path, not brought back as null
		{`"scalar"`, `"scalar"`},
		{`  `, `  `},
	} {
		got, err := jsonpath.Rewrite(json.RawMessage(tc.doc), []string{"a", "b.c", "drop", "address", "address.city", "a"}, upper)
		if err != nil || string(got) != tc.want {
			t.Errorf("Rewrite(%s) = %s, %v; want %s", tc.doc, got, err, tc.want)
		}
	}
	if _, err := jsonpath.Rewrite(json.RawMessage(`{"a":`), []string{"a"}, upper); err == nil {
		t.Error("malformed JSON was accepted")
	}
	calls := 0
	jsonpath.Rewrite(json.RawMessage(`{"a":1}`), []string{"a", "a"}, func(string, json.RawMessage) (json.RawMessage, error) {
		calls++
		return json.RawMessage(`2`), nil
	})
	if calls != 1 {
		t.Errorf("a path given twice was applied %d times", calls)
	}
}
