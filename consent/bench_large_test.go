package consent_test

import "testing"

// BenchmarkCheckLarge is Check on the big fixture (1,000,000 subjects, or
// PRIVGUARD_BENCH_SUBJECTS): the list Audience uses (a quarter unknown), in its shuffled
// order, one subject after another, so that nearly every lookup misses the CPU caches.
func BenchmarkCheckLarge(b *testing.B) {
	b.ReportAllocs()
	if testing.Short() {
		b.Skip("builds a 1,000,000-subject ledger")
	}
	l := bigFix.ledger(b)
	list, _ := bigFix.audience()
	allowed := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		st, _ := l.Check(benchCtx, list[i%len(list)], smsPurpose)
		if st.Allowed {
			allowed++
		}
	}
	b.StopTimer()
	benchSinkKept.Add(int64(allowed))
}
