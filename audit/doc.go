// Package audit writes privguard's tamper-evident decision log: every enforcement decision
// becomes one JSON line carrying the decision id, the policy revision, the reason codes and
// obligations, and the input with the subject replaced by a keyed hash (HMAC-SHA256) and no
// other personal data. Each line carries the SHA-256 of the line before it, so [Verify] finds
// a removed, altered or reordered line (AUD-02).
//
// # Concurrency and failure
//
// [Log.Record] never blocks a request: events go through a bounded buffer to one writer
// goroutine; when the buffer is full the event is dropped and counted ([Log.Dropped]).
// [Log.Close] flushes what is buffered and syncs the file.
package audit
