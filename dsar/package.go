package dsar

import (
	"archive/zip"
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/internal/csvsafe"
)

// Disclosure is what an access answer says beside the data itself (GDPR Art. 15(1)-(3),
// PIPL Arts. 45 and 48): the purposes, the categories held, the recipients, retention,
// the source, automated decision-making, the consent history, the rights and where to
// complain. [Config.Disclose] supplies it; the engine adds the categories it found.
type Disclosure struct {
	Controller Party        `json:"controller"`
	Purposes   []PurposeUse `json:"purposes"`
	// Categories are the data categories found in the stores for the subject; derived
	// data (tags, segments, scores) is marked.
	Categories         []CategoryHeld `json:"categories"`
	Recipients         []Recipient    `json:"recipients"`
	Retention          string         `json:"retention"`
	Sources            []string       `json:"sources"`
	AutomatedDecisions string         `json:"automated_decisions"`
	ConsentHistory     []ConsentEvent `json:"consent_history"`
	// Rights says how to exercise the other rights: the statutory text (StatutoryRights),
	// then what the controller adds. Set by Config.Disclose, it is the controller's addition
	// alone; the engine puts the statutory text before it. Complaint names the supervisory
	// authority and the court remedy.
	Rights    string `json:"rights"`
	Complaint string `json:"complaint"`
	// Texts name purposes and data categories in the reader's language for README.txt: by
	// purpose or category name, then by language ("en", "zh"). Not in disclosure.json, whose
	// descriptions are English.
	Texts map[string]map[string]string `json:"-"`
	// rightsAdded is the controller's addition to the statutory rights text.
	rightsAdded string
	// retentionOf states the retention rules of a category held (Config.RetentionOf).
	retentionOf func(privguard.DataCategory) []string
}

// Party names the controller (personal information handler) and how to reach it.
type Party struct {
	Name    string `json:"name"`
	Contact string `json:"contact"`
}

// PurposeUse is one purpose the subject's data serves, with its legal bases and, for
// consent, whether the subject's consent is in force now.
type PurposeUse struct {
	Purpose     privguard.Purpose      `json:"purpose"`
	Description string                 `json:"description,omitempty"`
	Bases       []privguard.LegalBasis `json:"legal_bases"`
	// Consent is the ledger's state for consent-based purposes ("given", "withdrawn",
	// "expired", "none"); empty where consent is not the basis.
	Consent string `json:"consent,omitempty"`
}

// CategoryHeld is a data category found for the subject, with where and how much.
type CategoryHeld struct {
	Category privguard.DataCategory `json:"category"`
	Stores   []string               `json:"stores"`
	Items    int                    `json:"items"` // rows or keys holding it
	Derived  bool                   `json:"derived"`
	// Retention states each retention rule that applies to the category: how long it is
	// kept, for which purposes, from when, and what happens then.
	Retention []string `json:"retention,omitempty"`
}

// Recipient is a party the data is disclosed to (a processor or another handler).
type Recipient struct {
	Name       string                   `json:"name"`
	Country    string                   `json:"country,omitempty"` // ISO 3166 alpha-2; outside CN/EU means a cross-border transfer
	Purposes   []privguard.Purpose      `json:"purposes,omitempty"`
	Categories []privguard.DataCategory `json:"categories,omitempty"`
}

// ConsentEvent is one entry of the subject's consent history from the ledger.
type ConsentEvent struct {
	Time    time.Time         `json:"time"`
	Action  string            `json:"action"`
	Purpose privguard.Purpose `json:"purpose,omitempty"`
	Notice  string            `json:"notice,omitempty"` // notice id and version
	Channel string            `json:"channel,omitempty"`
	Record  string            `json:"record"` // ledger record id, for the proof
}

// derived reports whether c is data the controller inferred rather than collected.
func derived(c privguard.DataCategory) bool {
	return c == "user.derived" || strings.HasPrefix(string(c), "user.derived.")
}

