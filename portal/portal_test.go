package portal_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/portal"
	"github.com/privguard/privguard/vault"
)

var ctx = context.Background()

// crm is a store holding nothing but saying it holds email addresses (a correction of one
// is then accepted).
type crm struct{}

func (crm) Name() string { return "crm" }
func (crm) Export(context.Context, privguard.SubjectID) (dsar.Export, error) {
	return dsar.Export{Store: "crm"}, nil
}
func (crm) Erase(context.Context, privguard.SubjectID) (dsar.Erased, error) {
	return dsar.Erased{}, nil
}
func (crm) Categories() []privguard.DataCategory {
	return []privguard.DataCategory{"user.contact.email"}
}
func (crm) Correct(context.Context, privguard.SubjectID, map[privguard.DataCategory]string) (int, error) {
	return 1, nil
}

// directory is a Directory over a fixed set of links that records the codes it sends.
type directory struct {
	mu        sync.Mutex
	links     map[string]portal.Link // by normalised value
	sent      map[string]string      // link hash -> last code
	confirmed []string
}

func normalise(v string) (string, error) {
	v = strings.ToLower(strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, strings.TrimSpace(v)))
	if !strings.Contains(v, "@") && !regexp.MustCompile(`^\+?[0-9]{8,15}$`).MatchString(v) {
		return "", fmt.Errorf("not a phone or email: %w", privguard.ErrInvalid)
	}
	return v, nil
}

func (d *directory) Find(_ context.Context, value string) (portal.Link, bool, error) {
	n, err := normalise(value)
	if err != nil {
		return portal.Link{}, false, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	l, ok := d.links[n]
	return l, ok, nil
}

func (d *directory) SendCode(_ context.Context, l portal.Link, code, lang string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sent[l.Hash] = code
	return nil
}

func (d *directory) Confirm(_ context.Context, l portal.Link) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.confirmed = append(d.confirmed, l.Hash)
	return nil
}

