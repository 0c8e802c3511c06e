package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/textproto"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/internal/config"
	"github.com/privguard/privguard/middleware"
	"github.com/privguard/privguard/policy"
)

// sidecar builds the enforcing reverse proxy in front of cfg.Upstream: the middleware with
// the configured route table around httputil.ReverseProxy. closeIt releases what the proxy
// holds (the shared contact counter's connections), after the proxy has stopped serving.
func sidecar(ctx context.Context, cfg *config.File, ledger *consent.Ledger, secrets secretStore, engine *policy.Engine, recorder middleware.Recorder, crypter middleware.FieldCrypter, discloser middleware.Discloser, callers middleware.Callers, log *slog.Logger) (_ http.Handler, closeIt func() error, err error) {
	upstream, err := url.Parse(cfg.Upstream)
	if err != nil || upstream.Host == "" {
		return nil, nil, fmt.Errorf("config: upstream %q is not an http(s) URL", cfg.Upstream)
	}
	routes := make([]middleware.Route, len(cfg.Routes))
	for i, r := range cfg.Routes {
		mr := middleware.Route{Match: r.Match, Pass: r.Pass, Purpose: privguard.Purpose(r.Purpose), Channel: r.Channel,
			Recipient: r.Recipient, Role: r.Role, PIA: r.PIA, Encrypt: r.Encrypt,
			Subject:  middleware.Locator{Path: r.Subject.Path, Header: r.Subject.Header, Query: r.Subject.Query, JSON: r.Subject.JSON},
			Subjects: middleware.Locator{Path: r.Subjects.Path, Header: r.Subjects.Header, Query: r.Subjects.Query, JSON: r.Subjects.JSON}}
		for _, p := range r.Purposes {
			mr.Purposes = append(mr.Purposes, privguard.Purpose(p))
		}
		if len(r.Fields) > 0 {
			mr.Fields = map[string]privguard.DataCategory{}
			for k, v := range r.Fields {
				mr.Fields[k] = privguard.DataCategory(v)
			}
		}
		routes[i] = mr
	}
	contacts, allowUncounted, closeIt, err := contactCounter(ctx, cfg, secrets, log)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			closeIt()
		}
	}()
	protect, err := middleware.New(middleware.Config{Routes: routes, Decider: engine, Facts: ledger,
		Regime: privguard.Regime(cfg.Regime), Recorder: recorder, Contacts: contacts, AllowUncounted: allowUncounted, Crypter: crypter, Discloser: discloser, Callers: callers, Logger: log,
		DenyUnmatched: cfg.Unmatched != "pass", StrictPaths: cfg.Paths != "exact"})
	if err != nil {
		return nil, nil, fmt.Errorf("config: routes: %w", err)
	}
	var signKey []byte
	if cfg.UpstreamSecretFile != "" {
		if signKey, err = os.ReadFile(cfg.UpstreamSecretFile); err != nil {
			return nil, nil, fmt.Errorf("config: upstream_secret_file: %w", err)
		}
		if signKey = bytes.TrimSpace(signKey); len(signKey) < 32 {
			return nil, nil, fmt.Errorf("config: upstream_secret_file %s holds %d bytes; want at least 32", cfg.UpstreamSecretFile, len(signKey))
		}
	}
	var trusted []netip.Prefix
	for _, c := range cfg.TrustedProxies {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, nil, fmt.Errorf("config: trusted_proxies: %q is not a CIDR", c)
		}
		trusted = append(trusted, p)
	}
	transport, err := upstreamTransport(cfg.UpstreamTransport)
	if err != nil {
		return nil, nil, err
	}
	proxy := &httputil.ReverseProxy{
		Transport:  transport,
		BufferPool: copyBuffers{},
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(upstream)
			// Rewrite received the request without its X-Forwarded-* headers; a trusted
			// proxy's chain is passed on, anyone else's is not.
			if fromTrusted(r.In.RemoteAddr, trusted) {
				if xff := r.In.Header.Values("X-Forwarded-For"); len(xff) > 0 {
					r.Out.Header["X-Forwarded-For"] = xff
				}
			} else {
				// The other headers upstreams take a client's address or the public path
				// from are dropped too, unless a trusted proxy sent them.
				for k := range r.Out.Header {
					if spoofable(k) {
						delete(r.Out.Header, k)
					}
				}
			}
			setXForwarded(r)
			// The middleware removed every X-Privguard-* header the client sent and set the
			// decision's. The proxy has since dropped the headers the client's Connection
			// header named; privguard's own are put back, so no client can remove them.
			for k, v := range r.In.Header {
				if strings.HasPrefix(k, middleware.HeaderPrefix) {
					r.Out.Header[k] = v
				}
			}
			r.Out.Trailer = nil // a client's trailers could carry a locator or privguard's headers
			if signKey != nil {
				middleware.Sign(r.Out.Header, r.Out.Method, r.Out.URL.RequestURI(), signKey, time.Now())
			}
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			log.Warn("upstream unavailable", "err", err)
			privguard.NewProblem(http.StatusBadGateway, "upstream-unavailable", "Upstream unavailable", "").Write(w)
		},
	}
	return protect(proxy), closeIt, nil
}

