package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/evidence"
	"github.com/privguard/privguard/internal/auditpack"
	"github.com/privguard/privguard/internal/config"
	"github.com/privguard/privguard/pgstore"
)

// exportFlags are the flags of 'privguard consent export'.
type exportFlags struct {
	subject, purpose, from, to, config, data, out *string
}

func newExportFlags(fs *flag.FlagSet) exportFlags {
	return exportFlags{
		subject: fs.String("subject", "", "export every record of this subject `ID` (the export names it)"),
		purpose: fs.String("purpose", "", "export the records of this `purpose` (and those below it) in --from..--to, subjects as pseudonyms"),
		from:    fs.String("from", "", "start of the period (a `DATE` such as 2026-03-01, or an RFC 3339 time); included"),
		to:      fs.String("to", "", "end of the period (a `DATE` or an RFC 3339 time); excluded: --to 2026-04-01 ends with March"),
		config:  fs.String("config", "", "the configuration `file` (its purposes, and its store: data or store.postgres)"),
		data:    fs.String("data", "", "data `directory` of the embedded store (default: the file's data, else ./privguard-data)"),
		out:     fs.String("out", "", "write the export to this `FILE` (a zip; mode 0600, written whole or not at all). Required"),
	}
}

// consentExport runs 'privguard consent export'.
func consentExport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const name = "consent export"
	fs := newFlagSet(name)
	f := newExportFlags(fs)
	positional, code, ok := parseFlags(fs, name, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(positional) > 0 {
		return usageError(stderr, name, fmt.Sprintf("unexpected argument %q", positional[0]))
	}
	if *f.out == "" {
		return usageError(stderr, name, "--out FILE is required")
	}
	scope, err := evidence.ParseScope(*f.subject, *f.purpose, *f.from, *f.to)
	if err != nil {
		var se *evidence.ScopeError
		if errors.As(err, &se) {
			return usageError(stderr, name, "--"+se.Field+": "+se.Problem)
		}
		return usageError(stderr, name, err.Error())
	}
	cfg := &config.File{Data: config.DefaultDataDir, Regime: "pipl"}
	if *f.config != "" {
		if cfg, err = config.Load(*f.config); err != nil {
			fmt.Fprintf(stderr, "privguard: %v\n", err)
			return 2
		}
	}
	if *f.data != "" {
		cfg.Data = *f.data
	}
	taxonomy, err := cfg.Taxonomy()
	if err != nil {
		fmt.Fprintf(stderr, "privguard: %v\n", err)
		return 2
	}
	var store consent.Store
	if pg := cfg.Store.Postgres; pg != nil {
		dsn, err := postgresDSN(pg)
		if err != nil {
			fmt.Fprintf(stderr, "privguard: %v\n", err)
			return 2
		}
		db, err := pgstore.Open(ctx, dsn, pgstore.Options{Schema: pg.Schema})
		if err != nil {
			fmt.Fprintf(stderr, "privguard: store.postgres: %v\n", err)
			return 2
		}
		defer db.Close()
		store = db.Consent()
	} else {
		db, err := openDataFile(cfg.Data, name, true, boltstore.Options{ReadOnly: true, LockTimeout: 5 * time.Second})
		if err != nil {
			fmt.Fprintf(stderr, "privguard: %v\n", err)
			return 2
		}
		defer db.Close()
		store = db.Consent()
	}
	ledger, err := consent.Open(ctx, consent.Config{Store: store, Taxonomy: taxonomy, EUConsentAge: cfg.Consent.EUConsentAge,
		SnapshotInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Fprintf(stderr, "privguard: %v\n", err)
		return 2
	}
	defer ledger.Close()
	if err := scope.Check(ledger); err != nil {
		var se *evidence.ScopeError
		if errors.As(err, &se) {
			return usageError(stderr, name, "--"+se.Field+": "+se.Problem)
		}
		return usageError(stderr, name, err.Error())
	}
	start := time.Now()
	var sum evidence.Summary
	err = writeRegisterFile(*f.out, func(w io.Writer) error {
		var err error
		sum, err = evidence.Export(ctx, ledger, scope, w, time.Now(), "privguard "+versionString())
		return err
	})
	var brk *consent.Break
	if errors.As(err, &brk) {
		fmt.Fprintf(stdout, "FAIL: %v; no export written. Run privguard consent verify for the whole ledger.\n", err)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "privguard: export: %v\n", err)
		return 2
	}
	t := sum.Totals
	fmt.Fprintf(stdout, "wrote %s in %v: %d records (%d grants, %d withdrawals, %d expiries, %d refusals)\nhead: record %d, sha256 %s; Merkle root %s\n",
		*f.out, time.Since(start).Round(time.Millisecond), sum.Records, t.Grants, t.Withdrawals, t.Expiries, t.Refusals, sum.TreeSize, sum.HeadHash, sum.Root)
	return 0
}

// verifyFileFlags are the flags of 'privguard verify'.
type verifyFileFlags struct {
	key *string
}

func newVerifyFileFlags(fs *flag.FlagSet) verifyFileFlags {
	return verifyFileFlags{key: fs.String("key", "", "a JWK set `FILE` (as GET /v1/receipts/keys serves it) the bundle's signing key must be in")}
}

