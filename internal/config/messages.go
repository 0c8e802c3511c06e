package config

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/go-playground/validator/v10"

	"github.com/privguard/privguard/internal/rules"
)

// describe is rules.Describe with the file's keys for Go field names.
func describe(tag, param string, kind reflect.Kind) (string, bool) {
	return rules.Describe(tag, param, kind, keyNames)
}

// echoValue lists the rules whose failing value is shown in the message: enumerations, whose
// values are names, never secrets (a DSN or a URL may hold a password, so those are not).
func echoValue(tag string) bool { return tag == "oneof" }

// message turns a validation error into "path: sentence".
func message(fe validator.FieldError) string {
	ns := fe.Namespace()
	if _, rest, ok := strings.Cut(ns, "."); ok {
		ns = rest
	}
	say, ok := describe(fe.Tag(), fe.Param(), fe.Kind())
	if !ok {
		// Unreachable while TestEveryRuleHasAMessage passes; never show the raw tag text.
		say = "is not valid"
	}
	if echoValue(fe.Tag()) {
		if v, isString := fe.Value().(string); isString {
			return fmt.Sprintf("%s: %q is not allowed; %s", ns, v, say)
		}
	}
	return ns + ": " + say + assessmentHint(ns, fe.Tag()) + decisionLogHint(ns, fe.Tag())
}

// keyNames maps the Go field names in a rule's param to the file's keys (Listen -> listen).
func keyNames(goNames string) string {
	var out []string
	for _, n := range strings.Fields(goNames) {
		out = append(out, yamlKey(reflect.TypeFor[File](), n, map[reflect.Type]bool{}))
	}
	return strings.Join(out, " or ")
}

// yamlKey finds the YAML key of the struct field called goName in t or the structs under
// it; goName itself if there is none.
func yamlKey(t reflect.Type, goName string, seen map[reflect.Type]bool) string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] {
		return goName
	}
	seen[t] = true
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Name == goName {
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			return name
		}
	}
	for i := range t.NumField() {
		if k := yamlKey(t.Field(i).Type, goName, seen); k != goName {
			return k
		}
	}
	return goName
}
