package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/internal/config"
	"github.com/privguard/privguard/vault"
)

// Key files in the data directory.
const (
	masterKeyFile = "master.keyset.json"
	nextKeyFile   = "master.next.json" // present while a KEK rotation is under way
	tombstoneName = "vault.tombstone-hmac"
)

const keysUsage = `Usage: privguard keys <command> [--data DIR] [args]

Commands:
  init               create the local master key (<data>/master.keyset.json, mode 0600)
  status             subject keys, KEK rotation state, master key file permissions
  shred SUBJECT      destroy a subject's keys: every ciphertext of the subject becomes unreadable
  compact            rewrite the data file so shredded keys leave no bytes behind (stop serve first)
  rotate [SUBJECT..] add a new key to the subjects' keysets (all subjects if none named)
  rotate-kek         wrap every subject key with a new master key, then destroy the old one;
                     resumable: run it again after an interruption

The local master key is a development and single-host option: whoever reads the file can
decrypt all personal data. Keep it apart from backups of the data file; a backup is safe to
keep only while the master key that wrapped it can be destroyed. Stop 'privguard serve'
before running keys commands (it holds the data file's lock).
`

func keys(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, keysUsage)
		return 2
	}
	cmd := args[0]
	fs := flag.NewFlagSet("privguard keys "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", config.DefaultDataDir, "data `directory`")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	fail := func(err error) int { fmt.Fprintf(stderr, "privguard: %v\n", err); return 2 }
	if cmd == "init" {
		if err := os.MkdirAll(*data, 0o700); err != nil {
			return fail(err)
		}
		if err := vault.InitLocalKEK(filepath.Join(*data, masterKeyFile)); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "created %s (mode 0600)\n", filepath.Join(*data, masterKeyFile))
		return 0
	}
	if cmd == "compact" {
		before, after, err := boltstore.CompactFile(filepath.Join(*data, dataFile))
		if errors.Is(err, boltstore.ErrLocked) {
			err = inUse(*data, "keys compact", false)
		}
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "compacted %s: %d -> %d bytes\n", filepath.Join(*data, dataFile), before, after)
		return 0
	}
	db, err := openDataFile(*data, "keys "+cmd, cmd == "status", boltstore.Options{})
	if err != nil {
		return fail(err)
	}
	defer db.Close()
	v, err := openVault(ctx, *data, db, false, log)
	if err != nil {
		return fail(err)
	}
	switch cmd {
	case "status":
		n := 0
		db.Vault().EachWrappedKey(ctx, func(privguard.SubjectID, []byte) error { n++; return nil })
		fmt.Fprintf(stdout, "subject keys: %d\n", n)
		if st, err := os.Stat(filepath.Join(*data, masterKeyFile)); err == nil {
			fmt.Fprintf(stdout, "master key: %s (mode %v)\n", filepath.Join(*data, masterKeyFile), st.Mode().Perm())
		}
		if _, err := os.Stat(filepath.Join(*data, nextKeyFile)); err == nil {
			fmt.Fprintln(stdout, "KEK rotation: in progress (run privguard keys rotate-kek to finish it)")
		}
		return 0
	case "shred":
		if fs.NArg() != 1 {
			return fail(errors.New("usage: privguard keys shred SUBJECT"))
		}
		if err := v.Shred(ctx, privguard.SubjectID(fs.Arg(0))); err != nil {
			return fail(err)
		}
		fmt.Fprintln(stdout, "shredded; run privguard keys compact to remove the key's bytes from the data file")
		return 0
	case "rotate":
		subjects := fs.Args()
		if len(subjects) == 0 {
			db.Vault().EachWrappedKey(ctx, func(s privguard.SubjectID, _ []byte) error { subjects = append(subjects, string(s)); return nil })
		}
		for _, s := range subjects {
			if err := v.RotateSubject(ctx, privguard.SubjectID(s)); err != nil {
				return fail(err)
			}
		}
		fmt.Fprintf(stdout, "rotated %d subject keys\n", len(subjects))
		return 0
	case "rotate-kek":
		return rotateKEK(ctx, *data, db, stdout, stderr, log)
	}
	fmt.Fprintf(stderr, "privguard: unknown keys command %q\n\n%s", cmd, keysUsage)
	return 2
}

