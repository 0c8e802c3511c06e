package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/privguard/privguard/connector/mysql"
	"github.com/privguard/privguard/connector/postgres"
	"github.com/privguard/privguard/dsar"
)

// pgStore is PostgreSQL: the connector and a pool of the benchmark's own.
type pgStore struct {
	c    *postgres.Connector
	pool *pgxpool.Pool
}

func (s *pgStore) name() string          { return "postgres" }
func (s *pgStore) sweeper() dsar.Sweeper { return s.c }
func (s *pgStore) close()                { s.c.Close(); s.pool.Close() }

func (s *pgStore) seeded(ctx context.Context) (int64, error) {
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&exists); err != nil || !exists {
		return -1, err
	}
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n)
	return n, err
}

func (s *pgStore) create(ctx context.Context) error {
	if _, err := s.pool.Exec(ctx, `DROP TABLE IF EXISTS `+table); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `CREATE TABLE `+table+` (id bigserial PRIMARY KEY, customer_id varchar(64), url text, viewed_at timestamp)`)
	return err
}

func (s *pgStore) fill(ctx context.Context, from, to int64) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO `+table+` (customer_id, url, viewed_at)
		SELECT 'cust-' || (g % $3), 'https://example.com/p/' || g, localtimestamp - (g % 2592000) * interval '1 second'
		FROM generate_series($1::bigint, $2::bigint - 1) g`, from, to, customers)
	return err
}

func (s *pgStore) index(ctx context.Context) error {
	for _, q := range []string{
		`CREATE INDEX ` + table + `_viewed_at ON ` + table + ` (viewed_at)`,
		`CREATE INDEX ` + table + `_customer_id ON ` + table + ` (customer_id)`,
		`VACUUM ANALYZE ` + table,
	} {
		if _, err := s.pool.Exec(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

func (s *pgStore) expire(ctx context.Context, n int64, cutoff time.Time) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO `+table+` (customer_id, url, viewed_at)
		SELECT 'cust-' || (g % $3), 'https://example.com/old/' || g, $2::timestamp - interval '1 second' - (g % 86400) * interval '1 second'
		FROM generate_series(1, $1::bigint) g`, n, cutoff, customers)
	return err
}

func (s *pgStore) tidy(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `VACUUM ANALYZE `+table)
	return err
}

func (s *pgStore) count(ctx context.Context, cutoff time.Time) (total, expired int64, err error) {
	err = s.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE viewed_at < $1) FROM `+table, cutoff).Scan(&total, &expired)
	return total, expired, err
}

func (s *pgStore) query(ctx context.Context, customer string) error {
	var n int64
	return s.pool.QueryRow(ctx, `SELECT count(*) FROM `+table+` WHERE customer_id = $1`, customer).Scan(&n)
}

func (s *pgStore) drop(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `DROP TABLE IF EXISTS `+table)
	return err
}

// myStore is MariaDB (or MySQL): the connector and a pool of the benchmark's own.
type myStore struct {
	c  *mysql.Connector
	db *sql.DB
}

func (s *myStore) name() string          { return "mysql" }
func (s *myStore) sweeper() dsar.Sweeper { return s.c }
func (s *myStore) close()                { s.c.Close(); s.db.Close() }

func (s *myStore) seeded(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table).Scan(&n)
	if me := (*gomysql.MySQLError)(nil); errors.As(err, &me) && me.Number == 1146 { // no such table
		return -1, nil
	}
	return n, err
}

func (s *myStore) create(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `DROP TABLE IF EXISTS `+table); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, `CREATE TABLE `+table+` (id bigint AUTO_INCREMENT PRIMARY KEY,
		customer_id varchar(64), url text, viewed_at timestamp NULL) ENGINE=InnoDB`)
	return err
}

// fill uses MariaDB's sequence engine (seq_1_to_N).
func (s *myStore) fill(ctx context.Context, from, to int64) error {
	_, err := s.db.ExecContext(ctx, fmt.Sprintf(`INSERT INTO %s (customer_id, url, viewed_at)
		SELECT CONCAT('cust-', (seq + %d) %% %d), CONCAT('https://example.com/p/', seq + %d), NOW() - INTERVAL ((seq + %d) %% 2592000) SECOND
		FROM seq_0_to_%d`, table, from, customers, from, from, to-from-1))
	return err
}

func (s *myStore) index(ctx context.Context) error {
	for _, q := range []string{
		`ALTER TABLE ` + table + ` ADD INDEX ` + table + `_viewed_at (viewed_at), ADD INDEX ` + table + `_customer_id (customer_id)`,
		`ANALYZE TABLE ` + table,
	} {
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

func (s *myStore) expire(ctx context.Context, n int64, cutoff time.Time) error {
	_, err := s.db.ExecContext(ctx, fmt.Sprintf(`INSERT INTO %s (customer_id, url, viewed_at)
		SELECT CONCAT('cust-', seq %% %d), CONCAT('https://example.com/old/', seq), ? - INTERVAL 1 SECOND - INTERVAL (seq %% 86400) SECOND
		FROM seq_1_to_%d`, table, customers, n), cutoff)
	return err
}

func (s *myStore) tidy(context.Context) error { return nil }

func (s *myStore) count(ctx context.Context, cutoff time.Time) (total, expired int64, err error) {
	if err = s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table).Scan(&total); err != nil {
		return 0, 0, err
	}
	err = s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table+` WHERE viewed_at < ?`, cutoff).Scan(&expired)
	return total, expired, err
}

func (s *myStore) query(ctx context.Context, customer string) error {
	var n int64
	return s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table+` WHERE customer_id = ?`, customer).Scan(&n)
}

func (s *myStore) drop(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, `DROP TABLE IF EXISTS `+table)
	return err
}
