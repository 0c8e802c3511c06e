package ropa

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/privguard/privguard/internal/csvsafe"
)

// The formats a record is written in.
const (
	FormatJSON = "json"
	FormatCSV  = "csv"
	FormatHTML = "html"
)

// Formats are the formats [Record.Write] takes.
func Formats() []string { return []string{FormatJSON, FormatCSV, FormatHTML} }

// Languages are the languages of the CSV's values and the HTML page (JSON has both).
func Languages() []string { return []string{"en", "zh"} }

// ContentType returns the media type of format.
func ContentType(format string) string {
	switch format {
	case FormatCSV:
		return "text/csv; charset=utf-8"
	case FormatHTML:
		return "text/html; charset=utf-8"
	}
	return "application/json"
}

// Write writes r to w in format (json, csv or html), its texts in lang (en or zh; JSON has
// both). An unknown format or language is an error before anything is written.
func (r *Record) Write(w io.Writer, format, lang string) error {
	if !slices.Contains(Languages(), lang) {
		return fmt.Errorf("ropa: language %q: want en or zh", lang)
	}
	switch format {
	case FormatJSON:
		return r.WriteJSON(w)
	case FormatCSV:
		return r.WriteCSV(w, lang)
	case FormatHTML:
		return r.WriteHTML(w, lang)
	}
	return fmt.Errorf("ropa: format %q: want json, csv or html", format)
}

// WriteJSON writes r as indented JSON (docs/ropa.schema.json).
func (r *Record) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

// column is one CSV column: its heading and its value in a row of an activity and one of
// its recipients (nil for an activity without any).
type column struct {
	label label
	value func(a *Activity, rc *Recipient, lang string) string
}

