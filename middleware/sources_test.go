package middleware

import "testing"

func TestParamNames(t *testing.T) {
	// What PHP, Rack, qs and ASP.NET read a parameter name as, compared with looseName.
	for name, same := range map[string]bool{
		"uid": true, "UID": true, " uid": true, "uid\x00x": true, "[uid]": true, "uid[]": true, "uid[1]": true,
		"u.id": true, "u id": true, "u_id": true, "u-id": true, "ｕｉｄ": true,
		"uids": false, "userid": false, "": false,
	} {
		if got := looseName(name) == looseName("uid"); got != same {
			t.Errorf("looseName(%q) = %q; same as uid: %v, want %v", name, looseName(name), got, same)
		}
	}
	for name, want := range map[string]bool{"_method": true, "_METHOD": true, " _method": true, ".method": true, "_method[]": true,
		"method": false, "_methods": false} {
		if got := isMethodOverride(name); got != want {
			t.Errorf("isMethodOverride(%q) = %v; want %v", name, got, want)
		}
	}
}
