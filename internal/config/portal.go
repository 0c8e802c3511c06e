package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/privguard/privguard"
)

// Portal configures the privacy centre, the subjects' own pages (package portal). Unset
// listen: serve does not run it.
type Portal struct {
	// Listen is the privacy centre's own address, separate from the admin API's.
	Listen string `yaml:"listen" validate:"omitempty,listen_addr"`
	// SessionTTL is how long a session lasts idle (default 15m, at most 1h).
	SessionTTL *Duration `yaml:"session_ttl" validate:"omitempty,min=1m,max=1h"`
	// RefusalWindow is how long a refused purpose is not asked for again (CON-10; default
	// 4320h, 180 days).
	RefusalWindow *Duration `yaml:"refusal_window" validate:"omitempty,min=24h"`
	// Zone, if set, is the IANA zone every time is shown in; default Beijing time under
	// PIPL, the browser's zone under GDPR.
	Zone string `yaml:"zone" validate:"max=64"`
	// Notice is the notice a grant made in the centre cites, unless a choice names its
	// own: its latest version, in the reader's language where it has one.
	Notice string `yaml:"notice" validate:"max=200"`
	// Topics title the rows of the channel grid.
	Topics []PortalTopic `yaml:"topics" validate:"dive"`
	// Choices are the purposes the centre shows; default: every purpose of the taxonomy
	// that rests on consent under the regime, channel purposes
	// (marketing.communications.<channel>[.<topic>]) in the grid.
	Choices []PortalChoice `yaml:"choices" validate:"dive"`
	// Correctable are the data categories a subject may ask to correct, with their labels;
	// default: contact details and name.
	Correctable []PortalCorrectable `yaml:"correctable" validate:"dive"`
	// CodesPerIdentifier and CodesPerClient bound the sign-in codes per hour sent to one
	// phone or email and asked for from one address (defaults 5 and 30; behind one of
	// trusted_proxies, the address it saw).
	CodesPerIdentifier int `yaml:"codes_per_identifier" validate:"omitempty,min=1,max=100"`
	CodesPerClient     int `yaml:"codes_per_client" validate:"omitempty,min=1,max=10000"`
}

// PortalTopic titles a row of the channel grid.
type PortalTopic struct {
	Name  string `yaml:"name" validate:"required,max=64,name"`
	Title Text   `yaml:"title"`
}

// PortalChoice is one purpose the privacy centre shows.
type PortalChoice struct {
	Purpose string `yaml:"purpose" validate:"required,max=100"`
	// Topic and Channel (sms, email, push, wechat) place it in the grid.
	Topic   string `yaml:"topic" validate:"omitempty,max=64,name"`
	Channel string `yaml:"channel" validate:"omitempty,oneof=sms email push wechat"`
	// Title and Text say what it is in plain words, per language (en, zh); default the
	// purpose's description.
	Title Text `yaml:"title"`
	Text  Text `yaml:"text"`
	// Notice overrides portal.notice for this purpose.
	Notice string `yaml:"notice" validate:"max=200"`
	// Prompt asks for the purpose on the page while undecided.
	Prompt bool `yaml:"prompt"`
}

// PortalCorrectable is a data category offered for correction.
type PortalCorrectable struct {
	Category string `yaml:"category" validate:"required,max=100"`
	Label    Text   `yaml:"label"`
}

// PortalZone returns the configured zone (nil when unset).
func (p Portal) PortalZone() (*time.Location, error) {
	if p.Zone == "" {
		return nil, nil
	}
	loc, err := time.LoadLocation(p.Zone)
	if err != nil || p.Zone == "Local" {
		return nil, fmt.Errorf("portal.zone: %q is not an IANA time zone", p.Zone)
	}
	return loc, nil
}

// checkPortalNames reports unknown purposes and categories of the portal section, and a
// listen address shared with another listener.
func (f *File) checkPortalNames(purposes []string, cats *privguard.Taxonomy) []string {
	var msgs []string
	p := f.Portal
	for i, c := range p.Choices {
		if !slices.Contains(purposes, c.Purpose) {
			msgs = append(msgs, fmt.Sprintf("portal.choices[%d].purpose: unknown purpose %q%s", i, c.Purpose, suggestPurpose(c.Purpose, purposes)))
		}
	}
	for i, c := range p.Correctable {
		if !cats.Known(privguard.DataCategory(c.Category)) {
			msgs = append(msgs, fmt.Sprintf("portal.correctable[%d].category: unknown data category %q%s", i, c.Category, suggestCategory(c.Category, cats)))
		}
	}
	if p.Listen != "" && !strings.HasSuffix(p.Listen, ":0") && (p.Listen == f.AdminListen || p.Listen == f.Listen) {
		msgs = append(msgs, fmt.Sprintf("portal.listen: %s is also the admin or sidecar address; the privacy centre needs its own listener", p.Listen))
	}
	if _, err := p.PortalZone(); err != nil {
		msgs = append(msgs, err.Error())
	}
	return msgs
}
