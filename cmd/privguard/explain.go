package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/audit"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/internal/config"
)

// Explanations of automated decisions (DSR-14): the configured explanation of every
// automated-decision purpose, with the subject's recent decisions read from the decision log.

const (
	// explainRecent is how many of the subject's decisions an explanation shows per purpose.
	explainRecent = 20
	// explainWindow is how far back the decision log is read for them.
	explainWindow = 90 * 24 * time.Hour
)

// explainer answers explanation requests from cfg's purposes and the decision log at
// logPath; key returns the log's pseudonym key (an error: no log was ever written).
func explainer(cfg *config.File, tax *privguard.Taxonomy, logPath string, key func(context.Context) ([]byte, error),
	now func() time.Time) func(context.Context, dsar.Request) (dsar.Explanation, error) {
	declared := map[privguard.Purpose]config.DeclaredPurpose{}
	for _, p := range cfg.Purposes {
		declared[privguard.Purpose(p.Name)] = p
	}
	return func(ctx context.Context, r dsar.Request) (dsar.Explanation, error) {
		var out dsar.Explanation
		var notes, unexplained []string
		for _, p := range tax.Purposes() {
			info, _ := tax.Lookup(p)
			if !info.AutomatedDecision || len(info.Bases[r.Regime]) == 0 {
				continue
			}
			d := dsar.AutomatedDecision{Purpose: p, Description: map[string]string{}, Features: []privguard.DataCategory{},
				Logic: map[string]string{}, Recent: []dsar.DecisionRecord{}}
			if info.Description != "" {
				d.Description["en"] = info.Description
			}
			dp := declared[p]
			maps.Copy(d.Description, dp.Description)
			if x := dp.Explanation; x != nil {
				d.Model = x.Model
				maps.Copy(d.Logic, x.Logic)
				for _, c := range x.Features {
					d.Features = append(d.Features, privguard.DataCategory(c))
				}
			} else {
				unexplained = append(unexplained, string(p))
			}
			out.Decisions = append(out.Decisions, d)
		}
		if len(unexplained) > 0 {
			notes = append(notes, "no explanation is configured for "+strings.Join(unexplained, ", ")+": ask the controller")
		}
		if len(out.Decisions) == 0 {
			out.Note = "no purpose of the controller makes automated decisions about you"
			return out, nil
		}
		if note, err := recentDecisions(ctx, logPath, key, r.Subject, now(), out.Decisions); err != nil {
			return dsar.Explanation{}, err
		} else if note != "" {
			notes = append(notes, note)
		}
		out.Note = strings.Join(notes, "; ")
		return out, nil
	}
}

// recentDecisions fills each of ds with the subject's most recent decisions under its
// purpose (or a purpose below it), newest first. A log that does not exist or cannot be
// read in full is said in the note, not an error; the store not answering for the key is.
func recentDecisions(ctx context.Context, path string, key func(context.Context) ([]byte, error), subject privguard.SubjectID,
	now time.Time, ds []dsar.AutomatedDecision) (string, error) {
	k, err := key(ctx)
	if errors.Is(err, errNoDecisionLog) {
		return "no decision has been recorded", nil
	}
	if err != nil {
		return "", fmt.Errorf("decision log key: %w", err)
	}
	f := audit.Filter{Subject: audit.Pseudonym(k, subject), From: now.Add(-explainWindow)}
	err = audit.Query(path, f, func(l *audit.Line) error {
		v := l.Value
		p := privguard.Purpose(v.GetStringBytes("purpose"))
		i := slices.IndexFunc(ds, func(d dsar.AutomatedDecision) bool {
			return p == d.Purpose || strings.HasPrefix(string(p), string(d.Purpose)+".")
		})
		if i < 0 {
			return nil
		}
		t, _ := time.Parse(time.RFC3339Nano, string(v.GetStringBytes("time")))
		rec := dsar.DecisionRecord{Time: t.UTC(), DecisionID: string(v.GetStringBytes("decision_id")),
			Effect: string(v.GetStringBytes("effect")), Revision: string(v.GetStringBytes("revision"))}
		for _, x := range v.GetArray("reasons") {
			rec.Reasons = append(rec.Reasons, string(x.GetStringBytes()))
		}
		for _, x := range v.GetArray("categories") {
			rec.Categories = append(rec.Categories, privguard.DataCategory(x.GetStringBytes()))
		}
		// Newest first, at most explainRecent: the log is read oldest first.
		ds[i].Recent = append([]dsar.DecisionRecord{rec}, ds[i].Recent...)
		if len(ds[i].Recent) > explainRecent {
			ds[i].Recent = ds[i].Recent[:explainRecent]
		}
		return ctx.Err()
	})
	var br *audit.BreakError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "no decision has been recorded", nil
	case errors.As(err, &br):
		return "the decision log could not be read in full; the decisions shown are those before the damage", nil
	case err != nil:
		return "", fmt.Errorf("decision log: %w", err)
	}
	return fmt.Sprintf("recent lists when each purpose was allowed or refused to process your data (the last %d days, at most %d per purpose); "+
		"the outcome of the automated decision itself is the controller's to tell", int(explainWindow.Hours()/24), explainRecent), nil
}

// errNoDecisionLog is the key function's answer when no decision log was ever written.
var errNoDecisionLog = errors.New("no decision log")
