// Package retention plans retention sweeps (PIPL Arts. 19 and 47(1), GDPR Art. 5(1)(e)):
// from the configured rules, the data map and the ledger's facts it decides, for one run,
// which rows and keys of each store are deleted, anonymised or cleared (dsar.SweepAction),
// which subjects are deleted whole (Deletion, carried out as ordinary deletion requests),
// and which subjects' categories move to storage and security only (Restriction).
//
// A value expires only when every rule covering its category has expired for it: data
// another purpose still needs is kept, and the Plan's Kept says so. A category no rule
// covers is kept indefinitely.
//
// The planner is pure: it reads the world only through Facts and each store's
// dsar.ActivityReader, and changes nothing; the dsar engine carries the Plan out. A Plan is
// deterministic for the same inputs (sorted). Planner.Plan is safe to call from several
// goroutines if Facts and the stores' readers are; an error from either ends the planning
// with nothing planned.
package retention
