package middleware

import (
	"testing"

	"github.com/privguard/privguard/internal/jsonpath"
)

func TestParamNames(t *testing.T) {
	// What PHP, Rack, qs, Rails and ASP.NET read a parameter name as.
	for _, tc := range []struct {
		name, locator string
		same          bool
	}{
		{"uid", "uid", true}, {"UID", "uid", true}, {" uid", "uid", true}, {"uid\x00x", "uid", true},
		{"[uid]", "uid", true}, {"uid[]", "uid", true}, {"uid[1]", "uid", true}, {"ｕｉｄ", "uid", true},
		{"customer_record[customer]", "customer", true}, // Rails' ParamsWrapper hash
		{"campaign[recipients][]", "recipients", true},
		{"user[id", "user_id", true}, {"user.id", "user_id", true}, {"user id", "user_id", true}, // PHP
		{"uids", "uid", false}, {"_uid", "uid", false}, {"u_id", "uid", false}, {"userid", "user_id", false}, {"", "uid", false},
	} {
		if got := paramMatches(tc.name, jsonpath.FoldCase(phpUnderscores(tc.locator))); got != tc.same {
			t.Errorf("paramMatches(%q, %q) = %v; want %v (names %q)", tc.name, tc.locator, got, tc.same, paramNames(tc.name))
		}
	}
	for name, want := range map[string]bool{"_method": true, "_METHOD": true, " _method": true, ".method": true, "_method[]": true,
		"x[_method]": true, "method": false, "_methods": false} {
		if got := isMethodOverride(name); got != want {
			t.Errorf("isMethodOverride(%q) = %v; want %v", name, got, want)
		}
	}
}
