package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/internal/config"
	"github.com/privguard/privguard/portal"
	"github.com/privguard/privguard/vault"
)

// portalDeps are the parts of serve the privacy centre uses.
type portalDeps struct {
	ledger    *consent.Ledger
	vault     *vault.Vault
	requests  *dsar.Engine
	tokens    *dsar.TokenVerifier
	directory portal.Directory
	profiles  portal.Profiles
}

// newPortal builds the privacy centre of cfg.Portal.
func newPortal(ctx context.Context, cfg *config.File, d portalDeps, log *slog.Logger) (*portal.Portal, error) {
	secret, err := portalSecret(ctx, d.vault)
	if err != nil {
		return nil, err
	}
	zone, err := cfg.Portal.PortalZone()
	if err != nil {
		return nil, err
	}
	pc := portal.Config{Ledger: d.ledger, Requests: d.requests, Tokens: d.tokens, Directory: d.directory, Profiles: d.profiles,
		Choices: portalChoices(cfg, d.ledger.Taxonomy()), Correctable: portalCorrectable(cfg),
		Controller: portal.Controller{Name: cmp.Or(cfg.Controller.Name, cfg.DSAR.Disclosure.Controller.Name),
			Contact: cmp.Or(cfg.Controller.Contact, cfg.DSAR.Disclosure.Controller.Contact),
			DPOName: cfg.Controller.DPO.Name, DPOContact: cfg.Controller.DPO.Contact},
		Regime: privguard.Regime(cmp.Or(cfg.Regime, string(privguard.RegimePIPL))), Zone: zone, Secret: secret,
		CodesPerIdentifier: cfg.Portal.CodesPerIdentifier, CodesPerClient: cfg.Portal.CodesPerClient,
		Logger: log}
	// The proxies the sidecar trusts are the centre's too: behind one, the client whose
	// codes are counted is the one it saw.
	for _, c := range cfg.TrustedProxies {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("config: trusted_proxies: %q is not a CIDR", c)
		}
		pc.TrustedProxies = append(pc.TrustedProxies, p)
	}
	for _, t := range cfg.Portal.Topics {
		pc.Topics = append(pc.Topics, portal.Topic{Name: t.Name, Title: portal.Text(t.Title)})
	}
	if cfg.Portal.SessionTTL != nil {
		pc.SessionTTL = cfg.Portal.SessionTTL.Duration
	}
	if cfg.Portal.RefusalWindow != nil {
		pc.RefusalWindow = cfg.Portal.RefusalWindow.Duration
	}
	return portal.New(pc)
}

// portalSecret is the key the centre's cookies are sealed with, the same on every replica
// and never stored in clear: derived from the vault's blind-index key (wrapped by the KEK).
func portalSecret(ctx context.Context, v *vault.Vault) ([]byte, error) {
	var secret []byte
	for _, part := range []string{"a", "b"} {
		tok, err := v.BlindIndex(ctx, "privguard.portal.session", []byte(part))
		if err != nil {
			return nil, fmt.Errorf("portal: session key: %w", err)
		}
		secret = append(secret, tok...)
	}
	return secret, nil
}

// portalChoices are the configured choices, or every purpose resting on consent under the
// regime: the channel purposes (marketing.communications.<channel>[.<topic>]) in the grid.
func portalChoices(cfg *config.File, tax *privguard.Taxonomy) []portal.Choice {
	var out []portal.Choice
	if len(cfg.Portal.Choices) > 0 {
		for _, c := range cfg.Portal.Choices {
			out = append(out, portal.Choice{Purpose: privguard.Purpose(c.Purpose), Topic: c.Topic, Channel: c.Channel,
				Title: portalText(c.Title, cfg, c.Purpose), Text: portal.Text(c.Text),
				Notice: cmp.Or(c.Notice, cfg.Portal.Notice), Prompt: c.Prompt})
		}
		return out
	}
	regime := privguard.Regime(cmp.Or(cfg.Regime, string(privguard.RegimePIPL)))
	for _, p := range tax.Purposes() {
		info, _ := tax.Lookup(p)
		consentBased := false
		for _, b := range info.Bases[regime] {
			consentBased = consentBased || b == privguard.BasisConsent
		}
		if !consentBased {
			continue
		}
		c := portal.Choice{Purpose: p, Title: portalText(nil, cfg, string(p)), Notice: cfg.Portal.Notice}
		if rest, ok := strings.CutPrefix(string(p), "marketing.communications."); ok {
			channel, topic, _ := strings.Cut(rest, ".")
			c.Channel, c.Topic = channel, cmp.Or(topic, "marketing")
		}
		out = append(out, c)
	}
	return out
}

