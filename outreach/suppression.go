package outreach

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
)

// Suppression export defaults and bounds.
const (
	// DefaultSuppressionLimit is how many subjects one page examines when no limit is given.
	DefaultSuppressionLimit = 1000
	// MaxSuppressionLimit is the most subjects one page examines.
	MaxSuppressionLimit = 10000
)

// Phone formats of a suppression export: what is hashed for a phone number.
const (
	// PhoneE164 hashes the E.164 form with its '+' ("+8613800138000"), as Google Ads
	// Customer Match wants it. It is the default.
	PhoneE164 = "e164"
	// PhoneDigits hashes the E.164 digits without the '+' ("8613800138000"), as Meta's
	// Custom Audiences want them (country code, no symbols, no leading zeros).
	PhoneDigits = "digits"
)

// ErrSuppressionQuery is a suppression query the export cannot answer (a channel without a
// hashable address, a bad cursor, limit or phone format). It wraps privguard.ErrInvalid.
var ErrSuppressionQuery = fmt.Errorf("outreach: suppression query: %w", privguard.ErrInvalid)

// AddressBook gives the normalised addresses of a subject on a channel ("sms": E.164
// phones, "email": trimmed lower-case emails); *identity.Registry is one.
type AddressBook interface {
	Addresses(ctx context.Context, subject privguard.SubjectID, channel string) ([]string, error)
}

// Suppressions exports, per channel, the subjects who must not be contacted, as the SHA-256
// hashes of their normalised addresses that ad platforms take for customer (exclusion) lists,
// for vendors that cannot take webhooks.
//
// A subject is suppressed on a channel when it withdrew or refused consent to
// marketing.communications.<channel> (an erasure withdraws every purpose), objected to
// direct marketing, or is on the ledger's suppression list. Subjects who never gave consent,
// or whose consent expired or was invalidated by a notice change, are not listed: they did
// not say no, the send gate refuses them anyway, and an exclusion list of everyone without
// consent is not one the ledger can know. Every phone or email link counts, verified or
// not: suppressing an address too many is the safe mistake.
//
// Erased subjects: their links are gone (and their vault key shredded), so their hashes
// cannot be computed again, and none is kept at erasure (it would be personal data kept
// after erasure). A vendor keeps the hashes it was given until it is told otherwise; the
// ledger's suppression list keeps only a keyed hash of the subject ID, which still stops
// privguard's own sends (DSR-13).
type Suppressions struct {
	// Ledger is the consent ledger. Required.
	Ledger *consent.Ledger
	// Addresses opens the subjects' addresses. Required.
	Addresses AddressBook
}

// SuppressionQuery is one page of a suppression export.
type SuppressionQuery struct {
	// Channel is sms or email.
	Channel string
	// Since is the cursor of a previous page's Next: only subjects with a ledger record
	// after it are examined. Empty or "0": a full export.
	Since string
	// Limit bounds the subjects examined (not the hashes): 0 means
	// DefaultSuppressionLimit, at most MaxSuppressionLimit.
	Limit int
	// PhoneFormat is PhoneE164 (empty) or PhoneDigits.
	PhoneFormat string
}

// SuppressionHash is one suppressed address, hex SHA-256 of its normalised form.
type SuppressionHash struct {
	Email string `json:"sha256_email,omitempty"`
	Phone string `json:"sha256_phone,omitempty"`
}

// SuppressionPage is one page of a suppression export.
type SuppressionPage struct {
	Channel string            `json:"channel"`
	Hashes  []SuppressionHash `json:"hashes"`
	// Next is the cursor to ask from next time (the sequence number of the last ledger
	// record the page covers).
	Next string `json:"next"`
	// More reports whether records after Next were left for another page (the limit was
	// reached); ask again with Since = Next at once.
	More bool `json:"more"`
}

// HashAddress returns the hex SHA-256 of a normalised address as an export lists it: an
// email as given (identity keeps it trimmed and lower-cased), a phone in E.164 with its '+'
// (PhoneE164, or "") or without it (PhoneDigits).
func HashAddress(channel, normalised, phoneFormat string) string {
	if channel == ChannelSMS && phoneFormat == PhoneDigits {
		normalised = strings.TrimPrefix(normalised, "+")
	}
	sum := sha256.Sum256([]byte(normalised))
	return hex.EncodeToString(sum[:])
}

// errPageFull stops the ledger walk once a page has its subjects.
var errPageFull = errors.New("outreach: suppression page full")

