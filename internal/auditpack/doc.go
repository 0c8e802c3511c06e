// Package auditpack builds the DPO's audit pack (AUD-06; PIPL Arts. 54, 64, the Audit
// Measures): one signed zip for a period holding the evidence privguard keeps — the record
// of processing, the request register with its timeliness, the disclosure and cross-border
// registers, the impact assessments, the admin trail and its key events, the heads of every
// chain — and a report in Chinese and English with charts drawn from the same figures.
//
// # Shape
//
// A pack is a zip of members written one after the other by [Sections], each streamed
// through a SHA-256, then summary.json (the figures the report shows), the two reports,
// and last manifest.json (kind, period, the chain heads it was made at, every member's
// name, size and digest) with manifest.sig, the Ed25519 signature of manifest.json's exact
// bytes by the ledger's receipt key (the key GET /v1/receipts/keys publishes). [Verify]
// checks a pack offline, from the file alone: the signature, every member against the
// manifest, no member left out or added, the summary against its schema, and the request
// figures recomputed from requests.csv.
//
// # Reproducible
//
// Members are written in a fixed order with the zip times set to the pack's as-of time,
// which is the end of the period (or the moment of packing, to the second, if the period
// has not ended); nothing else reads the clock. Two packs of the same period made at the
// same chain heads are byte-identical, signature included (Ed25519 is deterministic).
//
// # Nothing names a subject
//
// The registers in a pack name no subject: requests by id, disclosures and the trail by
// keyed hashes. The pack is evidence about processing, not about a person.
package auditpack
