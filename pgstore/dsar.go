package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/dsar"
)

// DSARStore keeps data-subject requests and their packages in a [DB]. It is a
// [dsar.Leaser]: the engines of every replica on the database share the requests through
// leases (dsar/LEASES.md). It names the columns it uses, so that later migrations can add
// others to dsar_requests.
type DSARStore struct{ db *DB }

var (
	_ dsar.Store       = (*DSARStore)(nil)
	_ dsar.Leaser      = (*DSARStore)(nil)
	_ dsar.ResultStore = (*DSARStore)(nil)
	_ dsar.RangeStore  = (*DSARStore)(nil)
	_ dsar.BatchStore  = (*DSARStore)(nil)
	_ dsar.Prober      = (*DSARStore)(nil)
)

// DSAR returns the request engine's view of db.
func (db *DB) DSAR() *DSARStore { return &DSARStore{db: db} }

// requestPage is how many requests EachRequest and EachRequestAfter read per query.
const requestPage = 256

// qPutRequests is an unconditional upsert: the columns the engine keeps beside the body,
// but not the lease, which stays with its holder (whose next write then finds the version
// moved, and merges).
const qPutRequests = `INSERT INTO dsar_requests (id, subject, version, due, body)
	SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::timestamptz[], $5::bytea[])
	ON CONFLICT (id) DO UPDATE SET subject = excluded.subject, version = excluded.version,
		due = excluded.due, body = excluded.body`

// PutRequest implements dsar.Store: an unconditional write, for tools that write requests
// directly (the engine on a shared store writes with the Leaser's methods). The request's
// subject, version and due time are taken from body as the engine takes them
// ([dsar.WriteOf]); its lease is left alone. Returns an error wrapping privguard.ErrInvalid
// if body is not a request with a version, or id cannot be stored (empty, invalid UTF-8,
// a NUL).
func (s *DSARStore) PutRequest(ctx context.Context, id string, body []byte) error {
	return s.PutRequests(ctx, []string{id}, [][]byte{body})
}

// PutRequests implements dsar.BatchStore: every request in one statement (one
// transaction), each as PutRequest writes it. An id given twice keeps its last body, as in
// boltstore.
func (s *DSARStore) PutRequests(ctx context.Context, ids []string, bodies [][]byte) error {
	if len(ids) != len(bodies) {
		return fmt.Errorf("put requests: %d ids, %d bodies", len(ids), len(bodies))
	}
	if len(ids) == 0 {
		return nil
	}
	last := make(map[string]int, len(ids))
	for i, id := range ids {
		last[id] = i
	}
	var (
		keys, subjects []string
		versions       []int64
		dues           []pgtype.Timestamptz
		values         [][]byte
	)
	for i, id := range ids {
		if last[id] != i {
			continue
		}
		if id == "" || !storableID(id) {
			return fmt.Errorf("put request: an id empty, of invalid UTF-8 or with a NUL: %w", privguard.ErrInvalid)
		}
		w, err := dsar.WriteOf(bodies[i])
		if err != nil {
			return fmt.Errorf("put request %s: %w", id, err)
		}
		keys, subjects, versions = append(keys, id), append(subjects, string(w.Subject)), append(versions, int64(w.Version))
		dues, values = append(dues, timestamptz(w.Due)), append(values, notNil(bodies[i]))
	}
	if _, err := s.db.pool.Exec(ctx, qPutRequests, keys, subjects, versions, dues, values); err != nil {
		return fmt.Errorf("put %d requests: %w: %w", len(keys), err, privguard.ErrUnavailable)
	}
	return nil
}

// storableID reports whether id can be a text key: no request is stored under any other.
func storableID(id string) bool {
	return utf8.ValidString(id) && !strings.ContainsRune(id, 0)
}

// timestamptz is t as a column value; the zero time is NULL.
func timestamptz(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}

// Request implements dsar.Store.
func (s *DSARStore) Request(ctx context.Context, id string) ([]byte, error) {
	if !storableID(id) {
		return nil, fmt.Errorf("request: %w", privguard.ErrNotFound)
	}
	var out []byte
	err := s.db.pool.QueryRow(ctx, `SELECT body FROM dsar_requests WHERE id = $1`, id).Scan(&out)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("request: %w", privguard.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("request: %w: %w", err, privguard.ErrUnavailable)
	}
	return out, nil
}

// EachRequest implements dsar.Store, in id order, in pages; fn runs between the pages'
// queries.
func (s *DSARStore) EachRequest(ctx context.Context, fn func(body []byte) error) error {
	return s.each(ctx, "", fn)
}

// EachRequestAfter implements dsar.RangeStore.
func (s *DSARStore) EachRequestAfter(ctx context.Context, after string, fn func(body []byte) error) error {
	return s.each(ctx, after, fn)
}

// each is EachRequestAfter; after "" it reads every request (no id is empty: see
// PutRequests and the Leaser's writes).
func (s *DSARStore) each(ctx context.Context, after string, fn func(body []byte) error) error {
	const q = `SELECT id, body FROM dsar_requests WHERE id > $1 ORDER BY id LIMIT $2`
	if !storableID(after) {
		return fmt.Errorf("requests after a cursor of invalid UTF-8 or with a NUL: %w", privguard.ErrInvalid)
	}
	for {
		type kv struct {
			id   string
			body []byte
		}
		var batch []kv
		rows, err := s.db.pool.Query(ctx, q, after, requestPage)
		if err == nil {
			var id string
			var body []byte
			_, err = pgx.ForEachRow(rows, []any{&id, &body}, func() error {
				batch = append(batch, kv{id, body})
				body = nil
				return nil
			})
		}
		if err != nil {
			return fmt.Errorf("requests: %w: %w", err, privguard.ErrUnavailable)
		}
		for _, e := range batch {
			if err := fn(e.body); err != nil {
				return err
			}
		}
		if len(batch) < requestPage {
			return nil
		}
		after = batch[len(batch)-1].id
	}
}

// PutResult implements dsar.ResultStore.
func (s *DSARStore) PutResult(ctx context.Context, key string, body []byte) error {
	_, err := s.db.pool.Exec(ctx, `INSERT INTO dsar_results (key, body) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET body = excluded.body`, []byte(key), notNil(body))
	if err != nil {
		return fmt.Errorf("put result: %w: %w", err, privguard.ErrUnavailable)
	}
	return nil
}

// Result implements dsar.ResultStore.
func (s *DSARStore) Result(ctx context.Context, key string) ([]byte, error) {
	var out []byte
	err := s.db.pool.QueryRow(ctx, `SELECT body FROM dsar_results WHERE key = $1`, []byte(key)).Scan(&out)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("result: %w", privguard.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("result: %w: %w", err, privguard.ErrUnavailable)
	}
	return out, nil
}

// DeleteResult implements dsar.ResultStore.
func (s *DSARStore) DeleteResult(ctx context.Context, key string) error {
	if _, err := s.db.pool.Exec(ctx, `DELETE FROM dsar_results WHERE key = $1`, []byte(key)); err != nil {
		return fmt.Errorf("delete result: %w: %w", err, privguard.ErrUnavailable)
	}
	return nil
}
