package adminapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/go-playground/validator/v10"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/internal/jsonpath"
	"github.com/privguard/privguard/internal/rules"
)

// Body limits.
const (
	MaxConsentBody = 64 << 10
	MaxNoticeBody  = privguardNoticeText + 64<<10
	// privguardNoticeText mirrors consent.MaxNoticeTextLen.
	privguardNoticeText = 1 << 20
)

// newValidator returns a validator that names fields by their JSON names.
func newValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			return ""
		}
		return name
	})
	return v
}

// decode reads a JSON body of at most limit bytes into dst and validates it. Errors are
// problems: 415 for another media type, 413 for a body over the limit, 400 for malformed
// JSON, unknown fields and keys that could be read two ways (a key twice in one object, a
// field spelled in another case: see checkKeys), 422 for values that break a validation
// rule.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, limit int64, dst any) error {
	if err := bodyType(r, "application/json", "send Content-Type: application/json"); err != nil {
		return err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return jsonProblem(err, limit)
	}
	return s.decodeBytes(bytes.TrimPrefix(body, utf8BOM), limit, dst)
}

// utf8BOM is the byte order mark some editors and spreadsheet exports put first; it is
// dropped.
var utf8BOM = []byte("\ufeff")

// bodyType refuses (415) a request body that is not of media type want, is compressed
// (Content-Encoding), or names a charset other than UTF-8: the API reads plain UTF-8 only,
// and would otherwise read such bytes as something else.
func bodyType(r *http.Request, want, hint string) error {
	unsupported := func(detail string) error {
		return privguard.NewProblem(http.StatusUnsupportedMediaType, TypeUnsupportedMediaType, "Unsupported media type", detail)
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != want {
		return unsupported(hint)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return unsupported("the body must be UTF-8 (charset=utf-8 or none)")
	}
	for _, enc := range r.Header.Values("Content-Encoding") {
		if !strings.EqualFold(strings.TrimSpace(enc), "identity") {
			return unsupported("send the body uncompressed (no Content-Encoding)")
		}
	}
	return nil
}

// decodeBytes is decode of a body already read (at most limit bytes): one JSON value, its
// keys checked, decoded strictly into dst and validated.
func (s *Server) decodeBytes(body []byte, limit int64, dst any) error {
	plain, err := checkKeys(body, reflect.TypeOf(dst))
	if err != nil {
		return err
	}
	if plain {
		// One valid JSON value whose every key is a field of dst: what the decoder below
		// would do, without its copy of the body and its second scan.
		if err := json.Unmarshal(body, dst); err != nil {
			return jsonProblem(err, limit)
		}
		if err := s.validate.Struct(dst); err != nil {
			return validationProblem(err)
		}
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonProblem(err, limit)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return jsonProblem(err, limit)
		}
		return privguard.NewProblem(http.StatusBadRequest, TypeMalformedJSON, "Malformed JSON", "the body holds more than one JSON value")
	}
	if err := s.validate.Struct(dst); err != nil {
		return validationProblem(err)
	}
	return nil
}

func jsonProblem(err error, limit int64) *privguard.Problem {
	var mbe *http.MaxBytesError
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &mbe):
		return privguard.NewProblem(http.StatusRequestEntityTooLarge, TypeBodyTooLarge, "Body too large",
			fmt.Sprintf("the body must be at most %d bytes", limit))
	case errors.As(err, &syn):
		return privguard.NewProblem(http.StatusBadRequest, TypeMalformedJSON, "Malformed JSON",
			fmt.Sprintf("syntax error at byte %d", syn.Offset))
	case errors.As(err, &typ) && typ.Field == "": // the document itself
		return privguard.NewProblem(http.StatusBadRequest, TypeMalformedJSON, "Malformed JSON",
			fmt.Sprintf("the body must be a JSON %s", jsonKind(typ.Type)))
	case errors.As(err, &typ):
		p := privguard.NewProblem(http.StatusBadRequest, TypeMalformedJSON, "Malformed JSON",
			fmt.Sprintf("%s must be a JSON %s", typ.Field, jsonKind(typ.Type)))
		p.Field = typ.Field
		return p
	case errors.Is(err, io.EOF):
		return privguard.NewProblem(http.StatusBadRequest, TypeMalformedJSON, "Malformed JSON", "the body is empty")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return privguard.NewProblem(http.StatusBadRequest, TypeMalformedJSON, "Malformed JSON", "the body ends early")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		p := privguard.NewProblem(http.StatusBadRequest, TypeMalformedJSON, "Malformed JSON", "unknown field")
		if len(field) <= 64 {
			p.Field = field
		}
		return p
	}
	return privguard.NewProblem(http.StatusBadRequest, TypeMalformedJSON, "Malformed JSON", "the body is not valid JSON for this API")
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map, reflect.Pointer:
		return "object"
	}
	return "number"
}

