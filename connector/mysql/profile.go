package mysql

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/dsar"
)

var _ dsar.Profiler = (*Connector)(nil)

// valueIs is the condition that col holds exactly the value bound twice (its two
// placeholders), as subjectIs compares the subject: the column's own equality, then its
// utf8mb4 bytes, so that no collation folds "VIP" into "vip" nor PAD SPACE "a " into "a".
func valueIs(col string) string {
	q := quote(col)
	return fmt.Sprintf("%s = ? AND CAST(CONVERT(%s USING utf8mb4) AS BINARY) = CAST(? AS BINARY)", q, q)
}

// Derived implements dsar.Profiler: each distinct value (byte for byte) of a column mapped
// to a derived category in the subject's rows is one item, at "table.column". NULLs are
// none, nor is MaskValue in a table erased by masking (what an erasure left).
func (c *Connector) Derived(ctx context.Context, subject privguard.SubjectID) ([]dsar.DerivedItem, error) {
	var out []dsar.DerivedItem
	for _, t := range c.tables {
		for _, col := range t.DerivedColumns() {
			rows, err := c.db.QueryContext(ctx, fmt.Sprintf("SELECT CAST(CONVERT(%s USING utf8mb4) AS BINARY) FROM %s WHERE %s AND %s IS NOT NULL",
				quote(col), quote(t.Table), subjectIs(t), quote(col)), string(subject), string(subject))
			if err != nil {
				return nil, c.fail(dsar.OpProfile+" "+t.Table, err)
			}
			var vals []string
			for rows.Next() {
				var v []byte
				if err := rows.Scan(&v); err != nil {
					rows.Close()
					return nil, c.fail(dsar.OpProfile+" "+t.Table, err)
				}
				vals = append(vals, string(v))
			}
			err = rows.Err()
			rows.Close()
			if err != nil {
				return nil, c.fail(dsar.OpProfile+" "+t.Table, err)
			}
			out = append(out, t.DerivedItems(c.name, col, vals)...)
		}
	}
	return out, nil
}

// EraseDerived implements dsar.Profiler, in one transaction: per item, the subject's rows
// holding exactly that value in that column are deleted if the table's erase mode is
// delete; otherwise that column of those rows alone is set to NULL or MaskValue. Other
// subjects' rows, other values and other columns are not touched; the value is a bound
// parameter.
func (c *Connector) EraseDerived(ctx context.Context, subject privguard.SubjectID, items []dsar.DerivedItem) (dsar.Erased, error) {
	tables, cols, err := dsar.DerivedPlaces(c.name, c.tables, items)
	if err != nil {
		return dsar.Erased{}, err
	}
	var erased dsar.Erased
	err = c.inTx(ctx, func(tx *sql.Tx) error {
		for i, it := range items {
			t, col := tables[i], cols[i]
			args := []any{string(subject), string(subject), it.Value, it.Value}
			var q string
			switch t.Erase {
			case dsar.EraseDelete:
				q = fmt.Sprintf("DELETE FROM %s WHERE %s AND %s", quote(t.Table), subjectIs(t), valueIs(col))
			case dsar.EraseNull:
				q = fmt.Sprintf("UPDATE %s SET %s = NULL WHERE %s AND %s", quote(t.Table), quote(col), subjectIs(t), valueIs(col))
			default:
				if it.Value == dsar.MaskValue {
					continue // already masked
				}
				q = fmt.Sprintf("UPDATE %s SET %s = ? WHERE %s AND %s", quote(t.Table), quote(col), subjectIs(t), valueIs(col))
				args = append([]any{dsar.MaskValue}, args...)
			}
			res, err := tx.ExecContext(ctx, q, args...)
			if err != nil {
				return fmt.Errorf("erase derived %s: %w", t.Table, err)
			}
			n, _ := res.RowsAffected()
			erased.Items += int(n)
		}
		return nil
	})
	if err != nil {
		return dsar.Erased{}, c.fail(dsar.OpEraseDerived, err)
	}
	return erased, nil
}
