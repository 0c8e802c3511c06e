package outreach

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strings"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
)

// maxUnsubscribeBody bounds the one-click POST body (RFC 8058: "List-Unsubscribe=One-Click").
const maxUnsubscribeBody = 1 << 10

// Unsubscribe opens token and withdraws the marketing consent of the token's subject for
// the token's channel purpose (MKT-04): a record with the subject as actor, the channel and
// template as evidence, and an idempotency key derived from the token, so that a token
// withdraws once. It returns ErrInvalidToken for a token that does not open (forged,
// tampered with, expired, another key) or was used before; the ledger's error
// (wrapping privguard.ErrUnavailable) if it could not record.
func (g *Gate) Unsubscribe(r *http.Request, token string) (Token, error) {
	s, err := newSealer(g.Key)
	if err != nil {
		return Token{}, err
	}
	t, err := s.open(token, g.now(), g.lifetime())
	if err != nil {
		return Token{}, err
	}
	sum := sha256.Sum256([]byte(token))
	ch := consent.ChannelWeb
	if t.Channel == ChannelSMS {
		ch = consent.ChannelSMS
	}
	req := consent.Request{Subject: t.Subject, Purpose: t.Purpose(), Action: consent.ActionWithdraw, Regime: g.Regime,
		Channel: ch, Method: consent.MethodExplicit, ActorType: consent.ActorSubject, Actor: "outreach-unsubscribe",
		Evidence:       consent.Evidence{UIScreen: "outreach/unsubscribe/" + t.Channel + "/" + truncate(t.Template, 128), CollectedBy: "first_party"},
		IdempotencyKey: "outreach-unsubscribe:" + base64.RawURLEncoding.EncodeToString(sum[:18])}
	_, replayed, err := g.Ledger.Append(r.Context(), req)
	switch {
	case err != nil && (errors.Is(err, privguard.ErrInvalid) || errors.Is(err, privguard.ErrConflict)):
		return Token{}, ErrInvalidToken
	case err != nil:
		return Token{}, err
	case replayed:
		return Token{}, ErrInvalidToken
	}
	return t, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// UnsubscribeHandler serves UnsubscribePath+"{token}" without a login: POST (the RFC 8058
// one-click body List-Unsubscribe=One-Click, form-encoded, as a mailbox provider or the
// confirm page sends it) withdraws; GET shows a page with a button that POSTs, and
// changes nothing, since mail scanners follow links. Every token that does not work gets
// the same "invalid link" page with 400. log may be nil.
func (g *Gate) UnsubscribeHandler(log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.URL.Path, UnsubscribePath)
		if !ok || token == "" || strings.Contains(token, "/") {
			page(w, http.StatusBadRequest, pageInvalid, "")
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Referrer-Policy", "no-referrer")
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			s, err := newSealer(g.Key)
			if err != nil {
				page(w, http.StatusServiceUnavailable, pageUnavailable, "")
				return
			}
			if _, err := s.open(token, g.now(), g.lifetime()); err != nil {
				page(w, http.StatusBadRequest, pageInvalid, "")
				return
			}
			page(w, http.StatusOK, pageConfirm, UnsubscribePath+token)
		case http.MethodPost:
			r.Body = http.MaxBytesReader(w, r.Body, maxUnsubscribeBody)
			if err := r.ParseForm(); err != nil || r.PostForm.Get("List-Unsubscribe") != "One-Click" {
				page(w, http.StatusBadRequest, pageInvalid, "")
				return
			}
			_, err := g.Unsubscribe(r, token)
			switch {
			case errors.Is(err, ErrInvalidToken):
				page(w, http.StatusBadRequest, pageInvalid, "")
			case err != nil:
				log.Error("outreach: unsubscribe not recorded", "err", err)
				page(w, http.StatusServiceUnavailable, pageUnavailable, "")
			default:
				page(w, http.StatusOK, pageDone, "")
			}
		default:
			w.Header().Set("Allow", "GET, HEAD, POST")
			page(w, http.StatusMethodNotAllowed, pageInvalid, "")
		}
	})
}

// The pages, each in Chinese and English.
const (
	pageConfirm     = "confirm"
	pageDone        = "done"
	pageInvalid     = "invalid"
	pageUnavailable = "unavailable"
)

var pages = template.Must(template.New("").Parse(`{{define "head"}}<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><meta name="robots" content="noindex"><title>Unsubscribe 退订</title></head><body>{{end}}
{{define "confirm"}}{{template "head"}}<p>退订此类营销消息？ Unsubscribe from these marketing messages?</p><form method="post" action="{{.}}"><input type="hidden" name="List-Unsubscribe" value="One-Click"><button type="submit">退订 Unsubscribe</button></form></body></html>{{end}}
{{define "done"}}{{template "head"}}<p>已退订。 You are unsubscribed.</p></body></html>{{end}}
{{define "invalid"}}{{template "head"}}<p>链接无效。 Invalid link.</p></body></html>{{end}}
{{define "unavailable"}}{{template "head"}}<p>暂时无法处理，请稍后再试。 Please try again later.</p></body></html>{{end}}`))

func page(w http.ResponseWriter, status int, name, action string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; form-action 'self'")
	w.WriteHeader(status)
	pages.ExecuteTemplate(w, name, action)
}
