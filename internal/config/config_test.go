package config

import (
	"strings"
	"testing"
	"time"

	"github.com/privguard/privguard"
)

func TestParse(t *testing.T) {
	f, err := Parse([]byte(`
admin_listen: 127.0.0.1:9000
admin:
  tokens:
    - name: crm
      sha256: 5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef
consent:
  eu_consent_age: 14
  purposes:
    marketing.communications.sms:
      validity: 4380h
`))
	if err != nil {
		t.Fatal(err)
	}
	if f.Data != DefaultDataDir || f.AdminListen != "127.0.0.1:9000" || f.Consent.EUConsentAge != 14 {
		t.Errorf("Parse = %+v", f)
	}
	tax, err := f.Taxonomy()
	if err != nil {
		t.Fatal(err)
	}
	info, _ := tax.Lookup("marketing.communications.sms")
	if info.Validity != 4380*time.Hour {
		t.Errorf("sms validity = %v; want 4380h (CON-11: per-purpose expiry from configuration)", info.Validity)
	}
	email, _ := tax.Lookup("marketing.communications.email")
	if email.Validity != privguard.DefaultConsentValidity {
		t.Errorf("email validity = %v; want the default", email.Validity)
	}
}

func TestParseErrorsNameTheField(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"unknown_key", "admin_listn: x\n", "admin_listn"},
		{"bad_age", "consent:\n  eu_consent_age: 18\n", "consent.eu_consent_age"},
		{"bad_listen", "admin_listen: nowhere\n", "admin_listen"},
		{"short_token_hash", "admin:\n  tokens:\n    - {name: a, sha256: abc}\n", "admin.tokens[0].sha256"},
		{"bad_duration", "consent:\n  purposes:\n    marketing.profiling: {validity: forever}\n", "duration"},
		{"bad_regime", "consent:\n  purposes:\n    marketing.profiling: {legal_bases: {ccpa: [consent]}}\n", "legal_bases"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse(%q) = %v; want an error naming %q", tc.yaml, err, tc.want)
			}
		})
	}
}

func TestTaxonomyRejects(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		// proves CON-01: the config validator rejects legitimate interests on a PIPL-scoped purpose.
		{"li_under_pipl", "consent:\n  purposes:\n    marketing.profiling: {legal_bases: {pipl: [legitimate_interest]}}\n", "not lawful under pipl"},
		{"unknown_purpose", "consent:\n  purposes:\n    marketing.fax: {validity: 1h}\n", "not a purpose"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse([]byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Taxonomy(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Taxonomy() = %v; want %q", err, tc.want)
			}
		})
	}
}
