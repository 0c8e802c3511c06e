// Package mysql is the MySQL/MariaDB connector for data-subject requests
// (go-sql-driver/mysql). It is the only package that imports the driver. Table and column
// names come from the data map only and are checked and quoted; subject ids and values are
// always bound parameters.
//
// # Caveats
//
// MySQL compares strings with the column's collation, and the common defaults are case
// insensitive: with such a subject column, "Cust-1" and "cust-1" are the same subject to
// the database. Give subject columns a binary or case-sensitive collation
// (utf8mb4_bin), as the connector cannot do it without defeating the column's index.
package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
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
	// Logger, if set, receives the driver's own log lines (process-wide).
	Logger *slog.Logger
}

// Connector is a MySQL or MariaDB store.
type Connector struct {
	name   string
	db     *sql.DB
	tables []Table
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
	return &Connector{name: cfg.Name, db: db, tables: cfg.Tables}, nil
}

// driverLog adapts slog to the driver's logger (process-wide: the driver has one).
type driverLog struct{ l *slog.Logger }

func (d driverLog) Print(v ...any) { d.l.Warn("mysql driver: " + fmt.Sprint(v...)) }

// CheckCollation returns a warning for each subject column whose collation is not binary.
// Under a case- or accent-insensitive collation ("utf8mb4_general_ci", MariaDB's default)
// 'Cust-1' and 'cust-1' are equal, so an erasure of one subject would also erase another
// whose id differs only in case; subject columns should use a _bin collation.
func (c *Connector) CheckCollation(ctx context.Context) ([]string, error) {
	var warnings []string
	for _, t := range c.tables {
		schema, table, found := strings.Cut(t.Table, ".")
		if !found {
			schema, table = "", t.Table
		}
		var coll sql.NullString
		err := c.db.QueryRowContext(ctx, `SELECT COLLATION_NAME FROM information_schema.COLUMNS
			WHERE TABLE_SCHEMA = COALESCE(NULLIF(?, ''), DATABASE()) AND TABLE_NAME = ? AND COLUMN_NAME = ?`,
			schema, table, t.SubjectColumn).Scan(&coll)
		if errors.Is(err, sql.ErrNoRows) {
			warnings = append(warnings, fmt.Sprintf("mysql %s: %s.%s does not exist", c.name, t.Table, t.SubjectColumn))
			continue
		}
		if err != nil {
			return nil, c.fail("check collation", err)
		}
		if coll.Valid && !strings.HasSuffix(coll.String, "_bin") {
			warnings = append(warnings, fmt.Sprintf("mysql %s: subject column %s.%s has collation %s, which compares ids case-insensitively; use a _bin collation",
				c.name, t.Table, t.SubjectColumn, coll.String))
		}
	}
	return warnings, nil
}

// Close closes the database handle.
func (c *Connector) Close() error { return c.db.Close() }

// Name implements dsar.Connector.
func (c *Connector) Name() string { return c.name }

// Categories implements dsar.CategoryLister: the categories of the data map's columns.
func (c *Connector) Categories() []privguard.DataCategory { return dsar.MapCategories(c.tables) }

func (c *Connector) fail(op string, err error) error {
	return &dsar.ConnectorError{Connector: c.name, Op: op, Err: fmt.Errorf("%w: %w", err, privguard.ErrUnavailable)}
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
		rows, err := c.db.QueryContext(ctx, fmt.Sprintf("SELECT %s FROM %s WHERE %s = ?",
			strings.Join(sel, ", "), quote(t.Table), quote(t.SubjectColumn)), string(subject))
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

// Erase implements dsar.Connector, in one transaction.
func (c *Connector) Erase(ctx context.Context, subject privguard.SubjectID) (dsar.Erased, error) {
	var erased dsar.Erased
	err := c.inTx(ctx, func(tx *sql.Tx) error {
		for _, t := range c.tables {
			var q string
			var args []any
			switch t.Erase {
			case dsar.EraseDelete:
				q, args = fmt.Sprintf("DELETE FROM %s WHERE %s = ?", quote(t.Table), quote(t.SubjectColumn)), []any{string(subject)}
			case dsar.EraseMask, dsar.EraseNull:
				var set, changed []string
				for _, col := range t.SortedColumns() {
					if t.Erase == dsar.EraseNull {
						set = append(set, quote(col)+" = NULL")
						changed = append(changed, quote(col)+" IS NOT NULL")
					} else {
						set = append(set, quote(col)+" = ?")
						args = append(args, dsar.MaskValue)
						changed = append(changed, "NOT ("+quote(col)+" <=> ?)")
					}
				}
				if len(set) == 0 {
					continue
				}
				args = append(args, string(subject))
				if t.Erase == dsar.EraseMask {
					for range t.SortedColumns() {
						args = append(args, dsar.MaskValue)
					}
				}
				q = fmt.Sprintf("UPDATE %s SET %s WHERE %s = ? AND (%s)", quote(t.Table), strings.Join(set, ", "),
					quote(t.SubjectColumn), strings.Join(changed, " OR "))
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
			args = append(args, string(subject))
			res, err := tx.ExecContext(ctx, fmt.Sprintf("UPDATE %s SET %s WHERE %s = ?", quote(t.Table), strings.Join(set, ", "),
				quote(t.SubjectColumn)), args...)
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
