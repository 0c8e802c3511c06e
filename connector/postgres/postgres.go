// Package postgres is the PostgreSQL connector for data-subject requests (pgx). It is the
// only package that imports pgx. Table and column names come from the data map only and are
// checked and quoted; subject ids and values are always bound parameters.
//
// Subject ids are compared exactly, byte for byte: a citext subject column or one with a
// nondeterministic (case- or accent-insensitive ICU) collation would otherwise make
// "RT-CUST-1" the same subject as "rt-cust-1". Each query compares with the column's own
// equality (so its index is used) and then again as text under the "C" collation.
//
// Failures carry a [dsar.ErrorKind] from the SQLSTATE code (and the network error), never
// from the server's message, which can quote the subject's data.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/dsar"
)

// Table is one table of the data map.
type Table = dsar.TableMap

// Config configures [New].
type Config struct {
	Name   string
	DSN    string
	Tables []Table
	// Logger receives CheckMap's warnings (nil: discarded).
	Logger *slog.Logger
}

// Connector is a PostgreSQL store.
type Connector struct {
	name   string
	pool   *pgxpool.Pool
	tables []Table
	schema schemaCache
	log    *slog.Logger
}

var (
	_ dsar.Connector = (*Connector)(nil)
	_ dsar.Rectifier = (*Connector)(nil)
)

func quote(name string) string { return pgx.Identifier(strings.Split(name, ".")).Sanitize() }

// New connects to the database. Malformed table or column names in the data map are an
// error: they are never interpolated unchecked.
func New(ctx context.Context, cfg Config) (*Connector, error) {
	if cfg.Name == "" {
		return nil, errors.New("postgres: Config.Name is empty")
	}
	for _, t := range cfg.Tables {
		if err := t.Check(63); err != nil {
			return nil, fmt.Errorf("postgres %s: %w", cfg.Name, err)
		}
	}
	pool, err := pgxpool.New(ctx, cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("postgres %s: %w", cfg.Name, err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Connector{name: cfg.Name, pool: pool, tables: cfg.Tables, log: log}, nil
}

// CheckMap checks the data map against the database: every table exists (as the
// connection's search_path finds it) with its subject column, mapped columns and dated_by
// and last_active_by columns. It returns a *dsar.MapError naming the store, table and
// column that is missing, or a *dsar.ConnectorError if the database could not be asked. A
// dated_by column that no index leads with is not an error, but logged as a warning
// (Config.Logger): retention sweeps by it would scan the table.
func (c *Connector) CheckMap(ctx context.Context) error {
	for _, t := range c.tables {
		var cols []string
		var found bool
		err := c.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL,
			COALESCE((SELECT array_agg(attname::text) FROM pg_attribute
				WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped), '{}')`, quote(t.Table)).Scan(&found, &cols)
		if err != nil {
			return c.fail("check data map", err)
		}
		if !found {
			return &dsar.MapError{Store: c.name, Table: t.Table, Kind: dsar.KindTableMissing}
		}
		for _, col := range append([]string{t.SubjectColumn, t.DatedBy, t.LastActiveBy}, t.SortedColumns()...) {
			if col != "" && !slices.Contains(cols, col) {
				return &dsar.MapError{Store: c.name, Table: t.Table, Column: col, Kind: dsar.KindColumnMissing}
			}
		}
		for _, col := range []string{t.DatedBy, t.LastActiveBy} {
			if col == "" {
				continue
			}
			var typ string
			if err := c.pool.QueryRow(ctx, `SELECT format_type(atttypid, atttypmod) FROM pg_attribute
				WHERE attrelid = to_regclass($1) AND attname = $2`, quote(t.Table), col).Scan(&typ); err != nil {
				return c.fail("check data map", err)
			}
			if typ != "date" && !strings.HasPrefix(typ, "timestamp") {
				return &dsar.MapError{Store: c.name, Table: t.Table, Column: col, Kind: dsar.KindValueRejected, Type: typ}
			}
		}
		if t.DatedBy == "" {
			continue
		}
		var indexed bool
		err = c.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_index i
			JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
			WHERE i.indrelid = to_regclass($1) AND a.attname = $2)`, quote(t.Table), t.DatedBy).Scan(&indexed)
		if err != nil {
			return c.fail("check data map", err)
		}
		if !indexed {
			c.log.Warn("postgres: no index leads with the dated_by column; retention sweeps will scan the table",
				"store", c.name, "table", t.Table, "column", t.DatedBy)
		}
	}
	return nil
}

// Close closes the pool.
func (c *Connector) Close() { c.pool.Close() }

// Name implements dsar.Connector.
func (c *Connector) Name() string { return c.name }

// Categories implements dsar.CategoryLister: the categories of the data map's columns.
func (c *Connector) Categories() []privguard.DataCategory { return dsar.MapCategories(c.tables) }

func (c *Connector) fail(op string, err error) error {
	return &dsar.ConnectorError{Connector: c.name, Op: op, Kind: kind(err), Err: fmt.Errorf("%w: %w", err, privguard.ErrUnavailable)}
}

// kind classifies a pgx error by its SQLSTATE code (PostgreSQL Appendix A), then as the
// network or context error it wraps.
func kind(err error) dsar.ErrorKind {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch code := pe.Code; {
		case code == "42P01", code == "3F000": // undefined_table, invalid_schema_name
			return dsar.KindTableMissing
		case code == "42703": // undefined_column
			return dsar.KindColumnMissing
		case code == "42501": // insufficient_privilege
			return dsar.KindPermissionDenied
		case code == "28000", code == "28P01": // invalid_authorization_specification, invalid_password
			return dsar.KindAuthFailed
		case code == "3D000": // invalid_catalog_name: no such database
			return dsar.KindDatabaseMissing
		case code == "25006": // read_only_sql_transaction (a standby)
			return dsar.KindReadOnly
		case code == "57014", code == "55P03": // query_canceled (statement_timeout), lock_not_available
			return dsar.KindTimeout
		case strings.HasPrefix(code, "08"), strings.HasPrefix(code, "57P"): // connection exception; admin shutdown, crash
			return dsar.KindConnectionLost
		case strings.HasPrefix(code, "22"), strings.HasPrefix(code, "23"): // data exception; integrity constraint violation
			return dsar.KindValueRejected
		}
		return dsar.KindOther
	}
	if k := dsar.KindOf(err); k != dsar.KindOther {
		return k
	}
	if pgconn.Timeout(err) {
		return dsar.KindTimeout
	}
	return dsar.KindOther
}

