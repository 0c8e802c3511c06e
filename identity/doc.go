// Package identity links the identifiers a data subject knows itself by (a phone number, an
// email address, a WeChat openid or unionid, a device id) to the subject id the company
// knows it by ([privguard.SubjectID]).
//
// A link is stored as a keyed hash of the normalised value (the lookup key, an HMAC whose
// key is the vault's blind-index key, kept wrapped in the vault's secret store) and, for
// the identifiers that can be sent to (phones and emails), the address sealed in the vault
// under the subject's own key: shredding the subject destroys the address too. The clear
// value is never stored; a link shows only a masked form ("+86 138****5678").
//
// A link is verified before it can act for the subject: the app attests it verified the
// address itself, or the subject proves it holds the address with a one-time code sent to
// it ([Registry.SendCode], [Registry.VerifyCode]). [Notifier] sends the codes and download
// links of data-subject requests, and incident notices, to a verified phone or email.
//
// # Concurrency and failure
//
// A [Registry] is safe for concurrent use. Its changes of one link (verification, codes)
// are read-modify-write under a process-wide lock: on a store shared by several replicas
// two replicas changing the same link at once may lose one change (a code sent, a wrong
// try counted). Adding a link is atomic in every store: two subjects racing for one value
// get one link and one [privguard.ErrConflict].
package identity