// Export returns one page: the hashes of the suppressed subjects among the first q.Limit
// subjects (in order of their first record) that have a ledger record after q.Since, as
// they stand now. Incremental exports list a subject again whenever its ledger state
// changes; a subject that gave consent again is not listed, and no removal is signalled:
// a vendor drops hashes by replacing its list with a full export. Each call reads the
// ledger's chain from its start. A bad query returns an error wrapping
// ErrSuppressionQuery; other errors: the ledger or the address book could not be read.
func (s *Suppressions) Export(ctx context.Context, q SuppressionQuery) (SuppressionPage, error) {
	if q.Channel != ChannelSMS && q.Channel != ChannelEmail {
		return SuppressionPage{}, fmt.Errorf("%w: channel must be sms or email (the channels with a hashable address)", ErrSuppressionQuery)
	}
	if q.PhoneFormat != "" && q.PhoneFormat != PhoneE164 && q.PhoneFormat != PhoneDigits {
		return SuppressionPage{}, fmt.Errorf("%w: phone format must be e164 or digits", ErrSuppressionQuery)
	}
	var since uint64
	if q.Since != "" {
		n, err := strconv.ParseUint(q.Since, 10, 64)
		if err != nil {
			return SuppressionPage{}, fmt.Errorf("%w: the cursor is not one a page gave", ErrSuppressionQuery)
		}
		since = n
	}
	limit := q.Limit
	switch {
	case limit == 0:
		limit = DefaultSuppressionLimit
	case limit < 0 || limit > MaxSuppressionLimit:
		return SuppressionPage{}, fmt.Errorf("%w: limit must be 1 to %d", ErrSuppressionQuery, MaxSuppressionLimit)
	}
	purpose := privguard.Purpose("marketing.communications." + q.Channel)
	if st, err := s.Ledger.Check(ctx, "", purpose); err != nil {
		return SuppressionPage{}, err
	} else if st.Reason == privguard.ReasonPurposeUnknown {
		return SuppressionPage{}, fmt.Errorf("outreach: the taxonomy has no purpose %s: %w", purpose, privguard.ErrNotFound)
	}

	// Records past the ledger's in-memory state (on a shared store, another process's not
	// yet followed) are left for a later page: the states read below would not show them.
	applied := s.Ledger.Stats().Records
	var subjects []privguard.SubjectID
	seen := map[privguard.SubjectID]bool{}
	last, more := since, false
	head, _, err := s.Ledger.Walk(ctx, func(r *consent.Record, _ []byte) error {
		if r.Seq <= since {
			return nil
		}
		if r.Seq > applied {
			return errPageFull
		}
		if r.Subject != "" && !seen[r.Subject] {
			if len(subjects) == limit {
				more = true
				return errPageFull
			}
			seen[r.Subject] = true
			subjects = append(subjects, r.Subject)
		}
		last = r.Seq
		return nil
	})
	if err != nil && !errors.Is(err, errPageFull) {
		return SuppressionPage{}, fmt.Errorf("outreach: suppression export: %w", err)
	}
	if !more {
		last = max(last, min(head, applied))
	}

	page := SuppressionPage{Channel: q.Channel, Hashes: []SuppressionHash{}, Next: strconv.FormatUint(last, 10), More: more}
	listed := map[string]bool{}
	for _, subject := range subjects {
		ok, err := s.suppressed(ctx, subject, purpose)
		if err != nil {
			return SuppressionPage{}, err
		}
		if !ok {
			continue
		}
		addrs, err := s.Addresses.Addresses(ctx, subject, q.Channel)
		if err != nil {
			return SuppressionPage{}, fmt.Errorf("outreach: suppression export: %w", err)
		}
		for _, a := range addrs {
			h := HashAddress(q.Channel, a, q.PhoneFormat)
			if listed[h] {
				continue
			}
			listed[h] = true
			if q.Channel == ChannelSMS {
				page.Hashes = append(page.Hashes, SuppressionHash{Phone: h})
			} else {
				page.Hashes = append(page.Hashes, SuppressionHash{Email: h})
			}
		}
	}
	return page, nil
}

// suppressed reports whether subject must not be contacted for purpose: it withdrew or
// refused the consent, objected to direct marketing, or is on the suppression list.
func (s *Suppressions) suppressed(ctx context.Context, subject privguard.SubjectID, purpose privguard.Purpose) (bool, error) {
	st, err := s.Ledger.Check(ctx, subject, purpose)
	if err != nil {
		return false, err
	}
	if st.State == consent.StateWithdrawn || st.State == consent.StateRefused || st.Facts.ObjectedToDM {
		return true, nil
	}
	return s.Ledger.Suppressed(ctx, subject)
}
