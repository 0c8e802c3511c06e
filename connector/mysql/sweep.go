package mysql

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/dsar"
)

var (
	_ dsar.Sweeper        = (*Connector)(nil)
	_ dsar.ActivityReader = (*Connector)(nil)
)

// colInfo is what anonymisation needs to know of a column: whether it may be NULL, its
// type and, if it has one, its type's neutral value (a SQL literal).
type colInfo struct {
	notNull bool
	typ     string
	neutral string
}

// schemaCache holds each table's column facts, read once (SweepAnonymise).
type schemaCache struct {
	mu     sync.Mutex
	tables map[string]map[string]colInfo
}

// table is the table a sweeps, checked for it (dsar.SweepTable).
func (c *Connector) table(op string, a dsar.SweepAction) (Table, error) {
	t, err := dsar.SweepTable(c.tables, a)
	if err != nil {
		return t, &dsar.ConnectorError{Connector: c.name, Op: op, Err: err}
	}
	return t, nil
}

func (c *Connector) invalid(op, format string, args ...any) error {
	return &dsar.ConnectorError{Connector: c.name, Op: op, Err: fmt.Errorf(format+": %w", append(args, privguard.ErrInvalid)...)}
}

// sweepStmt is a sweep action made SQL: SET (for the modes that keep the rows) and the
// conditions but the subjects', each with its arguments.
type sweepStmt struct {
	set      string
	setArgs  []any
	cond     string // the dated_by cut-off and "not changed yet"; may be empty
	condArgs []any
	order    string // ORDER BY dated_by, when the cut-off leads (its index serves)
	ids      []any  // distinct subjects; nil: every subject
}

// where is the statement's WHERE clause for one chunk of the subjects (nil: every subject).
func (s sweepStmt) where(t Table, chunk []any) (string, []any) {
	var conds []string
	var args []any
	if s.cond != "" {
		conds, args = append(conds, s.cond), slices.Clone(s.condArgs)
	}
	if chunk != nil {
		in, inArgs := subjectIn(t, chunk)
		conds, args = append(conds, in), append(args, inArgs...)
	}
	return strings.Join(conds, " AND "), args
}

// chunks are the subject chunks a statement runs for: one of every subject, or the ids
// maxBatchIDs at a time.
func (s sweepStmt) chunks() [][]any {
	if s.ids == nil {
		return [][]any{nil}
	}
	return slices.Collect(slices.Chunk(s.ids, maxBatchIDs))
}

func (c *Connector) sweepStmt(ctx context.Context, t Table, a dsar.SweepAction) (sweepStmt, error) {
	op := "sweep " + t.Table
	var s sweepStmt
	var conds []string // a is checked for t (dsar.SweepTable)
	if !a.Before.IsZero() {
		conds = append(conds, quote(t.DatedBy)+" < ?")
		s.condArgs = append(s.condArgs, a.Before)
		s.order = " ORDER BY " + quote(t.DatedBy)
	}
	if a.Subjects != nil {
		s.ids = []any{}
		seen := map[privguard.SubjectID]bool{}
		for _, id := range a.Subjects {
			if !seen[id] {
				seen[id] = true
				s.ids = append(s.ids, string(id))
			}
		}
	}
	var sets, changed []string
	switch a.Mode {
	case dsar.SweepDelete:
	case dsar.SweepClear:
		for _, col := range a.Columns {
			if t.Erase == dsar.EraseMask {
				sets = append(sets, quote(col)+" = ?")
				s.setArgs = append(s.setArgs, dsar.MaskValue)
				changed = append(changed, "NOT ("+quote(col)+" <=> ?)")
				s.condArgs = append(s.condArgs, dsar.MaskValue)
			} else {
				sets = append(sets, quote(col)+" = NULL")
				changed = append(changed, quote(col)+" IS NOT NULL")
			}
		}
	case dsar.SweepAnonymise:
		info, err := c.columns(ctx, t)
		if err != nil {
			return s, err
		}
		assign := func(col, val string) {
			sets = append(sets, quote(col)+" = "+val)
			changed = append(changed, "NOT ("+quote(col)+" <=> "+val+")")
		}
		switch subj := info[strings.ToLower(t.SubjectColumn)]; {
		case !subj.notNull:
			assign(t.SubjectColumn, "NULL")
		case subj.neutral == "''":
			assign(t.SubjectColumn, "'"+dsar.AnonymousSubject+"'")
		default:
			return s, c.invalid(op, "subject column %s of %s is NOT NULL and not text", t.SubjectColumn, t.Table)
		}
		for _, col := range t.SortedColumns() {
			if strings.EqualFold(col, t.SubjectColumn) || strings.EqualFold(col, t.DatedBy) {
				continue
			}
			switch ci := info[strings.ToLower(col)]; {
			case !ci.notNull:
				assign(col, "NULL")
			case ci.neutral != "":
				assign(col, ci.neutral)
			default:
				return s, c.invalid(op, "column %s of %s is NOT NULL and its type has no neutral value", col, t.Table)
			}
		}
		if t.DatedBy != "" {
			d := quote(t.DatedBy)
			cast := "DATETIME"
			if info[strings.ToLower(t.DatedBy)].typ == "date" {
				cast = "DATE"
			}
			assign(t.DatedBy, fmt.Sprintf("CAST(DATE_FORMAT(%s, '%%Y-%%m-01') AS %s)", d, cast))
		}
	default:
		return s, c.invalid(op, "sweep mode %q: want delete, anonymise or clear", a.Mode)
	}
	if len(changed) > 0 {
		// Only rows the action still changes, so that a repeat changes nothing.
		conds = append(conds, "("+strings.Join(changed, " OR ")+")")
	}
	s.set = strings.Join(sets, ", ")
	s.cond = strings.Join(conds, " AND ")
	return s, nil
}

