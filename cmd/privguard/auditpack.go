package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/audit"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/disclosure"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/evidence"
	"github.com/privguard/privguard/incident"
	"github.com/privguard/privguard/internal/adminapi"
	"github.com/privguard/privguard/internal/approval"
	"github.com/privguard/privguard/internal/auditpack"
	"github.com/privguard/privguard/internal/callers"
	"github.com/privguard/privguard/internal/config"
	"github.com/privguard/privguard/internal/ropa"
	"github.com/privguard/privguard/internal/trail"
	"github.com/privguard/privguard/pia"
)

// packLogs are the journal logs whose heads a pack records, beside the consent ledger's.
var packLogs = []string{audit.CheckpointLog, disclosure.Log, pia.Log, incident.Log, incident.TaskLog, approval.Log, callers.Log, trail.Log}

// auditPacker makes the audit packs of GET /v1/audit/pack from what serve enforces: its
// configuration's record, the request store, the disclosure gate, the assessment register,
// the trail and every chain's head, signed with the ledger's receipt key.
func auditPacker(cfg *config.File, be *backend, ledger *consent.Ledger, requests *dsar.Engine, gate *disclosure.Gate, assessments *pia.Registry,
	incidents *incident.Register) adminapi.AuditPacker {
	return func(ctx context.Context, period auditpack.Period, w io.Writer) error {
		regimes := []privguard.Regime{privguard.Regime(cfg.Regime)}
		if cfg.Regime == "" {
			regimes = []privguard.Regime{privguard.RegimePIPL}
		}
		_, err := auditpack.Write(ctx, auditpack.Config{
			Period: period, Signer: ledger, Controller: controllerName(cfg),
			Heads: func(ctx context.Context) ([]auditpack.Head, error) { return chainHeads(ctx, be) },
			Sections: []auditpack.Section{
				auditpack.RecordSection{Build: func() (*ropa.Record, error) {
					return ropa.Build(cfg, ropa.Options{Now: func() time.Time { return period.To }})
				}},
				auditpack.RequestsSection{Each: requests.Each},
				auditpack.DisclosuresSection{Store: be.Journal, Accounting: gate.Accounting, Regimes: regimes},
				auditpack.AssessmentsSection{Register: assessments.Register},
				auditpack.TrailSection{Store: be.Journal},
				auditpack.ConsentSection{Count: func(ctx context.Context, from, to time.Time) (evidence.Counts, error) {
					return evidence.CountPeriod(ctx, ledger, from, to)
				}},
				auditpack.DecisionsSection{Path: filepath.Join(cfg.Data, decisionLogFile)},
				auditpack.IncidentsSection{Register: incidents},
			},
		}, w)
		return err
	}
}

// chainHeads are the heads of the consent ledger and of packLogs.
func chainHeads(ctx context.Context, be *backend) ([]auditpack.Head, error) {
	seq, hash, err := be.Consent.Head(ctx)
	if err != nil {
		return nil, err
	}
	heads := []auditpack.Head{{Log: "consent", Seq: seq, Hash: hex.EncodeToString(hash)}}
	for _, log := range packLogs {
		h, err := be.Journal.JournalHead(ctx, log)
		if err != nil {
			return nil, err
		}
		heads = append(heads, auditpack.Head{Log: log, Seq: h.Seq, Hash: h.Hash})
	}
	return heads, nil
}

// controllerName is the handler the configuration names, for the report.
func controllerName(cfg *config.File) string {
	if cfg.Controller.Name != "" {
		return cfg.Controller.Name
	}
	return cfg.DSAR.Disclosure.Controller.Name
}

// auditFlags are the flags of 'privguard audit pack'.
type auditFlags struct {
	admin, data, tokenFile *string
	from, to, out          *string
}

func newAuditFlags(fs *flag.FlagSet, sub string) auditFlags {
	f := auditFlags{}
	switch sub {
	case "pack":
		f.admin = fs.String("admin", "http://"+config.DefaultAdminListen, "admin API `URL` of the running serve")
		f.data = fs.String("data", config.DefaultDataDir, "data `directory` holding admin.token")
		f.tokenFile = fs.String("token-file", "", "`file` holding an auditor's or the DPO's token (default DIR/admin.token; $PRIVGUARD_ADMIN_TOKEN wins)")
		f.from = fs.String("from", "", "start of the period, included: a `date` (2026-01-01) or an RFC 3339 time")
		f.to = fs.String("to", "", "end of the period, excluded: a `date` (2027-01-01 for the year 2026) or an RFC 3339 time")
		f.out = fs.String("out", "", "the pack's `file` (written whole or not at all, mode 0600)")
	}
	return f
}

// auditCmd runs 'privguard audit pack'.
func auditCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	sub := args[0]
	name := "audit " + sub
	fs := newFlagSet(name)
	f := newAuditFlags(fs, sub)
	positional, code, ok := parseFlags(fs, name, args[1:], stdout, stderr)
	if !ok {
		return code
	}
	if len(positional) > 0 {
		return usageError(stderr, name, fmt.Sprintf("unexpected argument %q", positional[0]))
	}
	if *f.from == "" || *f.to == "" || *f.out == "" {
		return usageError(stderr, name, "--from, --to and --out are required")
	}
	token, err := loadAdminToken(getenv, *f.data, *f.tokenFile)
	if err != nil {
		fmt.Fprintf(stderr, "privguard: %v\n", err)
		return 2
	}
	u := strings.TrimSuffix(*f.admin, "/") + "/v1/audit/pack?" + url.Values{"from": {*f.from}, "to": {*f.to}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return usageError(stderr, name, "--admin: "+err.Error())
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "privguard: no privguard serve answers at %s (%v): start it, or point --admin at it\n", *f.admin, err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var p struct{ Title, Detail string }
		json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&p)
		fmt.Fprintf(stderr, "privguard: audit pack: %s: %s %s\n", resp.Status, p.Title, p.Detail)
		return 1
	}
	n, err := writeRecordFile(*f.out, func(w io.Writer) error { _, err := io.Copy(w, resp.Body); return err })
	if err != nil {
		fmt.Fprintf(stderr, "privguard: audit pack: %v (nothing was written)\n", err)
		return 1
	}
	m, err := verifyPackFile(*f.out, nil)
	if err != nil {
		fmt.Fprintf(stderr, "privguard: audit pack: the pack written does not verify: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s (%d bytes, %d members): %s to %s, signed by %s\n", *f.out, n, len(m.Members),
		m.Period.From.Format(time.RFC3339), m.Period.To.Format(time.RFC3339), m.Key.KeyID)
	return 0
}

// writePackReport prints what a verified pack holds.
func writePackReport(w io.Writer, m *auditpack.Manifest, pinned bool, took time.Duration) {
	fmt.Fprintf(w, "OK: audit pack of %s to %s as of %s, %d members, signed by %s (%s)\n",
		m.Period.From.Format(time.RFC3339), m.Period.To.Format(time.RFC3339), m.AsOf.Format(time.RFC3339), len(m.Members), m.Key.KeyID,
		took.Round(time.Millisecond))
	if !pinned {
		fmt.Fprintln(w, "  the signature was checked with the key the pack names: give --key with the controller's published key (GET /v1/receipts/keys) to check whose it is")
	}
	for _, h := range m.Heads {
		fmt.Fprintf(w, "  head %-15s %9d %s\n", h.Log, h.Seq, h.Hash)
	}
}

// verifyPackFile verifies the pack at path.
func verifyPackFile(path string, pin ed25519.PublicKey) (*auditpack.Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return auditpack.Open(f, st.Size(), pin)
}
