package portal_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// BenchmarkPages renders each signed-in page through the handler (no network): the
// ledger reads, the template and the headers, per request.
func BenchmarkPages(b *testing.B) {
	for _, page := range []string{"/choices", "/requests", "/signin"} {
		b.Run(page[1:], func(b *testing.B) {
			e := newEnv(b)
			br := e.browser()
			br.signIn("+8613800138000", "h-alice-phone")
			u, _ := url.Parse(e.srv.URL)
			cookies := br.c.Jar.Cookies(u)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				req := httptest.NewRequest("GET", page, nil)
				req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, loopback)) // cookies not Secure
				req.Header.Set("Accept-Language", "zh-CN")
				for _, c := range cookies {
					if page != "/signin" { // a signed-in subject is sent on to its choices
						req.AddCookie(c)
					}
				}
				w := httptest.NewRecorder()
				e.portal.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("%s = %d", page, w.Code)
				}
			}
		})
	}
}

var loopback = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8082}
