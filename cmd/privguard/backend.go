package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/identity"
	"github.com/privguard/privguard/internal/config"
	"github.com/privguard/privguard/journal"
	"github.com/privguard/privguard/pgstore"
	"github.com/privguard/privguard/vault"
)

// vaultStore is what the vault keeps in a store: keysets, tombstones, its secrets.
type vaultStore interface {
	vault.Store
	vault.SecretStore
}

// requestStore is what the request engine keeps in a store.
type requestStore interface {
	dsar.Store
	dsar.ResultStore
}

// backend is where serve keeps its state: the embedded bbolt file of the data directory,
// or a PostgreSQL database every replica shares. Every part switches at once.
// journalStore is what both stores keep for the journal package.
type journalStore interface {
	journal.Store
	journal.SetStore
}

type backend struct {
	Consent  consent.Store
	Vault    vaultStore
	Requests requestStore
	// Journal keeps the DPO's registers (trail, disclosures, incidents, assessments) and
	// the sets of keyed hashes the cross-border accounting counts.
	Journal journalStore
	// Identity keeps the subjects' identity links (identity.Registry).
	Identity identity.Store
	// Shared: other processes use the same store (the ledger and the vault follow them).
	Shared bool
	// Fresh: nothing was stored yet (a new installation may create its master key).
	Fresh bool
	// Where says which store, for logs ("bbolt privguard-data/privguard.db", "postgres").
	Where string
	close func() error
}

func (b *backend) Close() error { return b.close() }

// openBackend opens the store cfg names. With migrate set, a PostgreSQL schema is brought
// to this binary's version first (serve does; two replicas starting together migrate once).
func openBackend(ctx context.Context, cfg *config.File, migrate bool, log *slog.Logger) (*backend, error) {
	// Either store keeps files of this replica's own there (the decision log, the outbox).
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	if pg := cfg.Store.Postgres; pg != nil {
		dsn, err := postgresDSN(pg)
		if err != nil {
			return nil, err
		}
		// The data directory still holds this replica's own files (the decision log, the
		// outbox): two processes must not share it, which the bbolt file's lock would
		// otherwise have prevented.
		unlock, err := lockDataDir(cfg.Data)
		if err != nil {
			return nil, err
		}
		db, err := pgstore.Open(ctx, dsn, pgstore.Options{Schema: pg.Schema, PoolSize: int32(pg.MaxConns), Migrate: migrate, Logger: log})
		if err != nil {
			unlock()
			return nil, fmt.Errorf("store.postgres: %w", err)
		}
		return &backend{Consent: db.Consent(), Vault: db.Vault(), Requests: db.DSAR(), Journal: db.Journal(), Identity: db.Identity(), Shared: true, Where: "postgres schema " + db.Schema(),
			close: func() error { err := db.Close(); unlock(); return err }}, nil
	}
	path := filepath.Join(cfg.Data, dataFile)
	_, statErr := os.Stat(path)
	fresh := errors.Is(statErr, fs.ErrNotExist)
	if !fresh && cfg.Vault.KEKURI == "" {
		// An existing installation must find its master key before anything is written.
		master := masterKeyPath(cfg)
		if _, err := os.Stat(master); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no master key at %s: restore it from where you keep it (without it the encrypted data cannot be read)", master)
		}
	}
	db, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		return nil, err
	}
	return &backend{Consent: db.Consent(), Vault: db.Vault(), Requests: db.DSAR(), Journal: db.Journal(), Identity: db.Identity(), Fresh: fresh, Where: "bbolt " + path, close: db.Close}, nil
}

// lockDataDir takes the data directory's lock file for this process, or says which
// directory is in use.
func lockDataDir(dir string) (unlock func(), err error) {
	path := filepath.Join(dir, "serve.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data directory lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("the data directory %s is in use by another privguard serve: give every replica a data directory of its own (its decision log and outbox are its own), even on a shared store", dir)
	}
	return func() { f.Close() }, nil
}

// postgresDSN reads the connection string from the configuration or its file.
func postgresDSN(pg *config.Postgres) (string, error) {
	if pg.DSN != "" {
		return pg.DSN, nil
	}
	b, err := os.ReadFile(pg.DSNFile)
	if err != nil {
		return "", fmt.Errorf("store.postgres.dsn_file: %w", err)
	}
	dsn := strings.TrimSpace(string(b))
	if dsn == "" {
		return "", fmt.Errorf("store.postgres.dsn_file: %s is empty", pg.DSNFile)
	}
	return dsn, nil
}

// masterKeyPath is the local master keyset: vault.master_key_file, else in the data
// directory.
func masterKeyPath(cfg *config.File) string {
	return cmp.Or(cfg.Vault.MasterKeyFile, filepath.Join(cfg.Data, masterKeyFile))
}

// maxStaleness is the configured staleness bound of a shared store (zero: the default).
func maxStaleness(cfg *config.File) time.Duration {
	if cfg.Store.MaxStaleness != nil {
		return cfg.Store.MaxStaleness.Duration
	}
	return 0
}

// replicaName is this process's name: the configuration's (which --replica overrides), or
// the hostname.
func replicaName(cfg *config.File) string {
	if cfg.Replica != "" {
		return cfg.Replica
	}
	// A hostname is letters, digits, dots and hyphens; the name is letters, digits, - and _.
	if h, err := os.Hostname(); err == nil && h != "" {
		if name := strings.Map(func(r rune) rune {
			if r == '.' {
				return '-'
			}
			return r
		}, h); validReplica(name) {
			return name
		}
	}
	return "privguard"
}

// validReplica reports whether name can name a replica: 1 to 64 letters, digits, - or _.
func validReplica(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	return strings.IndexFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) < 0
}
