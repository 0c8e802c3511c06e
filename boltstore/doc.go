// Package boltstore is privguard's embedded default storage: one bbolt file holding the
// consent ledger (and, as they arrive, vault keys, data-subject requests and the audit log),
// so that `privguard serve` needs no other service.
//
// It is the only package that imports bbolt. [Open] takes an exclusive file lock: one
// process at a time owns the file, and a second Open waits up to [Options.LockTimeout] and
// then fails. Every commit is fsynced before it returns.
//
// # Caveats
//
// bbolt never shrinks its file and keeps freed pages' old bytes until they are reused;
// nothing in the consent ledger is ever deleted, so this matters only to later users (vault
// shredding compacts the file). A process crash loses no committed transaction; a torn
// write of the last transaction is rolled back by bbolt's meta-page checksums.
package boltstore
