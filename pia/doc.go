// Package pia keeps the register of impact assessments: the personal information
// protection impact assessments of PIPL Arts. 55-56 and the data protection impact
// assessments of GDPR Art. 35 that privguard's policy enforces (the policy denies
// high-impact processing that no current assessment covers; see policy.Assessment).
//
// The configuration declares the assessments in force. Because it changes, and assessments
// must be kept for at least three years (PIPL Art. 56; AUD-03), [Registry.Record] appends
// every version it is given that is new or changed to the journal log "assessments", and a
// removal for one the configuration no longer declares: a removed or replaced assessment
// stays in the register with its full text. [Registry.Register] reads the log back, checks
// its hash chain, and lists every version with its status today (current, due_for_review,
// expired, rejected, pending, superseded, removed).
//
// # Concurrency
//
// A Registry is safe for concurrent use. Replicas that start together may each record the
// same version; the register counts a repeated record of the version already in force once.
//
// # Failure
//
// Record appends all its entries or none. Register reports a broken chain in
// [Register.Log] rather than failing, and uses only the entries before the break.
package pia
