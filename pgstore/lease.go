package pgstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/dsar"
)

// The leases of shared requests: dsar.Leaser, the queries of dsar/LEASES.md. Every time is
// the engine's, passed in; the queries never read the database's clock. A lease has lapsed
// at now when lease_until <= now.

// qLease takes up to $4 due requests whose lease is free or lapsed. SKIP LOCKED: replicas
// leasing at once pass over each other's rows instead of waiting on them, and never take
// one row twice (a row locked by another's Lease is skipped; one it leased and committed
// is re-checked when locked, and is no longer free). The choice is a MATERIALIZED CTE
// rather than LEASES.md's IN (subquery): the planner may rescan a subquery on the inner
// side of a join, and each rescan would lock and lease another $4 rows; a materialised
// CTE runs once.
const qLease = `WITH chosen AS MATERIALIZED (
	SELECT id FROM dsar_requests
	 WHERE due IS NOT NULL AND due <= $2
	   AND (lease_until IS NULL OR lease_until <= $2)
	 ORDER BY due, id
	 LIMIT $4
	 FOR UPDATE SKIP LOCKED)
UPDATE dsar_requests r
   SET lease_holder = $1, lease_until = $3
  FROM chosen
 WHERE r.id = chosen.id
RETURNING r.id, r.due, r.body`

// Lease implements dsar.Leaser.
func (s *DSARStore) Lease(ctx context.Context, holder string, now time.Time, ttl time.Duration, limit int) ([]dsar.Leased, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.db.pool.Query(ctx, qLease, holder, now, now.Add(ttl), limit)
	if err != nil {
		return nil, fmt.Errorf("lease requests: %w: %w", err, privguard.ErrUnavailable)
	}
	type row struct {
		id   string
		due  time.Time
		body []byte
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		return x, r.Scan(&x.id, &x.due, &x.body)
	})
	if err != nil {
		return nil, fmt.Errorf("lease requests: %w: %w", err, privguard.ErrUnavailable)
	}
	// RETURNING has no order.
	slices.SortFunc(got, func(a, b row) int { return cmp.Or(a.due.Compare(b.due), strings.Compare(a.id, b.id)) })
	out := make([]dsar.Leased, len(got))
	for i, x := range got {
		out[i] = dsar.Leased{ID: x.id, Body: x.body}
	}
	return out, nil
}

// qRenew locks its rows in id order, as qPutsLeased does (see there).
const qRenew = `WITH held AS MATERIALIZED (
	SELECT id FROM dsar_requests
	 WHERE id = ANY($2) AND lease_holder = $1 AND lease_until > $3
	 ORDER BY id
	 FOR UPDATE)
UPDATE dsar_requests r SET lease_until = $4
  FROM held
 WHERE r.id = held.id
RETURNING r.id`

// Renew implements dsar.Leaser.
func (s *DSARStore) Renew(ctx context.Context, holder string, ids []string, now time.Time, ttl time.Duration) ([]string, error) {
	ids = storable(ids)
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := s.db.pool.Query(ctx, qRenew, holder, ids, now, now.Add(ttl))
	if err != nil {
		return nil, fmt.Errorf("renew leases: %w: %w", err, privguard.ErrUnavailable)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("renew leases: %w: %w", err, privguard.ErrUnavailable)
	}
	return out, nil
}

// Release implements dsar.Leaser.
func (s *DSARStore) Release(ctx context.Context, holder string, ids []string) error {
	ids = storable(ids)
	if len(ids) == 0 {
		return nil
	}
	_, err := s.db.pool.Exec(ctx, `UPDATE dsar_requests SET lease_holder = NULL, lease_until = NULL
		WHERE id = ANY($2) AND lease_holder = $1`, holder, ids)
	if err != nil {
		return fmt.Errorf("release leases: %w: %w", err, privguard.ErrUnavailable)
	}
	return nil
}

// storable returns the ids that can be stored (none of the others is).
func storable(ids []string) []string {
	if !slices.ContainsFunc(ids, func(id string) bool { return !storableID(id) }) {
		return ids
	}
	return slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return !storableID(id) })
}

// qPutLeased is the lease holder's fenced write; qWhyNot tells, after it changed nothing,
// which of its conditions failed (a conflict is rare: the second query is too).
const (
	qPutLeased = `UPDATE dsar_requests
   SET subject = $4, version = $5, due = $6, body = $7
 WHERE id = $3 AND lease_holder = $1 AND lease_until > $2 AND version = $5 - 1`
	qWhyNot = `SELECT coalesce(lease_holder = $1 AND lease_until > $2, false), version FROM dsar_requests WHERE id = $3`
)

