package dsar

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/privguard/privguard"
)

// RecipientNotifier tells a recipient (a party the data was disclosed to) that a
// subject's data was erased, rectified or restricted, so that it does the same (GDPR
// Art. 19; PIPL Art. 23 and GB/T 35273 §9.2 for entrusted and shared data). It may
// return ErrPending when the recipient acknowledges later by callback.
type RecipientNotifier interface {
	Name() string
	NotifyRecipient(ctx context.Context, n RecipientNotice) error
}

// RecipientNotice is what a recipient is told.
type RecipientNotice struct {
	Request string              `json:"request"`
	Event   string              `json:"event"` // "erasure", "rectification" or "restriction"
	Subject privguard.SubjectID `json:"subject"`
	Regime  privguard.Regime    `json:"regime"`
	// Patch is a rectification's new values, for the recipient to apply.
	Patch map[privguard.DataCategory]string `json:"patch,omitempty"`
	// Categories are the categories a rectification changed.
	Categories []privguard.DataCategory `json:"categories,omitempty"`
}

// recipientTaskPrefix marks a request's tasks that notify recipients.
const recipientTaskPrefix = "recipient:"

func recipientTask(name string) string { return recipientTaskPrefix + name }

// IsRecipientTask reports whether a task's store names a recipient to notify.
func IsRecipientTask(store string) bool { return strings.HasPrefix(store, recipientTaskPrefix) }

// notifiesRecipients reports whether requests of type t are told to recipients.
func (t Type) notifiesRecipients() bool {
	return t == TypeDeletion || t == TypeCorrection || t == TypeRestriction
}

// notify tells recipient rn of r: the recipient task's work (see runTask).
func (e *Engine) notify(ctx context.Context, rn RecipientNotifier, r *Request) (int, error) {
	return 1, rn.NotifyRecipient(ctx, notice(r))
}

func notice(r *Request) RecipientNotice {
	n := RecipientNotice{Request: r.ID, Subject: r.Subject, Regime: r.Regime}
	switch r.Type {
	case TypeDeletion:
		n.Event = "erasure"
	case TypeCorrection:
		n.Event = "rectification"
		n.Patch = r.Patch
		n.Categories = slices.Sorted(maps.Keys(r.Patch))
	case TypeRestriction:
		n.Event = "restriction"
	}
	return n
}

// PackageReceiver is the optional capability of a recipient to receive a portability
// package directly (GDPR Art. 20(2): transmitted from one controller to another where
// technically feasible; PIPL Art. 45(3)).
type PackageReceiver interface {
	ReceivePackage(ctx context.Context, requestID string, zip []byte, sha256 string) error
}

// receiver returns the recipient named name if it can receive packages.
func (e *Engine) receiver(name string) (PackageReceiver, bool) {
	rn, ok := e.recipients[recipientTask(name)]
	if !ok {
		return nil, false
	}
	pr, ok := rn.(PackageReceiver)
	return pr, ok
}

// transfer hands a finished portability package to the recipient the subject named, as
// its one download, trying three times. If the recipient cannot be reached, the subject
// gets the download link instead, so the copy is not lost; the request records which.
func (e *Engine) transfer(ctx context.Context, r Request, token string) {
	pr, ok := e.receiver(r.TransferTo)
	handOverFailed := false
	for attempt := 0; ok && attempt < 3; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(attempt*attempt) * min(e.cfg.BaseBackoff, time.Second)):
			}
		}
		handOverFailed = false
		_, err := e.Download(ctx, r.ID, token, func(zip []byte, res Result) error {
			tctx, cancel := context.WithTimeout(ctx, e.cfg.TaskTimeout)
			defer cancel()
			if err := pr.ReceivePackage(tctx, r.ID, zip, res.SHA256); err != nil {
				handOverFailed = true
				return err
			}
			return nil
		})
		if err == nil {
			e.note(ctx, r.ID, "transferred to the named controller", r.TransferTo)
			return
		}
		if !handOverFailed {
			// The package is gone or its token was replaced (an operator issued a link):
			// nothing to hand over, and no link of ours to send.
			e.cfg.Logger.Warn("dsar: portability transfer not made", "request", r.ID, "err", describe(r.TransferTo, err))
			e.note(ctx, r.ID, "transfer not made", r.TransferTo)
			return
		}
		e.cfg.Logger.Warn("dsar: portability transfer failed", "request", r.ID, "attempt", attempt+1, "err", describe(r.TransferTo, err))
	}
	if _, can := e.cfg.Notifier.(LinkNotifier); !can {
		e.note(ctx, r.ID, "transfer failed; issue a download link for the subject", r.TransferTo)
		return
	}
	e.note(ctx, r.ID, "transfer failed; the download link goes to the subject", r.TransferTo)
	e.sendLink(ctx, r, token)
}

// note appends an event to a stored request (best effort: the log says it too).
func (e *Engine) note(ctx context.Context, id, what, detail string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if cur, err := e.get(ctx, id); err == nil {
		cur.event(e.cfg.Now().UTC(), what, detail)
		_ = e.put(ctx, &cur)
	}
}