// subjectIs is the WHERE clause matching exactly the subject bound as parameter n: the
// column's own equality (which its index serves), then the same as text under the "C"
// collation, so that a citext or nondeterministic collation cannot match another id.
func subjectIs(t Table, n int) string {
	col := quote(t.SubjectColumn)
	return fmt.Sprintf(`%s = $%d AND %s::text COLLATE "C" = $%d::text`, col, n, col, n)
}

// Export implements dsar.Connector: exactly the subject's rows, every column of the data map.
func (c *Connector) Export(ctx context.Context, subject privguard.SubjectID) (dsar.Export, error) {
	out := dsar.Export{Store: c.name}
	for _, t := range c.tables {
		cols := t.SortedColumns()
		sel := []string{quote(t.SubjectColumn)}
		for _, col := range cols {
			sel = append(sel, quote(col))
		}
		q := fmt.Sprintf("SELECT %s FROM %s WHERE %s", strings.Join(sel, ", "), quote(t.Table), subjectIs(t, 1))
		rows, err := c.pool.Query(ctx, q, string(subject))
		if err != nil {
			return dsar.Export{}, c.fail("export "+t.Table, err)
		}
		table := dsar.Table{Name: t.Table, Categories: t.Columns, Rows: []map[string]any{}}
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				rows.Close()
				return dsar.Export{}, c.fail("export "+t.Table, err)
			}
			row := map[string]any{t.SubjectColumn: vals[0]}
			for i, col := range cols {
				row[col] = vals[i+1]
			}
			table.Rows = append(table.Rows, row)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return dsar.Export{}, c.fail("export "+t.Table, err)
		}
		out.Tables = append(out.Tables, table)
	}
	return out, nil
}

var _ dsar.BatchEraser = (*Connector)(nil)