// columns returns t's column facts, read from information_schema once.
func (c *Connector) columns(ctx context.Context, t Table) (map[string]colInfo, error) {
	c.schema.mu.Lock()
	defer c.schema.mu.Unlock()
	if info, ok := c.schema.tables[t.Table]; ok {
		return info, nil
	}
	schema, table, found := strings.Cut(t.Table, ".")
	if !found {
		schema, table = "", t.Table
	}
	rows, err := c.db.QueryContext(ctx, `SELECT COLUMN_NAME, IS_NULLABLE = 'NO', LOWER(DATA_TYPE) FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = COALESCE(NULLIF(?, ''), DATABASE()) AND TABLE_NAME = ?`, schema, table)
	if err != nil {
		return nil, c.fail("sweep "+t.Table, err)
	}
	defer rows.Close()
	info := map[string]colInfo{}
	for rows.Next() {
		var name string
		var ci colInfo
		if err := rows.Scan(&name, &ci.notNull, &ci.typ); err != nil {
			return nil, c.fail("sweep "+t.Table, err)
		}
		ci.neutral = neutral(ci.typ)
		info[strings.ToLower(name)] = ci
	}
	if err := rows.Err(); err != nil {
		return nil, c.fail("sweep "+t.Table, err)
	}
	if len(info) == 0 {
		return nil, &dsar.MapError{Store: c.name, Table: t.Table, Kind: dsar.KindTableMissing}
	}
	if c.schema.tables == nil {
		c.schema.tables = map[string]map[string]colInfo{}
	}
	c.schema.tables[t.Table] = info
	return info, nil
}

// neutral is the neutral value of a MySQL data type as a SQL literal, or "" if it has
// none. TIMESTAMP cannot hold the epoch itself: its neutral value is one second after.
func neutral(typ string) string {
	switch typ {
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext":
		return "''"
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "decimal", "numeric", "float", "double", "bit":
		return "0"
	case "date":
		return "'1970-01-01'"
	case "datetime":
		return "'1970-01-01 00:00:00'"
	case "timestamp":
		return "FROM_UNIXTIME(1)"
	case "time":
		return "'00:00:00'"
	case "year":
		return "1970"
	}
	return ""
}

// Sweep implements dsar.Sweeper: single-table DELETE or UPDATE statements with ORDER BY
// dated_by (when the cut-off leads) and LIMIT, each committed on its own, for up to
// maxBatchIDs subjects at a time, until limit rows are changed.
func (c *Connector) Sweep(ctx context.Context, a dsar.SweepAction, limit int) (int, bool, error) {
	t, err := c.table("sweep", a)
	if err != nil {
		return 0, false, err
	}
	if limit <= 0 {
		return 0, false, c.invalid("sweep "+t.Table, "limit %d: want > 0", limit)
	}
	s, err := c.sweepStmt(ctx, t, a)
	if err != nil {
		return 0, false, err
	}
	n := 0
	for _, chunk := range s.chunks() {
		if n >= limit {
			break
		}
		where, args := s.where(t, chunk)
		var q string
		if a.Mode == dsar.SweepDelete {
			q = fmt.Sprintf("DELETE FROM %s WHERE %s%s LIMIT ?", quote(t.Table), where, s.order)
		} else {
			q = fmt.Sprintf("UPDATE %s SET %s WHERE %s%s LIMIT ?", quote(t.Table), s.set, where, s.order)
			args = slices.Concat(s.setArgs, args)
		}
		res, err := c.db.ExecContext(ctx, q, append(args, limit-n)...)
		if err != nil {
			return n, false, c.fail("sweep "+t.Table, err)
		}
		k, _ := res.RowsAffected()
		n += int(k)
	}
	return n, n >= limit, nil
}

