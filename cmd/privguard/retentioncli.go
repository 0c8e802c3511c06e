package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"
)

// retentionFlags are the flags of 'privguard retention CMD'.
type retentionFlags struct {
	*dsarFlags
	dryRun bool
	wait   time.Duration
}

func newRetentionFlags(fs *flag.FlagSet, sub string) *retentionFlags {
	f := &retentionFlags{dsarFlags: newDsarFlags(fs, "")}
	if sub == "run" {
		fs.BoolVar(&f.dryRun, "dry-run", false, "plan the run and count what it would change, changing nothing")
		fs.DurationVar(&f.wait, "wait", 0, "wait up to this `duration` for the run to finish before printing its report (0: print it as started)")
	}
	return f
}

// retentionCmd runs 'privguard retention CMD ARGS...' through a running serve's admin API;
// args[0] is the subcommand (run, show).
func retentionCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cmd := args[0]
	fs := newFlagSet("retention " + cmd)
	f := newRetentionFlags(fs, cmd)
	positional, code, ok := parseFlags(fs, "retention "+cmd, args[1:], stdout, stderr)
	if !ok {
		return code
	}
	c, _ := lookup("retention " + cmd)
	if want := map[string]int{"run": 0, "show": 1}[cmd]; len(positional) != want || f.wait < 0 {
		return usageError(stderr, "retention "+cmd, "usage: privguard "+c.usage)
	}
	token, err := loadAdminToken(getenv, f.data, f.tokenFile)
	if err != nil {
		fmt.Fprintf(stderr, "privguard: %v\n", err)
		return 2
	}
	client := &adminClient{base: strings.TrimSuffix(f.admin, "/"), token: token, http: &http.Client{Timeout: 5 * time.Minute}}
	var rep retentionReport
	if cmd == "show" {
		err = client.call(ctx, "GET", "/v1/retention/runs/"+url.PathEscape(positional[0]), nil, &rep)
	} else {
		err = client.call(ctx, "POST", "/v1/retention/runs", map[string]bool{"dry_run": f.dryRun}, &rep)
		for deadline := time.Now().Add(f.wait); err == nil && !f.dryRun && !rep.finished() && time.Now().Before(deadline); {
			time.Sleep(500 * time.Millisecond)
			err = client.call(ctx, "GET", "/v1/retention/runs/"+url.PathEscape(rep.Run), nil, &rep)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "privguard: %v\n", err)
		return 1
	}
	rep.print(stdout)
	if rep.State == "partially_failed" {
		return 1
	}
	return 0
}

// print writes the report as a person reads it: the run, one line per action, then what
// was skipped and kept and why.
func (rep retentionReport) print(w io.Writer) {
	if rep.DryRun {
		fmt.Fprintf(w, "dry run planned %s: nothing was changed\n", rep.PlannedAt.Format(time.RFC3339))
	} else {
		fmt.Fprintf(w, "run %s %s, planned %s\n", rep.Run, rep.State, rep.PlannedAt.Format(time.RFC3339))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	verb := "CHANGED"
	if rep.DryRun {
		verb = "WOULD CHANGE"
	}
	fmt.Fprintf(tw, "STORE\tRULE\tTABLE\tMODE\tLIMITED TO\t%s\tSTATE\n", verb)
	for _, a := range rep.Actions {
		limit := "-"
		switch {
		case a.Subjects > 0 && !a.Before.IsZero():
			limit = fmt.Sprintf("%d subjects, before %s", a.Subjects, a.Before.Format(time.DateOnly))
		case a.Subjects > 0:
			limit = fmt.Sprintf("%d subjects", a.Subjects)
		case !a.Before.IsZero():
			limit = "before " + a.Before.Format(time.DateOnly)
		}
		state := a.State
		if a.Error != "" {
			state += " (" + a.Error + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", a.Store, a.Rule, a.Table, a.Mode, limit, a.Rows, state)
	}
	tw.Flush()
	if len(rep.Actions) == 0 {
		fmt.Fprintln(w, "nothing has expired")
	}
	fmt.Fprintf(w, "%d full deletion request(s), %d restriction(s) to storage and security only, %d subject(s) left for the next run\n",
		rep.Deletions, rep.Restrictions, rep.Deferred)
	for _, s := range rep.Skipped {
		fmt.Fprintf(w, "skipped: %s %s (rule %s): %s\n", s.Store, s.Table, s.Rule, s.Reason)
	}
	for _, k := range rep.Kept {
		if k.Subjects == 0 {
			continue // judged by row (a rule from collection): nothing to count per subject
		}
		purposes := make([]string, len(k.Purposes))
		for i, p := range k.Purposes {
			purposes[i] = string(p)
		}
		fmt.Fprintf(w, "kept: %s in %s %s for %d subject(s): rule %s expired, rule %s (%s) still needs it\n",
			k.Category, k.Store, k.Table, k.Subjects, k.Rule, k.KeptBy, strings.Join(purposes, ", "))
	}
}
