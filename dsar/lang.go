package dsar

import (
	"fmt"
	"slices"
	"time"

	"github.com/privguard/privguard"
)

// The reader of an access answer: the language its README.txt speaks first and the zone
// its times are shown in (issue 14, "Texts").

// Languages are the languages a request may ask its answer in (Request.Lang).
var Languages = []string{"zh-CN", "en"}

// shanghai is China Standard Time, for a system without the zone database (China keeps no
// daylight saving time).
var shanghai = time.FixedZone("CST", 8*3600)

// ReaderLang is the language r's answer is written in first: r.Lang, else by regime
// (PIPL: zh-CN, GDPR: en).
func ReaderLang(r Request) string {
	if r.Lang != "" {
		return r.Lang
	}
	if r.Regime == privguard.RegimeGDPR {
		return "en"
	}
	return "zh-CN"
}

// ReaderZone is the zone r's answer shows times in, and its name: r.Zone, else by regime
// (PIPL: Asia/Shanghai, Beijing time; GDPR: UTC).
func ReaderZone(r Request) (*time.Location, string) {
	name := r.Zone
	if name == "" {
		name = "UTC"
		if r.Regime != privguard.RegimeGDPR {
			name = "Asia/Shanghai"
		}
	}
	loc, err := time.LoadLocation(name)
	switch {
	case err == nil:
		return loc, name
	case name == "Asia/Shanghai":
		return shanghai, name
	}
	return time.UTC, "UTC" // a zone checked at intake that this system no longer knows
}

// CheckZone reports whether name is an IANA time zone this system knows ("Asia/Shanghai",
// "Europe/Berlin", "UTC"); "Local" and "" are not zones of a reader.
func CheckZone(name string) error {
	if name == "" || name == "Local" || len(name) > 64 {
		return fmt.Errorf("dsar: zone %q: want an IANA time zone name (Asia/Shanghai): %w", name, privguard.ErrInvalid)
	}
	if _, err := time.LoadLocation(name); err != nil {
		return fmt.Errorf("dsar: zone %q: not a time zone this system knows (Asia/Shanghai, Europe/Berlin): %w", name, privguard.ErrInvalid)
	}
	return nil
}

// checkReader checks r's language and zone, if given.
func checkReader(r *Request) error {
	if r.Lang != "" && !slices.Contains(Languages, r.Lang) {
		return fmt.Errorf("dsar: lang %q: want one of %v: %w", r.Lang, Languages, privguard.ErrInvalid)
	}
	if r.Zone != "" {
		return CheckZone(r.Zone)
	}
	return nil
}
