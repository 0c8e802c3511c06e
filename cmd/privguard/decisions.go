package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/audit"
	"github.com/privguard/privguard/internal/adminapi"
	"github.com/privguard/privguard/internal/config"
)

// decisionFlags are the flags of the decisions commands.
type decisionFlags struct {
	config, data, replica                 *string
	from, to, purpose, reason, route, eff *string
	subject, format                       *string
}

func newDecisionFlags(fs *flag.FlagSet, sub string) decisionFlags {
	f := decisionFlags{config: fs.String("config", "", "the configuration `file` (its data directory, and its store: data or store.postgres)"),
		data: fs.String("data", "", "the data `directory` holding decisions.log (default: the file's data, else ./privguard-data)")}
	if sub == "verify" {
		f.replica = fs.String("replica", "", "on a shared store: the `name` of the replica whose log this is (default: the file's replica, else the hostname, as serve)")
		return f
	}
	f.from = fs.String("from", "", "only decisions at or after `TIME` (RFC 3339, or a date: midnight UTC)")
	f.to = fs.String("to", "", "only decisions before `TIME` (RFC 3339, or a date)")
	f.purpose = fs.String("purpose", "", "only this `purpose` and those below it (marketing selects marketing.communications.sms)")
	f.reason = fs.String("reason", "", "only decisions with this reason `code` (consent.missing)")
	f.route = fs.String("route", "", "only this `route`, as the route table names it (\"GET /api/profiles/{id}\")")
	f.eff = fs.String("decision", "", "only `allow` or deny")
	f.subject = fs.String("subject", "", "only this subject's decisions: the `ID` is turned into its pseudonym with the log's key (read from the store) and never printed")
	if sub == "query" {
		f.format = fs.String("format", "ndjson", "`format`: ndjson (the lines as logged) or csv")
	} else {
		f.format = fs.String("format", "table", "`format`: table or json")
	}
	return f
}

// decisionsCmd runs 'privguard decisions verify|query|stats'.
func decisionsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	sub := args[0]
	name := "decisions " + sub
	fs := newFlagSet(name)
	f := newDecisionFlags(fs, sub)
	positional, code, ok := parseFlags(fs, name, args[1:], stdout, stderr)
	if !ok {
		return code
	}
	if len(positional) > 0 {
		// Not echoed: it may be a subject's id meant for --subject.
		return usageError(stderr, name, "takes flags only (a subject's id goes after --subject)")
	}
	cfg := &config.File{Data: config.DefaultDataDir}
	if *f.config != "" {
		var err error
		if cfg, err = config.Load(*f.config); err != nil {
			fmt.Fprintf(stderr, "privguard: %v\n", err)
			return 2
		}
	}
	if *f.data != "" {
		cfg.Data = *f.data
	}
	if fi, err := os.Stat(cfg.Data); err != nil || !fi.IsDir() {
		fmt.Fprintf(stderr, "privguard: no data directory %s (is --data right?)\n", printable(cfg.Data))
		return 2
	}
	path := filepath.Join(cfg.Data, decisionLogFile)
	if sub == "verify" {
		return decisionsVerify(ctx, cfg, path, *f.replica, stdout, stderr)
	}
	filter, msg := decisionFilter(f)
	if msg != "" {
		return usageError(stderr, name, msg)
	}
	switch {
	case sub == "query" && *f.format != "ndjson" && *f.format != "csv":
		return usageError(stderr, name, "--format: want ndjson or csv")
	case sub == "stats" && *f.format != "table" && *f.format != "json":
		return usageError(stderr, name, "--format: want table or json")
	}
	if *f.subject != "" {
		key, err := decisionKey(ctx, cfg, name)
		if err != nil {
			fmt.Fprintf(stderr, "privguard: %v\n", err)
			return 2
		}
		filter.Subject = audit.Pseudonym(key, privguard.SubjectID(*f.subject))
	}
	w := bufio.NewWriterSize(stdout, 64<<10)
	var err error
	switch {
	case sub == "query" && *f.format == "csv":
		err = audit.WriteCSV(w, path, filter)
	case sub == "query":
		err = audit.Query(path, filter, func(l *audit.Line) error {
			w.Write(l.Raw)
			return w.WriteByte('\n')
		})
	default:
		var st *audit.Stats
		if st, err = audit.Count(ctx, path, filter, 0); err == nil {
			err = writeStats(w, st, *f.format)
		}
	}
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	var br *audit.BreakError
	if errors.As(err, &br) {
		fmt.Fprintf(stderr, "FAIL: %v\n(privguard decisions verify checks the whole log and its checkpoints)\n", br)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "privguard: %v\n", err)
		return 2
	}
	return 0
}

