package dsar

import (
	"context"
	"maps"
	"slices"
	"strings"

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
