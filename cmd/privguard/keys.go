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
	"strconv"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/internal/config"
	"github.com/privguard/privguard/internal/trail"
	"github.com/privguard/privguard/vault"
)

// Key files in the data directory.
const (
	masterKeyFile = "master.keyset.json"
	nextKeyFile   = "master.next.json" // present while a KEK rotation is under way
	tombstoneName = "vault.tombstone-hmac"
)

// newKeysFlags defines the flags of the keys subcommands.
func newKeysFlags(fs *flag.FlagSet) *string {
	return fs.String("data", config.DefaultDataDir, "data `directory`")
}

// newKeysInitFlags defines the flags of keys init: those of every keys subcommand and --out.
func newKeysInitFlags(fs *flag.FlagSet) (data, out *string) {
	return newKeysFlags(fs), fs.String("out", "", "write the master keyset to this `file` instead of <data>/master.keyset.json (for vault.master_key_file, which every replica of a shared store reads)")
}

// keys runs 'privguard keys CMD ARGS...'; args[0] is a keys subcommand.
func keys(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := args[0]
	fs := newFlagSet("keys " + cmd)
	var data, out *string
	if cmd == "init" {
		data, out = newKeysInitFlags(fs)
	} else {
		data = newKeysFlags(fs)
	}
	positional, code, ok := parseFlags(fs, "keys "+cmd, args[1:], stdout, stderr)
	if !ok {
		return code
	}
	// How many positional arguments each subcommand takes (-1: any number).
	want := map[string]int{"init": 0, "status": 0, "compact": 0, "rotate-kek": 0, "shred": 1, "rotate": -1}[cmd]
	if want >= 0 && len(positional) != want {
		c, _ := lookup("keys " + cmd)
		return usageError(stderr, "keys "+cmd, "usage: privguard "+c.usage)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	fail := func(err error) int { fmt.Fprintf(stderr, "privguard: %v\n", err); return 2 }
	if cmd == "init" {
		path := filepath.Join(*data, masterKeyFile)
		if *out != "" {
			path = *out
		} else if err := os.MkdirAll(*data, 0o700); err != nil {
			return fail(err)
		}
		if err := vault.InitLocalKEK(path); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "created %s (mode 0600)\n", path)
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
	// Acts on keys go to the admin trail, named for the operating-system user.
	var t *trail.Trail
	if cmd != "status" {
		if t, err = openTrail(ctx, &backend{Consent: db.Consent(), Journal: db.Journal()}, "", log); err != nil {
			return fail(err)
		}
		defer t.Close()
	}
	record := func(target map[string]string, outcome string) {
		if err := t.Record(ctx, trail.Entry{Principal: cliPrincipal(), Via: "cli", Act: "keys " + cmd, Target: target, Outcome: outcome}); err != nil {
			fmt.Fprintf(stderr, "privguard: warning: the act could not be written to the admin trail: %v\n", err)
		}
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
		if err := v.Shred(ctx, privguard.SubjectID(positional[0])); err != nil {
			return fail(err)
		}
		record(map[string]string{"subject": t.Subject(positional[0])}, "ok")
		fmt.Fprintln(stdout, "shredded; run privguard keys compact to remove the key's bytes from the data file")
		return 0
	case "rotate":
		subjects := positional
		if len(subjects) == 0 {
			db.Vault().EachWrappedKey(ctx, func(s privguard.SubjectID, _ []byte) error { subjects = append(subjects, string(s)); return nil })
		}
		for _, s := range subjects {
			if err := v.RotateSubject(ctx, privguard.SubjectID(s)); err != nil {
				return fail(err)
			}
		}
		record(map[string]string{"subjects": strconv.Itoa(len(subjects))}, "ok")
		fmt.Fprintf(stdout, "rotated %d subject keys\n", len(subjects))
		return 0
	case "rotate-kek":
		code := rotateKEK(ctx, *data, db, stdout, stderr, log)
		record(nil, map[bool]string{true: "ok", false: "failed"}[code == 0])
		return code
	}
	return usageError(stderr, "keys", fmt.Sprintf("unknown command %q", cmd))
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
	return openVaultKEK(ctx, vaultKeys{master: filepath.Join(data, masterKeyFile), next: filepath.Join(data, nextKeyFile)},
		db.Vault(), vault.Config{}, create, log)
}

// vaultKeys is where the vault's key-encryption key is: a KMS key (kekURI), or the local
// master keyset file (and, while a KEK rotation is under way, the next one).
type vaultKeys struct {
	kekURI, master, next string
}

// openVaultKEK opens the vault on store with the KEK keys names; base carries the other
// settings (staleness on a shared store). With create set, a missing local master key is
// created.
func openVaultKEK(ctx context.Context, keys vaultKeys, store vaultStore, base vault.Config, create bool, log *slog.Logger) (*vault.Vault, error) {
	tomb, err := store.Secret(ctx, tombstoneName, randomKey)
	if err != nil {
		return nil, err
	}
	base.Store, base.TombstoneKey, base.Logger = store, tomb, log
	where := keys.kekURI
	if keys.kekURI != "" {
		if base.KEK, err = vault.KEKFromURI(ctx, keys.kekURI); err != nil {
			return nil, err
		}
	} else {
		where = keys.master
		if create {
			if _, err := os.Stat(keys.master); errors.Is(err, os.ErrNotExist) {
				if err := vault.InitLocalKEK(keys.master); err != nil {
					return nil, err
				}
				log.Info("created the local master key", "file", keys.master)
			}
		}
		kek, err := vault.LoadLocalKEK(keys.master, log)
		if err != nil {
			if errors.Is(err, vault.ErrNoMasterKey) {
				hint := "`privguard keys init`"
				if !create {
					hint = "`privguard keys init --out " + keys.master + "`"
				}
				return nil, fmt.Errorf("no master key at %s: restore it from where you keep it (without it the encrypted data cannot be read), or run %s for a new installation", keys.master, hint)
			}
			return nil, err
		}
		base.KEK = kek
		if keys.next != "" {
			if _, err := os.Stat(keys.next); err == nil {
				next, err := vault.LoadLocalKEK(keys.next, log)
				if err != nil {
					return nil, err
				}
				base.KEK, base.PreviousKEKs = next, []vault.KEK{kek}
			}
		}
	}
	v, err := vault.New(base)
	if err != nil {
		return nil, err
	}
	if err := v.CheckKEK(ctx); err != nil {
		v.Close()
		return nil, fmt.Errorf("%w (%s)", err, where)
	}
	return v, nil
}
