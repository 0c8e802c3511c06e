package portal

import (
	"cmp"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/dsar"
)

// offered are the requests the page offers, in order (DSR-01: every right; the form asks
// for nothing beyond the right itself, the subject being signed in). "cancellation" closes
// the account and deletes everywhere (DSR-12).
var offered = []dsar.Type{dsar.TypeAccess, dsar.TypePortability, dsar.TypeCorrection, dsar.TypeDeletion,
	"cancellation", dsar.TypeRestriction, dsar.TypeObjection, "explanation"}

type requestView struct {
	ID        string
	Type      string
	State     string
	Received  time.Time
	Due       time.Time
	Closed    time.Time
	Reason    string
	Recourse  string
	Download  bool
	ExpiresAt time.Time
	// Review is the human review asked for: "" none, "requested", or the outcome.
	Review     string
	ReviewNote string
	// Explanation is an explanation's answer.
	Explanation []explained
	Note        string
}

// explained is one automated decision's explanation, in the reader's language.
type explained struct {
	Purpose  string
	Model    string
	Features []privguard.DataCategory
	Logic    string
	Recent   int
}

type requestsData struct {
	Requests    []requestView
	Offered     []string
	Correctable []Correctable
	ClosedAt    time.Time
}

// offeredTypes are the types this engine takes (explanation only where it knows it).
func (p *Portal) offeredTypes() []string {
	var out []string
	for _, t := range offered {
		switch t {
		case "cancellation":
		case dsar.TypeExplanation:
			if !p.cfg.Requests.Explains() {
				continue
			}
		default:
			if t == dsar.TypeCorrection && len(p.cfg.Correctable) == 0 {
				continue
			}
		}
		out = append(out, string(t))
	}
	return out
}

func (p *Portal) requestsPage(w http.ResponseWriter, r *http.Request, s session) {
	v := p.sessionView(w, r, "requests", s)
	if r.URL.Query().Get("sent") != "" {
		v.Flash = tr(v.Lang, "requests.sent")
	}
	if r.URL.Query().Get("deleted") != "" {
		v.Flash = tr(v.Lang, "profile.deleted")
	}
	rs, err := p.cfg.Requests.OfSubject(r.Context(), s.Subject)
	if err != nil {
		p.internal(w, r, "list requests", err)
		return
	}
	sv, err := p.cfg.Ledger.Subject(r.Context(), s.Subject)
	if err != nil {
		p.internal(w, r, "read ledger", err)
		return
	}
	now := p.now()
	d := &requestsData{Offered: p.offeredTypes(), Correctable: p.cfg.Correctable, ClosedAt: sv.ClosedAt}
	for _, q := range rs {
		rv := requestView{ID: q.ID, Type: string(q.Type), State: string(q.State), Received: q.ReceivedAt, Due: q.Deadline.Due,
			Closed: q.ClosedAt, Recourse: q.Recourse}
		if q.State == dsar.StateRejected {
			rv.Reason = q.Reason
		}
		if q.AccountCancellation {
			rv.Type = "cancellation"
		}
		if hr := q.HumanReview; hr != nil {
			rv.Review, rv.ReviewNote = cmp.Or(hr.Outcome, "requested"), hr.Note
		}
		if x := q.Explanation; x != nil {
			rv.Note = x.Note
			for _, d := range x.Decisions {
				rv.Explanation = append(rv.Explanation, explained{Purpose: cmp.Or(Text(d.Description).In(v.Lang), string(d.Purpose)),
					Model: d.Model, Features: d.Features, Logic: Text(d.Logic).In(v.Lang), Recent: len(d.Recent)})
			}
		}
		if res := q.Result; res != nil && !res.Purged && res.DownloadedAt.IsZero() && now.Before(res.ExpiresAt) {
			rv.Download, rv.ExpiresAt = true, res.ExpiresAt
		}
		d.Requests = append(d.Requests, rv)
	}
	v.Data = d
	p.render(w, http.StatusOK, "requests", v)
}

