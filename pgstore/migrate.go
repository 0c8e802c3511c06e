package pgstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// versionTable is goose's table of applied versions, inside the store's schema.
const versionTable = "goose_db_version"

// ErrSchemaTooNew is returned (wrapped, with both versions) by [Open], [Migrate] and
// [SchemaVersion] callers when the database schema was migrated by a newer privguard.
var ErrSchemaTooNew = errors.New("pgstore: the database schema is newer than this binary")

// ErrSchemaTooOld is returned (wrapped) by [Open] with Options.Migrate false when the
// schema lacks migrations this binary needs.
var ErrSchemaTooOld = errors.New("pgstore: the database schema is older than this binary")

// KnownVersion is the newest schema version this binary's migrations reach.
func KnownVersion() int64 {
	sources, err := migrationSources()
	if err != nil {
		panic(err) // the embedded files are fixed at build time
	}
	return sources[len(sources)-1]
}

// migrationSources lists the embedded migrations' versions in order.
func migrationSources() ([]int64, error) {
	fsys, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, &sql.DB{}, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return nil, err
	}
	var out []int64
	for _, s := range p.ListSources() {
		out = append(out, s.Version)
	}
	return out, nil
}

// Migrate brings the schema opts.Schema of the database at dsn to [KnownVersion] and
// returns the versions before and after (0: no schema yet). Several processes may call it
// at once: a PostgreSQL advisory lock, per schema, lets one migrate and the others wait
// for it. Returns an error wrapping [ErrSchemaTooNew] if the schema is newer than this
// binary knows; nothing is changed then.
func Migrate(ctx context.Context, dsn string, opts Options) (from, to int64, err error) {
	if err := opts.validate(); err != nil {
		return 0, 0, err
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return 0, 0, fmt.Errorf("pgstore: parse the DSN: %w", redactDSN(err))
	}
	return migrate(ctx, cfg, opts)
}

func migrate(ctx context.Context, cfg *pgx.ConnConfig, opts Options) (from, to int64, err error) {
	cfg = cfg.Copy()
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	cfg.RuntimeParams["search_path"] = opts.Schema
	db := stdlib.OpenDB(*cfg)
	defer db.Close()

	// CREATE SCHEMA IF NOT EXISTS is not safe against itself run concurrently (a unique
	// violation in pg_namespace): serialise it on the schema's lock.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("pgstore: migrate: %w", err)
	}
	_, err = tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", lockID(opts.Schema))
	if err == nil {
		_, err = tx.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{opts.Schema}.Sanitize())
	}
	if err == nil {
		err = tx.Commit()
	} else {
		tx.Rollback()
	}
	if err != nil {
		return 0, 0, fmt.Errorf("pgstore: create schema %s: %w", opts.Schema, err)
	}

	from, err = schemaVersion(ctx, sqlQueryRow(db), opts.Schema)
	if err != nil {
		return 0, 0, err
	}
	known := KnownVersion()
	if from > known {
		return from, from, tooNew(from, known)
	}
	fsys, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return 0, 0, err
	}
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(lockID(opts.Schema)), lock.WithLockTimeout(1, 300))
	if err != nil {
		return 0, 0, err
	}
	gopts := []goose.ProviderOption{
		goose.WithTableName(opts.Schema + "." + versionTable),
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
	}
	if opts.Logger != nil {
		gopts = append(gopts, goose.WithSlog(opts.Logger.With("component", "pgstore.migrate")))
	} else {
		gopts = append(gopts, goose.WithLogger(goose.NopLogger()))
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys, gopts...)
	if err != nil {
		return from, from, fmt.Errorf("pgstore: migrate: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return from, from, fmt.Errorf("pgstore: migrate schema %s from version %d: %w", opts.Schema, from, err)
	}
	to, err = schemaVersion(ctx, sqlQueryRow(db), opts.Schema)
	if err != nil {
		return from, to, err
	}
	if to > known { // another, newer process migrated while this one waited
		return from, to, tooNew(to, known)
	}
	return from, to, nil
}

func tooNew(have, known int64) error {
	return fmt.Errorf("the database schema is version %d; this binary knows up to %d: upgrade privguard: %w", have, known, ErrSchemaTooNew)
}

// SchemaVersion returns the version of the schema opts.Schema in the database at dsn
// (0 if it has never been migrated). It changes nothing.
func SchemaVersion(ctx context.Context, dsn string, opts Options) (int64, error) {
	if err := opts.validate(); err != nil {
		return 0, err
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return 0, fmt.Errorf("pgstore: parse the DSN: %w", redactDSN(err))
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	return schemaVersion(ctx, sqlQueryRow(db), opts.Schema)
}

// queryRow is QueryRow of a *sql.DB or a pgx pool.
type queryRow func(ctx context.Context, query string, args ...any) interface{ Scan(dest ...any) error }

func sqlQueryRow(db *sql.DB) queryRow {
	return func(ctx context.Context, q string, args ...any) interface{ Scan(dest ...any) error } {
		return db.QueryRowContext(ctx, q, args...)
	}
}

func schemaVersion(ctx context.Context, query queryRow, schema string) (int64, error) {
	var exists bool
	table := pgx.Identifier{schema, versionTable}.Sanitize()
	if err := query(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&exists); err != nil {
		return 0, fmt.Errorf("pgstore: read the schema version: %w", err)
	}
	if !exists {
		return 0, nil
	}
	var v int64
	if err := query(ctx, "SELECT coalesce(max(version_id), 0) FROM "+table+" WHERE is_applied").Scan(&v); err != nil {
		return 0, fmt.Errorf("pgstore: read the schema version: %w", err)
	}
	return v, nil
}

// lockID is the advisory lock key of a schema's migrations (and of its creation).
func lockID(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("privguard.pgstore.migrate\x00" + schema))
	return int64(h.Sum64())
}

// redactDSN replaces a DSN parse error: pgx redacts passwords from its parse errors only
// as far as it can recognise them, and a malformed DSN may hold one anywhere.
func redactDSN(error) error {
	return errors.New("the DSN cannot be parsed (it is not repeated here: it may hold a password)")
}