// setXForwarded is httputil.ProxyRequest.SetXForwarded with the three values in one
// allocation instead of three.
func setXForwarded(r *httputil.ProxyRequest) {
	vals := make([]string, 3)
	if ip, _, err := net.SplitHostPort(r.In.RemoteAddr); err == nil {
		if prior := r.Out.Header["X-Forwarded-For"]; len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		vals[0] = ip
		r.Out.Header["X-Forwarded-For"] = vals[0:1:1]
	} else {
		delete(r.Out.Header, "X-Forwarded-For")
	}
	vals[1] = r.In.Host
	r.Out.Header["X-Forwarded-Host"] = vals[1:2:2]
	vals[2] = "http"
	if r.In.TLS != nil {
		vals[2] = "https"
	}
	r.Out.Header["X-Forwarded-Proto"] = vals[2:3:3]
}

// upstreamTransport is the sidecar's connection pool to the upstream: net/http's defaults
// (proxy from the environment, HTTP/2 when TLS offers it) with the configured limits.
func upstreamTransport(c config.Transport) (*http.Transport, error) {
	d := func(v *config.Duration, def time.Duration, name string) (time.Duration, error) {
		if v == nil {
			return def, nil
		}
		if v.Duration < 0 {
			return 0, fmt.Errorf("config: upstream_transport.%s %s is negative", name, v.Duration)
		}
		return v.Duration, nil
	}
	idle, err := d(c.IdleConnTimeout, 90*time.Second, "idle_conn_timeout")
	if err != nil {
		return nil, err
	}
	dial, err := d(c.DialTimeout, 5*time.Second, "dial_timeout")
	if err != nil {
		return nil, err
	}
	header, err := d(c.ResponseHeaderTimeout, 0, "response_header_timeout")
	if err != nil {
		return nil, err
	}
	perHost := c.MaxIdleConnsPerHost
	if perHost == 0 {
		perHost = 256
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: dial, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = dial
	t.MaxIdleConns = 0 // bounded per host below; the sidecar has one upstream
	t.MaxIdleConnsPerHost = perHost
	t.MaxConnsPerHost = c.MaxConnsPerHost
	t.IdleConnTimeout = idle
	t.ResponseHeaderTimeout = header
	return t, nil
}

// copyBuffers lends the proxy its 32 KiB body-copy buffers, which it would otherwise
// allocate for every response.
type copyBuffers struct{}

var copyBufferPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (copyBuffers) Get() []byte  { return *copyBufferPool.Get().(*[]byte) }
func (copyBuffers) Put(b []byte) { copyBufferPool.Put(&b) }

// spoofable reports the forwarding headers, beside Forwarded and X-Forwarded-For/Host/Proto
// (which httputil.ReverseProxy drops), that upstreams read a client's address or the public
// path from (in any spelling a CGI server reads as them: X_Real_IP); only a trusted proxy's
// are passed on.
func spoofable(key string) bool {
	if strings.IndexByte(key, '_') >= 0 {
		key = textproto.CanonicalMIMEHeaderKey(strings.ReplaceAll(key, "_", "-"))
	}
	switch key {
	case "X-Real-Ip", "X-Client-Ip", "True-Client-Ip", "X-Cluster-Client-Ip", "Cf-Connecting-Ip", "Fastly-Client-Ip",
		"X-Original-Forwarded-For", "X-Forwarded-Prefix", "X-Forwarded-Port", "X-Forwarded-Server", "X-Forwarded-Path", "X-Forwarded-Uri":
		return true
	}
	return false
}

// serveSidecar serves h on cfg.Listen until ctx ends.
func serveSidecar(ctx context.Context, addr string, h http.Handler, log *slog.Logger) (stop func(context.Context) error, bound string, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("sidecar listener: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: readTimeout,
		WriteTimeout: writeTimeout, IdleTimeout: idleTimeout, MaxHeaderBytes: maxHeaderBytes,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() {
		if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
			log.Error("sidecar stopped", "err", err)
		}
	}()
	return srv.Shutdown, ln.Addr().String(), nil
}

// newEngine builds the policy engine from the configuration: the embedded default policy or
// the modules of policy.dir, with data from the taxonomy and the frequency limits.
func newEngine(ctx context.Context, cfg *config.File, tax *privguard.Taxonomy, log *slog.Logger) (*policy.Engine, error) {
	pc := policy.Config{Taxonomy: tax, Logger: log, Frequency: frequency(cfg), CacheSize: cfg.Policy.MemoSize,
		MemoExactContacts: cfg.Policy.Dir != "", Assessments: policyAssessments(cfg), Recipients: policyRecipients(cfg), Location: cfg.DateZone()}
	if cfg.Policy.MemoExactContacts != nil {
		pc.MemoExactContacts = *cfg.Policy.MemoExactContacts
	}
	if cfg.Policy.Dir != "" {
		modules, err := policy.LoadDir(cfg.Policy.Dir)
		if err != nil {
			return nil, err
		}
		pc.Modules = modules
	}
	return policy.New(ctx, pc)
}

// frequency returns the outreach limits: the defaults with the configuration's overrides.
func frequency(cfg *config.File) map[string]policy.FrequencyLimit {
	f := policy.DefaultFrequency()
	for ch, l := range cfg.Policy.Frequency {
		d := f[ch]
		if l.Max != nil {
			d.Max = *l.Max
		}
		if l.Window != "" {
			d.Window = l.Window
		}
		f[ch] = d
	}
	return f
}

// fromTrusted reports whether remoteAddr (host:port) is in one of the trusted prefixes.
func fromTrusted(remoteAddr string, trusted []netip.Prefix) bool {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return false
	}
	for _, p := range trusted {
		if p.Contains(ap.Addr().Unmap()) {
			return true
		}
	}
	return false
}
