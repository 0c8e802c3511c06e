// Package incident keeps the register of personal-information security incidents
// (breaches) and their clocks: GDPR Arts. 33-34 (the supervisory authority within 72 hours
// of awareness unless the breach is unlikely to result in a risk; the data subjects without
// undue delay when the risk is high; every breach documented, Art. 33(5)), PIPL Arts. 51(4)
// and 57 and the 2025 国家网络安全事件报告管理办法 Art. 4 (an incident of level 较大 or
// worse reported to the provincial CAC within 4 hours, within 1 hour by an operator of
// critical information infrastructure).
//
// Every change to an incident — recorded, assessed, facts or actions added, an authority
// or the subjects notified, closed — is an event appended to the journal log "incidents";
// the register is those events folded, and nothing in it is ever deleted, notified or not
// (SEC-10). Deadlines are computed from aware_at when the register is read (see [Clock]):
// an incident whose severity or risk is not assessed yet runs the strictest clock.
// Notices to the authority and to the subjects are rendered from the incident in zh-CN and
// en and refused when an element the law requires is missing ([Render]).
//
// Affected subjects are kept in the register as keyed pseudonyms only. Their ids are held in
// the notification tasks (the journal log "incident-tasks"): one task per affected subject,
// sent through a [Notifier] once the subjects are to be notified, and marked sent (see
// [Register.Deliver]).
//
// # Concurrency
//
// A [Register] is safe for concurrent use and for several processes on a shared store: a
// change is appended only if the log's head is still the one it was validated against
// (journal.Journal.AppendAfter), else it is validated again on the new head.
//
// # Failure
//
// A change appends one event or none. Reading the register checks the chain as it reads;
// a break is an error (*journal.BreakError), never a register shown past it. Delivery is at
// least once: a task sent whose mark could not be written is sent again.
package incident
