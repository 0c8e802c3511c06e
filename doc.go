// Package privguard is the shared vocabulary of the privguard privacy and consent compliance
// layer: subjects, purposes, data categories, legal bases, regimes, policy inputs and
// decisions, problem details and the sentinel errors every other package returns.
//
// The package imports only the standard library, so that every other package (the consent
// ledger, the policy engine, the vault, the HTTP middleware) can depend on it without pulling
// in OPA, Tink, bbolt or a database driver. A repository test keeps it that way.
//
// Values of [SubjectID] identify a person and are personal data: they redact themselves when
// logged through log/slog and must never be written to a log any other way.
package privguard
