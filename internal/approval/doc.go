// Package approval is dual control for bulk exports of personal data (SEC-07): an export
// above the configured size runs only once a second principal, not the one who asked,
// approved it. Every step — asked, approved, used — is an entry of the journal log
// "approvals", so the register is hash-chained like every journal log, and an approval's
// state is read back from the log, never held elsewhere.
//
// An approval binds what was asked: the act (the route), a digest of its parameters (the
// query or the body, never the personal data itself) and the principal who asked. It is
// used once, by that principal, for that act and digest, within [DefaultTTL] of the ask.
//
// # Concurrency
//
// Every change reads the log to its head, decides on the state it holds, and appends with
// [journal.Journal.AppendAfter] (a compare and swap on the head); if another process or
// goroutine appended meanwhile the change is decided again on the new state. So two
// approvals of one ask, or two uses of one approval, cannot both succeed, across the
// replicas of a shared store too.
//
// # Failure
//
// A store that cannot be read or written fails the call (the export does not run). A log
// whose chain is broken fails every call with the *journal.BreakError.
package approval