// validationProblem lists every failing field with the rule it broke.
func validationProblem(err error) *privguard.Problem {
	p := privguard.NewProblem(http.StatusUnprocessableEntity, TypeValidation, "The request breaks a rule", "")
	var ve validator.ValidationErrors
	if !errors.As(err, &ve) {
		return p
	}
	for _, fe := range ve {
		ns := fe.Namespace()
		if _, rest, ok := strings.Cut(ns, "."); ok {
			ns = rest // drop the struct name
		}
		rule := fe.Tag()
		if fe.Param() != "" {
			rule += "=" + fe.Param()
		}
		say, ok := rules.Describe(fe.Tag(), fe.Param(), fe.Kind(), snakeNames)
		if !ok {
			say = "is not valid" // unreachable while TestEveryBodyRuleHasAMessage passes
		}
		p.Errors = append(p.Errors, privguard.FieldError{Field: ns, Rule: rule, Detail: say})
	}
	if len(p.Errors) > 0 {
		p.Field = p.Errors[0].Field
		p.Detail = p.Errors[0].Field + ": " + p.Errors[0].Detail
	}
	return p
}

// snakeNames gives the Go field names of a rule's param (IdentityToken) as the body's keys
// (identity_token), joined with "or".
func snakeNames(goNames string) string {
	var out []string
	for _, n := range strings.Fields(goNames) {
		var b strings.Builder
		for i, r := range n {
			if unicode.IsUpper(r) {
				if i > 0 {
					b.WriteByte('_')
				}
				r = unicode.ToLower(r)
			}
			b.WriteRune(r)
		}
		out = append(out, b.String())
	}
	return strings.Join(out, " or ")
}

// checkKeys refuses a body a lenient reader could take another way than privguard does:
// an object with the same key twice (or twice under case folding: "subject" and "Subject"),
// where encoding/json keeps the last, or a field spelled otherwise than its name ("Subject"
// for subject, "ſubject" for subject), which encoding/json accepts. Keys are checked
// against the exact JSON names of t (the destination's type), at every depth; keys of a
// map field are free, and unknown keys are left to the decoder. A body that is not JSON is
// left to the decoder too, which says where it breaks.
//
// plain reports a body that is one valid JSON value and names no key that is not a field
// of t (at any depth walked): encoding/json's Unmarshal then decodes it as the strict
// decoder would.
func checkKeys(body []byte, t reflect.Type) (plain bool, err error) {
	err = jsonpath.CheckDuplicates(body)
	var ke *jsonpath.KeyError
	switch {
	case errors.As(err, &ke):
		return false, keyProblem(ke.Path, "the key appears more than once (keys are compared as encoding/json folds case)")
	case err != nil:
		return false, nil
	}
	unknown := false
	if err := exactKeys(body, t, "", &unknown); err != nil {
		return false, err
	}
	return !unknown, nil
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// exactKeys checks the keys of the JSON value doc (valid, without duplicates) against type
// t: in an object for a struct, every key that folds to a field's name must be that name.
// It walks doc once, in place (jsonpath.Member and Element), in document order.
//
// A key that is no field of a struct sets *unknown (the decoder reports it).
func exactKeys(doc []byte, t reflect.Type, at string, unknown *bool) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil // time.Time, json.RawMessage: a value, not fields
	}
	i := skipSpace(doc)
	switch t.Kind() {
	case reflect.Struct:
		if i >= len(doc) || doc[i] != '{' {
			return nil // not an object: the decoder reports the type
		}
		fields := structFields(t)
		for raw, val, j := jsonpath.Member(doc, i+1); raw != nil; raw, val, j = jsonpath.Member(doc, j) {
			key := unquoteKey(raw)
			f, exact, ok := fields.find(key)
			switch {
			case !ok:
				*unknown = true
				continue // DisallowUnknownFields reports it
			case !exact:
				return keyProblem(join(at, f.name), "keys are case-sensitive: spell it "+f.name)
			}
			if err := exactKeys(val, f.typ, join(at, f.name), unknown); err != nil {
				return err
			}
		}
	case reflect.Map:
		if i >= len(doc) || doc[i] != '{' {
			return nil
		}
		for raw, val, j := jsonpath.Member(doc, i+1); raw != nil; raw, val, j = jsonpath.Member(doc, j) {
			if err := exactKeys(val, t.Elem(), join(at, unquoteKey(raw)), unknown); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return nil // []byte is a base64 string
		}
		if i >= len(doc) || doc[i] != '[' {
			return nil
		}
		k := 0
		for val, j := jsonpath.Element(doc, i+1); val != nil; val, j = jsonpath.Element(doc, j) {
			if err := exactKeys(val, t.Elem(), fmt.Sprintf("%s[%d]", at, k), unknown); err != nil {
				return err
			}
			k++
		}
	}
	return nil
}

