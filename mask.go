package privguard

import "strings"

// Mask returns s masked for display (GB/T 35273 §7.2 style, SEC-08): a phone number of 11
// digits or more keeps its first three and last four (138****5678), a shorter one of at least
// 7 digits its first and last two; an email address keeps the first letter of its local part
// and its domain (l***@example.com); any other string keeps its first character (L***).
// Spaces, '+' and '-' count as part of a phone number. The empty string stays empty.
func Mask(s string) string {
	r := []rune(s)
	switch {
	case len(r) == 0:
		return s
	case strings.Contains(s, "@"):
		at := strings.LastIndex(s, "@")
		local := []rune(s[:at])
		if len(local) == 0 {
			return "***" + s[at:]
		}
		return string(local[:1]) + "***" + s[at:]
	case phoneDigits(s) >= 11:
		return string(r[:3]) + strings.Repeat("*", len(r)-7) + string(r[len(r)-4:])
	case phoneDigits(s) >= 7:
		return string(r[:2]) + strings.Repeat("*", len(r)-4) + string(r[len(r)-2:])
	}
	return string(r[:1]) + "***"
}

// phoneDigits returns how many digits s holds if it looks like a phone number (digits,
// spaces, '+' and '-' only), else 0.
func phoneDigits(s string) int {
	n := 0
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			n++
		case c == '+' || c == '-' || c == ' ':
		default:
			return 0
		}
	}
	return n
}
