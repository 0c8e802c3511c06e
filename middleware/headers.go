package middleware

import (
	"net/http"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/privguard/privguard"
)

// HeaderPrefix starts every header privguard owns. Clients cannot send them: every inbound
// header with the prefix (in any spelling a server could map onto it, X_Privguard_Decision
// included) is removed before the handler sees the request, except X-Privguard-Purpose, which
// declares the purpose and is read first. The handler gets privguard's own instead.
const HeaderPrefix = "X-Privguard-"

// Headers of an allowed request as the handler (and a sidecar's upstream) receives them.
// They are set by privguard only.
const (
	// DecisionHeader carries the decision's id (also on the response to the client).
	DecisionHeader = "X-Privguard-Decision"
	// NonPersonalisedHeader is "1" when the handler must serve its non-personalised
	// alternative (PIPL Art. 24(2)); also on the response.
	NonPersonalisedHeader = "X-Privguard-Non-Personalised"
	// ContactBudgetHeader is how many more contacts the subject may get on the route's
	// channel in the current window, after this one.
	ContactBudgetHeader = "X-Privguard-Contact-Budget"
	// RemovedHeader is how many subjects a batch lost (also on the response).
	RemovedHeader = "X-Privguard-Removed"
)

// sameHeader reports whether two header names are one header to a CGI, WSGI or PHP server
// (case folded, every byte but letters and digits read as '-'), so that "X_Customer",
// "X.Customer" and "x-customer" are the same. It
// does not allocate.
func sameHeader(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if headerByte(a[i]) != headerByte(b[i]) {
			return false
		}
	}
	return true
}

func headerByte(c byte) byte {
	switch {
	case 'A' <= c && c <= 'Z':
		return c + 'a' - 'A'
	case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		return c
	}
	return '-' // CGI and PHP read '_', '.' and the like as the '-' they turn into '_'
}

// ownHeader reports whether name is privguard's (X-Privguard-..., in any such spelling).
func ownHeader(name string) bool {
	return len(name) >= len(HeaderPrefix) && sameHeader(name[:len(HeaderPrefix)], HeaderPrefix)
}

// withoutOwnHeaders returns h without privguard's headers: h itself when it has none.
func withoutOwnHeaders(h http.Header) http.Header {
	found := false
	for k := range h {
		if ownHeader(k) {
			found = true
			break
		}
	}
	if !found {
		return h
	}
	out := make(http.Header, len(h))
	for k, v := range h {
		if !ownHeader(k) {
			out[k] = v
		}
	}
	return out
}

// headerValues returns the values of header name in h, and whether another header name a
// CGI-style server reads as the same one is present too.
func headerValues(h http.Header, name string) (vals []string, variant bool) {
	canon := textproto.CanonicalMIMEHeaderKey(name)
	for k, v := range h {
		if k == canon {
			vals = v
		} else if sameHeader(k, name) {
			variant = true
		}
	}
	return vals, variant
}

// oneHeader returns the single value of header name, or a problem if the request repeats it
// or sends it under a second spelling.
func oneHeader(h http.Header, name string) (string, *privguard.Problem) {
	vals, variant := headerValues(h, name)
	if len(vals) > 1 || variant {
		return "", ambiguous(name + " is sent more than once or under two spellings")
	}
	if len(vals) == 0 {
		return "", nil
	}
	return vals[0], nil
}

// checkConnection allows only the standard Connection tokens. Any other asks a proxy to
// remove that header before passing the request on, which would let a client strip the
// subject header privguard checked, or a header privguard adds.
func checkConnection(h http.Header) *privguard.Problem {
	for _, v := range h.Values("Connection") {
		for tok := range strings.SplitSeq(v, ",") {
			switch strings.ToLower(strings.TrimSpace(tok)) {
			case "", "close", "keep-alive", "upgrade", "te":
			default:
				return ambiguous("Connection may name only close, keep-alive, upgrade or te")
			}
		}
	}
	return nil
}

// decisionHeaders returns the request headers for the handler: h without anything a client
// sent under privguard's prefix, with the decision's own.
//
// h is changed in place (it is the request's own header map, which privguard's copy of
// the request shares: the client's copy is not used after the handler).
func decisionHeaders(h http.Header, purpose privguard.Purpose, d privguard.Decision) http.Header {
	out := h
	for k := range h {
		if ownHeader(k) {
			delete(h, k)
		}
	}
	vals := make([]string, 2, 5) // one allocation for every value privguard sets
	vals[0], vals[1] = d.ID, string(purpose)
	set := func(k string, i int) { out[k] = vals[i : i+1 : i+1] }
	set(DecisionHeader, 0)
	set(PurposeHeader, 1)
	for _, o := range d.Obligations {
		switch o.Kind {
		case privguard.ObligeNonPersonalised:
			vals = append(vals, "1")
			set(NonPersonalisedHeader, len(vals)-1)
		case privguard.ObligeContactBudget:
			vals = append(vals, strconv.Itoa(o.Remaining))
			set(ContactBudgetHeader, len(vals)-1)
		case privguard.ObligeDropSubjects:
			vals = append(vals, strconv.Itoa(o.Remaining))
			set(RemovedHeader, len(vals)-1)
		}
	}
	return out
}

// ownResponseHeaders puts privguard's response headers on the response when its status is
// sent, over anything the handler set under privguard's prefix (an upstream cannot forge
// them) and after an informational response (httputil.ReverseProxy clears the headers it
// had once it has sent a 1xx).
type ownResponseHeaders struct {
	http.ResponseWriter
	own   http.Header   // set on the response, or
	fixed [2]headerPair // these (the single-subject path, which allocates no map)
	wrote bool
}

// headerPair is one response header privguard sets; a zero pair is none.
type headerPair struct {
	name  string
	value []string
}

func (o *ownResponseHeaders) WriteHeader(code int) {
	if !o.wrote {
		h := o.ResponseWriter.Header()
		for k := range h {
			if ownHeader(k) {
				delete(h, k)
			}
		}
		for k, v := range o.own {
			h[k] = v
		}
		for _, p := range o.fixed {
			if p.name != "" {
				h[p.name] = p.value
			}
		}
		o.wrote = code >= 200 || code == http.StatusSwitchingProtocols
	}
	o.ResponseWriter.WriteHeader(code)
}

func (o *ownResponseHeaders) Write(b []byte) (int, error) {
	if !o.wrote {
		o.WriteHeader(http.StatusOK)
	}
	return o.ResponseWriter.Write(b)
}

// FlushError sends the status (with privguard's headers) before flushing.
func (o *ownResponseHeaders) FlushError() error {
	if !o.wrote {
		o.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(o.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the real writer.
func (o *ownResponseHeaders) Unwrap() http.ResponseWriter { return o.ResponseWriter }
