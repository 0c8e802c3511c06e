package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/privguard/privguard"
)

var errMalformed = errors.New("malformed decision")

// resultKeys are the keys of the decision document.
type resultKeys struct {
	allow, reasons, obligations, kind, categories, remaining, assessment *ast.Term
}

func newResultKeys() resultKeys {
	k := ast.StringTerm
	return resultKeys{allow: k("allow"), reasons: k("reasons"), obligations: k("obligations"), kind: k("kind"),
		categories: k("categories"), remaining: k("remaining"), assessment: k("assessment")}
}

// parseDecision reads {allow, reasons, obligations} from the policy's result, as an AST
// value (no conversion to maps first). What it accepts and how it reads it is what the
// engine did with OPA's JSON form: reasons and categories keep their strings, an array or
// a set may hold them, a non-integer or missing remaining is 0.
func (k *resultKeys) parseDecision(v ast.Value) (privguard.Decision, error) {
	m, ok := v.(ast.Object)
	if !ok {
		return privguard.Decision{}, errMalformed
	}
	allow, ok := get(m, k.allow).(ast.Boolean)
	if !ok {
		return privguard.Decision{}, fmt.Errorf("%w: allow is not a boolean", errMalformed)
	}
	d := privguard.Decision{Effect: privguard.Deny}
	if allow {
		d.Effect = privguard.Allow
	}
	_ = each(get(m, k.reasons), func(t *ast.Term) error {
		if s, ok := t.Value.(ast.String); ok {
			d.Reasons = append(d.Reasons, privguard.Reason(s))
		}
		return nil
	})
	if !allow && len(d.Reasons) == 0 {
		return privguard.Decision{}, fmt.Errorf("%w: a deny without reasons", errMalformed)
	}
	if a, ok := get(m, k.assessment).(ast.String); ok {
		d.Assessment = string(a)
	}
	err := each(get(m, k.obligations), func(t *ast.Term) error {
		om, ok := t.Value.(ast.Object)
		if !ok {
			return fmt.Errorf("%w: obligation is not an object", errMalformed)
		}
		kind, _ := get(om, k.kind).(ast.String)
		ob := privguard.Obligation{Kind: privguard.ObligationKind(kind)}
		_ = each(get(om, k.categories), func(c *ast.Term) error {
			if s, ok := c.Value.(ast.String); ok {
				ob.Categories = append(ob.Categories, privguard.DataCategory(s))
			}
			return nil
		})
		if r, ok := get(om, k.remaining).(ast.Number); ok {
			if n, ok := r.Int(); ok {
				ob.Remaining = n
			}
		}
		d.Obligations = append(d.Obligations, ob)
		return nil
	})
	if err != nil {
		return privguard.Decision{}, err
	}
	slices.SortFunc(d.Obligations, func(a, b privguard.Obligation) int { return strings.Compare(string(a.Kind), string(b.Kind)) })
	return d, nil
}

func get(o ast.Object, k *ast.Term) ast.Value {
	if t := o.Get(k); t != nil {
		return t.Value
	}
	return nil
}

// each calls f for the elements of an array or a set (in the order OPA's JSON conversion
// lists them); anything else has none.
func each(v ast.Value, f func(*ast.Term) error) error {
	switch v := v.(type) {
	case *ast.Array:
		for i := range v.Len() {
			if err := f(v.Elem(i)); err != nil {
				return err
			}
		}
	case ast.Set:
		return v.Iter(f)
	}
	return nil
}
