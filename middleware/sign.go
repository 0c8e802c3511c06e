package middleware

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader carries privguard's signature over the request it passed on, so that a
// service behind the sidecar can refuse requests that did not come through privguard (or
// whose decision headers were changed on the way): "t=<unix seconds>,v1=<hex HMAC-SHA256>".
const SignatureHeader = "X-Privguard-Signature"

// DefaultSignatureMaxAge is how old a signature VerifySignature accepts by default.
const DefaultSignatureMaxAge = 5 * time.Minute

// Errors of VerifySignature.
var (
	ErrUnsigned       = errors.New("middleware: the request carries no privguard signature")
	ErrBadSignature   = errors.New("middleware: the privguard signature does not match the request")
	ErrStaleSignature = errors.New("middleware: the privguard signature is too old or from the future")
)

// signingString is what the signature covers: the time, the method, the request URI as the
// service receives it, and every X-Privguard-* header but the signature, by lower-cased name
// in order, one "name:value" line per value. The body is not covered.
func signingString(t int64, method, uri string, h http.Header) string {
	var names []string
	for k := range h {
		if ownHeader(k) && !sameHeader(k, SignatureHeader) {
			names = append(names, k)
		}
	}
	slices.SortFunc(names, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
	var b strings.Builder
	b.WriteString(strconv.FormatInt(t, 10))
	b.WriteString("\n" + method + "\n" + uri + "\n")
	for _, k := range names {
		for _, v := range h[k] {
			b.WriteString(strings.ToLower(k) + ":" + v + "\n")
		}
	}
	return b.String()
}

func signature(key []byte, s string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil))
}

// Sign sets SignatureHeader on h for a request with the given method and request URI (path
// and query, as sent), under key, at now.
func Sign(h http.Header, method, uri string, key []byte, now time.Time) {
	t := now.Unix()
	h.Set(SignatureHeader, "t="+strconv.FormatInt(t, 10)+",v1="+signature(key, signingString(t, method, uri, h)))
}

// VerifySignature checks the privguard signature of r (as a service behind the sidecar
// receives it) under key: it must cover r's method, request URI and X-Privguard-* headers,
// and be at most maxAge old (zero means DefaultSignatureMaxAge). It returns ErrUnsigned,
// ErrBadSignature or ErrStaleSignature.
func VerifySignature(r *http.Request, key []byte, now time.Time, maxAge time.Duration) error {
	if maxAge == 0 {
		maxAge = DefaultSignatureMaxAge
	}
	vals := r.Header.Values(SignatureHeader)
	if len(vals) == 0 {
		return ErrUnsigned
	}
	if len(vals) > 1 {
		return ErrBadSignature
	}
	var t int64 = -1
	var v1 string
	for part := range strings.SplitSeq(vals[0], ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return ErrBadSignature
			}
			t = n
		case "v1":
			v1 = v
		}
	}
	if t < 0 || v1 == "" {
		return ErrBadSignature
	}
	uri := r.RequestURI // as received, byte for byte
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	want := signature(key, signingString(t, r.Method, uri, r.Header))
	if !hmac.Equal([]byte(want), []byte(v1)) {
		return ErrBadSignature
	}
	if age := now.Sub(time.Unix(t, 0)); age > maxAge || age < -time.Minute {
		return ErrStaleSignature
	}
	return nil
}
