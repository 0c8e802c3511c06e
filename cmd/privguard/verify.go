package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/internal/config"
	"github.com/privguard/privguard/pgstore"
)

// dataFile is the embedded store's file inside the data directory.
const dataFile = "privguard.db"

// verifyFlags are the flags of 'privguard consent verify'.
type verifyFlags struct {
	data, store, schema *string
	anchors             *[]string
}

func newVerifyFlags(fs *flag.FlagSet) verifyFlags {
	f := verifyFlags{data: fs.String("data", config.DefaultDataDir, "data `directory` of the embedded store"), anchors: new([]string),
		store:  fs.String("store", "", "a shared PostgreSQL store to verify instead: its connection `URL` (postgres://user@host/db?sslmode=...)"),
		schema: fs.String("schema", "", "the `schema` of the shared store's tables (default privguard)")}
	fs.Func("anchor", "`SEQ:SHA256` of a head printed by an earlier verify and kept elsewhere; checks the ledger still holds that record unchanged (repeatable)",
		func(v string) error { *f.anchors = append(*f.anchors, v); return nil })
	return f
}

func consentVerify(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("consent verify")
	f := newVerifyFlags(fs)
	positional, code, ok := parseFlags(fs, "consent verify", args, stdout, stderr)
	if !ok {
		return code
	}
	if len(positional) > 0 {
		return usageError(stderr, "consent verify", fmt.Sprintf("unexpected argument %q (the data directory goes after --data)", positional[0]))
	}
	data, anchors := f.data, *f.anchors
	dataSet := false
	fs.Visit(func(fl *flag.Flag) { dataSet = dataSet || fl.Name == "data" })
	if *f.store != "" && dataSet {
		return usageError(stderr, "consent verify", "give --data (the embedded store) or --store (a shared one), not both")
	}
	if *f.schema != "" && *f.store == "" {
		return usageError(stderr, "consent verify", "--schema names the tables of a shared store: give --store too")
	}
	var store consent.Store
	if *f.store != "" {
		db, err := pgstore.Open(ctx, *f.store, pgstore.Options{Schema: *f.schema})
		if err != nil {
			fmt.Fprintf(stderr, "privguard: --store: %v\n", err)
			return 2
		}
		defer db.Close()
		store = db.Consent()
	} else {
		db, err := openDataFile(*data, "consent verify", true, boltstore.Options{ReadOnly: true, LockTimeout: 5 * time.Second})
		if err != nil {
			fmt.Fprintf(stderr, "privguard: %v\n", err)
			return 2
		}
		defer db.Close()
		store = db.Consent()
	}
	start := time.Now()
	rep, err := consent.Verify(ctx, store)
	if err != nil {
		fmt.Fprintf(stderr, "privguard: verify: %v\n", err)
		return 2
	}
	if rep.Break != nil {
		fmt.Fprintf(stdout, "FAIL: %v\n%d records verified before it; %d notices.\n", rep.Break, rep.Records, rep.Notices)
		return 1
	}
	for _, a := range anchors {
		seq, want, err := parseAnchor(a)
		if err != nil {
			fmt.Fprintf(stderr, "privguard: --anchor %q: %v\n", a, err)
			return 2
		}
		if seq > rep.HeadSeq {
			fmt.Fprintf(stdout, "FAIL: anchor record %d is beyond the ledger's last record %d (records were removed)\n", seq, rep.HeadSeq)
			return 1
		}
		hash, _, err := store.Record(ctx, seq)
		if err != nil {
			fmt.Fprintf(stderr, "privguard: read record %d: %v\n", seq, err)
			return 2
		}
		if !bytes.Equal(hash, want) {
			fmt.Fprintf(stdout, "FAIL: record %d does not have the anchored hash (the ledger was rewritten up to it)\n", seq)
			return 1
		}
	}
	fmt.Fprintf(stdout, "OK: %d records, %d notices verified in %v\nhead: record %d, sha256 %s\n",
		rep.Records, rep.Notices, time.Since(start).Round(time.Millisecond), rep.HeadSeq, rep.HeadHash)
	return 0
}

// parseAnchor parses SEQ:HEX-SHA256.
func parseAnchor(s string) (uint64, []byte, error) {
	seqText, hashText, ok := strings.Cut(s, ":")
	seq, err := strconv.ParseUint(seqText, 10, 64)
	if !ok || err != nil || seq == 0 {
		return 0, nil, errors.New("want SEQ:SHA256, for example 1042:9f86d0...")
	}
	hash, err := hex.DecodeString(hashText)
	if err != nil || len(hash) != 32 {
		return 0, nil, errors.New("the hash must be 64 hex digits")
	}
	return seq, hash, nil
}
