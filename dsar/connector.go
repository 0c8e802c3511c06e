package dsar

import (
	"context"
	"fmt"

	"github.com/privguard/privguard"
)

// Connector is one downstream store holding subjects' data (a database, a cache, a SaaS
// tool behind a webhook). Every operation is idempotent, acts on the subject's own data
// only, and treats the subject id as data, never as code or pattern. Not found is not an
// error: a subject with no data has nothing to export or erase.
type Connector interface {
	// Name is the store's name in the data map ("crm").
	Name() string
	// Export returns everything the store holds about subject.
	Export(ctx context.Context, subject privguard.SubjectID) (Export, error)
	// Erase erases the subject's data as the data map says (delete, mask or null) and
	// returns how many items it changed.
	Erase(ctx context.Context, subject privguard.SubjectID) (Erased, error)
}

// BatchEraser is the optional capability of erasing many subjects in one pass over the
// store, for a bulk erasure: the work that does not depend on the subject (the Redis
// connector's search for segment sets) is done once per batch instead of once per subject.
type BatchEraser interface {
	// EraseBatch erases each subject as Erase would and returns what it changed for each,
	// in the order given. An error fails the whole batch: some of its subjects may have
	// been erased (erasure is idempotent; the engine retries them).
	EraseBatch(ctx context.Context, subjects []privguard.SubjectID) ([]Erased, error)
}

// Rectifier is the optional capability of correcting fields (GDPR Art. 16, PIPL Art. 46).
type Rectifier interface {
	// Correct sets the fields of the given data categories to the new values for subject
	// and returns how many items it changed. Unknown categories are an error.
	Correct(ctx context.Context, subject privguard.SubjectID, patch map[privguard.DataCategory]string) (int, error)
}

// CategoryLister is the optional capability of naming the data categories a store holds
// (from its data map). A correction then reaches each store with only the categories it
// holds, and a patch category that no store holds is refused when the request is made.
type CategoryLister interface {
	Categories() []privguard.DataCategory
}

// Export is a store's copy of a subject's data: one table (or key, or list) per entry.
type Export struct {
	Store  string  `json:"store"`
	Tables []Table `json:"tables"`
}

// Table is the subject's rows of one table, with the data category of each column.
type Table struct {
	Name       string                            `json:"name"`
	Categories map[string]privguard.DataCategory `json:"categories"`
	Rows       []map[string]any                  `json:"rows"`
}

// Rows returns the number of rows exported.
func (e Export) Rows() int {
	n := 0
	for _, t := range e.Tables {
		n += len(t.Rows)
	}
	return n
}

// Erased is what an erasure changed.
type Erased struct {
	Items int `json:"items"` // rows, keys or set memberships changed
}

// ConnectorError is a connector's failure, naming the store and the operation. Its text
// (Err's) may quote what the driver said, which can hold the subject's data: the engine
// records and logs only the store, the operation and the Kind.
type ConnectorError struct {
	Connector string
	Op        string
	// Kind classifies the failure from the driver's error codes; empty lets [KindOf]
	// classify Err.
	Kind ErrorKind
	Err  error
}

func (e *ConnectorError) Error() string {
	return fmt.Sprintf("dsar: %s: %s: %v", e.Connector, e.Op, e.Err)
}

func (e *ConnectorError) Unwrap() error { return e.Err }

// EraseMode says how a table's rows are erased.
type EraseMode string

// Erase modes.
const (
	EraseDelete EraseMode = "delete" // delete the subject's rows
	EraseMask   EraseMode = "mask"   // overwrite the mapped columns with a fixed mask
	EraseNull   EraseMode = "null"   // set the mapped columns to NULL
)

// MaskValue is what EraseMask writes into text columns.
const MaskValue = "[erased]"
