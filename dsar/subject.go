package dsar

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/privguard/privguard"
)

// OfSubject returns every request of subject, newest first (a privacy centre's "my
// requests"): from the engine's index alone with its store, from the store's requests of
// the subject when shared. Retention runs are not a subject's and never appear.
func (e *Engine) OfSubject(ctx context.Context, subject privguard.SubjectID) ([]Request, error) {
	if err := subject.Validate(); err != nil || subject == AnonymousSubject {
		return nil, nil
	}
	var out []Request
	if e.leaser != nil {
		bodies, err := e.leaser.SubjectRequests(ctx, []privguard.SubjectID{subject})
		if err != nil {
			return nil, fmt.Errorf("dsar: read the subject's requests: %w: %w", err, privguard.ErrUnavailable)
		}
		for _, b := range bodies {
			var r Request
			if err := json.Unmarshal(b, &r); err != nil {
				return nil, fmt.Errorf("dsar: stored request: %w", err)
			}
			if r.Subject == subject && r.Type != TypeRetention {
				out = append(out, r)
			}
		}
	} else {
		e.mu.Lock()
		err := e.loadIndex(ctx)
		ids := slices.Clone(e.bySubject[subject])
		e.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("dsar: list requests: %w: %w", err, privguard.ErrUnavailable)
		}
		for _, id := range ids {
			r, err := e.get(ctx, id)
			if err != nil {
				return nil, err
			}
			if r.Subject == subject && r.Type != TypeRetention {
				out = append(out, r)
			}
		}
	}
	slices.SortFunc(out, func(a, b Request) int { return cmp.Compare(b.ID, a.ID) })
	return out, nil
}
