package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/privguard/privguard"
)

// assessmentProblems checks the register of impact assessments for what the validator's
// tags cannot say (AUD-04): ids unique, the review date after the date of the assessment,
// routes naming an assessment that exists. What each must contain (legitimacy and
// necessity, impact and risk, measures: PIPL Art. 56) is required by the tags.
func (f *File) assessmentProblems() []string {
	var msgs []string
	seen := map[string]int{}
	for i, a := range f.Assessments {
		at := fmt.Sprintf("assessments[%d]", i)
		if j, dup := seen[a.ID]; dup {
			msgs = append(msgs, fmt.Sprintf("%s.id: %q is also assessments[%d]; an assessment changes in place (its history is kept in the register)", at, a.ID, j))
		} else {
			seen[a.ID] = i
		}
		if !a.Review.After(a.Date.Time) {
			msgs = append(msgs, fmt.Sprintf("%s.review: %s is not after its date %s (an assessment covers processing from its date until its review)", at, a.Review, a.Date))
		}
	}
	for i, r := range f.Routes {
		if _, ok := seen[r.PIA]; r.PIA != "" && !ok {
			msgs = append(msgs, fmt.Sprintf("routes[%d].pia: no assessment has id %q%s", i, r.PIA, suggest(r.PIA, f.assessmentIDs(), "assessment ids")))
		}
	}
	return msgs
}

func (f *File) assessmentIDs() []string {
	var ids []string
	for _, a := range f.Assessments {
		ids = append(ids, a.ID)
	}
	slices.Sort(ids)
	return ids
}

// checkAssessmentNames reports the purposes, data categories and recipients the
// assessments name that are not known, by path: a purpose is a registered one or a group
// of them (an assessment covers the purposes below the ones it names), a category a known
// one (or a declared one), a recipient one of dsar.recipients or a route's recipient.
func (f *File) checkAssessmentNames(purposes []string, cats *privguard.Taxonomy) []string {
	var msgs []string
	declared := map[string]bool{}
	for _, c := range f.Categories {
		declared[c.Name] = true
	}
	recipients := map[string]bool{}
	var recipientNames []string
	for _, r := range f.DSAR.Recipients {
		recipients[r.Name] = true
		recipientNames = append(recipientNames, r.Name)
	}
	for _, r := range f.Routes {
		if r.Recipient != "" && !recipients[r.Recipient] {
			recipients[r.Recipient] = true
			recipientNames = append(recipientNames, r.Recipient)
		}
	}
	slices.Sort(recipientNames)
	for i, a := range f.Assessments {
		at := fmt.Sprintf("assessments[%d]", i)
		for j, p := range a.Purposes {
			if !slices.ContainsFunc(purposes, func(q string) bool { return privguard.Purpose(q).Within(privguard.Purpose(p)) }) {
				msgs = append(msgs, fmt.Sprintf("%s.purposes[%d]: unknown purpose %q%s", at, j, p, suggestPurpose(p, purposes)))
			}
		}
		for j, c := range a.Categories {
			if !cats.Known(privguard.DataCategory(c)) && !declared[c] {
				msgs = append(msgs, fmt.Sprintf("%s.categories[%d]: unknown data category %q%s", at, j, c, suggestCategory(c, cats)))
			}
		}
		for j, r := range a.Recipients {
			if recipients[r] {
				continue
			}
			hint := "; recipients are declared in dsar.recipients (name, country, role, transfer) or named by routes"
			if len(recipientNames) > 0 {
				hint = suggest(r, recipientNames, "known recipients")
			}
			msgs = append(msgs, fmt.Sprintf("%s.recipients[%d]: unknown recipient %q%s", at, j, r, hint))
		}
	}
	return msgs
}

// assessmentHints say what an assessment's required texts are, after the validator's
// "is required".
var assessmentHints = map[string]string{
	"legitimacy": "the legitimacy, legitimate need and necessity of the purposes and means of processing (PIPL Art. 56(1); GDPR Art. 35(7)(a)-(b))",
	"impact":     "the impact on the individuals' rights and the security risks (PIPL Art. 56(2); GDPR Art. 35(7)(c))",
	"measures":   "the protective measures taken, and whether they are lawful, effective and proportionate to the risk (PIPL Art. 56(3); GDPR Art. 35(7)(d))",
}

// assessmentHint returns the explanation of a required assessment field at path ns
// ("assessments[0].impact"), or "".
func assessmentHint(ns, tag string) string {
	if tag != "required" || !strings.HasPrefix(ns, "assessments[") {
		return ""
	}
	_, field, _ := strings.Cut(ns, "].")
	if h, ok := assessmentHints[field]; ok {
		return ": " + h
	}
	return ""
}

// China Standard Time: the PRC has one time zone and no daylight saving time.
var chinaTime = time.FixedZone("CST", 8*3600)

// DateZone is the time zone the assessments' dates are read in (a review date passes at
// its midnight there): China Standard Time (UTC+8) under pipl, UTC under gdpr.
func (f *File) DateZone() *time.Location {
	if f.Regime == "gdpr" {
		return time.UTC
	}
	return chinaTime
}
