package dsar

import (
	"context"
	"time"

	"github.com/privguard/privguard"
)

// Retention sweeps (PIPL Arts. 19, 47(1); GDPR Art. 5(1)(e)): data whose retention period
// ended is deleted or anonymised by the controller without anyone asking. The planner
// (package retention) turns the configured rules, the data map and the ledger's facts into
// SweepActions, one list per store; the engine carries them out as the durable tasks of a
// retention request, a batch at a time.

// SweepMode is what a sweep action does to the rows (or keys) it finds.
type SweepMode string

// Sweep modes.
const (
	// SweepDelete deletes the rows (or keys).
	SweepDelete SweepMode = "delete"
	// SweepAnonymise keeps the rows but unlinks them from the subject, irreversibly: the
	// subject column becomes NULL (or AnonymousSubject when it is NOT NULL), every mapped
	// personal column NULL (or its type's neutral value when NOT NULL: '' for text, 0 for
	// numbers, false for booleans, the epoch for dates and times), and the dated_by column is
	// cut to the first instant of its month. Columns the data map does not name are kept.
	SweepAnonymise SweepMode = "anonymise"
	// SweepClear clears only Columns of the rows, as the table's erase mode would (mask for
	// mask, NULL otherwise); the rows stay, linked to their subject.
	SweepClear SweepMode = "clear"
	// SweepExpire (Redis keys dated by their TTL) gives every matching key without a TTL, or
	// with a longer one, the TTL Period.
	SweepExpire SweepMode = "expire"
)

// AnonymousSubject is what an anonymised row's NOT NULL text subject column holds. It cannot
// be a subject id (privguard.SubjectID does not allow '~'), so it links to no one.
const AnonymousSubject = "~anonymous~"

// SweepAction is one kind of change a retention sweep makes on one table (or key template)
// of a store. Applying it twice changes nothing more: its conditions exclude what it already
// changed, and its cut-off is fixed when the run is planned, not when the action runs.
type SweepAction struct {
	// Rule names the retention rule (or rules, joined by "+") the action carries out; the
	// report counts per rule.
	Rule string `json:"rule"`
	// Table is a table of the store's data map, or a key template of a Redis store.
	Table string    `json:"table"`
	Mode  SweepMode `json:"mode"`
	// Columns are the columns SweepClear clears (mapped columns of Table).
	Columns []string `json:"columns,omitempty"`
	// Before, when set, limits the action to rows whose dated_by column (a Redis key's
	// dated_by field) is before it. Rows with no date (NULL) are never swept by date.
	Before time.Time `json:"before,omitzero"`
	// Subjects, when set, limits the action to these subjects' rows (compared exactly, as
	// in every erasure); nil means every subject.
	Subjects []privguard.SubjectID `json:"subjects,omitempty"`
	// Period is SweepExpire's TTL.
	Period time.Duration `json:"period,omitempty"`
}

// Sweeper is the optional capability of carrying out retention sweeps (the SQL connectors,
// the Redis connector).
type Sweeper interface {
	// Sweep carries out a on at most limit rows (or keys) and returns how many it changed
	// and whether more may remain. Each call is a short transaction of its own, so a sweep
	// never holds a lock on a large part of a table; an error leaves what earlier calls did.
	Sweep(ctx context.Context, a SweepAction, limit int) (n int, more bool, err error)
	// CountSweep returns how many rows (or keys) a would change now, changing nothing: the
	// dry run.
	CountSweep(ctx context.Context, a SweepAction) (int, error)
}

// ActivityReader is the optional capability of reading subjects' last activity from a
// table's last_active_by column, for the rules that run from the last activity.
type ActivityReader interface {
	// Inactive returns, in id order after after, at most limit subjects whose latest value in
	// table's last_active_by column is before t (a subject with no dated row is not returned).
	Inactive(ctx context.Context, table string, before time.Time, after privguard.SubjectID, limit int) ([]privguard.SubjectID, error)
	// LastActive returns the latest value in table's last_active_by column of each of subjects
	// that has one.
	LastActive(ctx context.Context, table string, subjects []privguard.SubjectID) (map[privguard.SubjectID]time.Time, error)
}
