package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/internal/config"
	"github.com/privguard/privguard/journal"
	"github.com/privguard/privguard/pgstore"
	"github.com/privguard/privguard/pia"
	"github.com/privguard/privguard/policy"
)

// assessmentsOf returns the configuration's impact assessments as the register keeps them.
func assessmentsOf(cfg *config.File) []pia.Assessment {
	out := make([]pia.Assessment, 0, len(cfg.Assessments))
	for _, a := range cfg.Assessments {
		x := pia.Assessment{ID: a.ID, Title: a.Title, Recipients: slices.Clone(a.Recipients), Date: a.Date.String(), Review: a.Review.String(),
			Conclusion: a.Conclusion, Legitimacy: a.Legitimacy, Impact: a.Impact, Measures: a.Measures, Assessor: a.Assessor}
		for _, p := range a.Purposes {
			x.Purposes = append(x.Purposes, privguard.Purpose(p))
		}
		for _, c := range a.Categories {
			x.Categories = append(x.Categories, privguard.DataCategory(c))
		}
		out = append(out, x)
	}
	return out
}

// policyAssessments returns the configuration's impact assessments as the policy sees them.
func policyAssessments(cfg *config.File) []policy.Assessment {
	out := make([]policy.Assessment, 0, len(cfg.Assessments))
	for _, a := range assessmentsOf(cfg) {
		date, _ := time.Parse(time.DateOnly, a.Date) // config.Date made them
		review, _ := time.Parse(time.DateOnly, a.Review)
		out = append(out, policy.Assessment{ID: a.ID, Purposes: a.Purposes, Categories: a.Categories, Recipients: a.Recipients,
			Date: date, Review: review, Conclusion: a.Conclusion})
	}
	return out
}

// policyRecipients returns the declared recipients (dsar.recipients) with their countries,
// for the policy to tell a transfer abroad. A route's recipient not declared there has no
// known country, which the default policy counts as abroad.
func policyRecipients(cfg *config.File) []policy.Recipient {
	var out []policy.Recipient
	for _, r := range cfg.DSAR.Recipients {
		out = append(out, policy.Recipient{Name: r.Name, Country: r.Country, Role: cmp.Or(r.Role, "processor")})
	}
	return out
}

// newRegistry returns the register of cfg's assessments on store.
func newRegistry(cfg *config.File, store journal.Store) (*pia.Registry, error) {
	return pia.New(pia.Config{Store: store, Assessments: assessmentsOf(cfg), Location: cfg.DateZone(), Replica: cfg.Replica})
}

// recordAssessments records the assessments serve enforces (new or changed versions,
// removals) and warns about those that no longer cover processing or soon will not.
func recordAssessments(ctx context.Context, reg *pia.Registry, log *slog.Logger) error {
	changes, err := reg.Record(ctx)
	if err != nil {
		return fmt.Errorf("impact assessments: %w (privguard pia list shows the register)", err)
	}
	for _, c := range changes {
		log.Info("impact assessment recorded in the register", "id", c.ID, "action", c.Action, "version", c.Version[:12], "seq", c.Seq)
	}
	r, err := reg.Register(ctx)
	if err != nil {
		return fmt.Errorf("impact assessments: %w", err)
	}
	for _, e := range r.Assessments {
		if !e.Configured {
			continue
		}
		switch e.Status {
		case pia.Expired:
			log.Warn("impact assessment past its review date: the processing it covered is denied (pia.expired) until it is reviewed", "id", e.ID, "review", e.Review)
		case pia.DueForReview:
			log.Warn("impact assessment due for review", "id", e.ID, "review", e.Review)
		case pia.Pending:
			log.Info("impact assessment not in force yet", "id", e.ID, "date", e.Date)
		}
	}
	return nil
}

// piaFlags are the flags of the pia commands.
type piaFlags struct {
	config, data, format, status, out *string
}

func newPIAFlags(fs *flag.FlagSet, sub string) piaFlags {
	f := piaFlags{config: fs.String("config", "", "the configuration `file` (its assessments, and its store: data or store.postgres)"),
		data: fs.String("data", "", "data `directory` of the embedded store (default: the file's data)")}
	if sub == "list" {
		f.format = fs.String("format", "table", "`format`: table, json or csv")
		f.status = fs.String("status", "", "only these `statuses`, comma-separated: current, due_for_review, expired, rejected, pending, superseded, removed")
		f.out = fs.String("out", "", "write to `FILE` (mode 0600, replaced whole) instead of stdout")
	}
	return f
}

