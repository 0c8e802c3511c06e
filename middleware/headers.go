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

// headerKey maps a header name the way CGI, WSGI and PHP servers do (case folded, '_' read
// as '-'), so that "X_Customer" and "x-customer" are one header to such a server.
func headerKey(name string) string {
	return strings.ReplaceAll(strings.ToLower(name), "_", "-")
}

func ownHeader(name string) bool {
	return strings.HasPrefix(headerKey(name), "x-privguard-")
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
	want := headerKey(name)
	for k, v := range h {
		if k == canon {
			vals = v
		} else if headerKey(k) == want {
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

// hopByHop are the Connection tokens a request may carry. Any other token asks a proxy to
// remove that header before passing the request on, which would let a client strip the
// subject header privguard checked, or a header privguard adds.
var hopByHop = map[string]bool{"close": true, "keep-alive": true, "upgrade": true, "te": true}

func checkConnection(h http.Header) *privguard.Problem {
	for _, v := range h.Values("Connection") {
		for tok := range strings.SplitSeq(v, ",") {
			if t := strings.ToLower(strings.TrimSpace(tok)); t != "" && !hopByHop[t] {
				return ambiguous("Connection may name only close, keep-alive, upgrade or te")
			}
		}
	}
	return nil
}

// decisionHeaders returns the request headers for the handler: h without anything a client
// sent under privguard's prefix, with the decision's own.
func decisionHeaders(h http.Header, purpose privguard.Purpose, d privguard.Decision) http.Header {
	out := make(http.Header, len(h)+4)
	for k, v := range h {
		if !ownHeader(k) {
			out[k] = v
		}
	}
	out[DecisionHeader] = []string{d.ID}
	out[PurposeHeader] = []string{string(purpose)}
	for _, o := range d.Obligations {
		switch o.Kind {
		case privguard.ObligeNonPersonalised:
			out[NonPersonalisedHeader] = []string{"1"}
		case privguard.ObligeContactBudget:
			out[ContactBudgetHeader] = []string{strconv.Itoa(o.Remaining)}
		case privguard.ObligeDropSubjects:
			out[RemovedHeader] = []string{strconv.Itoa(o.Remaining)}
		}
	}
	return out
}
