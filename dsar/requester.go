package dsar

import (
	"errors"
	"fmt"
	"slices"

	"github.com/privguard/privguard"
)

// Close relatives of a deceased subject (DSR-15, PIPL Art. 49): they may exercise the
// rights of access, copy, correction and deletion for their own lawful, legitimate
// interests, unless the deceased arranged otherwise. Such a request is never verified by
// the subject's code or token: an operator verifies it after checking the proof of death
// and of the relationship (Engine.Verify).

// RequesterCloseRelative is the role of a close relative of a deceased subject.
const RequesterCloseRelative = "close_relative"

// Relations are the relations a close relative may state.
var Relations = []string{"spouse", "parent", "child", "sibling", "grandparent", "grandchild", "other"}

// CloseRelativeTypes are the requests a close relative may make (PIPL Art. 49): access,
// a copy (portability, to the relative), correction and deletion.
var CloseRelativeTypes = []Type{TypeAccess, TypePortability, TypeCorrection, TypeDeletion}

// Requester is who made a request when it is not the subject.
type Requester struct {
	Role     string `json:"role"` // RequesterCloseRelative
	Name     string `json:"name"`
	Relation string `json:"relation"` // one of Relations
	// Proof refers to the death certificate and the proof of the relationship (a text
	// reference, not the documents). It is personal data: scrubbed on the subject's erasure.
	Proof string `json:"proof,omitempty"`
}

// ErrOperatorOnly is returned for a one-time code asked for or tried on a request only an
// operator can verify: a close relative's, which the subject's code cannot prove.
var ErrOperatorOnly = errors.New("dsar: only an operator who checked the proof verifies this request")

// checkRequester checks r's requester, if any: the role, the relation, the name and proof
// given, a type Art. 49 allows, and no identity but an operator's later check.
func checkRequester(r *Request) error {
	q := r.Requester
	if q == nil {
		return nil
	}
	switch {
	case q.Role != RequesterCloseRelative:
		return fmt.Errorf("dsar: requester role %q: want %s: %w", q.Role, RequesterCloseRelative, privguard.ErrInvalid)
	case !slices.Contains(Relations, q.Relation):
		return fmt.Errorf("dsar: requester relation %q: want one of %v: %w", q.Relation, Relations, privguard.ErrInvalid)
	case q.Name == "" || q.Proof == "":
		return fmt.Errorf("dsar: a close relative's request names the relative and the proof of death and relationship: %w", privguard.ErrInvalid)
	case !slices.Contains(CloseRelativeTypes, r.Type):
		return fmt.Errorf("dsar: a close relative may ask for access, a copy, correction or deletion of a deceased person's data (PIPL Art. 49), not %s: %w",
			r.Type, privguard.ErrInvalid)
	case r.TransferTo != "":
		return fmt.Errorf("dsar: a close relative's copy goes to the relative, not to another handler (PIPL Art. 49): %w", privguard.ErrInvalid)
	case r.Trigger != "" || r.Identity != nil:
		return fmt.Errorf("dsar: a close relative's request is verified by an operator after checking the proof (verify), not at submission: %w",
			privguard.ErrInvalid)
	}
	return nil
}