// verifyBundle runs 'privguard verify FILE': it checks an evidence bundle by its manifest's
// kind, offline.
func verifyBundle(args []string, stdout, stderr io.Writer) int {
	const name = "verify"
	fs := newFlagSet(name)
	f := newVerifyFileFlags(fs)
	positional, code, ok := parseFlags(fs, name, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(positional) != 1 {
		return usageError(stderr, name, "usage: privguard verify [--key FILE] FILE")
	}
	path := positional[0]
	file, err := os.Open(path)
	if err != nil {
		fmt.Fprintf(stderr, "privguard: %v\n", err)
		return 2
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil || !st.Mode().IsRegular() {
		fmt.Fprintf(stderr, "privguard verify: %s is not a file\n", path)
		return 2
	}
	start := time.Now()
	b, err := evidence.Open(file, st.Size())
	if errors.Is(err, evidence.ErrNotBundle) {
		fmt.Fprintf(stderr, "privguard verify: %s: %v\nverify checks the files privguard consent export and privguard audit pack write; the ledger itself is checked with privguard consent verify --data DIR.\n", path, err)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stdout, "FAIL: %v\n", err)
		return 1
	}
	switch b.Manifest.Kind {
	case evidence.ConsentKind:
		rep, err := evidence.VerifyConsent(b)
		if err != nil {
			fmt.Fprintf(stdout, "FAIL: %v\n", err)
			return 1
		}
		if *f.key != "" {
			if msg := checkPinnedKey(*f.key, rep.PublicKey); msg != "" {
				fmt.Fprintf(stdout, "FAIL: %s\n", msg)
				return 1
			}
		}
		writeConsentReport(stdout, rep, time.Since(start))
		return 0
	case auditpack.Kind:
		// The published key is checked first: a pack signed by another key is refused
		// before any of its registers is read.
		var pins []ed25519.PublicKey
		if *f.key != "" {
			var msg string
			if pins, msg = publishedKeys(*f.key); msg != "" {
				fmt.Fprintf(stdout, "FAIL: %s\n", msg)
				return 1
			}
		}
		m, err := auditpack.Verify(b, pins...)
		if err != nil {
			fmt.Fprintf(stdout, "FAIL: %v\n", err)
			return 1
		}
		writePackReport(stdout, m, *f.key != "", time.Since(start))
		return 0
	}
	fmt.Fprintf(stderr, "privguard verify: %s is an evidence bundle of kind %q, which this version of privguard cannot verify\n", path, b.Manifest.Kind)
	return 2
}

// publishedKeys reads the Ed25519 keys of a JWK set file, or says what is wrong.
func publishedKeys(path string) ([]ed25519.PublicKey, string) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, "--key: " + err.Error()
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, "--key: not a JWK set: " + err.Error()
	}
	var out []ed25519.PublicKey
	for _, k := range set.Keys {
		if p, ok := k.Key.(ed25519.PublicKey); ok {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, "--key: the set holds no Ed25519 key"
	}
	return out, ""
}

// checkPinnedKey says what is wrong if the hex Ed25519 key pub is not in the JWK set file.
func checkPinnedKey(path, pub string) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "--key: " + err.Error()
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		return "--key: not a JWK set: " + err.Error()
	}
	for _, k := range set.Keys {
		if p, ok := k.Key.(ed25519.PublicKey); ok && hex.EncodeToString(p) == pub {
			return ""
		}
	}
	return fmt.Sprintf("the bundle is signed with key %s, which is not in %s", pub, path)
}

func writeConsentReport(w io.Writer, rep evidence.ConsentReport, took time.Duration) {
	what := "subject " + string(rep.Scope.Subject)
	if rep.Scope.Subject == "" {
		what = fmt.Sprintf("purpose %s, %s to %s (subjects pseudonymous)", rep.Scope.Purpose, rep.Scope.From.Format(time.RFC3339), rep.Scope.To.Format(time.RFC3339))
	}
	t := rep.Totals
	fmt.Fprintf(w, "OK: consent evidence export, %s, verified in %v\n", printable(what), took.Round(time.Millisecond))
	fmt.Fprintf(w, "records: %d, each receipt signed and each record in the checkpoint's tree (proof: %d nodes)\n", rep.Records, rep.ProofSize)
	fmt.Fprintf(w, "counts: %d grants, %d withdrawals, %d expiries, %d refusals (%d day and purpose rows) recomputed from the records\n",
		t.Grants, t.Withdrawals, t.Expiries, t.Refusals, rep.Days)
	fmt.Fprintf(w, "checkpoint: tree of %d records, root %s, signed %s with key %s\n", rep.TreeSize, rep.Root, rep.SignedAt.Format(time.RFC3339), rep.KeyID)
	fmt.Fprintf(w, "key: ed25519 %s (compare with GET /v1/receipts/keys, or pass --key)\n", rep.PublicKey)
	fmt.Fprintf(w, "head: record %d, sha256 %s (against the ledger: privguard consent verify --anchor %d:%s)\n",
		rep.HeadSeq, rep.HeadHash, rep.HeadSeq, rep.HeadHash)
}
