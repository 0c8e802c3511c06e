package dsartest

import (
	"context"
	"testing"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/dsar"
)

// ProfileSeeder prepares and inspects the derived data behind a dsar.Profiler, directly
// (not through it): one place of the store (a tag column, a segment set, a list key).
type ProfileSeeder interface {
	// SeedDerived stores value as one derived item of subject at the seeder's place (a
	// tag row, a membership of the segment set named by value, a list element).
	SeedDerived(ctx context.Context, subject privguard.SubjectID, value string) error
	// HoldsDerived reports whether the store still holds value on subject there.
	HoldsDerived(ctx context.Context, subject privguard.SubjectID, value string) (bool, error)
	// ItemValue is the DerivedItem.Value the connector lists a seeded value as (the value
	// itself, or the set's key for a membership).
	ItemValue(value string) string
}

// HostileValue is a tag text with SQL quotes, LIKE and glob wildcards and a newline: data,
// never a pattern or code.
const HostileValue = "O'Brien \"x\" 100% a_b *?[x]\n; DROP TABLE t; --"

// TagVariants are tag texts a store's comparison could fold into "vip" (case, a trailing
// space under PAD SPACE): erasing "vip" must leave them.
var TagVariants = []string{"VIP", "vip "}

// TestProfiler runs the profile suite against p, whose store s prepares: two subjects hold
// the same tag; listing shows the subject's items only, each once; erasing one of them
// removes it from the store for that subject alone (the other subject's identical tag, the
// subject's other tags and the variants stay); erasing again changes nothing; a hostile
// value is listed and erased as data. The store must hold no derived data for the subjects
// it uses ("dsartest-profile-a", "dsartest-profile-b").
func TestProfiler(t *testing.T, p dsar.Profiler, s ProfileSeeder) {
	t.Helper()
	ctx := context.Background()
	a, b := privguard.SubjectID("dsartest-profile-a"), privguard.SubjectID("dsartest-profile-b")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	aTags := append([]string{"vip", "churn-risk", HostileValue}, TagVariants...)
	for _, v := range aTags {
		must(s.SeedDerived(ctx, a, v))
	}
	must(s.SeedDerived(ctx, a, "vip")) // twice: still one item
	must(s.SeedDerived(ctx, b, "vip"))
	must(s.SeedDerived(ctx, b, HostileValue))

	find := func(subject privguard.SubjectID, value string) (dsar.DerivedItem, int) {
		t.Helper()
		items, err := p.Derived(ctx, subject)
		must(err)
		var found dsar.DerivedItem
		n := 0
		for _, it := range items {
			if !dsar.Derived(it.Category) {
				t.Errorf("Derived(%s) lists %s at %q: not a derived category", subject, it.Category, it.Where)
			}
			if it.Value == s.ItemValue(value) {
				found, n = it, n+1
			}
		}
		return found, n
	}
	holds := func(subject privguard.SubjectID, value string) bool {
		t.Helper()
		ok, err := s.HoldsDerived(ctx, subject, value)
		must(err)
		return ok
	}
	for _, v := range aTags {
		if _, n := find(a, v); n != 1 {
			t.Fatalf("Derived(a) lists %q %d times; want once", v, n)
		}
	}
	if _, n := find(b, "churn-risk"); n != 0 {
		t.Errorf("Derived(b) lists a's tag churn-risk")
	}

	vip, _ := find(a, "vip")
	x, err := p.EraseDerived(ctx, a, []dsar.DerivedItem{vip})
	must(err)
	if x.Items < 1 {
		t.Errorf("EraseDerived(a, vip) = %d items; want at least 1", x.Items)
	}
	if holds(a, "vip") {
		t.Errorf("after EraseDerived(a, vip) the store still holds vip on a")
	}
	if _, n := find(a, "vip"); n != 0 {
		t.Errorf("after EraseDerived(a, vip) Derived(a) still lists it")
	}
	if !holds(b, "vip") {
		t.Errorf("EraseDerived(a, vip) erased b's vip too")
	}
	for _, v := range append([]string{"churn-risk", HostileValue}, TagVariants...) {
		if !holds(a, v) {
			t.Errorf("EraseDerived(a, vip) erased a's %q too", v)
		}
	}
	x, err = p.EraseDerived(ctx, a, []dsar.DerivedItem{vip})
	must(err)
	if x.Items != 0 {
		t.Errorf("EraseDerived(a, vip) again = %d items; want 0 (idempotent)", x.Items)
	}

	hostile, n := find(a, HostileValue)
	if n != 1 {
		t.Fatalf("Derived(a) lists the hostile value %d times; want once", n)
	}
	_, err = p.EraseDerived(ctx, a, []dsar.DerivedItem{hostile})
	must(err)
	if holds(a, HostileValue) || !holds(b, HostileValue) || !holds(a, "churn-risk") {
		t.Errorf("EraseDerived(a, hostile): a holds it %v (want false), b holds it %v (want true), a's churn-risk %v (want true)",
			holds(a, HostileValue), holds(b, HostileValue), holds(a, "churn-risk"))
	}

	if _, err := p.EraseDerived(ctx, a, []dsar.DerivedItem{{Where: "dsartest-no-such-place", Value: "vip", Category: "user.derived.tags"}}); err == nil {
		t.Errorf("EraseDerived of a place outside the data map succeeded; want an error")
	}
	none, err := p.Derived(ctx, "dsartest-profile-nobody")
	must(err)
	if len(none) != 0 {
		t.Errorf("Derived(nobody) = %d items; want none", len(none))
	}
}
