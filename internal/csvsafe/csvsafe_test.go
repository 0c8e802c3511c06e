package csvsafe_test

import (
	"bytes"
	"testing"

	"github.com/privguard/privguard/internal/csvsafe"
)

func TestDefuse(t *testing.T) {
	for in, want := range map[string]string{
		"":                  "",
		"plain":             "plain",
		"=HYPERLINK(\"x\")": "'=HYPERLINK(\"x\")",
		"+1":                "'+1",
		"-2+3":              "'-2+3",
		"@SUM(A1)":          "'@SUM(A1)",
		"\t=1":              "'\t=1",
		"\r=1":              "'\r=1",
		"  =1":              "'  =1",
		"＝1+1":              "'＝1+1",
		"\u3000＋1":          "'\u3000＋1",
		"a=b":               "a=b",
		"个人信息":              "个人信息",
		"   ":               "   ",
	} {
		if got := csvsafe.Defuse(in); got != want {
			t.Errorf("Defuse(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestWriter(t *testing.T) {
	var b bytes.Buffer
	w := csvsafe.NewWriter(&b)
	if err := w.Write("目的 / Purpose", "=1"); err != nil {
		t.Fatal(err)
	}
	if err := w.Write("a", "b"); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if want := "\uFEFF目的 / Purpose,'=1\na,b\n"; b.String() != want {
		t.Fatalf("got %q; want %q", b.String(), want)
	}
}
