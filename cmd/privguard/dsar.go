package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/connector/mysql"
	"github.com/privguard/privguard/connector/postgres"
	"github.com/privguard/privguard/connector/redis"
	"github.com/privguard/privguard/connector/webhook"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/disclosure"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/identity"
	"github.com/privguard/privguard/incident"
	"github.com/privguard/privguard/internal/config"
	"github.com/privguard/privguard/internal/ropa"
	"github.com/privguard/privguard/retention"
	"github.com/privguard/privguard/vault"
)

// dsarStepInterval is how often serve runs due request tasks.
const dsarStepInterval = 2 * time.Second

// dataMapCheckTimeout bounds the start-up check of each SQL store's data map.
const dataMapCheckTimeout = 5 * time.Second

// connectors builds the data map's connectors; close releases them.
func connectors(ctx context.Context, stores []config.Store, log *slog.Logger) (out []dsar.Connector, close func(), err error) {
	var closers []func()
	close = func() {
		for _, c := range closers {
			c()
		}
	}
	for _, s := range stores {
		switch s.Type {
		case "postgres", "mysql":
			var c dsar.Connector
			tables := tableMaps(s)
			var check func(context.Context) error
			if s.Type == "postgres" {
				pc, err := postgres.New(ctx, postgres.Config{Name: s.Name, DSN: s.DSN, Tables: tables, Logger: log})
				if err != nil {
					close()
					return nil, nil, err
				}
				closers, c, check = append(closers, pc.Close), pc, pc.CheckMap
			} else {
				mc, err := mysql.New(ctx, mysql.Config{Name: s.Name, DSN: s.DSN, Tables: tables, Logger: log})
				if err != nil {
					close()
					return nil, nil, err
				}
				closers, c, check = append(closers, func() { mc.Close() }), mc, mc.CheckMap
			}
			// A table or column the store does not have would fail every request: refuse to
			// start. A store that cannot be asked now is retried by the tasks.
			cctx, cancel := context.WithTimeout(ctx, dataMapCheckTimeout)
			err := check(cctx)
			cancel()
			var me *dsar.MapError
			if errors.As(err, &me) {
				close()
				return nil, nil, fmt.Errorf("config: %w", err)
			}
			if err != nil {
				log.Warn("dsar store data map not checked: the store did not answer", "store", s.Name, "kind", string(dsar.KindOf(err)))
			}
			out = append(out, c)
		case "webhook":
			wc, err := newWebhook(s.Name, s.Webhook)
			if err != nil {
				close()
				return nil, nil, err
			}
			out = append(out, wc)
		case "redis":
			dated := make([]redis.DatedKey, len(s.DatedKeys))
			for i, k := range s.DatedKeys {
				dated[i] = redis.DatedKey{Key: k.Key, Categories: dataCategories(k.Categories), DatedBy: k.DatedBy}
			}
			rc, err := redis.New(redis.Config{Name: s.Name, Addr: s.Addr, Keys: s.Keys, SetMembers: s.SetMembers, DatedKeys: dated})
			if err != nil {
				close()
				return nil, nil, err
			}
			closers = append(closers, func() { rc.Close() })
			out = append(out, rc)
		default:
			close()
			return nil, nil, fmt.Errorf("config: dsar store %s: type %q", s.Name, s.Type)
		}
	}
	return out, close, nil
}

// newWebhook builds a webhook store or recipient from its configuration.
func newWebhook(name string, cfg *config.Webhook) (*webhook.Connector, error) {
	secret, err := os.ReadFile(cfg.SecretFile)
	if err != nil {
		return nil, fmt.Errorf("webhook %s: secret: %w", name, err)
	}
	return webhook.New(webhook.Config{Name: name, URL: cfg.URL, Secret: bytes.TrimSpace(secret)})
}