func (d *directory) code(t testing.TB, hash string) string {
	t.Helper()
	for range 200 {
		d.mu.Lock()
		c := d.sent[hash]
		delete(d.sent, hash) // each code is read once: the next sign-in waits for its own
		d.mu.Unlock()
		if c != "" {
			return c
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no code sent to %s", hash)
	return ""
}

type env struct {
	t      testing.TB
	clock  *consenttest.Clock
	ledger *consent.Ledger
	engine *dsar.Engine
	dir    *directory
	portal *portal.Portal
	srv    *httptest.Server
}

const (
	alice = privguard.SubjectID("cust-alice")
	bob   = privguard.SubjectID("cust-bob")
)

func newEnv(t testing.TB, change ...func(*portal.Config)) *env {
	t.Helper()
	clock := &consenttest.Clock{}
	dir := t.TempDir()
	l := consenttest.Open(t, dir, consent.Config{Now: clock.Now})
	for _, lang := range []string{"zh-CN", "en"} {
		if _, _, err := l.RegisterNotice(ctx, consenttest.MarketingNotice(1, lang)); err != nil {
			t.Fatal(err)
		}
	}
	db, err := boltstore.Open(filepath.Join(dir, "dsar.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	kekPath := filepath.Join(dir, "kek.json")
	if err := vault.InitLocalKEK(kekPath); err != nil {
		t.Fatal(err)
	}
	kek, err := vault.LoadLocalKEK(kekPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.New(vault.Config{Store: db.Vault(), KEK: kek, TombstoneKey: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	e, err := dsar.New(dsar.Config{Store: db.DSAR(), Now: clock.Now, Sealer: v, DefaultRegime: privguard.RegimePIPL,
		Connectors: []dsar.Connector{crm{}}, Explain: func(context.Context, dsar.Request) (dsar.Explanation, error) {
			return dsar.Explanation{Decisions: []dsar.AutomatedDecision{{Purpose: "essential.pricing", Model: "price-tier v3",
				Features: []privguard.DataCategory{"user.behavior.purchase_history"},
				Logic:    map[string]string{"en": "Tier from the last year's orders", "zh": "按过去一年的订单确定价格档位"}}}}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	d := &directory{sent: map[string]string{}, links: map[string]portal.Link{
		"+8613800138000":    {Subject: alice, Kind: "phone", Hash: "h-alice-phone", Masked: "+86 138****8000", Verified: true},
		"alice@example.com": {Subject: alice, Kind: "email", Hash: "h-alice-email", Masked: "a***@example.com", Verified: true},
		"+8613900139000":    {Subject: bob, Kind: "phone", Hash: "h-bob-phone", Masked: "+86 139****9000", Verified: true},
	}}
	cfg := portal.Config{Ledger: l, Requests: e, Directory: d, Regime: privguard.RegimePIPL,
		Secret: []byte("a portal secret of at least thirty-two bytes"), Now: clock.Now,
		Controller: portal.Controller{Name: "Example Retail Ltd", Contact: "privacy@example.com", DPOName: "Wang Fang", DPOContact: "dpo@example.com"},
		Topics:     []portal.Topic{{Name: "offers", Title: portal.Text{"en": "Offers", "zh": "优惠"}}},
		Choices: []portal.Choice{
			{Purpose: "marketing.communications.sms", Topic: "offers", Channel: "sms", Notice: "marketing"},
			{Purpose: "marketing.communications.email", Topic: "offers", Channel: "email", Notice: "marketing"},
			{Purpose: "marketing.profiling", Notice: "marketing", Prompt: true,
				Title: portal.Text{"en": "Tags from your purchases", "zh": "根据购买记录生成标签"}},
			{Purpose: "cross_border.transfer", Notice: "marketing"},
		},
		Correctable: []portal.Correctable{{Category: "user.contact.email", Label: portal.Text{"en": "Email", "zh": "邮箱"}}},
	}
	for _, c := range change {
		c(&cfg)
	}
	p, err := portal.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return &env{t: t, clock: clock, ledger: l, engine: e, dir: d, portal: p, srv: srv}
}

// browser is a client with its own cookie jar that follows redirects.
type browser struct {
	e    *env
	c    *http.Client
	lang string
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, c: &http.Client{Jar: jar}, lang: "en"}
}

// get loads a page and returns its status and body.
func (b *browser) get(path string) (int, string) {
	b.e.t.Helper()
	req, _ := http.NewRequest("GET", b.e.srv.URL+path, nil)
	req.Header.Set("Accept-Language", b.lang)
	resp, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// post submits a form and returns the status and body of where it lands.
func (b *browser) post(path string, form url.Values, header ...string) (int, string) {
	b.e.t.Helper()
	req, _ := http.NewRequest("POST", b.e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept-Language", b.lang)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrf(t testing.TB, page string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in the page:\n%s", page)
	}
	return m[1]
}

// signIn signs b in with a code sent to identifier (linked to link hash).
func (b *browser) signIn(identifier, hash string) string {
	t := b.e.t
	t.Helper()
	_, page := b.get("/signin")
	status, page := b.post("/signin/code", url.Values{"csrf": {csrf(t, page)}, "identifier": {identifier}})
	if status != http.StatusOK {
		t.Fatalf("send code = %d\n%s", status, page)
	}
	code := b.e.dir.code(t, hash)
	status, page = b.post("/signin/verify", url.Values{"csrf": {csrf(t, page)}, "code": {code}})
	if status != http.StatusOK || !strings.Contains(page, `data-page="choices"`) {
		t.Fatalf("verify = %d, not on My choices:\n%s", status, page)
	}
	return page
}

func TestSignInByCodeThenWithdrawWithReceipt(t *testing.T) {
	e := newEnv(t)
	if _, _, err := e.ledger.Append(ctx, consent.Request{Subject: alice, Purpose: "marketing.communications.sms", Action: consent.ActionGrant,
		LegalBasis: privguard.BasisConsent, Regime: privguard.RegimePIPL, Notice: &consent.NoticeRef{ID: "marketing", Version: 1, Language: "zh-CN"}, Channel: consent.ChannelApp, Method: consent.MethodExplicit}); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	page := b.signIn("+86 138-0013-8000", "h-alice-phone")
	if !strings.Contains(page, `id="choice-marketing.communications.sms" data-state="on"`) {
		t.Fatalf("SMS consent not shown as on:\n%s", page)
	}
	if !strings.Contains(page, "我们将使用您的手机号码") {
		t.Error("the notice text the subject agreed to is not shown")
	}
	status, page := b.post("/choices", url.Values{"csrf": {csrf(t, page)}, "purpose": {"marketing.communications.sms"}, "to": {"off"}})
	if status != http.StatusOK || !strings.Contains(page, `id="choice-marketing.communications.sms" data-state="off"`) {
		t.Fatalf("after withdrawing: %d\n%s", status, page)
	}
	st, _ := e.ledger.Check(ctx, alice, "marketing.communications.sms")
	if st.State != consent.StateWithdrawn || st.Allowed {
		t.Fatalf("ledger after the portal's withdrawal: %s allowed=%v", st.State, st.Allowed)
	}
	// The change is the subject's, through the portal, with the verified identifier.
	m := regexp.MustCompile(`href="/receipts/([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no receipt link:\n%s", page)
	}
	rec, err := e.ledger.Record(ctx, m[1])
	if err != nil || rec.Channel != consent.ChannelPortal || rec.ActorType != consent.ActorSubject || rec.Evidence.Identifier != "phone:h-alice-phone" || rec.Action != consent.ActionWithdraw {
		t.Fatalf("record %+v, %v", rec, err)
	}
	status, body := b.get("/receipts/" + rec.ID)
	var signed consent.SignedReceipt
	if status != http.StatusOK || json.Unmarshal([]byte(body), &signed) != nil {
		t.Fatalf("receipt = %d %s", status, body)
	}
	jws, err := jose.ParseSigned(signed.JWS, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jws.Verify(e.ledger.ReceiptPublicKey()); err != nil {
		t.Fatalf("the receipt downloaded from the portal does not verify: %v", err)
	}
}

func TestSignInSameAnswerForUnknownIdentifiers(t *testing.T) {
	e := newEnv(t)
	answer := func(identifier string) (int, string, []string) {
		b := e.browser()
		_, page := b.get("/signin")
		status, page := b.post("/signin/code", url.Values{"csrf": {csrf(t, page)}, "identifier": {identifier}})
		u, _ := url.Parse(e.srv.URL)
		var names []string
		for _, c := range b.c.Jar.Cookies(u) {
			// The length of a sealed cookie tells what it holds: the challenge of a linked
			// identifier (subject, hash, code) must not be longer than an unknown one's.
			names = append(names, fmt.Sprintf("%s(%d bytes)", c.Name, len(c.Value)))
		}
		page = csrfRE.ReplaceAllString(page, "")
		page = regexp.MustCompile(`\([^)]*\*[^)]*\)`).ReplaceAllString(page, "(masked)")
		return status, page, names
	}
	s1, p1, c1 := answer("+86 138 0013 8000")
	s2, p2, c2 := answer("+86 137 0000 0000")
	if s1 != s2 || p1 != p2 || strings.Join(c1, ",") != strings.Join(c2, ",") {
		t.Fatalf("known and unknown identifiers answered differently: %d vs %d, cookies %v vs %v\n%s\n---\n%s", s1, s2, c1, c2, p1, p2)
	}
	s1, p1, c1 = answer("alice@example.com")
	s2, p2, c2 = answer("nobody@example.com")
	if s1 != s2 || p1 != p2 || strings.Join(c1, ",") != strings.Join(c2, ",") {
		t.Fatalf("known and unknown identifiers answered differently: %d vs %d, cookies %v vs %v\n%s\n---\n%s", s1, s2, c1, c2, p1, p2)
	}
	// The unknown one cannot sign in with any code.
	b := e.browser()
	_, page := b.get("/signin")
	_, page = b.post("/signin/code", url.Values{"csrf": {csrf(t, page)}, "identifier": {"nobody@example.com"}})
	if status, _ := b.post("/signin/verify", url.Values{"csrf": {csrf(t, page)}, "code": {"000000"}}); status != http.StatusUnprocessableEntity {
		t.Fatalf("a code for an unknown identifier = %d", status)
	}
	if status, _ := b.get("/choices"); status != http.StatusOK {
		t.Fatal(status)
	}
	if _, page := b.get("/choices"); strings.Contains(page, `data-page="choices"`) {
		t.Fatal("an unknown identifier signed in")
	}
}

func TestSignInRateLimits(t *testing.T) {
	e := newEnv(t, func(c *portal.Config) { c.CodesPerIdentifier, c.CodesPerClient = 3, 5 })
	send := func(identifier string) int {
		b := e.browser()
		_, page := b.get("/signin")
		status, _ := b.post("/signin/code", url.Values{"csrf": {csrf(t, page)}, "identifier": {identifier}})
		return status
	}
	for i := range 3 {
		if s := send("alice@example.com"); s != http.StatusOK {
			t.Fatalf("code %d = %d", i+1, s)
		}
	}
	// The same limit for a known and an unknown identifier, spelled differently too.
	if s := send("ALICE@example.com"); s != http.StatusTooManyRequests {
		t.Fatalf("4th code to one identifier = %d, want 429", s)
	}
	if s := send("nobody@example.com"); s != http.StatusOK {
		t.Fatalf("another identifier = %d", s)
	}
	// Five codes from this client in the hour: the sixth is refused whatever the identifier.
	if s := send("other@example.com"); s != http.StatusTooManyRequests {
		t.Fatalf("6th code from one client = %d, want 429", s)
	}
	// Wrong codes: CodeAttempts tries, then even the right one is refused.
	e2 := newEnv(t)
	b := e2.browser()
	_, page := b.get("/signin")
	_, page = b.post("/signin/code", url.Values{"csrf": {csrf(t, page)}, "identifier": {"+8613800138000"}})
	code := e2.dir.code(t, "h-alice-phone")
	wrong := fmt.Sprintf("%06d", (atoi(code)+1)%1000000)
	for range portal.CodeAttempts {
		if s, _ := b.post("/signin/verify", url.Values{"csrf": {csrf(t, page)}, "code": {wrong}}); s != http.StatusUnprocessableEntity {
			t.Fatalf("wrong code = %d", s)
		}
	}
	if s, _ := b.post("/signin/verify", url.Values{"csrf": {csrf(t, page)}, "code": {code}}); s != http.StatusTooManyRequests {
		t.Fatalf("the right code after %d wrong ones = %d, want 429", portal.CodeAttempts, s)
	}
}

func atoi(s string) int {
	n := 0
	for _, r := range s {
		n = n*10 + int(r-'0')
	}
	return n
}

func TestChangesNeedTheSessionsCSRFToken(t *testing.T) {
	e := newEnv(t)
	a := e.browser()
	pageA := a.signIn("+8613800138000", "h-alice-phone")
	c := e.browser()
	pageC := c.signIn("+8613900139000", "h-bob-phone")
	change := url.Values{"purpose": {"marketing.communications.email"}, "to": {"on"}}
	for name, tc := range map[string]struct {
		token  string
		header []string
	}{
		"no token":                {"", nil},
		"another session's token": {csrf(t, pageC), nil},
		"a cross-site origin":     {csrf(t, pageA), []string{"Origin", "https://evil.example"}},
		"a cross-site fetch":      {csrf(t, pageA), []string{"Sec-Fetch-Site", "cross-site"}},
	} {
		form := url.Values{"csrf": {tc.token}}
		for k, v := range change {
			form[k] = v
		}
		if status, _ := a.post("/choices", form, tc.header...); status != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, status)
		}
	}
	if st, _ := e.ledger.Check(ctx, alice, "marketing.communications.email"); st.State != consent.StateUnknown {
		t.Fatalf("a forged change reached the ledger: %s", st.State)
	}
	form := url.Values{"csrf": {csrf(t, pageA)}}
	for k, v := range change {
		form[k] = v
	}
	if status, _ := a.post("/choices", form); status != http.StatusOK {
		t.Fatalf("the session's own token: %d", status)
	}
	if st, _ := e.ledger.Check(ctx, alice, "marketing.communications.email"); !st.Allowed {
		t.Fatalf("grant not recorded: %s", st.State)
	}
}

func TestSessionFixationAndSignOut(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	u, _ := url.Parse(e.srv.URL)
	// A cookie planted before sign-in is not a session and is replaced at sign-in.
	planted := &http.Cookie{Name: "pgs", Value: "attacker-chosen-session", Path: "/"}
	b.c.Jar.SetCookies(u, []*http.Cookie{planted})
	if _, page := b.get("/choices"); strings.Contains(page, `data-page="choices"`) {
		t.Fatal("a planted cookie was taken as a session")
	}
	page := b.signIn("+8613800138000", "h-alice-phone")
	var session string
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "pgs" {
			session = c.Value
		}
	}
	if session == "" || session == planted.Value {
		t.Fatalf("session cookie after sign-in: %q", session)
	}
	// A second sign-in gets a new session, not the first one again.
	b2 := e.browser()
	b2.signIn("+8613800138000", "h-alice-phone")
	for _, c := range b2.c.Jar.Cookies(u) {
		if c.Name == "pgs" && c.Value == session {
			t.Fatal("two sign-ins share a session")
		}
	}
	// Signed out, the old cookie no longer works, even replayed.
	if status, _ := b.post("/signout", url.Values{"csrf": {csrf(t, page)}}); status != http.StatusOK {
		t.Fatal(status)
	}
	replay := e.browser()
	replay.c.Jar.SetCookies(u, []*http.Cookie{{Name: "pgs", Value: session, Path: "/"}})
	if _, page := replay.get("/choices"); strings.Contains(page, `data-page="choices"`) {
		t.Fatal("a signed-out session still works")
	}
	// And a session expires when idle.
	b3 := e.browser()
	b3.signIn("+8613800138000", "h-alice-phone")
	e.clock.Advance(portal.DefaultSessionTTL + time.Second)
	if _, page := b3.get("/choices"); strings.Contains(page, `data-page="choices"`) {
		t.Fatal("an idle session outlived its lifetime")
	}
}

func TestSubjectSeesOnlyItsOwnData(t *testing.T) {
	e := newEnv(t)
	rec, _, err := e.ledger.Append(ctx, consent.Request{Subject: bob, Purpose: "marketing.communications.sms", Action: consent.ActionGrant,
		LegalBasis: privguard.BasisConsent, Regime: privguard.RegimePIPL, Notice: &consent.NoticeRef{ID: "marketing", Version: 1, Language: "zh-CN"}, Channel: consent.ChannelApp, Method: consent.MethodExplicit})
	if err != nil {
		t.Fatal(err)
	}
	bobs, err := e.engine.Submit(ctx, dsar.Request{Type: dsar.TypeAccess, Subject: bob, Identity: &dsar.Identity{Method: "operator", Operator: "dpo"}})
	if err != nil {
		t.Fatal(err)
	}
	a := e.browser()
	page := a.signIn("alice@example.com", "h-alice-email")
	if status, _ := a.get("/receipts/" + rec.ID); status != http.StatusNotFound {
		t.Errorf("another subject's receipt = %d, want 404", status)
	}
	if status, _ := a.post("/requests/"+bobs.ID+"/download", url.Values{"csrf": {csrf(t, page)}}); status != http.StatusNotFound {
		t.Errorf("another subject's package = %d, want 404", status)
	}
	if _, page := a.get("/requests"); strings.Contains(page, bobs.ID) {
		t.Error("another subject's request is listed")
	}
	// The form's subject is never taken from the browser: a subject field is ignored.
	a.post("/choices", url.Values{"csrf": {csrf(t, page)}, "purpose": {"marketing.communications.sms"}, "to": {"off"}, "subject": {string(bob)}})
	if st, _ := e.ledger.Check(ctx, bob, "marketing.communications.sms"); !st.Allowed {
		t.Fatal("alice's form changed bob's consent")
	}
}

func TestNoRePromptAfterRefusalWithinTheWindow(t *testing.T) {
	// proves CON-10: after an explicit refusal, page loads inside the window show no prompt
	// for the purpose (the counter stays), and the refusal is recorded.
	e := newEnv(t, func(c *portal.Config) { c.RefusalWindow = 30 * 24 * time.Hour })
	b := e.browser()
	page := b.signIn("+8613800138000", "h-alice-phone")
	if !strings.Contains(page, `data-prompt="marketing.profiling"`) || e.portal.PromptsShown(alice) != 1 {
		t.Fatalf("undecided purpose not prompted (shown %d)", e.portal.PromptsShown(alice))
	}
	if status, _ := b.post("/choices", url.Values{"csrf": {csrf(t, page)}, "purpose": {"marketing.profiling"}, "to": {"no"}}); status != http.StatusOK {
		t.Fatal(status)
	}
	if st, _ := e.ledger.Check(ctx, alice, "marketing.profiling"); st.State != consent.StateRefused {
		t.Fatalf("refusal recorded as %s", st.State)
	}
	shown := e.portal.PromptsShown(alice)
	for i := range 20 {
		e.clock.Advance(36 * time.Hour)
		b.signIn("+8613800138000", "h-alice-phone") // sessions are short; the subject comes back
		if _, page := b.get("/choices"); strings.Contains(page, `data-prompt=`) {
			t.Fatalf("load %d, %s after the refusal: prompted again", i+1, 36*time.Hour*time.Duration(i+1))
		}
	}
	if got := e.portal.PromptsShown(alice); got != shown {
		t.Fatalf("prompts shown inside the window: %d", got-shown)
	}
	e.clock.Advance(24 * time.Hour) // 31 days after the refusal
	b.signIn("+8613800138000", "h-alice-phone")
	if _, page := b.get("/choices"); !strings.Contains(page, `data-prompt="marketing.profiling"`) {
		t.Fatal("not asked again after the window")
	}
}

func TestPublishesTheDPOContact(t *testing.T) {
	// proves AUD-05 (contact): the privacy centre will not run without the DPO's contact,
	// and every page publishes it.
	e := newEnv(t)
	_, page := e.browser().get("/signin")
	if !strings.Contains(page, `<dd id="dpo">Wang Fang · dpo@example.com</dd>`) {
		t.Fatalf("the sign-in page does not publish the DPO's contact:\n%s", page)
	}
	cfg := portal.Config{Ledger: e.ledger, Directory: e.dir, Secret: []byte("a portal secret of at least thirty-two bytes"),
		Controller: portal.Controller{Name: "Example Retail Ltd", DPOName: "Wang Fang"}}
	if _, err := portal.New(cfg); err == nil {
		t.Fatal("a privacy centre without the DPO's contact was built")
	}
}

func TestEveryRightWithNothingButTheRight(t *testing.T) {
	// proves DSR-01: the privacy centre takes every right with no field beyond the right
	// itself (the subject is signed in: no identifier, no reason, no payment), and each
	// request is verified at once.
	e := newEnv(t)
	b := e.browser()
	b.signIn("alice@example.com", "h-alice-email")
	_, page := b.get("/requests")
	forms := regexp.MustCompile(`class="card new-request" id="new-([a-z_]+)"`).FindAllStringSubmatch(page, -1)
	var types []string
	for _, f := range forms {
		types = append(types, f[1])
	}
	for _, want := range []string{"access", "portability", "correction", "deletion", "cancellation", "restriction", "objection"} {
		if !strings.Contains(strings.Join(types, ","), want) {
			t.Errorf("no form for %s (forms: %v)", want, types)
		}
	}
	for _, typ := range types {
		form := url.Values{"csrf": {csrf(t, page)}, "type": {typ}}
		if typ == "correction" {
			form.Set("category", "user.contact.email")
			form.Set("value", "alice.new@example.com")
		}
		status, after := b.post("/requests", form)
		if status != http.StatusOK || !strings.Contains(after, `data-page="requests"`) {
			t.Errorf("%s: %d\n%s", typ, status, after)
		}
	}
	rs, err := e.engine.OfSubject(ctx, alice)
	if err != nil || len(rs) < len(types)-1 { // an objection and a restriction may answer an open duplicate
		t.Fatalf("%d requests recorded for %d forms, %v", len(rs), len(types), err)
	}
	for _, r := range rs {
		if r.State == dsar.StateAwaitingVerify {
			t.Errorf("%s request %s waits for verification: a signed-in subject is verified", r.Type, r.ID)
		}
		if r.Identity == nil || r.Identity.Method != "portal" {
			t.Errorf("%s request identity %+v", r.Type, r.Identity)
		}
	}
	// Account cancellation closed the account in the ledger.
	if sv, _ := e.ledger.Subject(ctx, alice); sv.ClosedAt.IsZero() {
		t.Error("account cancellation did not close the account")
	}
}

func TestLanguageAndBeijingTime(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.lang = "zh-CN,zh;q=0.9,en;q=0.8"
	b.signIn("+8613800138000", "h-alice-phone")
	_, page := b.get("/requests")
	if !strings.Contains(page, `<html lang="zh-CN">`) || !strings.Contains(page, "我的请求") || !strings.Contains(page, "北京时间") {
		t.Fatalf("a Chinese reader gets:\n%s", page)
	}
	status, page := b.get("/lang?to=en&back=/requests")
	if status != http.StatusOK || !strings.Contains(page, `<html lang="en">`) || !strings.Contains(page, "My requests") {
		t.Fatalf("after the switch: %d\n%s", status, page)
	}
	// The switch sends back only to the portal's own pages.
	noFollow := &http.Client{Jar: b.c.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(e.srv.URL + "/lang?to=en&back=//evil.example/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); loc != "/" {
		t.Fatalf("open redirect to %q", loc)
	}
	// A request received at 09:00 UTC is shown at 17:00 Beijing time.
	form := url.Values{"csrf": {csrf(t, page)}, "type": {"access"}}
	_, page = b.post("/requests", form)
	if !strings.Contains(page, "2026-01-05 17:00") {
		t.Fatalf("received time not in Beijing time:\n%s", page)
	}
	// The package will speak the page's language, in the page's zone.
	if rs, _ := e.engine.OfSubject(ctx, alice); len(rs) != 1 || rs[0].Lang != "en" || rs[0].Zone != "Asia/Shanghai" {
		t.Fatalf("request language and zone: %+v", rs)
	}
}

func TestPagesHaveNoInlineScriptAndAStrictPolicy(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn("+8613800138000", "h-alice-phone")
	inline := regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>\s*[^<\s]|\son[a-z]+\s*=|javascript:|<style|style=`)
	external := regexp.MustCompile(`(?i)(?:src|href)="(?:https?:)?//`)
	for _, path := range []string{"/choices", "/requests", "/signin"} {
		resp, err := b.c.Get(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if m := inline.Find(body); m != nil {
			t.Errorf("%s: inline script or style %q", path, m)
		}
		if m := external.Find(body); m != nil {
			t.Errorf("%s: a third-party resource %q", path, m)
		}
		if len(body) > 60<<10 {
			t.Errorf("%s weighs %d bytes", path, len(body))
		}
	}
}

func TestExplanationWithAPersonsReview(t *testing.T) {
	// proves DSR-14 (from the page): the subject asks for the explanation of an automated
	// decision and a person's review; the page shows the logic, the model and the review.
	e := newEnv(t)
	b := e.browser()
	b.signIn("+8613800138000", "h-alice-phone")
	_, page := b.get("/requests")
	if !strings.Contains(page, `id="new-explanation"`) {
		t.Fatalf("no explanation form:\n%s", page)
	}
	status, page := b.post("/requests", url.Values{"csrf": {csrf(t, page)}, "type": {"explanation"}, "human_review": {"1"},
		"statement": {"I was offered a worse price than my friend"}})
	if status != http.StatusOK {
		t.Fatal(status)
	}
	if _, err := e.engine.Step(ctx); err != nil {
		t.Fatal(err)
	}
	rs, _ := e.engine.OfSubject(ctx, alice)
	if len(rs) != 1 || rs[0].HumanReview == nil || rs[0].HumanReview.Statement == "" || rs[0].State != dsar.StateAwaitingReview {
		t.Fatalf("explanation request: %+v", rs)
	}
	b.lang = "zh-CN"
	_, page = b.get("/requests")
	for _, want := range []string{"按过去一年的订单确定价格档位", "price-tier v3", `data-review="requested"`, "人工复核中"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page does not show %q", want)
		}
	}
}

// The codes per client count an IPv6 client by its /64 (one host has a whole /64 to pick
// addresses from); IPv4 clients by their address.
func TestSignInClientLimitByIPv6Prefix(t *testing.T) {
	e := newEnv(t, func(c *portal.Config) { c.CodesPerClient = 2 })
	send := func(remote, identifier string) int {
		get := httptest.NewRequest("GET", "/signin", nil)
		get.RemoteAddr = remote
		w := httptest.NewRecorder()
		e.portal.ServeHTTP(w, get)
		post := httptest.NewRequest("POST", "/signin/code", strings.NewReader(url.Values{"csrf": {csrf(t, w.Body.String())}, "identifier": {identifier}}.Encode()))
		post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		post.RemoteAddr = remote
		for _, c := range w.Result().Cookies() {
			post.AddCookie(c)
		}
		w = httptest.NewRecorder()
		e.portal.ServeHTTP(w, post)
		return w.Code
	}
	for i, remote := range []string{"[2001:db8:1:2::1]:4000", "[2001:db8:1:2::2]:4000", "[2001:db8:1:2:aaaa::3]:4000"} {
		want := http.StatusOK
		if i == 2 {
			want = http.StatusTooManyRequests
		}
		if got := send(remote, fmt.Sprintf("user%d@example.com", i)); got != want {
			t.Errorf("code %d from %s = %d, want %d", i+1, remote, got, want)
		}
	}
	if got := send("[2001:db8:1:3::1]:4000", "user9@example.com"); got != http.StatusOK {
		t.Errorf("another /64 = %d, want 200", got)
	}
	for i, remote := range []string{"192.0.2.1:4000", "192.0.2.2:4000"} {
		if got := send(remote, fmt.Sprintf("v4-%d@example.com", i)); got != http.StatusOK {
			t.Errorf("IPv4 %s = %d, want 200", remote, got)
		}
	}
}

func TestChoiceWithoutAPublishedNotice(t *testing.T) {
	e := newEnv(t, func(c *portal.Config) {
		c.Choices = append(c.Choices, portal.Choice{Purpose: "marketing.communications.push", Topic: "offers", Channel: "push", Notice: "not-registered"})
	})
	b := e.browser()
	page := b.signIn("+8613800138000", "h-alice-phone")
	if strings.Contains(page, `data-purpose="marketing.communications.push" data-to="on"`) {
		t.Error("a choice whose notice is not registered offers to turn it on")
	}
	if status, _ := b.post("/choices", url.Values{"csrf": {csrf(t, page)}, "purpose": {"marketing.communications.push"}, "to": {"on"}}); status != http.StatusConflict {
		t.Errorf("turning it on anyway = %d, want 409", status)
	}
	if st, _ := e.ledger.Check(ctx, alice, "marketing.communications.push"); st.State != consent.StateUnknown {
		t.Fatalf("recorded %s", st.State)
	}
}

// A copy of a session cookie refreshed later than the one signed out with (another tab, or
// a thief's copy) stays signed out after the signed-out cookie would have expired: it is
// revoked for as long as any copy can live.
func TestSignedOutSessionStaysOutForEveryCopy(t *testing.T) {
	e := newEnv(t)
	u, _ := url.Parse(e.srv.URL)
	b := e.browser()
	page := b.signIn("+8613800138000", "h-alice-phone")
	var original string
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "pgs" {
			original = c.Value
		}
	}
	thief := e.browser()
	thief.c.Jar.SetCookies(u, []*http.Cookie{{Name: "pgs", Value: original, Path: "/"}})
	e.clock.Advance(6 * time.Minute)
	if _, p := thief.get("/choices"); !strings.Contains(p, `data-page="choices"`) {
		t.Fatal("the copy does not work before the sign-out")
	}
	// The owner signs out with the cookie it has (not refreshed since sign-in).
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "pgs", Value: original, Path: "/"}})
	if status, _ := b.post("/signout", url.Values{"csrf": {csrf(t, page)}}); status != http.StatusOK {
		t.Fatal(status)
	}
	if _, p := thief.get("/choices"); strings.Contains(p, `data-page="choices"`) {
		t.Fatal("a signed-out session still works")
	}
	// Past the signed-out cookie's own expiry; another sign-out sweeps the expired entries.
	e.clock.Advance(portal.DefaultSessionTTL - 5*time.Minute)
	other := e.browser()
	op := other.signIn("+8613900139000", "h-bob-phone")
	other.post("/signout", url.Values{"csrf": {csrf(t, op)}})
	if _, p := thief.get("/choices"); strings.Contains(p, `data-page="choices"`) {
		t.Fatal("the refreshed copy of a signed-out session works again once the sign-out was forgotten")
	}
}

// Behind a reverse proxy on the same machine (the connection is to loopback, the browser is
// not), the cookies are Secure and __Host- prefixed all the same.
func TestCookiesSecureBehindALoopbackProxy(t *testing.T) {
	e := newEnv(t)
	for name, set := range map[string]func(*http.Request){
		"a public host name":  func(r *http.Request) { r.Host = "privacy.example.com" },
		"X-Forwarded-Proto":   func(r *http.Request) { r.Header.Set("X-Forwarded-Proto", "https") },
		"X-Forwarded-For":     func(r *http.Request) { r.Header.Set("X-Forwarded-For", "203.0.113.9") },
		"Forwarded":           func(r *http.Request) { r.Header.Set("Forwarded", "for=203.0.113.9;proto=https") },
		"direct, on loopback": nil,
	} {
		req, _ := http.NewRequest("GET", e.srv.URL+"/signin", nil)
		if set != nil {
			set(req)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		cookies := resp.Cookies()
		if len(cookies) == 0 {
			t.Fatalf("%s: no cookie set", name)
		}
		c := cookies[0]
		if secure := c.Secure && strings.HasPrefix(c.Name, "__Host-"); secure != (set != nil) {
			t.Errorf("%s: cookie %s Secure=%v; want Secure and __Host- %v", name, c.Name, c.Secure, set != nil)
		}
	}
}

// Behind a trusted reverse proxy the client is the address the proxy saw (the last one of
// X-Forwarded-For not a trusted proxy's): otherwise every subject shares the proxy's
// limit, and 30 requests an hour shut everyone out. From anyone else the header is ignored.
func TestSignInClientLimitBehindATrustedProxy(t *testing.T) {
	send := func(e *env, remote, xff, identifier string) int {
		get := httptest.NewRequest("GET", "/signin", nil)
		get.RemoteAddr = remote
		w := httptest.NewRecorder()
		e.portal.ServeHTTP(w, get)
		post := httptest.NewRequest("POST", "/signin/code", strings.NewReader(url.Values{"csrf": {csrf(t, w.Body.String())}, "identifier": {identifier}}.Encode()))
		post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		post.Header.Set("X-Forwarded-For", xff)
		post.RemoteAddr = remote
		for _, c := range w.Result().Cookies() {
			post.AddCookie(c)
		}
		w = httptest.NewRecorder()
		e.portal.ServeHTTP(w, post)
		return w.Code
	}
	e := newEnv(t, func(c *portal.Config) {
		c.CodesPerClient = 2
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	})
	// Many clients through the proxy: each has its own limit.
	for i := range 5 {
		if got := send(e, "10.0.0.5:4000", fmt.Sprintf("203.0.113.%d", i+1), fmt.Sprintf("u%d@example.com", i)); got != http.StatusOK {
			t.Errorf("client %d through the proxy = %d, want 200", i+1, got)
		}
	}
	// One client spoofing X-Forwarded-For: the proxy appends the address it saw, which counts.
	for i, want := range []int{http.StatusOK, http.StatusOK, http.StatusTooManyRequests} {
		xff := fmt.Sprintf("198.51.100.%d, 10.1.1.1, 192.0.2.77", i+1)
		if got := send(e, "10.0.0.5:4000", xff, fmt.Sprintf("s%d@example.com", i)); got != want {
			t.Errorf("spoofing client, code %d = %d, want %d", i+1, got, want)
		}
	}
	// Not from a trusted proxy: X-Forwarded-For is ignored.
	for i, want := range []int{http.StatusOK, http.StatusOK, http.StatusTooManyRequests} {
		if got := send(e, "192.0.2.8:4000", fmt.Sprintf("203.0.113.%d", 100+i), fmt.Sprintf("d%d@example.com", i)); got != want {
			t.Errorf("direct client, code %d = %d, want %d", i+1, got, want)
		}
	}
}

// Codes tried in parallel on one challenge are counted before they are compared: no more
// than CodeAttempts of them are checked (a count taken first let every request in flight
// through).
func TestCodesTriedInParallelAreCounted(t *testing.T) {
	e := newEnv(t)
	get := httptest.NewRequest("GET", "/signin", nil)
	w := httptest.NewRecorder()
	e.portal.ServeHTTP(w, get)
	cookies := w.Result().Cookies()
	post := httptest.NewRequest("POST", "/signin/code", strings.NewReader(url.Values{"csrf": {csrf(t, w.Body.String())}, "identifier": {"+8613800138000"}}.Encode()))
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range cookies {
		post.AddCookie(c)
	}
	w = httptest.NewRecorder()
	e.portal.ServeHTTP(w, post)
	token := csrf(t, w.Body.String())
	all := append(cookies, w.Result().Cookies()...)
	code := e.dir.code(t, "h-alice-phone")
	var checked atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 400 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			guess := fmt.Sprintf("%06d", (atoi(code)+1+i)%1000000)
			r := httptest.NewRequest("POST", "/signin/verify", strings.NewReader(url.Values{"csrf": {token}, "code": {guess}}.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for _, c := range all {
				if c.Value != "" {
					r.AddCookie(c)
				}
			}
			<-start
			w := httptest.NewRecorder()
			e.portal.ServeHTTP(w, r)
			if w.Code == http.StatusUnprocessableEntity {
				checked.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if n := checked.Load(); n > portal.CodeAttempts {
		t.Fatalf("%d wrong codes checked in parallel; want at most %d", n, portal.CodeAttempts)
	}
}

func TestAppTokenSignsInOnce(t *testing.T) {
	secret := []byte("the app's identity token secret, 32+ bytes")
	var env *env
	env = newEnv(t, func(c *portal.Config) {
		v, err := dsar.NewTokenVerifier(c.Now, secret)
		if err != nil {
			t.Fatal(err)
		}
		c.Tokens = v
	})
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: secret}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := env.clock.Now().Unix()
	claims, _ := json.Marshal(map[string]any{"sub": string(alice), "iat": now, "exp": now + 600})
	jws, _ := signer.Sign(claims)
	token, _ := jws.CompactSerialize()
	b := env.browser()
	if _, page := b.get("/signin/token?token=" + url.QueryEscape(token)); !strings.Contains(page, `data-page="choices"`) {
		t.Fatalf("the app's token did not sign in:\n%s", page)
	}
	// The same token again (a shared link, the browser history) opens no second session.
	if status, page := env.browser().get("/signin/token?token=" + url.QueryEscape(token)); status != http.StatusUnauthorized || strings.Contains(page, `data-page="choices"`) {
		t.Fatalf("a spent token = %d", status)
	}
	// A forged one neither.
	if status, _ := env.browser().get("/signin/token?token=" + url.QueryEscape(token[:len(token)-4]+"AAAA")); status != http.StatusUnauthorized {
		t.Fatalf("a forged token = %d", status)
	}
}

func TestMountedUnderAPrefix(t *testing.T) {
	e := newEnv(t, func(c *portal.Config) { c.Prefix = "/privacy" })
	mux := http.NewServeMux()
	mux.Handle("/privacy/", http.StripPrefix("/privacy", e.portal))
	e.srv.Config.Handler = mux
	b := e.browser()
	_, page := b.get("/privacy/")
	if !strings.Contains(page, `action="/privacy/signin/code"`) || !strings.Contains(page, `href="/privacy/static/portal.css"`) {
		t.Fatalf("the sign-in page does not link under the prefix:\n%s", page)
	}
	status, page := b.post("/privacy/signin/code", url.Values{"csrf": {csrf(t, page)}, "identifier": {"+8613800138000"}})
	if status != http.StatusOK {
		t.Fatal(status)
	}
	status, page = b.post("/privacy/signin/verify", url.Values{"csrf": {csrf(t, page)}, "code": {e.dir.code(t, "h-alice-phone")}})
	if status != http.StatusOK || !strings.Contains(page, `data-page="choices"`) || !strings.Contains(page, `href="/privacy/requests"`) {
		t.Fatalf("signed in under the prefix: %d\n%s", status, page)
	}
	if status, _ := b.get("/privacy/static/portal.js"); status != http.StatusOK {
		t.Fatalf("the script under the prefix = %d", status)
	}
}
