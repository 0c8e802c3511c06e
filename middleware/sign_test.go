package middleware_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/privguard/privguard/middleware"
)

func TestSignature(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	now := time.Unix(1_800_000_000, 0)
	signed := func() *http.Request {
		r := httptest.NewRequest("GET", "/api/profiles/c-1?x=1", nil)
		r.Header.Set(middleware.DecisionHeader, "d-1")
		r.Header.Set(middleware.NonPersonalisedHeader, "1")
		middleware.Sign(r.Header, r.Method, r.RequestURI, key, now)
		return r
	}
	if err := middleware.VerifySignature(signed(), key, now.Add(time.Minute), 0); err != nil {
		t.Fatalf("VerifySignature(signed) = %v", err)
	}
	for _, tc := range []struct {
		name   string
		change func(*http.Request)
		at     time.Time
		want   error
	}{
		{"header_removed", func(r *http.Request) { r.Header.Del(middleware.NonPersonalisedHeader) }, now, middleware.ErrBadSignature},
		{"header_added", func(r *http.Request) { r.Header.Set(middleware.ContactBudgetHeader, "9") }, now, middleware.ErrBadSignature},
		{"header_changed", func(r *http.Request) { r.Header.Set(middleware.DecisionHeader, "d-2") }, now, middleware.ErrBadSignature},
		{"other_path", func(r *http.Request) { r.RequestURI = "/api/profiles/c-2?x=1" }, now, middleware.ErrBadSignature},
		{"other_method", func(r *http.Request) { r.Method = "DELETE" }, now, middleware.ErrBadSignature},
		{"two_signatures", func(r *http.Request) { r.Header.Add(middleware.SignatureHeader, "t=1,v1=00") }, now, middleware.ErrBadSignature},
		{"unsigned", func(r *http.Request) { r.Header.Del(middleware.SignatureHeader) }, now, middleware.ErrUnsigned},
		{"stale", func(*http.Request) {}, now.Add(6 * time.Minute), middleware.ErrStaleSignature},
		{"future", func(*http.Request) {}, now.Add(-2 * time.Minute), middleware.ErrStaleSignature},
		{"other_headers_may_change", func(r *http.Request) { r.Header.Set("Accept", "text/html") }, now, nil},
	} {
		r := signed()
		tc.change(r)
		if err := middleware.VerifySignature(r, key, tc.at, 0); !errors.Is(err, tc.want) {
			t.Errorf("%s: VerifySignature = %v; want %v", tc.name, err, tc.want)
		}
	}
	if err := middleware.VerifySignature(signed(), []byte("another key, also 32 bytes long!"), now, 0); !errors.Is(err, middleware.ErrBadSignature) {
		t.Errorf("another key: %v", err)
	}
}
