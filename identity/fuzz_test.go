package identity_test

import (
	"errors"
	"testing"

	"github.com/privguard/privguard/identity"
)

// Normalise takes untrusted input: it never panics, what it accepts it accepts again
// unchanged (normal forms are fixed points), and a refusal is always an *identity.Error.
func FuzzNormalise(f *testing.F) {
	for _, s := range []string{"+86 138-0013-8000", "13800138000", "008613800138000", "+1 (650) 253-0000", "A@B.CO", " x@y.z ",
		"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "dev\x00", "\xff", ""} {
		for _, t := range identity.Types {
			f.Add(string(t), s)
		}
	}
	f.Fuzz(func(t *testing.T, typ, value string) {
		norm, err := identity.Normalise(identity.Type(typ), value)
		if err != nil {
			var e *identity.Error
			if !errors.As(err, &e) {
				t.Fatalf("Normalise(%q, %q) error %v is not an *identity.Error", typ, value, err)
			}
			return
		}
		again, err := identity.Normalise(identity.Type(typ), norm)
		if err != nil || again != norm {
			t.Fatalf("Normalise(%q, %q) = %q, but Normalise of that = %q, %v", typ, value, norm, again, err)
		}
		_ = identity.Mask(identity.Type(typ), norm)
	})
}
