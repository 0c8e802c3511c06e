package incident

import (
	"fmt"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/privguard/privguard"
)

// Kinds of notice.
const (
	// AuthorityNotice is the notice to a supervisory authority or the CAC (GDPR Art. 33(3);
	// PIPL Art. 57).
	AuthorityNotice = "authority"
	// SubjectNotice is the notice to the individuals (GDPR Art. 34(2); PIPL Art. 57).
	SubjectNotice = "subject"
)

// Languages a notice is rendered in.
var Languages = []string{"zh-CN", "en"}

// Contact is who the notice names as the contact: the controller and its DPO (个人信息
// 保护负责人), from the configuration's controller.
type Contact struct {
	Controller string
	// DPO is the DPO's name; Contact how to reach them (or the controller).
	DPO     string
	Contact string
}

// Elements are what each kind of notice must contain, by name. The subject notice follows
// PIPL Art. 57 and GDPR Art. 34(2): the categories concerned, the cause, the possible
// harm, the remedial actions taken, what the individual can do, and the contact. The
// authority notice follows GDPR Art. 33(3) and PIPL Art. 57: the categories and the
// approximate number of individuals, the cause, the likely consequences, the measures
// taken, and the DPO's contact.
var Elements = map[string][]string{
	AuthorityNotice: {"categories", "subject_count", "cause", "harm", "remedies", "contact"},
	SubjectNotice:   {"categories", "cause", "harm", "remedies", "advice", "contact"},
}

// Notice is a rendered notice in every language.
type Notice struct {
	Kind  string            `json:"kind"`
	Texts map[string]string `json:"texts"`
}

// Text returns the notice in every language, Chinese first, as one message.
func (n *Notice) Text() string {
	parts := make([]string, 0, len(Languages))
	for _, l := range Languages {
		parts = append(parts, n.Texts[l])
	}
	return strings.Join(parts, "\n\n")
}

// NoticeError refuses a notice that lacks a required element.
type NoticeError struct {
	Kind    string
	Missing []string
}

func (e *NoticeError) Error() string {
	return fmt.Sprintf("incident: the %s notice lacks %s", e.Kind, strings.Join(e.Missing, ", "))
}

// Unwrap returns privguard.ErrInvalid.
func (e *NoticeError) Unwrap() error { return privguard.ErrInvalid }

// noticeTemplates are the notices by kind and language. Every element of Elements[kind]
// must appear in each: Render checks the text it produced holds every element's value.
var noticeTemplates = map[string]map[string]string{
	AuthorityNotice: {
		"zh-CN": `个人信息安全事件报告
报告单位：{{.Controller}}
事件编号：{{.ID}}
事件名称：{{.Title}}
事件级别：{{.Severity}}
获悉时间：{{.AwareAt}}
事件原因：{{.Cause}}
涉及的个人信息种类：{{.Categories}}
涉及人数（约）：{{.SubjectCount}}
可能造成的危害：{{.Harm}}
已采取的处置和补救措施：{{.Remedies}}
联系人（个人信息保护负责人）：{{.Contact}}`,
		"en": `Personal data breach notification
Controller: {{.Controller}}
Incident: {{.ID}} — {{.Title}}
Level: {{.Severity}}
Became aware: {{.AwareAt}}
Nature and cause: {{.Cause}}
Categories of personal data concerned: {{.Categories}}
Approximate number of data subjects concerned: {{.SubjectCount}}
Likely consequences: {{.Harm}}
Measures taken or proposed: {{.Remedies}}
Contact (data protection officer): {{.Contact}}`,
	},
	SubjectNotice: {
		"zh-CN": `个人信息安全事件告知
{{.Controller}}发生了一起涉及您个人信息的安全事件：{{.Title}}。
事件原因：{{.Cause}}
涉及的个人信息种类：{{.Categories}}
可能造成的危害：{{.Harm}}
我们已采取的补救措施：{{.Remedies}}
您可以采取的减轻危害的措施：{{.Advice}}
如有疑问，请联系我们的个人信息保护负责人：{{.Contact}}`,
		"en": `Notice of a personal data breach
{{.Controller}} has had a security incident involving your personal data: {{.Title}}.
Cause: {{.Cause}}
Personal data concerned: {{.Categories}}
Possible harm: {{.Harm}}
What we have done: {{.Remedies}}
What you can do: {{.Advice}}
Questions: contact our data protection officer: {{.Contact}}`,
	},
}

