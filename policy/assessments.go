package policy

import (
	"slices"
	"time"

	"github.com/privguard/privguard"
)

// Assessment is an impact assessment as the policy sees it (data.privguard.assessments):
// its scope and its dates. The default policy lets high-impact processing (sensitive data,
// automated decisions, large-scale profiling, providing data to a recipient under PIPL, a
// transfer abroad) through only while an approved assessment covers it: its purposes
// include the purpose or one above it, its categories every category the purpose would
// process, its recipients the recipient; Date on or before today, Review after today.
type Assessment struct {
	ID         string
	Purposes   []privguard.Purpose
	Categories []privguard.DataCategory
	Recipients []string
	// Date and Review are calendar dates (only the year, month and day are read).
	Date, Review time.Time
	// Conclusion is approved, approved_with_measures or rejected (which covers nothing).
	Conclusion string
}

// Recipient is a party data is provided to (data.privguard.recipients), by the name routes
// give it (Input.Recipient). A recipient whose Country is outside the regime's area (the
// PRC under PIPL, the EEA under GDPR), or unknown, receives a transfer abroad.
type Recipient struct {
	Name string
	// Country is an ISO 3166-1 alpha-2 code ("CN", "DE"); empty if unknown.
	Country string
	// Role is processor, handler or joint (informational for the default policy).
	Role string
}

// Areas returns, per regime, the countries inside it (privguard.Area).
func Areas() map[privguard.Regime][]string {
	return map[privguard.Regime][]string{
		privguard.RegimePIPL: privguard.Area(privguard.RegimePIPL),
		privguard.RegimeGDPR: privguard.Area(privguard.RegimeGDPR),
	}
}

// assessmentData is one assessment in the policy's data.
type assessmentData struct {
	Purposes   []string `json:"purposes"`
	Categories []string `json:"categories"`
	Recipients []string `json:"recipients"`
	Date       string   `json:"date"`
	Review     string   `json:"review"`
	Conclusion string   `json:"conclusion"`
}

// recipientData is one recipient in the policy's data.
type recipientData struct {
	Country string `json:"country"`
	Role    string `json:"role"`
}

// areasData is Areas as the policy looks countries up: regime -> country -> true.
func areasData() map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for r, countries := range Areas() {
		out[string(r)] = map[string]bool{}
		for _, c := range countries {
			out[string(r)][c] = true
		}
	}
	return out
}

// assessmentsData and recipientsData key the configured assessments and recipients by id
// and name, as the policy looks them up.
func assessmentsData(list []Assessment) map[string]assessmentData {
	out := make(map[string]assessmentData, len(list))
	for _, a := range list {
		d := assessmentData{Purposes: []string{}, Categories: []string{}, Recipients: slices.Clone(a.Recipients),
			Date: a.Date.Format(time.DateOnly), Review: a.Review.Format(time.DateOnly), Conclusion: a.Conclusion}
		if d.Recipients == nil {
			d.Recipients = []string{}
		}
		for _, p := range a.Purposes {
			d.Purposes = append(d.Purposes, string(p))
		}
		for _, c := range a.Categories {
			d.Categories = append(d.Categories, string(c))
		}
		out[a.ID] = d
	}
	return out
}

func recipientsData(list []Recipient) map[string]recipientData {
	out := make(map[string]recipientData, len(list))
	for _, r := range list {
		out[r.Name] = recipientData{Country: r.Country, Role: r.Role}
	}
	return out
}

// termStrings are the strings of cfg's assessments and recipients that inputs carry.
func termStrings(cfg Config) []string {
	var out []string
	for _, a := range cfg.Assessments {
		out = append(out, a.ID)
	}
	for _, r := range cfg.Recipients {
		out = append(out, r.Name)
	}
	return out
}
