// Package adminapi serves privguard's HTTP APIs on the admin listener: the consent ledger
// (notices, consent records, subject state and history, signed receipts), health and
// readiness.
//
// Every request is authenticated with a bearer token (see [Tokens]) and authorized by role
// (internal/authz); a refusal names the roles that would do. The exceptions carry their own
// credential or none: the public key set receipts are signed with and the JSON Schemas
// (published), an access package's download (its token) and webhook callbacks (their
// signature; their bodies, read before the signature can be checked, are bounded per
// sender and in total). Bodies are decoded strictly: unknown fields, a key twice in one
// object and a field spelled in another case are refused. Every error is an RFC 9457
// problem+json body with a stable type, the failing field where there is one, and no
// internal error text. Request logs name the route pattern, never the path, so that
// subject identifiers in paths never reach a log. A Server is safe for concurrent use.
package adminapi
