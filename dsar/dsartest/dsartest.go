// Package dsartest is the conformance suite every data-subject-request connector passes:
// export returns exactly the subject's data, erasure removes only the subject's data, every
// operation is idempotent, not found is not an error, and hostile subject ids (SQL, globs,
// wildcards) are just data. A connector that erases in batches (dsar.BatchEraser) passes
// the same for a batch.
//
// It also holds what a request store shared by replicas (dsar.Leaser) is tested with:
// SharedStore, the in-memory reference of dsar/LEASES.md, and TestLeaser, the engine's
// tests on several replicas that every such store passes.
package dsartest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/dsar"
)

// Seeder prepares and inspects the store behind a connector, directly (not through it).
type Seeder interface {
	// Seed stores n items of personal data for subject, each holding value somewhere.
	Seed(ctx context.Context, subject privguard.SubjectID, n int, value string) error
	// Remaining counts the subject's items that still hold personal data.
	Remaining(ctx context.Context, subject privguard.SubjectID) (int, error)
}

// Hostile subject ids: each must be treated as an ordinary id.
var Hostile = []privguard.SubjectID{"x'--", "a%", "profile:*", "seg?", "o'brien@example.com", "x_y"}

// Folded is a subject id, and Variants are other subjects' ids that a store's comparison
// could fold into it: another case, an accent, a trailing space (a PAD SPACE collation), a
// leading zero (a number column). A store may hold the variants (they were written by
// something other than privguard); an operation on Folded must never touch them.
var (
	Folded   privguard.SubjectID = "dsartest-case-1"
	Variants                     = []privguard.SubjectID{"DSARTEST-CASE-1", "dsartest-Case-1", "dsartest-cäse-1", "dsartest-case-1 ", "dsartest-case-01"}
)

