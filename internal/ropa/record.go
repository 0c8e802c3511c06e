package ropa

import "time"

// SchemaID identifies the JSON form of a Record: docs/ropa.schema.json has it as its $id.
const SchemaID = "urn:privguard:schema:ropa:1"

// Record is the record of processing activities. Every field is always present in its
// JSON form; a fact not declared is empty and listed in Gaps.
type Record struct {
	Schema      string     `json:"schema"`
	GeneratedAt time.Time  `json:"generated_at"`
	Regime      string     `json:"regime"`
	Controller  Controller `json:"controller"`
	Activities  []Activity `json:"activities"`
	// Systems are the stores of the data map (dsar.stores), by name and type only.
	Systems []System `json:"systems"`
	// Categories are the data categories the record names, with their sensitivity.
	Categories []Category `json:"categories"`
	Gaps       []Gap      `json:"gaps"`
}

// Controller is the handler responsible and its DPO (GDPR Art. 30(1)(a); PIPL Art. 52).
type Controller struct {
	Name           string `json:"name"`
	Contact        string `json:"contact"`
	Representative string `json:"representative"`
	DPO            DPO    `json:"dpo"`
}

// DPO is the data protection officer / person in charge of personal information protection.
type DPO struct {
	Name      string `json:"name"`
	Contact   string `json:"contact"`
	FiledWith string `json:"filed_with"`
	FiledOn   string `json:"filed_on"` // 2026-03-01, or ""
}

// Text is a text in English and Chinese.
type Text struct {
	EN string `json:"en"`
	ZH string `json:"zh"`
}

// In returns the text in lang ("zh" or "en"), else in the other language.
func (t Text) In(lang string) string {
	if lang == "zh" && t.ZH != "" || t.EN == "" {
		return t.ZH
	}
	return t.EN
}

// Activity is one processing activity: a purpose privguard enforces.
type Activity struct {
	Purpose string `json:"purpose"`
	// BuiltIn is false for a purpose the configuration adds.
	BuiltIn     bool `json:"built_in"`
	Description Text `json:"description"`
	// Sources of the activity in the configuration: route, purposes, consent.purposes,
	// recipient.
	DeclaredBy []string `json:"declared_by"`
	// LegalBases per regime (pipl, gdpr), as enforced (Art. 30(1)(b) with Art. 6).
	LegalBases map[string][]string `json:"legal_bases"`
	// SeparateConsent is the scope of separate consent (单独同意) the purpose needs, or "".
	SeparateConsent string `json:"separate_consent"`
	// DataSubjects are the categories of data subjects (Art. 30(1)(c)).
	DataSubjects []string `json:"data_subjects"`
	// Categories are those the purpose may process (minimum necessary, enforced);
	// Prohibited, those it must never use.
	Categories []CategoryUse `json:"categories"`
	Prohibited []string      `json:"prohibited"`
	// Touched are the data the activity's routes and the stores' data map actually hold
	// of its categories.
	Touched    []Touch     `json:"touched"`
	Sources    []string    `json:"sources"`
	Recipients []Recipient `json:"recipients"`
	// Transfers are its transfers abroad (Art. 30(1)(e)): one per recipient outside the
	// regime's area (the PRC under PIPL, the EEA under GDPR).
	Transfers []Transfer `json:"transfers"`
	Retention Retention  `json:"retention"`
	Security  Security   `json:"security"`
	// Scale, Scenario, Systems and Owner are GB/T 35273 §11.3's volume, scenario, systems
	// and owner. Systems are the declared ones and the stores whose data map holds the
	// activity's categories ("store crm").
	Scale    string   `json:"scale"`
	Scenario string   `json:"scenario"`
	Systems  []string `json:"systems"`
	Owner    string   `json:"owner"`
	Flags    Flags    `json:"flags"`
	// Routes are the sidecar routes that enforce the purpose.
	Routes []string `json:"routes"`
	// Gaps are the fields of the activity that are not declared (Record.Gaps has them
	// with details).
	Gaps []string `json:"gaps"`
}

// CategoryUse is a data category a purpose may process.
type CategoryUse struct {
	Category  string `json:"category"`
	Sensitive bool   `json:"sensitive"`
	// Masked: the purpose sees it only masked.
	Masked bool `json:"masked"`
}

// Touch is where an activity's data is: a route's response field or a store's column.
type Touch struct {
	Category  string `json:"category"`
	Sensitive bool   `json:"sensitive"`
	// Via is "route" or "store"; At names the place ("GET /api/members/{id}: points",
	// "crm: members.card").
	Via string `json:"via"`
	At  string `json:"at"`
}

