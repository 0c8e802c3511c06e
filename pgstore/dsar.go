package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/dsar"
)

// DSARStore keeps data-subject requests and their packages in a [DB]. It names the
// columns it uses, so that later migrations can add others to dsar_requests.
type DSARStore struct{ db *DB }

var (
	_ dsar.Store       = (*DSARStore)(nil)
	_ dsar.ResultStore = (*DSARStore)(nil)
	_ dsar.RangeStore  = (*DSARStore)(nil)
	_ dsar.BatchStore  = (*DSARStore)(nil)
	_ dsar.Prober      = (*DSARStore)(nil)
)

// DSAR returns the request engine's view of db.
func (db *DB) DSAR() *DSARStore { return &DSARStore{db: db} }

// requestPage is how many requests EachRequest and EachRequestAfter read per query.
const requestPage = 256

const qPutRequests = `INSERT INTO dsar_requests (id, body) SELECT * FROM unnest($1::bytea[], $2::bytea[])
	ON CONFLICT (id) DO UPDATE SET body = excluded.body`

// PutRequest implements dsar.Store.
func (s *DSARStore) PutRequest(ctx context.Context, id string, body []byte) error {
	return s.PutRequests(ctx, []string{id}, [][]byte{body})
}

// PutRequests implements dsar.BatchStore: every request in one statement (one
// transaction). An id given twice keeps its last body, as in boltstore.
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
	keys, values := make([][]byte, 0, len(last)), make([][]byte, 0, len(last))
	for i, id := range ids {
		if last[id] == i {
			keys, values = append(keys, []byte(id)), append(values, notNil(bodies[i]))
		}
	}
	if _, err := s.db.pool.Exec(ctx, qPutRequests, keys, values); err != nil {
		return fmt.Errorf("put %d requests: %w: %w", len(keys), err, privguard.ErrUnavailable)
	}
	return nil
}

// Request implements dsar.Store.
func (s *DSARStore) Request(ctx context.Context, id string) ([]byte, error) {
	var out []byte
	err := s.db.pool.QueryRow(ctx, `SELECT body FROM dsar_requests WHERE id = $1`, []byte(id)).Scan(&out)
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
	return s.each(ctx, nil, fn)
}

// EachRequestAfter implements dsar.RangeStore.
func (s *DSARStore) EachRequestAfter(ctx context.Context, after string, fn func(body []byte) error) error {
	return s.each(ctx, []byte(after), fn)
}

func (s *DSARStore) each(ctx context.Context, after []byte, fn func(body []byte) error) error {
	q := `SELECT id, body FROM dsar_requests WHERE id > $1 ORDER BY id LIMIT $2`
	if after == nil {
		q = `SELECT id, body FROM dsar_requests WHERE id >= $1 ORDER BY id LIMIT $2`
		after = []byte{}
	}
	for {
		type kv struct{ id, body []byte }
		var batch []kv
		rows, err := s.db.pool.Query(ctx, q, after, requestPage)
		if err == nil {
			var id, body []byte
			_, err = pgx.ForEachRow(rows, []any{&id, &body}, func() error {
				batch = append(batch, kv{id, body})
				id, body = nil, nil
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
		q = `SELECT id, body FROM dsar_requests WHERE id > $1 ORDER BY id LIMIT $2`
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
