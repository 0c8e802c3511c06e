// Package pgstore is privguard's shared storage on PostgreSQL: the consent ledger, the
// vault's wrapped keys and tombstones, data-subject requests and their packages, and the
// small secrets, in one schema of their own (default "privguard"), so that several
// privguard processes serve one state. It implements every store interface boltstore
// does, plus consent.SharedStore and vault.SharedStore.
//
// It is, with connector/postgres, the only package that imports pgx, and the only one that
// imports goose. [Open] connects a pgxpool; the schema is created and migrated by [Migrate]
// (or by Open with Options.Migrate), with embedded, versioned SQL files (migrations/); a
// PostgreSQL advisory lock makes replicas that start together migrate once. A binary
// refuses a schema newer than it knows.
//
// # Concurrency
//
// A DB is safe for concurrent use, and any number of processes may use one schema at once.
// Consent commits are serialised across processes on the chain head's row: each takes the
// row lock, checks the head is the batch's base (else consent.ErrHeadMoved, nothing
// written), writes and advances it, and sends a NOTIFY, all in one transaction sent in one
// round trip. [ConsentStore.Changes] is fed by a dedicated LISTEN connection that
// reconnects by itself. Notices and tombstones carry increasing cursors in commit order
// (their inserts are serialised), so that a follower reading "after cursor" misses none.
// Data-subject requests are shared through leases ([DSARStore] is a dsar.Leaser,
// dsar/LEASES.md): replicas lease due requests with FOR UPDATE SKIP LOCKED, so that none
// is held by two at once, and every write is version-checked, the lease holder's also
// fenced by its lease.
//
// # Caveats
//
// Durability is the database's: a commit returns once PostgreSQL has committed it, which is
// on disk with synchronous_commit on (the default; Open warns if it is off). Queries name
// tables unqualified and the connections' search_path is the schema, so a connection
// pooler in front must run in session mode (which LISTEN needs as well). Deleted rows
// (shredded keys, downloaded packages) stay in the table files until VACUUM reuses the
// space, and in WAL archives and backups: the vault's crypto-shredding, not deletion, is
// what makes them unreadable.
package pgstore
