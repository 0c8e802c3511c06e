package pgstore

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/journal"
)

// JournalStore keeps the journal package's logs and sets in a [DB]. Several processes
// append to one log at once: an append checks the stored head in its transaction, and
// the primary key (log, seq) refuses the loser of a race, which is told
// journal.ErrHeadMoved.
type JournalStore struct{ db *DB }

var (
	_ journal.Store    = (*JournalStore)(nil)
	_ journal.SetStore = (*JournalStore)(nil)
)

// Journal returns the journal's view of db.
func (db *DB) Journal() *JournalStore { return &JournalStore{db: db} }

func hexBytes(log string, seq uint64, what, s string, n int) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != n {
		return nil, fmt.Errorf("journal %s: entry %d: bad %s: %w", log, seq, what, privguard.ErrInvalid)
	}
	return b, nil
}

// AppendJournal implements journal.Store.
func (s *JournalStore) AppendJournal(ctx context.Context, log string, entries []journal.Entry) error {
	if err := journal.ValidName(log); err != nil {
		return fmt.Errorf("%w: %w", err, privguard.ErrInvalid)
	}
	if len(entries) == 0 {
		return nil
	}
	batch := &pgx.Batch{}
	for i := range entries {
		e := &entries[i]
		if i > 0 && (e.Seq != entries[i-1].Seq+1 || e.Prev != entries[i-1].Hash) {
			return fmt.Errorf("journal %s: entries do not follow each other: %w", log, privguard.ErrInvalid)
		}
		var prev []byte
		if e.Prev != "" {
			var err error
			if prev, err = hexBytes(log, e.Seq, "previous hash", e.Prev, 32); err != nil {
				return journal.ErrHeadMoved // no stored head has that hash
			}
		}
		hash, err := hexBytes(log, e.Seq, "hash", e.Hash, 32)
		if err != nil {
			return err
		}
		batch.Queue(`INSERT INTO journal_entries (log, seq, time, prev, hash, body) VALUES ($1, $2, $3, $4, $5, $6)`,
			log, int64(e.Seq), e.Time, prev, hash, notNil(e.Body))
	}
	// Appends to one log are serialised by a transaction-scoped advisory lock on its
	// name, and the head is checked under it; the primary key is the second guard.
	err := pgx.BeginFunc(ctx, s.db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('privguard.journal.' || $1, 0))`, log); err != nil {
			return err
		}
		var seq int64
		var hash []byte
		err := tx.QueryRow(ctx, `SELECT seq, hash FROM journal_entries WHERE log = $1 ORDER BY seq DESC LIMIT 1`, log).Scan(&seq, &hash)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if entries[0].Seq != uint64(seq)+1 || entries[0].Prev != hex.EncodeToString(hash) {
			return journal.ErrHeadMoved
		}
		return tx.SendBatch(ctx, batch).Close()
	})
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, journal.ErrHeadMoved), errors.As(err, &pgErr) && pgErr.Code == "23505":
		return journal.ErrHeadMoved
	case err != nil:
		return fmt.Errorf("journal %s: append: %w: %w", log, err, privguard.ErrUnavailable)
	}
	return nil
}

// JournalHead implements journal.Store.
func (s *JournalStore) JournalHead(ctx context.Context, log string) (journal.Entry, error) {
	rows, err := s.db.pool.Query(ctx, `SELECT seq, time, prev, hash, body FROM journal_entries WHERE log = $1 ORDER BY seq DESC LIMIT 1`, log)
	if err != nil {
		return journal.Entry{}, fmt.Errorf("journal %s: head: %w: %w", log, err, privguard.ErrUnavailable)
	}
	var head journal.Entry
	err = scanEntries(log, rows, func(e journal.Entry) error { head = e; return nil })
	return head, err
}

// journalPage bounds the rows one query of JournalEntries reads.
const journalPage = 4096

// JournalEntries implements journal.Store. It reads in pages by key, so that a long
// export holds no transaction open.
func (s *JournalStore) JournalEntries(ctx context.Context, log string, from uint64, fn func(journal.Entry) error) error {
	if from == 0 {
		from = 1
	}
	for {
		rows, err := s.db.pool.Query(ctx, `SELECT seq, time, prev, hash, body FROM journal_entries WHERE log = $1 AND seq >= $2 ORDER BY seq LIMIT $3`,
			log, int64(from), journalPage)
		if err != nil {
			return fmt.Errorf("journal %s: entries: %w: %w", log, err, privguard.ErrUnavailable)
		}
		var page []journal.Entry
		if err := scanEntries(log, rows, func(e journal.Entry) error { page = append(page, e); return nil }); err != nil {
			return err
		}
		for _, e := range page {
			if err := fn(e); err != nil {
				return err
			}
		}
		if len(page) < journalPage {
			return nil
		}
		from = page[len(page)-1].Seq + 1
	}
}

func scanEntries(log string, rows pgx.Rows, fn func(journal.Entry) error) error {
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var prev, hash, body []byte
		e := journal.Entry{Log: log}
		if err := rows.Scan(&seq, &e.Time, &prev, &hash, &body); err != nil {
			return fmt.Errorf("journal %s: read: %w: %w", log, err, privguard.ErrUnavailable)
		}
		e.Seq, e.Time = uint64(seq), e.Time.UTC()
		e.Prev, e.Hash, e.Body = hex.EncodeToString(prev), hex.EncodeToString(hash), body
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("journal %s: read: %w: %w", log, err, privguard.ErrUnavailable)
	}
	return nil
}

// AddToSet implements journal.SetStore. The set's size row is locked first, so concurrent
// adds to one set are serialised and its size and limit stay exact.
func (s *JournalStore) AddToSet(ctx context.Context, set string, members [][]byte, limit int64) (int, int64, error) {
	if err := journal.ValidName(set); err != nil {
		return 0, 0, fmt.Errorf("%w: %w", err, privguard.ErrInvalid)
	}
	for _, m := range members {
		if len(m) == 0 || len(m) > 64 {
			return 0, 0, fmt.Errorf("set %s: a member of %d bytes (1 to 64): %w", set, len(m), privguard.ErrInvalid)
		}
	}
	var added int
	var size int64
	err := pgx.BeginFunc(ctx, s.db.pool, func(tx pgx.Tx) error {
		// Lock the size row first, so that two transactions never count the same member.
		if _, err := tx.Exec(ctx, `INSERT INTO journal_set_sizes (name, size) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING`, set); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT size FROM journal_set_sizes WHERE name = $1 FOR UPDATE`, set).Scan(&size); err != nil {
			return err
		}
		if limit > 0 {
			// Under the size row's lock, the members not yet in the set are exactly those
			// the insert would add.
			if err := tx.QueryRow(ctx, `SELECT count(DISTINCT m) FROM unnest($2::bytea[]) AS m
			    WHERE NOT EXISTS (SELECT 1 FROM journal_sets WHERE name = $1 AND member = m)`, set, members).Scan(&added); err != nil {
				return err
			}
			if size+int64(added) > limit {
				return journal.ErrSetLimit
			}
		}
		tag, err := tx.Exec(ctx, `INSERT INTO journal_sets (name, member) SELECT DISTINCT $1::text, m FROM unnest($2::bytea[]) AS m ON CONFLICT DO NOTHING`, set, members)
		if err != nil {
			return err
		}
		added = int(tag.RowsAffected())
		size += int64(added)
		_, err = tx.Exec(ctx, `UPDATE journal_set_sizes SET size = $2 WHERE name = $1`, set, size)
		return err
	})
	if errors.Is(err, journal.ErrSetLimit) {
		return added, size, fmt.Errorf("set %s: %d more would pass %d: %w", set, added, limit, err)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("set %s: add: %w: %w", set, err, privguard.ErrUnavailable)
	}
	return added, size, nil
}

// SetSize implements journal.SetStore.
func (s *JournalStore) SetSize(ctx context.Context, set string) (int64, error) {
	var size int64
	err := s.db.pool.QueryRow(ctx, `SELECT size FROM journal_set_sizes WHERE name = $1`, set).Scan(&size)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("set %s: size: %w: %w", set, err, privguard.ErrUnavailable)
	}
	return size, nil
}
