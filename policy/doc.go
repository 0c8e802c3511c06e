// Package policy decides, per request, whether personal data may be used for a declared
// purpose and with which obligations. It is the only package that imports OPA (the v1 API).
//
// The default policy is an embedded Rego bundle (bundle/privguard.rego, with its unit tests in
// bundle/privguard_test.rego) whose data is generated from the purpose taxonomy, so that the
// configuration that changes the consent ledger's purposes changes the policy's too. An
// [Engine] compiles the policy once into a prepared query and memoises decisions on the input,
// which never names the subject: a warm decision is a map lookup. The memo keys the contact
// count by whether it is below the channel's limit (see [Config.MemoExactContacts]) and
// grows while its working set is larger than it, within [Config.MemoBytes].
//
// High-impact processing (sensitive data, automated decisions, large-scale profiling, a
// recipient under PIPL, a transfer abroad) needs a current impact assessment covering it
// ([Config.Assessments], [Assessment]); the decision names the one it rested on. The date
// the policy compares assessments' dates with (input.today) is the input's Time, or the
// engine's clock, which a timer keeps (no clock read per decision), and is part of the memo
// key.
//
// # Concurrency and failure
//
// An Engine is safe for concurrent use. [Engine.Decide] returns an error only when no
// decision could be made (evaluation failed, the result was undefined or malformed); callers
// must then fail closed. A deny is a decision, not an error.
package policy
