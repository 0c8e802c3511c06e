package privguard

// Provision is one provision of personal data to a recipient through privguard: a request
// on a route that names a recipient (sharing, entrusting, a transfer abroad), or a notice
// about subjects sent to a recipient. The disclosure log keeps one entry per provision
// (GB/T 35273 §9.2; GDPR Art. 30(1)(d)), with its scale, never the subjects themselves.
type Provision struct {
	// Kind is "route" (a request through the sidecar or the middleware) or "notice" (a
	// recipient told of an erasure, correction or restriction).
	Kind       string
	Route      string
	Recipient  string
	Purpose    Purpose
	Categories []DataCategory
	Regime     Regime
	// Subjects are the people whose data is provided; they are counted (keyed hashes, for
	// the cross-border accounting) and never stored.
	Subjects []SubjectID
	// Decision is the id of the decision that allowed it.
	Decision string
}