// newRequest takes a request from the form: verified at once (the subject signed in with
// a verified identifier or the app's token), free, with no field asked beyond the right
// itself (a correction names what to correct).
func (p *Portal) newRequest(w http.ResponseWriter, r *http.Request, s session) {
	typ := r.PostFormValue("type")
	if !slices.Contains(p.offeredTypes(), typ) {
		p.fail(w, r, http.StatusUnprocessableEntity, "notfound")
		return
	}
	id := &dsar.Identity{Method: "portal", Note: "privacy centre, signed in with " + s.Evidence}
	// The package speaks the reader's language and shows times in the zone the page does.
	req := dsar.Request{Type: dsar.Type(typ), Subject: s.Subject, Regime: p.cfg.Regime, Identity: id,
		Lang: chooseLang(r, p.cfg.Regime)}
	if zone := zoneOf(r, p.cfg.Regime, p.cfg.Zone); zone != time.UTC && dsar.CheckZone(zone.String()) == nil {
		req.Zone = zone.String()
	}
	switch typ {
	case "cancellation":
		// Account cancellation: the account is closed in the ledger (retention rules from
		// account_closed run from now) and everything is deleted or anonymised everywhere.
		if _, err := p.record(r, s, consent.Request{Action: consent.ActionCloseAccount}); err != nil {
			p.internal(w, r, "close account", err)
			return
		}
		req.Type, req.AccountCancellation = dsar.TypeDeletion, true
	case string(dsar.TypeCorrection):
		cat := privguard.DataCategory(r.PostFormValue("category"))
		value := strings.TrimSpace(r.PostFormValue("value"))
		ok := false
		for _, c := range p.cfg.Correctable {
			ok = ok || c.Category == cat
		}
		if !ok || value == "" || len(value) > 1000 {
			p.fail(w, r, http.StatusUnprocessableEntity, "notfound")
			return
		}
		req.Patch = map[privguard.DataCategory]string{cat: value}
	}
	if req.Type == dsar.TypeExplanation && r.PostFormValue("human_review") != "" {
		// A route to a human decision (DSR-14), with the subject's point of view if given.
		req.HumanReview = &dsar.Review{Statement: truncate(strings.TrimSpace(r.PostFormValue("statement")), 2000)}
	}
	if _, err := p.cfg.Requests.Submit(r.Context(), req); err != nil {
		if errors.Is(err, privguard.ErrInvalid) {
			p.fail(w, r, http.StatusUnprocessableEntity, "error")
			return
		}
		p.internal(w, r, "submit request", err)
		return
	}
	http.Redirect(w, r, p.cfg.Prefix+"/requests?sent=1", http.StatusSeeOther)
}

// download hands the subject its package here: a one-time token minted for this download
// and used at once, so the package is delivered once and then destroyed.
func (p *Portal) download(w http.ResponseWriter, r *http.Request, s session) {
	id := r.PathValue("id")
	q, err := p.cfg.Requests.Get(r.Context(), id)
	if err != nil || q.Subject != s.Subject {
		p.fail(w, r, http.StatusNotFound, "notfound")
		return
	}
	token, _, err := p.cfg.Requests.IssueLink(r.Context(), id)
	if err != nil {
		p.fail(w, r, http.StatusGone, "notfound")
		return
	}
	_, err = p.cfg.Requests.Download(r.Context(), id, token, func(zip []byte, res dsar.Result) error {
		w.Header().Set("Content-Type", "application/zip")
		w.Header().Set("Content-Disposition", `attachment; filename="personal-information-`+id+`.zip"`)
		w.Header().Set("Content-Length", strconv.Itoa(len(zip)))
		_, err := w.Write(zip)
		return err
	})
	if err != nil && !errors.Is(err, dsar.ErrBadDownloadToken) && !errors.Is(err, dsar.ErrResultGone) {
		p.log.Error("portal: download", "kind", errKind(err))
	}
	if errors.Is(err, dsar.ErrResultGone) || errors.Is(err, dsar.ErrBadDownloadToken) {
		p.fail(w, r, http.StatusGone, "notfound")
	}
}
