// Package mysql is the MySQL/MariaDB connector for data-subject requests
// (go-sql-driver/mysql). It is the only package that imports the driver. Table and column
// names come from the data map only and are checked and quoted; subject ids and values are
// always bound parameters.
//
// Subject ids are compared exactly, byte for byte. MySQL and MariaDB compare strings with
// the column's collation: under the common defaults (utf8mb4_general_ci, MariaDB's) "Cust-1"
// and "cust-1" are one id, and "shréd" is "shred"; under any PAD SPACE collation, utf8mb4_bin
// included, "a " is "a"; and a number column equals any string that converts to its value.
// Each query therefore compares with the column's own equality, which its index serves, and
// then again as utf8mb4 bytes (measured with EXPLAIN on MariaDB 10.11: an index lookup, where
// "col COLLATE utf8mb4_bin = ?" scans the table).
//
// Failures carry a [dsar.ErrorKind] from the server's error number (and the network error),
// never from its message, which can quote the subject's data.
package mysql

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	gomysql "github.com/go-sql-driver/mysql" // the database/sql driver

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/dsar"
)

// Table is one table of the data map.
type Table = dsar.TableMap

// Config configures [New].
type Config struct {
	Name   string
	DSN    string // go-sql-driver/mysql format: user@tcp(host:port)/db
	Tables []Table
	// Logger, if set, receives the driver's own log lines (process-wide), and CheckMap's
	// warnings (nil: discarded).
	Logger *slog.Logger
}

// Connector is a MySQL or MariaDB store.
type Connector struct {
	name   string
	db     *sql.DB
	tables []Table
	schema schemaCache
	log    *slog.Logger
}

var (
	_ dsar.Connector = (*Connector)(nil)
	_ dsar.Rectifier = (*Connector)(nil)
)

func quote(name string) string {
	parts := strings.Split(name, ".")
	for i, p := range parts {
		parts[i] = "`" + p + "`"
	}
	return strings.Join(parts, ".")
}

