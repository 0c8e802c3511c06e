package evidence

import (
	"context"
	"io"
	"time"

	"github.com/privguard/privguard/consent"
)

// ExportEdited exports with line n of records.jsonl changed by edit before it is hashed
// and signed, as an exporter holding the key could: the tests of the per-record checks.
func ExportEdited(ctx context.Context, l *consent.Ledger, scope Scope, w io.Writer, now time.Time, edit func(n int, ln *Line)) (Summary, error) {
	return export(ctx, l, scope, w, now, "test", edit)
}
