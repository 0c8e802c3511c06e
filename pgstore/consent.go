package pgstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
)

// ConsentStore is the consent ledger's storage in a [DB].
type ConsentStore struct{ db *DB }

var (
	_ consent.Store       = (*ConsentStore)(nil)
	_ consent.SharedStore = (*ConsentStore)(nil)
	_ consent.Prober      = (*ConsentStore)(nil)
	_ consent.Snapshotter = (*ConsentStore)(nil)
)

// Consent returns the ledger's view of db.
func (db *DB) Consent() *ConsentStore { return &ConsentStore{db: db} }

// errHeadMoved is the SQLSTATE consent_lock_head raises (migration 00001).
const errHeadMoved = "PGH01"

// scanPage is how many records ScanRecords reads per query.
const scanPage = 8192

const (
	qLockHead = `SELECT consent_lock_head($1, $2)`
	qNotices  = `INSERT INTO consent_notices (key, body) SELECT * FROM unnest($1::bytea[], $2::bytea[])`
	qRecords  = `INSERT INTO consent_records (seq, id, subject, hash, body)
		SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[], $4::bytea[], $5::bytea[])`
	qIdem = `INSERT INTO consent_idempotency (key, seq, fingerprint)
		SELECT * FROM unnest($1::bytea[], $2::bigint[], $3::bytea[])
		ON CONFLICT (key) DO UPDATE SET seq = excluded.seq, fingerprint = excluded.fingerprint`
	qSuppress = `INSERT INTO consent_suppressions (key, seq) SELECT * FROM unnest($1::bytea[], $2::bigint[])
		ON CONFLICT (key) DO NOTHING`
	qSetHead = `UPDATE consent_head SET seq = $1, hash = $2`
	qNotify  = `SELECT pg_notify($1, $2)`
)

// Commit implements consent.SharedStore: in one transaction, sent in one round trip, it
// locks the chain head and checks it is still b.Base (else an error wrapping
// consent.ErrHeadMoved), inserts the notices (one already stored: ErrHeadMoved too), the
// records, idempotency keys and suppressions (the first suppression of a key is kept),
// advances the head to the last record and notifies the other processes. On any error
// nothing of b is written. Other errors wrap privguard.ErrUnavailable.
func (s *ConsentStore) Commit(ctx context.Context, b *consent.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	batch, err := s.batchOf(b)
	if err != nil {
		return err
	}
	// A batch without transaction statements runs as one implicit transaction: an error
	// in any statement rolls back all of them.
	return s.commitError(b, s.send(s.db.pool.SendBatch(ctx, batch), batch.Len()))
}

// send runs the queued statements of a sent batch and closes it.
func (s *ConsentStore) send(br pgx.BatchResults, n int) error {
	var err error
	for range n {
		if _, err = br.Exec(); err != nil {
			break
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return err
}

// CommitLocked implements consent.LockingCommitter: a transaction that locks the head
// first, then writes the batch build returns for it.
func (s *ConsentStore) CommitLocked(ctx context.Context, build func(ctx context.Context, head uint64, hash [32]byte) (*consent.Batch, error)) error {
	tx, err := s.db.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pgstore: begin: %w: %w", err, privguard.ErrUnavailable)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var seq int64
	var hash []byte
	if err := tx.QueryRow(ctx, `SELECT seq, hash FROM consent_head FOR UPDATE`).Scan(&seq, &hash); err != nil {
		return fmt.Errorf("pgstore: lock the head: %w: %w", err, privguard.ErrUnavailable)
	}
	var h [32]byte
	copy(h[:], hash)
	b, err := build(ctx, uint64(seq), h)
	if err != nil || b == nil {
		return err
	}
	batch, err := s.batchOf(b)
	if err != nil {
		return err
	}
	if err := s.send(tx.SendBatch(ctx, batch), batch.Len()); err != nil {
		// Inside the transaction, before its COMMIT: nothing is written.
		return fmt.Errorf("pgstore: commit %d records: %w: %w", len(b.Records), err, privguard.ErrUnavailable)
	}
	if err := tx.Commit(ctx); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			return fmt.Errorf("pgstore: commit %d records: %w: %w", len(b.Records), err, privguard.ErrUnavailable)
		}
		return fmt.Errorf("pgstore: commit %d records: %w: %w: %w", len(b.Records), err, consent.ErrMaybeCommitted, privguard.ErrUnavailable)
	}
	return nil
}

