package policy

import (
	"embed"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/privguard/privguard"
)

// Bundle is the default policy bundle: privguard.rego, its tests and data.json.
//
//go:embed bundle/*.rego bundle/data.json
var Bundle embed.FS

// FrequencyLimit is the most direct-marketing contacts per subject on a channel within the
// window the caller counts contacts in.
type FrequencyLimit struct {
	Max int `json:"max"`
	// Window documents the counting window ("24h"); the caller counts, the policy compares.
	Window string `json:"window"`
}

// DefaultFrequency are the default outreach limits per channel: over-frequent pushes are a
// harm in themselves (and a frequent complaint to regulators).
func DefaultFrequency() map[string]FrequencyLimit {
	return map[string]FrequencyLimit{
		"sms":    {Max: 3, Window: "168h"},
		"email":  {Max: 7, Window: "168h"},
		"push":   {Max: 5, Window: "24h"},
		"wechat": {Max: 4, Window: "168h"},
	}
}

// SensitiveCategories are the category prefixes the default taxonomy treats as sensitive
// (privguard.DefaultSensitiveCategories); a taxonomy with declared sensitive categories adds
// to them (privguard.Taxonomy.SensitiveCategories), and [Data] reads the taxonomy's.
func SensitiveCategories() []privguard.DataCategory { return privguard.DefaultSensitiveCategories() }

// purposeData is one purpose as the policy sees it.
type purposeData struct {
	Bases                   map[string][]string `json:"bases"`
	Categories              []string            `json:"categories"`
	Mask                    []string            `json:"mask,omitempty"`
	Prohibited              []string            `json:"prohibited,omitempty"`
	Separate                string              `json:"separate"`
	DirectMarketing         bool                `json:"direct_marketing"`
	Personalised            bool                `json:"personalised"`
	SaleOrSharing           bool                `json:"sale_or_sharing"`
	Retained                bool                `json:"retained"`
	NonPersonalisedFallback bool                `json:"non_personalised_fallback"`
	AutomatedDecision       bool                `json:"automated_decision"`
	LargeScale              bool                `json:"large_scale"`
	// AssessmentNeeded says, per regime, whether processing for the purpose needs an impact
	// assessment whatever its categories and recipient (see assessmentNeeded).
	AssessmentNeeded map[string]bool `json:"assessment_needed"`
}

// assessmentNeeded returns, per regime, whether the purpose itself makes processing
// high-impact (PIPL Art. 55, GDPR Art. 35(3)): automated decisions, large-scale profiling
// (large scale and personalised), separate consent for sensitive data or a transfer
// abroad, and under PIPL also for providing data to another handler or publishing it. The
// default policy adds what a use brings (sensitive categories, a recipient).
func assessmentNeeded(info *privguard.PurposeInfo) map[string]bool {
	both := info.AutomatedDecision || (info.LargeScale && info.Personalised) ||
		info.Separate == privguard.SeparateSensitive || info.Separate == privguard.SeparateCrossBorder
	pipl := both || info.Separate == privguard.SeparateProvide || info.Separate == privguard.SeparatePublic
	return map[string]bool{string(privguard.RegimePIPL): pipl, string(privguard.RegimeGDPR): both}
}

// Data returns the policy data for a taxonomy and frequency limits: the document the
// default policy reads as data.privguard. Everything in it but the limits comes from the
// taxonomy: its purposes, and its sensitive categories (built in and declared); it has no
// assessments and no recipients (the engine adds those of its Config).
func Data(t *privguard.Taxonomy, freq map[string]FrequencyLimit) map[string]any {
	purposes := map[string]purposeData{}
	for _, name := range t.Purposes() {
		info, _ := t.Lookup(name)
		d := purposeData{Bases: map[string][]string{}, Categories: []string{}, Separate: string(info.Separate),
			DirectMarketing: info.DirectMarketing, Personalised: info.Personalised, SaleOrSharing: info.SaleOrSharing,
			Retained: info.Retained, NonPersonalisedFallback: info.NonPersonalisedFallback,
			AutomatedDecision: info.AutomatedDecision, LargeScale: info.LargeScale, AssessmentNeeded: assessmentNeeded(info)}
		for r, bases := range info.Bases {
			for _, b := range bases {
				d.Bases[string(r)] = append(d.Bases[string(r)], string(b))
			}
		}
		for _, c := range info.Categories {
			d.Categories = append(d.Categories, string(c))
		}
		for _, c := range info.Mask {
			d.Mask = append(d.Mask, string(c))
		}
		for _, c := range info.Prohibited {
			d.Prohibited = append(d.Prohibited, string(c))
		}
		purposes[string(name)] = d
	}
	var sensitive []string
	for _, c := range t.SensitiveCategories() {
		sensitive = append(sensitive, string(c))
	}
	slices.Sort(sensitive)
	// Round-trip through JSON so the value holds only maps, slices and scalars.
	return plain(map[string]any{"purposes": purposes, "frequency": freq, "sensitive": sensitive,
		"areas": areasData(), "assessments": map[string]assessmentData{}, "recipients": map[string]recipientData{}})
}

// plain round-trips v through JSON so that the value holds only maps, slices and scalars.
func plain(v map[string]any) map[string]any {
	b, _ := json.Marshal(v)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

// dataWith returns Data for cfg with its assessments and recipients.
func dataWith(cfg Config) (map[string]any, error) {
	d := Data(cfg.Taxonomy, cfg.Frequency)
	ids := map[string]bool{}
	for _, a := range cfg.Assessments {
		if a.ID == "" || ids[a.ID] {
			return nil, fmt.Errorf("policy: assessment id %q is empty or repeated", a.ID)
		}
		ids[a.ID] = true
	}
	names := map[string]bool{}
	for _, r := range cfg.Recipients {
		if r.Name == "" || names[r.Name] {
			return nil, fmt.Errorf("policy: recipient name %q is empty or repeated", r.Name)
		}
		names[r.Name] = true
	}
	extra := plain(map[string]any{"assessments": assessmentsData(cfg.Assessments), "recipients": recipientsData(cfg.Recipients)})
	d["assessments"], d["recipients"] = extra["assessments"], extra["recipients"]
	return d, nil
}