// portalText is a choice's title: configured, else the declared purpose's description.
func portalText(t config.Text, cfg *config.File, purpose string) portal.Text {
	if len(t) > 0 {
		return portal.Text(t)
	}
	for _, d := range cfg.Purposes {
		if d.Name == purpose && len(d.Description) > 0 {
			return portal.Text(d.Description)
		}
	}
	return nil
}

// portalCorrectable are the categories offered for correction: configured, else name and
// contact details.
func portalCorrectable(cfg *config.File) []portal.Correctable {
	var out []portal.Correctable
	for _, c := range cfg.Portal.Correctable {
		out = append(out, portal.Correctable{Category: privguard.DataCategory(c.Category), Label: portal.Text(c.Label)})
	}
	if len(out) > 0 {
		return out
	}
	defaults := []portal.Correctable{
		{Category: "user.name", Label: portal.Text{"en": "Name", "zh": "姓名"}},
		{Category: "user.contact.email", Label: portal.Text{"en": "Email address", "zh": "电子邮箱"}},
		{Category: "user.contact.phone_number", Label: portal.Text{"en": "Phone number", "zh": "手机号码"}},
		{Category: "user.contact.address", Label: portal.Text{"en": "Postal address", "zh": "通讯地址"}},
	}
	// Only what some store holds (a webhook store decides itself, so it holds anything).
	held := map[privguard.DataCategory]bool{}
	for _, st := range cfg.DSAR.Stores {
		if st.Type == "webhook" {
			return defaults
		}
		for _, t := range st.Tables {
			for _, c := range t.Columns {
				held[privguard.DataCategory(c)] = true
			}
		}
	}
	for _, c := range defaults {
		if held[c.Category] {
			out = append(out, c)
		}
	}
	return out
}

// servePortal serves the privacy centre on its own listener until stop.
func servePortal(addr string, h http.Handler, log *slog.Logger) (stop func(context.Context) error, bound string, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("portal listener: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: readTimeout,
		WriteTimeout: writeTimeout, IdleTimeout: idleTimeout, MaxHeaderBytes: maxHeaderBytes,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() {
		if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
			log.Error("portal stopped", "err", err)
		}
	}()
	return srv.Shutdown, ln.Addr().String(), nil
}

// engineProfiles is the privacy centre's My profile over the request engine: the derived
// items the stores hold, and their deletion as a tag-deletion request.
type engineProfiles struct{ e *dsar.Engine }

func (p engineProfiles) Derived(ctx context.Context, subject privguard.SubjectID) ([]portal.Item, error) {
	items, err := p.e.Profile(ctx, subject)
	if err != nil {
		return nil, err
	}
	out := make([]portal.Item, len(items))
	for i, it := range items {
		out[i] = portal.Item{ID: it.ID, Store: it.Store, Where: it.Where, Category: it.Category, Value: it.Value}
	}
	return out, nil
}

func (p engineProfiles) Delete(ctx context.Context, subject privguard.SubjectID, ids []string, evidence string) (string, error) {
	r, err := p.e.SubmitTagDeletion(ctx, subject, ids, &dsar.Identity{Method: "portal", Note: "privacy centre, signed in with " + evidence})
	return r.ID, err
}
