// Package outreach is the send gate for campaigns and automated journeys (issue 15): it
// checks a message template (true sender, a refusal method for its channel, no promotional
// content in a service message; MKT-03, MKT-05), filters the recipients against the consent
// ledger at send time (channel consent, objection, restriction; MKT-01, MKT-04) and gives
// each allowed recipient a sealed one-click unsubscribe link (RFC 8058) that withdraws the
// channel's marketing consent without a login.
package outreach
