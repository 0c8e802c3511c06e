package dsar

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/privguard/privguard"
)

// TableMap is one SQL table of the data map: where a subject's rows are, which columns
// hold personal data (with their categories), and how they are erased. The SQL connectors
// share it; names from it are checked ([TableMap.Check]) and quoted, never interpolated
// unchecked.
type TableMap struct {
	Table         string                            // may be qualified by a schema or database: "crm.customers"
	SubjectColumn string                            // the column holding the subject id
	Columns       map[string]privguard.DataCategory // personal columns and their categories
	Erase         EraseMode
	// DatedBy is the column that dates each row (when it was collected); retention rules
	// that run from collection sweep by it. Empty: the rows are not dated.
	DatedBy string
	// LastActiveBy is the column that marks the subject's last activity; rules that run
	// from the last activity read it. Empty: the table says nothing about activity.
	LastActiveBy string
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// plainIdent reports whether name is a plain identifier of at most maxLen bytes, qualified
// by at most one schema if qualified is set.
func plainIdent(name string, maxLen int, qualified bool) bool {
	parts := strings.Split(name, ".")
	if len(parts) > 2 || (len(parts) == 2 && !qualified) {
		return false
	}
	for _, p := range parts {
		if len(p) > maxLen || !identRE.MatchString(p) {
			return false
		}
	}
	return true
}

// Check reports a table, subject column or column name that is not a plain identifier of
// at most maxLen bytes (the database's limit: PostgreSQL 63, MySQL 64), or an unknown
// erase mode. Only the table may be qualified ("crm.customers").
func (t TableMap) Check(maxLen int) error {
	if !plainIdent(t.Table, maxLen, true) || !plainIdent(t.SubjectColumn, maxLen, false) {
		return fmt.Errorf("table %q or subject column %q is not a plain identifier", t.Table, t.SubjectColumn)
	}
	for _, c := range []string{t.DatedBy, t.LastActiveBy} {
		if c != "" && !plainIdent(c, maxLen, false) {
			return fmt.Errorf("dated column %q of %s is not a plain identifier", c, t.Table)
		}
	}
	for c := range t.Columns {
		if !plainIdent(c, maxLen, false) {
			return fmt.Errorf("column %q of %s is not a plain identifier", c, t.Table)
		}
	}
	switch t.Erase {
	case EraseDelete, EraseMask, EraseNull:
		return nil
	}
	return fmt.Errorf("table %s: erase %q: want delete, mask or null", t.Table, t.Erase)
}

// SortedColumns returns the mapped columns in name order (queries are built from them).
func (t TableMap) SortedColumns() []string { return slices.Sorted(maps.Keys(t.Columns)) }

// MapCategories returns the categories of the tables' columns, sorted, each once: what a
// SQL store holds ([CategoryLister]).
func MapCategories(tables []TableMap) []privguard.DataCategory {
	var out []privguard.DataCategory
	for _, t := range tables {
		out = append(out, slices.Collect(maps.Values(t.Columns))...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// DerivedColumns returns t's columns mapped to derived categories ([Derived]), in name
// order: what a SQL connector's Profiler lists and erases item by item.
func (t TableMap) DerivedColumns() []string {
	var out []string
	for _, col := range t.SortedColumns() {
		if Derived(t.Columns[col]) {
			out = append(out, col)
		}
	}
	return out
}

// DerivedItems are the items of one derived column from the values the subject's rows hold
// there: each distinct value once, in order, except MaskValue in a table erased by masking
// (what an erasure left).
func (t TableMap) DerivedItems(store, col string, values []string) []DerivedItem {
	slices.Sort(values)
	var out []DerivedItem
	for _, v := range slices.Compact(values) {
		if t.Erase == EraseMask && v == MaskValue {
			continue
		}
		out = append(out, DerivedItem{Store: store, Where: t.Table + "." + col, Category: t.Columns[col], Value: v})
	}
	return out
}

// DerivedPlaces resolves the Where ("table.column") of each item to its table and derived
// column in tables, in order; an item of no derived column of the data map is a
// *ConnectorError of op OpEraseDerived (wrapping privguard.ErrInvalid), before anything
// is erased.
func DerivedPlaces(store string, tables []TableMap, items []DerivedItem) ([]TableMap, []string, error) {
	ts, cols := make([]TableMap, len(items)), make([]string, len(items))
	for i, it := range items {
		found := false
		for _, t := range tables {
			for _, col := range t.DerivedColumns() {
				if !found && t.Table+"."+col == it.Where {
					ts[i], cols[i], found = t, col, true
				}
			}
		}
		if !found {
			return nil, nil, &ConnectorError{Connector: store, Op: OpEraseDerived,
				Err: fmt.Errorf("%q is not a derived column of this store's data map: %w", it.Where, privguard.ErrInvalid)}
		}
	}
	return ts, cols, nil
}
