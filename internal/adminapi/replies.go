package adminapi

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/outreach"
)

// MaxReplyBody bounds an SMS gateway's reply (POST /v1/outreach/replies/{gateway}): a
// reply's text is at most outreach.MaxReplyText bytes, escaped in JSON up to six times
// that.
const MaxReplyBody = 16 << 10

// replyRoutes registers the SMS replies' route and returns its path (for the 405s).
// Gateways authenticate by their HMAC signature, not by an API token, as the webhook
// stores' callbacks do.
func (s *Server) replyRoutes() []string {
	const pattern = "POST /v1/outreach/replies/{gateway}"
	s.mux.Handle(pattern, s.logRequests(pattern, s.wrap(s.postReply)))
	return []string{"/v1/outreach/replies/{gateway}"}
}

// postReply takes one SMS reply from a gateway (the shape is in package outreach's doc).
// Before any of the body is read: a gateway not configured gets 404, a request without a
// signature 401, another media type 415, a declared length over MaxReplyBody 413, and a
// reply that would pass the callbacks' budget of bytes held at once 503. Then a
// signature that does not match, or is stale, gets 401, and one seen before 409, with
// nothing changed; a body that is not the shape 400 or 422.
func (s *Server) postReply(w http.ResponseWriter, r *http.Request) error {
	gateway := r.PathValue("gateway")
	if !s.replies.Gateway(gateway) {
		return privguard.NewProblem(http.StatusNotFound, TypeNotFound, "Not found", "no SMS gateway of that name is configured (outreach.gateways)")
	}
	sig := r.Header.Get("Privguard-Signature")
	if sig == "" || len(sig) > 1024 {
		return replyNotAuthentic()
	}
	if err := bodyType(r, "application/json", "send Content-Type: application/json"); err != nil {
		return err
	}
	if r.ContentLength > MaxReplyBody {
		return privguard.NewProblem(http.StatusRequestEntityTooLarge, TypeBodyTooLarge, "Body too large",
			fmt.Sprintf("a reply is at most %d bytes", MaxReplyBody))
	}
	reserve := int64(MaxReplyBody)
	if r.ContentLength >= 0 {
		reserve = r.ContentLength
	}
	if !s.callbacks.take(reserve) {
		w.Header().Set("Retry-After", "1")
		return privguard.NewProblem(http.StatusServiceUnavailable, TypeUnavailable, "Too many requests at once", "retry shortly")
	}
	defer s.callbacks.give(reserve)
	body, err := readBody(http.MaxBytesReader(w, r.Body, MaxReplyBody), r.ContentLength, MaxReplyBody)
	if err != nil {
		return jsonProblem(err, MaxReplyBody)
	}
	release, err := s.replies.Authenticate(gateway, sig, body)
	switch {
	case errors.Is(err, outreach.ErrNotAuthentic):
		return replyNotAuthentic()
	case errors.Is(err, outreach.ErrReplayed):
		return privguard.NewProblem(http.StatusConflict, TypeConflict, "Reply already received",
			"this signature and body were received before; a retry is signed anew (the same reply is recorded once)")
	case errors.Is(err, outreach.ErrBusy):
		w.Header().Set("Retry-After", "1")
		return privguard.NewProblem(http.StatusServiceUnavailable, TypeUnavailable, "Too many replies at once", "retry shortly")
	case err != nil:
		return err
	}
	var reply outreach.Reply
	if err := s.decodeBytes(bytes.TrimPrefix(body, utf8BOM), MaxReplyBody, &reply); err != nil {
		release(false)
		return err
	}
	res, err := s.replies.Apply(r.Context(), gateway, reply)
	release(err == nil)
	var re *outreach.ReplyError
	switch {
	case errors.As(err, &re):
		p := privguard.NewProblem(http.StatusUnprocessableEntity, TypeValidation, "The request breaks a rule", re.Detail)
		p.Field, p.Errors = re.Field, []privguard.FieldError{{Field: re.Field, Rule: "invalid", Detail: re.Detail}}
		return p
	case err != nil:
		return err
	}
	writeJSON(w, http.StatusOK, map[string]outreach.ReplyResult{"result": res})
	return nil
}

func replyNotAuthentic() *privguard.Problem {
	return privguard.NewProblem(http.StatusUnauthorized, TypeUnauthenticated, "Reply not authentic",
		"sign the body with the gateway's secret (Privguard-Signature: t=...,v1=...), within the tolerance of the clock")
}