// PutRequestLeased implements dsar.Leaser.
func (s *DSARStore) PutRequestLeased(ctx context.Context, holder string, now time.Time, w dsar.Write) error {
	if err := checkWrite(w); err != nil {
		return err
	}
	tag, err := s.db.pool.Exec(ctx, qPutLeased, holder, now, w.ID, string(w.Subject), int64(w.Version), timestamptz(w.Due), notNil(w.Body))
	if err != nil {
		return fmt.Errorf("put request %s: %w: %w", w.ID, err, privguard.ErrUnavailable)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var held bool
	var version int64
	switch err := s.db.pool.QueryRow(ctx, qWhyNot, holder, now, w.ID).Scan(&held, &version); {
	case errors.Is(err, pgx.ErrNoRows), err == nil && !held:
		return fmt.Errorf("put request %s: %w", w.ID, dsar.ErrLeaseLost)
	case err != nil:
		return fmt.Errorf("put request %s: %w: %w", w.ID, err, privguard.ErrUnavailable)
	}
	return fmt.Errorf("put request %s: version %d stored, %d written: %w", w.ID, version, w.Version, dsar.ErrVersion)
}

// qPutsLeased is PutRequestLeased's write for many requests in one statement, the writes
// passed as arrays (one element per write); qWhyNotMany classifies, in one more query,
// the writes it did not store. The rows are locked in id order before they are written
// (the MATERIALIZED CTE, locked as sorted), as Renew locks its rows, so that a holder's
// renewal and its batch write, which run at once, never deadlock.
const (
	qPutsLeased = `WITH w (id, subject, version, due, body) AS (
	SELECT * FROM unnest($3::text[], $4::text[], $5::bigint[], $6::timestamptz[], $7::bytea[])),
held AS MATERIALIZED (
	SELECT r.id FROM dsar_requests r JOIN w ON r.id = w.id
	 WHERE r.lease_holder = $1 AND r.lease_until > $2 AND r.version = w.version - 1
	 ORDER BY r.id
	 FOR UPDATE OF r)
UPDATE dsar_requests r
   SET subject = w.subject, version = w.version, due = w.due, body = w.body
  FROM w JOIN held ON held.id = w.id
 WHERE r.id = w.id
RETURNING r.id`
	qWhyNotMany = `SELECT id, coalesce(lease_holder = $1 AND lease_until > $2, false), version FROM dsar_requests WHERE id = ANY($3)`
)

// PutRequestsLeased implements dsar.Leaser: one statement for every write, and one more
// query if some were not stored.
func (s *DSARStore) PutRequestsLeased(ctx context.Context, holder string, now time.Time, ws []dsar.Write) ([]error, error) {
	if len(ws) == 0 {
		return nil, nil
	}
	var (
		ids      = make([]string, len(ws))
		subjects = make([]string, len(ws))
		versions = make([]int64, len(ws))
		dues     = make([]pgtype.Timestamptz, len(ws))
		bodies   = make([][]byte, len(ws))
		index    = make(map[string]int, len(ws))
	)
	for i, w := range ws {
		if err := checkWrite(w); err != nil {
			return nil, err
		}
		if _, ok := index[w.ID]; ok {
			return nil, fmt.Errorf("put requests: %s written twice: %w", w.ID, privguard.ErrInvalid)
		}
		index[w.ID] = i
		ids[i], subjects[i], versions[i], dues[i], bodies[i] = w.ID, string(w.Subject), int64(w.Version), timestamptz(w.Due), notNil(w.Body)
	}
	rows, err := s.db.pool.Query(ctx, qPutsLeased, holder, now, ids, subjects, versions, dues, bodies)
	if err != nil {
		return nil, fmt.Errorf("put %d requests: %w: %w", len(ws), err, privguard.ErrUnavailable)
	}
	stored, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("put %d requests: %w: %w", len(ws), err, privguard.ErrUnavailable)
	}
	out := make([]error, len(ws))
	if len(stored) == len(ws) {
		return out, nil
	}
	refused := make(map[string]bool, len(ws)-len(stored))
	for _, id := range ids {
		refused[id] = true
	}
	for _, id := range stored {
		delete(refused, id)
	}
	// A refused write is a lost lease unless its row says the lease is held (then the
	// version moved), as PutRequestLeased's qWhyNot tells.
	for id := range refused {
		out[index[id]] = fmt.Errorf("put request %s: %w", id, dsar.ErrLeaseLost)
	}
	rows, err = s.db.pool.Query(ctx, qWhyNotMany, holder, now, slices.Collect(maps.Keys(refused)))
	if err != nil {
		return nil, fmt.Errorf("put %d requests: %w: %w", len(ws), err, privguard.ErrUnavailable)
	}
	var (
		id      string
		held    bool
		version int64
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &held, &version}, func() error {
		if i, ok := index[id]; ok && refused[id] && held {
			out[i] = fmt.Errorf("put request %s: version %d stored, %d written: %w", id, version, ws[i].Version, dsar.ErrVersion)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("put %d requests: %w: %w", len(ws), err, privguard.ErrUnavailable)
	}
	return out, nil
}

// The writes of intake, operators and callbacks: version-checked, whoever holds the lease
// (which they leave alone).
const (
	qInsertIf = `INSERT INTO dsar_requests (id, subject, version, due, body) VALUES ($1, $2, 1, $3, $4)
	ON CONFLICT (id) DO NOTHING`
	qUpdateIf = `UPDATE dsar_requests SET subject = $2, version = $5, due = $3, body = $4
	WHERE id = $1 AND version = $5 - 1`
)

// putIf returns w's conditional write.
func putIf(w dsar.Write) (string, []any) {
	if w.Version == 1 {
		return qInsertIf, []any{w.ID, string(w.Subject), timestamptz(w.Due), notNil(w.Body)}
	}
	return qUpdateIf, []any{w.ID, string(w.Subject), timestamptz(w.Due), notNil(w.Body), int64(w.Version)}
}

// PutRequestIf implements dsar.Leaser.
func (s *DSARStore) PutRequestIf(ctx context.Context, w dsar.Write) error {
	if err := checkWrite(w); err != nil {
		return err
	}
	q, args := putIf(w)
	tag, err := s.db.pool.Exec(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("put request %s: %w: %w", w.ID, err, privguard.ErrUnavailable)
	}
	if tag.RowsAffected() != 1 {
		return versionMoved(w)
	}
	return nil
}

// PutRequestsIf implements dsar.Leaser: one transaction, its statements sent together.
func (s *DSARStore) PutRequestsIf(ctx context.Context, ws []dsar.Write) error {
	if len(ws) == 0 {
		return nil
	}
	for _, w := range ws {
		if err := checkWrite(w); err != nil {
			return err
		}
	}
	err := pgx.BeginFunc(ctx, s.db.pool, func(tx pgx.Tx) error {
		var b pgx.Batch
		for _, w := range ws {
			q, args := putIf(w)
			b.Queue(q, args...)
		}
		res := tx.SendBatch(ctx, &b)
		for _, w := range ws {
			tag, err := res.Exec()
			if err != nil {
				res.Close()
				return fmt.Errorf("put request %s: %w: %w", w.ID, err, privguard.ErrUnavailable)
			}
			if tag.RowsAffected() != 1 {
				res.Close()
				return versionMoved(w) // rolls the transaction back
			}
		}
		if err := res.Close(); err != nil {
			return fmt.Errorf("put %d requests: %w: %w", len(ws), err, privguard.ErrUnavailable)
		}
		return nil
	})
	if err != nil && !errors.Is(err, privguard.ErrConflict) && !errors.Is(err, privguard.ErrUnavailable) {
		return fmt.Errorf("put %d requests: %w: %w", len(ws), err, privguard.ErrUnavailable) // BEGIN or COMMIT
	}
	return err
}

func versionMoved(w dsar.Write) error {
	if w.Version == 1 {
		return fmt.Errorf("put request %s: a request is stored under its id already: %w", w.ID, dsar.ErrVersion)
	}
	return fmt.Errorf("put request %s: version %d is not stored: %w", w.ID, w.Version-1, dsar.ErrVersion)
}

// checkWrite refuses a write that cannot be stored (and that no version check would
// ever let through).
func checkWrite(w dsar.Write) error {
	if w.ID == "" || !storableID(w.ID) || !storableID(string(w.Subject)) || w.Version == 0 {
		return fmt.Errorf("put request: an id empty, an id or subject of invalid UTF-8 or with a NUL, or version 0: %w", privguard.ErrInvalid)
	}
	return nil
}

// SubjectRequests implements dsar.Leaser.
func (s *DSARStore) SubjectRequests(ctx context.Context, subjects []privguard.SubjectID) ([][]byte, error) {
	if len(subjects) == 0 {
		return nil, nil
	}
	keys := make([]string, 0, len(subjects))
	for _, subject := range subjects {
		if storableID(string(subject)) {
			keys = append(keys, string(subject))
		}
	}
	rows, err := s.db.pool.Query(ctx, `SELECT body FROM dsar_requests WHERE subject = ANY($1) ORDER BY id`, keys)
	if err != nil {
		return nil, fmt.Errorf("subject requests: %w: %w", err, privguard.ErrUnavailable)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, fmt.Errorf("subject requests: %w: %w", err, privguard.ErrUnavailable)
	}
	return out, nil
}
