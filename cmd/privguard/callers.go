package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/internal/callers"
	"github.com/privguard/privguard/internal/config"
	"github.com/privguard/privguard/journal"
)

// openCallers opens the register of the sidecar's callers (nil when none is configured):
// each credential read from its token_file (or taken by its sha256) and held as a hash.
func openCallers(ctx context.Context, cfg *config.File, store journal.Store) (*callers.Registry, error) {
	if len(cfg.Callers) == 0 {
		return nil, nil
	}
	list := make([]callers.Caller, len(cfg.Callers))
	for i, c := range cfg.Callers {
		cc := callers.Caller{Name: c.Name}
		if c.TokenFile != "" {
			b, err := os.ReadFile(c.TokenFile)
			if err != nil {
				return nil, fmt.Errorf("config: callers[%d].token_file: %w", i, err)
			}
			tok := string(bytes.TrimSpace(b))
			if len(tok) < 16 {
				return nil, fmt.Errorf("config: callers[%d].token_file %s holds %d characters; want a credential of at least 16", i, c.TokenFile, len(tok))
			}
			cc.SHA256 = callers.Hash(tok)
		} else {
			b, err := hex.DecodeString(c.SHA256)
			if err != nil || len(b) != 32 {
				return nil, fmt.Errorf("config: callers[%d].sha256 is not 64 hex digits", i)
			}
			cc.SHA256 = [32]byte(b)
		}
		for _, p := range c.Purposes {
			cc.Purposes = append(cc.Purposes, privguard.Purpose(p))
		}
		if c.TerminatedAt != nil {
			cc.TerminatedAt = *c.TerminatedAt
		}
		list[i] = cc
	}
	return callers.Open(ctx, store, list, nil)
}

// refreshCallers reads the callers' log every callers.RefreshInterval (terminations
// through the other replicas), until ctx ends.
func refreshCallers(ctx context.Context, reg *callers.Registry, log *slog.Logger) {
	tick := time.NewTicker(callers.RefreshInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := reg.Refresh(ctx); err != nil && ctx.Err() == nil {
			log.Warn("the callers' log could not be read; terminations through other replicas are not seen yet", "err", err)
		}
	}
}

// callersFlags are the flags of 'privguard callers CMD'.
type callersFlags struct {
	*dsarFlags
	reference string
}

func newCallersFlags(fs *flag.FlagSet, sub string) *callersFlags {
	f := &callersFlags{dsarFlags: newDsarFlags(fs, "")}
	if sub == "confirm" {
		fs.StringVar(&f.reference, "reference", "", "where the processor's acknowledgment is (its letter, ticket or signed statement; required)")
	}
	return f
}

// callersCmd runs 'privguard callers CMD ARGS...' through a running serve's admin API;
// args[0] is the subcommand.
func callersCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cmd := args[0]
	fs := newFlagSet("callers " + cmd)
	f := newCallersFlags(fs, cmd)
	positional, code, ok := parseFlags(fs, "callers "+cmd, args[1:], stdout, stderr)
	if !ok {
		return code
	}
	c, _ := lookup("callers " + cmd)
	want := map[string]int{"list": 0, "terminate": 1, "confirm": 1}[cmd]
	if len(positional) != want || (cmd == "confirm" && f.reference == "") {
		return usageError(stderr, "callers "+cmd, "usage: privguard "+c.usage)
	}
	token, err := loadAdminToken(getenv, f.data, f.tokenFile)
	if err != nil {
		fmt.Fprintf(stderr, "privguard: %v\n", err)
		return 2
	}
	client := &adminClient{base: strings.TrimSuffix(f.admin, "/"), token: token, http: &http.Client{Timeout: 30 * time.Second}}
	var list []callers.Status
	switch cmd {
	case "list":
		var out struct{ Callers []callers.Status }
		if err := client.call(ctx, "GET", "/v1/callers", nil, &out); err != nil {
			fmt.Fprintf(stderr, "privguard: %v\n", err)
			return 1
		}
		list = out.Callers
	default:
		path := "/v1/callers/" + url.PathEscape(positional[0]) + "/terminate"
		var body any
		if cmd == "confirm" {
			path, body = "/v1/callers/"+url.PathEscape(positional[0])+"/deletion-confirmation", map[string]string{"reference": f.reference}
		}
		var st callers.Status
		if err := client.call(ctx, "POST", path, body, &st); err != nil {
			fmt.Fprintf(stderr, "privguard: %v\n", err)
			return 1
		}
		list = []callers.Status{st}
	}
	for _, s := range list {
		deletion := "-"
		if s.Deletion != nil {
			deletion = s.Deletion.State
		}
		fmt.Fprintf(stdout, "%s\t%s\t%s\n", s.Name, s.State, deletion)
	}
	return 0
}