func skipSpace(b []byte) int {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// unquoteKey returns the key the quoted JSON string raw (valid) stands for, as
// encoding/json decodes it (escapes resolved, invalid UTF-8 as U+FFFD).
func unquoteKey(raw []byte) string {
	body := raw[1 : len(raw)-1]
	for _, c := range body {
		if c == '\\' || c >= utf8.RuneSelf {
			var s string
			_ = json.Unmarshal(raw, &s)
			return s
		}
	}
	return string(body)
}

type field struct {
	name string
	typ  reflect.Type
}

// fieldSet is what jsonField needs of a struct type, computed once per type: its fields'
// JSON names, their folds, and the fields of embedded structs.
type fieldSet []fieldEntry

type fieldEntry struct {
	field
	folded   string
	embedded fieldSet // an embedded struct without a JSON name: its fields are the outer's
}

// fieldSets caches structFields; the types are the API's body types, a fixed set.
var fieldSets sync.Map // reflect.Type -> fieldSet

func structFields(t reflect.Type) fieldSet {
	if v, ok := fieldSets.Load(t); ok {
		return v.(fieldSet)
	}
	var fs fieldSet
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() && !(sf.Anonymous && sf.Type.Kind() == reflect.Struct) {
			continue // encoding/json fills the fields of an embedded struct even of an unexported type
		}
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		switch {
		case name == "-":
			continue
		case name == "" && sf.Anonymous && sf.Type.Kind() == reflect.Struct:
			fs = append(fs, fieldEntry{embedded: structFields(sf.Type)})
			continue
		case name == "":
			name = sf.Name
		}
		fs = append(fs, fieldEntry{field: field{name, sf.Type}, folded: jsonpath.Fold(name)})
	}
	fieldSets.Store(t, fs)
	return fs
}

// find returns the field encoding/json would fill from key: exact reports whether key is
// its name as spelled, not a case or Unicode fold variant of it.
func (fs fieldSet) find(key string) (f field, exact, ok bool) {
	return fs.findFolded(key, jsonpath.Fold(key))
}

func (fs fieldSet) findFolded(key, folded string) (f field, exact, ok bool) {
	for i := range fs {
		e := &fs[i]
		if e.embedded != nil || e.typ == nil {
			if g, ex, found := e.embedded.findFolded(key, folded); found && (ex || !ok) {
				f, exact, ok = g, ex, true
				if ex {
					return f, true, true
				}
			}
			continue
		}
		if e.name == key {
			return e.field, true, true
		}
		if e.folded == folded {
			f, ok = e.field, true
		}
	}
	return f, false, ok
}

func join(at, key string) string {
	if at == "" {
		return key
	}
	return at + "." + key
}

// keyProblem is the 400 for an ambiguous key at path (named when it is short enough to be
// a field of ours rather than whatever the client sent).
func keyProblem(path, detail string) *privguard.Problem {
	p := privguard.NewProblem(http.StatusBadRequest, TypeAmbiguous, "Ambiguous key", detail)
	if len(path) <= 64 {
		p.Field = path
	}
	return p
}

// onceQuery refuses a query in which a parameter is given more than once, or more than one
// of a set of synonyms (status and state): readers disagree on which one counts (Go takes
// the first, others the last), so it is refused rather than guessed at.
func onceQuery(q url.Values, synonyms ...[]string) error {
	for k, v := range q {
		if len(v) > 1 {
			return queryProblem(k, "given more than once")
		}
	}
	for _, set := range synonyms {
		given := ""
		for _, k := range set {
			if q.Has(k) {
				if given != "" {
					return queryProblem(k, "give "+given+" or "+k+", not both")
				}
				given = k
			}
		}
	}
	return nil
}

func queryProblem(key, detail string) *privguard.Problem {
	p := privguard.NewProblem(http.StatusBadRequest, TypeAmbiguous, "Ambiguous query", detail)
	if len(key) <= 64 && printable(key) {
		p.Field = key
	}
	return p
}

// onceHeader returns the value of header name, refusing it when it is sent more than once.
func onceHeader(r *http.Request, name string) (string, error) {
	if v := r.Header.Values(name); len(v) > 1 {
		p := privguard.NewProblem(http.StatusBadRequest, TypeAmbiguous, "Repeated header", name+" is sent more than once")
		p.Field = name
		return "", p
	}
	return r.Header.Get(name), nil
}
