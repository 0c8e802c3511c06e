package auditpack

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Languages are the report's languages: report.zh.html and report.en.html.
var Languages = []string{"zh", "en"}

//go:embed report.html.tmpl
var reportTemplate string

var report = template.Must(template.New("report").Funcs(template.FuncMap{
	"pct":   func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) + " %" },
	"meter": func(ratio float64) string { return strconv.FormatFloat(300*min(max(ratio, 0), 1), 'f', 1, 64) },
	"sortedKeys": func(m map[string]int) []string {
		return slices.Sorted(maps.Keys(m))
	},
}).Parse(reportTemplate))

// labels are the report's texts, by language.
var labels = map[string]map[string]string{
	"zh": {
		"title": "个人信息保护合规审计包", "period": "期间", "asof": "截至", "controller": "个人信息处理者",
		"record": "个人信息处理活动记录", "activities": "处理活动", "recipients": "接收方", "transfers": "出境传输", "gaps": "缺失项",
		"requests": "个人权利请求登记", "total": "合计", "regime": "法域", "open": "处理中", "overdue": "已逾期", "closed": "已办结", "ontime": "按期办结", "ontimepct": "按期率",
		"perweek": "每周收到的请求与按期率", "week": "周", "received": "收到",
		"disclosures": "提供与披露记录", "entries": "条目", "abroad": "出境", "people": "涉及人次", "kind": "类型",
		"crossborder": "出境人数与门槛", "year": "年度", "threshold": "门槛", "count": "人数", "status": "状态",
		"assessments": "个人信息保护影响评估", "verified": "链校验通过", "broken": "链断裂",
		"trail": "管理操作记录", "acts": "操作", "keyevents": "密钥事件", "outcome": "结果",
		"decisions": "处理决定记录", "lines": "决定", "allowed": "允许", "denied": "拒绝", "denials": "拒绝原因", "reason": "原因",
		"incidents": "个人信息安全事件登记", "notified": "已通知", "severity": "级别",
		"consent": "同意与撤回", "grants": "同意", "withdrawals": "撤回", "expiries": "到期", "refusals": "拒绝同意", "purpose": "目的",
		"heads": "链头校验点", "none": "无",
	},
	"en": {
		"title": "Privacy compliance audit pack", "period": "Period", "asof": "As of", "controller": "Controller",
		"record": "Record of processing activities", "activities": "Activities", "recipients": "Recipients", "transfers": "Transfers abroad", "gaps": "Gaps",
		"requests": "Register of data-subject requests", "total": "Total", "regime": "Regime", "open": "Open", "overdue": "Overdue", "closed": "Closed", "ontime": "Closed on time", "ontimepct": "On time",
		"perweek": "Requests received per week and on-time ratio", "week": "Week", "received": "Received",
		"disclosures": "Disclosure log", "entries": "Entries", "abroad": "Abroad", "people": "People provided", "kind": "Kind",
		"crossborder": "People transferred abroad against the thresholds", "year": "Year", "threshold": "Threshold", "count": "People", "status": "Status",
		"assessments": "Impact assessments", "verified": "chain verified", "broken": "chain broken",
		"trail": "Admin trail", "acts": "Acts", "keyevents": "Key events", "outcome": "Outcome",
		"decisions": "Decision log", "lines": "Decisions", "allowed": "Allowed", "denied": "Denied", "denials": "Denials by reason", "reason": "Reason",
		"incidents": "Incident register", "notified": "Notified", "severity": "Severity",
		"consent": "Consent given and withdrawn", "grants": "Grants", "withdrawals": "Withdrawals", "expiries": "Expiries", "refusals": "Refusals", "purpose": "Purpose",
		"heads": "Chain checkpoints", "none": "none",
	},
}

// bar is one bar of a chart, in the SVG's coordinates.
type bar struct {
	X, Y, W, H float64
	Label      string
	Value      string
	// Class styles the bar (bar, or bar2 for a second series).
	Class string
}

// chart is a bar chart drawn as inline SVG (no script: the report opens offline and prints).
type chart struct {
	Name          string
	Width, Height float64
	Bars          []bar
	// Line is a polyline over the bars (the on-time ratio), "" for none.
	Line string
	Max  string
}

