// Package adminapi serves privguard's HTTP APIs on the admin listener: the consent ledger
// (notices, consent records, subject state and history, signed receipts), health and
// readiness.
//
// Every request is authenticated with a bearer token (see [Tokens]); the only exception is
// the public key set receipts are signed with, which exists to be published. Every error is
// an RFC 9457 problem+json body with a stable type, the failing field where there is one,
// and no internal error text. Request logs name the route pattern, never the path, so that
// subject identifiers in paths never reach a log.
package adminapi
