package portal

import (
	"errors"
	"net/http"

	"github.com/privguard/privguard"
)

type profileData struct {
	Items              []Item
	PersonalisationOff bool
	Unavailable        bool
}

// profilePage lists the tags, segments and scores held on the subject, read from the
// stores now, labelled as derived (MKT-06, PIPL Art. 24).
func (p *Portal) profilePage(w http.ResponseWriter, r *http.Request, s session) {
	v := p.sessionView(w, r, "profile", s)
	d := &profileData{}
	items, err := p.cfg.Profiles.Derived(r.Context(), s.Subject)
	if err != nil {
		p.log.Error("portal: read profile", "kind", errKind(err))
		d.Unavailable = true
	}
	d.Items = items
	if sv, err := p.cfg.Ledger.Subject(r.Context(), s.Subject); err == nil {
		d.PersonalisationOff = sv.Facts.PersonalisationOff
	}
	v.Data = d
	p.render(w, http.StatusOK, "profile", v)
}

// deleteItems asks for the deletion of the items picked (a narrow erasure through the
// connectors); only items held on the subject now are taken.
func (p *Portal) deleteItems(w http.ResponseWriter, r *http.Request, s session) {
	ids := r.PostForm["item"]
	if len(ids) == 0 || len(ids) > 500 {
		p.fail(w, r, http.StatusUnprocessableEntity, "notfound")
		return
	}
	_, err := p.cfg.Profiles.Delete(r.Context(), s.Subject, ids, s.Evidence)
	if errors.Is(err, privguard.ErrInvalid) || errors.Is(err, privguard.ErrNotFound) {
		p.fail(w, r, http.StatusUnprocessableEntity, "notfound")
		return
	}
	if err != nil {
		p.internal(w, r, "delete tags", err)
		return
	}
	http.Redirect(w, r, p.cfg.Prefix+"/requests?deleted=1", http.StatusSeeOther)
}