// WriteCSV writes r as CSV for Excel and WPS: UTF-8 with a byte order mark, headings in
// Chinese and English ("目的 / Purpose"), one row per activity and recipient (an activity
// without recipients has one row, its recipient columns empty), lists joined with "; ", a
// fact not declared written as "not declared" (in lang), the controller's columns
// repeated on every row. Every cell is defused against formula injection.
func (r *Record) WriteCSV(w io.Writer, lang string) error {
	if _, err := io.WriteString(w, "\ufeff"); err != nil {
		return err
	}
	cols := r.columns()
	cw := csv.NewWriter(w)
	heads := make([]string, len(cols))
	for i, c := range cols {
		heads[i] = c.label.heading()
	}
	if err := cw.Write(heads); err != nil {
		return err
	}
	row := make([]string, len(cols))
	for i := range r.Activities {
		a := &r.Activities[i]
		recipients := []*Recipient{nil}
		if len(a.Recipients) > 0 {
			recipients = recipients[:0]
			for j := range a.Recipients {
				recipients = append(recipients, &a.Recipients[j])
			}
		}
		for _, rc := range recipients {
			for k, c := range cols {
				row[k] = defuse(c.value(a, rc, lang))
			}
			if err := cw.Write(row); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// columns returns the CSV's columns.
func (r *Record) columns() []column {
	// orND is v, or "not declared" when field is one of a's gaps.
	orND := func(a *Activity, field, v, lang string) string {
		if v == "" && slices.Contains(a.Gaps, field) {
			return lNotDeclared.in(lang)
		}
		return v
	}
	list := func(a *Activity, field string, v []string, lang string) string {
		return orND(a, field, strings.Join(v, "; "), lang)
	}
	recipientField := func(rc *Recipient, field string) string { return "recipients[" + rc.Name + "]." + field }
	ctl := r.Controller
	ctlValue := func(field, v string) func(*Activity, *Recipient, string) string {
		return func(_ *Activity, _ *Recipient, lang string) string {
			if v == "" && slices.ContainsFunc(r.Gaps, func(g Gap) bool { return g.Activity == "" && g.Field == field }) {
				return lNotDeclared.in(lang)
			}
			return v
		}
	}
	transfer := func(a *Activity, rc *Recipient) *Transfer {
		if rc == nil {
			return nil
		}
		for i := range a.Transfers {
			if a.Transfers[i].Recipient == rc.Name {
				return &a.Transfers[i]
			}
		}
		return nil
	}
	transferValue := func(get func(*Transfer) string) func(*Activity, *Recipient, string) string {
		return func(a *Activity, rc *Recipient, lang string) string {
			t := transfer(a, rc)
			if t == nil {
				return ""
			}
			if v := get(t); v != "" {
				return v
			}
			if slices.Contains(a.Gaps, recipientField(rc, "transfer")) {
				return lNotDeclared.in(lang)
			}
			return ""
		}
	}
	flag := func(get func(Flags) bool) func(*Activity, *Recipient, string) string {
		return func(a *Activity, _ *Recipient, lang string) string { return yesNo(get(a.Flags)).in(lang) }
	}
	return []column{
		{lActivity, func(a *Activity, _ *Recipient, _ string) string { return a.Purpose }},
		{lPurpose, func(a *Activity, _ *Recipient, lang string) string {
			return orND(a, "description."+lang, a.Description.In(lang), lang)
		}},
		{lBasisPIPL, func(a *Activity, _ *Recipient, lang string) string {
			return list(a, "legal_bases.pipl", a.LegalBases["pipl"], lang)
		}},
		{lBasisGDPR, func(a *Activity, _ *Recipient, lang string) string {
			return list(a, "legal_bases.gdpr", a.LegalBases["gdpr"], lang)
		}},
		{lSeparate, func(a *Activity, _ *Recipient, _ string) string { return a.SeparateConsent }},
		{lSubjects, func(a *Activity, _ *Recipient, lang string) string {
			return list(a, "data_subjects", a.DataSubjects, lang)
		}},
		{lCategories, func(a *Activity, _ *Recipient, lang string) string {
			var cs []string
			for _, c := range a.Categories {
				cs = append(cs, c.Category)
			}
			return list(a, "categories", cs, lang)
		}},
		{lSensitive, func(a *Activity, _ *Recipient, _ string) string { return strings.Join(sensitiveOf(a), "; ") }},
		{lProhibited, func(a *Activity, _ *Recipient, _ string) string { return strings.Join(a.Prohibited, "; ") }},
		{lTouched, func(a *Activity, _ *Recipient, _ string) string {
			var ts []string
			for _, t := range a.Touched {
				ts = append(ts, t.Category+" ("+t.At+")")
			}
			return strings.Join(ts, "; ")
		}},
		{lSources, func(a *Activity, _ *Recipient, lang string) string { return list(a, "sources", a.Sources, lang) }},
		{lRecipient, func(_ *Activity, rc *Recipient, _ string) string {
			if rc == nil {
				return ""
			}
			return rc.Name
		}},
		{lRole, func(_ *Activity, rc *Recipient, lang string) string {
			if rc == nil {
				return ""
			}
			return roleLabel(rc.Role).in(lang)
		}},
		{lCountry, func(a *Activity, rc *Recipient, lang string) string {
			if rc == nil {
				return ""
			}
			return orND(a, recipientField(rc, "country"), rc.Country, lang)
		}},
		{lContact, func(a *Activity, rc *Recipient, lang string) string {
			if rc == nil {
				return ""
			}
			return orND(a, recipientField(rc, "contact"), rc.Contact, lang)
		}},
		{lProvided, func(a *Activity, rc *Recipient, lang string) string {
			if rc == nil {
				return ""
			}
			return list(a, recipientField(rc, "categories"), rc.Categories, lang)
		}},
		{lAbroad, func(_ *Activity, rc *Recipient, lang string) string {
			if rc == nil {
				return ""
			}
			return yesNo(rc.CrossBorder).in(lang)
		}},
		{lMechanism, transferValue(func(t *Transfer) string { return t.Mechanism })},
		{lReference, transferValue(func(t *Transfer) string { return t.Reference })},
		{lMechanismDate, transferValue(func(t *Transfer) string { return t.Date })},
		{lMechanismEnd, transferValue(func(t *Transfer) string { return t.Expires })},
		{lRetention, func(a *Activity, _ *Recipient, lang string) string {
			return orND(a, "retention", a.Retention.Statement, lang)
		}},
		{lRetentionRules, func(a *Activity, _ *Recipient, _ string) string {
			var rs []string
			for _, rule := range a.Retention.Rules {
				rs = append(rs, strings.TrimSpace(strings.Join(rule.Categories, ", ")+" "+rule.Period+" "+rule.Action))
			}
			return strings.Join(rs, "; ")
		}},
		{lValidity, func(a *Activity, _ *Recipient, lang string) string {
			return validityText(a.Retention.ConsentValidity, lang)
		}},
		{lSealed, func(a *Activity, _ *Recipient, _ string) string { return strings.Join(a.Security.Sealed, "; ") }},
		{lAtRest, func(a *Activity, _ *Recipient, _ string) string { return a.Security.EncryptionAtRest }},
		{lMasked, func(a *Activity, _ *Recipient, _ string) string { return strings.Join(a.Security.Masked, "; ") }},
		{lMinimised, func(a *Activity, _ *Recipient, _ string) string { return strings.Join(a.Security.Minimised, "; ") }},
		{lDecisionLog, func(a *Activity, _ *Recipient, lang string) string { return yesNo(a.Security.DecisionLog).in(lang) }},
		{lMeasures, func(a *Activity, _ *Recipient, _ string) string { return a.Security.Measures }},
		{lScale, func(a *Activity, _ *Recipient, lang string) string { return orND(a, "scale", a.Scale, lang) }},
		{lScenario, func(a *Activity, _ *Recipient, lang string) string { return orND(a, "scenario", a.Scenario, lang) }},
		{lSystems, func(a *Activity, _ *Recipient, lang string) string { return list(a, "systems", a.Systems, lang) }},
		{lOwner, func(a *Activity, _ *Recipient, lang string) string { return orND(a, "owner", a.Owner, lang) }},
		{lEntrusted, flag(func(f Flags) bool { return f.Entrusted })},
		{lShared, flag(func(f Flags) bool { return f.Shared })},
		{lTransferred, flag(func(f Flags) bool { return f.Transferred })},
		{lDisclosed, flag(func(f Flags) bool { return f.Disclosed })},
		{lCrossBorder, flag(func(f Flags) bool { return f.CrossBorder })},
		{lAutomated, flag(func(f Flags) bool { return f.AutomatedDecision })},
		{lLargeScale, flag(func(f Flags) bool { return f.LargeScale })},
		{lDirectMarketing, flag(func(f Flags) bool { return f.DirectMarketing })},
		{lPersonalised, flag(func(f Flags) bool { return f.Personalised })},
		{lRoutes, func(a *Activity, _ *Recipient, _ string) string { return strings.Join(a.Routes, "; ") }},
		{lController, ctlValue("controller.name", ctl.Name)},
		{lDPO, ctlValue("controller.dpo.name", ctl.DPO.Name)},
		{lDPOContact, ctlValue("controller.dpo.contact", ctl.DPO.Contact)},
		{lGaps, func(a *Activity, _ *Recipient, _ string) string { return strings.Join(a.Gaps, "; ") }},
	}
}

// sensitiveOf returns the sensitive categories a's categories and data name.
func sensitiveOf(a *Activity) []string {
	var out []string
	for _, c := range a.Categories {
		if c.Sensitive {
			out = appendNew(out, c.Category)
		}
	}
	for _, t := range a.Touched {
		if t.Sensitive {
			out = appendNew(out, t.Category)
		}
	}
	return out
}

// validityText is a consent validity for people: "395 days", "until withdrawn".
func validityText(v, lang string) string {
	switch {
	case v == "":
		return ""
	case v == "until_withdrawn":
		return lUntilWithdrawn.in(lang)
	case strings.HasPrefix(v, "PT") && strings.HasSuffix(v, "H"):
		return strings.TrimSuffix(strings.TrimPrefix(v, "PT"), "H") + map[string]string{"zh": " 小时", "en": " hours"}[lang]
	case strings.HasPrefix(v, "PT"):
		return strings.TrimSuffix(strings.TrimPrefix(v, "PT"), "M") + map[string]string{"zh": " 分钟", "en": " minutes"}[lang]
	}
	return strings.TrimSuffix(strings.TrimPrefix(v, "P"), "D") + map[string]string{"zh": " 天", "en": " days"}[lang]
}

// defuse keeps a spreadsheet from reading a cell as a formula (csvsafe.Defuse).
func defuse(s string) string { return csvsafe.Defuse(s) }
