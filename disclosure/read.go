package disclosure

import (
	"context"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/internal/csvsafe"
	"github.com/privguard/privguard/journal"
)

// Stored is an entry of the disclosure log as stored.
type Stored struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	Hash string    `json:"hash"`
	Entry
}

// Filter selects entries: From ≤ time < To (zero: unbounded), of one recipient, only
// transfers abroad, after a sequence number (a page's cursor).
type Filter struct {
	From, To  time.Time
	Recipient string
	Abroad    bool
	After     uint64
}

func (f *Filter) match(s *Stored) bool {
	return (f.From.IsZero() || !s.Time.Before(f.From)) && (f.Recipient == "" || s.Recipient == f.Recipient) && (!f.Abroad || s.Abroad)
}

// Entries calls fn for each entry of the log in store that f selects, in order, until fn
// returns an error (returned) or the entries end; the chain is checked as it is read, so
// a broken one is a *journal.BreakError.
func Entries(ctx context.Context, store journal.Store, f Filter, fn func(Stored) error) error {
	return journal.Scan(ctx, store, Log, f.After, f.To, func(e journal.Entry) error {
		s := Stored{Seq: e.Seq, Time: e.Time, Hash: e.Hash}
		if err := e.Decode(&s.Entry); err != nil {
			return err
		}
		if !f.match(&s) {
			return nil
		}
		return fn(s)
	})
}

// CSVHeader is the disclosure register's heading, in Chinese and English.
var CSVHeader = []string{"序号 / Seq", "时间 / Time (UTC)", "类型 / Kind", "接收方 / Recipient", "国家或地区 / Country",
	"角色 / Role", "目的 / Purpose", "个人信息类别 / Categories", "敏感 / Sensitive", "法域 / Regime", "人数 / People",
	"出境 / Abroad", "传输机制 / Mechanism", "机制编号 / Mechanism ref", "路由或事件 / Route or event", "决定 / Decision", "哈希 / Hash"}

// WriteCSV writes the entries of store that f selects as CSV (UTF-8 with a BOM, defused).
func WriteCSV(ctx context.Context, w io.Writer, store journal.Store, f Filter) error {
	cw := csvsafe.NewWriter(w)
	if err := cw.Write(CSVHeader...); err != nil {
		return err
	}
	err := Entries(ctx, store, f, func(s Stored) error {
		var mech, ref string
		if s.Transfer != nil {
			mech, ref = string(s.Transfer.Mechanism), s.Transfer.Ref
		}
		cats := make([]string, len(s.Categories))
		for i, c := range s.Categories {
			cats[i] = string(c)
		}
		return cw.Write(strconv.FormatUint(s.Seq, 10), s.Time.UTC().Format(time.RFC3339Nano), s.Kind, s.Recipient, s.Country,
			s.Role, string(s.Purpose), strings.Join(cats, " "), strconv.FormatBool(s.Sensitive), string(s.Regime),
			strconv.Itoa(s.People), strconv.FormatBool(s.Abroad), mech, ref, s.Route, s.Decision, s.Hash)
	})
	if err != nil {
		return err
	}
	return cw.Flush()
}

// Threshold is one of the 2024 provisions' thresholds against this year's count.
type Threshold struct {
	Name      string  `json:"name"` // exemption, assessment, sensitive
	People    int64   `json:"people"`
	Count     int64   `json:"count"`
	Ratio     float64 `json:"ratio"`
	Status    string  `json:"status"` // ok, approaching (≥ 80 %), reached
	Needs     string  `json:"needs"`  // what reaching it requires
	Sensitive bool    `json:"sensitive,omitempty"`
}

// RecipientStatus is a recipient in the transfer register.
type RecipientStatus struct {
	Name      string    `json:"name"`
	Country   string    `json:"country,omitempty"`
	Role      string    `json:"role,omitempty"`
	Abroad    bool      `json:"abroad"`
	Transfer  *Transfer `json:"transfer,omitempty"` // the mechanism in force, if any
	Transfers int       `json:"transfers_declared"`
	// Refused says why a transfer to it would be refused now ("" if it would not).
	Refused privguard.Reason `json:"refused,omitempty"`
}

// Accounting is the cross-border register for one regime and year.
type Accounting struct {
	Regime     privguard.Regime  `json:"regime"`
	Year       int               `json:"year"`
	People     int64             `json:"people"`
	Sensitive  int64             `json:"sensitive_people"`
	Thresholds []Threshold       `json:"thresholds,omitempty"`
	Recipients []RecipientStatus `json:"recipients"`
}

// Accounting returns the register of regime for year (0: this year, CST).
func (g *Gate) Accounting(ctx context.Context, regime privguard.Regime, year int) (Accounting, error) {
	now := g.cfg.Now()
	if year == 0 {
		year = Year(now)
	}
	a := Accounting{Regime: regime, Year: year, Recipients: []RecipientStatus{}}
	var err error
	if a.People, err = g.cfg.Sets.SetSize(ctx, SetName(regime, year, false)); err != nil {
		return a, err
	}
	if a.Sensitive, err = g.cfg.Sets.SetSize(ctx, SetName(regime, year, true)); err != nil {
		return a, err
	}
	if regime == privguard.RegimePIPL {
		a.Thresholds = []Threshold{
			threshold("exemption", ThresholdExempt, a.People, false, "a standard contract, certification or CAC assessment for every transfer"),
			threshold("assessment", ThresholdAssess, a.People, false, "a CAC security assessment for every transfer"),
			threshold("sensitive", ThresholdSensitive, a.Sensitive, true, "a CAC security assessment for transfers of sensitive data"),
		}
	}
	names := make([]string, 0, len(g.recipients))
	for n := range g.recipients {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		rc := g.recipients[n]
		st := RecipientStatus{Name: rc.Name, Country: rc.Country, Role: rc.Role, Abroad: Abroad(regime, rc.Country), Transfers: len(rc.Transfers)}
		if st.Abroad {
			if t, ok := strongest(rc.Transfers, regime, now); ok {
				st.Transfer = &t
				if regime == privguard.RegimePIPL {
					if b := t.Mechanism.Bounds(); b.All >= 0 && a.People >= b.All {
						st.Refused = privguard.ReasonTransferThreshold
					}
				}
			} else {
				st.Refused = privguard.ReasonTransferNoMechanism
			}
		}
		a.Recipients = append(a.Recipients, st)
	}
	return a, nil
}

func threshold(name string, people, count int64, sensitive bool, needs string) Threshold {
	t := Threshold{Name: name, People: people, Count: count, Ratio: float64(count) / float64(people), Needs: needs, Sensitive: sensitive, Status: "ok"}
	switch {
	case count >= people:
		t.Status = "reached"
	case count*10 >= people*8:
		t.Status = "approaching"
	}
	return t
}
