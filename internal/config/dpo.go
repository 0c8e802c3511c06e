package config

import (
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"
)

// This file holds the shapes of what the DPO's desk reads from the configuration: the
// controller and its DPO, the purposes and data categories a company declares beside the
// built-in taxonomy, the facts of the record of processing, and the register of impact
// assessments. Their checks live beside the code that uses them (purposes.go, ropa facts,
// assessments.go).

// Controller is the handler (controller) responsible for the processing: GDPR Art. 30(1)(a),
// PIPL Art. 52 (the person in charge of personal information protection, 个人信息保护负责人).
type Controller struct {
	Name    string `yaml:"name" validate:"max=200"`
	Contact string `yaml:"contact" validate:"max=200"`
	// Representative is the EU representative (GDPR Art. 27) or the PRC representative of
	// a handler abroad (PIPL Art. 53).
	Representative string `yaml:"representative" validate:"max=200"`
	DPO            DPO    `yaml:"dpo"`
}

// DPO is the data protection officer / person in charge of personal information protection.
type DPO struct {
	Name    string `yaml:"name" validate:"max=200"`
	Contact string `yaml:"contact" validate:"max=200"`
	// FiledWith and FiledOn record the filing with the city-level CAC (required at 1 M
	// individuals, within 30 working days; AUD-05).
	FiledWith string `yaml:"filed_with" validate:"max=200"`
	FiledOn   *Date  `yaml:"filed_on"`
}

// DeclaredPurpose declares a processing activity. A name that is not in the built-in
// taxonomy adds a purpose (legal_bases then required, with a basis under the configured
// regime); a built-in name refines that purpose: what the entry sets replaces the
// built-in's description, legal bases, validity and categories (bases and validity may be
// set here or in consent.purposes, not both), adds to its mask and prohibited categories,
// sets a separate-consent scope where it has none, and turns flags on (a flag left out
// never turns a built-in's off). Either way it describes the activity for the record of
// processing (Record). purposes.go checks it.
type DeclaredPurpose struct {
	Name string `yaml:"name" validate:"required,max=100"`
	// Description is the plain-language text of the purpose, per language (en, zh); a plain
	// string is English.
	Description Text `yaml:"description"`
	// LegalBases lists the lawful bases per regime (pipl, gdpr) of a new purpose.
	LegalBases map[string][]string `yaml:"legal_bases" validate:"dive,keys,oneof=pipl gdpr,endkeys,dive,required"`
	// Categories the purpose needs (minimum necessary); Mask, those it sees masked;
	// Prohibited, those it must never use.
	Categories []string `yaml:"categories" validate:"dive,required,max=100"`
	Mask       []string `yaml:"mask" validate:"dive,required,max=100"`
	Prohibited []string `yaml:"prohibited" validate:"dive,required,max=100"`
	// Validity is how long consent for the purpose lasts (default 13 months for consent).
	Validity *Duration `yaml:"validity"`
	// Separate names the separate-consent scope (provide_to_handler, cross_border,
	// sensitive, public_disclosure, public_place_image).
	Separate        string `yaml:"separate" validate:"omitempty,oneof=provide_to_handler cross_border sensitive public_disclosure public_place_image"`
	DirectMarketing bool   `yaml:"direct_marketing"`
	Personalised    bool   `yaml:"personalised"`
	SaleOrSharing   bool   `yaml:"sale_or_sharing"`
	Retained        bool   `yaml:"retained"`
	// AutomatedDecision: the purpose makes decisions about people by automated means
	// (PIPL Art. 24/55(2), GDPR Art. 22): it needs an impact assessment.
	AutomatedDecision bool `yaml:"automated_decision"`
	// Explanation explains an automated-decision purpose's decisions to the subject who
	// asks (an explanation request, DSR-14): only with automated_decision.
	Explanation *Explanation `yaml:"explanation"`
	// LargeScale: the purpose processes data of people at large scale (GDPR Art. 35(3)):
	// with profiling, it needs an impact assessment.
	LargeScale              bool `yaml:"large_scale"`
	NonPersonalisedFallback bool `yaml:"non_personalised_fallback"`
	Record                  `yaml:",inline"`
}

// Explanation is what an explanation request answers of an automated-decision purpose
// (PIPL Art. 24(3), GDPR Arts. 15(1)(h), 22): the model that decides, the data
// categories it uses and, in plain words, its logic.
type Explanation struct {
	// Model names the model and its version ("credit-score 3.2").
	Model string `yaml:"model" validate:"required,max=200"`
	// Logic is the plain-language summary of how the decision is made and what it means
	// for the subject, per language (en, zh).
	Logic Text `yaml:"logic" validate:"required"`
	// Features are the data categories the model uses.
	Features []string `yaml:"features" validate:"required,min=1,max=64,dive,required,max=100"`
}

