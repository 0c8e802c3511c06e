package ropa_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/internal/config"
	"github.com/privguard/privguard/internal/ropa"
)

var genTime = time.Date(2026, 6, 30, 16, 0, 0, 0, time.UTC)

func build(t *testing.T, yaml string) *ropa.Record {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("config.Parse: %v\n%s", err, yaml)
	}
	r, err := ropa.Build(cfg, ropa.Options{Now: func() time.Time { return genTime }})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return r
}

func example(t *testing.T) *ropa.Record {
	t.Helper()
	cfg, err := config.Load("../../examples/dpo/privguard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r, err := ropa.Build(cfg, ropa.Options{Now: func() time.Time { return genTime }})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// schema compiles the published schema, docs/ropa.schema.json.
func schema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	b, err := os.ReadFile("../../docs/ropa.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("ropa.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("ropa.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// valid checks r's JSON against the published schema and returns it.
func valid(t *testing.T, s *jsonschema.Schema, r *ropa.Record) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(v); err != nil {
		t.Errorf("the record does not follow docs/ropa.schema.json: %v", err)
	}
	return buf.Bytes()
}

func activity(r *ropa.Record, purpose string) *ropa.Activity {
	for i := range r.Activities {
		if r.Activities[i].Purpose == purpose {
			return &r.Activities[i]
		}
	}
	return nil
}

// complete fails t for every Art. 30(1) and GB/T 35273 §11.3 fact a lacks.
func complete(t *testing.T, r *ropa.Record, a *ropa.Activity) {
	t.Helper()
	missing := func(what string, empty bool) {
		if empty {
			t.Errorf("%s: no %s", a.Purpose, what)
		}
	}
	missing("controller (a)", r.Controller.Name == "" || r.Controller.Contact == "")
	missing("DPO contact (a)", r.Controller.DPO.Contact == "")
	missing("description in English (a)", a.Description.EN == "")
	missing("description in Chinese (a)", a.Description.ZH == "")
	missing("legal basis under the regime (b)", len(a.LegalBases[r.Regime]) == 0)
	missing("categories of data subjects (c)", len(a.DataSubjects) == 0)
	missing("categories of data (c)", len(a.Categories) == 0)
	missing("sources", len(a.Sources) == 0)
	missing("retention (f)", a.Retention.Statement == "" && len(a.Retention.Rules) == 0)
	missing("scale", a.Scale == "")
	missing("scenario", a.Scenario == "")
	missing("systems", len(a.Systems) == 0)
	missing("owner", a.Owner == "")
	for _, rc := range a.Recipients {
		missing("recipient "+rc.Name+"'s role, country, contact and categories (d)", rc.Role == "" || rc.Country == "" || rc.Contact == "" || len(rc.Categories) == 0)
	}
	for _, x := range a.Transfers {
		missing("transfer mechanism for "+x.Recipient+" (e)", x.Mechanism == "" || x.Reference == "")
	}
	if len(a.Gaps) > 0 {
		t.Errorf("%s: gaps %v", a.Purpose, a.Gaps)
	}
}

// proves AUD-01: every activity of a rich example configuration has every field of GDPR
// Art. 30(1)(a)-(g) and GB/T 35273 §11.3, and the export validates against its schema.
func TestExampleRecordIsComplete(t *testing.T) {
	r := example(t)
	valid(t, schema(t), r)
	if len(r.Activities) < 5 {
		t.Fatalf("%d activities; want the example's 5", len(r.Activities))
	}
	for i := range r.Activities {
		complete(t, r, &r.Activities[i])
	}
	if len(r.Gaps) > 0 {
		t.Errorf("the example has gaps: %+v", r.Gaps)
	}
	skin := activity(r, "marketing.skin_advice")
	if skin == nil || !skin.Flags.Sensitive || !skin.Flags.CrossBorder || !skin.Flags.Entrusted || !slices.Contains(skin.Security.Sealed, "user.skin_profile") ||
		len(skin.Transfers) != 1 || skin.Transfers[0].Mechanism != "standard_contract" || skin.Retention.ConsentValidity != "P395D" {
		t.Errorf("marketing.skin_advice = %+v; want sensitive, sealed, a standard contract to SG, 395-day consent", skin)
	}
	ads := activity(r, "marketing.advertising.third_party")
	if ads == nil || !ads.Flags.Shared || ads.Flags.CrossBorder || ads.SeparateConsent != "provide_to_handler" {
		t.Errorf("marketing.advertising.third_party = %+v; want shared with a handler in CN under separate consent", ads)
	}
	loyalty := activity(r, "loyalty.points")
	if loyalty == nil || loyalty.BuiltIn || !slices.Contains(loyalty.Security.Minimised, "user.contact.email") ||
		!slices.Contains(loyalty.Systems, "store crm") || !slices.ContainsFunc(loyalty.Touched, func(x ropa.Touch) bool { return x.At == "crm: members.card_no" }) {
		t.Errorf("loyalty.points = %+v; want a declared purpose whose route drops the email and whose crm columns are listed", loyalty)
	}
}

// driftBase is a configuration whose one activity is complete; the drift test adds to it.
const driftBase = `
regime: pipl
listen: 127.0.0.1:8080
upstream: http://127.0.0.1:9000
controller:
  name: Example Retail Ltd
  contact: privacy@example.com
  dpo: {name: Li Na, contact: dpo@example.com}
categories:
  - {name: user.loyalty, description: Loyalty membership}
  - {name: user.loyalty.points}
purposes:
  - name: loyalty.points
    description: {en: Points programme, zh: 积分计划}
    legal_bases: {pipl: [contract], gdpr: [contract]}
    categories: [user.loyalty]
    owner: Membership team
    systems: [Loyalty platform]
    sources: [collected at sign-up]
    subjects: [members]
    scale: 1.2 million members
    scenario: points on purchases
    retention: membership plus 3 years
%PURPOSES%
routes:
  - match: "GET /api/members/{id}"
    purpose: loyalty.points
    subject: {path: id}
    fields: {points: user.loyalty.points}
%ROUTES%
dsar:
  recipients:
    - {name: sms-gateway, country: CN, contact: dpa@sms.example.cn, purposes: [marketing.communications.sms], categories: [user.contact.phone_number]}
%RECIPIENTS%
`

func drift(purposes, routes, recipients string) string {
	return strings.NewReplacer("%PURPOSES%", purposes, "%ROUTES%", routes, "%RECIPIENTS%", recipients).Replace(driftBase)
}

// proves AUD-01 (drift): a purpose, a route or a recipient added to the configuration is in
// the next record with its Art. 30 fields, and is gone once removed. The record has no
// list of its own to forget.
func TestRecordFollowsTheConfiguration(t *testing.T) {
	s := schema(t)
	base := build(t, drift("", "", ""))
	valid(t, s, base)
	var names []string
	for _, a := range base.Activities {
		names = append(names, a.Purpose)
	}
	if !slices.Equal(names, []string{"loyalty.points", "marketing.communications.sms"}) {
		t.Fatalf("base activities = %v; want loyalty.points and the recipient's marketing.communications.sms", names)
	}
	complete(t, base, activity(base, "loyalty.points"))

	t.Run("purpose", func(t *testing.T) {
		r := build(t, drift(`  - name: marketing.birthday_coupon
    description: {en: Birthday coupons, zh: 生日优惠券}
    legal_bases: {pipl: [consent], gdpr: [consent]}
    categories: [user.demographic.date_of_birth, user.contact.phone_number]
    direct_marketing: true
    owner: CRM team
    systems: [Campaign tool]
    sources: [date of birth given at sign-up]
    subjects: [members who opted in]
    scale: 50,000 a month
    scenario: a coupon by SMS in the birthday month
    retention: until consent is withdrawn
`, "", ""))
		valid(t, s, r)
		a := activity(r, "marketing.birthday_coupon")
		if a == nil {
			t.Fatal("the added purpose is not in the record")
		}
		complete(t, r, a)
		if !slices.Equal(a.LegalBases["pipl"], []string{"consent"}) || a.Retention.ConsentValidity != "P395D" || !a.Flags.DirectMarketing || a.BuiltIn {
			t.Errorf("added purpose = %+v; want its enforced bases, validity and flags", a)
		}
		if activity(build(t, drift("", "", "")), "marketing.birthday_coupon") != nil {
			t.Error("the removed purpose is still in the record")
		}
	})

	t.Run("route", func(t *testing.T) {
		route := `  - match: "GET /api/experiments/{id}"
    purpose: analytics.ab_testing
    subject: {path: id}
    fields: {clicks: user.behavior.browsing_history, email: user.contact.email}
`
		r := build(t, drift("", route, ""))
		valid(t, s, r)
		a := activity(r, "analytics.ab_testing")
		if a == nil {
			t.Fatal("the purpose of the added route is not in the record")
		}
		if !slices.Equal(a.Routes, []string{"GET /api/experiments/{id}"}) || !slices.Equal(a.DeclaredBy, []string{"routes"}) ||
			len(a.Touched) != 1 || a.Touched[0].Category != "user.behavior.browsing_history" || !slices.Equal(a.Security.Minimised, []string{"user.contact.email"}) ||
			!a.Security.DecisionLog || a.Description.EN == "" || a.Description.ZH == "" || len(a.LegalBases["pipl"]) == 0 || len(a.Categories) == 0 {
			t.Errorf("route's activity = %+v; want the route, what it touches and drops, the built-in's bases and description", a)
		}
		// Nothing is invented for the facts the file does not declare: they are gaps.
		for _, want := range []string{"owner", "systems", "sources", "data_subjects", "scale", "scenario", "retention"} {
			if !slices.Contains(a.Gaps, want) {
				t.Errorf("the route's activity does not report %s as not declared (gaps %v)", want, a.Gaps)
			}
		}
		if activity(build(t, drift("", "", "")), "analytics.ab_testing") != nil {
			t.Error("the purpose of the removed route is still in the record")
		}
	})

	t.Run("recipient", func(t *testing.T) {
		rc := `    - name: points-partner-jp
      role: processor
      country: JP
      contact: privacy@partner.example.jp
      purposes: [loyalty]
      categories: [user.loyalty.points]
      transfer: {mechanism: standard_contract, ref: SCC-2026-77, date: 2026-03-01, expires: 2029-03-01}
`
		r := build(t, drift("", "", rc))
		valid(t, s, r)
		a := activity(r, "loyalty.points")
		if len(a.Recipients) != 1 || a.Recipients[0].Name != "points-partner-jp" || !a.Recipients[0].CrossBorder || !a.Flags.CrossBorder || !a.Flags.Entrusted {
			t.Fatalf("loyalty.points recipients = %+v; want the partner in JP, cross-border", a.Recipients)
		}
		want := ropa.Transfer{Recipient: "points-partner-jp", Country: "JP", Mechanism: "standard_contract", Reference: "SCC-2026-77", Date: "2026-03-01", Expires: "2029-03-01"}
		if len(a.Transfers) != 1 || a.Transfers[0] != want {
			t.Errorf("transfers = %+v; want %+v", a.Transfers, want)
		}
		complete(t, r, a)
		if a := activity(build(t, drift("", "", "")), "loyalty.points"); len(a.Recipients) != 0 || len(a.Transfers) != 0 || a.Flags.CrossBorder {
			t.Errorf("after removing the recipient, loyalty.points = %+v; want no recipient or transfer", a)
		}
	})
}

// A fact not declared is a gap, never invented; the DPO's contact is one (AUD-05).
func TestGapsAreReportedNotInvented(t *testing.T) {
	r := build(t, `
purposes:
  - {name: loyalty.points, legal_bases: {pipl: [contract]}}
routes:
  - {match: "POST /api/share/{id}", purpose: third_party.sharing, subject: {path: id}, recipient: partner}
dsar:
  recipients:
    - {name: abroad, country: US, purposes: [third_party.sharing], categories: [user.contact.email]}
    - {name: lapsed, country: SG, contact: x@example.sg, purposes: [third_party.sharing], categories: [user.contact.email],
       transfer: {mechanism: scc, ref: R-1, expires: 2026-01-01}}
`)
	valid(t, schema(t), r)
	gaps := map[string]bool{}
	for _, g := range r.Gaps {
		gaps[g.Activity+" "+g.Field] = true
		if g.Key == "" || g.Detail == "" {
			t.Errorf("gap %+v does not say where to declare it", g)
		}
	}
	// proves AUD-05 (contact): the record names the DPO's published contact, and says so
	// when the configuration does not declare it.
	for _, want := range []string{" controller.name", " controller.dpo.contact", " controller.dpo.name",
		"loyalty.points description.en", "loyalty.points description.zh", "loyalty.points categories", "loyalty.points owner",
		"loyalty.points retention", "loyalty.points sources",
		"third_party.sharing recipients[partner]", "third_party.sharing recipients[abroad].contact", "third_party.sharing recipients[abroad].transfer",
		"third_party.sharing recipients[lapsed].transfer.expires", "third_party.sharing recipients[lapsed].transfer.mechanism"} {
		if !gaps[want] {
			t.Errorf("no gap %q; gaps: %v", want, gaps)
		}
	}
	a := activity(r, "loyalty.points")
	if a.Owner != "" || len(a.Sources) != 0 || a.Retention.Statement != "" || a.Description.ZH != "" {
		t.Errorf("facts were invented: %+v", a)
	}
	share := activity(r, "third_party.sharing")
	if len(share.Transfers) != 2 || share.Transfers[0].Mechanism != "" || !share.Flags.Shared || !share.Flags.CrossBorder {
		t.Errorf("third_party.sharing transfers = %+v; want both recipients abroad, the first without a mechanism", share.Transfers)
	}
	var csvOut bytes.Buffer
	if err := r.WriteCSV(&csvOut, "en"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(csvOut.String(), "not declared") {
		t.Error("the CSV does not say which facts are not declared")
	}
	var zh bytes.Buffer
	r.WriteCSV(&zh, "zh")
	if !strings.Contains(zh.String(), "未声明") {
		t.Error("the Chinese CSV does not say 未声明 for facts not declared")
	}
}

// Under GDPR, abroad is outside the EEA.
func TestCrossBorderFollowsTheRegime(t *testing.T) {
	cfg := `
regime: %s
purposes:
  - {name: loyalty.points, legal_bases: {pipl: [contract], gdpr: [contract]}}
dsar:
  recipients:
    - {name: de, country: DE, purposes: [loyalty.points]}
    - {name: cn, country: CN, purposes: [loyalty.points]}
    - {name: hk, country: HK, purposes: [loyalty.points]}
`
	abroad := func(regime string) []string {
		var out []string
		for _, rc := range activity(build(t, strings.Replace(cfg, "%s", regime, 1)), "loyalty.points").Recipients {
			if rc.CrossBorder {
				out = append(out, rc.Name)
			}
		}
		return out
	}
	if got := abroad("pipl"); !slices.Equal(got, []string{"de", "hk"}) {
		t.Errorf("abroad under PIPL = %v; want de and hk", got)
	}
	if got := abroad("gdpr"); !slices.Equal(got, []string{"cn", "hk"}) {
		t.Errorf("abroad under GDPR = %v; want cn and hk", got)
	}
}

// The retention hook: rules supplied by Options.Retention are in the record.
func TestRetentionRules(t *testing.T) {
	cfg, err := config.Parse([]byte("purposes:\n  - {name: loyalty.points, legal_bases: {pipl: [contract]}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	rule := ropa.RetentionRule{Categories: []string{"user.loyalty"}, Period: "P3Y", Action: "erase", Basis: "points disputes"}
	r, err := ropa.Build(cfg, ropa.Options{Retention: func(p privguard.Purpose) []ropa.RetentionRule {
		if p == "loyalty.points" {
			return []ropa.RetentionRule{rule}
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	a := activity(r, "loyalty.points")
	if len(a.Retention.Rules) != 1 || a.Retention.Rules[0].Period != "P3Y" || slices.Contains(a.Gaps, "retention") {
		t.Errorf("retention = %+v, gaps %v; want the rule and no retention gap", a.Retention, a.Gaps)
	}
	valid(t, schema(t), r)
}

func TestBuildRefusesAnInvalidConfiguration(t *testing.T) {
	cfg, err := config.Parse([]byte("routes:\n  - {match: 'GET /x/{id}', purpose: loyalty.points, subject: {path: id}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ropa.Build(cfg, ropa.Options{}); err == nil || !strings.Contains(err.Error(), `unknown purpose "loyalty.points"`) {
		t.Errorf("Build = %v; want the configuration's error", err)
	}
	if _, err := ropa.Build(nil, ropa.Options{}); err == nil {
		t.Error("Build(nil) = nil error")
	}
}

func TestCSV(t *testing.T) {
	r := example(t)
	var buf bytes.Buffer
	if err := r.WriteCSV(&buf, "zh"); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(buf.Bytes(), []byte("\xef\xbb\xbf")) {
		t.Fatal("the CSV does not start with a UTF-8 byte order mark (Excel would read it as ANSI)")
	}
	rows, err := csv.NewReader(bytes.NewReader(buf.Bytes()[3:])).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	head := rows[0]
	for _, want := range []string{"目的 / Purpose", "法律依据（PIPL） / Legal basis (PIPL)", "接收方 / Recipient", "出境合规机制 / Transfer mechanism",
		"保存期限 / Retention", "加密字段（保险库） / Sealed by the vault", "负责人 / Owner", "委托处理 / Entrusted", "个人信息保护负责人联系方式 / DPO contact"} {
		if !slices.Contains(head, want) {
			t.Errorf("no column %q in %v", want, head)
		}
	}
	// One row per activity and recipient; an activity without recipients has one.
	want := 0
	for _, a := range r.Activities {
		want += max(1, len(a.Recipients))
	}
	if len(rows)-1 != want {
		t.Errorf("%d rows; want %d (activities x recipients)", len(rows)-1, want)
	}
	col := slices.Index(head, "目的 / Purpose")
	if rows[1][col] != "运营会员加入的积分计划" {
		t.Errorf("purpose cell = %q; want the Chinese description", rows[1][col])
	}
}

// Cells a spreadsheet would run as formulas are defused, wherever they come from.
func TestCSVDefusesFormulas(t *testing.T) {
	r := build(t, `
controller: {name: "=HYPERLINK(\"http://evil.example\",\"click\")", contact: "+86 21 5555 0100", dpo: {name: "@SUM(A1)", contact: "-1+1"}}
purposes:
  - name: loyalty.points
    legal_bases: {pipl: [contract]}
    owner: "  =cmd|'/C calc'!A0"
    scale: "＝1+1"
    scenario: "\tx"
    retention: "\r=1"
`)
	var buf bytes.Buffer
	if err := r.WriteCSV(&buf, "en"); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(buf.Bytes()[3:])).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range rows[1:] {
		for i, cell := range row {
			if c := strings.TrimLeft(cell, " "); c != "" && strings.ContainsAny(c[:1], "=+-@\t\r") || strings.HasPrefix(c, "＝") {
				t.Errorf("column %q holds %q, which a spreadsheet may run as a formula", rows[0][i], cell)
			}
		}
	}
	if !strings.Contains(buf.String(), `'=HYPERLINK`) || !strings.Contains(buf.String(), `'  =cmd`) {
		t.Errorf("the formulas are not kept (defused) as text:\n%s", buf.String())
	}
}

func TestHTML(t *testing.T) {
	r := example(t)
	for _, tc := range []struct{ lang, want, htmlLang string }{
		{"zh", "个人信息处理活动记录", `lang="zh-CN"`},
		{"en", "Record of processing activities", `lang="en"`},
	} {
		var buf bytes.Buffer
		if err := r.WriteHTML(&buf, tc.lang); err != nil {
			t.Fatal(err)
		}
		page := buf.String()
		if !strings.Contains(page, tc.want) || !strings.Contains(page, tc.htmlLang) || !strings.Contains(page, "@media print") {
			t.Errorf("%s page lacks its title, language or print styles", tc.lang)
		}
		for _, a := range r.Activities {
			if !strings.Contains(page, `id="`+a.Purpose+`"`) {
				t.Errorf("%s page has no section for %s", tc.lang, a.Purpose)
			}
		}
		if !strings.Contains(page, "dpo@example-retail.cn") {
			t.Errorf("%s page does not name the DPO's contact", tc.lang)
		}
	}
	// Configuration text is escaped.
	hostile := build(t, "controller: {name: \"<script>alert(1)</script>\"}\npurposes:\n  - {name: loyalty.points, legal_bases: {pipl: [contract]}, owner: \"<img src=x onerror=alert(1)>\"}\n")
	var buf bytes.Buffer
	if err := hostile.WriteHTML(&buf, "en"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "<script>alert") || strings.Contains(buf.String(), "<img src=x") {
		t.Error("the page does not escape text from the configuration")
	}
	if !strings.Contains(buf.String(), `class="nd">not declared`) {
		t.Error("the page does not mark facts not declared")
	}
}

func TestWriteFormats(t *testing.T) {
	r := example(t)
	for _, f := range ropa.Formats() {
		var buf bytes.Buffer
		if err := r.Write(&buf, f, "en"); err != nil || buf.Len() == 0 {
			t.Errorf("Write(%s) = %v, %d bytes", f, err, buf.Len())
		}
	}
	var buf bytes.Buffer
	if err := r.Write(&buf, "xlsx", "en"); err == nil || buf.Len() > 0 {
		t.Errorf("Write(xlsx) = %v after %d bytes; want an error before anything is written", err, buf.Len())
	}
	if err := r.Write(&buf, "csv", "fr"); err == nil || buf.Len() > 0 {
		t.Errorf("Write(lang fr) = %v after %d bytes; want an error before anything is written", err, buf.Len())
	}
	// The JSON is deterministic for a given configuration and time.
	a, b := valid(t, schema(t), r), valid(t, schema(t), example(t))
	if !bytes.Equal(a, b) {
		t.Error("two records of the same configuration at the same time differ")
	}
	var round ropa.Record
	if err := json.Unmarshal(a, &round); err != nil || round.Schema != ropa.SchemaID {
		t.Errorf("the JSON does not read back (%v)", err)
	}
	// The schema check is not vacuous: a record that breaks it is refused.
	var m map[string]any
	json.Unmarshal(a, &m)
	delete(m["activities"].([]any)[0].(map[string]any), "owner")
	if err := schema(t).Validate(m); err == nil {
		t.Error("the schema accepts an activity without its owner field")
	}
}

// The configuration's retention rules are the retention of their categories for each of
// their purposes, in the record, with what they run from and the ground of a restriction.
func TestConfiguredRetentionRules(t *testing.T) {
	cfg, err := config.Parse([]byte(`
routes:
  - {match: "GET /recommendations", purpose: personalize.recommendation, subject: {header: X-Customer}}
  - {match: "GET /orders", purpose: essential.service, subject: {header: X-Customer}}
retention:
  - {name: browsing-1y, categories: [user.behavior.browsing_history], purposes: [personalize.recommendation], period: 8760h, from: collected, then: delete}
  - {name: invoices, categories: [user.financial], purposes: [essential.service], period: 0s, from: account_closed, then: restrict, ground: "tax law", keep: 26280h}
`))
	if err != nil {
		t.Fatal(err)
	}
	r, err := ropa.Build(cfg, ropa.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec := activity(r, "personalize.recommendation")
	want := ropa.RetentionRule{Categories: []string{"user.behavior.browsing_history"}, Period: "P365D", Action: "erase", Rule: "browsing-1y", From: "collected"}
	if rec == nil || len(rec.Retention.Rules) != 1 || !reflect.DeepEqual(rec.Retention.Rules[0], want) {
		t.Fatalf("personalize.recommendation retention = %+v; want %+v", rec, want)
	}
	svc := activity(r, "essential.service")
	want = ropa.RetentionRule{Categories: []string{"user.financial"}, Period: "P0D", Action: "restrict", Basis: "tax law", Rule: "invoices", From: "account_closed", Keep: "P1095D"}
	if svc == nil || len(svc.Retention.Rules) != 1 || !reflect.DeepEqual(svc.Retention.Rules[0], want) {
		t.Fatalf("essential.service retention = %+v; want %+v", svc, want)
	}
}
