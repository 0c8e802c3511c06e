package config

import (
	"strings"
	"testing"
)

func TestRouteProblemsNameThePath(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"method_typo", "routes:\n  - {match: 'GIT /a/{id}', purpose: essential.service, subject: {path: id}}\n", `routes[0].match: "GIT" is not an HTTP method`},
		{"path_not_wildcard", "routes:\n  - {match: 'GET /a/{id}', purpose: essential.service, subject: {path: uid}}\n", `routes[0].subject.path: "uid" is not a wildcard`},
		{"two_locators", "routes:\n  - {match: 'GET /a/{id}', purpose: essential.service, subject: {path: id, header: X}}\n", "routes[0]: set exactly one of"},
		{"no_locator", "routes:\n  - {match: 'GET /a', purpose: essential.service}\n", "routes[0]: set exactly one of"},
		{"conflict", "routes:\n  - {match: 'GET /a/{id}', purpose: essential.service, subject: {path: id}}\n  - {match: 'GET /a/{x}', purpose: essential.service, subject: {path: x}}\n", "routes[1].match: pattern"},
		{"repeated", "routes:\n  - {match: 'GET /a', pass: true}\n  - {match: 'GET /a', pass: true}\n", `routes[1].match: "GET /a" is also routes[0]`},
		{"pass_with_purpose", "routes:\n  - {match: 'GET /a', pass: true, purpose: essential.service}\n", "routes[0]: a pass route takes only match"},
		{"fields_on_batch", "routes:\n  - {match: 'POST /a', purpose: marketing.communications.sms, subjects: {json: to}, fields: {phone: user.contact.phone_number}}\n", "routes[0]: fields and encrypt are for routes about one subject"},
		{"unknown_key", "regim: gdpr\n", `line 1: unknown key "regim"; did you mean "regime"?`},
		{"unknown_nested_key", "routes:\n  - {match: 'GET /a', pass: true, pas: true}\n", `unknown key "pas"; did you mean "pass"?`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse = %v; want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "registered at") || strings.Contains(err.Error(), "config.Route") {
				t.Errorf("the message leaks Go internals: %v", err)
			}
		})
	}
}
