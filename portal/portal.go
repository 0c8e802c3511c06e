// Package portal is the privacy centre: the data subject's own pages, in Chinese and
// English, to sign in with a phone number, an email address or the company's app, see and
// change every consent privguard enforces (each change a signed receipt), see and delete
// the tags held on them, and make and follow their requests (access, correction,
// deletion, account cancellation, explanation, restriction, objection).
//
// A Portal is an http.Handler: privguard serve runs it on its own listener (portal.listen)
// and a Go service can mount it (with http.StripPrefix and Config.Prefix). Pages are
// rendered on the server with html/template, with one small script and one style sheet of
// its own: no third-party resource, a Content-Security-Policy without inline script, a
// session cookie that is sealed, HttpOnly, SameSite=Strict and short-lived, and a CSRF
// token on every form.
package portal

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/dsar"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Link is an identifier linked to a subject (a phone number or an email address), as the
// Directory knows it: never its value, only its keyed hash and a masked form.
type Link struct {
	Subject privguard.SubjectID
	// Kind is "phone" or "email".
	Kind string
	// Hash is the keyed hash of the normalised value.
	Hash string
	// Masked shows the identifier with most of it hidden ("+86 138****8000").
	Masked   string
	Verified bool
}

// Directory finds subjects by the identifiers they know themselves by and sends them
// codes (privguard serve adapts the identity registry to it).
type Directory interface {
	// Find returns the link of an identifier as the subject typed it ("+86 138 0013 8000",
	// "Li@Example.com"); ok is false when it is linked to nobody. One that is not a phone
	// number or email address is an error wrapping privguard.ErrInvalid.
	Find(ctx context.Context, value string) (l Link, ok bool, err error)
	// SendCode sends a sign-in code to the link's address, in lang.
	SendCode(ctx context.Context, l Link, code, lang string) error
	// Confirm records that the subject proved control of the link's address (it entered
	// the code sent there): the link is verified.
	Confirm(ctx context.Context, l Link) error
}

// Canonicaliser is the optional capability of a Directory to name the identifier a typed
// value stands for, linked or not ("+86 138 0013 8000 ext. 1", "１３８００１３８０００" and
// "+8613800138000" are one phone number). The codes per identifier are counted by it, so
// that spellings of one number do not multiply the codes sent to it; without it, by the
// value lower-cased without spaces, dashes and brackets.
type Canonicaliser interface {
	// Canonical returns the identifier's canonical form; a value that is not a phone number
	// or email address is an error.
	Canonical(value string) (string, error)
}

// Item is one tag, segment or score held on the subject in one store (derived data).
type Item struct {
	ID       string
	Store    string
	Where    string
	Category privguard.DataCategory
	Value    string
}

// Profiles reads and deletes the derived data held on subjects, through the stores'
// connectors (privguard serve adapts the request engine to it).
type Profiles interface {
	Derived(ctx context.Context, subject privguard.SubjectID) ([]Item, error)
	// Delete asks for the items' deletion (a narrow erasure request) and returns its id.
	Delete(ctx context.Context, subject privguard.SubjectID, ids []string, evidence string) (string, error)
}

// Controller names the personal information handler and its DPO (AUD-05: the DPO's
// contact is published).
type Controller struct {
	Name, Contact       string
	DPOName, DPOContact string
}

// Choice is one purpose shown on My choices.
type Choice struct {
	Purpose privguard.Purpose
	// Topic and Channel place the purpose in the grid of topics × channels (Channel sms,
	// email, push or wechat); without a channel it is listed on its own.
	Topic   string
	Channel string
	// Title and Text say what the purpose is, in plain words; default: the taxonomy's
	// description.
	Title, Text Text
	// Notice is the notice a grant made here cites (its latest version).
	Notice string
	// Prompt asks for the purpose on the page while the subject has not decided (and not
	// again within the refusal window after a refusal: CON-10).
	Prompt bool
}

// Topic titles a row of the channel grid.
type Topic struct {
	Name  string
	Title Text
}

// Correctable is a data category the subject may ask to correct, with its label.
type Correctable struct {
	Category privguard.DataCategory
	Label    Text
}

