package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"

	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/identity"
	"github.com/privguard/privguard/internal/config"
	"github.com/privguard/privguard/outreach"
)

// newInbox builds the inbox of SMS replies from outreach.gateways (each gateway's secret
// read from its secret_file) and outreach.stop_words; nil when no gateway is configured,
// which leaves POST /v1/outreach/replies/{gateway} out.
func newInbox(cfg config.Outreach, ledger *consent.Ledger, identities *identity.Registry, log *slog.Logger) (*outreach.Inbox, error) {
	if len(cfg.Gateways) == 0 {
		return nil, nil
	}
	secrets := make(map[string][]byte, len(cfg.Gateways))
	for i, g := range cfg.Gateways {
		if _, dup := secrets[g.Name]; dup {
			return nil, fmt.Errorf("config: outreach.gateways[%d]: the name %s is taken", i, g.Name)
		}
		secret, err := os.ReadFile(g.SecretFile)
		if err != nil {
			return nil, fmt.Errorf("config: outreach.gateways[%d] (%s): secret_file: %w", i, g.Name, err)
		}
		secrets[g.Name] = bytes.TrimSpace(secret)
	}
	in, err := outreach.NewInbox(outreach.InboxConfig{Ledger: ledger, Identities: identities, Gateways: secrets,
		StopWords: cfg.StopWords, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("config: outreach: %w", err)
	}
	return in, nil
}