// Record is what the record of processing says about an activity beyond what privguard
// enforces (GDPR Art. 30(1), GB/T 35273 §11.3).
type Record struct {
	// Owner is the team or person accountable for the activity.
	Owner string `yaml:"owner" validate:"max=200"`
	// Systems that carry the activity out (CDP, CRM, campaign tool).
	Systems []string `yaml:"systems" validate:"dive,required,max=200"`
	// Sources of the data (collected from the subject, from a partner, derived).
	Sources []string `yaml:"sources" validate:"dive,required,max=500"`
	// Subjects are the categories of data subjects (customers, prospects, employees).
	Subjects []string `yaml:"subjects" validate:"dive,required,max=200"`
	// Scale is the volume of people or records (GB/T 35273 §11.3 b).
	Scale string `yaml:"scale" validate:"max=200"`
	// Scenario is the business function or scenario the data is used in.
	Scenario string `yaml:"scenario" validate:"max=1000"`
	// Retention is the time limit for erasure of the categories (GDPR Art. 30(1)(f)).
	Retention string `yaml:"retention" validate:"max=1000"`
	// Security describes the technical and organisational measures beyond those privguard
	// applies itself (GDPR Art. 30(1)(g)): access control, pseudonymisation, backups.
	Security string `yaml:"security" validate:"max=2000"`
	// Transferred: the activity's data is transferred to another handler (转让: a merger,
	// division or sale of the business; PIPL Art. 22, GB/T 35273 §9.3).
	Transferred bool `yaml:"transferred"`
}

// DeclaredCategory declares a data category beside the built-in ones, which purposes,
// routes, stores and recipients may then name. Its name is below "user.", is not a listed
// built-in category, and its parent is known (built in or declared in the list).
type DeclaredCategory struct {
	Name        string `yaml:"name" validate:"required,max=100"`
	Description Text   `yaml:"description"`
	// Sensitive marks sensitive personal information (PIPL Art. 28; GDPR Art. 9).
	Sensitive bool `yaml:"sensitive"`
}

// Transfer is the mechanism that makes a transfer abroad lawful.
type Transfer struct {
	// Mechanism: under PIPL cac_assessment, standard_contract, certification or exemption
	// (PIPL Art. 38; the 2024 provisions); under GDPR adequacy, scc, bcr or derogation
	// (GDPR Arts. 45-49).
	Mechanism string `yaml:"mechanism" validate:"required,oneof=cac_assessment standard_contract certification exemption adequacy scc bcr derogation"`
	// Ref identifies the filing, contract or decision (e.g. the CAC filing number).
	Ref string `yaml:"ref" validate:"required,max=200"`
	// Date the mechanism took effect; Expires, if set, when it lapses.
	Date    *Date `yaml:"date"`
	Expires *Date `yaml:"expires"`
}

// Assessment is a personal information protection impact assessment (PIPL Art. 55-56) or a
// data protection impact assessment (GDPR Art. 35). It covers processing of its purposes
// (and their sub-purposes), categories and recipients until Review.
type Assessment struct {
	ID    string `yaml:"id" validate:"required,max=64,name"`
	Title string `yaml:"title" validate:"max=300"`
	// Purposes, Categories and Recipients are its scope.
	Purposes   []string `yaml:"purposes" validate:"required,min=1,dive,required,max=100"`
	Categories []string `yaml:"categories" validate:"dive,required,max=100"`
	Recipients []string `yaml:"recipients" validate:"dive,required,max=64"`
	// Date it was concluded; Review, the date it must be reviewed by: after it, it no
	// longer covers processing.
	Date   Date `yaml:"date" validate:"required"`
	Review Date `yaml:"review" validate:"required"`
	// Conclusion: approved, approved_with_measures or rejected (a rejected one covers nothing).
	Conclusion string `yaml:"conclusion" validate:"required,oneof=approved approved_with_measures rejected"`
	// Legitimacy (legitimacy and necessity of purpose and method), Impact (on the rights and
	// the security risks) and Measures (protective measures, their effectiveness): the
	// contents PIPL Art. 56 requires.
	Legitimacy string `yaml:"legitimacy" validate:"required,max=10000"`
	Impact     string `yaml:"impact" validate:"required,max=10000"`
	Measures   string `yaml:"measures" validate:"required,max=10000"`
	// Assessor names who carried it out.
	Assessor string `yaml:"assessor" validate:"max=200"`
}

// Text is a plain-language text per language: "en" and "zh". In YAML it is a mapping
// ({en: ..., zh: ...}) or a plain string, which is English.
type Text map[string]string

// UnmarshalYAML implements yaml.Unmarshaler.
func (t *Text) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*t = Text{"en": n.Value}
		return nil
	}
	var m map[string]string
	if err := n.Decode(&m); err != nil {
		return fmt.Errorf("line %d: a text is a string or a mapping of languages (en, zh) to strings", n.Line)
	}
	for k, v := range m {
		if k != "en" && k != "zh" {
			return fmt.Errorf("line %d: language %q: a text has en and zh", n.Line, k)
		}
		if len(v) > 4000 {
			return fmt.Errorf("line %d: the %s text is longer than 4,000 bytes", n.Line, k)
		}
	}
	*t = m
	return nil
}

// In returns the text in lang, else in the other language, else "".
func (t Text) In(lang string) string {
	if s := t[lang]; s != "" {
		return s
	}
	for _, s := range t {
		return s
	}
	return ""
}

// Date is a calendar date written as 2026-03-01 in YAML.
type Date struct{ time.Time }

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Date) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.Parse(time.DateOnly, n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a date such as 2026-03-01", n.Line, n.Value)
	}
	d.Time = v
	return nil
}

// String returns the date as 2026-03-01.
func (d Date) String() string { return d.Format(time.DateOnly) }