// rotateKEK rewraps everything with master.next.json (created if absent), then makes it the
// master key, destroying the old one. An interrupted run leaves both files; running again
// resumes.
func rotateKEK(ctx context.Context, data string, db *boltstore.DB, stdout, stderr io.Writer, log *slog.Logger) int {
	next := filepath.Join(data, nextKeyFile)
	if _, err := os.Stat(next); errors.Is(err, os.ErrNotExist) {
		if err := vault.InitLocalKEK(next); err != nil {
			fmt.Fprintf(stderr, "privguard: %v\n", err)
			return 2
		}
	}
	v, err := openVault(ctx, data, db, false, log)
	if err != nil {
		fmt.Fprintf(stderr, "privguard: %v\n", err)
		return 2
	}
	p, err := v.RotateKEK(ctx, func(p vault.KEKProgress) {
		if p.Rewrapped%1000 == 0 {
			fmt.Fprintf(stdout, "rewrapped %d, %d remaining\n", p.Rewrapped, p.Remaining)
		}
	})
	if err != nil {
		fmt.Fprintf(stderr, "privguard: KEK rotation stopped (run it again to resume): %v\n", err)
		return 1
	}
	// The rename replaces (and so destroys) the old master key in one step.
	if err := os.Rename(next, filepath.Join(data, masterKeyFile)); err != nil {
		fmt.Fprintf(stderr, "privguard: %v\n", err)
		return 2
	}
	fmt.Fprintf(stdout, "KEK rotated: %d subject keys, %d rewrapped by this run; the old master key is destroyed\n", p.Total, p.Rewrapped)
	return 0
}

// openVault loads the master key(s) of data and opens the vault on db. With create set and a
// data directory that holds no data yet, a missing master key is created; otherwise a
// missing or wrong master key is an error and nothing is written.
func openVault(ctx context.Context, data string, db *boltstore.DB, create bool, log *slog.Logger) (*vault.Vault, error) {
	return openVaultKEK(ctx, data, "", db, create, log)
}

// openVaultKEK is openVault with the KEK in a KMS when kekURI is set.
func openVaultKEK(ctx context.Context, data, kekURI string, db *boltstore.DB, create bool, log *slog.Logger) (*vault.Vault, error) {
	if kekURI != "" {
		kek, err := vault.KEKFromURI(ctx, kekURI)
		if err != nil {
			return nil, err
		}
		tomb, err := db.Consent().Secret(ctx, tombstoneName, randomKey)
		if err != nil {
			return nil, err
		}
		v, err := vault.New(vault.Config{Store: db.Vault(), KEK: kek, TombstoneKey: tomb, Logger: log})
		if err != nil {
			return nil, err
		}
		if err := v.CheckKEK(ctx); err != nil {
			return nil, fmt.Errorf("%w (%s)", err, kekURI)
		}
		return v, nil
	}
	master := filepath.Join(data, masterKeyFile)
	if create {
		if _, err := os.Stat(master); errors.Is(err, os.ErrNotExist) {
			if err := vault.InitLocalKEK(master); err != nil {
				return nil, err
			}
			log.Info("created the local master key", "file", master)
		}
	}
	kek, err := vault.LoadLocalKEK(master, log)
	if err != nil {
		if errors.Is(err, vault.ErrNoMasterKey) {
			return nil, fmt.Errorf("no master key at %s: restore it from where you keep it (without it the encrypted data cannot be read), or run `privguard keys init` for a new installation", master)
		}
		return nil, err
	}
	var previous []vault.KEK
	if _, err := os.Stat(filepath.Join(data, nextKeyFile)); err == nil {
		next, err := vault.LoadLocalKEK(filepath.Join(data, nextKeyFile), log)
		if err != nil {
			return nil, err
		}
		kek, previous = next, []vault.KEK{kek}
	}
	tomb, err := db.Consent().Secret(ctx, tombstoneName, randomKey)
	if err != nil {
		return nil, err
	}
	v, err := vault.New(vault.Config{Store: db.Vault(), KEK: kek, PreviousKEKs: previous, TombstoneKey: tomb, Logger: log})
	if err != nil {
		return nil, err
	}
	if err := v.CheckKEK(ctx); err != nil {
		return nil, fmt.Errorf("%w (%s)", err, master)
	}
	return v, nil
}
