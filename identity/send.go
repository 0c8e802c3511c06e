package identity

import (
	"context"
	"encoding/json"
	"os"
	"sync"
	"time"
)

// Message kinds.
const (
	KindCode     = "code"     // a one-time code (a request's, or to verify a link)
	KindDownload = "download" // the download token of an access package
	KindIncident = "incident" // the notice of a personal-information security incident
	KindSignIn   = "signin"   // a sign-in code or link of the privacy centre
)

// Message is what a [Sender] delivers to one address.
type Message struct {
	// Kind is KindCode, KindDownload, KindIncident or KindSignIn.
	Kind string `json:"kind"`
	// Code is a one-time code; Link a URL to follow; Token a one-time download token (for
	// the company's portal to present); Text the human-readable message.
	Code  string `json:"code,omitempty"`
	Link  string `json:"link,omitempty"`
	Token string `json:"token,omitempty"`
	Text  string `json:"text,omitempty"`
	// Lang is the language of Text ("" bilingual).
	Lang string `json:"lang,omitempty"`
	// Request is the data-subject request the message is about; Incident the incident.
	Request  string `json:"request,omitempty"`
	Incident string `json:"incident,omitempty"`
	// ExpiresAt is when the code, link or token stops working.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// Sender delivers a message to an address on a channel ("sms": an E.164 phone number,
// "email": an address). Implement it with your SMS or mail gateway; [Outbox] is the
// built-in one.
type Sender interface {
	Send(ctx context.Context, channel, address string, m Message) error
}

// Outbox is the built-in Sender: it appends each message to the file at Path (mode 0600)
// as one JSON line, for a gateway (or a developer) to pick up:
//
//	{"channel":"sms","to":"+8613800138000","kind":"code","code":"123456","request":"...","text":"..."}
type Outbox struct {
	Path string
	mu   sync.Mutex
}

// outboxLine is the line's shape: the channel and address first.
type outboxLine struct {
	Channel string `json:"channel"`
	To      string `json:"to"`
	Message
}

// Send implements Sender.
func (o *Outbox) Send(ctx context.Context, channel, address string, m Message) error {
	line, err := json.Marshal(outboxLine{Channel: channel, To: address, Message: m})
	if err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	f, err := os.OpenFile(o.Path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(append(line, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
