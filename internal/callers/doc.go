// Package callers is the sidecar's register of callers: the services — entrusted
// processors such as an SMS gateway or an agency (PIPL Art. 21, GDPR Art. 28) — that call
// through privguard with a credential of their own (middleware.CallerHeader), each scoped
// to the purposes of its contract. A caller's credential is held as a SHA-256 hash.
//
// Ending a contract ([Registry.Terminate], `privguard callers terminate NAME`, or
// terminated_at in the configuration) revokes the credential at once — the middleware then
// answers 401 — and opens the processor's deletion confirmation, awaited until the
// controller records it ([Registry.Confirm]: the processor's acknowledgment that it
// deleted or returned the data). Terminations and confirmations are entries of the journal
// log "callers", hash-chained like every journal log and shared by the replicas of a
// shared store.
//
// # Concurrency
//
// [Registry.Caller] is on the request path: a map lookup and a read-locked check of the
// revoked set. Changes read the log to its head and append with
// [journal.Journal.AppendAfter], deciding again when the head moved, so a caller is
// terminated and confirmed once. Another replica's change is seen at the next
// [Registry.Refresh] (serve refreshes every [RefreshInterval]); a termination through
// this process is seen at once.
//
// # Failure
//
// A log that cannot be read fails Open and Refresh; the revoked set is never shrunk by a
// failed refresh, so a credential once revoked stays revoked.
package callers