// Config configures [New].
type Config struct {
	// Ledger is the consent ledger. Required.
	Ledger *consent.Ledger
	// Requests takes and reports the subject's requests; nil leaves My requests out.
	Requests *dsar.Engine
	// Directory signs subjects in by a code sent to their phone or email; nil allows only
	// the app's token.
	Directory Directory
	// Tokens verifies the identity tokens the company's app hands over for its logged-in
	// user (GET or POST /signin/token); nil disables that sign-in.
	Tokens *dsar.TokenVerifier
	// Profiles serves My profile; nil leaves it out.
	Profiles Profiles
	// Choices are the purposes shown; Topics title the grid's rows.
	Choices []Choice
	Topics  []Topic
	// Correctable are the categories offered in a correction request.
	Correctable []Correctable
	// Controller must name the DPO's contact (AUD-05).
	Controller Controller
	// Regime is the subjects' regime (deadlines, Beijing time for PIPL).
	Regime privguard.Regime
	// Zone, if set, is the zone every time is shown in; nil: Beijing time under PIPL, the
	// browser's zone under GDPR.
	Zone *time.Location
	// Secret seals the cookies (at least 32 bytes); every replica must share it.
	Secret []byte
	// SessionTTL is how long a session lasts idle (default DefaultSessionTTL).
	SessionTTL time.Duration
	// RefusalWindow is how long a refused purpose is not asked for again (default 180
	// days).
	RefusalWindow time.Duration
	// CodesPerIdentifier and CodesPerClient bound the sign-in codes sent per hour to one
	// identifier and asked for by one client address (defaults 5 and 30).
	CodesPerIdentifier, CodesPerClient int
	// TrustedProxies are the reverse proxies in front of the portal: from one of them, the
	// client (whose codes CodesPerClient bounds) is the last address of X-Forwarded-For that
	// is not a trusted proxy's. From anyone else the header is ignored. Empty: the
	// connection's address is the client's.
	TrustedProxies []netip.Prefix
	// Prefix is where the portal is mounted ("" at the root, "/privacy").
	Prefix string
	// KeysURL is where the receipt-signing key is published (shown with receipts); default
	// the centre's own /receipts/keys.
	KeysURL string
	// Secure says whether a request arrived over TLS or from outside loopback (cookies are
	// then Secure); nil: Secure unless the connection is to a loopback address, for a
	// loopback host name, and not forwarded by a proxy.
	Secure func(*http.Request) bool
	// Logger receives errors (never personal data). Nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DefaultRefusalWindow is how long a refusal silences a purpose's prompt.
const DefaultRefusalWindow = 180 * 24 * time.Hour

// Portal is the privacy centre's HTTP handler.
type Portal struct {
	cfg     Config
	seal    *sealer
	ttl     time.Duration
	now     func() time.Time
	log     *slog.Logger
	mux     *http.ServeMux
	pages   map[string]*template.Template
	revoked revoked
	// perID and perClient bound the codes sent; wrong counts wrong codes per challenge.
	perID, perClient, wrong *limiter
	secure                  func(*http.Request) bool
	// prompts counts the consent prompts shown per subject (CON-10's counter).
	promptMu sync.Mutex
	prompts  map[privguard.SubjectID]int
	static   http.Handler
}

// New returns the privacy centre.
func New(cfg Config) (*Portal, error) {
	if cfg.Ledger == nil {
		return nil, errors.New("portal: Config.Ledger is nil")
	}
	if cfg.Directory == nil && cfg.Tokens == nil {
		return nil, errors.New("portal: no way to sign in: set Config.Directory (codes) or Config.Tokens (the app's tokens)")
	}
	if strings.TrimSpace(cfg.Controller.DPOContact) == "" || strings.TrimSpace(cfg.Controller.Name) == "" {
		// AUD-05: the person in charge of personal information protection is published.
		return nil, errors.New("portal: the controller's name and the DPO's contact must be set (controller.name, controller.dpo.contact): the privacy centre publishes them")
	}
	if cfg.Prefix != "" && (!strings.HasPrefix(cfg.Prefix, "/") || strings.HasSuffix(cfg.Prefix, "/")) {
		return nil, fmt.Errorf("portal: prefix %q: want /path without a trailing slash", cfg.Prefix)
	}
	seal, err := newSealer(cfg.Secret)
	if err != nil {
		return nil, err
	}
	for i, c := range cfg.Choices {
		if err := c.Purpose.Validate(); err != nil {
			return nil, fmt.Errorf("portal: choice %d: %w", i, err)
		}
		if c.Channel != "" && !slices.Contains(channels, c.Channel) {
			return nil, fmt.Errorf("portal: choice %s: channel %q: want one of %v", c.Purpose, c.Channel, channels)
		}
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.RefusalWindow <= 0 {
		cfg.RefusalWindow = DefaultRefusalWindow
	}
	if cfg.CodesPerIdentifier <= 0 {
		cfg.CodesPerIdentifier = 5
	}
	if cfg.CodesPerClient <= 0 {
		cfg.CodesPerClient = 30
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Regime == "" {
		cfg.Regime = privguard.RegimePIPL
	}
	if cfg.KeysURL == "" {
		cfg.KeysURL = cfg.Prefix + "/receipts/keys"
	}
	p := &Portal{cfg: cfg, seal: seal, ttl: cfg.SessionTTL, now: cfg.Now, log: cfg.Logger, mux: http.NewServeMux(),
		perID: newLimiter(cfg.CodesPerIdentifier, time.Hour), perClient: newLimiter(cfg.CodesPerClient, time.Hour),
		wrong: newLimiter(CodeAttempts, CodeTTL), secure: cfg.Secure, prompts: map[privguard.SubjectID]int{}}
	if p.secure == nil {
		p.secure = secureUnlessLoopback
	}
	if err := p.parse(); err != nil {
		return nil, err
	}
	sub, _ := fs.Sub(staticFS, "static")
	p.static = http.StripPrefix("/static/", http.FileServerFS(sub))
	p.routes()
	return p, nil
}

var channels = []string{"sms", "email", "push", "wechat"}

// secureUnlessLoopback: cookies are Secure unless the connection came to a loopback
// address over plain HTTP (a developer's machine) from a browser on it: a request for
// another host name, or forwarded by a proxy (on this machine, but the browser is not), is
// Secure too.
func secureUnlessLoopback(r *http.Request) bool {
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") != "" || r.Header.Get("X-Forwarded-For") != "" || r.Header.Get("Forwarded") != "" {
		return true
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if a, err := netip.ParseAddr(host); !(host == "localhost" || strings.HasSuffix(host, ".localhost") || err == nil && a.IsLoopback()) {
		return true
	}
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if ap, err := netip.ParseAddrPort(a.String()); err == nil && ap.Addr().IsLoopback() {
			return false
		}
	}
	return true
}

// PromptsShown returns how many consent prompts the portal showed subject (CON-10).
func (p *Portal) PromptsShown(subject privguard.SubjectID) int {
	p.promptMu.Lock()
	defer p.promptMu.Unlock()
	return p.prompts[subject]
}

// ServeHTTP implements http.Handler.
func (p *Portal) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// A strict policy: nothing but this origin's own script and style, no inline script,
	// no framing, forms only to itself.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	// No referrer leaves for another site (nor a download token or request id in one); the
	// same-origin referrer keeps the browser's Origin header on forms, which sameOrigin checks.
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()")
	if !strings.HasPrefix(r.URL.Path, "/static/") && r.URL.Path != "/receipts/keys" {
		h.Set("Cache-Control", "no-store")
	}
	if r.Method == http.MethodPost && !sameOrigin(r) {
		p.fail(w, r, http.StatusForbidden, "csrf")
		return
	}
	p.mux.ServeHTTP(w, r)
}

// sameOrigin refuses a cross-site POST by its Origin or Sec-Fetch-Site header (the CSRF
// token is checked as well; SameSite=Strict keeps the cookie away besides).
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" || origin == "null" && r.Header.Get("Sec-Fetch-Site") == "same-origin" {
		return true // an older browser, or a privacy setting that hides the origin: the CSRF token decides
	}
	return origin == "http://"+r.Host || origin == "https://"+r.Host
}

