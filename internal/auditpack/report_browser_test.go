package auditpack_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/privguard/privguard/internal/browsertest"

	"github.com/privguard/privguard"
)

// TestReportInChromium renders both reports in headless Chromium and checks that the
// figures the page shows, and the bars of its weekly chart, are the pack's data.
func TestReportInChromium(t *testing.T) {
	exe := browsertest.Chromium(t)
	f := newFixture(t)
	b := pack(t, f.config(newSigner(1)))
	s := summaryOf(t, b)
	dir := t.TempDir()

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(filepath.Join(dir, "profile")))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	pipl := s.Requests.ByRegime[privguard.RegimePIPL]
	gdpr := s.Requests.ByRegime[privguard.RegimeGDPR]
	want := map[string]string{
		"period.from":                       "2026-01-01",
		"period.to":                         "2026-04-01",
		"requests.total":                    strconv.Itoa(s.Requests.Total),
		"requests.pipl.total":               strconv.Itoa(pipl.Total),
		"requests.pipl.on_time":             strconv.Itoa(pipl.OnTime),
		"requests.gdpr.overdue":             strconv.Itoa(gdpr.Overdue),
		"requests.week.2026-01-05.received": "2",
		"disclosures.entries":               strconv.Itoa(s.Disclosures.Entries),
		"disclosures.abroad":                strconv.Itoa(s.Disclosures.Abroad),
		"xb.pipl.2026.people":               strconv.FormatInt(s.CrossBorder[0].People, 10),
		"xb.pipl.2026.exemption":            strconv.FormatInt(s.CrossBorder[0].People, 10),
		"trail.acts":                        strconv.Itoa(s.Trail.Acts),
		"trail.key_events":                  strconv.Itoa(s.Trail.KeyEvents),
		"consent.grants":                    "3",
		"consent.marketing.sms.grants":      "3",
		"consent.*.withdrawals":             "1",
		"decisions.denied":                  "3",
		"decisions.deny.consent.missing":    "2",
		"incidents.total":                   "1",
		"record.activities":                 strconv.Itoa(s.Record.Activities),
	}
	for _, lang := range []string{"zh", "en"} {
		name := "report." + lang + ".html"
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(member(t, b, name)), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(ctx, chromedp.Navigate("file://"+path), chromedp.WaitVisible(chromedp.CSS("h1"))); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		heading, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("h1")))
		if err != nil {
			t.Fatal(err)
		}
		htmlLang, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.lang`))
		if err != nil {
			t.Fatal(err)
		}
		figures, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]string](
			`Object.fromEntries([...document.querySelectorAll('[data-figure]')].map(e => [e.dataset.figure, e.textContent.trim()]))`))
		if err != nil {
			t.Fatal(err)
		}
		bars, err := chromedp.Run(ctx, chromedp.Evaluate[[]map[string]string](
			`[...document.querySelectorAll('svg[data-chart="requests.weeks"] rect')].map(r => ({label: r.dataset.label, value: r.dataset.value, h: String(r.getBBox().height)}))`))
		if err != nil {
			t.Fatal(err)
		}
		wantHeading := map[string]string{"zh": "个人信息保护合规审计包", "en": "Privacy compliance audit pack"}[lang]
		if heading != wantHeading || !strings.HasPrefix(htmlLang, lang) {
			t.Errorf("%s: heading %q lang %q", name, heading, htmlLang)
		}
		for k, v := range want {
			if figures[k] != v {
				t.Errorf("%s shows %s = %q; the data says %q", name, k, figures[k], v)
			}
		}
		if len(bars) != len(s.Requests.Weeks) {
			t.Fatalf("%s: %d bars for %d weeks", name, len(bars), len(s.Requests.Weeks))
		}
		for i, w := range s.Requests.Weeks {
			if bars[i]["label"] != w.Start || bars[i]["value"] != strconv.Itoa(w.Received) {
				t.Errorf("%s: bar %d is %v; want week %s with %d", name, i, bars[i], w.Start, w.Received)
			}
			if h, _ := strconv.ParseFloat(bars[i]["h"], 64); (w.Received > 0) != (h > 0) {
				t.Errorf("%s: bar of week %s is %v high for %d requests", name, w.Start, h, w.Received)
			}
		}
	}
}
