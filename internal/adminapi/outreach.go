package adminapi

import (
	"errors"
	"net/http"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/outreach"
)

// TypeTemplateRule: a message template fails a message check (422); errors[0].rule names
// the rule (sender_missing, sender_not_in_text, refusal_missing, service_is_promotional,
// ...; MKT-03, MKT-05).
const TypeTemplateRule = "template-rule"

// Outreach body limits: a campaign of a million recipients fits.
const (
	MaxOutreachBody       = 64 << 20
	MaxOutreachRecipients = 1_000_000
)

// outreachCheckBody is POST /v1/outreach/check's body.
type outreachCheckBody struct {
	Channel  string `json:"channel" validate:"required,oneof=sms email push wechat"`
	Template struct {
		Kind   string `json:"kind" validate:"required,oneof=marketing service"`
		Sender string `json:"sender" validate:"max=256"`
		Text   string `json:"text" validate:"required,max=65536"`
		ID     string `json:"id" validate:"max=255"`
	} `json:"template"`
	Recipients []privguard.SubjectID `json:"recipients" validate:"required,max=1000000"`
	// SoftOptIn asks for the soft opt-in of existing customers (MKT-02; marketing email only).
	SoftOptIn bool `json:"soft_opt_in"`
}

// postOutreachCheck answers POST /v1/outreach/check: the template's checks (422 naming the
// failed rule), then who of the recipients may be contacted now, each allowed one with its
// unsubscribe link, and why the others may not.
func (s *Server) postOutreachCheck(w http.ResponseWriter, r *http.Request) error {
	var b outreachCheckBody
	if err := s.decode(w, r, MaxOutreachBody, &b); err != nil {
		return err
	}
	t := outreach.Template{Kind: b.Template.Kind, Sender: b.Template.Sender, Text: b.Template.Text, ID: b.Template.ID}
	res, err := s.outreach.Check(r.Context(), outreach.Request{Channel: b.Channel, Template: t, Recipients: b.Recipients, SoftOptIn: b.SoftOptIn})
	var re *outreach.RuleError
	if errors.As(err, &re) {
		p := privguard.NewProblem(http.StatusUnprocessableEntity, TypeTemplateRule, "The template fails a message check", re.Detail)
		field := "template"
		if re.Rule == outreach.RuleSoftOptInChannel {
			field = "soft_opt_in"
		}
		p.Field, p.Errors = field, []privguard.FieldError{{Field: field, Rule: re.Rule, Detail: re.Detail}}
		return p
	}
	if err != nil {
		return err
	}
	if res.Allowed == nil {
		res.Allowed = []outreach.Allowed{}
	}
	if res.Denied == nil {
		res.Denied = []outreach.Denied{}
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}
