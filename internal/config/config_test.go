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
		{"bad_recourse_regime", "dsar:\n  recourse: {ccpa: call us}\n", "recourse"},
		{"bad_regime", "consent:\n  purposes:\n    marketing.profiling: {legal_bases: {ccpa: [consent]}}\n", "legal_bases"},
		{"webhook_store_without_webhook", "dsar:\n  stores:\n    - {name: v, type: webhook}\n", "dsar.stores[0].webhook"},
		{"webhook_without_secret", "dsar:\n  stores:\n    - {name: v, type: webhook, webhook: {url: 'https://v.example/p'}}\n", "secret_file"},
		{"webhook_bad_url", "dsar:\n  recipients:\n    - {name: r, webhook: {url: 'not a url', secret_file: s}}\n", "url"},
		{"recipient_country", "dsar:\n  recipients:\n    - {name: r, country: China}\n", "country"},
		{"result_ttl", "dsar:\n  result_ttl: soon\n", "duration"},
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

func TestIssueDSARShape(t *testing.T) {
	f, err := Parse([]byte(`
dsar:
  stores:
    - name: crm
      type: postgres
      dsn: postgres://postgres@127.0.0.1:5432/test
      tables:
        - table: customers
          subject_column: customer_id
          columns: {email: user.contact.email, phone: user.contact.phone_number, city: user.location.imprecise}
          erase: delete          # delete | mask | null
        - table: orders
          subject_column: customer_id
          columns: {address: user.contact.address}
          erase: mask
    - name: tags
      type: mysql
      dsn: root@tcp(127.0.0.1:3306)/test
      tables: [{table: user_tags, subject_column: uid, columns: {tag: user.behavior}, erase: delete}]
    - name: cache
      type: redis
      addr: 127.0.0.1:6379
      keys: ["profile:{subject}", "events:{subject}"]      # whole keys owned by the subject
      set_members: ["segment:*"]                            # sets that list subject ids
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.DSAR.Stores) != 3 || f.DSAR.Stores[0].Tables[1].Erase != "mask" || f.DSAR.Stores[2].Keys[1] != "events:{subject}" {
		t.Errorf("parsed %+v", f.DSAR)
	}
	for _, bad := range []string{
		"dsar: {stores: [{name: x, type: oracle, dsn: y}]}",
		"dsar: {stores: [{name: x, type: redis, addr: a, keys: [profile]}]}",
		"dsar: {stores: [{name: x, type: postgres}]}",
		"dsar: {stores: [{name: x, type: postgres, dsn: d, tables: [{table: t, subject_column: c, erase: truncate}]}]}",
	} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestRecourseParses(t *testing.T) {
	f, err := Parse([]byte("dsar:\n  recourse:\n    pipl: 您可以向上海市网信办投诉。\n    gdpr: Complain to the CNIL.\n"))
	if err != nil || f.DSAR.Recourse["pipl"] != "您可以向上海市网信办投诉。" || f.DSAR.Recourse["gdpr"] != "Complain to the CNIL." {
		t.Errorf("recourse: %v, %v", f.DSAR.Recourse, err)
	}
}

func TestDisclosureAndRecipientsParse(t *testing.T) {
	f, err := Parse([]byte(`regime: gdpr
dsar:
  result_ttl: 72h
  disclosure:
    controller: {name: Example Retail Ltd, contact: privacy@example.com}
    retention: 3 years
    sources: [sign-up]
  stores:
    - {name: email-vendor, type: webhook, webhook: {url: "https://vendor.example/privacy", secret_file: /etc/v.secret}}
  recipients:
    - {name: ad-platform, country: SG, purposes: [marketing.advertising.first_party], webhook: {url: "https://ads.example/p", secret_file: /etc/a.secret}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if f.DSAR.ResultTTL.Hours() != 72 || f.DSAR.Disclosure.Controller.Name != "Example Retail Ltd" || f.DSAR.Stores[0].Webhook.URL != "https://vendor.example/privacy" ||
		f.DSAR.Recipients[0].Country != "SG" || f.DSAR.Recipients[0].Webhook.SecretFile != "/etc/a.secret" {
		t.Errorf("parsed %+v", f.DSAR)
	}
}

// A value of the wrong type is named by its key path and said in words, as validation
// errors are.
func TestWrongTypeNamesTheKey(t *testing.T) {
	for doc, want := range map[string]string{
		"policy:\n  memo_size: \"big\"\n":                         `line 2: policy.memo_size: "big" is not a whole number`,
		"upstream_transport:\n  max_idle_conns_per_host: [1]\n":   "line 2: upstream_transport.max_idle_conns_per_host: a list is not a whole number",
		"policy:\n  memo_size:\n    - 1\n":                        "line 3: policy.memo_size: a list is not a whole number",
		"routes:\n  - match: \"GET /x/{id}\"\n    purpose: [a]\n": "line 3: routes[0].purpose: a list is not a string",
		"regime: {a: 1}\n":                                        "line 1: regime: a mapping is not a string",
	} {
		_, err := Parse([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v; want %q", doc, err, want)
		}
	}
}

func TestFrequencyStoreParses(t *testing.T) {
	f, err := Parse([]byte(`
frequency_store:
  redis: {addr: "redis.internal:6379", password_file: /run/secrets/redis, db: 2, key_prefix: "shop:freq:", timeout: 250ms}
policy:
  frequency:
    sms: {max: 2, window: 24h}
    push: {on_unavailable: allow}
`))
	if err != nil {
		t.Fatal(err)
	}
	r := f.FrequencyStore.Redis
	if r == nil || r.Addr != "redis.internal:6379" || r.PasswordFile != "/run/secrets/redis" || r.DB != 2 || r.KeyPrefix != "shop:freq:" || r.Timeout.Duration != 250*time.Millisecond {
		t.Errorf("frequency_store = %+v", r)
	}
	if p := f.Policy.Frequency["push"]; p.OnUnavailable != "allow" || p.Max != nil || p.Window != "" {
		t.Errorf("policy.frequency.push = %+v; want on_unavailable allow and the default limit", p)
	}
	if s := f.Policy.Frequency["sms"]; *s.Max != 2 || s.OnUnavailable != "" {
		t.Errorf("policy.frequency.sms = %+v", s)
	}
}

func TestFrequencyStoreErrorsNameTheKey(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"no_addr", "frequency_store:\n  redis: {db: 1}\n", "frequency_store.redis.addr: "},
		{"addr_without_port", "frequency_store:\n  redis: {addr: redis.internal}\n", "frequency_store.redis.addr: must be host:port"},
		{"negative_db", "frequency_store:\n  redis: {addr: 'r:6379', db: -1}\n", "frequency_store.redis.db: "},
		{"long_timeout", "frequency_store:\n  redis: {addr: 'r:6379', timeout: 1m}\n", "frequency_store.redis.timeout: must be more than 0 and at most 5s"},
		{"zero_timeout", "frequency_store:\n  redis: {addr: 'r:6379', timeout: 0s}\n", "frequency_store.redis.timeout"},
		{"unknown_store", "frequency_store:\n  memcached: {addr: 'm:11211'}\n", "memcached"},
		{"on_unavailable", "policy:\n  frequency:\n    sms: {on_unavailable: retry}\n", `policy.frequency[sms].on_unavailable: "retry" is not allowed`},
		{"max_still_bounded", "policy:\n  frequency:\n    sms: {max: -1}\n", "policy.frequency[sms].max"},
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