func (p *Portal) routes() {
	m := p.mux
	m.HandleFunc("GET /{$}", p.home)
	m.HandleFunc("GET /signin", p.signinPage)
	m.HandleFunc("POST /signin/code", p.signinCode)
	m.HandleFunc("POST /signin/verify", p.signinVerify)
	m.HandleFunc("GET /signin/token", p.signinToken)
	m.HandleFunc("POST /signin/token", p.signinToken)
	m.HandleFunc("POST /signout", p.authed(p.signout))
	m.HandleFunc("GET /lang", p.switchLang)
	m.HandleFunc("GET /choices", p.authed(p.choicesPage))
	m.HandleFunc("POST /choices", p.authed(p.changeChoice))
	m.HandleFunc("POST /choices/personalisation", p.authed(p.changePersonalisation))
	m.HandleFunc("POST /choices/object", p.authed(p.object))
	m.HandleFunc("GET /receipts/{id}", p.authed(p.receipt))
	// Public: the key receipts are signed with, to verify a downloaded receipt.
	m.HandleFunc("GET /receipts/keys", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		json.NewEncoder(w).Encode(p.cfg.Ledger.ReceiptKey())
	})
	if p.cfg.Profiles != nil {
		m.HandleFunc("GET /profile", p.authed(p.profilePage))
		m.HandleFunc("POST /profile/delete", p.authed(p.deleteItems))
	}
	if p.cfg.Requests != nil {
		m.HandleFunc("GET /requests", p.authed(p.requestsPage))
		m.HandleFunc("POST /requests", p.authed(p.newRequest))
		m.HandleFunc("POST /requests/{id}/download", p.authed(p.download))
	}
	m.Handle("GET /static/", p.static)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { p.fail(w, r, http.StatusNotFound, "notfound") })
}