// TestConnector runs the suite against c, whose store s prepares. The store must hold no
// data for the subjects the suite uses (it uses ids prefixed with "dsartest-").
func TestConnector(t *testing.T, c dsar.Connector, s Seeder) {
	t.Helper()
	ctx := context.Background()
	a, b := privguard.SubjectID("dsartest-a"), privguard.SubjectID("dsartest-b")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Seed(ctx, a, 3, "value-of-a"))
	must(s.Seed(ctx, b, 2, "value-of-b"))
	for _, h := range Hostile {
		must(s.Seed(ctx, h, 1, "value-of-hostile"))
	}
	must(s.Seed(ctx, Folded, 2, "value-of-folded"))
	for _, v := range Variants {
		must(s.Seed(ctx, v, 1, "value-of-variant"))
	}
	remaining := func(subject privguard.SubjectID) int {
		t.Helper()
		n, err := s.Remaining(ctx, subject)
		must(err)
		return n
	}

	t.Run("export_is_exactly_the_subject", func(t *testing.T) {
		e, err := c.Export(ctx, a)
		must(err)
		if e.Store != c.Name() || e.Rows() == 0 {
			t.Fatalf("Export(a) = %d rows from %q; want a's rows from %q", e.Rows(), e.Store, c.Name())
		}
		text := fmt.Sprint(e.Tables)
		if !strings.Contains(text, "value-of-a") || strings.Contains(text, "value-of-b") || strings.Contains(text, "hostile") {
			t.Errorf("Export(a) = %s; want a's data only", text)
		}
	})
	t.Run("unknown_subject_is_not_an_error", func(t *testing.T) {
		e, err := c.Export(ctx, "dsartest-nobody")
		if err != nil || e.Rows() != 0 {
			t.Errorf("Export(nobody) = %d rows, %v; want none and no error", e.Rows(), err)
		}
		if r, err := c.Erase(ctx, "dsartest-nobody"); err != nil || r.Items != 0 {
			t.Errorf("Erase(nobody) = %+v, %v; want nothing and no error", r, err)
		}
	})
	t.Run("hostile_ids_are_data", func(t *testing.T) {
		for _, h := range Hostile {
			e, err := c.Export(ctx, h)
			must(err)
			if text := fmt.Sprint(e.Tables); strings.Contains(text, "value-of-a") || strings.Contains(text, "value-of-b") {
				t.Errorf("Export(%q) returned other subjects' data", h)
			}
		}
		for _, h := range Hostile {
			_, err := c.Erase(ctx, h)
			must(err)
			if n := remaining(h); n != 0 {
				t.Errorf("Erase(%q) left %d items", h, n)
			}
		}
		if remaining(a) == 0 || remaining(b) == 0 {
			t.Fatal("erasing hostile ids erased other subjects' data")
		}
	})
	t.Run("ids_differing_by_case_accent_or_space_are_other_subjects", func(t *testing.T) {
		e, err := c.Export(ctx, Folded)
		must(err)
		if text := fmt.Sprint(e.Tables); !strings.Contains(text, "value-of-folded") || strings.Contains(text, "value-of-variant") {
			t.Errorf("Export(%q) = %s; want its own rows and none of %q", Folded, text, Variants)
		}
		before := map[privguard.SubjectID]int{}
		for _, v := range Variants {
			before[v] = remaining(v)
		}
		if r, ok := c.(dsar.Rectifier); ok {
			if cats := categoriesOf(e); len(cats) > 0 {
				_, err := r.Correct(ctx, Folded, map[privguard.DataCategory]string{cats[0]: "corrected-folded"})
				must(err)
				for _, v := range Variants {
					if e, _ := c.Export(ctx, v); strings.Contains(fmt.Sprint(e.Tables), "corrected-folded") {
						t.Errorf("Correct(%q) changed %q", Folded, v)
					}
				}
			}
		}
		_, err = c.Erase(ctx, Folded)
		must(err)
		if n := remaining(Folded); n != 0 {
			t.Errorf("Erase(%q) left %d items", Folded, n)
		}
		for _, v := range Variants {
			if n := remaining(v); n != before[v] || n == 0 {
				t.Errorf("Erase(%q) changed %q: %d -> %d items", Folded, v, before[v], n)
			}
		}
	})
	if r, ok := c.(dsar.Rectifier); ok {
		t.Run("correct", func(t *testing.T) {
			e, err := c.Export(ctx, b)
			must(err)
			var cat privguard.DataCategory
			for _, tb := range e.Tables {
				for _, c := range tb.Categories {
					cat = c
					break
				}
				if cat != "" {
					break
				}
			}
			n, err := r.Correct(ctx, b, map[privguard.DataCategory]string{cat: "corrected-b"})
			if err != nil || n == 0 {
				t.Fatalf("Correct(b) = %d, %v; want changes", n, err)
			}
			e, _ = c.Export(ctx, b)
			if !strings.Contains(fmt.Sprint(e.Tables), "corrected-b") {
				t.Errorf("after Correct: %v", e.Tables)
			}
			if _, err := r.Correct(ctx, b, map[privguard.DataCategory]string{"user.unknown.category": "x"}); err == nil {
				t.Error("Correct with an unknown category was accepted")
			}
		})
	}
	t.Run("erase_only_the_subject_and_idempotent", func(t *testing.T) {
		before := remaining(b)
		r, err := c.Erase(ctx, a)
		must(err)
		if r.Items == 0 {
			t.Errorf("Erase(a) changed nothing")
		}
		if n := remaining(a); n != 0 {
			t.Errorf("after Erase(a), %d of a's items remain", n)
		}
		if n := remaining(b); n != before {
			t.Errorf("Erase(a) changed b: %d -> %d items", before, n)
		}
		r, err = c.Erase(ctx, a)
		if err != nil || r.Items != 0 {
			t.Errorf("second Erase(a) = %+v, %v; want nothing changed and no error", r, err)
		}
		e, err := c.Export(ctx, a)
		must(err)
		if text := fmt.Sprint(e.Tables); strings.Contains(text, "value-of-a") {
			t.Errorf("a's data is still exported after erasure: %s", text)
		}
	})
	if be, ok := c.(dsar.BatchEraser); ok {
		t.Run("erase_batch_only_the_subjects_and_idempotent", func(t *testing.T) {
			batch := []privguard.SubjectID{"dsartest-batch-1", "dsartest-batch-*", "dsartest-batch-2"}
			other := privguard.SubjectID("DSARTEST-BATCH-1")
			for _, id := range batch {
				must(s.Seed(ctx, id, 2, "value-of-batch"))
			}
			must(s.Seed(ctx, other, 2, "value-of-variant"))
			beforeB, beforeOther := remaining(b), remaining(other)
			// An unknown subject and a repeated one: nothing more to erase, nothing counted.
			subjects := append(slices.Clone(batch), "dsartest-nobody", batch[0])
			r, err := be.EraseBatch(ctx, subjects)
			must(err)
			if len(r) != len(subjects) {
				t.Fatalf("EraseBatch(%d subjects) = %d results", len(subjects), len(r))
			}
			for i, id := range batch {
				if r[i].Items == 0 {
					t.Errorf("EraseBatch: %q changed nothing", id)
				}
				if n := remaining(id); n != 0 {
					t.Errorf("after EraseBatch, %d of %q's items remain", n, id)
				}
			}
			if r[3].Items != 0 || r[4].Items != 0 {
				t.Errorf("EraseBatch counted %d for an unknown subject and %d for a repeated one; want 0", r[3].Items, r[4].Items)
			}
			if n := remaining(b); n != beforeB {
				t.Errorf("EraseBatch changed b: %d -> %d items", beforeB, n)
			}
			if n := remaining(other); n != beforeOther {
				t.Errorf("EraseBatch changed %q: %d -> %d items", other, beforeOther, n)
			}
			// Data written after a batch, where the subject was and in new places, is found
			// by the next one: nothing the first learned is reused.
			must(s.Seed(ctx, batch[0], 4, "value-of-batch-again"))
			r, err = be.EraseBatch(ctx, batch[:1])
			must(err)
			if n := remaining(batch[0]); n != 0 || r[0].Items == 0 {
				t.Errorf("EraseBatch after new data = %+v, %d items remain; want it erased", r, n)
			}
			r, err = be.EraseBatch(ctx, batch)
			must(err)
			for i, x := range r {
				if x.Items != 0 {
					t.Errorf("second EraseBatch changed %d items of %q; want none", x.Items, batch[i])
				}
			}
			if r, err := be.EraseBatch(ctx, nil); err != nil || len(r) != 0 {
				t.Errorf("EraseBatch(nil) = %v, %v; want nothing", r, err)
			}
		})
	}
}

// categoriesOf returns the data categories of an export's tables, sorted.
func categoriesOf(e dsar.Export) []privguard.DataCategory {
	var out []privguard.DataCategory
	for _, tb := range e.Tables {
		for _, c := range tb.Categories {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
