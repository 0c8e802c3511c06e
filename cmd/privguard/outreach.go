package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/internal/config"
	"github.com/privguard/privguard/outreach"
	"github.com/privguard/privguard/vault"
)

// newOutreachGate is the send gate of the configuration: its unsubscribe links point at
// outreach.public_url (or, unset, at the admin listener, which serves them too) and are
// sealed with a key derived from the vault's blind-index key, the same on every replica.
func newOutreachGate(ctx context.Context, cfg *config.File, ledger *consent.Ledger, v *vault.Vault, log *slog.Logger) (*outreach.Gate, error) {
	key, err := outreachKey(ctx, v)
	if err != nil {
		return nil, err
	}
	public := cfg.Outreach.PublicURL
	if public == "" {
		public = "http://" + cfg.AdminListen
		log.Warn("outreach.public_url is not set: unsubscribe links point at the admin listener, which subjects may not reach", "url", public)
	}
	return &outreach.Gate{Ledger: ledger, Markers: cfg.Outreach.PromoMarkers, PublicURL: public, Key: key,
		Regime: privguard.Regime(cfg.Regime)}, nil
}

// outreachKey is the unsubscribe tokens' sealing key: the blind-index PRF (wrapped by the
// KEK, never stored in clear) of a fixed label, hashed to 32 bytes.
func outreachKey(ctx context.Context, v *vault.Vault) ([]byte, error) {
	h := sha256.New()
	h.Write([]byte("privguard outreach unsubscribe key v1\x00"))
	for _, part := range []string{"a", "b"} {
		tok, err := v.BlindIndex(ctx, "privguard.outreach.unsubscribe", []byte(part))
		if err != nil {
			return nil, fmt.Errorf("outreach: unsubscribe key: %w", err)
		}
		h.Write([]byte(tok))
	}
	return h.Sum(nil), nil
}

// withUnsubscribe serves the one-click unsubscribe route on the privacy centre's listener
// too (the public one), and everything else from next.
func withUnsubscribe(next http.Handler, g *outreach.Gate, log *slog.Logger) http.Handler {
	unsub := g.UnsubscribeHandler(log)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, outreach.UnsubscribePath) {
			unsub.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}
