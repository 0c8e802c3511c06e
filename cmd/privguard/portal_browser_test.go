package main

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/go-jose/go-jose/v4"
	"github.com/privguard/privguard/internal/browsertest"
	goredis "github.com/redis/go-redis/v9"
)

// served is a running serve with every listener: admin API, sidecar and privacy centre.
type served struct {
	admin, sidecar, portal, token string
	logs                          *syncBuffer
}

// startServeAll runs serve in-process and reads the addresses it prints.
func startServeAll(t *testing.T, dir, cfg string) *served {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	s := &served{logs: &syncBuffer{}}
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"serve", "--data", dir, "--config", cfg}, func(string) string { return "" }, pw, s.logs)
		pw.Close()
	}()
	addr := regexp.MustCompile(`http://[0-9.:]+`)
	sc := bufio.NewScanner(pr)
	for s.admin == "" && sc.Scan() {
		switch line := sc.Text(); {
		case strings.Contains(line, "sidecar on"):
			s.sidecar = addr.FindString(line)
		case strings.Contains(line, "privacy centre on"):
			s.portal = addr.FindString(line)
		case strings.Contains(line, "admin API on"):
			s.admin = addr.FindString(line)
		}
	}
	go io.Copy(io.Discard, pr)
	t.Cleanup(func() {
		cancel()
		select {
		case <-code:
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop")
		}
	})
	if s.admin == "" || s.portal == "" || s.sidecar == "" {
		t.Fatalf("serve did not print its addresses; logs:\n%s", s.logs.String())
	}
	b, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	s.token = strings.TrimSpace(string(b))
	return s
}

