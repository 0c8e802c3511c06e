package privguard

import (
	"fmt"
	"strings"
)

// MaxPurposeLen is the longest purpose name accepted, in bytes.
const MaxPurposeLen = 100

// Purpose is a declared reason for processing personal data, from a hierarchical,
// dot-separated taxonomy compatible with fideslang data uses, for example
// "marketing.communications.sms". A purpose covers its descendants: consent recorded for
// "marketing.communications" is consent for "marketing.communications.sms".
type Purpose string

// Validate reports whether p is syntactically a purpose name: dot-separated segments of
// lower-case letters, digits and underscores. It does not say whether p is registered.
func (p Purpose) Validate() error {
	if p == "" {
		return fmt.Errorf("purpose is empty: %w", ErrInvalid)
	}
	if len(p) > MaxPurposeLen {
		return fmt.Errorf("purpose is longer than %d bytes: %w", MaxPurposeLen, ErrInvalid)
	}
	prev := byte('.')
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '_':
		case c == '.' && prev != '.':
		default:
			return fmt.Errorf("purpose has a character not allowed at byte %d: %w", i, ErrInvalid)
		}
		prev = c
	}
	if prev == '.' {
		return fmt.Errorf("purpose ends with a dot: %w", ErrInvalid)
	}
	return nil
}

// Parent returns the purpose one level up ("marketing.communications" for
// "marketing.communications.sms"), or "" for a top-level purpose.
func (p Purpose) Parent() Purpose {
	if i := strings.LastIndexByte(string(p), '.'); i >= 0 {
		return p[:i]
	}
	return ""
}

// ChannelOf returns the outreach channel a purpose names, the one frequency limits count:
// "sms" for marketing.communications.sms and the purposes below it, and so for email, push
// and wechat; "" for any other purpose.
func ChannelOf(p Purpose) string {
	const prefix = "marketing.communications."
	rest, ok := strings.CutPrefix(string(p), prefix)
	if !ok {
		return ""
	}
	ch, _, _ := strings.Cut(rest, ".")
	switch ch {
	case "sms", "email", "push", "wechat":
		return ch
	}
	return ""
}

// Within reports whether p is ancestor itself or one of its descendants.
func (p Purpose) Within(ancestor Purpose) bool {
	if len(p) == len(ancestor) {
		return p == ancestor
	}
	return len(p) > len(ancestor) && p[len(ancestor)] == '.' && p[:len(ancestor)] == ancestor
}

// SeparateScope names why a purpose needs separate consent (单独同意) under PIPL.
type SeparateScope string

// The situations in which PIPL requires separate consent.
const (
	SeparateNone        SeparateScope = ""
	SeparateProvide     SeparateScope = "provide_to_handler" // Art. 23: providing PI to another handler
	SeparatePublic      SeparateScope = "public_disclosure"  // Art. 25: publishing PI
	SeparatePublicImage SeparateScope = "public_place_image" // Art. 26: images from public places for other purposes
	SeparateSensitive   SeparateScope = "sensitive"          // Art. 29: sensitive PI
	SeparateCrossBorder SeparateScope = "cross_border"       // Art. 39: transfer outside the PRC
)

// Valid reports whether s is a known scope ("" included).
func (s SeparateScope) Valid() bool {
	switch s {
	case SeparateNone, SeparateProvide, SeparatePublic, SeparatePublicImage, SeparateSensitive, SeparateCrossBorder:
		return true
	}
	return false
}

// NeedsRecipient reports whether consents of scope s are bound to a named recipient
// (PIPL Arts. 23 and 39 require the recipient's name, contact, purpose, method and categories).
func (s SeparateScope) NeedsRecipient() bool {
	return s == SeparateProvide || s == SeparateCrossBorder
}