// heldIn lists the categories found in one store's export: a column counts when a row
// has a value in it.
func heldIn(x Export) []CategoryHeld {
	by := map[privguard.DataCategory]*CategoryHeld{}
	for _, t := range x.Tables {
		for col, cat := range t.Categories {
			n := 0
			for _, row := range t.Rows {
				if v, ok := row[col]; ok && v != nil {
					n++
				}
			}
			if n == 0 {
				continue
			}
			h := by[cat]
			if h == nil {
				h = &CategoryHeld{Category: cat, Derived: derived(cat), Stores: []string{x.Store}}
				by[cat] = h
			}
			h.Items += n
		}
	}
	out := make([]CategoryHeld, 0, len(by))
	for _, c := range slices.Sorted(maps.Keys(by)) {
		out = append(out, *by[c])
	}
	return out
}

// mergeHeld merges the categories held in several stores.
func mergeHeld(parts [][]CategoryHeld) []CategoryHeld {
	by := map[privguard.DataCategory]*CategoryHeld{}
	for _, part := range parts {
		for _, h := range part {
			m := by[h.Category]
			if m == nil {
				m = &CategoryHeld{Category: h.Category, Derived: h.Derived}
				by[h.Category] = m
			}
			m.Items += h.Items
			for _, s := range h.Stores {
				if !slices.Contains(m.Stores, s) {
					m.Stores = append(m.Stores, s)
				}
			}
		}
	}
	out := make([]CategoryHeld, 0, len(by))
	for _, c := range slices.Sorted(maps.Keys(by)) {
		slices.Sort(by[c].Stores)
		out = append(out, *by[c])
	}
	return out
}

// Manifest lists a package's files with their SHA-256 checksums.
type Manifest struct {
	Schema    string           `json:"schema"`
	Request   string           `json:"request"`
	Type      Type             `json:"type"`
	Regime    privguard.Regime `json:"regime"`
	CreatedAt time.Time        `json:"created_at"`
	Files     []ManifestFile   `json:"files"`
}

// ManifestFile is one file of a package.
type ManifestFile struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Bytes  int    `json:"bytes"`
}

// PackageSchema names the JSON Schema that a package's disclosure.json and data files
// follow (dsar/schema/access-package.schema.json).
const PackageSchema = "https://privguard.dev/schema/dsar/access-package/v1"

// PackageDoc is the content of disclosure.json: the request, the disclosure and, for
// access and portability, the data of every store.
type PackageDoc struct {
	Schema    string           `json:"$schema"`
	Request   string           `json:"request"`
	Type      Type             `json:"type"`
	Regime    privguard.Regime `json:"regime"`
	Subject   string           `json:"subject"`
	CreatedAt time.Time        `json:"created_at"`
	// Requester is who asked, and as what, when not the subject (a close relative of the
	// deceased subject, PIPL Art. 49); the proof stays in the request.
	Requester  *Requester `json:"requester,omitempty"`
	Disclosure Disclosure `json:"disclosure"`
}

// partMeta is the index of a rendered store part (meta.json in the part).
type partMeta struct {
	Store string         `json:"store"`
	Rows  int            `json:"rows"`
	Held  []CategoryHeld `json:"held"`
	Files []ManifestFile `json:"files"` // the data files, with their checksums
}

const partMetaName = "meta.json"

