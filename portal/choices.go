package portal

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
)

// choiceView is one purpose on My choices, as the ledger holds it now.
type choiceView struct {
	Purpose  privguard.Purpose
	Channel  string
	Title    string
	Text     string
	On       bool
	Blocked  bool // consent given, but an objection or a fact blocks it
	CanGrant bool // a notice to cite exists
	State    string
	// Notice is the text of the notice the subject agreed to (the deciding grant's).
	Notice string
}

type gridRow struct {
	Title string
	Cells []*choiceView // by channel, nil where the topic has none
}

type choicesData struct {
	Channels           []string
	Grid               []gridRow
	Other              []*choiceView
	Separate           []*choiceView
	Prompts            []*choiceView
	PersonalisationOff bool
	Objected           bool
	HasPersonalised    bool
}

func (p *Portal) choicesPage(w http.ResponseWriter, r *http.Request, s session) {
	v := p.sessionView(w, r, "choices", s)
	if id := r.URL.Query().Get("saved"); id != "" && len(id) < 80 {
		v.Flash, v.Receipt = tr(v.Lang, "choices.saved"), id
	}
	d, err := p.choices(r.Context(), s.Subject, v.Lang)
	if err != nil {
		p.internal(w, r, "read choices", err)
		return
	}
	if n := len(d.Prompts); n > 0 {
		p.promptMu.Lock()
		p.prompts[s.Subject] += n
		p.promptMu.Unlock()
	}
	v.Data = d
	p.render(w, http.StatusOK, "choices", v)
}

// choices reads the subject's state of every configured purpose.
func (p *Portal) choices(ctx context.Context, subject privguard.SubjectID, lang string) (*choicesData, error) {
	l := p.cfg.Ledger
	view, err := l.Subject(ctx, subject)
	if err != nil {
		return nil, err
	}
	records := map[privguard.Purpose]string{}
	for _, ps := range view.Purposes {
		if ps.Recipient == "" {
			records[ps.Purpose] = ps.RecordID
		}
	}
	tax := l.Taxonomy()
	d := &choicesData{Channels: channels, PersonalisationOff: view.Facts.PersonalisationOff, Objected: view.Facts.ObjectedToDM}
	cells := map[string]map[string]*choiceView{}
	var topics []string
	now := p.now()
	for _, c := range p.cfg.Choices {
		st, err := l.Check(ctx, subject, c.Purpose)
		if err != nil {
			return nil, err
		}
		cv := &choiceView{Purpose: c.Purpose, Channel: c.Channel, Title: c.Title.In(lang), Text: c.Text.In(lang),
			On: st.State.Counts(), Blocked: st.State.Counts() && !st.Allowed, State: st.State.String(), CanGrant: p.registered(ctx, c.Notice)}
		info, known := tax.Lookup(c.Purpose)
		if cv.Title == "" {
			cv.Title = string(c.Purpose)
		}
		if cv.Text == "" && known {
			// The taxonomy's description is English; the built-in purposes have Chinese names.
			if zh := builtinZH[c.Purpose]; lang == LangZH && zh != "" {
				cv.Text = zh
			} else if lang == LangEN {
				cv.Text = info.Description
			}
		}
		if known && info.Personalised {
			d.HasPersonalised = true
		}
		if id := records[c.Purpose]; id != "" && cv.On {
			cv.Notice = p.agreedNotice(ctx, id, lang)
		}
		if c.Prompt && p.prompt(ctx, st, records[c.Purpose], now) {
			d.Prompts = append(d.Prompts, cv)
		}
		switch {
		case known && info.Separate != "":
			d.Separate = append(d.Separate, cv)
		case c.Channel != "":
			if cells[c.Topic] == nil {
				cells[c.Topic] = map[string]*choiceView{}
				topics = append(topics, c.Topic)
			}
			cells[c.Topic][c.Channel] = cv
		default:
			d.Other = append(d.Other, cv)
		}
	}
	for _, topic := range topics {
		row := gridRow{Title: topic}
		for _, t := range p.cfg.Topics {
			if t.Name == topic {
				row.Title = t.Title.In(lang)
			}
		}
		for _, ch := range channels {
			row.Cells = append(row.Cells, cells[topic][ch])
		}
		d.Grid = append(d.Grid, row)
	}
	return d, nil
}

// prompt reports whether a purpose is asked for: not decided yet, or refused or withdrawn
// longer ago than the refusal window (CON-10: no re-prompt inside it).
func (p *Portal) prompt(ctx context.Context, st consent.Status, recordID string, now time.Time) bool {
	switch st.State {
	case consent.StateUnknown:
		return true
	case consent.StateRefused, consent.StateWithdrawn:
		rec, err := p.cfg.Ledger.Record(ctx, recordID)
		if err != nil {
			return false // not known when: not asked
		}
		return now.Sub(rec.Time) > p.cfg.RefusalWindow
	}
	return false
}

// agreedNotice is the text of the notice the record cites, in lang if it was shown in it.
func (p *Portal) agreedNotice(ctx context.Context, recordID, lang string) string {
	rec, err := p.cfg.Ledger.Record(ctx, recordID)
	if err != nil || rec.Notice == nil {
		return ""
	}
	ns, err := p.cfg.Ledger.Notices(ctx, rec.Notice.ID)
	if err != nil {
		return ""
	}
	for _, n := range ns {
		if n.Version == rec.Notice.Version && n.Language == rec.Notice.Language {
			return n.Text
		}
	}
	return ""
}

