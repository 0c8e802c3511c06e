// The send gate (issue 15), beside the SMS replies of the package comment: CheckTemplate
// checks a message template (true sender, a refusal method for its channel, no promotional
// content in a service message; MKT-03, MKT-05), Gate.Check filters the recipients against
// the consent ledger at send time (channel consent, objection, restriction; MKT-01,
// MKT-04) and gives each allowed recipient a sealed one-click unsubscribe link (RFC 8058)
// that Gate.UnsubscribeHandler turns into a withdrawal without a login.

package outreach
