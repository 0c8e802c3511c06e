package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/privguard/privguard/internal/config"
	"github.com/privguard/privguard/pgstore"
)

// migrateFlags are the flags of 'privguard migrate'.
type migrateFlags struct {
	config, store, schema *string
}

func newMigrateFlags(fs *flag.FlagSet) migrateFlags {
	return migrateFlags{
		config: fs.String("config", "", "configuration `file` naming the store (store.postgres)"),
		store:  fs.String("store", "", "the shared PostgreSQL store's connection `URL`, instead of --config"),
		schema: fs.String("schema", "", "the `schema` of privguard's tables with --store (default privguard)"),
	}
}

// migrate runs 'privguard migrate'.
func migrate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("migrate")
	f := newMigrateFlags(fs)
	positional, code, ok := parseFlags(fs, "migrate", args, stdout, stderr)
	if !ok {
		return code
	}
	if len(positional) > 0 {
		return usageError(stderr, "migrate", fmt.Sprintf("unexpected argument %q", positional[0]))
	}
	dsn, schema := *f.store, *f.schema
	switch {
	case *f.config != "" && dsn != "":
		return usageError(stderr, "migrate", "give --config or --store, not both")
	case *f.config != "":
		cfg, err := config.Load(*f.config)
		if err != nil {
			fmt.Fprintf(stderr, "privguard: %v\n", err)
			return 2
		}
		if cfg.Store.Postgres == nil {
			fmt.Fprintf(stderr, "privguard: %s names no store.postgres: the embedded store needs no migration\n", *f.config)
			return 2
		}
		if dsn, err = postgresDSN(cfg.Store.Postgres); err != nil {
			fmt.Fprintf(stderr, "privguard: %v\n", err)
			return 2
		}
		schema = cfg.Store.Postgres.Schema
	case dsn == "":
		return usageError(stderr, "migrate", "give --config FILE or --store URL")
	}
	from, to, err := pgstore.Migrate(ctx, dsn, pgstore.Options{Schema: schema})
	if err != nil {
		fmt.Fprintf(stderr, "privguard: migrate: %v\n", err)
		return 2
	}
	if from == to {
		fmt.Fprintf(stdout, "schema is at version %d, the newest this binary knows: nothing to do\n", to)
		return 0
	}
	fmt.Fprintf(stdout, "migrated the schema from version %d to %d\n", from, to)
	return 0
}
