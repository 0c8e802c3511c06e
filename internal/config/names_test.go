package config

import (
	"reflect"
	"strings"
	"testing"
)

// Unknown purposes, categories and legal bases are refused at start (Taxonomy, which serve
// calls before anything else) with the field's path and the name probably meant, instead of
// being accepted and failing every request later.
func TestTaxonomyRefusesUnknownNames(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"route_purpose", "routes:\n  - {match: 'GET /p/{id}', purpose: personalise.recommendation, subject: {path: id}}\n",
			`routes[0].purpose: unknown purpose "personalise.recommendation"; did you mean "personalize.recommendation"?`},
		{"route_purposes", "routes:\n  - {match: 'GET /p/{id}', purposes: [marketing.communications.sms, marketing.sms], subject: {path: id}}\n",
			`routes[0].purposes[1]: unknown purpose "marketing.sms"; did you mean "marketing.communications.sms"?`},
		{"route_purpose_far", "routes:\n  - {match: 'GET /p/{id}', purpose: fax, subject: {path: id}}\n",
			`routes[0].purpose: unknown purpose "fax"; known purposes: analytics.ab_testing, `},
		{"route_field", "routes:\n  - {match: 'GET /p/{id}', purpose: personalize.recommendation, subject: {path: id}, fields: {email: user.contact.emial}}\n",
			`routes[0].fields[email]: unknown data category "user.contact.emial"; did you mean "user.contact.email"?`},
		{"route_field_far", "routes:\n  - {match: 'GET /p/{id}', purpose: personalize.recommendation, subject: {path: id}, fields: {f: user.contact.carrier_pigeon}}\n",
			`routes[0].fields[f]: unknown data category "user.contact.carrier_pigeon"; known categories under user.contact: user.contact.address, `},
		{"route_field_not_user", "routes:\n  - {match: 'GET /p/{id}', purpose: personalize.recommendation, subject: {path: id}, fields: {f: email}}\n",
			`routes[0].fields[f]: unknown data category "email"; did you mean "user.contact.email"?`},
		{"encrypt_unknown_category", "routes:\n  - {match: 'POST /p/{id}', purpose: essential.service, subject: {path: id}, fields: {phone: user.contact.phone_number}, encrypt: [user.contact.phone_numbr]}\n",
			`routes[0].encrypt[0]: unknown data category "user.contact.phone_numbr"; did you mean "user.contact.phone_number"?`},
		{"encrypt_user_path", "routes:\n  - {match: 'POST /p/{id}', purpose: essential.service, subject: {path: id}, encrypt: [user.phone]}\n",
			`routes[0].encrypt[0]: unknown data category "user.phone"`},
		{"encrypt_category_no_field", "routes:\n  - {match: 'POST /p/{id}', purpose: essential.service, subject: {path: id}, fields: {phone: user.contact.phone_number}, encrypt: [user.contact.email]}\n",
			`routes[0].encrypt[0]: no field of the route is of data category "user.contact.email"`},
		{"store_column", "dsar:\n  stores:\n    - {name: crm, type: postgres, dsn: d, tables: [{table: c, subject_column: id, columns: {mail: user.contact.emial}, erase: delete}]}\n",
			`dsar.stores[0].tables[0].columns[mail]: unknown data category "user.contact.emial"; did you mean "user.contact.email"?`},
		{"recipient_purpose", "dsar:\n  recipients:\n    - {name: ads, purposes: [marketing.advertising.frist_party]}\n",
			`dsar.recipients[0].purposes[0]: unknown purpose "marketing.advertising.frist_party"; did you mean "marketing.advertising.first_party"?`},
		{"recipient_category", "dsar:\n  recipients:\n    - {name: ads, categories: [user.contact.emial]}\n",
			`dsar.recipients[0].categories[0]: unknown data category "user.contact.emial"; did you mean "user.contact.email"?`},
		{"consent_purpose", "consent:\n  purposes:\n    marketing.profilng: {validity: 1h}\n",
			`consent.purposes[marketing.profilng]: not a purpose of the default taxonomy; did you mean "marketing.profiling"?`},
		{"token_purpose", "admin:\n  tokens:\n    - {name: sms-gateway, sha256: " + strings.Repeat("a", 64) + ", purposes: [marketing.sms]}\n",
			`admin.tokens[0].purposes[0]: unknown purpose "marketing.sms"; did you mean "marketing.communications.sms"?`},
		{"caller_purpose", "callers:\n  - {name: sms-gateway, token_file: t, purposes: [marketing.sms]}\n",
			`callers[0].purposes[0]: unknown purpose "marketing.sms"; did you mean "marketing.communications.sms"?`},
		{"caller_twice", "callers:\n  - {name: gw, token_file: t, purposes: [marketing]}\n  - {name: gw, token_file: u, purposes: [marketing]}\n",
			`callers[1].name: "gw" names another caller too`},
		{"legal_basis", "consent:\n  purposes:\n    marketing.profiling: {legal_bases: {gdpr: [legitimate_interests]}}\n",
			`consent.purposes[marketing.profiling].legal_bases[gdpr][0]: unknown legal basis "legitimate_interests"; did you mean "legitimate_interest"?`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse([]byte(tc.yaml))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if _, err := f.Taxonomy(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Taxonomy() = %v\nwant an error containing %s", err, tc.want)
			}
		})
	}
}

