package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/privguard/privguard/incident"
	"github.com/privguard/privguard/internal/config"
)

// incidentFlags are the flags of the incident commands.
type incidentFlags struct {
	config, data, format, status, out *string
	overdue                           *bool
	admin, tokenFile                  *string
}

func newIncidentFlags(fs *flag.FlagSet, sub string) incidentFlags {
	var f incidentFlags
	switch sub {
	case "list", "show":
		f.config = fs.String("config", "", "the configuration `file` (its store: data or store.postgres; its incidents clocks)")
		f.data = fs.String("data", "", "data `directory` of the embedded store (default: the file's data)")
		if sub == "list" {
			f.format = fs.String("format", "table", "`format`: table, json or csv")
			f.status = fs.String("status", "", "only incidents in this `status`: open or closed")
			f.overdue = fs.Bool("overdue", false, "only incidents with a notice past its deadline")
			f.out = fs.String("out", "", "write to `FILE` (mode 0600, replaced whole) instead of stdout")
		}
	case "record", "event":
		f.admin = fs.String("admin", "http://"+config.DefaultAdminListen, "admin API `URL` of the running serve")
		f.data = fs.String("data", config.DefaultDataDir, "data `directory` holding admin.token")
		f.tokenFile = fs.String("token-file", "", "`file` holding the admin token (default DIR/admin.token; $PRIVGUARD_ADMIN_TOKEN wins)")
	}
	return f
}

// incidentCmd runs 'privguard incident list|show|record|event'.
func incidentCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	sub, name := args[0], "incident "+args[0]
	fs := newFlagSet(name)
	f := newIncidentFlags(fs, sub)
	positional, code, ok := parseFlags(fs, name, args[1:], stdout, stderr)
	if !ok {
		return code
	}
	c, _ := lookup(name)
	if want := map[string]int{"list": 0, "show": 1, "record": 1, "event": 2}[sub]; len(positional) != want {
		return usageError(stderr, name, "usage: privguard "+c.usage)
	}
	if sub == "record" || sub == "event" {
		return incidentWrite(ctx, sub, positional, f, getenv, stdout, stderr)
	}
	if sub == "list" {
		if !slices.Contains([]string{"table", "json", "csv"}, *f.format) {
			return usageError(stderr, name, fmt.Sprintf("--format %q: want table, json or csv", *f.format))
		}
		if *f.status != "" && *f.status != incident.StatusOpen && *f.status != incident.StatusClosed {
			return usageError(stderr, name, fmt.Sprintf("--status %q: want open or closed", *f.status))
		}
	}
	cfg := &config.File{Data: config.DefaultDataDir, Regime: "pipl"}
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
	store, closeStore, err := openJournal(ctx, cfg, name, true)
	if err != nil {
		fmt.Fprintf(stderr, "privguard: %v\n", err)
		return 2
	}
	defer closeStore()
	reg, err := incident.Open(incidentConfig(cfg, store))
	if err != nil {
		fmt.Fprintf(stderr, "privguard: %v\n", err)
		return 2
	}
	if sub == "show" {
		v, err := reg.Get(ctx, positional[0])
		if err != nil {
			fmt.Fprintf(stderr, "privguard: %v\n", err)
			return 2
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			fmt.Fprintf(stderr, "privguard: %v\n", err)
			return 2
		}
		return 0
	}
	filter := incident.Filter{Status: *f.status, Overdue: *f.overdue}
	write := func(w io.Writer) error {
		switch *f.format {
		case "csv":
			return reg.WriteCSV(ctx, w, filter)
		case "json":
			var all []incident.View
			if err := reg.List(ctx, filter, func(v incident.View) error { all = append(all, v); return nil }); err != nil {
				return err
			}
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(map[string]any{"incidents": all})
		}
		return writeIncidentTable(ctx, w, reg, filter)
	}
	if *f.out != "" {
		err = writeRegisterFile(*f.out, write)
	} else {
		err = write(stdout)
	}
	if err != nil {
		// A broken chain is named (journal.BreakError says where).
		fmt.Fprintf(stderr, "privguard: %v\n", err)
		return 2
	}
	return 0
}

// writeIncidentTable writes the register for a terminal: one line per incident, its
// clocks' states.
func writeIncidentTable(ctx context.Context, w io.Writer, reg *incident.Register, f incident.Filter) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tAWARE AT (UTC)\tLEVEL\tRISK\tCLOCKS\tGAPS\tTITLE")
	n := 0
	err := reg.List(ctx, f, func(v incident.View) error {
		n++
		var clocks []string
		for _, c := range v.Clocks {
			clocks = append(clocks, c.Name+"="+string(c.State))
		}
		level, risk := string(v.Severity), string(v.Risk)
		if v.AssessmentDue {
			level, risk = cmp.Or(level, "assessment due"), cmp.Or(risk, "assessment due")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.ID, v.Status, v.AwareAt.UTC().Format(time.RFC3339), level, risk,
			strings.Join(clocks, " "), strings.Join(v.Gaps, ","), printable(v.Title))
		return nil
	})
	if err != nil {
		return err
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "\n%d incidents\n", n)
	return err
}

// incidentWrite records an incident (record FILE) or applies an event (event ID FILE)
// through the running serve's admin API, so that the admin trail names who did it; FILE
// is the JSON body ("-": standard input).
func incidentWrite(ctx context.Context, sub string, args []string, f incidentFlags, getenv func(string) string, stdout, stderr io.Writer) int {
	file := args[len(args)-1]
	var body []byte
	var err error
	if file == "-" {
		body, err = io.ReadAll(io.LimitReader(os.Stdin, 4<<20))
	} else {
		body, err = os.ReadFile(file)
	}
	if err != nil {
		fmt.Fprintf(stderr, "privguard: %v\n", err)
		return 2
	}
	var doc json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		fmt.Fprintf(stderr, "privguard: %s is not JSON: %v\n", file, err)
		return 2
	}
	token, err := loadAdminToken(getenv, *f.data, *f.tokenFile)
	if err != nil {
		fmt.Fprintf(stderr, "privguard: %v\n", err)
		return 2
	}
	c := &adminClient{base: strings.TrimSuffix(*f.admin, "/"), token: token, http: &http.Client{Timeout: 30 * time.Second}}
	path := "/v1/incidents"
	if sub == "event" {
		path += "/" + url.PathEscape(args[0]) + "/events"
	}
	var out json.RawMessage
	if err := c.call(ctx, http.MethodPost, path, doc, &out); err != nil {
		fmt.Fprintf(stderr, "privguard: %v\n", err)
		return 1
	}
	stdout.Write(append(out, '\n'))
	return 0
}