var parsedTemplates = func() map[string]map[string]*template.Template {
	out := map[string]map[string]*template.Template{}
	for kind, langs := range noticeTemplates {
		out[kind] = map[string]*template.Template{}
		for lang, text := range langs {
			out[kind][lang] = template.Must(template.New(kind + "." + lang).Option("missingkey=error").Parse(text))
		}
	}
	return out
}()

// noticeData is what a template reads.
type noticeData struct {
	ID, Title, Severity, AwareAt, Controller                         string
	Cause, Categories, SubjectCount, Harm, Remedies, Advice, Contact string
}

func joinNotes(notes []Note, sep string) string {
	texts := make([]string, len(notes))
	for i, n := range notes {
		texts[i] = n.Text
	}
	return strings.Join(texts, sep)
}

// Render renders the notice of kind for in, naming contact. It returns a *NoticeError
// naming every element the incident lacks (a notice is never sent incomplete).
func Render(in *Incident, kind string, contact Contact) (*Notice, error) {
	need, ok := Elements[kind]
	if !ok {
		return nil, fmt.Errorf("incident: no notice of kind %q: %w", kind, privguard.ErrInvalid)
	}
	cats := make([]string, len(in.Categories))
	for i, c := range in.Categories {
		cats[i] = string(c)
	}
	person := strings.TrimSpace(strings.TrimSpace(contact.DPO) + " " + strings.TrimSpace(contact.Contact))
	if strings.TrimSpace(contact.Contact) == "" {
		person = "" // a name is not a way to reach anyone
	}
	d := noticeData{ID: in.ID, Title: in.Title, AwareAt: in.AwareAt.UTC().Format(time.RFC3339), Controller: contact.Controller,
		Cause: in.Cause, Categories: strings.Join(cats, ", "), Harm: joinNotes(in.Effects, "; "), Remedies: joinNotes(in.Actions, "; "),
		Advice: in.Advice, Contact: person}
	if in.SubjectCount > 0 {
		d.SubjectCount = strconv.FormatInt(in.SubjectCount, 10)
	}
	d.Severity = "not assessed / 未定级"
	if in.Severity != "" {
		d.Severity = in.Severity.Chinese() + " / " + string(in.Severity)
	}
	if d.Controller == "" {
		d.Controller = "—"
	}
	values := map[string]string{"categories": d.Categories, "subject_count": d.SubjectCount, "cause": d.Cause, "harm": d.Harm,
		"remedies": d.Remedies, "advice": d.Advice, "contact": d.Contact}
	var missing []string
	for _, e := range need {
		if strings.TrimSpace(values[e]) == "" {
			missing = append(missing, e)
		}
	}
	if len(missing) > 0 {
		return nil, &NoticeError{Kind: kind, Missing: missing}
	}
	n := &Notice{Kind: kind, Texts: map[string]string{}}
	for _, lang := range Languages {
		var b strings.Builder
		if err := parsedTemplates[kind][lang].Execute(&b, d); err != nil {
			return nil, fmt.Errorf("incident: render the %s notice (%s): %w", kind, lang, err)
		}
		text := b.String()
		// The template itself must carry every element: one that lost a line is refused
		// rather than sent.
		for _, e := range need {
			if !strings.Contains(text, values[e]) {
				return nil, fmt.Errorf("incident: the %s notice template (%s) leaves out %s", kind, lang, e)
			}
		}
		n.Texts[lang] = text
	}
	return n, nil
}
