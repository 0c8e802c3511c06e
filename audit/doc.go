// Package audit writes privguard's tamper-evident decision log: every enforcement decision
// becomes one JSON line carrying the decision id, the policy revision, the reason codes and
// obligations, and the input with the subject replaced by a keyed hash (HMAC-SHA256) and no
// other personal data. Each line carries the SHA-256 of the line before it, so [Verify] finds
// a removed, altered or reordered line (AUD-02).
//
// With [Config.Checkpoints] set, the active file is closed into numbered segments
// (decisions-000001.log, ...) at [Config.MaxSize]; the chain runs on across them, each
// closed segment is recorded in the journal log [CheckpointLog] (lines, first and last
// hash, time range), and whole segments older than [Config.Retention] (never under
// [MinRetention], AUD-03) are deleted, oldest first, the deletion recorded before the
// file goes. [VerifyDir] checks the files against each other and against those records;
// [Walk], [Query], [WriteCSV] and [Count] read the log back, checking the chain as they go.
//
// # Concurrency and failure
//
// [Log.Record] never blocks a request: events go through a bounded buffer to one writer
// goroutine; when the buffer is full the event is dropped and counted ([Log.Dropped]).
// Rotation, checkpoints and retention run on that goroutine. [Log.Close] flushes what is
// buffered and syncs the file. A checkpoint that cannot be written is logged and written
// at the next [Open], which also finishes a deletion a crash interrupted. The readers are
// safe beside the writer: they leave out a last line still being written and follow a
// rotation that happens while they read.
package audit
