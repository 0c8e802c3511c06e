// Package evidence writes and verifies evidence bundles an auditor checks offline: one zip
// file whose manifest.json names its kind (verifiers dispatch on it) and the SHA-256 of
// every other member.
//
// The consent evidence export ([Export], kind [ConsentKind]) holds the consent records of
// one subject, or of one purpose in a period with subjects as keyed pseudonyms; their
// signed receipts; counts of grants, withdrawals, expiries and refusals per day and
// purpose; an RFC 6962 Merkle inclusion proof of every record against a checkpoint of the
// ledger's head; the checkpoint, signed with the ledger's receipt key (Ed25519), which
// also covers the export's members; and that key. [VerifyConsent] checks all of it from
// the file alone.
//
// # Trust
//
// A bundle is verified against the key it carries: compare the key id and public key
// [VerifyConsent] reports with the ledger's (GET /v1/receipts/keys). In an export about one
// subject every record's encoding is included, and its hash recomputed; in a pseudonymous
// export the encoding (which names the subject) is not, and the record's fields are bound
// to its hash by its signed receipt.
//
// # Failure
//
// Export reads the ledger once, checking its chain as consent.Verify does; a break stops
// it with the *consent.Break. It writes sequentially, so an interrupted export is a
// truncated zip: write to a temporary file and rename it once Export returns. Open and
// VerifyConsent never panic on hostile input; what does not verify is a *[Failure]
// naming the member, line and record. Both are safe for concurrent use on distinct
// values.
package evidence