// eraseQuery is the statement that erases subject's rows of t as the data map says, and its
// arguments; ok is false if there is nothing to erase in t.
func eraseQuery(t Table, subject privguard.SubjectID) (q string, args []any, ok bool) {
	args = []any{string(subject)}
	switch t.Erase {
	case dsar.EraseDelete:
		return fmt.Sprintf("DELETE FROM %s WHERE %s", quote(t.Table), subjectIs(t, 1)), args, true
	case dsar.EraseMask, dsar.EraseNull:
		var set []string
		for _, col := range t.SortedColumns() {
			if t.Erase == dsar.EraseNull {
				set = append(set, quote(col)+" = NULL")
			} else {
				set = append(set, fmt.Sprintf("%s = $%d", quote(col), len(args)+1))
				args = append(args, dsar.MaskValue)
			}
		}
		if len(set) == 0 {
			return "", nil, false
		}
		// Only rows not already erased count, so a repeated erasure changes nothing.
		var changed []string
		for _, col := range t.SortedColumns() {
			if t.Erase == dsar.EraseNull {
				changed = append(changed, quote(col)+" IS NOT NULL")
			} else {
				changed = append(changed, quote(col)+" IS DISTINCT FROM $2")
			}
		}
		return fmt.Sprintf("UPDATE %s SET %s WHERE %s AND (%s)", quote(t.Table), strings.Join(set, ", "),
			subjectIs(t, 1), strings.Join(changed, " OR ")), args, true
	}
	return "", nil, false
}

// Erase implements dsar.Connector, in one transaction for all tables.
func (c *Connector) Erase(ctx context.Context, subject privguard.SubjectID) (dsar.Erased, error) {
	var erased dsar.Erased
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		for _, t := range c.tables {
			q, args, ok := eraseQuery(t, subject)
			if !ok {
				continue
			}
			tag, err := tx.Exec(ctx, q, args...)
			if err != nil {
				return fmt.Errorf("erase %s: %w", t.Table, err)
			}
			erased.Items += int(tag.RowsAffected())
		}
		return nil
	})
	if err != nil {
		return dsar.Erased{}, c.fail("erase", err)
	}
	return erased, nil
}

// EraseBatch implements dsar.BatchEraser: Erase's statements for every subject, sent in
// one round trip (a pgx batch) and committed in one transaction, so the batch is erased
// as a whole or not at all.
func (c *Connector) EraseBatch(ctx context.Context, subjects []privguard.SubjectID) ([]dsar.Erased, error) {
	out := make([]dsar.Erased, len(subjects))
	if len(subjects) == 0 {
		return out, nil
	}
	var b pgx.Batch
	var of []int // the subject of each queued statement
	for i, s := range subjects {
		for _, t := range c.tables {
			if q, args, ok := eraseQuery(t, s); ok {
				b.Queue(q, args...)
				of = append(of, i)
			}
		}
	}
	if len(of) == 0 {
		return out, nil
	}
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		br := tx.SendBatch(ctx, &b)
		for _, i := range of {
			tag, err := br.Exec()
			if err != nil {
				br.Close()
				return fmt.Errorf("erase: %w", err)
			}
			out[i].Items += int(tag.RowsAffected())
		}
		return br.Close()
	})
	if err != nil {
		return nil, c.fail("erase", err)
	}
	return out, nil
}

// Correct implements dsar.Rectifier: every mapped column of each patched category is set.
func (c *Connector) Correct(ctx context.Context, subject privguard.SubjectID, patch map[privguard.DataCategory]string) (int, error) {
	known := map[privguard.DataCategory]bool{}
	for _, t := range c.tables {
		for _, cat := range t.Columns {
			known[cat] = true
		}
	}
	for cat := range patch {
		if !known[cat] {
			return 0, &dsar.ConnectorError{Connector: c.name, Op: "correct",
				Err: fmt.Errorf("category %q is not in this store's data map: %w", cat, privguard.ErrInvalid)}
		}
	}
	n := 0
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		for _, t := range c.tables {
			args := []any{string(subject)}
			var set []string
			for _, col := range t.SortedColumns() {
				if v, ok := patch[t.Columns[col]]; ok {
					args = append(args, v)
					set = append(set, fmt.Sprintf("%s = $%d", quote(col), len(args)))
				}
			}
			if len(set) == 0 {
				continue
			}
			q := fmt.Sprintf("UPDATE %s SET %s WHERE %s", quote(t.Table), strings.Join(set, ", "), subjectIs(t, 1))
			tag, err := tx.Exec(ctx, q, args...)
			if err != nil {
				return fmt.Errorf("correct %s: %w", t.Table, err)
			}
			n += int(tag.RowsAffected())
		}
		return nil
	})
	if err != nil {
		return 0, c.fail("correct", err)
	}
	return n, nil
}