var _ consent.LockingCommitter = (*ConsentStore)(nil)

// batchOf queues the statements that write b: the head check, notices, records,
// idempotency keys, the new head, suppressions and the notification.
func (s *ConsentStore) batchOf(b *consent.Batch) (*pgx.Batch, error) {
	for i := range b.Records {
		if b.Records[i].Seq != b.Base+1+uint64(i) {
			return nil, fmt.Errorf("pgstore: commit: record %d of the batch has seq %d; the batch is built on %d", i, b.Records[i].Seq, b.Base)
		}
	}
	batch := &pgx.Batch{}
	batch.Queue(qLockHead, int64(b.Base), b.BaseHash[:])
	if len(b.Notices) > 0 {
		// The last of a key wins within a batch, as in boltstore; a key already stored
		// fails the commit (the primary key), as another process registered it first.
		last := make(map[string]int, len(b.Notices))
		for i, n := range b.Notices {
			last[n.Key] = i
		}
		keys, bodies := make([][]byte, 0, len(last)), make([][]byte, 0, len(last))
		for i, n := range b.Notices {
			if last[n.Key] == i {
				keys, bodies = append(keys, []byte(n.Key)), append(bodies, notNil(n.Body))
			}
		}
		batch.Queue(qNotices, keys, bodies)
	}
	if n := len(b.Records); n > 0 {
		seqs, ids, subjects, hashes, bodies := make([]int64, n), make([][]byte, n), make([][]byte, n), make([][]byte, n), make([][]byte, n)
		var idemKeys, idemFPs [][]byte
		var idemSeqs []int64
		idemAt := map[string]int{}
		for i := range b.Records {
			r := &b.Records[i]
			seqs[i], ids[i], subjects[i], hashes[i], bodies[i] = int64(r.Seq), []byte(r.ID), []byte(r.Subject), r.Hash[:], notNil(r.Body)
			if r.IdempotencyKey == "" {
				continue
			}
			if j, ok := idemAt[r.IdempotencyKey]; ok { // the last wins, as in boltstore
				idemSeqs[j], idemFPs[j] = int64(r.Seq), notNil(r.Fingerprint)
				continue
			}
			idemAt[r.IdempotencyKey] = len(idemKeys)
			idemKeys, idemSeqs, idemFPs = append(idemKeys, []byte(r.IdempotencyKey)), append(idemSeqs, int64(r.Seq)), append(idemFPs, notNil(r.Fingerprint))
		}
		batch.Queue(qRecords, seqs, ids, subjects, hashes, bodies)
		if len(idemKeys) > 0 {
			batch.Queue(qIdem, idemKeys, idemSeqs, idemFPs)
		}
		last := &b.Records[n-1]
		batch.Queue(qSetHead, int64(last.Seq), last.Hash[:])
	}
	if len(b.Suppressions) > 0 {
		keys, seqs := make([][]byte, len(b.Suppressions)), make([]int64, len(b.Suppressions))
		for i := range b.Suppressions {
			keys[i], seqs[i] = b.Suppressions[i].Key[:], int64(b.Suppressions[i].Seq)
		}
		batch.Queue(qSuppress, keys, seqs)
	}
	if len(b.Records) > 0 || len(b.Notices) > 0 || len(b.Suppressions) > 0 {
		batch.Queue(qNotify, s.db.channel(), s.db.instance)
	}
	return batch, nil
}

