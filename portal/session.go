package portal

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/privguard/privguard"
)

// Cookies. Outside loopback they are Secure and named with the __Host- prefix (no Domain,
// path /, Secure: a sibling host cannot plant one).
const (
	sessionCookie   = "pgs"
	challengeCookie = "pgc"
	preCookie       = "pgp"
	langCookie      = "pg_lang"
	tzCookie        = "pg_tz"
)

// Session and sign-in lifetimes.
const (
	// DefaultSessionTTL is how long a session lasts without a page being loaded.
	DefaultSessionTTL = 15 * time.Minute
	// MaxSessionLife bounds a session however active: then the subject signs in again.
	MaxSessionLife = 2 * time.Hour
	// CodeTTL is how long a sign-in code works.
	CodeTTL = 10 * time.Minute
	// CodeAttempts is how many wrong tries one sign-in code survives.
	CodeAttempts = 5
)

// session is what the session cookie holds, sealed (encrypted and authenticated): the
// subject and how it proved itself, never readable or forgeable by the browser.
type session struct {
	ID      string              `json:"id"`
	Subject privguard.SubjectID `json:"sub"`
	// Evidence is the verified identifier the subject signed in with ("phone:<hash>",
	// "email:<hash>", "token:app"), recorded with each change.
	Evidence string `json:"ev"`
	Issued   int64  `json:"iat"`
	Expires  int64  `json:"exp"`
}

// challenge is the sign-in in progress (the challenge cookie, sealed): the code's hash and
// whom it was sent to. An identifier that belongs to nobody gets a challenge like any
// other, which no code answers.
type challenge struct {
	Nonce    string              `json:"n"`
	Subject  privguard.SubjectID `json:"sub,omitempty"`
	Evidence string              `json:"ev,omitempty"`
	Kind     string              `json:"k"`
	Hash     string              `json:"h,omitempty"` // the link's keyed hash, to confirm it
	CodeMAC  string              `json:"c"`
	Expires  int64               `json:"exp"`
	// Masked is the identifier as typed, masked, to show where the code went.
	Masked string `json:"m,omitempty"`
}

// sealer seals and opens cookie values with AES-256-GCM under a key derived from the
// portal's secret, and makes the CSRF tokens and code MACs.
type sealer struct {
	aead cipher.AEAD
	mac  []byte
}

func newSealer(secret []byte) (*sealer, error) {
	if len(secret) < 32 {
		return nil, errors.New("portal: the session secret is shorter than 32 bytes")
	}
	enc, err := hkdf.Key(sha256.New, secret, nil, "privguard portal cookies v1", 32)
	if err != nil {
		return nil, err
	}
	mac, err := hkdf.Key(sha256.New, secret, nil, "privguard portal mac v1", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(enc)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead, mac: mac}, nil
}

// sealBlock is the size sealed cookies are padded to: a challenge for a linked identifier
// (subject, hash, code) is then as long as one for an identifier linked to nobody, so that
// the cookie's length does not tell them apart. A valid identifier's challenge fits in one.
const sealBlock = 1024

// seal encrypts v for the cookie named name (the name is bound in: a challenge cannot be
// replayed as a session), padded with spaces to a multiple of sealBlock.
func (s *sealer) seal(name string, v any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // an identifier's "&" or "<" takes one byte, not six
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	buf.Write(bytes.Repeat([]byte{' '}, sealBlock-buf.Len()%sealBlock))
	plain := buf.Bytes()
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, []byte(name))), nil
}

// open decrypts a cookie value sealed for name into v.
func (s *sealer) open(name, value string, v any) bool {
	if len(value) > 4096 {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(b) < s.aead.NonceSize()+s.aead.Overhead() {
		return false
	}
	plain, err := s.aead.Open(nil, b[:s.aead.NonceSize()], b[s.aead.NonceSize():], []byte(name))
	if err != nil {
		return false
	}
	return json.Unmarshal(plain, v) == nil
}

// sum is an HMAC of the parts, base64url: CSRF tokens and code hashes.
func (s *sealer) sum(parts ...string) string {
	h := hmac.New(sha256.New, s.mac)
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:24])
}

