package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/internal/config"
)

// dataFile is the embedded store's file inside the data directory.
const dataFile = "privguard.db"

func consentVerify(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("privguard consent verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", config.DefaultDataDir, "data `directory` of the embedded store")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: privguard consent verify [--data DIR]

Checks every record of the consent ledger: its hash, its place in the chain, the notice it
cites. Prints a summary; if a record does not match, names the first one and exits 1.
The file is opened read-only; stop 'privguard serve' first (it holds the file's lock).

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	path := filepath.Join(*data, dataFile)
	if _, err := os.Stat(path); err != nil {
		fmt.Fprintf(stderr, "privguard: no ledger at %s: %v\n", path, err)
		return 2
	}
	db, err := boltstore.Open(path, boltstore.Options{ReadOnly: true, LockTimeout: 5 * time.Second})
	if err != nil {
		fmt.Fprintf(stderr, "privguard: %v\n", err)
		return 2
	}
	defer db.Close()
	start := time.Now()
	rep, err := consent.Verify(ctx, db.Consent())
	if err != nil {
		fmt.Fprintf(stderr, "privguard: verify: %v\n", err)
		return 2
	}
	if rep.Break != nil {
		fmt.Fprintf(stdout, "FAIL: %v\n%d records verified before it; %d notices.\n", rep.Break, rep.Records, rep.Notices)
		return 1
	}
	fmt.Fprintf(stdout, "OK: %d records, %d notices verified in %v\nhead: record %d, sha256 %s\n",
		rep.Records, rep.Notices, time.Since(start).Round(time.Millisecond), rep.HeadSeq, rep.HeadHash)
	return 0
}
