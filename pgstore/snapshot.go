package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"

	"github.com/privguard/privguard"
)

// WriteSnapshot implements consent.Snapshotter: what write writes is buffered in memory
// and then replaces the one shared snapshot row in one statement, so that a failure
// leaves the previous snapshot. It takes no lock but the snapshot row's: the other
// processes' commits go on meanwhile. Each replica's ledger writes its own snapshots into
// the same row; the last one written is read, and the ledger replays the records after it.
func (s *ConsentStore) WriteSnapshot(ctx context.Context, write func(w io.Writer) error) error {
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		return fmt.Errorf("pgstore: snapshot: %w", err)
	}
	_, err := s.db.pool.Exec(ctx, `INSERT INTO consent_snapshot (id, body, written_at) VALUES (true, $1, now())
		ON CONFLICT (id) DO UPDATE SET body = excluded.body, written_at = excluded.written_at`, notNil(buf.Bytes()))
	if err != nil {
		return fmt.Errorf("pgstore: snapshot of %d bytes: %w: %w", buf.Len(), err, privguard.ErrUnavailable)
	}
	return nil
}

// ReadSnapshot implements consent.Snapshotter. The snapshot is read into memory whole.
func (s *ConsentStore) ReadSnapshot(ctx context.Context, read func(r io.Reader, size int64) error) error {
	var body []byte
	err := s.db.pool.QueryRow(ctx, `SELECT body FROM consent_snapshot WHERE id`).Scan(&body)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("pgstore: snapshot: %w", privguard.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("pgstore: snapshot: %w: %w", err, privguard.ErrUnavailable)
	}
	return read(bytes.NewReader(body), int64(len(body)))
}
