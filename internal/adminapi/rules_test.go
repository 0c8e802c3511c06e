package adminapi

import (
	"reflect"
	"strings"
	"testing"

	"github.com/privguard/privguard/internal/rules"
)

// TestEveryBodyRuleHasAMessage walks the validation tags of every request body, so that a
// rule without a sentence cannot ship (users would see "fails oneof=...").
func TestEveryBodyRuleHasAMessage(t *testing.T) {
	bodies := []any{noticeBody{}, consentBody{}, requestBody{}, extendBody{}, reasonBody{}, rejectBody{},
		approveBody{}, codeBody{}, identityBody{}, sealBody{}, openBody{}, indexBody{}}
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type, at string)
	walk = func(typ reflect.Type, at string) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] {
			return
		}
		seen[typ] = true
		for i := range typ.NumField() {
			f := typ.Field(i)
			for rule := range strings.SplitSeq(f.Tag.Get("validate"), ",") {
				tag, param, _ := strings.Cut(rule, "=")
				switch tag {
				case "", "omitempty", "dive", "keys", "endkeys":
					continue
				}
				if _, ok := rules.Describe(tag, param, f.Type.Kind(), snakeNames); !ok {
					t.Errorf("%s.%s: rule %q has no sentence in rules.Describe", at, f.Name, tag)
				}
			}
			walk(f.Type, at+"."+f.Name)
		}
	}
	for _, b := range bodies {
		walk(reflect.TypeOf(b), reflect.TypeOf(b).Name())
	}
	if got := snakeNames("Identity IdentityToken"); got != "identity or identity_token" {
		t.Errorf("snakeNames = %q", got)
	}
}

func TestValidationProblemSaysWhatIsAllowed(t *testing.T) {
	err := newValidator().Struct(&requestBody{Type: "delete", Subject: "x", Trigger: "retention_expired", Identity: &identityBody{Method: "operator"}})
	p := validationProblem(err)
	if p.Detail != "trigger: cannot be given together with identity or identity_token" || strings.Contains(p.Detail, "=") {
		t.Errorf("detail %q", p.Detail)
	}
	err = newValidator().Struct(&consentBody{Subject: "x", Action: "bogus"})
	if p := validationProblem(err); !strings.HasPrefix(p.Detail, "action: must be one of grant, withdraw") {
		t.Errorf("detail %q", p.Detail)
	}
}
