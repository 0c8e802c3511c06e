package portal

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/privguard/privguard"
)

func (p *Portal) signinPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := p.currentSession(r); ok {
		http.Redirect(w, r, p.cfg.Prefix+"/choices", http.StatusSeeOther)
		return
	}
	if p.cfg.Directory == nil {
		p.fail(w, r, http.StatusNotFound, "signin.token.bad")
		return
	}
	v := p.view(w, r, "signin")
	v.CSRF = p.preToken(w, r)
	p.render(w, http.StatusOK, "signin", v)
}

// clientKey is the client's address for rate limits: the connection's, or behind a
// trusted proxy the last address of X-Forwarded-For that is not a trusted proxy's; an IPv6
// one by its /64 (a single host may use every address of its /64).
func (p *Portal) clientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	a = a.Unmap().WithZone("")
	if p.trusted(a) {
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			h, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break
			}
			if a = h.Unmap().WithZone(""); !p.trusted(a) {
				break
			}
		}
	}
	if a.Is6() {
		if pfx, err := a.Prefix(64); err == nil {
			return pfx.String()
		}
	}
	return a.String()
}

// trusted reports whether a is one of Config.TrustedProxies.
func (p *Portal) trusted(a netip.Addr) bool {
	for _, pfx := range p.cfg.TrustedProxies {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}

// signinCode sends a code to the identifier typed, if it is linked to a subject, and
// answers exactly the same either way (no enumeration): the same page, the same challenge
// cookie, the same limits.
func (p *Portal) signinCode(w http.ResponseWriter, r *http.Request) {
	if p.cfg.Directory == nil {
		p.fail(w, r, http.StatusNotFound, "notfound")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if !p.checkPre(r) {
		p.fail(w, r, http.StatusForbidden, "csrf")
		return
	}
	v := p.view(w, r, "signin")
	v.CSRF = p.preToken(w, r)
	typed := strings.TrimSpace(r.PostFormValue("identifier"))
	now := p.now()
	if ok, wait := p.perClient.allow(p.clientKey(r), now); !ok {
		p.limited(w, r, v, wait)
		return
	}
	link, found, err := p.cfg.Directory.Find(r.Context(), typed)
	if errors.Is(err, privguard.ErrInvalid) || typed == "" || len(typed) > 254 {
		v.Message = tr(v.Lang, "signin.invalid")
		p.render(w, http.StatusUnprocessableEntity, "signin", v)
		return
	}
	if err != nil {
		p.internal(w, r, "find identifier", err)
		return
	}
	// Limits per identifier count what was typed, normalised the same way for linked and
	// unknown identifiers, so that they cannot tell them apart either: canonical, if the
	// directory knows how (one number, however spelled).
	key := normalisedKey(typed)
	if cd, ok := p.cfg.Directory.(Canonicaliser); ok {
		if k, err := cd.Canonical(typed); err == nil {
			key = k
		}
	}
	idKey := p.seal.sum("id", key)
	if ok, wait := p.perID.allow(idKey, now); !ok {
		p.limited(w, r, v, wait)
		return
	}
	code, err := newCode()
	if err != nil {
		p.internal(w, r, "code", err)
		return
	}
	c := challenge{Nonce: randomID(), Kind: kindOf(typed), CodeMAC: "", Expires: now.Add(CodeTTL).Unix(), Masked: maskTyped(typed)}
	if found {
		c.Subject, c.Hash, c.Kind = link.Subject, link.Hash, link.Kind
		c.Evidence = link.Kind + ":" + link.Hash
		c.CodeMAC = p.seal.sum("code", c.Nonce, code)
		// Sent in the background: the answer takes as long for a linked identifier as for
		// an unknown one.
		lang := v.Lang
		go func() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 30*time.Second)
			defer cancel()
			if err := p.cfg.Directory.SendCode(ctx, link, code, lang); err != nil {
				p.log.Error("portal: sign-in code not sent", "kind", errKind(err))
			}
		}()
	}
	sealed, err := p.seal.seal(challengeCookie, c)
	if err != nil {
		p.internal(w, r, "seal", err)
		return
	}
	p.setCookie(w, r, challengeCookie, sealed, CodeTTL)
	v.Page, v.Data = "code", c.Masked
	p.render(w, http.StatusOK, "code", v)
}

func (p *Portal) limited(w http.ResponseWriter, r *http.Request, v *view, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
	v.Message = tr(v.Lang, "limit")
	p.render(w, http.StatusTooManyRequests, "error", v)
}