// decisionFilter reads the filter flags; a message says what is wrong with one.
func decisionFilter(f decisionFlags) (audit.Filter, string) {
	var out audit.Filter
	for _, b := range []struct {
		flag string
		v    *string
		t    *time.Time
	}{{"from", f.from, &out.From}, {"to", f.to, &out.To}} {
		if *b.v == "" {
			continue
		}
		t, ok := adminapi.ParseTime(*b.v)
		if !ok {
			return out, fmt.Sprintf("--%s %q: want an RFC 3339 time (2026-03-01T08:00:00Z) or a date (2026-03-01)", b.flag, printable(*b.v))
		}
		*b.t = t
	}
	if !out.From.IsZero() && !out.To.IsZero() && !out.From.Before(out.To) {
		return out, "--from must be before --to"
	}
	for _, s := range []struct {
		flag string
		v    string
		max  int
	}{{"purpose", *f.purpose, 100}, {"reason", *f.reason, 100}, {"route", *f.route, 300}, {"subject", *f.subject, 256}} {
		if len(s.v) > s.max || !utf8.ValidString(s.v) || strings.ContainsFunc(s.v, unicode.IsControl) {
			return out, fmt.Sprintf("--%s: at most %d characters, no control characters", s.flag, s.max)
		}
	}
	out.Purpose, out.Reason, out.Route = privguard.Purpose(*f.purpose), privguard.Reason(*f.reason), *f.route
	switch *f.eff {
	case "", "allow", "deny":
		out.Effect = privguard.Effect(*f.eff)
	default:
		return out, fmt.Sprintf("--decision %q: want allow or deny", printable(*f.eff))
	}
	return out, ""
}

// decisionKey reads the decision log's subject key from the store (never creating one).
func decisionKey(ctx context.Context, cfg *config.File, cmd string) ([]byte, error) {
	_, cs, closeStore, err := openStores(ctx, cfg, cmd, true)
	if err != nil {
		return nil, err
	}
	defer closeStore()
	key, err := cs.Secret(ctx, "audit.subject-hmac", func() ([]byte, error) {
		return nil, errors.New("the store has no decision-log key: serve never wrote a decision log with it")
	})
	if err != nil {
		return nil, fmt.Errorf("--subject: %w", err)
	}
	return key, nil
}

func decisionsVerify(ctx context.Context, cfg *config.File, path, replica string, stdout, stderr io.Writer) int {
	store, closeStore, err := openJournal(ctx, cfg, "decisions verify", true)
	if err != nil {
		fmt.Fprintf(stderr, "privguard: %v\n", err)
		return 2
	}
	defer closeStore()
	var opt audit.VerifyOptions
	if cfg.Store.Postgres != nil {
		if replica == "" {
			replica = replicaName(cfg)
		}
		opt.Replica = replica
	}
	start := time.Now()
	rep, err := audit.VerifyDir(ctx, path, store, opt)
	if err != nil {
		fmt.Fprintf(stderr, "privguard: verify: %v\n", err)
		return 2
	}
	if rep.Break != nil {
		where := "the active file"
		if rep.Break.Segment != 0 {
			where = fmt.Sprintf("segment %d", rep.Break.Segment)
		}
		if rep.Break.File == "" || rep.Break.File == "checkpoint log" {
			where = "the log"
		}
		fmt.Fprintf(stdout, "FAIL: %v\nwhere: %s, line %d (0: the file as a whole); %d lines read before it\n", rep.Break, where, rep.Break.Line, rep.Lines)
		return 1
	}
	fmt.Fprintf(stdout, "OK: %d lines in %d closed segments and the active file, verified in %v; %d segments deleted by retention",
		rep.Lines, rep.Segments, time.Since(start).Round(time.Millisecond), rep.Deleted)
	if rep.Pending > 0 {
		fmt.Fprintf(stdout, "; %d not checkpointed yet (serve records them at its next start)", rep.Pending)
	}
	fmt.Fprintf(stdout, "\nhead: sha256 %s\n", rep.Head)
	return 0
}

// writeStats writes st as JSON or as tables, largest counts first.
func writeStats(w io.Writer, st *audit.Stats, format string) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	fmt.Fprintf(w, "%d decisions selected of %d read\n", st.Lines, st.Scanned)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, d := range []struct {
		title string
		m     map[string]int64
	}{{"DECISION", st.ByDecision}, {"PURPOSE", st.ByPurpose}, {"REASON", st.ByReason}, {"ROUTE", st.ByRoute}, {"DAY (UTC)", st.ByDay}} {
		fmt.Fprintf(tw, "\n%s\tCOUNT\n", d.title)
		keys := audit.Sorted(d.m)
		if d.title == "DAY (UTC)" {
			keys = slices.Sorted(maps.Keys(d.m))
		}
		for _, k := range keys {
			fmt.Fprintf(tw, "%s\t%d\n", printable(k), d.m[k])
		}
	}
	return tw.Flush()
}