// New opens the database. Malformed names in the data map are an error.
func New(ctx context.Context, cfg Config) (*Connector, error) {
	if cfg.Name == "" {
		return nil, errors.New("mysql: Config.Name is empty")
	}
	for _, t := range cfg.Tables {
		if err := t.Check(64); err != nil {
			return nil, fmt.Errorf("mysql %s: %w", cfg.Name, err)
		}
	}
	if cfg.Logger != nil {
		// The driver logs connection trouble on its own (to stderr by default); send it to
		// the service's log instead. Its lines name connections, never query values.
		gomysql.SetLogger(driverLog{cfg.Logger})
	}
	db, err := sql.Open("mysql", cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("mysql %s: %w", cfg.Name, err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Connector{name: cfg.Name, db: db, tables: cfg.Tables, log: log}, nil
}

// driverLog adapts slog to the driver's logger (process-wide: the driver has one).
type driverLog struct{ l *slog.Logger }

func (d driverLog) Print(v ...any) { d.l.Warn("mysql driver: " + fmt.Sprint(v...)) }

// CheckMap checks the data map against the database: every table exists with its subject
// column, mapped columns and dated_by and last_active_by columns. A dated_by column that no
// index leads with is not an error, but logged as a warning (Config.Logger): retention
// sweeps by it would scan the table. It returns a *dsar.MapError naming the store, table and
// column that is missing, or a *dsar.ConnectorError if the database could not be asked.
// (information_schema shows only what the user has some privilege on: a table the user
// may not touch is reported missing.)
func (c *Connector) CheckMap(ctx context.Context) error {
	for _, t := range c.tables {
		schema, table, found := strings.Cut(t.Table, ".")
		if !found {
			schema, table = "", t.Table
		}
		rows, err := c.db.QueryContext(ctx, `SELECT COLUMN_NAME FROM information_schema.COLUMNS
			WHERE TABLE_SCHEMA = COALESCE(NULLIF(?, ''), DATABASE()) AND TABLE_NAME = ?`, schema, table)
		if err != nil {
			return c.fail("check data map", err)
		}
		var cols []string
		for rows.Next() {
			var col string
			if err := rows.Scan(&col); err != nil {
				rows.Close()
				return c.fail("check data map", err)
			}
			cols = append(cols, strings.ToLower(col))
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return c.fail("check data map", err)
		}
		if len(cols) == 0 {
			return &dsar.MapError{Store: c.name, Table: t.Table, Kind: dsar.KindTableMissing}
		}
		for _, col := range append([]string{t.SubjectColumn, t.DatedBy, t.LastActiveBy}, t.SortedColumns()...) {
			if col != "" && !slices.Contains(cols, strings.ToLower(col)) { // column names are case-insensitive in MySQL
				return &dsar.MapError{Store: c.name, Table: t.Table, Column: col, Kind: dsar.KindColumnMissing}
			}
		}
		for _, col := range []string{t.DatedBy, t.LastActiveBy} {
			if col == "" {
				continue
			}
			var typ string
			if err := c.db.QueryRowContext(ctx, `SELECT DATA_TYPE FROM information_schema.COLUMNS
				WHERE TABLE_SCHEMA = COALESCE(NULLIF(?, ''), DATABASE()) AND TABLE_NAME = ? AND LOWER(COLUMN_NAME) = LOWER(?)`,
				schema, table, col).Scan(&typ); err != nil {
				return c.fail("check data map", err)
			}
			if typ = strings.ToLower(typ); typ != "date" && typ != "datetime" && typ != "timestamp" {
				return &dsar.MapError{Store: c.name, Table: t.Table, Column: col, Kind: dsar.KindValueRejected, Type: typ}
			}
		}
		if t.DatedBy == "" {
			continue
		}
		var indexed bool
		err = c.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM information_schema.STATISTICS
			WHERE TABLE_SCHEMA = COALESCE(NULLIF(?, ''), DATABASE()) AND TABLE_NAME = ? AND SEQ_IN_INDEX = 1
			AND LOWER(COLUMN_NAME) = LOWER(?))`, schema, table, t.DatedBy).Scan(&indexed)
		if err != nil {
			return c.fail("check data map", err)
		}
		if !indexed {
			c.log.Warn("mysql: no index leads with the dated_by column; retention sweeps will scan the table",
				"store", c.name, "table", t.Table, "column", t.DatedBy)
		}
	}
	return nil
}

// Close closes the database handle.
func (c *Connector) Close() error { return c.db.Close() }

// Name implements dsar.Connector.
func (c *Connector) Name() string { return c.name }

// Categories implements dsar.CategoryLister: the categories of the data map's columns.
func (c *Connector) Categories() []privguard.DataCategory { return dsar.MapCategories(c.tables) }

func (c *Connector) fail(op string, err error) error {
	return &dsar.ConnectorError{Connector: c.name, Op: op, Kind: kind(err), Err: fmt.Errorf("%w: %w", err, privguard.ErrUnavailable)}
}

// kind classifies a driver error by the server's error number (MySQL and MariaDB error
// reference), then as the network or context error it wraps.
func kind(err error) dsar.ErrorKind {
	var me *gomysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1146: // ER_NO_SUCH_TABLE
			return dsar.KindTableMissing
		case 1054: // ER_BAD_FIELD_ERROR
			return dsar.KindColumnMissing
		case 1044, 1142, 1143, 1227: // ER_DBACCESS_DENIED, ER_TABLEACCESS_DENIED, ER_COLUMNACCESS_DENIED, ER_SPECIFIC_ACCESS_DENIED
			return dsar.KindPermissionDenied
		case 1045, 1698: // ER_ACCESS_DENIED_ERROR, ER_ACCESS_DENIED_NO_PASSWORD_ERROR
			return dsar.KindAuthFailed
		case 1049: // ER_BAD_DB_ERROR
			return dsar.KindDatabaseMissing
		case 1290, 1792, 1836: // ER_OPTION_PREVENTS_STATEMENT (--read-only), ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION, ER_READ_ONLY_MODE
			return dsar.KindReadOnly
		case 1205, 1969, 3024: // ER_LOCK_WAIT_TIMEOUT, MariaDB ER_STATEMENT_TIMEOUT, MySQL ER_QUERY_TIMEOUT
			return dsar.KindTimeout
		case 1040, 1053, 1077, 1152, 1158, 1159, 1160, 1161: // too many connections, shutdown, aborted or broken connection
			return dsar.KindConnectionLost
		case 1048, 1062, 1263, 1264, 1364, 1366, 1406, 1451, 1452, 3819, 4025: // NOT NULL, duplicate, out of range, no default, bad value, too long, foreign key, CHECK
			return dsar.KindValueRejected
		}
		return dsar.KindOther
	}
	if errors.Is(err, gomysql.ErrInvalidConn) || errors.Is(err, driver.ErrBadConn) {
		return dsar.KindConnectionLost
	}
	return dsar.KindOf(err)
}

// subjectIs is the WHERE clause matching exactly the subject bound twice (its two
// placeholders): the column's own equality, which its index serves, then the column as
// utf8mb4 bytes against the id's bytes, so that no collation (case or accent folding, PAD
// SPACE) nor a number column's conversion can match another id. Subject ids are ASCII
// (privguard.SubjectID), so the connection's character set does not change their bytes.
func subjectIs(t Table) string {
	col := quote(t.SubjectColumn)
	return fmt.Sprintf("%s = ? AND CAST(CONVERT(%s USING utf8mb4) AS BINARY) = CAST(? AS BINARY)", col, col)
}

// Export implements dsar.Connector.
func (c *Connector) Export(ctx context.Context, subject privguard.SubjectID) (dsar.Export, error) {
	out := dsar.Export{Store: c.name}
	for _, t := range c.tables {
		cols := t.SortedColumns()
		sel := []string{quote(t.SubjectColumn)}
		for _, col := range cols {
			sel = append(sel, quote(col))
		}
		rows, err := c.db.QueryContext(ctx, fmt.Sprintf("SELECT %s FROM %s WHERE %s",
			strings.Join(sel, ", "), quote(t.Table), subjectIs(t)), string(subject), string(subject))
		if err != nil {
			return dsar.Export{}, c.fail("export "+t.Table, err)
		}
		table := dsar.Table{Name: t.Table, Categories: t.Columns, Rows: []map[string]any{}}
		for rows.Next() {
			vals := make([]sql.NullString, len(sel))
			ptrs := make([]any, len(sel))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				return dsar.Export{}, c.fail("export "+t.Table, err)
			}
			row := map[string]any{t.SubjectColumn: vals[0].String}
			for i, col := range cols {
				if vals[i+1].Valid {
					row[col] = vals[i+1].String
				} else {
					row[col] = nil
				}
			}
			table.Rows = append(table.Rows, row)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return dsar.Export{}, c.fail("export "+t.Table, err)
		}
		out.Tables = append(out.Tables, table)
	}
	return out, nil
}

// inTx runs fn in a transaction.
func (c *Connector) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

var _ dsar.BatchEraser = (*Connector)(nil)

// eraseSet is how t's rows are erased if they are not deleted: the SET clause and its
// arguments, and the condition (with its arguments) that a row is not erased yet, so that
// only those count and a repeated erasure changes nothing. ok is false if t is deleted
// from or has nothing to erase.
func eraseSet(t Table) (set string, setArgs []any, changed string, changedArgs []any, ok bool) {
	if t.Erase != dsar.EraseMask && t.Erase != dsar.EraseNull {
		return "", nil, "", nil, false
	}
	var sets, changes []string
	for _, col := range t.SortedColumns() {
		if t.Erase == dsar.EraseNull {
			sets = append(sets, quote(col)+" = NULL")
			changes = append(changes, quote(col)+" IS NOT NULL")
		} else {
			sets = append(sets, quote(col)+" = ?")
			setArgs = append(setArgs, dsar.MaskValue)
			changes = append(changes, "NOT ("+quote(col)+" <=> ?)")
			changedArgs = append(changedArgs, dsar.MaskValue)
		}
	}
	if len(sets) == 0 {
		return "", nil, "", nil, false
	}
	return strings.Join(sets, ", "), setArgs, "(" + strings.Join(changes, " OR ") + ")", changedArgs, true
}

// Erase implements dsar.Connector, in one transaction.
func (c *Connector) Erase(ctx context.Context, subject privguard.SubjectID) (dsar.Erased, error) {
	var erased dsar.Erased
	err := c.inTx(ctx, func(tx *sql.Tx) error {
		for _, t := range c.tables {
			var q string
			args := []any{string(subject), string(subject)}
			if t.Erase == dsar.EraseDelete {
				q = fmt.Sprintf("DELETE FROM %s WHERE %s", quote(t.Table), subjectIs(t))
			} else if set, setArgs, changed, changedArgs, ok := eraseSet(t); ok {
				q = fmt.Sprintf("UPDATE %s SET %s WHERE %s AND %s", quote(t.Table), set, subjectIs(t), changed)
				args = slices.Concat(setArgs, args, changedArgs)
			} else {
				continue
			}
			res, err := tx.ExecContext(ctx, q, args...)
			if err != nil {
				return fmt.Errorf("erase %s: %w", t.Table, err)
			}
			n, _ := res.RowsAffected()
			erased.Items += int(n)
		}
		return nil
	})
	if err != nil {
		return dsar.Erased{}, c.fail("erase", err)
	}
	return erased, nil
}

// maxBatchIDs bounds the ids of one statement (twice as many placeholders; MySQL allows
// 65,535).
const maxBatchIDs = 1000

// subjectIn is subjectIs for many ids: the column's own comparison (which its index
// serves), then the exact one.
func subjectIn(t Table, ids []any) (string, []any) {
	col := quote(t.SubjectColumn)
	marks := strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",")
	exact := strings.TrimSuffix(strings.Repeat("CAST(? AS BINARY),", len(ids)), ",")
	return fmt.Sprintf("%s IN (%s) AND CAST(CONVERT(%s USING utf8mb4) AS BINARY) IN (%s)", col, marks, col, exact),
		slices.Concat(ids, ids)
}

// EraseBatch implements dsar.BatchEraser, in one transaction: per table and up to
// maxBatchIDs ids, a SELECT ... FOR UPDATE counts each subject's rows still to erase (by
// the exact bytes of the id, and locks them), then one DELETE or UPDATE erases them all,
// with the same conditions as Erase.
func (c *Connector) EraseBatch(ctx context.Context, subjects []privguard.SubjectID) ([]dsar.Erased, error) {
	out := make([]dsar.Erased, len(subjects))
	first := map[string]int{} // each distinct id, counted at its first position
	var ids []any
	for i, s := range subjects {
		if _, dup := first[string(s)]; !dup {
			first[string(s)] = i
			ids = append(ids, string(s))
		}
	}
	if len(ids) == 0 {
		return out, nil
	}
	err := c.inTx(ctx, func(tx *sql.Tx) error {
		for chunk := range slices.Chunk(ids, maxBatchIDs) {
			for _, t := range c.tables {
				in, inArgs := subjectIn(t, chunk)
				var count, q string
				var countArgs, args []any
				if t.Erase == dsar.EraseDelete {
					count, countArgs = in, inArgs
					q, args = fmt.Sprintf("DELETE FROM %s WHERE %s", quote(t.Table), in), inArgs
				} else if set, setArgs, changed, changedArgs, ok := eraseSet(t); ok {
					count, countArgs = in+" AND "+changed, slices.Concat(inArgs, changedArgs)
					q = fmt.Sprintf("UPDATE %s SET %s WHERE %s AND %s", quote(t.Table), set, in, changed)
					args = slices.Concat(setArgs, inArgs, changedArgs)
				} else {
					continue
				}
				col := quote(t.SubjectColumn)
				rows, err := tx.QueryContext(ctx, fmt.Sprintf("SELECT CAST(CONVERT(%s USING utf8mb4) AS BINARY), COUNT(*) FROM %s WHERE %s GROUP BY 1 FOR UPDATE",
					col, quote(t.Table), count), countArgs...)
				if err != nil {
					return fmt.Errorf("erase %s: %w", t.Table, err)
				}
				for rows.Next() {
					var id []byte
					var n int
					if err := rows.Scan(&id, &n); err != nil {
						rows.Close()
						return fmt.Errorf("erase %s: %w", t.Table, err)
					}
					if i, ok := first[string(id)]; ok {
						out[i].Items += n
					}
				}
				if err := cmp.Or(rows.Err(), rows.Close()); err != nil {
					return fmt.Errorf("erase %s: %w", t.Table, err)
				}
				if _, err := tx.ExecContext(ctx, q, args...); err != nil {
					return fmt.Errorf("erase %s: %w", t.Table, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, c.fail("erase", err)
	}
	return out, nil
}

// Correct implements dsar.Rectifier.
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
	err := c.inTx(ctx, func(tx *sql.Tx) error {
		for _, t := range c.tables {
			var set []string
			var args []any
			for _, col := range t.SortedColumns() {
				if v, ok := patch[t.Columns[col]]; ok {
					set = append(set, quote(col)+" = ?")
					args = append(args, v)
				}
			}
			if len(set) == 0 {
				continue
			}
			args = append(args, string(subject), string(subject))
			res, err := tx.ExecContext(ctx, fmt.Sprintf("UPDATE %s SET %s WHERE %s", quote(t.Table), strings.Join(set, ", "),
				subjectIs(t)), args...)
			if err != nil {
				return fmt.Errorf("correct %s: %w", t.Table, err)
			}
			k, _ := res.RowsAffected()
			n += int(k)
		}
		return nil
	})
	if err != nil {
		return 0, c.fail("correct", err)
	}
	return n, nil
}
