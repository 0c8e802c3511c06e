package pgstore

import (
	"context"
	"fmt"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/dsar"
)

// Probe proves the database still takes a commit: it writes the time into the probe
// table. It is the readiness check's write (a read would pass on a database that has
// gone read-only, a standby promoted away, or a full disk). Returns an error wrapping
// privguard.ErrUnavailable if the commit fails.
func (db *DB) Probe(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := db.pool.Exec(ctx, `INSERT INTO probe (id, at) VALUES (true, now()) ON CONFLICT (id) DO UPDATE SET at = excluded.at`)
	if err != nil {
		return fmt.Errorf("pgstore: probe commit: %w: %w", err, privguard.ErrUnavailable)
	}
	return nil
}

// Probe implements consent.Prober.
func (s *ConsentStore) Probe(ctx context.Context) error { return s.db.Probe(ctx) }

// Probe implements dsar.Prober.
func (s *DSARStore) Probe(ctx context.Context) error { return s.db.Probe(ctx) }

var (
	_ consent.Prober = (*ConsentStore)(nil)
	_ dsar.Prober    = (*DSARStore)(nil)
)