// TestPrivacyCentreInChromium drives the privacy centre in headless Chromium at phone width
// (with a WeChat web view's user agent), on serve with MariaDB and Redis stores and the
// sidecar in front of an SMS service: sign in with the code from the outbox, withdraw SMS
// consent and see the sidecar deny the next send, download the receipt and verify it with
// the published key, ask for a copy and download it, delete a tag and see it gone from
// MariaDB and a segment gone from Redis, switch language, close the account and see the
// stores emptied. A screenshot of every page goes to $PRIVGUARD_TEST_SCREENSHOTS (else the
// test's temporary directory).
func TestPrivacyCentreInChromium(t *testing.T) {
	exe := browsertest.Chromium(t)
	env := needServices(t, "MYSQL_DSN", "REDIS_ADDR")
	myDSN, redisAddr := env[0], env[1]
	sfx := fmt.Sprintf("%d", time.Now().UnixNano()%1e9)
	table, seg := "portal_tags_"+sfx, "portal:"+sfx+":seg:"
	const subject, other, phone = "cust-portal", "cust-other", "+8613800138000"

	my, err := sql.Open("mysql", myDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer my.Close()
	if _, err := my.Exec(`CREATE TABLE ` + table + ` (id INT AUTO_INCREMENT PRIMARY KEY, uid VARCHAR(64) NOT NULL, tag VARCHAR(200), email VARCHAR(200), KEY (uid))`); err != nil {
		t.Fatal(err)
	}
	defer my.Exec(`DROP TABLE IF EXISTS ` + table)
	for _, row := range [][3]string{{subject, "vip", "li@example.com"}, {subject, "coupon_lover", "li@example.com"}, {other, "vip", "wang@example.com"}} {
		if _, err := my.Exec(`INSERT INTO `+table+` (uid, tag, email) VALUES (?, ?, ?)`, row[0], row[1], row[2]); err != nil {
			t.Fatal(err)
		}
	}
	rd := goredis.NewClient(&goredis.Options{Addr: redisAddr})
	defer rd.Close()
	bg := context.Background()
	rd.SAdd(bg, seg+"high_value", subject, other)
	defer rd.Del(bg, seg+"high_value")

	sends := make(chan string, 16)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		select {
		case sends <- string(b):
		default:
		}
		w.Write([]byte(`{"sent":true}`))
	}))
	defer up.Close()
	upstream := up.URL
	dir := t.TempDir()
	cfg := filepath.Join(dir, "privguard.yaml")
	os.WriteFile(cfg, []byte(`listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
upstream: `+upstream+`
regime: pipl
controller: {name: 示例零售有限公司, contact: privacy@example.com, dpo: {name: 王芳, contact: dpo@example.com}}
portal:
  listen: 127.0.0.1:0
  notice: mkt
  topics: [{name: offers, title: {en: Offers and coupons, zh: 优惠与优惠券}}]
  choices:
    - {purpose: marketing.communications.sms, topic: offers, channel: sms, title: {en: Offers by SMS, zh: 短信优惠}}
    - {purpose: marketing.communications.email, topic: offers, channel: email, title: {en: Offers by email, zh: 邮件优惠}}
    - {purpose: marketing.profiling, prompt: true, title: {en: Tags from your purchases, zh: 根据购买记录生成标签}}
routes:
  - match: "POST /sms/send"
    purpose: marketing.communications.sms
    subject: {json: subject}
dsar:
  stores:
    - name: shop
      type: mysql
      dsn: "`+myDSN+`"
      tables: [{table: `+table+`, subject_column: uid, columns: {tag: user.derived.tags, email: user.contact.email}, erase: delete}]
    - name: cache
      type: redis
      addr: `+redisAddr+`
      set_members: ["`+seg+`*"]
`), 0o600)
	s := startServeAll(t, dir, cfg)
	call := func(method, path, body string) (int, map[string]any) {
		return callJSON(t, s.admin, s.token, method, path, body)
	}
	if st, out := call("POST", "/v1/notices", `{"id":"mkt","version":1,"language":"zh-CN","text":"我们会通过短信和邮件向您发送优惠信息，并根据购买记录为您生成标签。","purposes":["marketing"],
		"controller":{"name":"示例零售有限公司","contact":"privacy@example.com","dpo":"dpo@example.com"},"retention":"13 个月","rights_channels":["隐私中心"]}`); st != 201 {
		t.Fatalf("notice: %d %v", st, out)
	}
	if st, out := call("POST", "/v1/consents", `{"subject":"`+subject+`","purpose":"marketing.communications.sms","action":"grant","regime":"pipl",
		"notice":{"id":"mkt","version":1},"channel":"app","method":"explicit"}`); st != 201 {
		t.Fatalf("grant: %d %v", st, out)
	}
	// The app links the subject's phone number (not yet verified: the sign-in code verifies it).
	if st, out := call("POST", "/v1/subjects/"+subject+"/identifiers", `{"type":"phone","value":"138 0013 8000"}`); st != 201 {
		t.Fatalf("link the phone: %d %v", st, out)
	}
	// requestsNow says where the requests are, when a wait times out.
	requestsNow := func() string {
		_, m := call("GET", "/v1/requests?limit=20", "")
		var out []string
		items, _ := m["requests"].([]any)
		for _, it := range items {
			r, _ := it.(map[string]any)
			out = append(out, fmt.Sprintf("%v %v %v tasks=%v", r["id"], r["type"], r["status"], r["tasks"]))
		}
		return strings.Join(out, "\n")
	}
	smsSend := func() int {
		resp, err := http.Post(s.sidecar+"/sms/send", "application/json", strings.NewReader(`{"subject":"`+subject+`","text":"本周优惠"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := smsSend(); st != 200 {
		t.Fatalf("SMS send before the withdrawal = %d", st)
	}

	shots := os.Getenv("PRIVGUARD_TEST_SCREENSHOTS")
	if shots == "" {
		shots = filepath.Join(dir, "screenshots")
	}
	os.MkdirAll(shots, 0o755)
	downloads := filepath.Join(dir, "downloads")
	os.MkdirAll(downloads, 0o755)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(filepath.Join(dir, "profile")), chromedp.Flag("lang", "zh-CN"))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	// The first call starts the browser, on a context without a timeout (chromedp.Run).
	if _, err := chromedp.CallBrowser(bctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: downloads, EventsEnabled: ptr(true)}); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	done := make(chan string, 4)
	go func() {
		for e, err := range chromedp.BrowserEvents(bctx, browser.DownloadProgress) {
			if err != nil {
				return
			}
			if e.State == browser.DownloadProgressStateCompleted {
				done <- e.GUID
			}
		}
	}()
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()
	const wechatUA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.49(0x18003137) NetType/WIFI Language/zh_CN"
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		var err error
		for i, a := range actions {
			start := time.Now()
			actx, cancel := context.WithTimeout(ctx, 20*time.Second)
			_, err = chromedp.Run(actx, a)
			cancel()
			if testing.Verbose() {
				t.Logf("%s: step %d %s (%v)", what, i, time.Since(start).Round(time.Millisecond), err)
			}
			if err != nil {
				break
			}
		}
		if err != nil {
			dctx, cancel := context.WithTimeout(bctx, 5*time.Second)
			defer cancel()
			loc, _ := chromedp.Run(dctx, chromedp.Location())
			page, _ := chromedp.Run(dctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
			t.Fatalf("%s: %v\nat %s:\n%s\nserve logs:\n%s", what, err, loc, page, s.logs.String())
		}
	}
	// Every page shot is also checked for what a screen reader and a keyboard need: a
	// language, one h1, a name for every control, text contrast of at least 4.5:1 (3:1 for
	// large text), and a skip link first in the tab order.
	a11y := func(name string) {
		t.Helper()
		bad, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](a11yCheck))
		if err != nil {
			t.Fatalf("accessibility check of %s: %v", name, err)
		}
		for _, b := range bad {
			t.Errorf("%s: %s", name, b)
		}
	}
	shot := func(name string) {
		t.Helper()
		a11y(name)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		path := filepath.Join(shots, name+".png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot %s", path)
	}
	download := func(what string, click chromedp.Action[chromedp.Void]) []byte {
		t.Helper()
		run(what, click)
		select {
		case guid := <-done:
			b, err := os.ReadFile(filepath.Join(downloads, guid))
			if err != nil {
				t.Fatal(err)
			}
			return b
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: nothing was downloaded", what)
			return nil
		}
	}
	if _, err := chromedp.Call(ctx, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: wechatUA, AcceptLanguage: "zh-CN,zh;q=0.9"}); err != nil {
		t.Fatal(err)
	}
	run("open the browser at phone width",
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile),
		chromedp.Navigate(s.portal+"/"), chromedp.WaitVisible(chromedp.CSS("#identifier")))
	shot("1-signin")

	// Sign in with the code the outbox holds for the phone.
	run("ask for a code", chromedp.SendKeys(chromedp.CSS("#identifier"), "+86 138 0013 8000"),
		chromedp.Click(chromedp.CSS("#send-code")), chromedp.WaitVisible(chromedp.CSS("#code")))
	shot("2-code")
	code := outboxCode(t, filepath.Join(dir, "outbox.jsonl"), phone)
	// proves MKT-06 (from the page, below): the subject sees its tags and segments and deleting
	// one removes it from MariaDB and Redis, another subject's identical ones kept.
	run("enter the code", chromedp.SendKeys(chromedp.CSS("#code"), code), chromedp.Click(chromedp.CSS("#verify-code")),
		chromedp.WaitVisible(chromedp.CSS(`body[data-page="choices"]`)))
	htmlLang, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.lang`))
	if htmlLang != "zh-CN" {
		t.Errorf("a Chinese WeChat user gets lang %q", htmlLang)
	}
	shot("3-choices")

	// proves CON-07: withdrawal takes one click, as giving does, on every channel, and no
	// new verification: email is given with one click and withdrawn with one, SMS withdrawn
	// with one, and each takes effect at once.
	clicks := func(purpose, to string) {
		t.Helper()
		run(to+" "+purpose, chromedp.Click(chromedp.CSS(`button[data-purpose="`+purpose+`"][data-to="`+to+`"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#choice-`+strings.ReplaceAll(purpose, ".", `\.`)+`[data-state="`+to+`"]`)))
	}
	clicks("marketing.communications.email", "on")
	clicks("marketing.communications.email", "off")
	clicks("marketing.communications.sms", "off")
	shot("4-choices-withdrawn")
	if st := smsSend(); st != http.StatusForbidden {
		t.Fatalf("the SMS send after the withdrawal in the page = %d, want 403", st)
	}

	// proves CON-14: the receipt downloaded from the page is signed and verifies with the
	// published key.
	receipt := download("download the receipt", chromedp.Click(chromedp.CSS("#receipt-link")))
	var signed struct {
		Receipt map[string]any `json:"receipt"`
		JWS     string         `json:"jws"`
	}
	if err := json.Unmarshal(receipt, &signed); err != nil {
		t.Fatalf("receipt: %v\n%s", err, receipt)
	}
	resp, err := http.Get(s.portal + "/receipts/keys") // published by the centre itself
	if err != nil {
		t.Fatal(err)
	}
	var jwks jose.JSONWebKeySet
	json.NewDecoder(resp.Body).Decode(&jwks)
	resp.Body.Close()
	jws, err := jose.ParseSigned(signed.JWS, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	keys := jwks.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		t.Fatalf("the receipt's key %q is not published", jws.Signatures[0].Header.KeyID)
	}
	payload, err := jws.Verify(keys[0].Key)
	if err != nil || !bytes.Contains(payload, []byte("marketing.communications.sms")) {
		t.Fatalf("receipt does not verify (%v) or is not the withdrawal's: %s", err, payload)
	}

	// My profile: the tag and the segment, labelled derived; delete both.
	run("open My profile", chromedp.Navigate(s.portal+"/profile"), chromedp.WaitVisible(chromedp.CSS(`li.tag[data-value="vip"]`)))
	shot("5-profile")
	run("delete the vip tag", chromedp.Click(chromedp.CSS(`li.tag[data-value="vip"] button`)), chromedp.WaitVisible(chromedp.CSS(`body[data-page="requests"]`)))
	run("open My profile again", chromedp.Navigate(s.portal+"/profile"), chromedp.WaitVisible(chromedp.CSS(`li.tag[data-value="`+seg+`high_value"]`)))
	run("delete the segment", chromedp.Click(chromedp.CSS(`li.tag[data-value="`+seg+`high_value"] button`)), chromedp.WaitVisible(chromedp.CSS(`body[data-page="requests"]`)))
	waitFor(t, 30*time.Second, "the tag gone from MariaDB and the segment from Redis", func() bool {
		var n int
		my.QueryRow(`SELECT count(*) FROM `+table+` WHERE uid = ? AND tag = 'vip'`, subject).Scan(&n)
		in, _ := rd.SIsMember(bg, seg+"high_value", subject).Result()
		return n == 0 && !in
	})
	var kept int
	my.QueryRow(`SELECT count(*) FROM `+table+` WHERE (uid = ? AND tag = 'coupon_lover') OR (uid = ? AND tag = 'vip')`, subject, other).Scan(&kept)
	if in, _ := rd.SIsMember(bg, seg+"high_value", other).Result(); kept != 2 || !in {
		t.Fatalf("deleting one subject's tags touched others: %d rows kept, other in segment %v", kept, in)
	}

	// An access request from the page, then its download here.
	run("ask for a copy", chromedp.Navigate(s.portal+"/requests"), chromedp.Click(chromedp.CSS(`button[data-type="access"]`)),
		chromedp.WaitVisible(chromedp.CSS(`li.request[data-type="access"]`)))
	waitFor(t, 60*time.Second, "the copy ready to download", func() bool {
		chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`body[data-page="requests"]`)))
		n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("button.download").length`))
		return n > 0
	}, requestsNow)
	shot("6-requests")
	pkg := download("download the copy", chromedp.Click(chromedp.CSS(`button.download`)))
	zr, err := zip.NewReader(bytes.NewReader(pkg), int64(len(pkg)))
	if err != nil {
		t.Fatalf("the package is not a zip: %v", err)
	}
	var readme, all string
	for _, f := range zr.File {
		rc, _ := f.Open()
		b, _ := io.ReadAll(rc)
		rc.Close()
		all += string(b)
		if f.Name == "README.txt" {
			readme = string(b)
		}
	}
	if !strings.Contains(all, "coupon_lover") || !strings.Contains(all, "li@example.com") || strings.Contains(all, "wang@example.com") {
		t.Fatalf("the package does not hold the subject's data (or holds another's):\n%s", readme)
	}
	if !strings.Contains(readme, "北京时间") {
		t.Errorf("the package summary is not in the reader's language and zone:\n%s", readme)
	}

	// Switch language.
	run("switch to English", chromedp.Click(chromedp.CSS("a.lang")), chromedp.WaitVisible(chromedp.CSS(`html[lang="en"]`)))
	h1, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("h1")))
	if h1 != "My requests" {
		t.Errorf("after the switch the title is %q", h1)
	}
	shot("7-requests-en")
	run("My choices in English", chromedp.Navigate(s.portal+"/choices"), chromedp.WaitVisible(chromedp.CSS(`html[lang="en"]`)))
	shot("8-choices-en")

	// proves DSR-12: account cancellation from the page, with no condition, deletes the
	// subject's data in every store, and what the page shows matches the stores.
	run("close the account", chromedp.Navigate(s.portal+"/requests"), chromedp.Click(chromedp.CSS(`button[data-type="cancellation"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#account-closed`)))
	waitFor(t, 60*time.Second, "the subject's rows and memberships gone everywhere, shown completed", func() bool {
		var n int
		my.QueryRow(`SELECT count(*) FROM `+table+` WHERE uid = ?`, subject).Scan(&n)
		chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`body[data-page="requests"]`)))
		shown, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('li.request[data-type="cancellation"][data-state="completed"]').length`))
		return n == 0 && shown == 1
	}, requestsNow)
	if t.Failed() {
		return
	}
	var others int
	my.QueryRow(`SELECT count(*) FROM `+table+` WHERE uid = ?`, other).Scan(&others)
	if others != 1 {
		t.Fatalf("the cancellation touched another subject's rows: %d left", others)
	}
	shot("9-requests-cancelled")
	select {
	case b := <-sends:
		if !strings.Contains(b, subject) {
			t.Errorf("upstream got %s", b)
		}
	default:
		t.Error("the allowed SMS send never reached the upstream")
	}
}

// outboxCode waits for the sign-in code the outbox holds for phone.
func outboxCode(t *testing.T, path, phone string) string {
	t.Helper()
	var b []byte
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		b, _ = os.ReadFile(path)
		code := ""
		for line := range strings.Lines(string(b)) {
			var m map[string]any
			json.Unmarshal([]byte(line), &m)
			if m["channel"] == "sms" && m["to"] == phone && m["kind"] == "signin" {
				code, _ = m["code"].(string)
			}
		}
		if code != "" {
			return code
		}
	}
	t.Fatalf("no sign-in code for %s in the outbox:\n%s", phone, b)
	return ""
}

func ptr[T any](v T) *T { return &v }

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool, explain ...func() string) {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if ok() {
			return
		}
	}
	msg := ""
	for _, e := range explain {
		msg += "\n" + e()
	}
	t.Fatalf("timed out waiting for %s%s", what, msg)
}

// a11yCheck lists what keeps a page from being usable with a screen reader or a keyboard,
// or legible (WCAG 2.1 AA contrast).
const a11yCheck = `(() => {
  const bad = [];
  if (!document.documentElement.lang) bad.push("no lang on html");
  if (document.querySelectorAll("h1").length !== 1) bad.push("not exactly one h1");
  const first = document.querySelector("a, button, input:not([type=hidden]), select");
  if (!first || !first.classList.contains("skip")) bad.push("the skip link is not first in the tab order");
  document.querySelectorAll("input:not([type=hidden]), select, textarea").forEach(e => {
    if (!(e.labels && e.labels.length) && !e.getAttribute("aria-label")) bad.push("unlabelled control " + (e.name || e.id));
  });
  document.querySelectorAll("button, a").forEach(e => {
    if (!(e.textContent || "").trim() && !e.getAttribute("aria-label")) bad.push("a " + e.tagName + " without a name");
  });
  const lum = c => {
    const m = c.match(/[\d.]+/g).map(Number);
    const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(m[0]) + 0.7152 * f(m[1]) + 0.0722 * f(m[2]);
  };
  const bg = e => {
    for (; e; e = e.parentElement) {
      const c = getComputedStyle(e).backgroundColor;
      if (c && !/rgba\(.*,\s*0\)$/.test(c) && c !== "transparent") return c;
    }
    return "rgb(255, 255, 255)";
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n; (n = walker.nextNode()); ) {
    const e = n.parentElement;
    if (!n.textContent.trim() || !e || e.closest(".skip")) continue;
    const st = getComputedStyle(e);
    if (st.visibility === "hidden" || st.display === "none") continue;
    const a = lum(st.color), b = lum(bg(e));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(st.fontSize), bold = parseInt(st.fontWeight) >= 700;
    const need = (size >= 24 || (bold && size >= 18.66)) ? 3 : 4.5;
    if (ratio < need) bad.push("contrast " + ratio.toFixed(2) + " < " + need + " for '" + n.textContent.trim().slice(0, 30) + "'");
  }
  return [...new Set(bad)];
})()`