// recipients builds the notifiers of the recipients that have a webhook.
func recipients(cfg []config.Recipient) ([]dsar.RecipientNotifier, error) {
	var out []dsar.RecipientNotifier
	for _, r := range cfg {
		if r.Webhook == nil {
			continue
		}
		w, err := newWebhook(r.Name, r.Webhook)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, nil
}

func categories(m map[string]string) map[string]privguard.DataCategory {
	out := make(map[string]privguard.DataCategory, len(m))
	for k, v := range m {
		out[k] = privguard.DataCategory(v)
	}
	return out
}

// newDSAR builds the request engine: erasure removes the subject's identity links, shreds
// its vault keys and records the erasure (and so the withdrawal of every purpose) in the
// consent ledger; restriction and objection are recorded in the ledger.
func newDSAR(cfg *config.File, store requestStore, conns []dsar.Connector, ledger *consent.Ledger, vlt *vault.Vault,
	tax *privguard.Taxonomy, notifier dsar.Notifier, ids *identity.Registry, gate *disclosure.Gate, decisionKey func(context.Context) ([]byte, error), log *slog.Logger) (*dsar.Engine, error) {
	if decisionKey == nil {
		decisionKey = func(context.Context) ([]byte, error) { return nil, errNoDecisionLog }
	}
	dl, err := dsar.NewDeadlines(nil, cfg.DSAR.PIPLWorkdays)
	if err != nil {
		return nil, err
	}
	record := func(ctx context.Context, subject privguard.SubjectID, a consent.Action) error {
		_, _, err := ledger.Append(ctx, consent.Request{Subject: subject, Action: a, Actor: "privguard:dsar", ActorType: consent.ActorSystem})
		return err
	}
	recourse := map[privguard.Regime]string{}
	for regime, text := range cfg.DSAR.Recourse {
		recourse[privguard.Regime(regime)] = text
	}
	notify, err := recipients(cfg.DSAR.Recipients)
	if err != nil {
		return nil, err
	}
	if gate != nil {
		for i, n := range notify {
			notify[i] = loggedNotifier{RecipientNotifier: n, gate: gate} // each notice is a provision
		}
	}
	var ttl, leaseTTL time.Duration
	if cfg.DSAR.ResultTTL != nil {
		ttl = cfg.DSAR.ResultTTL.Duration
	}
	if cfg.DSAR.LeaseTTL != nil {
		if leaseTTL = cfg.DSAR.LeaseTTL.Duration; leaseTTL < time.Second {
			return nil, fmt.Errorf("config: dsar.lease_ttl %v is shorter than 1s", leaseTTL)
		}
	}
	rules := cfg.RetentionRules()
	return dsar.New(dsar.Config{Store: store, Replica: cfg.Replica, LeaseTTL: leaseTTL, LeaseBatch: cfg.DSAR.LeaseBatch, Connectors: conns, Deadlines: dl, Logger: log, Recourse: recourse,
		Sealer: vlt, Notifier: notifier, Recipients: notify, DefaultRegime: privguard.Regime(cfg.Regime), ResultTTL: ttl, Disclose: discloser(cfg, tax, ledger),
		SweepBatch: cfg.RetentionSweep.BatchRows(), SweepPause: cfg.RetentionSweep.PauseFor(),
		RetentionOf: func(c privguard.DataCategory) []string { return retention.Describe(rules, c) },
		Explain:     explainer(cfg, tax, filepath.Join(cfg.Data, decisionLogFile), decisionKey, time.Now),
		OnErased: func(ctx context.Context, s privguard.SubjectID) error {
			// The identity links go with the subject (the suppression entry the erasure
			// records in the ledger stays); the sealed addresses are shredded with the keys.
			if _, err := ids.EraseSubject(ctx, s); err != nil {
				return err
			}
			if err := vlt.Shred(ctx, s); err != nil {
				return err
			}
			return record(ctx, s, consent.ActionErase)
		},
		OnErasedAll: func(ctx context.Context, subjects []privguard.SubjectID) error {
			for _, s := range subjects {
				if _, err := ids.EraseSubject(ctx, s); err != nil {
					return err
				}
			}
			if err := vlt.ShredAll(ctx, subjects); err != nil {
				return err
			}
			// The ledger's writer commits what is queued together: appended side by side,
			// the erasures share a few commits instead of one each.
			var wg sync.WaitGroup
			var mu sync.Mutex
			var first error
			sem := make(chan struct{}, 256)
			for _, s := range subjects {
				sem <- struct{}{}
				wg.Go(func() {
					defer func() { <-sem }()
					if err := record(ctx, s, consent.ActionErase); err != nil {
						mu.Lock()
						first = cmp.Or(first, err)
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			return first
		},
		OnSubjectFact: func(ctx context.Context, r dsar.Request) error {
			switch r.Type {
			case dsar.TypeRestriction:
				return record(ctx, r.Subject, consent.ActionRestrict)
			case dsar.TypeObjection:
				return record(ctx, r.Subject, consent.ActionObject)
			}
			return errors.New("not a subject fact")
		}})
}

// identityVerification builds the token verifier (if a secret is configured) and the
// notifier of data-subject requests and incident notices: to the subject's verified phone
// or email (identity.Notifier), through the outbox at dsar.outbox (default
// <data>/outbox.jsonl).
func identityVerification(cfg *config.File, ids *identity.Registry) (*dsar.TokenVerifier, dsar.Notifier, error) {
	n := subjectNotifier{identity.Notifier{Registry: ids}}
	if cfg.DSAR.IdentityTokenSecretFile == "" {
		return nil, n, nil
	}
	secret, err := os.ReadFile(cfg.DSAR.IdentityTokenSecretFile)
	if err != nil {
		return nil, nil, fmt.Errorf("dsar identity token secret: %w", err)
	}
	v, err := dsar.NewTokenVerifier(nil, bytes.TrimSpace(secret))
	if err != nil {
		return nil, nil, err
	}
	return v, n, nil
}

// outboxPath is where the built-in sender appends messages: dsar.outbox, else
// <data>/outbox.jsonl.
func outboxPath(cfg *config.File) string {
	if cfg.DSAR.Outbox != "" {
		return cfg.DSAR.Outbox
	}
	return filepath.Join(cfg.Data, "outbox.jsonl")
}

// openIdentities is the registry of the subjects' identity links on the backend's store,
// sending through the outbox.
func openIdentities(cfg *config.File, be *backend, vlt *vault.Vault) (*identity.Registry, error) {
	return identity.New(identity.Config{Store: be.Identity, Vault: vlt, Sender: &identity.Outbox{Path: outboxPath(cfg)}})
}

// subjectNotifier is identity.Notifier for the request engine and the incident register:
// a subject without a verified phone or email is unreachable for the register (its
// notice waits while the others go).
type subjectNotifier struct{ identity.Notifier }

var (
	_ dsar.LinkNotifier = subjectNotifier{}
	_ dsar.Reacher      = subjectNotifier{}
	_ incident.Notifier = subjectNotifier{}
)

// SendIncidentNotice implements incident.Notifier.
func (n subjectNotifier) SendIncidentNotice(ctx context.Context, subject privguard.SubjectID, incidentID, text string) error {
	err := n.Notifier.SendIncidentNotice(ctx, subject, incidentID, text)
	if errors.Is(err, identity.ErrNoAddress) {
		return fmt.Errorf("%w: %w", err, incident.ErrUnreachable)
	}
	return err
}

// discloser builds the metadata of access answers: the configured controller, retention,
// sources and rights (added to the statutory text by the engine); every purpose the regime
// allows with its bases and, for consent, the ledger's state for the subject; the
// recipients; the consent history; the purposes' and categories' names in Chinese and
// English for README.txt.
func discloser(file *config.File, tax *privguard.Taxonomy, ledger *consent.Ledger) func(context.Context, dsar.Request) (dsar.Disclosure, error) {
	cfg := file.DSAR
	fixed := cfg.Disclosure
	texts := readerTexts(file)
	return func(ctx context.Context, r dsar.Request) (dsar.Disclosure, error) {
		d := dsar.Disclosure{
			Controller:         dsar.Party{Name: fixed.Controller.Name, Contact: fixed.Controller.Contact},
			Retention:          fixed.Retention,
			Sources:            fixed.Sources,
			AutomatedDecisions: fixed.AutomatedDecisions,
			Rights:             fixed.Rights,
			Texts:              texts,
		}
		for _, p := range tax.Purposes() {
			info, _ := tax.Lookup(p)
			bases := info.Bases[r.Regime]
			if len(bases) == 0 {
				continue
			}
			use := dsar.PurposeUse{Purpose: p, Description: info.Description, Bases: bases}
			if slices.Contains(bases, privguard.BasisConsent) {
				st, err := ledger.Check(ctx, r.Subject, p)
				if err != nil {
					return dsar.Disclosure{}, err
				}
				if info.NeedsConsent(r.Regime) && st.State == consent.StateUnknown {
					continue // consent is the only basis and the subject never gave or refused it: not processed
				}
				use.Consent = st.State.String()
			}
			d.Purposes = append(d.Purposes, use)
		}
		for _, rc := range cfg.Recipients {
			x := dsar.Recipient{Name: rc.Name, Country: rc.Country}
			for _, p := range rc.Purposes {
				x.Purposes = append(x.Purposes, privguard.Purpose(p))
			}
			for _, c := range rc.Categories {
				x.Categories = append(x.Categories, privguard.DataCategory(c))
			}
			d.Recipients = append(d.Recipients, x)
		}
		history, err := ledger.History(ctx, r.Subject)
		if err != nil {
			return dsar.Disclosure{}, err
		}
		for _, rec := range history {
			ev := dsar.ConsentEvent{Time: rec.Time, Action: string(rec.Action), Purpose: rec.Purpose, Channel: string(rec.Channel), Record: rec.ID}
			if rec.Notice != nil {
				ev.Notice = fmt.Sprintf("%s@v%d", rec.Notice.ID, rec.Notice.Version)
			}
			if rec.Recipient != nil && !slices.ContainsFunc(d.Recipients, func(x dsar.Recipient) bool { return x.Name == rec.Recipient.Name }) {
				// A recipient the subject consented to sharing with is named too (PIPL Art. 23).
				d.Recipients = append(d.Recipients, dsar.Recipient{Name: rec.Recipient.Name, Purposes: []privguard.Purpose{rec.Purpose}})
			}
			d.ConsentHistory = append(d.ConsentHistory, ev)
		}
		return d, nil
	}
}

// readerTexts names the purposes and the declared data categories per language ("en",
// "zh"): the configured descriptions, and the built-in purposes' Chinese ones. English
// descriptions of built-in purposes come with the purposes themselves.
func readerTexts(file *config.File) map[string]map[string]string {
	out := map[string]map[string]string{}
	set := func(name, lang, text string) {
		if text == "" {
			return
		}
		if out[name] == nil {
			out[name] = map[string]string{}
		}
		out[name][lang] = text
	}
	for _, p := range privguard.DefaultPurposes() {
		set(string(p.Purpose), "zh", ropa.PurposeZH(string(p.Purpose)))
	}
	for _, p := range file.Purposes {
		for lang, text := range p.Description {
			set(p.Name, lang, text)
		}
	}
	for _, c := range file.Categories {
		for lang, text := range c.Description {
			set(c.Name, lang, text)
		}
	}
	return out
}

func dataCategories(names []string) []privguard.DataCategory {
	out := make([]privguard.DataCategory, len(names))
	for i, n := range names {
		out[i] = privguard.DataCategory(n)
	}
	return out
}

// tableMaps is a SQL store's data map.
func tableMaps(s config.Store) []dsar.TableMap {
	tables := make([]dsar.TableMap, len(s.Tables))
	for i, t := range s.Tables {
		tables[i] = dsar.TableMap{Table: t.Table, SubjectColumn: t.SubjectColumn, Columns: categories(t.Columns), Erase: dsar.EraseMode(t.Erase),
			DatedBy: t.DatedBy, LastActiveBy: t.LastActiveBy}
	}
	return tables
}
