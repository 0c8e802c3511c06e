package config

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/go-playground/validator/v10"
)

// describe says in a sentence what the validation rule tag (with its param) wants of a field
// of the given kind, for example "must be one of pipl, gdpr" for oneof=pipl gdpr. It
// returns false for a tag it has no sentence for; a test walks File's tags so that a new tag
// cannot ship without one. Go field names in params (required_with=Listen) are given as the
// file's keys (listen).
func describe(tag, param string, kind reflect.Kind) (string, bool) {
	if parts := strings.Split(tag, "|"); len(parts) > 1 {
		var says []string
		for _, p := range parts {
			s, ok := describe(p, param, kind)
			if !ok {
				return "", false
			}
			says = append(says, s)
		}
		return strings.Join(says, ", or "), true
	}
	size := func(n string) string {
		switch kind {
		case reflect.String:
			return n + " characters"
		case reflect.Slice, reflect.Array, reflect.Map:
			return n + " entries"
		}
		return n
	}
	switch tag {
	case "required":
		return "is required", true
	case "required_with":
		return fmt.Sprintf("is required when %s is set", keyNames(param)), true
	case "required_without", "required_without_all":
		return fmt.Sprintf("is required unless %s is set", keyNames(param)), true
	case "required_if":
		field, value, _ := strings.Cut(param, " ")
		return fmt.Sprintf("is required when %s is %s", keyNames(field), value), true
	case "oneof":
		return "must be one of " + strings.Join(strings.Fields(param), ", "), true
	case "min":
		if kind == reflect.String || kind == reflect.Slice || kind == reflect.Map {
			return "must have at least " + size(param), true
		}
		return "must be at least " + param, true
	case "max":
		if kind == reflect.String || kind == reflect.Slice || kind == reflect.Map {
			return "must have at most " + size(param), true
		}
		return "must be at most " + param, true
	case "len":
		return "must have exactly " + size(param), true
	case "url":
		return "must be a URL such as https://vendor.example/privacy", true
	case "startswith":
		if param == "http" {
			return "must be an http:// or https:// URL", true
		}
		return fmt.Sprintf("must start with %q", param), true
	case "contains":
		return fmt.Sprintf("must contain %q", param), true
	case "cidr":
		return "must be a network in CIDR notation, such as 10.0.0.0/8 or 192.168.1.10/32", true
	case "listen_addr":
		return "must be host:port, such as 127.0.0.1:8080 (port 0 picks a free port)", true
	case "hexadecimal":
		return "must be hexadecimal (0-9, a-f)", true
	case "printascii":
		return "must be printable ASCII", true
	case "iso3166_1_alpha2":
		return "must be a two-letter ISO 3166-1 country code, such as CN, SG or DE", true
	case "name":
		return "must be letters, digits, - and _ only", true
	case "duration":
		return "must be a duration such as 168h or 30m", true
	}
	return "", false
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
	return ns + ": " + say
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