// commitError is the error of a commit of b that failed with err (nil: none).
func (s *ConsentStore) commitError(b *consent.Batch, err error) error {
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == errHeadMoved:
			return fmt.Errorf("pgstore: commit on seq %d: %w", b.Base, consent.ErrHeadMoved)
		case pgErr.Code == "23505" && pgErr.ConstraintName == "consent_notices_pkey":
			return fmt.Errorf("pgstore: commit: a notice of the batch is stored already: %w", consent.ErrHeadMoved)
		}
	}
	var connErr *pgconn.ConnectError
	if !errors.As(err, &pgErr) && !errors.As(err, &connErr) && !pgconn.SafeToRetry(err) {
		// Sent, and no answer came back (the connection broke, the context ended): the
		// implicit transaction may have committed at its Sync.
		return fmt.Errorf("commit %d records: %w: %w: %w", len(b.Records), err, consent.ErrMaybeCommitted, privguard.ErrUnavailable)
	}
	return fmt.Errorf("commit %d records: %w: %w", len(b.Records), err, privguard.ErrUnavailable)
}

// notNil makes an absent value an empty one: a nil element of an array parameter is SQL
// NULL, which the NOT NULL columns refuse.
func notNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// channel is the NOTIFY channel of the schema's consent commits.
func (db *DB) channel() string { return db.schema + "_consent" }

// ScanRecords implements consent.Store. It reads scanPage records per query, in seq
// order, so that the ledger's records are never all in memory and no query holds a
// snapshot for long; fn runs while a page's query is open (on one pool connection).
func (s *ConsentStore) ScanRecords(ctx context.Context, from uint64, fn func(seq uint64, hash, body []byte) error) error {
	if from == 0 {
		from = 1
	}
	for {
		n, next, err := s.scanPage(ctx, from, fn)
		if err != nil {
			return err
		}
		if n < scanPage {
			return nil
		}
		from = next
	}
}

// scanPage calls fn with up to scanPage records from seq from and returns how many it
// read and the seq after the last.
func (s *ConsentStore) scanPage(ctx context.Context, from uint64, fn func(seq uint64, hash, body []byte) error) (n int, next uint64, err error) {
	rows, err := s.db.pool.Query(ctx, `SELECT seq, hash, body FROM consent_records WHERE seq >= $1 ORDER BY seq LIMIT $2`, int64(from), scanPage)
	if err != nil {
		return 0, 0, fmt.Errorf("pgstore: scan records from %d: %w: %w", from, err, privguard.ErrUnavailable)
	}
	defer rows.Close()
	fds := rows.FieldDescriptions()
	bin := len(fds) == 3 && fds[0].Format == pgx.BinaryFormatCode && fds[1].Format == pgx.BinaryFormatCode && fds[2].Format == pgx.BinaryFormatCode
	var seq uint64
	var hash, body []byte // declared once: the text path's Scan makes them escape
	for rows.Next() {
		if bin { // the wire bytes themselves, valid until the next row
			raw := rows.RawValues()
			if len(raw[0]) != 8 {
				return n, 0, fmt.Errorf("pgstore: scan records: a seq of %d bytes", len(raw[0]))
			}
			seq, hash, body = binary.BigEndian.Uint64(raw[0]), raw[1], raw[2]
		} else { // the simple protocol (a DSN's default_query_exec_mode) sends text
			var s64 int64
			if err := rows.Scan(&s64, &hash, &body); err != nil {
				return n, 0, fmt.Errorf("pgstore: scan records: %w", err)
			}
			seq = uint64(s64)
		}
		if len(hash) != 32 {
			return n, 0, fmt.Errorf("record %d: stored hash of %d bytes", seq, len(hash))
		}
		if err := fn(seq, hash, body); err != nil {
			return n, 0, err
		}
		n++
		next = seq + 1
	}
	if err := rows.Err(); err != nil {
		return n, 0, fmt.Errorf("pgstore: scan records from %d: %w: %w", from, err, privguard.ErrUnavailable)
	}
	return n, next, nil
}