// renderPart renders one store's share of a package once, when the store answers: a zip
// holding meta.json and, with data, data/<store>.json and a CSV per table. The package
// later copies the compressed files as they are.
func renderPart(x Export, withData bool, now time.Time) ([]byte, error) {
	meta := partMeta{Store: x.Store, Rows: x.Rows(), Held: heldIn(x)}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	add := func(path string, body []byte) error {
		sum := sha256.Sum256(body)
		meta.Files = append(meta.Files, ManifestFile{Path: path, SHA256: hex.EncodeToString(sum[:]), Bytes: len(body)})
		w, err := zw.CreateHeader(&zip.FileHeader{Name: path, Method: zip.Deflate, Modified: now})
		if err != nil {
			return err
		}
		_, err = w.Write(body)
		return err
	}
	if withData {
		// Table names that differ only in characters a path cannot hold, or in case (one
		// file on a case-insensitive disk), get a numbered name: no file hides another.
		used := map[string]bool{}
		fileName := func(table string) string {
			base := safeName(table)
			name := base
			for i := 2; used[strings.ToLower(name)]; i++ {
				name = fmt.Sprintf("%s-%d", base, i)
			}
			used[strings.ToLower(name)] = true
			return name
		}
		b, err := exportJSON(x)
		if err != nil {
			return nil, fmt.Errorf("dsar: export of %s: %w", x.Store, err)
		}
		if err := add("data/"+safeName(x.Store)+".json", b); err != nil {
			return nil, err
		}
		for _, t := range x.Tables {
			b, err := tableCSV(t)
			if err != nil {
				return nil, err
			}
			if err := add("data/"+safeName(x.Store)+"/"+fileName(t.Name)+".csv", b); err != nil {
				return nil, err
			}
		}
	}
	mb, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	w, err := zw.Create(partMetaName)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(mb); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// exportJSON writes x as its data file: the store, then each table with its categories
// and its rows, one row per line (readable, and cheap to write for large exports).
func exportJSON(x Export) ([]byte, error) {
	var buf, tmp bytes.Buffer
	enc := json.NewEncoder(&tmp)
	enc.SetEscapeHTML(false)
	val := func(v any) error {
		tmp.Reset()
		if err := enc.Encode(v); err != nil {
			return err
		}
		buf.Write(bytes.TrimSuffix(tmp.Bytes(), []byte("\n")))
		return nil
	}
	buf.WriteString(`{"store": `)
	if err := val(x.Store); err != nil {
		return nil, err
	}
	buf.WriteString(`, "tables": [`)
	for i, t := range x.Tables {
		if i > 0 {
			buf.WriteString(",")
		}
		buf.WriteString("\n {\"name\": ")
		if err := val(t.Name); err != nil {
			return nil, err
		}
		buf.WriteString(`, "categories": `)
		cats := t.Categories
		if cats == nil {
			cats = map[string]privguard.DataCategory{}
		}
		if err := val(cats); err != nil {
			return nil, err
		}
		buf.WriteString(`, "rows": [`)
		// Rows are written by hand, with the keys sorted once per table, as encoding/json
		// would write them (sorted keys, same escaping) at a fraction of the cost.
		cols := columns(t)
		keys := make([][]byte, len(cols))
		for i, c := range cols {
			keys[i] = appendJSONString(nil, c)
		}
		var out []byte
		for j, row := range t.Rows {
			out = out[:0]
			if j > 0 {
				out = append(out, ',')
			}
			out = append(out, "\n  {"...)
			first := true
			for i, c := range cols {
				v, ok := row[c]
				if !ok {
					continue
				}
				if !first {
					out = append(out, ',')
				}
				first = false
				out = append(append(out, keys[i]...), ':')
				var err error
				if out, err = appendJSONValue(out, v); err != nil {
					return nil, err
				}
			}
			buf.Write(append(out, '}'))
		}
		buf.WriteString("]}")
	}
	buf.WriteString("\n]}\n")
	return buf.Bytes(), nil
}

// appendJSONValue appends v as JSON: strings, integers, booleans and nil directly, the
// rest through encoding/json.
func appendJSONValue(out []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(out, "null"...), nil
	case string:
		return appendJSONString(out, v), nil
	case bool:
		return strconv.AppendBool(out, v), nil
	case int:
		return strconv.AppendInt(out, int64(v), 10), nil
	case int32:
		return strconv.AppendInt(out, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(out, v, 10), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(out, b...), nil
}

// appendJSONString appends s quoted as encoding/json does with HTML escaping off:
// quote, backslash and control characters escaped, invalid UTF-8 as U+FFFD, and U+2028
// and U+2029 escaped.
func appendJSONString(out []byte, s string) []byte {
	const hex = "0123456789abcdef"
	out = append(out, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			out = append(out, s[start:i]...)
			switch c {
			case '"', '\\':
				out = append(out, '\\', c)
			case '\n':
				out = append(out, '\\', 'n')
			case '\r':
				out = append(out, '\\', 'r')
			case '\t':
				out = append(out, '\\', 't')
			case '\b':
				out = append(out, '\\', 'b')
			case '\f':
				out = append(out, '\\', 'f')
			default:
				out = append(out, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			out = append(append(out, s[start:i]...), `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			out = append(append(out, s[start:i]...), '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(append(out, s[start:]...), '"')
}

// columns returns the sorted union of t's row keys and mapped columns.
func columns(t Table) []string {
	set := map[string]bool{}
	for c := range t.Categories {
		set[c] = true
	}
	for _, row := range t.Rows {
		if len(row) == len(set) {
			// Usually every row has the same columns: check cheaply before merging.
			same := true
			for c := range row {
				if !set[c] {
					same = false
					break
				}
			}
			if same {
				continue
			}
		}
		for c := range row {
			set[c] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// buildPackage writes r's zip from the stores' rendered parts: README.txt (bilingual
// summary), disclosure.json, the parts' data files (copied compressed), and
// manifest.json listing every other file with its checksum. It returns the zip and how
// many files it holds. d.Categories is set from the parts.
func buildPackage(r Request, parts [][]byte, d *Disclosure, now time.Time) ([]byte, int, error) {
	type part struct {
		meta  partMeta
		files []*zip.File
	}
	var ps []part
	var held [][]CategoryHeld
	rows := 0
	for _, b := range parts {
		zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return nil, 0, fmt.Errorf("dsar: stored part: %w", err)
		}
		var p part
		for _, f := range zr.File {
			if f.Name != partMetaName {
				p.files = append(p.files, f)
				continue
			}
			rc, err := f.Open()
			if err != nil {
				return nil, 0, err
			}
			err = json.NewDecoder(rc).Decode(&p.meta)
			rc.Close()
			if err != nil {
				return nil, 0, fmt.Errorf("dsar: stored part index: %w", err)
			}
		}
		ps, held, rows = append(ps, p), append(held, p.meta.Held), rows+p.meta.Rows
	}
	d.Categories = mergeHeld(held)
	if d.retentionOf != nil {
		for i := range d.Categories {
			d.Categories[i].Retention = d.retentionOf(d.Categories[i].Category)
		}
	}

	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	m := Manifest{Schema: PackageSchema, Request: r.ID, Type: r.Type, Regime: r.Regime, CreatedAt: now}
	add := func(path string, body []byte) error {
		sum := sha256.Sum256(body)
		if path != "manifest.json" {
			m.Files = append(m.Files, ManifestFile{Path: path, SHA256: hex.EncodeToString(sum[:]), Bytes: len(body)})
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: path, Method: zip.Deflate, Modified: now})
		if err != nil {
			return err
		}
		_, err = w.Write(body)
		return err
	}
	doc := PackageDoc{Schema: PackageSchema, Request: r.ID, Type: r.Type, Regime: r.Regime,
		Subject: string(r.Subject), CreatedAt: now, Disclosure: nonNil(*d)}
	if q := r.Requester; q != nil {
		doc.Requester = &Requester{Role: q.Role, Name: q.Name, Relation: q.Relation}
	}
	db, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, 0, err
	}
	if err := add("README.txt", summary(r, *d, len(parts), rows, now)); err != nil {
		return nil, 0, err
	}
	if err := add("disclosure.json", db); err != nil {
		return nil, 0, err
	}
	for _, p := range ps {
		m.Files = append(m.Files, p.meta.Files...)
		for _, f := range p.files {
			if err := zw.Copy(f); err != nil {
				return nil, 0, err
			}
		}
	}
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, 0, err
	}
	if err := add("manifest.json", mb); err != nil {
		return nil, 0, err
	}
	if err := zw.Close(); err != nil {
		return nil, 0, err
	}
	return buf.Bytes(), len(m.Files) + 1, nil
}

// nonNil makes d's lists empty arrays rather than null, as the schema requires.
func nonNil(d Disclosure) Disclosure {
	if d.Purposes == nil {
		d.Purposes = []PurposeUse{}
	}
	if d.Categories == nil {
		d.Categories = []CategoryHeld{}
	}
	if d.Recipients == nil {
		d.Recipients = []Recipient{}
	}
	if d.Sources == nil {
		d.Sources = []string{}
	}
	if d.ConsentHistory == nil {
		d.ConsentHistory = []ConsentEvent{}
	}
	for i := range d.Purposes {
		if d.Purposes[i].Bases == nil {
			d.Purposes[i].Bases = []privguard.LegalBasis{}
		}
	}
	return d
}

// safeName keeps a store or table name usable as a path element in any unzip tool.
func safeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || (c == '.' && i > 0)) {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "_"
	}
	return string(b)
}

// tableCSV writes t as CSV: a header of the sorted column names, then one line per row.
// Cells that a spreadsheet would run as a formula (= + - @, tab, CR) get a leading
// apostrophe; the JSON file keeps the exact values.
func tableCSV(t Table) ([]byte, error) {
	cols := columns(t)
	var buf bytes.Buffer
	buf.WriteString("\uFEFF") // a BOM, so that spreadsheet programs read UTF-8 (Chinese text)
	w := csv.NewWriter(&buf)
	if err := w.Write(cols); err != nil {
		return nil, err
	}
	line := make([]string, len(cols))
	for _, row := range t.Rows {
		for i, c := range cols {
			line[i] = cell(row[c])
		}
		if err := w.Write(line); err != nil {
			return nil, err
		}
	}
	w.Flush()
	return buf.Bytes(), w.Error()
}

func cell(v any) string {
	var s string
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		s = v
	case []byte:
		return base64.StdEncoding.EncodeToString(v)
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	case bool:
		return strconv.FormatBool(v)
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64, json.Number:
		return fmt.Sprint(v)
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Sprint(v)
		}
		s = string(b)
	}
	return csvsafe.Defuse(s)
}

// summaryLabels are README.txt's words in one language.
type summaryLabels struct {
	heading, title, request, created, controller, seePolicy, held, derived, purposes, recipients, none,
	retention, consents, data, rights, complaint, manifest, requester string
	sep       string // between a label and its value
	relations map[string]string
}

var summaryText = map[string]summaryLabels{
	"zh": {heading: "【中文】", title: "个人信息副本", request: "请求编号", created: "生成时间", controller: "个人信息处理者：%s（联系方式：%s）",
		seePolicy: "见隐私政策", held: "我们持有的个人信息类别", derived: "我们推断得出的信息（标签、分群等）", purposes: "处理目的",
		recipients: "接收方", none: "无", retention: "保存期限", consents: "同意记录：%d 条（见 disclosure.json）",
		data: "数据：%d 个存储，共 %d 条记录，见 data/ 目录（JSON 与 CSV）。", rights: "您的权利", complaint: "投诉与救济",
		manifest: "manifest.json 列出每个文件的 SHA-256 校验值。", requester: "提出请求者：%s（已故个人信息主体的近亲属：%s；《个人信息保护法》第四十九条）",
		sep: "：", relations: map[string]string{"spouse": "配偶", "parent": "父母", "child": "子女", "sibling": "兄弟姐妹",
			"grandparent": "祖父母、外祖父母", "grandchild": "孙子女、外孙子女", "other": "其他近亲属"}},
	"en": {heading: "[English]", title: "Copy of your personal information", request: "Request", created: "Created",
		controller: "Controller: %s (contact: %s)", seePolicy: "see the privacy notice", held: "Categories of personal data we hold",
		derived: "Data we derived (tags, segments)", purposes: "Purposes", recipients: "Recipients", none: "none", retention: "Retention",
		consents: "Consent history: %d records (see disclosure.json)", data: "Data: %d stores, %d records in all, in data/ (JSON and CSV).",
		rights: "Your rights", complaint: "Complaints and remedies", manifest: "manifest.json lists the SHA-256 checksum of every file.",
		requester: "Requested by: %s, close relative (%s) of the deceased data subject (PIPL Art. 49)", sep: ": "},
}

// summary is README.txt: the package in plain words, in the reader's language first
// (ReaderLang) and then in the other; purposes and categories named in each language (Disclosure.Texts), the
// time in the reader's zone (ReaderZone), the statutory rights always stated.
func summary(r Request, d Disclosure, stores, rows int, now time.Time) []byte {
	order := []string{"zh", "en"}
	if ReaderLang(r) == "en" {
		order = []string{"en", "zh"}
	}
	first, second := summaryText[order[0]], summaryText[order[1]]
	loc, zone := ReaderZone(r)
	created := now.In(loc).Format("2006-01-02 15:04:05 -07:00") + " (" + zone + ")"
	if zone == "Asia/Shanghai" {
		created += " 北京时间 / Beijing time"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s / %s\n", first.title, second.title)
	fmt.Fprintf(&b, "%s / %s: %s (%s)\n%s / %s: %s\n\n", first.request, second.request, r.ID, r.Type, first.created, second.created, created)
	for i, lang := range order {
		if i > 0 {
			b.WriteString("\n")
		}
		summarySection(&b, lang, r, d, stores, rows)
	}
	return []byte(b.String())
}

// summarySection writes README.txt's section in lang ("zh" or "en").
func summarySection(b *strings.Builder, lang string, r Request, d Disclosure, stores, rows int) {
	l := summaryText[lang]
	list := func(items []string) string {
		if len(items) == 0 {
			return l.none
		}
		sep := "; "
		if lang == "zh" {
			sep = "；"
		}
		return strings.Join(items, sep)
	}
	// named is name in lang ("description (name)"), else in the other language, else name.
	named := func(name, english string) string {
		t := d.Texts[name]
		text := t[lang]
		if text == "" && lang == "en" {
			text = english
		}
		text = cmp.Or(text, english, t["en"], t["zh"])
		if text == "" || text == name {
			return name
		}
		return text + " (" + name + ")"
	}
	var cats, derivedCats, purposes, recipients []string
	for _, c := range d.Categories {
		if c.Derived {
			derivedCats = append(derivedCats, named(string(c.Category), ""))
		} else {
			cats = append(cats, named(string(c.Category), ""))
		}
	}
	for _, p := range d.Purposes {
		purposes = append(purposes, named(string(p.Purpose), p.Description))
	}
	for _, rc := range d.Recipients {
		s := rc.Name
		if rc.Country != "" {
			s += " [" + rc.Country + "]"
		}
		recipients = append(recipients, s)
	}
	line := func(label, value string) { fmt.Fprintf(b, "%s%s%s\n", label, l.sep, value) }
	fmt.Fprintf(b, "%s\n", l.heading)
	if q := r.Requester; q != nil {
		fmt.Fprintf(b, l.requester+"\n", q.Name, cmp.Or(l.relations[q.Relation], q.Relation))
	}
	fmt.Fprintf(b, l.controller+"\n", cmp.Or(d.Controller.Name, l.seePolicy), cmp.Or(d.Controller.Contact, l.seePolicy))
	line(l.held, list(cats))
	line(l.derived, list(derivedCats))
	line(l.purposes, list(purposes))
	line(l.recipients, list(recipients))
	line(l.retention, cmp.Or(d.Retention, l.seePolicy))
	for _, c := range d.Categories {
		for _, s := range c.Retention {
			fmt.Fprintf(b, "  %s%s%s\n", c.Category, l.sep, s)
		}
	}
	fmt.Fprintf(b, l.consents+"\n", len(d.ConsentHistory))
	if r.Type != TypeCategories {
		fmt.Fprintf(b, l.data+"\n", stores, rows)
	}
	// The statutory text in this language, always; the controller's text after it.
	rights := StatutoryRights[r.Regime][lang]
	if d.rightsAdded != "" {
		rights += " " + d.rightsAdded
	}
	line(l.rights, rights)
	line(l.complaint, d.Complaint)
	fmt.Fprintf(b, "%s\n", l.manifest)
}
