package identity

import (
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"unicode"

	"github.com/nyaruka/phonenumbers"

	"github.com/privguard/privguard"
)

// Type is the kind of an identifier.
type Type string

// The identifier types.
const (
	Phone         Type = "phone"
	Email         Type = "email"
	WeChatOpenID  Type = "wechat_openid"
	WeChatUnionID Type = "wechat_unionid"
	DeviceID      Type = "device_id"
)

// Types lists every identifier type.
var Types = []Type{Phone, Email, WeChatOpenID, WeChatUnionID, DeviceID}

// DefaultRegion is the region of phone numbers given without a country code.
const DefaultRegion = "CN"

// Channels of the identifiers that can be sent to.
const (
	ChannelSMS   = "sms"
	ChannelEmail = "email"
)

// Valid reports whether t is a known identifier type.
func (t Type) Valid() bool {
	switch t {
	case Phone, Email, WeChatOpenID, WeChatUnionID, DeviceID:
		return true
	}
	return false
}

// Channel is how a message reaches an identifier of type t: "sms" for a phone, "email"
// for an email address, "" for the rest (they cannot be sent to).
func (t Type) Channel() string {
	switch t {
	case Phone:
		return ChannelSMS
	case Email:
		return ChannelEmail
	}
	return ""
}

// Error is an identifier refused by [Normalise]. It wraps privguard.ErrInvalid. It never
// holds the value.
type Error struct {
	// Field is "type" or "value".
	Field string
	// Reason says what is wrong, without the value.
	Reason string
}

func (e *Error) Error() string { return "identity: " + e.Field + ": " + e.Reason }

// Unwrap returns privguard.ErrInvalid.
func (e *Error) Unwrap() error { return privguard.ErrInvalid }

var (
	wechatID    = regexp.MustCompile(`^[A-Za-z0-9_-]{6,64}$`)
	maxEmail    = 254
	maxDeviceID = 128
	maxPhone    = 64
)

// Normalise returns the canonical form of an identifier: a phone number in E.164
// ("+8613800138000"; a number without a country code is taken as DefaultRegion's), an
// email address trimmed and in lower case, a WeChat id as given ([A-Za-z0-9_-]{6,64}), a
// device id as given (printable, at most 128 bytes). An unknown type or a malformed value
// returns an *Error wrapping privguard.ErrInvalid.
func Normalise(t Type, value string) (string, error) {
	if !t.Valid() {
		return "", &Error{Field: "type", Reason: fmt.Sprintf("unknown identifier type; want one of %s", typeList())}
	}
	switch t {
	case Phone:
		return normalisePhone(value)
	case Email:
		return normaliseEmail(value)
	case WeChatOpenID, WeChatUnionID:
		if !wechatID.MatchString(value) {
			return "", &Error{Field: "value", Reason: "a WeChat id is 6 to 64 letters, digits, '_' or '-'"}
		}
		return value, nil
	default: // DeviceID
		if value == "" || len(value) > maxDeviceID {
			return "", &Error{Field: "value", Reason: fmt.Sprintf("a device id is 1 to %d bytes", maxDeviceID)}
		}
		for _, r := range value {
			if r == unicode.ReplacementChar || !unicode.IsPrint(r) {
				return "", &Error{Field: "value", Reason: "a device id is printable text"}
			}
		}
		return value, nil
	}
}

func typeList() string {
	s := make([]string, len(Types))
	for i, t := range Types {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}

func normalisePhone(value string) (string, error) {
	value = strings.TrimSpace(value)
	if value == "" || len(value) > maxPhone {
		return "", &Error{Field: "value", Reason: "not a phone number"}
	}
	n, err := phonenumbers.Parse(value, DefaultRegion)
	if err != nil || !phonenumbers.IsValidNumber(n) {
		return "", &Error{Field: "value", Reason: "not a valid phone number (E.164, or a Chinese number without country code)"}
	}
	return phonenumbers.Format(n, phonenumbers.E164), nil
}

func normaliseEmail(value string) (string, error) {
	value = strings.ToLower(strings.TrimSpace(value))
	bad := &Error{Field: "value", Reason: "not an email address (local@domain)"}
	if value == "" || len(value) > maxEmail || strings.ContainsAny(value, " \t\r\n<>\"(),;:") {
		return "", bad
	}
	a, err := mail.ParseAddress(value)
	if err != nil || a.Name != "" || a.Address != value {
		return "", bad
	}
	at := strings.LastIndexByte(value, '@')
	domain := value[at+1:]
	if at < 1 || !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") {
		return "", bad
	}
	return value, nil
}

// Mask returns the display form of a normalised value: "+86 138****5678",
// "a***@example.com", "wx…abcd", "…abcd".
func Mask(t Type, normalised string) string {
	switch t {
	case Phone:
		n, err := phonenumbers.Parse(normalised, DefaultRegion)
		if err != nil {
			return "***"
		}
		cc := fmt.Sprintf("+%d", n.GetCountryCode())
		nat := phonenumbers.GetNationalSignificantNumber(n)
		if len(nat) >= 9 {
			return cc + " " + nat[:3] + strings.Repeat("*", len(nat)-7) + nat[len(nat)-4:]
		}
		if len(nat) > 2 {
			return cc + " " + strings.Repeat("*", len(nat)-2) + nat[len(nat)-2:]
		}
		return cc + " **"
	case Email:
		at := strings.LastIndexByte(normalised, '@')
		if at < 1 {
			return "***"
		}
		return normalised[:1] + "***" + normalised[at:]
	case WeChatOpenID, WeChatUnionID:
		return "wx…" + tail(normalised, 4)
	}
	return "…" + tail(normalised, 4)
}

// tail returns the last n runes of s, or fewer when s is short (never the whole of a
// value of n runes or fewer: half of it).
func tail(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		n = len(r) / 2
	}
	return string(r[len(r)-n:])
}
