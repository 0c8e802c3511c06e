package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/privguard/privguard"
)

// DefaultSchema is the PostgreSQL schema privguard's tables live in.
const DefaultSchema = "privguard"

// Options configure [Open]. The zero value is ready to use (and does not migrate).
type Options struct {
	// Schema is the PostgreSQL schema holding privguard's tables, created by the first
	// migration. Empty means DefaultSchema. It must be a plain lower-case identifier
	// (letters, digits, underscores).
	Schema string
	// PoolSize bounds the pool's connections; zero means pgxpool's default (the DSN's
	// pool_max_conns, or the larger of 4 and the number of CPUs). The Changes listener
	// uses one more connection of its own.
	PoolSize int32
	// Migrate applies pending migrations on Open. If false, Open refuses a schema older
	// than this binary (run `privguard migrate`).
	Migrate bool
	// Logger receives the listener's reconnections and the migrations applied; never
	// personal data. Nil means discard.
	Logger *slog.Logger
}

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

func (o *Options) validate() error {
	if o.Schema == "" {
		o.Schema = DefaultSchema
	}
	if !schemaName.MatchString(o.Schema) || o.Schema == "public" || o.Schema == "information_schema" || strings.HasPrefix(o.Schema, "pg_") {
		return fmt.Errorf("pgstore: schema %q: must be 1 to 63 lower-case letters, digits or underscores, and not public, information_schema or pg_*: %w", o.Schema, privguard.ErrInvalid)
	}
	return nil
}

// DefaultConnectTimeout bounds one connection attempt (TCP and start-up) unless the DSN
// sets connect_timeout.
const DefaultConnectTimeout = 5 * time.Second

// openTimeout bounds Open: connecting, migrating, checking the version.
const openTimeout = time.Minute

// DB is an open connection pool to privguard's schema in a PostgreSQL database. It is safe
// for concurrent use, by any number of processes at once.
type DB struct {
	pool   *pgxpool.Pool
	schema string
	log    *slog.Logger
	// instance tags this process's notifications, so that Changes reports only others'.
	instance string

	listenOnce sync.Once
	changes    chan struct{}
	stop       context.CancelFunc
	done       chan struct{}
}

// Open connects to the database at dsn (a libpq URL or key=value string, as pgx takes
// it), migrates the schema if opts.Migrate, and checks its version. Returns an error
// wrapping [ErrSchemaTooNew] if the schema is newer than this binary, [ErrSchemaTooOld]
// if it is older and opts.Migrate is false, and privguard.ErrUnavailable if the database
// cannot be reached.
func Open(ctx context.Context, dsn string, opts Options) (*DB, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgstore: parse the DSN: %w", redactDSN(err))
	}
	if opts.PoolSize > 0 {
		cfg.MaxConns = opts.PoolSize
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		// A database that takes the TCP connection and never answers must not hang a start
		// or hold a replica's pool after it is back (connect_timeout in the DSN overrides).
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	// Every query names its tables unqualified: the pool's connections see only the
	// store's schema (and pg_catalog). A connection pooler in front must therefore be in
	// session mode (LISTEN needs that too).
	cfg.ConnConfig.RuntimeParams["search_path"] = opts.Schema
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "privguard"
	}

	if opts.Migrate {
		if _, _, err := migrate(ctx, cfg.ConnConfig, opts); err != nil {
			return nil, unavailable(err)
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w: %w", err, privguard.ErrUnavailable)
	}
	db := &DB{pool: pool, schema: opts.Schema, log: opts.Logger, instance: randomTag(), changes: make(chan struct{}, 1), done: make(chan struct{})}
	if err := db.checkVersion(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	var syncCommit string
	if err := pool.QueryRow(ctx, "SHOW synchronous_commit").Scan(&syncCommit); err == nil && syncCommit == "off" {
		db.log.Warn("pgstore: synchronous_commit is off: a commit may be lost in a database crash after it was acknowledged")
	}
	return db, nil
}

// checkVersion refuses a schema this binary does not match.
func (db *DB) checkVersion(ctx context.Context) error {
	have, err := schemaVersion(ctx, func(ctx context.Context, q string, args ...any) interface{ Scan(dest ...any) error } {
		return db.pool.QueryRow(ctx, q, args...)
	}, db.schema)
	if err != nil {
		return unavailable(err)
	}
	known := KnownVersion()
	switch {
	case have > known:
		return tooNew(have, known)
	case have == 0:
		return fmt.Errorf("the database holds no privguard schema %s (is the schema name right? serve creates it, or run `privguard migrate`): %w", db.schema, ErrSchemaTooOld)
	case have < known:
		return fmt.Errorf("the database schema %s is version %d; this binary needs %d: run `privguard migrate`: %w", db.schema, have, known, ErrSchemaTooOld)
	}
	return nil
}

// unavailable marks err as privguard.ErrUnavailable unless it is a version mismatch.
func unavailable(err error) error {
	if errors.Is(err, ErrSchemaTooNew) || errors.Is(err, ErrSchemaTooOld) || errors.Is(err, privguard.ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", err, privguard.ErrUnavailable)
}

// Close stops the Changes listener, waits for it, and closes the pool (waiting for the
// connections in use to be released).
func (db *DB) Close() error {
	db.listenOnce.Do(func() { close(db.done) }) // never started: nothing to wait for
	if db.stop != nil {
		db.stop()
	}
	<-db.done
	db.pool.Close()
	return nil
}

// Schema returns the schema the store's tables are in.
func (db *DB) Schema() string { return db.schema }

func randomTag() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