func TestTaxonomyAcceptsKnownNames(t *testing.T) {
	f, err := Parse([]byte(`
upstream: http://127.0.0.1:9000
listen: 127.0.0.1:0
routes:
  - match: "GET /api/profiles/{id}"
    purpose: personalize.recommendation
    subject: {path: id}
    fields: {email: user.contact.email, history: user.behavior.browsing_history, tier: user.derived.tags.loyalty}
    encrypt: [user.contact, history, profile.nickname]   # a category, a field path, a body path
  - match: "POST /api/campaigns/{id}/send"
    purposes: [marketing.communications.sms, marketing.communications.email]
    subjects: {json: recipients}
dsar:
  stores:
    - {name: crm, type: postgres, dsn: d, tables: [{table: c, subject_column: id, columns: {email: user.contact.email, tag: user.derived.tags}, erase: delete}]}
  recipients:
    - {name: ads, purposes: [marketing.communications, marketing.advertising.first_party], categories: [user.contact.email]}
consent:
  purposes:
    marketing.profiling: {legal_bases: {gdpr: [consent, legitimate_interest]}}
admin:
  tokens:
    - {name: sms-gateway, sha256: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa, purposes: [marketing.communications.sms, personalize], subjects_requests: false}
dual_control: {export_rows: 500}
callers:
  - {name: sms-gateway, token_file: /run/secrets/sms, purposes: [marketing.communications.sms]}
  - {name: agency, sha256: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb, purposes: [marketing.advertising], terminated_at: 2026-06-30T00:00:00Z}
`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Taxonomy(); err != nil {
		t.Errorf("Taxonomy() = %v; want no error", err)
	}
}

// Users are told what a field allows, never a validator's tag text ("fails oneof=pipl gdpr").
func TestParseErrorsSayWhatIsAllowed(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"oneof", "regime: ccpa\n", `regime: "ccpa" is not allowed; must be one of pipl, gdpr`},
		{"required_with", "listen: 127.0.0.1:8080\n", "upstream: is required when listen is set"},
		{"required_without_all", "routes:\n  - {match: 'GET /x'}\n", "routes[0].purpose: is required unless purposes or pass is set"},
		{"required_if", "dsar:\n  stores:\n    - {name: crm, type: postgres}\n", "dsar.stores[0].dsn: is required when type is postgres"},
		{"url", "listen: 127.0.0.1:8080\nupstream: 'not a url'\n", "upstream: must be a URL"},
		{"startswith", "listen: 127.0.0.1:8080\nupstream: 'ftp://files.example'\n", "upstream: must be an http:// or https:// URL"},
		{"cidr", "trusted_proxies: [10.0.0.1]\n", "trusted_proxies[0]: must be a network in CIDR notation"},
		{"listen_addr", "admin_listen: nowhere\n", "admin_listen: must be host:port"},
		{"len", "admin:\n  tokens:\n    - {name: a, sha256: abc}\n", "admin.tokens[0].sha256: must have exactly 64 characters"},
		{"hexadecimal", "admin:\n  tokens:\n    - {name: a, sha256: " + strings.Repeat("z", 64) + "}\n", "admin.tokens[0].sha256: must be hexadecimal"},
		{"max_int", "consent:\n  eu_consent_age: 18\n", "consent.eu_consent_age: must be at most 16"},
		{"min_int", "consent:\n  eu_consent_age: 12\n", "consent.eu_consent_age: must be at least 13"},
		{"max_string", "routes:\n  - {match: '" + strings.Repeat("x", 301) + "', purpose: essential.service}\n", "routes[0].match: must have at most 300 characters"},
		{"contains", "dsar:\n  stores:\n    - {name: c, type: redis, addr: a, keys: [profile]}\n", `dsar.stores[0].keys[0]: must contain "{subject}"`},
		{"country", "dsar:\n  recipients:\n    - {name: r, country: China}\n", "dsar.recipients[0].country: must be a two-letter ISO 3166-1 country code"},
		{"name", "dsar:\n  stores:\n    - {name: 'crm/../x-1', type: redis, addr: a}\n", "dsar.stores[0].name: must be letters, digits, - and _ only"},
		{"duration", "policy:\n  frequency:\n    sms: {max: 2, window: weekly}\n", "policy.frequency[sms].window: must be a duration such as 168h"},
		{"map_key_oneof", "policy:\n  frequency:\n    fax: {max: 2, window: 1h}\n", `policy.frequency[fax]: "fax" is not allowed; must be one of sms, email, push, wechat`},
		{"data_and_data_dir", "data: ./a\ndata_dir: ./b\n", "data and data_dir are two names for the data directory; set only one"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse(%q) = %v\nwant an error containing %q", tc.yaml, err, tc.want)
			}
			if strings.Contains(err.Error(), "fails ") || strings.Contains(err.Error(), "=") {
				t.Errorf("Parse(%q) = %v: shows validator tag text", tc.yaml, err)
			}
		})
	}
}