// equal compares two tokens in constant time.
func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

func randomID() string {
	b := make([]byte, 18)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// revoked remembers the sessions signed out until they would have expired anyway, per
// process (a session cookie alone cannot be taken back).
type revoked struct {
	mu  sync.Mutex
	ids map[string]int64
}

func (r *revoked) add(id string, until int64, now int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ids == nil {
		r.ids = map[string]int64{}
	}
	for k, exp := range r.ids {
		if exp < now {
			delete(r.ids, k)
		}
	}
	r.ids[id] = until
}

func (r *revoked) has(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.ids[id]
	return ok
}

// cookieName is the cookie's name on this request: __Host- prefixed when Secure.
func (p *Portal) cookieName(r *http.Request, base string) string {
	if p.secure(r) {
		return "__Host-" + base
	}
	return base
}

func (p *Portal) setCookie(w http.ResponseWriter, r *http.Request, base, value string, maxAge time.Duration) {
	c := &http.Cookie{Name: p.cookieName(r, base), Value: value, Path: "/", HttpOnly: true,
		Secure: p.secure(r), SameSite: http.SameSiteStrictMode}
	if maxAge > 0 {
		c.MaxAge = int(maxAge / time.Second)
	} else if maxAge < 0 {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}

func (p *Portal) cookie(r *http.Request, base string) string {
	c, err := r.Cookie(p.cookieName(r, base))
	if err != nil {
		return ""
	}
	return c.Value
}

// currentSession returns the request's session, if its cookie opens, is unexpired and not
// signed out.
func (p *Portal) currentSession(r *http.Request) (session, bool) {
	var s session
	v := p.cookie(r, sessionCookie)
	if v == "" || !p.seal.open(sessionCookie, v, &s) {
		return session{}, false
	}
	now := p.now().Unix()
	if now >= s.Expires || now >= s.Issued+int64(MaxSessionLife/time.Second) || s.Subject.Validate() != nil || p.revoked.has(s.ID) {
		return session{}, false
	}
	return s, true
}

// startSession signs subject in: always a new session id (whatever cookie the browser
// had: no fixation), the sign-in challenge dropped.
func (p *Portal) startSession(w http.ResponseWriter, r *http.Request, subject privguard.SubjectID, evidence string) error {
	now := p.now().Unix()
	s := session{ID: randomID(), Subject: subject, Evidence: evidence, Issued: now, Expires: now + int64(p.ttl/time.Second)}
	v, err := p.seal.seal(sessionCookie, s)
	if err != nil {
		return err
	}
	p.setCookie(w, r, sessionCookie, v, 0)
	p.setCookie(w, r, challengeCookie, "", -1)
	p.setCookie(w, r, preCookie, "", -1)
	return nil
}

// refresh extends the session by the idle lifetime (within MaxSessionLife).
func (p *Portal) refresh(w http.ResponseWriter, r *http.Request, s session) {
	now := p.now().Unix()
	if s.Expires-now > int64(p.ttl/time.Second)*2/3 {
		return // refreshed recently
	}
	s.Expires = min(now+int64(p.ttl/time.Second), s.Issued+int64(MaxSessionLife/time.Second))
	if v, err := p.seal.seal(sessionCookie, s); err == nil {
		p.setCookie(w, r, sessionCookie, v, 0)
	}
}

// csrfToken is the token every form of a session carries: bound to the session id, so a
// token from another session (or none) does not pass.
func (p *Portal) csrfToken(s session) string { return p.seal.sum("csrf", s.ID) }

// preToken is the CSRF token of the sign-in forms, bound to the pre-session cookie.
func (p *Portal) preToken(w http.ResponseWriter, r *http.Request) string {
	n := p.cookie(r, preCookie)
	if len(n) != 24 {
		n = randomID()
		p.setCookie(w, r, preCookie, n, CodeTTL*3)
	}
	return p.seal.sum("pre", n)
}

// checkPre checks a sign-in form's CSRF token.
func (p *Portal) checkPre(r *http.Request) bool {
	n := p.cookie(r, preCookie)
	return len(n) == 24 && equal(r.PostFormValue("csrf"), p.seal.sum("pre", n))
}
