package jsonpath_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/privguard/privguard/internal/jsonpath"
)

func TestFoldMatchesEncodingJSON(t *testing.T) {
	// Fold(a) == Fold(b) must hold exactly when encoding/json fills the same field from
	// either key.
	for _, tc := range []struct {
		key  string
		same bool
	}{
		{"recipients", true}, {"RECIPIENTS", true}, {"Recipients", true},
		{"recipientſ", true}, // U+017F LATIN SMALL LETTER LONG S folds to s
		{"Kustomer", false},  // another word
		{"recipients ", false}, {"recipient", false}, {"recipients\u0000", false},
	} {
		var v struct {
			Recipients int `json:"recipients"`
		}
		b, _ := json.Marshal(map[string]int{tc.key: 1})
		_ = json.Unmarshal(b, &v)
		decoded := v.Recipients == 1
		if decoded != tc.same {
			t.Fatalf("test table wrong: encoding/json fills recipients from %q: %v", tc.key, decoded)
		}
		if got := jsonpath.Fold(tc.key) == jsonpath.Fold("recipients"); got != tc.same {
			t.Errorf("Fold(%q) == Fold(recipients) is %v; encoding/json says %v", tc.key, got, tc.same)
		}
	}
	var k struct {
		Kind int `json:"kind"`
	}
	_ = json.Unmarshal([]byte(`{"\u212aind":1}`), &k) // KELVIN SIGN
	if k.Kind != 1 || jsonpath.Fold("\u212aind") != jsonpath.Fold("kind") {
		t.Errorf("the Kelvin sign: encoding/json %v, Fold %q", k.Kind == 1, jsonpath.Fold("\u212aind"))
	}
}

func TestCheckPaths(t *testing.T) {
	paths := []string{"recipients", "customer", "profile.phone"}
	for _, tc := range []struct {
		name, doc string
		path      string // "" means no error
		variant   bool
	}{
		{"plain", `{"recipients":["a"],"customer":"c","profile":{"phone":"1"}}`, "", false},
		{"absent", `{"other":1}`, "", false},
		{"escaped_exact_is_fine", `{"recipient\u0073":["a"]}`, "", false},
		{"case_duplicate", `{"recipients":["ok"],"RECIPIENTS":["victim"]}`, "recipients", false},
		{"exact_duplicate", `{"customer":"ok","customer":"victim"}`, "customer", false},
		{"escaped_duplicate", `{"customer":"ok","custom\u0065r":"victim"}`, "customer", false},
		{"variant_alone", `{"CUSTOMER":"victim"}`, "customer", true},
		{"long_s", `{"recipientſ":["victim"]}`, "recipients", true},
		{"nested_variant", `{"profile":{"Phone":"1"}}`, "profile.phone", true},
		{"nested_in_array", `[{"profile":{"phone":"1"}},{"profile":{"phone":"1","phone":"2"}}]`, "profile.phone", false},
		{"parent_duplicate", `{"profile":{"phone":"1"},"PROFILE":{"phone":"2"}}`, "profile.phone", false},
		{"scalar", `"x"`, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := jsonpath.CheckPaths([]byte(tc.doc), paths)
			var ke *jsonpath.KeyError
			switch {
			case tc.path == "" && err != nil:
				t.Fatalf("CheckPaths(%s) = %v; want nil", tc.doc, err)
			case tc.path == "":
			case !errors.As(err, &ke):
				t.Fatalf("CheckPaths(%s) = %v; want a KeyError for %s", tc.doc, err, tc.path)
			case ke.Path != tc.path || ke.Variant != tc.variant:
				t.Fatalf("CheckPaths(%s) = %+v; want path %s variant %v", tc.doc, ke, tc.path, tc.variant)
			}
		})
	}
	if err := jsonpath.CheckPaths([]byte(`{"a":`), paths); !errors.Is(err, jsonpath.ErrNotJSON) {
		t.Errorf("malformed: %v", err)
	}
}

func TestCheckDuplicates(t *testing.T) {
	for _, tc := range []struct{ doc, path string }{
		{`{"subject":"a","purpose":"b","notice":{"id":"x","version":1}}`, ""},
		{`{"subject":"a","Subject":"b"}`, "Subject"},
		{`{"subject":"a","subject":"b"}`, "subject"},
		{`{"notice":{"id":"x","ID":"y"}}`, "notice.ID"},
		{`{"list":[{"a":1},{"a":1,"A":2}]}`, "list.A"},
		{`[1,{"k":1,"\u212a":2}]`, "\u212a"},
	} {
		err := jsonpath.CheckDuplicates([]byte(tc.doc))
		var ke *jsonpath.KeyError
		if tc.path == "" {
			if err != nil {
				t.Errorf("CheckDuplicates(%s) = %v; want nil", tc.doc, err)
			}
			continue
		}
		if !errors.As(err, &ke) || ke.Path != tc.path {
			t.Errorf("CheckDuplicates(%s) = %v; want a KeyError at %s", tc.doc, err, tc.path)
		}
	}
}

func FuzzCheckPaths(f *testing.F) {
	f.Add([]byte(`{"recipients":["a"],"RECIPIENTS":["b"]}`))
	f.Add([]byte(`[{"profile":{"phone":"1"}}]`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		err := jsonpath.CheckPaths(doc, []string{"recipients", "profile.phone"})
		if !json.Valid(doc) {
			if !errors.Is(err, jsonpath.ErrNotJSON) {
				t.Fatalf("invalid JSON gave %v", err)
			}
			return
		}
		_ = jsonpath.CheckDuplicates(doc)
		if err != nil {
			return
		}
		// Accepted: a case-insensitive, last-wins decoder must see what an exact one sees.
		var exact map[string]json.RawMessage
		var lenient struct {
			Recipients json.RawMessage `json:"recipients"`
		}
		if json.Unmarshal(doc, &exact) == nil && json.Unmarshal(doc, &lenient) == nil {
			if string(exact["recipients"]) != string(lenient.Recipients) {
				t.Fatalf("accepted %s: exact %s, lenient %s", doc, exact["recipients"], lenient.Recipients)
			}
		}
	})
}