// registered reports whether notice id is registered (a grant can cite it): a choice
// whose notice is not can only be turned off.
func (p *Portal) registered(ctx context.Context, id string) bool {
	if id == "" {
		return false
	}
	ns, err := p.cfg.Ledger.Notices(ctx, id)
	return err == nil && len(ns) > 0
}

// latestNotice cites the latest version of notice id, in lang if it has it.
func (p *Portal) latestNotice(ctx context.Context, id, lang string) (*consent.NoticeRef, error) {
	ns, err := p.cfg.Ledger.Notices(ctx, id)
	if err != nil {
		return nil, err
	}
	if len(ns) == 0 {
		return nil, errors.New("portal: the choice's notice is not registered")
	}
	best := ns[0]
	for _, n := range ns {
		if n.Version > best.Version || n.Version == best.Version && langMatch(n.Language, lang) && !langMatch(best.Language, lang) {
			best = n
		}
	}
	return &consent.NoticeRef{ID: best.ID, Version: best.Version, Language: best.Language}, nil
}

func langMatch(noticeLang, lang string) bool {
	if lang == LangZH {
		return noticeLang == "zh" || noticeLang == "zh-CN" || noticeLang == "zh-Hans"
	}
	return noticeLang == "en" || len(noticeLang) > 3 && noticeLang[:3] == "en-"
}

// record appends the subject's own choice, made in the portal, with the verified
// identifier it signed in with as evidence.
func (p *Portal) record(r *http.Request, s session, req consent.Request) (consent.Record, error) {
	req.Subject = s.Subject
	req.Channel, req.Method = consent.ChannelPortal, consent.MethodExplicit
	req.ActorType, req.Actor = consent.ActorSubject, "portal"
	req.Evidence.Identifier = s.Evidence
	req.Evidence.UserAgent = truncate(r.UserAgent(), 256)
	req.Evidence.UIScreen = "privacy-centre/choices"
	req.Evidence.CollectedBy = "first_party"
	if req.Regime == "" {
		req.Regime = p.cfg.Regime
	}
	rec, _, err := p.cfg.Ledger.Append(r.Context(), req)
	return rec, err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// changeChoice grants or withdraws one purpose: one click either way (CON-07), no
// re-verification.
func (p *Portal) changeChoice(w http.ResponseWriter, r *http.Request, s session) {
	purpose := privguard.Purpose(r.PostFormValue("purpose"))
	i := slices.IndexFunc(p.cfg.Choices, func(c Choice) bool { return c.Purpose == purpose })
	if i < 0 {
		p.fail(w, r, http.StatusUnprocessableEntity, "notfound")
		return
	}
	c := p.cfg.Choices[i]
	req := consent.Request{Purpose: purpose}
	switch r.PostFormValue("to") {
	case "on", "yes":
		if !p.registered(r.Context(), c.Notice) {
			p.fail(w, r, http.StatusConflict, "choices.unavailable")
			return
		}
		ref, err := p.latestNotice(r.Context(), c.Notice, chooseLang(r, p.cfg.Regime))
		if err != nil {
			p.internal(w, r, "notice", err)
			return
		}
		req.Action, req.LegalBasis, req.Notice = consent.ActionGrant, privguard.BasisConsent, ref
		if info, ok := p.cfg.Ledger.Taxonomy().Lookup(purpose); ok && info.Separate != "" {
			req.Separate, req.SeparateScope = true, info.Separate
		}
	case "off":
		req.Action = consent.ActionWithdraw
	case "no":
		req.Action = consent.ActionRefuse
	default:
		p.fail(w, r, http.StatusUnprocessableEntity, "notfound")
		return
	}
	p.commit(w, r, s, req)
}

func (p *Portal) commit(w http.ResponseWriter, r *http.Request, s session, req consent.Request) {
	rec, err := p.record(r, s, req)
	if err != nil {
		if errors.Is(err, privguard.ErrInvalid) || errors.Is(err, privguard.ErrConflict) {
			p.log.Warn("portal: change refused by the ledger", "action", string(req.Action), "kind", errKind(err))
			p.fail(w, r, http.StatusUnprocessableEntity, "error")
			return
		}
		p.internal(w, r, "record choice", err)
		return
	}
	http.Redirect(w, r, p.cfg.Prefix+"/choices?saved="+rec.ID, http.StatusSeeOther)
}

func (p *Portal) changePersonalisation(w http.ResponseWriter, r *http.Request, s session) {
	req := consent.Request{Action: consent.ActionPersonalisationOff}
	if r.PostFormValue("to") == "on" {
		req.Action = consent.ActionPersonalisationOn
	}
	p.commit(w, r, s, req)
}

func (p *Portal) object(w http.ResponseWriter, r *http.Request, s session) {
	p.commit(w, r, s, consent.Request{Action: consent.ActionObject})
}

// receipt downloads the signed receipt of one of the subject's own records; another
// subject's record is not found.
func (p *Portal) receipt(w http.ResponseWriter, r *http.Request, s session) {
	rec, err := p.cfg.Ledger.Record(r.Context(), r.PathValue("id"))
	if errors.Is(err, privguard.ErrNotFound) || errors.Is(err, privguard.ErrInvalid) || err == nil && rec.Subject != s.Subject {
		p.fail(w, r, http.StatusNotFound, "notfound")
		return
	}
	if err != nil {
		p.internal(w, r, "read record", err)
		return
	}
	sr, err := p.cfg.Ledger.ReceiptOf(r.Context(), &rec, false)
	if err != nil {
		p.internal(w, r, "receipt", err)
		return
	}
	body, err := json.MarshalIndent(sr, "", "  ")
	if err != nil {
		p.internal(w, r, "receipt", err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="receipt-`+rec.ID+`.json"`)
	w.Write(body)
}