// Record implements consent.Store.
func (s *ConsentStore) Record(ctx context.Context, seq uint64) (hash, body []byte, err error) {
	err = s.db.pool.QueryRow(ctx, `SELECT hash, body FROM consent_records WHERE seq = $1`, int64(seq)).Scan(&hash, &body)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, fmt.Errorf("record %d: %w", seq, privguard.ErrNotFound)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("record %d: %w: %w", seq, err, privguard.ErrUnavailable)
	}
	return hash, body, nil
}

// SeqByID implements consent.Store.
func (s *ConsentStore) SeqByID(ctx context.Context, id string) (uint64, error) {
	var seq int64
	err := s.db.pool.QueryRow(ctx, `SELECT seq FROM consent_records WHERE id = $1`, []byte(id)).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("record id: %w", privguard.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("record id: %w: %w", err, privguard.ErrUnavailable)
	}
	return uint64(seq), nil
}

// SubjectSeqs implements consent.Store.
func (s *ConsentStore) SubjectSeqs(ctx context.Context, subject privguard.SubjectID) ([]uint64, error) {
	rows, err := s.db.pool.Query(ctx, `SELECT seq FROM consent_records WHERE subject = $1 ORDER BY seq`, []byte(subject))
	if err != nil {
		return nil, fmt.Errorf("subject records: %w: %w", err, privguard.ErrUnavailable)
	}
	var seqs []uint64
	var seq int64
	_, err = pgx.ForEachRow(rows, []any{&seq}, func() error { seqs = append(seqs, uint64(seq)); return nil })
	if err != nil {
		return nil, fmt.Errorf("subject records: %w: %w", err, privguard.ErrUnavailable)
	}
	return seqs, nil
}

// Idempotent implements consent.Store.
func (s *ConsentStore) Idempotent(ctx context.Context, key string) (seq uint64, fingerprint []byte, ok bool, err error) {
	var s64 int64
	err = s.db.pool.QueryRow(ctx, `SELECT seq, fingerprint FROM consent_idempotency WHERE key = $1`, []byte(key)).Scan(&s64, &fingerprint)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil, false, nil
	}
	if err != nil {
		return 0, nil, false, fmt.Errorf("idempotency key: %w: %w", err, privguard.ErrUnavailable)
	}
	return uint64(s64), notNil(fingerprint), true, nil
}

// IdempotentAll implements consent.IdempotentBatcher: one query for a group's keys.
func (s *ConsentStore) IdempotentAll(ctx context.Context, keys []string) (map[string]consent.IdempotentHit, error) {
	raw := make([][]byte, len(keys))
	for i, k := range keys {
		raw[i] = []byte(k)
	}
	rows, err := s.db.pool.Query(ctx, `SELECT key, seq, fingerprint FROM consent_idempotency WHERE key = ANY($1)`, raw)
	if err != nil {
		return nil, fmt.Errorf("idempotency keys: %w: %w", err, privguard.ErrUnavailable)
	}
	defer rows.Close()
	out := make(map[string]consent.IdempotentHit)
	for rows.Next() {
		var key, fp []byte
		var s64 int64
		if err := rows.Scan(&key, &s64, &fp); err != nil {
			return nil, fmt.Errorf("idempotency keys: %w: %w", err, privguard.ErrUnavailable)
		}
		out[string(key)] = consent.IdempotentHit{Seq: uint64(s64), Fingerprint: notNil(fp)}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("idempotency keys: %w: %w", err, privguard.ErrUnavailable)
	}
	return out, nil
}

var _ consent.IdempotentBatcher = (*ConsentStore)(nil)