// Recipient is a party the activity's data is provided to (Art. 30(1)(d)).
type Recipient struct {
	Name string `json:"name"`
	// Role is processor (entrusted, 委托处理), handler (provided to another handler, 共享)
	// or joint (joint controllers).
	Role       string   `json:"role"`
	Country    string   `json:"country"`
	Contact    string   `json:"contact"`
	Categories []string `json:"categories"`
	// CrossBorder: the country is outside the regime's area.
	CrossBorder bool `json:"cross_border"`
	// Via says where the configuration names it: dsar.recipients, or a route.
	Via []string `json:"via"`
}

// Transfer is a transfer abroad and the mechanism that makes it lawful.
type Transfer struct {
	Recipient string `json:"recipient"`
	Country   string `json:"country"`
	// Mechanism: cac_assessment, standard_contract, certification, exemption (PIPL
	// Art. 38); adequacy, scc, bcr, derogation (GDPR Arts. 45-49); "" if not declared.
	Mechanism string `json:"mechanism"`
	Reference string `json:"reference"`
	Date      string `json:"date"`
	Expires   string `json:"expires"`
}

// Retention is the time limit for erasure (Art. 30(1)(f)).
type Retention struct {
	// ConsentValidity is how long a consent for the purpose counts (ISO 8601, "P395D"),
	// "until_withdrawn", or "" when consent is not among its bases.
	ConsentValidity string `json:"consent_validity"`
	// Statement is the declared retention (purposes[].retention, else
	// dsar.disclosure.retention).
	Statement string `json:"statement"`
	// Rules are the enforced retention rules ([Options.Retention]).
	Rules []RetentionRule `json:"rules"`
}

// RetentionRule is one enforced retention rule of an activity: what is kept how long and
// what happens then. Issue 13 adds them to the configuration; [Options.Retention] supplies
// them to the record.
type RetentionRule struct {
	Categories []string `json:"categories"`
	// Period is an ISO 8601 duration ("P3Y").
	Period string `json:"period"`
	// Action is what happens at the end: erase, anonymise or restrict.
	Action string `json:"action"`
	// Basis is the statutory or contractual reason, if any.
	Basis string `json:"basis"`
	// Rule names the configuration's rule; From is what the period runs from (collected,
	// last_active, account_closed, withdrawn); Keep, for a restriction, how long the data
	// stays in storage and security only before it is erased.
	Rule string `json:"rule,omitempty"`
	From string `json:"from,omitempty"`
	Keep string `json:"keep,omitempty"`
}

// Security is what protects the activity's data (Art. 30(1)(g)).
type Security struct {
	// Sealed are the categories (or body paths) the vault encrypts on its routes.
	Sealed []string `json:"sealed"`
	// Masked are the categories it sees masked; Minimised, those its routes drop because
	// the purpose does not need them.
	Masked    []string `json:"masked"`
	Minimised []string `json:"minimised"`
	// EncryptionAtRest says what privguard encrypts of the activity's data at rest: the
	// sealed fields, with per-subject AES-256-GCM keys wrapped by a KMS key or by the local
	// master key file; or that it seals none (the stores keep them as they do).
	EncryptionAtRest string `json:"encryption_at_rest"`
	// DecisionLog: every decision on its routes is in the hash-chained decision log.
	DecisionLog bool `json:"decision_log"`
	// Measures are the declared other measures (purposes[].security).
	Measures string `json:"measures"`
}

// Flags are the kinds of processing GB/T 35273 §11.3 and the impact assessment ask about.
type Flags struct {
	Entrusted         bool `json:"entrusted"`    // 委托处理: a processor receives it
	Shared            bool `json:"shared"`       // 共享: another handler receives it
	Transferred       bool `json:"transferred"`  // 转让: declared
	Disclosed         bool `json:"disclosed"`    // 公开披露: public disclosure
	CrossBorder       bool `json:"cross_border"` // 出境
	Sensitive         bool `json:"sensitive"`
	DirectMarketing   bool `json:"direct_marketing"`
	Personalised      bool `json:"personalised"`
	SaleOrSharing     bool `json:"sale_or_sharing"`
	AutomatedDecision bool `json:"automated_decision"`
	LargeScale        bool `json:"large_scale"`
}

// System is a store of the data map.
type System struct {
	Name       string   `json:"name"`
	Type       string   `json:"type"`
	Categories []string `json:"categories"`
}

// Category is a data category the record names.
type Category struct {
	Category    string `json:"category"`
	Description string `json:"description"`
	Sensitive   bool   `json:"sensitive"`
	// Declared: the configuration adds it (categories:).
	Declared bool `json:"declared"`
}

// Gap is a fact the record needs that the configuration does not declare.
type Gap struct {
	// Activity is the purpose it is about, or "" for the record as a whole.
	Activity string `json:"activity"`
	// Field is the record's field ("owner", "recipients[ads].country",
	// "controller.dpo.contact"); Key, the configuration key that declares it.
	Field  string `json:"field"`
	Key    string `json:"key"`
	Detail string `json:"detail"`
}