// Every validation rule File uses has a readable sentence: a new tag without one fails here.
func TestEveryRuleHasAMessage(t *testing.T) {
	n := 0
	walkRules(reflect.TypeFor[File](), "", map[reflect.Type]bool{}, func(at, tag, param string, kind reflect.Kind) {
		n++
		if _, ok := describe(tag, param, kind); !ok {
			t.Errorf("%s: rule %q has no message in describe", at, tag)
		}
	})
	if n < 20 {
		t.Errorf("walked %d rules; the walk is broken", n)
	}
}

// walkRules calls fn for every rule of every validate tag under t, with the kind of value
// the rule applies to (a dive's rules apply to the elements, keys..endkeys to the keys).
func walkRules(t reflect.Type, at string, seen map[reflect.Type]bool, fn func(at, tag, param string, kind reflect.Kind)) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Map:
		walkRules(t.Elem(), at+"[]", seen, fn)
		return
	case reflect.Struct:
	default:
		return
	}
	if seen[t] || t.PkgPath() != reflect.TypeFor[File]().PkgPath() {
		return
	}
	seen[t] = true
	for i := range t.NumField() {
		f := t.Field(i)
		name := at + "." + yamlName(f)
		ft := f.Type
		inKeys := false
		for _, rule := range splitRules(f.Tag.Get("validate")) {
			switch rule {
			case "", "omitempty":
				continue
			case "dive":
				for ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				ft = ft.Elem()
				continue
			case "keys":
				inKeys = true
				continue
			case "endkeys":
				inKeys = false
				continue
			}
			kind := ft.Kind()
			if inKeys {
				kind = reflect.String // every map of File has string keys
			}
			for _, alt := range strings.Split(rule, "|") {
				tag, param, _ := strings.Cut(alt, "=")
				fn(name, tag, param, kind)
			}
		}
		walkRules(f.Type, name, seen, fn)
	}
}

// splitRules splits a validate tag at its commas (params here hold none).
func splitRules(tag string) []string { return strings.Split(tag, ",") }

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name
}
