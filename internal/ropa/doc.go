// Package ropa generates the record of processing activities (GDPR Art. 30(1); PIPL
// Art. 55 and GB/T 35273 §11.3) from the configuration privguard enforces: the taxonomy
// the configuration builds (the built-in purposes and categories with those it declares),
// its routes, the data map of its stores, its recipients and the facts it declares for the
// record (controller, DPO, and per purpose the owner, systems, sources, subjects, scale,
// scenario, retention). Nothing comes from a list kept apart from the configuration, so
// the record cannot drift from what is enforced: a purpose, a route or a recipient added
// to the file is in the next record, and one removed is gone.
//
// [Build] makes a [Record]: one [Activity] per purpose in use (named by a route, declared
// under purposes:, overridden under consent.purposes or named by a recipient), with what
// it may lawfully process, what its routes and stores actually touch, who receives it and
// where, how long it is kept and how it is protected. A fact the configuration does not
// declare is not invented: its field stays empty and the record lists it as a [Gap]
// ("not declared"). [Record.WriteJSON] (docs/ropa.schema.json), [Record.WriteCSV] (UTF-8
// with a byte order mark, bilingual headings, one row per activity and recipient, cells
// defused against formula injection) and [Record.WriteHTML] (zh or en, printable) render
// it.
//
// # Caveats
//
// The record describes what the configuration enforces through privguard: processing
// that bypasses privguard (a service reading a database directly) is in it only as far as
// the stores' data map and the declared facts say. Build reads the configuration only; it
// is safe for concurrent use and does no I/O.
package ropa
