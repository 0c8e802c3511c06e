package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/disclosure"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/internal/config"
	"github.com/privguard/privguard/internal/metrics"
)

// disclosureGate builds the egress gate from the recipients of cfg: their countries and
// transfer mechanisms, the counting key kept in the store, this year's counts read back.
func disclosureGate(ctx context.Context, cfg *config.File, be *backend, reg prometheus.Registerer, log *slog.Logger) (*disclosure.Gate, error) {
	key, err := be.Consent.Secret(ctx, "disclosure.people-hmac", func() ([]byte, error) {
		k := make([]byte, 32)
		_, err := rand.Read(k)
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("cross-border counting key: %w", err)
	}
	rcs, warnings := gateRecipients(cfg)
	for _, w := range warnings {
		log.Warn(w)
	}
	g, err := disclosure.New(disclosure.Config{Log: be.Journal, Sets: be.Journal, Key: key, Recipients: rcs, Logger: log})
	if err != nil {
		return nil, err
	}
	if err := g.Load(ctx); err != nil {
		g.Close()
		return nil, err
	}
	if reg != nil {
		if err := errors.Join(
			metrics.Gauge(reg, "privguard_crossborder_people", "People whose personal data left the PRC this calendar year (China Standard Time), as counted by this replica's last transfer or start.",
				func() float64 { n, _ := g.Counts(); return float64(n) }),
			metrics.Gauge(reg, "privguard_crossborder_sensitive_people", "People whose sensitive personal data left the PRC this calendar year.",
				func() float64 { _, n := g.Counts(); return float64(n) }),
		); err != nil {
			g.Close()
			return nil, err
		}
	}
	return g, nil
}

// gateRecipients maps the configured recipients to the gate's, with a warning for each
// transfer that will be refused and each route recipient nobody declared.
func gateRecipients(cfg *config.File) ([]disclosure.Recipient, []string) {
	var out []disclosure.Recipient
	var warnings []string
	declared := map[string]bool{}
	regime := privguard.Regime(cfg.Regime)
	for _, rc := range cfg.DSAR.Recipients {
		declared[rc.Name] = true
		r := disclosure.Recipient{Name: rc.Name, Country: rc.Country, Role: rc.Role}
		if t := rc.Transfer; t != nil {
			x := disclosure.Transfer{Mechanism: disclosure.Mechanism(t.Mechanism), Ref: t.Ref}
			if t.Date != nil {
				x.Date = t.Date.Time
			}
			if t.Expires != nil {
				x.Expires = t.Expires.Time
			}
			r.Transfers = append(r.Transfers, x)
		}
		if disclosure.Abroad(regime, rc.Country) && (rc.Transfer == nil || disclosure.Mechanism(rc.Transfer.Mechanism).Regime() != regime) {
			warnings = append(warnings, fmt.Sprintf("dsar.recipients[%s]: in %s, abroad under %s, with no %s transfer mechanism: every provision to it will be refused (transfer.no_mechanism)",
				rc.Name, rc.Country, regime, regime))
		}
		out = append(out, r)
	}
	for i, rt := range cfg.Routes {
		if rt.Recipient != "" && !declared[rt.Recipient] {
			warnings = append(warnings, fmt.Sprintf("routes[%d]: recipient %q is not in dsar.recipients: with no declared country it counts as abroad, so every provision to it will be refused (transfer.no_mechanism); declare it", i, rt.Recipient))
			declared[rt.Recipient] = true
		}
	}
	return out, warnings
}

// loggedNotifier logs each notice to a recipient in the disclosure log before sending it.
type loggedNotifier struct {
	dsar.RecipientNotifier
	gate *disclosure.Gate
}

func (n loggedNotifier) NotifyRecipient(ctx context.Context, x dsar.RecipientNotice) error {
	if err := n.gate.Record(ctx, privguard.Provision{Kind: "notice", Route: x.Event, Recipient: n.Name(), Regime: x.Regime,
		Categories: x.Categories, Subjects: []privguard.SubjectID{x.Subject}, Decision: x.Request}); err != nil {
		return err
	}
	return n.RecipientNotifier.NotifyRecipient(ctx, x)
}