// CountSweep implements dsar.Sweeper.
func (c *Connector) CountSweep(ctx context.Context, a dsar.SweepAction) (int, error) {
	t, err := c.table("count sweep", a)
	if err != nil {
		return 0, err
	}
	s, err := c.sweepStmt(ctx, t, a)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, chunk := range s.chunks() {
		where, args := s.where(t, chunk)
		var n int
		if err := c.db.QueryRowContext(ctx, fmt.Sprintf("SELECT COUNT(*) FROM %s WHERE %s", quote(t.Table), where), args...).Scan(&n); err != nil {
			return 0, c.fail("count sweep "+t.Table, err)
		}
		total += n
	}
	return total, nil
}

func (c *Connector) activityTable(op, name string) (Table, error) {
	t, err := dsar.ActivityTable(c.tables, name)
	if err != nil {
		return t, &dsar.ConnectorError{Connector: c.name, Op: op, Err: err}
	}
	return t, nil
}

// exactID is the subject column as utf8mb4 bytes, the form ids are grouped, ordered and
// compared in, so that no collation folds two ids into one.
func exactID(t Table) string {
	return fmt.Sprintf("CAST(CONVERT(%s USING utf8mb4) AS BINARY)", quote(t.SubjectColumn))
}

// Inactive implements dsar.ActivityReader. Ids are grouped and ordered as bytes; anonymised
// rows and values that are not subject ids are left out.
func (c *Connector) Inactive(ctx context.Context, table string, before time.Time, after privguard.SubjectID, limit int) ([]privguard.SubjectID, error) {
	t, err := c.activityTable("inactive", table)
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, c.invalid("inactive "+t.Table, "limit %d: want > 0", limit)
	}
	id, la := exactID(t), quote(t.LastActiveBy)
	q := fmt.Sprintf(`SELECT %s FROM %s WHERE %s IS NOT NULL AND %s IS NOT NULL AND %s > CAST(? AS BINARY)
		GROUP BY 1 HAVING MAX(%s) < ? ORDER BY 1 LIMIT ?`, id, quote(t.Table), la, quote(t.SubjectColumn), id, la)
	var out []privguard.SubjectID
	for len(out) < limit {
		want := limit - len(out)
		rows, err := c.db.QueryContext(ctx, q, string(after), before, want)
		if err != nil {
			return nil, c.fail("inactive "+t.Table, err)
		}
		got := 0
		for rows.Next() {
			var b []byte
			if err := rows.Scan(&b); err != nil {
				rows.Close()
				return nil, c.fail("inactive "+t.Table, err)
			}
			got++
			after = privguard.SubjectID(b)
			if after.Validate() == nil {
				out = append(out, after)
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, c.fail("inactive "+t.Table, err)
		}
		if got < want {
			break
		}
	}
	return out, nil
}

// LastActive implements dsar.ActivityReader, maxBatchIDs subjects a statement.
func (c *Connector) LastActive(ctx context.Context, table string, subjects []privguard.SubjectID) (map[privguard.SubjectID]time.Time, error) {
	t, err := c.activityTable("last active", table)
	if err != nil {
		return nil, err
	}
	out := map[privguard.SubjectID]time.Time{}
	ids := make([]any, len(subjects))
	for i, s := range subjects {
		ids[i] = string(s)
	}
	la := quote(t.LastActiveBy)
	for chunk := range slices.Chunk(ids, maxBatchIDs) {
		in, args := subjectIn(t, chunk)
		rows, err := c.db.QueryContext(ctx, fmt.Sprintf("SELECT %s, MAX(%s) FROM %s WHERE %s AND %s IS NOT NULL GROUP BY 1",
			exactID(t), la, quote(t.Table), in, la), args...)
		if err != nil {
			return nil, c.fail("last active "+t.Table, err)
		}
		for rows.Next() {
			var id []byte
			var at gomysql.NullTime // parses the value whether or not the DSN sets parseTime
			if err := rows.Scan(&id, &at); err != nil {
				rows.Close()
				return nil, c.fail("last active "+t.Table, err)
			}
			if at.Valid {
				out[privguard.SubjectID(id)] = at.Time
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, c.fail("last active "+t.Table, err)
		}
	}
	return out, nil
}
