package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/dsar"
)

var _ dsar.Profiler = (*Connector)(nil)

// Derived implements dsar.Profiler: each distinct value (as text, byte for byte) of a
// column mapped to a derived category in the subject's rows is one item, at
// "table.column". NULLs are none, nor is MaskValue in a table erased by masking (what an
// erasure left). An array column's value is one item (its text form).
func (c *Connector) Derived(ctx context.Context, subject privguard.SubjectID) ([]dsar.DerivedItem, error) {
	var out []dsar.DerivedItem
	for _, t := range c.tables {
		for _, col := range t.DerivedColumns() {
			rows, err := c.pool.Query(ctx, fmt.Sprintf("SELECT %s::text FROM %s WHERE %s AND %s IS NOT NULL",
				quote(col), quote(t.Table), subjectIs(t, 1), quote(col)), string(subject))
			if err != nil {
				return nil, c.fail(dsar.OpProfile+" "+t.Table, err)
			}
			vals, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return nil, c.fail(dsar.OpProfile+" "+t.Table, err)
			}
			out = append(out, t.DerivedItems(c.name, col, vals)...)
		}
	}
	return out, nil
}

// EraseDerived implements dsar.Profiler, in one transaction: per item, the subject's rows
// whose column holds exactly that value (as text under the "C" collation, so no citext or
// nondeterministic collation folds "VIP" into "vip") are deleted if the table's erase mode
// is delete; otherwise that column of those rows alone is set to NULL or MaskValue. Other
// subjects' rows, other values and other columns are not touched; the value is a bound
// parameter.
func (c *Connector) EraseDerived(ctx context.Context, subject privguard.SubjectID, items []dsar.DerivedItem) (dsar.Erased, error) {
	tables, cols, err := dsar.DerivedPlaces(c.name, c.tables, items)
	if err != nil {
		return dsar.Erased{}, err
	}
	var erased dsar.Erased
	err = pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		for i, it := range items {
			t, col := tables[i], cols[i]
			is := fmt.Sprintf(`%s AND %s::text COLLATE "C" = $2::text`, subjectIs(t, 1), quote(col))
			args := []any{string(subject), it.Value}
			var q string
			switch t.Erase {
			case dsar.EraseDelete:
				q = fmt.Sprintf("DELETE FROM %s WHERE %s", quote(t.Table), is)
			case dsar.EraseNull:
				q = fmt.Sprintf("UPDATE %s SET %s = NULL WHERE %s", quote(t.Table), quote(col), is)
			default:
				if it.Value == dsar.MaskValue {
					continue // already masked
				}
				q = fmt.Sprintf("UPDATE %s SET %s = $3 WHERE %s", quote(t.Table), quote(col), is)
				args = append(args, dsar.MaskValue)
			}
			tag, err := tx.Exec(ctx, q, args...)
			if err != nil {
				return fmt.Errorf("erase derived %s: %w", t.Table, err)
			}
			erased.Items += int(tag.RowsAffected())
		}
		return nil
	})
	if err != nil {
		return dsar.Erased{}, c.fail(dsar.OpEraseDerived, err)
	}
	return erased, nil
}
