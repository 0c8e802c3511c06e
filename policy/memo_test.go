package policy

import (
	"context"
	"slices"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/privguard/privguard"
)

func smsInput(contacts int) privguard.Input {
	return privguard.Input{
		Subject: "cust-1", Purpose: "marketing.communications.sms", Regime: privguard.RegimePIPL, Channel: "sms",
		Categories: []privguard.DataCategory{"user.contact.phone_number"},
		Consent:    privguard.ConsentFacts{State: "given", Allowed: true, Reason: privguard.ReasonConsentGiven},
		Facts:      privguard.SubjectFacts{AgeBand: "18+", Contacts: contacts},
	}
}

func budget(n int) []privguard.Obligation {
	return []privguard.Obligation{{Kind: privguard.ObligeContactBudget, Remaining: n}}
}

// Counts below the channel's limit decide alike: one memo entry, the budget recomputed
// for each count; at the limit the decision changes, and a memoised allow is never
// answered over the limit.
func TestMemoKeysContactsByLimit(t *testing.T) {
	e, err := New(context.Background(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		contacts    int
		allow       bool
		obligations []privguard.Obligation
		evaluations uint64
	}{
		{contacts: 0, allow: true, obligations: budget(3), evaluations: 1},
		{contacts: 2, allow: true, obligations: budget(1), evaluations: 1}, // same entry
		{contacts: 1, allow: true, obligations: budget(2), evaluations: 1},
		{contacts: 3, evaluations: 2},                                      // crosses the limit
		{contacts: 9, evaluations: 2},                                      // over it: the at-limit entry
		{contacts: 2, allow: true, obligations: budget(1), evaluations: 2}, // back below
		{contacts: -1, allow: true, obligations: budget(4), evaluations: 2},
	}
	for _, s := range steps {
		d, err := e.Decide(context.Background(), smsInput(s.contacts))
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed() != s.allow {
			t.Errorf("contacts %d: Decide = %v %v; want allow %v", s.contacts, d.Effect, d.Reasons, s.allow)
		}
		if !s.allow && !slices.Contains(d.Reasons, privguard.ReasonFrequencyExceeded) {
			t.Errorf("contacts %d: reasons %v; want frequency.exceeded", s.contacts, d.Reasons)
		}
		if diff := cmp.Diff(s.obligations, d.Obligations); diff != "" {
			t.Errorf("contacts %d: obligations (-want +got):\n%s", s.contacts, diff)
		}
		if got := e.Stats().Evaluations; got != s.evaluations {
			t.Errorf("contacts %d: %d evaluations; want %d", s.contacts, got, s.evaluations)
		}
	}
	// The memo's own copy was not changed by the recomputed budgets.
	d, _ := e.Decide(context.Background(), smsInput(0))
	if diff := cmp.Diff(budget(3), d.Obligations); diff != "" {
		t.Errorf("contacts 0 after the others: obligations (-want +got):\n%s", diff)
	}
}

func TestMemoExactContacts(t *testing.T) {
	e, err := New(context.Background(), Config{MemoExactContacts: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 2, 1, 0} {
		d, _ := e.Decide(context.Background(), smsInput(n))
		if diff := cmp.Diff(budget(3-n), d.Obligations); diff != "" {
			t.Errorf("contacts %d: obligations (-want +got):\n%s", n, diff)
		}
	}
	if st := e.Stats(); st.Evaluations != 3 || st.MemoHits != 2 {
		t.Errorf("stats = %+v; want 3 evaluations, 2 hits", st)
	}
}

// A policy whose budget is not the limit minus the count is not memoised by bucket: its
// decisions are evaluated each time rather than answered stale.
func TestMemoRefusesABudgetItCannotRecompute(t *testing.T) {
	mod := `package privguard
decision := {"allow": true, "reasons": ["allow"], "obligations": [{"kind": "contact_budget", "remaining": 40 - input.subject.contacts}]}
`
	e, err := New(context.Background(), Config{Modules: map[string]string{"p.rego": mod}})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 0, 5, 5} {
		d, _ := e.Decide(context.Background(), smsInput(n))
		if diff := cmp.Diff(budget(40-n), d.Obligations); diff != "" {
			t.Errorf("contacts %d: obligations (-want +got):\n%s", n, diff)
		}
	}
	if st := e.Stats(); st.Evaluations != 5 {
		t.Errorf("stats = %+v; want every decision evaluated", st)
	}
}

// The memo grows when its working set is larger than it, not under a stream of inputs
// seen once, and stays within its byte bound.
func TestMemoAdapts(t *testing.T) {
	d := privguard.Decision{Effect: privguard.Allow, Reasons: []privguard.Reason{"allow"}}
	key := func(i int) []byte { return []byte("input-" + strconv.Itoa(i)) }
	fill := func(m *memo, i int) {
		if _, ok := m.get(key(i)); !ok {
			m.put(string(key(i)), d)
		}
	}

	cyclic := newMemo(64, DefaultMemoBytes)
	for range 20 {
		for i := range 1000 {
			fill(cyclic, i)
		}
	}
	if st := cyclic.stats(); st.size < 1000 {
		t.Errorf("cyclic working set of 1000: memo size %d (%+v); want it grown to hold them", st.size, st)
	}
	misses := 0
	for i := range 1000 {
		if _, ok := cyclic.get(key(i)); !ok {
			misses++
		}
	}
	if misses > 0 {
		t.Errorf("after growing, %d of the working set of 1000 missed", misses)
	}

	stream := newMemo(64, DefaultMemoBytes)
	for i := range 20000 {
		fill(stream, i)
	}
	if st := stream.stats(); st.size != 64 {
		t.Errorf("inputs seen once: memo size %d; want it left at 64", st.size)
	}

	const bound = 64 << 10
	small := newMemo(64, bound)
	for range 10 {
		for i := range 5000 {
			fill(small, i)
		}
	}
	if st := small.stats(); st.bytes > bound {
		t.Errorf("memo of %d bytes; want at most %d", st.bytes, bound)
	}
}

func TestMemoKeyIsCanonical(t *testing.T) {
	a, b := smsInput(0), smsInput(1)
	a.Categories = []privguard.DataCategory{"user.b", "user.a"}
	b.Categories = []privguard.DataCategory{"user.a", "user.b"}
	if ka, kb := appendMemoKey(nil, &a, contactsBelow, false), appendMemoKey(nil, &b, contactsBelow, false); string(ka) != string(kb) {
		t.Errorf("keys differ for the same categories in another order and counts below the limit")
	}
	// Length prefixes: moving a byte between adjacent fields changes the key.
	c, d := smsInput(0), smsInput(0)
	c.Role, c.Recipient = "ab", "c"
	d.Role, d.Recipient = "a", "bc"
	if kc, kd := appendMemoKey(nil, &c, contactsBelow, false), appendMemoKey(nil, &d, contactsBelow, false); string(kc) == string(kd) {
		t.Errorf("role/recipient %q/%q and %q/%q share a key", c.Role, c.Recipient, d.Role, d.Recipient)
	}
	if string(appendMemoKey(nil, &a, contactsBelow, false)) == string(appendMemoKey(nil, &a, contactsAtLimit, false)) {
		t.Error("the contacts bucket is not in the key")
	}
}

// A memoised decision costs one allocation (its id), a budget recomputed for another
// count below the limit one more (the obligations, copied).
func TestWarmDecisionAllocations(t *testing.T) {
	e, err := New(context.Background(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	same, other := smsInput(0), smsInput(1)
	if _, err := e.Decide(context.Background(), same); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		in   privguard.Input
		max  float64
	}{{"same_input", same, 1}, {"other_count_below_limit", other, 2}} {
		got := testing.AllocsPerRun(100, func() {
			if _, err := e.Decide(context.Background(), tc.in); err != nil {
				t.Fatal(err)
			}
		})
		if got > tc.max {
			t.Errorf("%s: %v allocations per memoised decision; want at most %v", tc.name, got, tc.max)
		}
	}
}