// ScanNotices implements consent.Store, in key order as boltstore does.
func (s *ConsentStore) ScanNotices(ctx context.Context, fn func(body []byte) error) error {
	return s.notices(ctx, 0, true, func(_ uint64, body []byte) error { return fn(body) })
}

// NoticesAfter implements consent.SharedStore. The notices are read before fn is called.
func (s *ConsentStore) NoticesAfter(ctx context.Context, cursor uint64, fn func(cursor uint64, body []byte) error) error {
	return s.notices(ctx, cursor, false, fn)
}

func (s *ConsentStore) notices(ctx context.Context, cursor uint64, byKey bool, fn func(cursor uint64, body []byte) error) error {
	q := `SELECT cursor, body FROM consent_notices WHERE cursor > $1 ORDER BY cursor`
	if byKey {
		q = `SELECT cursor, body FROM consent_notices WHERE cursor > $1 ORDER BY key`
	}
	type notice struct {
		cursor uint64
		body   []byte
	}
	var all []notice
	rows, err := s.db.pool.Query(ctx, q, int64(cursor))
	if err == nil {
		var c int64
		var body []byte
		_, err = pgx.ForEachRow(rows, []any{&c, &body}, func() error {
			all = append(all, notice{uint64(c), body})
			body = nil // Scan reuses a non-nil slice
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("notices: %w: %w", err, privguard.ErrUnavailable)
	}
	for _, n := range all {
		if err := fn(n.cursor, n.body); err != nil {
			return err
		}
	}
	return nil
}

// Suppression implements consent.Store.
func (s *ConsentStore) Suppression(ctx context.Context, key [32]byte) (seq uint64, ok bool, err error) {
	var s64 int64
	err = s.db.pool.QueryRow(ctx, `SELECT seq FROM consent_suppressions WHERE key = $1`, key[:]).Scan(&s64)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("suppression: %w: %w", err, privguard.ErrUnavailable)
	}
	return uint64(s64), true, nil
}

// Head implements consent.Store.
func (s *ConsentStore) Head(ctx context.Context) (seq uint64, hash []byte, err error) {
	var s64 int64
	if err := s.db.pool.QueryRow(ctx, `SELECT seq, hash FROM consent_head`).Scan(&s64, &hash); err != nil {
		return 0, nil, fmt.Errorf("ledger head: %w: %w", err, privguard.ErrUnavailable)
	}
	if s64 == 0 {
		return 0, nil, nil
	}
	if len(hash) != 32 {
		return 0, nil, fmt.Errorf("ledger head of %d bytes is corrupt", len(hash))
	}
	return uint64(s64), hash, nil
}

// Secret implements consent.Store. Two processes creating the same secret at once get the
// same value: the first insert wins and both read it back. Secrets are stored in the
// clear in the database: protect it (and its backups) as you would the keys.
func (s *ConsentStore) Secret(ctx context.Context, name string, create func() ([]byte, error)) ([]byte, error) {
	var out []byte
	err := s.db.pool.QueryRow(ctx, `SELECT value FROM secrets WHERE name = $1`, name).Scan(&out)
	if err == nil {
		return out, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("secret %s: %w: %w", name, err, privguard.ErrUnavailable)
	}
	v, err := create()
	if err != nil {
		return nil, err
	}
	_, err = s.db.pool.Exec(ctx, `INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, name, notNil(v))
	if err == nil {
		err = s.db.pool.QueryRow(ctx, `SELECT value FROM secrets WHERE name = $1`, name).Scan(&out)
	}
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w: %w", name, err, privguard.ErrUnavailable)
	}
	return out, nil
}

// PutSecret replaces the named secret durably.
func (s *ConsentStore) PutSecret(ctx context.Context, name string, value []byte) error {
	_, err := s.db.pool.Exec(ctx, `INSERT INTO secrets (name, value) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, notNil(value))
	if err != nil {
		return fmt.Errorf("secret %s: %w: %w", name, err, privguard.ErrUnavailable)
	}
	return nil
}
