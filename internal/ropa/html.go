package ropa

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strings"
)

//go:embed ropa.html.tmpl
var pageText string

// pageLabels are the labels the HTML page names by key.
func pageLabels() map[string]label {
	return map[string]label{
		"title": lTitle, "controller": lController, "contact": {"联系方式", "Contact"}, "representative": lControllerRep,
		"dpo": lDPO, "dpo_contact": lDPOContact, "dpo_filed": lDPOFiled, "regime": lRegime, "generated": lGenerated,
		"record_gaps": lRecordGaps, "activity_gaps": lActivityGaps, "activity": lActivity, "purpose": lPurpose,
		"basis_pipl": lBasisPIPL, "basis_gdpr": lBasisGDPR, "sensitive": lSensitive, "recipient": lRecipient,
		"cross_border": lCrossBorder, "built_in": lBuiltIn, "declared_by": lDeclaredBy, "separate": lSeparate,
		"subjects": lSubjects, "categories": lCategories, "masked": lMasked, "prohibited": lProhibited,
		"touched": lTouched, "sources": lSources, "retention": lRetention, "validity": lValidity, "sealed": lSealed,
		"minimised": lMinimised, "decision_log": lDecisionLog, "measures": lMeasures, "scale": lScale,
		"scenario": lScenario, "systems": lSystems, "owner": lOwner, "routes": lRoutes, "entrusted": lEntrusted,
		"shared": lShared, "transferred": lTransferred, "disclosed": lDisclosed, "automated": lAutomated,
		"large_scale": lLargeScale, "direct_marketing": lDirectMarketing, "personalised": lPersonalised,
		"role": lRole, "country": lCountry, "contact_r": lContact, "provided": lProvided, "abroad": lAbroad,
		"mechanism": lMechanism, "reference": lReference, "mechanism_date": lMechanismDate,
		"mechanism_end": lMechanismEnd, "stores": lStores, "type": lType, "category": lCategory,
		"description": lDescription, "at_rest": lAtRest,
	}
}

// WriteHTML writes r as a printable HTML page in lang (zh or en): the controller and DPO,
// the gaps, a summary of the activities, then each activity in full, the stores and the
// categories. Values from the configuration are escaped by html/template.
func (r *Record) WriteHTML(w io.Writer, lang string) error {
	labels := pageLabels()
	notDeclared := template.HTML(`<span class="nd">` + template.HTMLEscapeString(lNotDeclared.in(lang)) + `</span>`)
	hasGap := func(a *Activity, field string) bool { return a != nil && slices.Contains(a.Gaps, field) }
	recordGap := func(field string) bool {
		return slices.ContainsFunc(r.Gaps, func(g Gap) bool { return g.Activity == "" && g.Field == field })
	}
	funcs := template.FuncMap{
		"t": func(key string) (string, error) {
			l, ok := labels[key]
			if !ok {
				return "", fmt.Errorf("ropa: the page names no label %q", key)
			}
			return l.in(lang), nil
		},
		"join":     func(list []string) string { return strings.Join(list, "; ") },
		"yesno":    func(b bool) string { return yesNo(b).in(lang) },
		"role":     func(role string) string { return roleLabel(role).in(lang) },
		"validity": func(v string) string { return validityText(v, lang) },
		"desc": func(a Activity) any {
			if d := a.Description.In(lang); d != "" {
				return d
			}
			return notDeclared
		},
		// nd is a record-level value, "not declared" when it is a gap.
		"nd": func(v, field string) any {
			if v == "" && recordGap(field) {
				return notDeclared
			}
			return v
		},
		"ndText": func(a Activity, v, field string) any {
			if v == "" && hasGap(&a, field) {
				return notDeclared
			}
			return v
		},
		"ndList": func(a Activity, v []string, field string) any {
			if len(v) == 0 && hasGap(&a, field) {
				return notDeclared
			}
			return strings.Join(v, "; ")
		},
	}
	page, err := template.New("ropa").Funcs(funcs).Parse(pageText)
	if err != nil {
		return fmt.Errorf("ropa: page template: %w", err)
	}
	return page.Execute(w, struct {
		R    *Record
		Lang string
	}{r, lang})
}
