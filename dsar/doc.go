// Package dsar carries out data subjects' requests (access, portability, correction,
// deletion, restriction, objection) across the downstream stores, with deadlines per
// regime, retries and proof.
//
// This first part holds the deadline engine: a GDPR request is due one calendar month after
// receipt (clamped to the month's end: 31 January → 28 or 29 February), extendable by up to
// two months with a reason recorded, and the subject told, within the first month (Art.
// 12(3)); a PIPL request is due, by default, 15 working days after receipt on China's
// working-day calendar (public holidays and adjusted working weekends, loaded from data),
// and never more than 30 calendar days (GB/T 35273 §8.7). The clock stops while the
// controller waits for the subject.
package dsar