// signinVerify checks the code against the challenge cookie and signs the subject in.
func (p *Portal) signinVerify(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if !p.checkPre(r) {
		p.fail(w, r, http.StatusForbidden, "csrf")
		return
	}
	v := p.view(w, r, "code")
	v.CSRF = p.preToken(w, r)
	var c challenge
	now := p.now()
	if !p.seal.open(challengeCookie, p.cookie(r, challengeCookie), &c) || now.Unix() >= c.Expires {
		v.Page, v.Message = "signin", tr(v.Lang, "signin.expired")
		p.render(w, http.StatusUnauthorized, "signin", v)
		return
	}
	v.Data = c.Masked
	// Tries are counted per challenge, before the code is compared (requests in parallel
	// cannot all pass a count taken first): CodeAttempts tries, then a new code is needed.
	if ok, _ := p.wrong.allow(c.Nonce, now); !ok {
		p.limited(w, r, v, time.Until(time.Unix(c.Expires, 0)))
		return
	}
	code := strings.TrimSpace(r.PostFormValue("code"))
	// The code's MAC is computed and compared for an unknown identifier's challenge too (no
	// code answers it): a wrong code takes as long either way.
	mac := p.seal.sum("code", c.Nonce, code)
	if !equal(c.CodeMAC, mac) || c.CodeMAC == "" || len(code) != 6 {
		v.Message = tr(v.Lang, "signin.wrong")
		p.render(w, http.StatusUnprocessableEntity, "code", v)
		return
	}
	// Used once: the challenge is spent (its cookie goes, and its count is full).
	for range CodeAttempts {
		p.wrong.allow(c.Nonce, now)
	}
	if err := p.cfg.Directory.Confirm(r.Context(), Link{Subject: c.Subject, Kind: c.Kind, Hash: c.Hash}); err != nil {
		p.internal(w, r, "confirm link", err)
		return
	}
	if err := p.startSession(w, r, c.Subject, c.Evidence); err != nil {
		p.internal(w, r, "session", err)
		return
	}
	http.Redirect(w, r, p.cfg.Prefix+"/choices", http.StatusSeeOther)
}

// signinToken signs in the app's logged-in user with the identity token the app signed
// (GET /signin/token?token=..., for a link opened in the app's web view, or a POST form).
// The token is not kept in the URL: the answer is a redirect.
func (p *Portal) signinToken(w http.ResponseWriter, r *http.Request) {
	if p.cfg.Tokens == nil {
		p.fail(w, r, http.StatusNotFound, "notfound")
		return
	}
	var token string
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		token = r.PostFormValue("token")
	} else {
		token = r.URL.Query().Get("token")
	}
	if ok, wait := p.perClient.allow(p.clientKey(r)+"/token", p.now()); !ok {
		p.limited(w, r, p.view(w, r, "error"), wait)
		return
	}
	subject, err := p.cfg.Tokens.Subject(token)
	// A token signs in once (per process): a copy left in a history or a shared link
	// does not open a second session.
	spent := "token:" + p.seal.sum("token", token)
	if err != nil || p.revoked.has(spent) {
		p.fail(w, r, http.StatusUnauthorized, "signin.token.bad")
		return
	}
	now := p.now().Unix()
	p.revoked.add(spent, now+int64(tokenLife/time.Second), now)
	if err := p.startSession(w, r, subject, "token:app"); err != nil {
		p.internal(w, r, "session", err)
		return
	}
	http.Redirect(w, r, p.cfg.Prefix+"/choices", http.StatusSeeOther)
}

// tokenLife bounds how long an identity token lives (dsar.TokenVerifier refuses longer
// ones), and so how long a spent one is remembered.
const tokenLife = 24*time.Hour + 2*time.Minute

func newCode() (string, error) {
	x, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%06d", x.Int64()), nil
}

// kindOf guesses what was typed: an email address has an @.
func kindOf(typed string) string {
	if strings.Contains(typed, "@") {
		return "email"
	}
	return "phone"
}

// normalisedKey is the rate-limit key of what was typed: lower case, without the spaces,
// dashes and brackets people type in phone numbers.
func normalisedKey(typed string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-', '(', ')', '.', '\t':
			if !strings.Contains(typed, "@") {
				return -1
			}
		}
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, typed)
}

// maskTyped hides most of what was typed, to show where the code went.
func maskTyped(typed string) string {
	if local, domain, ok := strings.Cut(typed, "@"); ok {
		if len(local) > 1 {
			local = local[:1]
		}
		return local + "***@" + domain
	}
	digits := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' || r == '+' {
			return r
		}
		return -1
	}, typed)
	if len(digits) <= 4 {
		return "****"
	}
	return strings.Repeat("*", len(digits)-4) + digits[len(digits)-4:]
}
