package rules_test

import (
	"reflect"
	"testing"

	"github.com/privguard/privguard/internal/rules"
)

func TestDescribe(t *testing.T) {
	key := func(s string) string { return "<" + s + ">" }
	for _, tc := range []struct {
		tag, param string
		kind       reflect.Kind
		want       string
	}{
		{"oneof", "pipl gdpr", reflect.String, "must be one of pipl, gdpr"},
		{"max", "64", reflect.String, "must have at most 64 characters"},
		{"max", "2", reflect.Int, "must be at most 2"},
		{"required_with", "Listen", reflect.String, "is required when <Listen> is set"},
		{"excluded_with", "Identity", reflect.Ptr, "cannot be given together with <Identity>"},
		{"alphanum|email", "", reflect.String, ""},
	} {
		got, ok := rules.Describe(tc.tag, tc.param, tc.kind, key)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("Describe(%s=%s) = %q, %v; want %q", tc.tag, tc.param, got, ok, tc.want)
		}
	}
}
