package postgres

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/dsar"
)

var (
	_ dsar.Sweeper        = (*Connector)(nil)
	_ dsar.ActivityReader = (*Connector)(nil)
)

// colInfo is what anonymisation needs to know of a column: whether it may be NULL and, if
// not, the neutral value of its type.
type colInfo struct {
	notNull bool
	neutral string // a SQL literal; "" if the type has none
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

// sweepWhere is the condition selecting a's rows of t, its arguments appended to args: the
// dated_by cut-off and the subjects (compared exactly, as subjectIs does), and for the
// modes that keep the rows, only rows the action would still change.
func (c *Connector) sweepWhere(ctx context.Context, t Table, a dsar.SweepAction, args []any) (where, set string, _ []any, err error) {
	op := "sweep " + t.Table
	var conds []string // a is checked for t (dsar.SweepTable)
	if !a.Before.IsZero() {
		args = append(args, a.Before)
		conds = append(conds, fmt.Sprintf("%s < $%d", quote(t.DatedBy), len(args)))
	}
	if a.Subjects != nil {
		ids := make([]string, len(a.Subjects))
		for i, s := range a.Subjects {
			ids[i] = string(s)
		}
		args = append(args, ids)
		col, n := quote(t.SubjectColumn), len(args)
		conds = append(conds, fmt.Sprintf(`%s = ANY($%d) AND %s::text COLLATE "C" = ANY($%d::text[])`, col, n, col, n))
	}
	switch a.Mode {
	case dsar.SweepDelete:
	case dsar.SweepClear:
		var sets, changed []string
		for _, col := range a.Columns {
			if t.Erase == dsar.EraseMask {
				args = append(args, dsar.MaskValue)
				sets = append(sets, fmt.Sprintf("%s = $%d", quote(col), len(args)))
				changed = append(changed, fmt.Sprintf("%s IS DISTINCT FROM $%d", quote(col), len(args)))
			} else {
				sets = append(sets, quote(col)+" = NULL")
				changed = append(changed, quote(col)+" IS NOT NULL")
			}
		}
		set = strings.Join(sets, ", ")
		conds = append(conds, "("+strings.Join(changed, " OR ")+")")
	case dsar.SweepAnonymise:
		info, err := c.columns(ctx, t)
		if err != nil {
			return "", "", nil, err
		}
		var sets, changed []string
		assign := func(col, val string) {
			sets = append(sets, quote(col)+" = "+val)
			changed = append(changed, fmt.Sprintf("%s IS DISTINCT FROM %s", quote(col), val))
		}
		subj := info[t.SubjectColumn]
		switch {
		case !subj.notNull:
			assign(t.SubjectColumn, "NULL")
		case subj.neutral == "''":
			assign(t.SubjectColumn, "'"+dsar.AnonymousSubject+"'")
		default:
			return "", "", nil, c.invalid(op, "subject column %s of %s is NOT NULL and not text", t.SubjectColumn, t.Table)
		}
		for _, col := range t.SortedColumns() {
			if col == t.SubjectColumn || col == t.DatedBy {
				continue
			}
			ci := info[col]
			switch {
			case !ci.notNull:
				assign(col, "NULL")
			case ci.neutral != "":
				assign(col, ci.neutral)
			default:
				return "", "", nil, c.invalid(op, "column %s of %s is NOT NULL and its type has no neutral value", col, t.Table)
			}
		}
		if t.DatedBy != "" {
			d := quote(t.DatedBy)
			month := fmt.Sprintf("date_trunc('month', %s)", d)
			if info[t.DatedBy].neutral == "'epoch'::timestamptz" { // the month in UTC, not the session's zone
				month = fmt.Sprintf("(date_trunc('month', %s AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')", d)
			}
			assign(t.DatedBy, month)
		}
		set = strings.Join(sets, ", ")
		conds = append(conds, "("+strings.Join(changed, " OR ")+")")
	default:
		return "", "", nil, c.invalid(op, "sweep mode %q: want delete, anonymise or clear", a.Mode)
	}
	return strings.Join(conds, " AND "), set, args, nil
}

// columns returns t's column facts, read from the catalog once.
func (c *Connector) columns(ctx context.Context, t Table) (map[string]colInfo, error) {
	c.schema.mu.Lock()
	defer c.schema.mu.Unlock()
	if info, ok := c.schema.tables[t.Table]; ok {
		return info, nil
	}
	rows, err := c.pool.Query(ctx, `SELECT a.attname::text, a.attnotnull, ty.typcategory::text, format_type(a.atttypid, a.atttypmod)
		FROM pg_attribute a JOIN pg_type ty ON ty.oid = a.atttypid
		WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`, quote(t.Table))
	if err != nil {
		return nil, c.fail("sweep "+t.Table, err)
	}
	info := map[string]colInfo{}
	for rows.Next() {
		var name, cat, typ string
		var ci colInfo
		if err := rows.Scan(&name, &ci.notNull, &cat, &typ); err != nil {
			rows.Close()
			return nil, c.fail("sweep "+t.Table, err)
		}
		ci.neutral = neutral(cat, typ)
		info[name] = ci
	}
	rows.Close()
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

// neutral is the neutral value of a type (by its pg_type category and name) as a SQL
// literal, or "" if it has none.
func neutral(category, typ string) string {
	switch category {
	case "S": // string types, citext
		return "''"
	case "N": // numbers
		return "0"
	case "B":
		return "false"
	case "D": // dates and times
		switch {
		case strings.HasPrefix(typ, "timestamp") && strings.Contains(typ, "with time zone"):
			return "'epoch'::timestamptz"
		case strings.HasPrefix(typ, "timestamp"):
			return "'epoch'::timestamp"
		case typ == "date":
			return "'epoch'::date"
		case strings.HasPrefix(typ, "time"):
			return "'00:00'"
		}
	}
	return ""
}

// Sweep implements dsar.Sweeper: one statement (its own transaction) on at most limit
// rows, found through the dated_by or subject index and locked with SKIP LOCKED, so a
// sweep never waits for or holds a lock on more than the batch. Rows another transaction
// holds locked are skipped: more may be false while they remain, and the next run sweeps
// them.
func (c *Connector) Sweep(ctx context.Context, a dsar.SweepAction, limit int) (int, bool, error) {
	t, err := c.table("sweep", a)
	if err != nil {
		return 0, false, err
	}
	if limit <= 0 {
		return 0, false, c.invalid("sweep "+t.Table, "limit %d: want > 0", limit)
	}
	if a.Subjects != nil && len(a.Subjects) == 0 {
		return 0, false, nil
	}
	where, set, args, err := c.sweepWhere(ctx, t, a, nil)
	if err != nil {
		return 0, false, err
	}
	args = append(args, limit)
	// The outer WHERE repeats the condition: on a partitioned table a ctid is unique only
	// within its partition.
	pick := fmt.Sprintf("ctid = ANY(ARRAY(SELECT ctid FROM %s WHERE %s LIMIT $%d FOR UPDATE SKIP LOCKED)) AND %s",
		quote(t.Table), where, len(args), where)
	var q string
	if a.Mode == dsar.SweepDelete {
		q = fmt.Sprintf("DELETE FROM %s WHERE %s", quote(t.Table), pick)
	} else {
		q = fmt.Sprintf("UPDATE %s SET %s WHERE %s", quote(t.Table), set, pick)
	}
	tag, err := c.pool.Exec(ctx, q, args...)
	if err != nil {
		return 0, false, c.fail("sweep "+t.Table, err)
	}
	n := int(tag.RowsAffected())
	return n, n >= limit, nil
}

// CountSweep implements dsar.Sweeper.
func (c *Connector) CountSweep(ctx context.Context, a dsar.SweepAction) (int, error) {
	t, err := c.table("count sweep", a)
	if err != nil {
		return 0, err
	}
	if a.Subjects != nil && len(a.Subjects) == 0 {
		return 0, nil
	}
	where, _, args, err := c.sweepWhere(ctx, t, a, nil)
	if err != nil {
		return 0, err
	}
	var n int
	if err := c.pool.QueryRow(ctx, fmt.Sprintf("SELECT count(*) FROM %s WHERE %s", quote(t.Table), where), args...).Scan(&n); err != nil {
		return 0, c.fail("count sweep "+t.Table, err)
	}
	return n, nil
}

func (c *Connector) activityTable(op, name string) (Table, error) {
	t, err := dsar.ActivityTable(c.tables, name)
	if err != nil {
		return t, &dsar.ConnectorError{Connector: c.name, Op: op, Err: err}
	}
	return t, nil
}

// Inactive implements dsar.ActivityReader. Ids are grouped and ordered as bytes (the "C"
// collation), so ids a citext column would fold together stay apart; anonymised rows and
// values that are not subject ids are left out. Each call reads the whole table (the
// grouping is not served by an index).
func (c *Connector) Inactive(ctx context.Context, table string, before time.Time, after privguard.SubjectID, limit int) ([]privguard.SubjectID, error) {
	t, err := c.activityTable("inactive", table)
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, c.invalid("inactive "+t.Table, "limit %d: want > 0", limit)
	}
	s, la := quote(t.SubjectColumn), quote(t.LastActiveBy)
	q := fmt.Sprintf(`SELECT %s::text COLLATE "C" FROM %s WHERE %s IS NOT NULL AND %s::text COLLATE "C" > $2
		GROUP BY 1 HAVING max(%s) < $1 ORDER BY 1 LIMIT $3`, s, quote(t.Table), la, s, la)
	var out []privguard.SubjectID
	for len(out) < limit {
		want := limit - len(out)
		rows, err := c.pool.Query(ctx, q, before, string(after), want)
		if err != nil {
			return nil, c.fail("inactive "+t.Table, err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, c.fail("inactive "+t.Table, err)
		}
		for _, id := range ids {
			if s := privguard.SubjectID(id); s.Validate() == nil {
				out = append(out, s)
			}
		}
		if len(ids) < want {
			break
		}
		after = privguard.SubjectID(ids[len(ids)-1])
	}
	return out, nil
}

// LastActive implements dsar.ActivityReader.
func (c *Connector) LastActive(ctx context.Context, table string, subjects []privguard.SubjectID) (map[privguard.SubjectID]time.Time, error) {
	t, err := c.activityTable("last active", table)
	if err != nil {
		return nil, err
	}
	out := map[privguard.SubjectID]time.Time{}
	if len(subjects) == 0 {
		return out, nil
	}
	ids := make([]string, len(subjects))
	for i, s := range subjects {
		ids[i] = string(s)
	}
	s, la := quote(t.SubjectColumn), quote(t.LastActiveBy)
	q := fmt.Sprintf(`SELECT %s::text COLLATE "C", max(%s) FROM %s WHERE %s = ANY($1) AND %s::text COLLATE "C" = ANY($1::text[])
		AND %s IS NOT NULL GROUP BY 1`, s, la, quote(t.Table), s, s, la)
	rows, err := c.pool.Query(ctx, q, ids)
	if err != nil {
		return nil, c.fail("last active "+t.Table, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			return nil, c.fail("last active "+t.Table, err)
		}
		out[privguard.SubjectID(id)] = at
	}
	if err := rows.Err(); err != nil {
		return nil, c.fail("last active "+t.Table, err)
	}
	return out, nil
}
