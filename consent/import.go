package consent

import (
	"context"
	"fmt"

	"github.com/privguard/privguard"
)

// CodeSuppressed is the FieldError code of an imported direct-marketing grant for a subject
// on the suppression list.
const CodeSuppressed = string(privguard.ReasonSuppressed)

// Result is the outcome of one request of [Ledger.Import].
type Result struct {
	Record Record
	// Replayed reports that Record was written earlier under the same idempotency key.
	Replayed bool
	// Err is why nothing was written for the request: a [*FieldError] wrapping
	// privguard.ErrInvalid or privguard.ErrConflict (the request must change), or an error
	// wrapping privguard.ErrUnavailable, privguard.ErrClosed or the context's (the same
	// request may be retried).
	Err error
}

// Import records imported consent: choices subjects made in another system (a partner's
// audience, a previous consent platform) and relayed with their proof (MKT-11). Each
// request is decided on its own, as [Ledger.Append] decides it, plus the rules of imported
// consent (checkImport); a rejected request fails alone. The requests are queued to the
// writer in order, so that they are committed in order and in large groups; out[i] is the
// outcome of reqs[i] (len(out) must be len(reqs)). Import returns once every request has an
// outcome: what is queued is waited for even if ctx ends, and reported truthfully.
//
// Import modifies reqs (defaults, derived evidence); the caller must not reuse them.
func (l *Ledger) Import(ctx context.Context, reqs []Request, out []Result) {
	if len(out) != len(reqs) {
		panic("consent: Import: len(out) != len(reqs)")
	}
	ops := make([]op, len(reqs))
	queued := make([]int, 0, len(reqs))
	var stopped error                         // why the rest was not queued
	var objected map[privguard.SubjectID]bool // subjects that object earlier in reqs
	for i := range reqs {
		out[i] = Result{}
		if stopped != nil {
			out[i].Err = stopped
			continue
		}
		req := &reqs[i]
		if err := l.checkImport(ctx, req); err != nil {
			out[i].Err = err
			continue
		}
		if req.Action == ActionObject {
			if objected == nil {
				objected = map[privguard.SubjectID]bool{}
			}
			objected[req.Subject] = true
		} else if objected[req.Subject] && l.directMarketingGrant(req) {
			out[i].Err = suppressedErr()
			continue
		}
		o := &ops[i]
		o.ctx, o.req, o.res = ctx, req, make(chan opResult, 1)
		if req.IdempotencyKey != "" {
			o.fp = fingerprint(req)
		}
		select {
		case l.ops <- o:
			queued = append(queued, i)
			continue
		default:
		}
		select {
		case l.ops <- o:
			queued = append(queued, i)
		case <-l.closing:
			stopped = fmt.Errorf("consent: ledger: %w", privguard.ErrClosed)
			out[i].Err = stopped
		case <-ctx.Done():
			stopped = ctx.Err()
			out[i].Err = stopped
		}
	}
	for _, i := range queued {
		r := l.await(&ops[i])
		out[i] = Result{Record: r.rec, Replayed: r.replayed, Err: r.err}
	}
}

// await waits for the outcome of a queued write (ctx no longer matters: it may already be
// committing, and its outcome must be reported truthfully).
func (l *Ledger) await(o *op) opResult {
	select {
	case r := <-o.res:
		return r
	case <-l.done:
		select {
		case r := <-o.res:
			return r
		default:
			return opResult{err: fmt.Errorf("consent: ledger: %w", privguard.ErrClosed)}
		}
	}
}

// checkImport validates an imported request: what Append checks, and what imported consent
// must also show (MKT-11; codes provenance.required, subject.suppressed):
//   - the method is imported (the default) and the channel defaults to import: a first-hand
//     choice is recorded with Append, where the collecting app vouches for it;
//   - the controller's own facts (erase, expire, lift_restriction) are not imported;
//   - a grant names its source (evidence.collected_by), the reference to its original
//     proof (evidence.proof_ref) and, when a third party collected it, the contract it was
//     collected under (evidence.contract_ref);
//   - a grant for a direct-marketing purpose is refused for a subject on the suppression
//     list: an objection made to the controller is not undone by a list bought or received
//     from elsewhere (DSR-13, MKT-04). A subject who changes their mind grants again,
//     first-hand.
func (l *Ledger) checkImport(ctx context.Context, req *Request) error {
	switch req.Method {
	case "":
		req.Method = MethodImported
	case MethodImported:
	default:
		return invalid("method", CodeInvalid, "an import records imported consent (method imported); record a first-hand choice with POST /v1/consents")
	}
	if req.Channel == "" {
		req.Channel = ChannelImport
	}
	if req.Action.ControllerFact() {
		return invalid("action", CodeInvalid, "%s records the controller's own fact and is not imported", req.Action)
	}
	if req.Action == ActionGrant {
		e := &req.Evidence
		switch {
		case e.CollectedBy == "":
			return invalid("evidence.collected_by", CodeProvenanceRequired, "imported consent must say who collected it: first_party or third_party")
		case e.CollectedBy != "first_party" && e.CollectedBy != "third_party":
			return invalid("evidence.collected_by", CodeInvalid, "must be first_party or third_party")
		case e.ProofRef == "":
			return invalid("evidence.proof_ref", CodeProvenanceRequired, "imported consent needs a reference to the original proof")
		case e.CollectedBy == "third_party" && e.ContractRef == "":
			return invalid("evidence.contract_ref", CodeProvenanceRequired, "consent a third party collected needs the contract it was collected under")
		}
	}
	if err := l.checkRequest(req); err != nil {
		return err
	}
	req.Evidence.IPPrefix, req.Evidence.IPHash = "", nil // derived from req.IP only
	if req.IP != "" {
		if err := l.processIP(req); err != nil {
			return err
		}
	}
	if l.directMarketingGrant(req) {
		suppressed, err := l.Suppressed(ctx, req.Subject)
		if err != nil {
			return err
		}
		if suppressed {
			return suppressedErr()
		}
	}
	return nil
}

func (l *Ledger) directMarketingGrant(req *Request) bool {
	if req.Action != ActionGrant {
		return false
	}
	info, ok := l.taxonomy.Lookup(req.Purpose)
	return ok && info.DirectMarketing
}

func suppressedErr() error {
	return invalid("subject", CodeSuppressed, "the subject objected to direct marketing; an imported grant does not undo that")
}
