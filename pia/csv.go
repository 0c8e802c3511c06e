package pia

import (
	"encoding/csv"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/privguard/privguard/internal/csvsafe"
)

// Columns are the columns of [WriteCSV], the JSON names of [Entry]; lists are joined with
// "; ".
var Columns = []string{"id", "version", "status", "configured", "title", "purposes", "categories", "recipients", "date", "review",
	"conclusion", "legitimacy", "impact", "measures", "assessor", "recorded_at", "seq", "ended_at"}

// WriteCSV writes the register's entries as CSV for a spreadsheet (Excel, WPS): a header of
// Columns, one line per entry. Cells that a spreadsheet would run as a formula are
// defused. The log's state is not a column: WriteCSV refuses nothing, so check
// reg.Log.Verified first.
func WriteCSV(w io.Writer, reg *Register) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(Columns); err != nil {
		return err
	}
	ts := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	for _, e := range reg.Assessments {
		seq := ""
		if e.Seq != 0 {
			seq = strconv.FormatUint(e.Seq, 10)
		}
		row := []string{e.ID, e.Version, string(e.Status), strconv.FormatBool(e.Configured), e.Title, join(e.Purposes), join(e.Categories),
			join(e.Recipients), e.Date, e.Review, e.Conclusion, e.Legitimacy, e.Impact, e.Measures, e.Assessor, ts(e.RecordedAt), seq, ts(e.EndedAt)}
		for i := range row {
			row[i] = defuse(row[i])
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func join[S ~string](list []S) string {
	parts := make([]string, len(list))
	for i, s := range list {
		parts[i] = string(s)
	}
	return strings.Join(parts, "; ")
}

// defuse keeps a spreadsheet from running a cell as a formula (csvsafe.Defuse).
func defuse(s string) string { return csvsafe.Defuse(s) }
