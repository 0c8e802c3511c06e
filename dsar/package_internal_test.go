package dsar

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/privguard/privguard"
)

func TestExportJSONRoundTrips(t *testing.T) {
	for _, x := range []Export{
		{Store: "crm"},
		{Store: "crm", Tables: []Table{{Name: "empty"}}},
		{Store: `we"ird<>&`, Tables: []Table{
			{Name: "t1", Categories: map[string]privguard.DataCategory{"a": "user.contact.email"},
				Rows: []map[string]any{{"a": "<script>&\u2028\"", "n": 1.5, "z": nil, "nested": map[string]any{"k": []any{"v", true}}}}},
			{Name: "t2", Rows: []map[string]any{{"中文": "上海"}, {}}},
		}},
	} {
		b, err := exportJSON(x)
		if err != nil {
			t.Fatal(err)
		}
		var got Export
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%s: %v\n%s", x.Store, err, b)
		}
		want := x
		want.Tables = nil
		for _, tb := range x.Tables {
			if tb.Categories == nil {
				tb.Categories = map[string]privguard.DataCategory{}
			}
			if tb.Rows == nil {
				tb.Rows = []map[string]any{}
			}
			want.Tables = append(want.Tables, tb)
		}
		if want.Tables == nil {
			want.Tables = []Table{}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s round trip (-want +got):\n%s", x.Store, diff)
		}
	}
}

// FuzzAppendJSONString checks the hand-written string encoder against encoding/json.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "上海", "a\"b\\c", "\x00\x1f\x7f", "\u2028\u2029", "\xff\xfe bad utf8", "<script>&", "\t\n\r\b\f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		enc.Encode(s)
		if got := string(appendJSONString(nil, s)); got != strings.TrimSuffix(want.String(), "\n") {
			t.Errorf("appendJSONString(%q) = %s; encoding/json writes %s", s, got, want.String())
		}
	})
}

// BenchmarkAccessPackage10kRows renders one store's 10,000-row export into its part and
// builds the package from it (no store, no sealing: the CPU cost of the package itself).
func BenchmarkAccessPackage10kRows(b *testing.B) {
	x := Export{Store: "crm", Tables: []Table{{Name: "orders",
		Categories: map[string]privguard.DataCategory{"address": "user.contact.address", "city": "user.location.imprecise"}}}}
	for i := range 10_000 {
		x.Tables[0].Rows = append(x.Tables[0].Rows, map[string]any{"customer_id": "cust-1", "order_id": int64(i),
			"address": fmt.Sprintf("%d Nanjing Road", i), "city": "上海"})
	}
	r := Request{ID: "r-1", Type: TypeAccess, Subject: "cust-1", Regime: privguard.RegimePIPL}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		part, err := renderPart(x, true, now)
		if err != nil {
			b.Fatal(err)
		}
		var d Disclosure
		if _, _, err := buildPackage(r, [][]byte{part}, &d, now); err != nil {
			b.Fatal(err)
		}
	}
}

func TestTableFilesNeverCollide(t *testing.T) {
	x := Export{Store: "crm", Tables: []Table{{Name: "a b", Rows: []map[string]any{{"v": 1}}}, {Name: "a_b", Rows: []map[string]any{{"v": 2}}},
		{Name: "Users", Rows: []map[string]any{{"v": 3}}}, {Name: "users", Rows: []map[string]any{{"v": 4}}}}}
	part, err := renderPart(x, true, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(part), int64(len(part)))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range zr.File {
		if seen[strings.ToLower(f.Name)] {
			t.Errorf("two files named %s", f.Name)
		}
		seen[strings.ToLower(f.Name)] = true
	}
	if len(zr.File) != 6 { // meta.json, crm.json, 4 CSVs
		t.Errorf("%d files", len(zr.File))
	}
}

// The access package states the retention rules of each category held, in
// disclosure.json and in README.txt; a category no rule covers states none.
func TestPackageStatesRetentionPerCategory(t *testing.T) {
	x := Export{Store: "crm", Tables: []Table{{Name: "page_views",
		Categories: map[string]privguard.DataCategory{"url": "user.behavior.browsing_history", "email": "user.contact.email"},
		Rows:       []map[string]any{{"url": "/p/1", "email": "a@example.com"}}}}}
	now := time.Now()
	part, err := renderPart(x, true, now)
	if err != nil {
		t.Fatal(err)
	}
	rule := "kept 8760h from collection for personalize.recommendation, then deleted"
	d := Disclosure{retentionOf: func(c privguard.DataCategory) []string {
		if c == "user.behavior.browsing_history" {
			return []string{rule}
		}
		return nil
	}}
	zb, _, err := buildPackage(Request{ID: "r-1", Type: TypeAccess, Subject: "cust-1", Regime: privguard.RegimePIPL}, [][]byte{part}, &d, now)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(zb), int64(len(zb)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, f := range zr.File {
		rc, _ := f.Open()
		var b bytes.Buffer
		b.ReadFrom(rc)
		rc.Close()
		files[f.Name] = b.String()
	}
	var got Disclosure
	if err := json.Unmarshal([]byte(files["disclosure.json"]), &got); err != nil {
		t.Fatal(err)
	}
	for _, c := range got.Categories {
		want := 0
		if c.Category == "user.behavior.browsing_history" {
			want = 1
		}
		if len(c.Retention) != want {
			t.Errorf("%s: retention %v", c.Category, c.Retention)
		}
	}
	if !strings.Contains(files["README.txt"], "user.behavior.browsing_history: "+rule) {
		t.Errorf("README.txt does not state the rule:\n%s", files["README.txt"])
	}
}
