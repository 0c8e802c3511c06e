package portal

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// view is what every page template gets.
type view struct {
	Lang, Other string
	Page        string
	Prefix      string
	SignedIn    bool
	CSRF        string
	Message     string
	Flash       string
	Receipt     string // record id of the change just made
	Zone        *time.Location
	ZoneName    string
	Controller  Controller
	KeysURL     string
	Here        string // the page's path, for the language switch
	HasProfile  bool
	HasRequests bool
	Data        any
	t           func(string) string
}

func (p *Portal) view(w http.ResponseWriter, r *http.Request, page string) *view {
	lang := chooseLang(r, p.cfg.Regime)
	other := LangEN
	if lang == LangEN {
		other = LangZH
	}
	zone := zoneOf(r, p.cfg.Regime, p.cfg.Zone)
	name := zone.String()
	if zone == shanghai {
		name = map[string]string{LangZH: "北京时间", LangEN: "Beijing time"}[lang]
	}
	here := r.URL.Path
	if r.Method != http.MethodGet || !localPath(here) {
		here = p.cfg.Prefix + "/" + page
	}
	return &view{Lang: lang, Other: other, Page: page, Prefix: p.cfg.Prefix, Zone: zone, ZoneName: name,
		Controller: p.cfg.Controller, KeysURL: p.cfg.KeysURL, Here: here,
		HasProfile: p.cfg.Profiles != nil, HasRequests: p.cfg.Requests != nil}
}

// sessionView is view for a signed-in subject.
func (p *Portal) sessionView(w http.ResponseWriter, r *http.Request, page string, s session) *view {
	v := p.view(w, r, page)
	v.SignedIn, v.CSRF = true, p.csrfToken(s)
	return v
}

var funcs = template.FuncMap{
	"t":  func(v *view, key string) string { return tr(v.Lang, key) },
	"in": func(v *view, t Text) string { return t.In(v.Lang) },
	"when": func(v *view, t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.In(v.Zone).Format("2006-01-02 15:04")
	},
	"day": func(v *view, t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.In(v.Zone).Format("2006-01-02")
	},
	"iso":  func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"esc":  url.QueryEscape,
	"itoa": strconv.Itoa,
	"pair": func(v *view, c *choiceView) struct {
		V *view
		C *choiceView
	} {
		return struct {
			V *view
			C *choiceView
		}{v, c}
	},
	"langurl": func(v *view) string {
		return v.Prefix + "/lang?to=" + url.QueryEscape(v.Other) + "&back=" + url.QueryEscape(v.Here)
	},
}

// parse reads the page templates, each with the layout.
func (p *Portal) parse() error {
	p.pages = map[string]*template.Template{}
	for _, page := range []string{"signin", "code", "choices", "profile", "requests", "error"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+page+".html")
		if err != nil {
			return fmt.Errorf("portal: template %s: %w", page, err)
		}
		p.pages[page] = t
	}
	return nil
}

// render writes page with v; a template that fails writes the generic error (it never
// sends half a page).
func (p *Portal) render(w http.ResponseWriter, status int, page string, v *view) {
	var buf bytes.Buffer
	if err := p.pages[page].Execute(&buf, v); err != nil {
		p.log.Error("portal: render", "page", page, "err", err.Error())
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte(tr(v.Lang, "error")))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Language", v.Lang)
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}
