package jsonpath_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/privguard/privguard/internal/jsonpath"
)

func TestFold(t *testing.T) {
	// Whatever encoding/json takes for the same field, Fold does too; Fold also joins what
	// looser decoders join.
	for _, tc := range []struct {
		key        string
		stdlib     bool // encoding/json fills recipients from key
		lenientToo bool // some decoder does (Fold must say so)
	}{
		{"recipients", true, true}, {"RECIPIENTS", true, true}, {"Recipients", true, true},
		{"recipientſ", true, true},          // U+017F LATIN SMALL LETTER LONG S folds to s
		{"recipi_ents", false, true},        // encoding/json/v2 case:ignore drops '_' and '-'
		{"RECIPI-ENTS", false, true},        //
		{"ｒｅｃｉｐｉｅｎｔｓ", false, true},         // fullwidth, NFKC
		{"recıpients", false, true},         // dotless i: Java's equalsIgnoreCase
		{"recipients\x00junk", false, true}, // C parsers stop at NUL
		{"Kustomer", false, false}, {"recipients ", false, false}, {"recipient", false, false},
	} {
		var v struct {
			Recipients int `json:"recipients"`
		}
		b, _ := json.Marshal(map[string]int{tc.key: 1})
		_ = json.Unmarshal(b, &v)
		if decoded := v.Recipients == 1; decoded != tc.stdlib {
			t.Fatalf("test table wrong: encoding/json fills recipients from %q: %v", tc.key, decoded)
		}
		if got := jsonpath.Fold(tc.key) == jsonpath.Fold("recipients"); got != tc.lenientToo {
			t.Errorf("Fold(%q) == Fold(recipients) is %v; want %v", tc.key, got, tc.lenientToo)
		}
	}
	var k struct {
		Kind int `json:"kind"`
	}
	_ = json.Unmarshal([]byte(`{"\u212aind":1}`), &k) // KELVIN SIGN
	if k.Kind != 1 || jsonpath.Fold("\u212aind") != jsonpath.Fold("kind") {
		t.Errorf("the Kelvin sign: encoding/json %v, Fold %q", k.Kind == 1, jsonpath.Fold("\u212aind"))
	}
	for a, b := range map[string]string{"addreß": "address", "cuﬆomer": "customer", "İd": "id"} {
		if jsonpath.Fold(a) != jsonpath.Fold(b) {
			t.Errorf("Fold(%q) = %q, Fold(%q) = %q; want them equal", a, jsonpath.Fold(a), b, jsonpath.Fold(b))
		}
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

func TestDepthIsBounded(t *testing.T) {
	deep := []byte(strings.Repeat("[", 10000) + `"x"` + strings.Repeat("]", 10000))
	start := time.Now()
	if err := jsonpath.CheckPaths(deep, []string{"customer"}); !errors.Is(err, jsonpath.ErrTooDeep) {
		t.Errorf("CheckPaths(10,000 nested arrays) = %v; want ErrTooDeep", err)
	}
	if err := jsonpath.CheckDuplicates(deep); !errors.Is(err, jsonpath.ErrTooDeep) {
		t.Errorf("CheckDuplicates = %v; want ErrTooDeep", err)
	}
	if err := jsonpath.CheckMember(deep, "customer"); err != nil {
		t.Errorf("CheckMember of an array = %v; want nil (no top-level object, no member)", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the checks took %v on a 20 KB document", d)
	}
	ok := []byte(strings.Repeat(`{"a":`, 60) + `1` + strings.Repeat("}", 60))
	if err := jsonpath.CheckPaths(ok, []string{"a.a.a"}); err != nil {
		t.Errorf("60 levels: %v", err)
	}
}