// authed runs h for a signed-in subject with a valid CSRF token on changes; others are
// sent to sign in.
func (p *Portal) authed(h func(w http.ResponseWriter, r *http.Request, s session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, ok := p.currentSession(r)
		if !ok {
			if r.Method == http.MethodPost {
				p.fail(w, r, http.StatusUnauthorized, "signin.expired")
				return
			}
			http.Redirect(w, r, p.cfg.Prefix+"/signin", http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
			if !equal(r.PostFormValue("csrf"), p.csrfToken(s)) {
				p.fail(w, r, http.StatusForbidden, "csrf")
				return
			}
		}
		p.refresh(w, r, s)
		h(w, r, s)
	}
}

const maxForm = 16 << 10

func (p *Portal) home(w http.ResponseWriter, r *http.Request) {
	if _, ok := p.currentSession(r); ok {
		http.Redirect(w, r, p.cfg.Prefix+"/choices", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, p.cfg.Prefix+"/signin", http.StatusSeeOther)
}

// switchLang sets the language cookie and goes back to the page (a path of the portal
// only).
func (p *Portal) switchLang(w http.ResponseWriter, r *http.Request) {
	to := r.URL.Query().Get("to")
	if to != LangZH && to != LangEN {
		to = LangEN
	}
	http.SetCookie(w, &http.Cookie{Name: langCookie, Value: to, Path: "/", MaxAge: 365 * 24 * 3600, SameSite: http.SameSiteLaxMode, Secure: p.secure(r), HttpOnly: true})
	back := r.URL.Query().Get("back")
	if !localPath(back) {
		back = p.cfg.Prefix + "/"
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// localPath reports whether back is a path of this site (not //host or a scheme).
func localPath(back string) bool {
	return strings.HasPrefix(back, "/") && !strings.HasPrefix(back, "//") && !strings.ContainsAny(back, "\\\r\n\t") && len(back) < 256
}

func (p *Portal) signout(w http.ResponseWriter, r *http.Request, s session) {
	// Revoked for as long as any copy of the cookie can live: a copy refreshed later (another
	// tab, a stolen one) expires after this one.
	p.revoked.add(s.ID, s.Issued+int64(MaxSessionLife/time.Second), p.now().Unix())
	p.setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, p.cfg.Prefix+"/signin", http.StatusSeeOther)
}

// fail renders an error page with status and the message key; never internals.
func (p *Portal) fail(w http.ResponseWriter, r *http.Request, status int, key string) {
	s, signedIn := p.currentSession(r)
	v := p.view(w, r, "error")
	v.SignedIn = signedIn
	if signedIn {
		v.CSRF = p.csrfToken(s)
	}
	v.Message = tr(v.Lang, key)
	p.render(w, status, "error", v)
}

// internal logs err (the kind of failure, never personal data) and renders the generic
// error page.
func (p *Portal) internal(w http.ResponseWriter, r *http.Request, what string, err error) {
	status := http.StatusInternalServerError
	if errors.Is(err, privguard.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		status = http.StatusServiceUnavailable
	}
	p.log.Error("portal: "+what, "route", r.Pattern, "kind", errKind(err))
	p.fail(w, r, status, "error")
}

// errKind classifies err for logs without quoting it (an error can carry the data).
func errKind(err error) string {
	switch {
	case errors.Is(err, privguard.ErrInvalid):
		return "invalid"
	case errors.Is(err, privguard.ErrNotFound):
		return "not_found"
	case errors.Is(err, privguard.ErrConflict):
		return "conflict"
	case errors.Is(err, privguard.ErrUnavailable):
		return "unavailable"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "timeout"
	}
	return "internal"
}
