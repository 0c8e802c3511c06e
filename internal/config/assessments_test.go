package config

import (
	"strings"
	"testing"
)

// assessmentYAML is one valid assessment; cases replace or drop its lines.
const assessmentYAML = `dsar:
  recipients:
    - {name: acme-sms, country: CN, role: processor}
assessments:
  - id: pia-2026-01
    title: SMS campaigns through Acme
    purposes: [marketing.communications, third_party.sharing]
    categories: [user.contact.phone_number, user.derived.segments]
    recipients: [acme-sms]
    date: 2026-01-15
    review: 2027-01-15
    conclusion: approved_with_measures
    legitimacy: Customers who opted in; the segments are needed to avoid sending to the uninterested.
    impact: A leaked list exposes phone numbers and interests; unwanted contact.
    measures: Numbers sealed at rest; Acme under a DPA with audit rights; frequency capped at 3 a week.
    assessor: DPO office
`

func TestAssessmentsParse(t *testing.T) {
	f, err := Parse([]byte(assessmentYAML))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Taxonomy(); err != nil {
		t.Fatal(err)
	}
	a := f.Assessments[0]
	if a.ID != "pia-2026-01" || a.Date.String() != "2026-01-15" || a.Review.String() != "2027-01-15" || len(a.Recipients) != 1 {
		t.Errorf("parsed %+v", a)
	}
}

// proves AUD-04 (the record): an assessment without its legitimacy and necessity, its
// impact and risks or its measures is refused, named by path; so are a review not after
// the date, a repeated id, unknown purposes, categories and recipients, and a route naming
// an assessment that does not exist.
func TestAssessmentProblems(t *testing.T) {
	drop := func(key string) string {
		var out []string
		for _, l := range strings.Split(assessmentYAML, "\n") {
			if !strings.HasPrefix(strings.TrimSpace(l), key+":") {
				out = append(out, l)
			}
		}
		return strings.Join(out, "\n")
	}
	set := func(key, value string) string {
		var out []string
		for _, l := range strings.Split(assessmentYAML, "\n") {
			if strings.HasPrefix(l, "    "+key+":") {
				l = "    " + key + ": " + value
			}
			out = append(out, l)
		}
		return strings.Join(out, "\n")
	}
	cases := []struct {
		name, yaml string
		want       []string
		names      bool // found by Taxonomy (the names), not Parse
	}{
		{"no_legitimacy", drop("legitimacy"), []string{"assessments[0].legitimacy: is required", "necessity"}, false},
		{"no_impact", drop("impact"), []string{"assessments[0].impact: is required", "risks"}, false},
		{"no_measures", drop("measures"), []string{"assessments[0].measures: is required", "protective measures"}, false},
		{"empty_measures", set("measures", `""`), []string{"assessments[0].measures: is required"}, false},
		{"no_purposes", drop("purposes"), []string{"assessments[0].purposes"}, false},
		{"no_review", drop("review"), []string{"assessments[0].review"}, false},
		{"bad_date", set("date", "15/01/2026"), []string{"not a date"}, false},
		{"bad_conclusion", set("conclusion", "fine"), []string{"assessments[0].conclusion", `"fine" is not allowed`}, false},
		{"review_before_date", set("review", "2026-01-15"), []string{"assessments[0].review: 2026-01-15 is not after its date 2026-01-15"}, false},
		{"repeated_id", assessmentYAML + strings.Join(strings.Split(assessmentYAML, "\n")[4:], "\n"), []string{`assessments[1].id: "pia-2026-01" is also assessments[0]`}, false},
		{"bad_id", strings.Replace(assessmentYAML, "id: pia-2026-01", `id: "pia 1"`, 1), []string{"assessments[0].id"}, false},
		{"unknown_purpose", set("purposes", "[marketing.comunications]"), []string{`assessments[0].purposes[0]: unknown purpose "marketing.comunications"`, "marketing.communications"}, true},
		{"unknown_category", set("categories", "[user.contact.phone]"), []string{`assessments[0].categories[0]: unknown data category "user.contact.phone"`}, true},
		{"unknown_recipient", set("recipients", "[acme]"), []string{`assessments[0].recipients[0]: unknown recipient "acme"`, "acme-sms"}, true},
		{"route_pia_unknown", assessmentYAML + "routes:\n  - {match: \"GET /a/{id}\", purpose: marketing.profiling, subject: {path: id}, pia: pia-2026-1}\n",
			[]string{`routes[0].pia: no assessment has id "pia-2026-1"`, "pia-2026-01"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse([]byte(tc.yaml))
			if tc.names {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				_, err = f.Taxonomy()
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q; want it to say %q", err, w)
				}
			}
		})
	}
}

func TestRouteRecipientsAndPinnedAssessments(t *testing.T) {
	yaml := strings.Replace(assessmentYAML, "recipients: [acme-sms]", "recipients: [acme-sms, partner-x]", 1) +
		"routes:\n  - {match: \"POST /share/{id}\", purpose: third_party.sharing, subject: {path: id}, recipient: partner-x, pia: pia-2026-01}\n"
	f, err := Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Taxonomy(); err != nil {
		t.Errorf("a recipient named by a route: %v", err)
	}
	if f.DateZone().String() != "CST" {
		t.Errorf("pipl dates in %v; want China Standard Time", f.DateZone())
	}
}
