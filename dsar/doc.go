// Package dsar carries out data subjects' requests (access, portability, correction,
// deletion, restriction, objection) across the downstream stores, with deadlines per
// regime, retries and proof. It also lists the tags, segments and scores the stores hold on
// a subject ([Engine.Profile], through stores that are a [Profiler]) and erases the ones the
// subject picks as a narrow request of its own ([TypeTagDeletion]), which never erases the
// subject.
//
// This first part holds the deadline engine: a GDPR request is due one calendar month after
// receipt (clamped to the month's end: 31 January → 28 or 29 February), extendable by up to
// two months with a reason recorded, and the subject told, within the first month (Art.
// 12(3)); a PIPL request is due, by default, 15 working days after receipt on China's
// working-day calendar (public holidays and adjusted working weekends, loaded from data),
// and never more than 30 calendar days (GB/T 35273 §8.7). The clock stops while the
// controller waits for the subject.
//
// # Replicas
//
// Alone with its store (bbolt's), an [Engine] is the only writer of its requests. On a
// store with the [Leaser] capability (PostgreSQL's), every replica runs an engine: each
// request is held by one replica at a time through a lease that its work renews, a
// request whose lease is lost has its work cancelled and its round dropped, and a killed
// replica's requests are taken over once their leases lapse. Store tasks can run again
// after a crash or a takeover (connectors are idempotent), but not on two replicas at
// once, provided the replicas' clocks agree within a third of Config.LeaseTTL and connectors
// stop when their context ends.
package dsar
