package incident

import (
	"context"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/privguard/privguard/internal/csvsafe"
)

// CSVHeader is the register's heading, in Chinese and English. The subjects are counted,
// never named.
var CSVHeader = []string{"序号 / Seq", "编号 / ID", "名称 / Title", "状态 / Status", "获悉时间 / Aware at (UTC)", "发生时间 / Occurred at",
	"级别 / Severity", "风险 / Risk", "待评估 / Assessment due", "原因 / Cause", "事实 / Facts", "影响 / Effects", "补救措施 / Remedial actions",
	"信息种类 / Categories", "人数 / Subjects", "时限 / Clocks", "已通知 / Notified", "缺项 / Gaps"}

// WriteCSV writes the incidents f selects as CSV (UTF-8 with a BOM, cells defused), one
// line per incident; notes are joined with " | ".
func (r *Register) WriteCSV(ctx context.Context, w io.Writer, f Filter) error {
	cw := csvsafe.NewWriter(w)
	if err := cw.Write(CSVHeader...); err != nil {
		return err
	}
	ts := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	notes := func(ns []Note) string {
		parts := make([]string, len(ns))
		for i, n := range ns {
			parts[i] = n.Text
		}
		return strings.Join(parts, " | ")
	}
	err := r.List(ctx, f, func(v View) error {
		cats := make([]string, len(v.Categories))
		for i, c := range v.Categories {
			cats[i] = string(c)
		}
		var clocks, notified []string
		for _, c := range v.Clocks {
			s := c.Name + "=" + string(c.State)
			if c.Due != nil {
				s += "@" + ts(c.Due)
			}
			clocks = append(clocks, s)
		}
		for _, n := range v.Notifications {
			s := n.To + "@" + ts(&n.At)
			if n.Reference != "" {
				s += " ref " + n.Reference
			}
			notified = append(notified, s)
		}
		aware := v.AwareAt
		return cw.Write(strconv.FormatUint(v.Seq, 10), v.ID, v.Title, v.Status, ts(&aware), ts(v.OccurredAt), string(v.Severity), string(v.Risk),
			strconv.FormatBool(v.AssessmentDue), v.Cause, notes(v.Facts), notes(v.Effects), notes(v.Actions), strings.Join(cats, "; "),
			strconv.FormatInt(v.SubjectCount, 10), strings.Join(clocks, "; "), strings.Join(notified, "; "), strings.Join(v.Gaps, "; "))
	})
	if err != nil {
		return err
	}
	return cw.Flush()
}
