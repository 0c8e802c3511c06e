package dsar_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/dsar"
)

// packageOf submits r (verified), runs it and returns its package's files.
func packageOf(t *testing.T, env *resultEnv, r dsar.Request) map[string][]byte {
	t.Helper()
	r.Identity = &dsar.Identity{Method: "token"}
	r, err := env.e.Submit(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.e.Step(ctx); err != nil {
		t.Fatal(err)
	}
	zb, _, err := fetch(env.e, r.ID, env.links.tokens[r.ID])
	if err != nil {
		t.Fatal(err)
	}
	return unzip(t, zb)
}

func TestStatutoryRightsSurviveConfiguredText(t *testing.T) {
	// The controller's configured rights text (disclose's "privacy@example.com or the
	// app's privacy centre") adds to the statutory text; it never replaces it, in
	// disclosure.json or in README.txt.
	env := newResultEnv(t, t.TempDir(), &profileStore{name: "crm"})
	files := packageOf(t, env, dsar.Request{Type: dsar.TypeAccess, Subject: "cust-1", Regime: privguard.RegimePIPL})
	readme := string(files["README.txt"])
	for _, want := range []string{dsar.StatutoryRights[privguard.RegimePIPL]["zh"], dsar.StatutoryRights[privguard.RegimePIPL]["en"],
		"privacy@example.com or the app's privacy centre"} {
		if !strings.Contains(readme, want) {
			t.Errorf("README.txt lacks %q:\n%s", want, readme)
		}
	}
	validate(t, compileSchema(t, "disclosure.schema.json"), "disclosure.json", files["disclosure.json"])
	if d := string(files["disclosure.json"]); !strings.Contains(d, "第四十四条至第四十八条") || !strings.Contains(d, "privacy@example.com or the app") {
		t.Errorf("disclosure.json's rights lack the statutory or the configured text")
	}
}

func TestSummaryInTheReadersLanguageAndZone(t *testing.T) {
	// A PIPL request's README.txt is Chinese first, its time in Beijing time; a GDPR one
	// English first in UTC; lang and zone choose otherwise; purposes are named in the
	// reader's language.
	env := newResultEnv(t, t.TempDir(), &profileStore{name: "crm"})
	texts := func(_ context.Context, r dsar.Request) (dsar.Disclosure, error) {
		d, _ := disclose(ctx, r)
		d.Texts = map[string]map[string]string{"marketing.communications.sms": {"en": "Marketing text messages", "zh": "营销短信"}}
		return d, nil
	}
	env.e = reopenWith(t, env, func(cfg *dsar.Config) { cfg.Disclose = texts })
	for _, tc := range []struct {
		name       string
		r          dsar.Request
		first      string // the section that comes first
		want, lack []string
	}{
		{"pipl_beijing_time", dsar.Request{Regime: privguard.RegimePIPL}, "【中文】",
			[]string{"2026-03-02 17:00:00 +08:00 (Asia/Shanghai) 北京时间", "处理目的：营销短信 (marketing.communications.sms)"}, []string{"09:00:00"}},
		{"gdpr_utc", dsar.Request{Regime: privguard.RegimeGDPR}, "[English]",
			[]string{"2026-03-02 09:00:00 +00:00 (UTC)", "Purposes: Marketing text messages (marketing.communications.sms)", dsar.StatutoryRights[privguard.RegimeGDPR]["zh"]}, nil},
		{"gdpr_in_chinese_in_berlin", dsar.Request{Regime: privguard.RegimeGDPR, Lang: "zh-CN", Zone: "Europe/Berlin"}, "【中文】",
			[]string{"2026-03-02 10:00:00 +01:00 (Europe/Berlin)"}, []string{"北京时间"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.r
			r.Type, r.Subject = dsar.TypeAccess, privguard.SubjectID("cust-"+tc.name)
			readme := string(packageOf(t, env, r)["README.txt"])
			zh, en := strings.Index(readme, "【中文】"), strings.Index(readme, "[English]")
			if zh < 0 || en < 0 || (tc.first == "【中文】") != (zh < en) {
				t.Errorf("sections: 中文 at %d, English at %d; want %s first", zh, en, tc.first)
			}
			for _, w := range tc.want {
				if !strings.Contains(readme, w) {
					t.Errorf("README.txt lacks %q:\n%s", w, readme)
				}
			}
			for _, w := range tc.lack {
				if strings.Contains(readme, w) {
					t.Errorf("README.txt has %q:\n%s", w, readme)
				}
			}
		})
	}
	for _, bad := range []dsar.Request{{Lang: "fr"}, {Zone: "Mars/Olympus"}, {Zone: "Local"}} {
		bad.Type, bad.Subject = dsar.TypeAccess, "cust-x"
		if _, err := env.e.Submit(ctx, bad); !errors.Is(err, privguard.ErrInvalid) {
			t.Errorf("lang %q zone %q: %v; want ErrInvalid", bad.Lang, bad.Zone, err)
		}
	}
}

// reopenWith returns env's engine again over the same store with its configuration
// changed by set.
func reopenWith(t *testing.T, env *resultEnv, set func(*dsar.Config)) *dsar.Engine {
	t.Helper()
	cfg := dsar.Config{Store: env.db.DSAR(), Connectors: []dsar.Connector{&profileStore{name: "crm"}}, Now: env.c.Now,
		Sealer: newVault(t, env.dir, env.db), Disclose: disclose, Notifier: env.links}
	set(&cfg)
	e, err := dsar.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
