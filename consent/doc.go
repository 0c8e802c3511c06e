// Package consent is privguard's consent ledger: an append-only, hash-chained log of every
// consent grant, refusal, withdrawal and expiry and of the subject-level facts the policy
// needs (restriction, objection to direct marketing, personalisation off, Global Privacy
// Control opt-out, age band with guardian consent), together with the versioned notices the
// grants cite.
//
// # Proof
//
// Every [Record] carries the hash of the record before it and its own SHA-256 hash over its
// stored encoding (protobuf wire format, see codec.go), so that [Verify] can name the first
// record that was altered, removed or reordered. Records are never updated: a withdrawal is
// a new record. [Ledger.Receipt] renders a record as a signed Kantara v1.1 / ISO/IEC TS 27560
// consent receipt a subject can keep.
//
// # Speed and concurrency
//
// The current state (subject x purpose) is held in memory, rebuilt from the [Store] by [Open],
// so [Ledger.Check] is a lock-shared map lookup that does not allocate, and
// [Ledger.Audience] filters a list of subjects in one pass. All methods are safe for
// concurrent use.
//
// Writes go through one writer goroutine that group-commits whatever is waiting: every
// record waiting when a commit starts goes into the next transaction, which is fsynced before
// any of its writers is answered. A write is therefore acknowledged only once it is durable,
// the chain order is the commit order, and 64 concurrent writers pay for one fsync per group
// rather than one each. The in-memory state changes only after the commit, so a withdrawal
// takes effect on the very next Check after [Ledger.Append] returns.
//
// # Failure
//
// If a commit fails, every write in its group fails and nothing of it is applied, in the
// store or in memory. Validation errors wrap [privguard.ErrInvalid] and are [*FieldError]
// values naming the field and a stable code; a store failure wraps
// [privguard.ErrUnavailable]. After [Ledger.Close], writes return [privguard.ErrClosed].
// [Ledger.Ping], the readiness check, reports whether the store can commit: its latest
// write (a commit, or a probe after [ProbeInterval] idle or a failed commit) succeeded.
package consent
