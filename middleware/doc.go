// Package middleware enforces purpose limitation on existing net/http handlers: it finds the
// route's purpose and data categories and the subject (or the batch of subjects) a request
// is about, asks a [Decider] with the facts a [FactsReader] holds, and then denies
// (403 problem+json with reason codes), or calls the handler: with the batch filtered down
// to the subjects that may be contacted, with the decision in the request context, and with
// the JSON response minimised (fields dropped or masked) as the decision's obligations say.
//
// It imports only the root package and the standard library; the policy engine and the
// consent ledger are plugged in through the two small interfaces it declares.
//
// # Failure
//
// It fails closed: when no decision can be made (the decider or the facts reader errs or
// times out) the request gets 503 and the handler is not called. A contact counter that
// cannot answer ([ContactReserver] erring) refuses the send the same way (503
// frequency-unavailable), unless the channel is one of [Config.AllowUncounted]. Malformed input gets a
// problem+json answer (400, 413), never a panic. A response that should be minimised but
// cannot be parsed is replaced by a 502 problem rather than passed on unminimised.
package middleware