const chartW, chartH = 720.0, 200.0

// barChart draws one bar per label for each series, side by side (grants and
// withdrawals), all scaled to the largest value.
func barChart(name string, labels []string, series ...[]float64) *chart {
	c := &chart{Name: name, Width: chartW, Height: chartH}
	maxV := 0.0
	for _, vs := range series {
		for _, v := range vs {
			maxV = max(maxV, v)
		}
	}
	c.Max = strconv.FormatFloat(maxV, 'f', -1, 64)
	if len(labels) == 0 {
		return c
	}
	w := chartW / float64(len(labels))
	bw := w / float64(len(series))
	for i := range labels {
		for j, vs := range series {
			h := 0.0
			if maxV > 0 {
				h = (chartH - 20) * vs[i] / maxV
			}
			class := "bar"
			if j > 0 {
				class = "bar2"
			}
			c.Bars = append(c.Bars, bar{X: float64(i)*w + float64(j)*bw + 1, Y: chartH - h, W: max(bw-2, 1), H: h, Label: labels[i],
				Value: strconv.FormatFloat(vs[i], 'f', -1, 64), Class: class})
		}
	}
	return c
}

// reportData is what the template sees.
type reportData struct {
	Lang  string
	L     map[string]string
	S     *Summary
	Weeks *chart
	// Consent draws grants and withdrawals per purpose (at most maxBars purposes, the
	// busiest first).
	Consent *chart
	// Denials draws the denials by reason, the most frequent first (at most maxBars).
	Denials *chart
}

// maxBars bounds the bars of a chart of categories.
const maxBars = 12

func writeReport(w io.Writer, s *Summary, lang string) error {
	l, ok := labels[lang]
	if !ok {
		return fmt.Errorf("auditpack: report language %q", lang)
	}
	d := reportData{Lang: lang, L: l, S: s}
	if s.Requests != nil {
		names := make([]string, len(s.Requests.Weeks))
		vals := make([]float64, len(s.Requests.Weeks))
		for i, wk := range s.Requests.Weeks {
			names[i], vals[i] = wk.Start, float64(wk.Received)
		}
		d.Weeks = barChart("requests.weeks", names, vals)
		var pts []byte
		for i, wk := range s.Requests.Weeks {
			if wk.Closed == 0 {
				continue
			}
			b := d.Weeks.Bars[i]
			pts = fmt.Appendf(pts, "%.1f,%.1f ", b.X+b.W/2, chartH-(chartH-20)*wk.OnTimePct/100)
		}
		d.Weeks.Line = string(pts)
	}
	if s.Consent != nil {
		busy := func(p string) int { return s.Consent.ByPurpose[p].Grants + s.Consent.ByPurpose[p].Withdrawals }
		names := slices.SortedFunc(maps.Keys(s.Consent.ByPurpose), func(a, b string) int {
			if c := busy(b) - busy(a); c != 0 {
				return c
			}
			return strings.Compare(a, b)
		})
		names = names[:min(len(names), maxBars)]
		g, wd := make([]float64, len(names)), make([]float64, len(names))
		for i, n := range names {
			g[i], wd[i] = float64(s.Consent.ByPurpose[n].Grants), float64(s.Consent.ByPurpose[n].Withdrawals)
		}
		d.Consent = barChart("consent.purposes", names, g, wd)
	}
	if s.Decisions != nil {
		names := slices.SortedFunc(maps.Keys(s.Decisions.DenyReasons), func(a, b string) int {
			if c := s.Decisions.DenyReasons[b] - s.Decisions.DenyReasons[a]; c != 0 {
				return int(max(min(c, 1), -1))
			}
			return strings.Compare(a, b)
		})
		names = names[:min(len(names), maxBars)]
		vals := make([]float64, len(names))
		for i, n := range names {
			vals[i] = float64(s.Decisions.DenyReasons[n])
		}
		d.Denials = barChart("decisions.denials", names, vals)
	}
	return report.Execute(w, d)
}