// piaCmd runs 'privguard pia list' and 'privguard pia record'.
func piaCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	sub, name := args[0], "pia "+args[0]
	fs := newFlagSet(name)
	f := newPIAFlags(fs, sub)
	positional, code, ok := parseFlags(fs, name, args[1:], stdout, stderr)
	if !ok {
		return code
	}
	if len(positional) > 0 {
		return usageError(stderr, name, fmt.Sprintf("unexpected argument %q", positional[0]))
	}
	var statuses []pia.Status
	if sub == "list" {
		if !slices.Contains([]string{"table", "json", "csv"}, *f.format) {
			return usageError(stderr, name, fmt.Sprintf("--format %q: want table, json or csv", *f.format))
		}
		for s := range strings.SplitSeq(*f.status, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			st, err := pia.ParseStatus(s)
			if err != nil {
				return usageError(stderr, name, "--status: "+strings.TrimPrefix(err.Error(), "pia: "))
			}
			statuses = append(statuses, st)
		}
	}
	cfg := &config.File{Data: config.DefaultDataDir, Regime: "pipl"}
	if *f.config != "" {
		var err error
		if cfg, err = config.Load(*f.config); err != nil {
			fmt.Fprintf(stderr, "privguard: %v\n", err)
			return 2
		}
		if _, err := cfg.Taxonomy(); err != nil {
			fmt.Fprintf(stderr, "privguard: %v\n", err)
			return 2
		}
	}
	if *f.data != "" {
		cfg.Data = *f.data
	}
	store, closeStore, err := openJournal(ctx, cfg, name, sub == "list")
	if err != nil {
		fmt.Fprintf(stderr, "privguard: %v\n", err)
		return 2
	}
	defer closeStore()
	reg, err := newRegistry(cfg, store)
	if err != nil {
		fmt.Fprintf(stderr, "privguard: %v\n", err)
		return 2
	}
	if sub == "record" {
		changes, err := reg.Record(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "privguard: %v\n", err)
			return 2
		}
		for _, c := range changes {
			fmt.Fprintf(stdout, "%s\t%s\t%s\tseq %d\n", c.Action, c.ID, c.Version[:12], c.Seq)
		}
		fmt.Fprintf(stdout, "%d recorded\n", len(changes))
		return 0
	}
	r, err := reg.Register(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "privguard: %v\n", err)
		return 2
	}
	r.Filter(statuses...)
	write := func(w io.Writer) error {
		switch *f.format {
		case "json":
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(r)
		case "csv":
			return pia.WriteCSV(w, r)
		}
		return writeRegisterTable(w, r)
	}
	if *f.out != "" {
		err = writeRegisterFile(*f.out, write)
	} else {
		err = write(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "privguard: %v\n", err)
		return 2
	}
	if !r.Log.Verified {
		fmt.Fprintf(stderr, "FAIL: the register's log does not verify: %s\n", r.Log.Break)
		return 1
	}
	return 0
}

// openJournal opens the store cfg names for the journal: the PostgreSQL store, read while
// its replicas run, or the data file, read-only for readOnly (serve holds it otherwise).
func openJournal(ctx context.Context, cfg *config.File, cmd string, readOnly bool) (journal.Store, func(), error) {
	j, _, closeStore, err := openStores(ctx, cfg, cmd, readOnly)
	return j, closeStore, err
}

// openStores is openJournal with the consent store beside the journal (its secrets: the
// decision log's subject key).
func openStores(ctx context.Context, cfg *config.File, cmd string, readOnly bool) (journal.Store, consent.Store, func(), error) {
	if pg := cfg.Store.Postgres; pg != nil {
		dsn, err := postgresDSN(pg)
		if err != nil {
			return nil, nil, nil, err
		}
		db, err := pgstore.Open(ctx, dsn, pgstore.Options{Schema: pg.Schema})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("store.postgres: %w", err)
		}
		return db.Journal(), db.Consent(), func() { db.Close() }, nil
	}
	db, err := openDataFile(cfg.Data, cmd, readOnly, boltstore.Options{ReadOnly: readOnly, LockTimeout: 5 * time.Second})
	if err != nil {
		return nil, nil, nil, err
	}
	return db.Journal(), db.Consent(), func() { db.Close() }, nil
}

// writeRegisterTable writes the register for a terminal.
func writeRegisterTable(w io.Writer, r *pia.Register) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tVERSION\tSTATUS\tCONFIGURED\tDATE\tREVIEW\tCONCLUSION\tRECORDED\tTITLE")
	for _, e := range r.Assessments {
		recorded, configured := "not yet", "no"
		if e.RecordedAt != nil {
			recorded = e.RecordedAt.UTC().Format(time.DateOnly)
		}
		if e.Configured {
			configured = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.Version[:12], e.Status, configured, e.Date, e.Review,
			e.Conclusion, recorded, printable(e.Title))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	state := "verified"
	if !r.Log.Verified {
		state = "DOES NOT VERIFY: " + r.Log.Break
	}
	_, err := fmt.Fprintf(w, "\n%d versions on %s; log %s: %d entries, head %s, %s\n", len(r.Assessments), r.Today, r.Log.Name,
		r.Log.Entries, cmp.Or(r.Log.Head, "(empty)"), state)
	return err
}

// printable replaces control characters (a title is the operator's text, but a terminal
// runs escape sequences).
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// writeRegisterFile writes path whole or not at all (writeRecordFile), so that an
// interrupted export leaves no file that looks complete.
func writeRegisterFile(path string, write func(io.Writer) error) error {
	_, err := writeRecordFile(path, write)
	return err
}
