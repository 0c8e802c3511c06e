// Package rules says in a sentence what a go-playground/validator rule wants of a field, so
// that neither the configuration file's errors nor the admin API's show users tag syntax
// ("fails oneof=pipl gdpr"). Standard library only.
package rules

import (
	"fmt"
	"reflect"
	"strings"
)

// Describe says in a sentence what the validation rule tag (with its param) wants of a field
// of the given kind, for example "must be one of pipl, gdpr" for oneof=pipl gdpr. It
// returns false for a tag it has no sentence for (callers' tests walk their structs' tags,
// so that a new tag cannot ship without one). key names the Go fields a param refers to
// (required_with=Listen) as the caller's users know them (listen).
func Describe(tag, param string, kind reflect.Kind, key func(goNames string) string) (string, bool) {
	if parts := strings.Split(tag, "|"); len(parts) > 1 {
		var says []string
		for _, p := range parts {
			s, ok := Describe(p, param, kind, key)
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
		return fmt.Sprintf("is required when %s is set", key(param)), true
	case "required_without", "required_without_all":
		return fmt.Sprintf("is required unless %s is set", key(param)), true
	case "required_if":
		field, value, _ := strings.Cut(param, " ")
		return fmt.Sprintf("is required when %s is %s", key(field), value), true
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
		return "must be a URL with its scheme, such as http://127.0.0.1:9000 or https://vendor.example/privacy", true
	case "startswith":
		if param == "http" {
			return "must be an http:// or https:// URL", true
		}
		return fmt.Sprintf("must start with %q", param), true
	case "contains":
		return fmt.Sprintf("must contain %q", param), true
	case "cidr":
		return "must be a network in CIDR notation, such as 10.0.0.0/8 or 192.168.1.10/32", true
	case "host_port":
		return "must be host:port, such as 127.0.0.1:6379", true
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
	case "excluded_with":
		return fmt.Sprintf("cannot be given together with %s", key(param)), true
	case "ip":
		return "must be an IPv4 or IPv6 address", true
	case "numeric":
		return "must be digits only", true
	case "bcp47_language_tag":
		return "must be a BCP 47 language tag, such as zh-CN or en", true
	}
	return "", false
}
