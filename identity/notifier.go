package identity

import (
	"context"
	"time"

	"github.com/privguard/privguard"
)

// Notifier sends what privguard owes a subject to the subject's verified phone or email
// ([Registry.Reachable] chooses which): the one-time codes and download links of
// data-subject requests (it is a dsar.Notifier and dsar.LinkNotifier) and incident
// notices (an incident.Notifier). A subject without a verified phone or email gets
// nothing: the error wraps ErrNoAddress.
type Notifier struct {
	Registry *Registry
}

// Reach reports whether the subject can be sent a code: ErrNoAddress if not (the dsar
// engine asks before it spends one).
func (n Notifier) Reach(ctx context.Context, subject privguard.SubjectID) error {
	_, err := n.Registry.Reachable(ctx, subject, KindCode)
	return err
}

// SendCode sends a data-subject request's one-time code, to a phone first. The code lives
// CodeTTL, as the request engine's (dsar.CodeTTL).
func (n Notifier) SendCode(ctx context.Context, subject privguard.SubjectID, requestID, code string) error {
	return n.send(ctx, subject, Message{Kind: KindCode, Request: requestID, Code: code, ExpiresAt: n.Registry.now().UTC().Add(CodeTTL),
		Text: "Your privacy request code is " + code + ". It expires in 10 minutes. / 您的个人信息请求验证码为 " + code + "，10 分钟内有效。"})
}

// SendLink sends the download token of an access package, to an email first.
func (n Notifier) SendLink(ctx context.Context, subject privguard.SubjectID, requestID, token string, expires time.Time) error {
	until := expires.UTC().Format(time.RFC3339)
	return n.send(ctx, subject, Message{Kind: KindDownload, Request: requestID, Token: token, ExpiresAt: expires.UTC(),
		Text: "A copy of your personal information is ready. It can be downloaded once, until " + until +
			". / 您的个人信息副本已生成，可在 " + until + " 之前下载一次。"})
}

// SendIncidentNotice sends the notice of an incident (text, in every language), to an
// email first.
func (n Notifier) SendIncidentNotice(ctx context.Context, subject privguard.SubjectID, incidentID, text string) error {
	return n.send(ctx, subject, Message{Kind: KindIncident, Incident: incidentID, Text: text})
}

func (n Notifier) send(ctx context.Context, subject privguard.SubjectID, m Message) error {
	l, err := n.Registry.Reachable(ctx, subject, m.Kind)
	if err != nil {
		return err
	}
	return n.Registry.Send(ctx, l, m)
}
