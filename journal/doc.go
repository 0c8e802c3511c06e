// Package journal keeps the DPO's registers as append-only, hash-chained logs of JSON
// entries in the same store as the consent ledger: the admin trail, the disclosure log,
// the incident register, the impact-assessment register. Each named log is a chain of its
// own: entry n stores the SHA-256 of entry n-1, and its own hash covers its log, sequence
// number, time, predecessor and body, so that an altered, removed or reordered entry is
// found by [Verify]. It also keeps sets of keyed hashes ([SetStore]) for counts of distinct
// people (the cross-border accounting), which never hold an identifier.
//
// # Concurrency
//
// A [Journal] serialises its own appends; several processes on a shared store append to
// the same log through a head check ([Store.AppendJournal] refuses entries that do not
// follow the stored head with [ErrHeadMoved]) and Append retries on the new head, so every
// entry is written once, in one total order.
//
// # Failure
//
// An append either stores all its entries or none. Bodies are stored byte for byte as
// encoded (the hash covers those bytes), never re-encoded by a store.
package journal
