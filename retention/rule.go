package retention

import (
	"fmt"
	"strings"
	"time"

	"github.com/privguard/privguard"
)

// From is what a rule's period runs from.
type From string

// The events a period runs from.
const (
	// FromCollected: a row's dated_by column (when it was collected).
	FromCollected From = "collected"
	// FromLastActive: the subject's latest activity over every table with last_active_by.
	FromLastActive From = "last_active"
	// FromAccountClosed: when the subject's account was closed or the service ended.
	FromAccountClosed From = "account_closed"
	// FromWithdrawn: when consent for every purpose of the rule lapsed (withdrawn, refused
	// or expired); the period is the grace period (CON-09).
	FromWithdrawn From = "withdrawn"
)

// Then is what happens when a rule's period ends.
type Then string

// The ends of a period.
const (
	ThenDelete    Then = "delete"
	ThenAnonymise Then = "anonymise"
	// ThenRestrict moves the subject's categories to storage and security only for Keep,
	// on a legal Ground, and deletes them after.
	ThenRestrict Then = "restrict"
)

// Rule is one retention rule: data of Categories (and their sub-categories), kept for
// Purposes, is kept Period from From, then deleted, anonymised or restricted.
type Rule struct {
	Name       string
	Categories []privguard.DataCategory
	Purposes   []privguard.Purpose
	Period     time.Duration
	From       From
	Then       Then
	// Ground is the legal ground of a restrict rule; Keep how long storage and security only
	// lasts, after which the data is deleted.
	Ground string
	Keep   time.Duration
}

// subjectLevel reports whether the rule is judged per subject rather than per row.
func (r Rule) subjectLevel() bool { return r.From != FromCollected }

// covers reports whether the rule covers category c under covers.
func (r Rule) covers(c privguard.DataCategory, covers Covers) bool {
	for _, rc := range r.Categories {
		if covers(rc, c) {
			return true
		}
	}
	return false
}

// Covers reports whether a rule naming category rule covers data of category held: in the
// taxonomy, held equals rule or is below it.
type Covers func(rule, held privguard.DataCategory) bool

// Within is the default Covers: held.Within(rule).
func Within(rule, held privguard.DataCategory) bool { return held.Within(rule) }

// Describe returns one plain-English statement per rule covering c (by taxonomy ancestry),
// in rule order, for the access package and the record of processing: "Kept for
// personalize.recommendation for 365 days after collection, then deleted (rule
// browsing-1y)." None: c is kept indefinitely, which the caller says.
func Describe(rules []Rule, c privguard.DataCategory) []string {
	var out []string
	for _, r := range rules {
		if !r.covers(c, Within) {
			continue
		}
		purposes := make([]string, len(r.Purposes))
		for i, p := range r.Purposes {
			purposes[i] = string(p)
		}
		var from string
		switch r.From {
		case FromCollected:
			from = "collection"
		case FromLastActive:
			from = "the subject's last activity"
		case FromAccountClosed:
			from = "the account is closed or the service ends"
		case FromWithdrawn:
			from = "consent for " + strings.Join(purposes, " and ") + " is withdrawn, refused or expires"
		default:
			from = string(r.From)
		}
		var then string
		switch r.Then {
		case ThenAnonymise:
			then = "then anonymised"
		case ThenRestrict:
			then = fmt.Sprintf("then kept for storage and security only for %s (%s), then deleted", span(r.Keep), r.Ground)
		default:
			then = "then deleted"
		}
		when := "for " + span(r.Period) + " after " + from
		if r.Period == 0 {
			when = "until " + from
		}
		out = append(out, fmt.Sprintf("Kept for %s %s, %s (rule %s).", strings.Join(purposes, ", "), when, then, r.Name))
	}
	return out
}

// span writes d in days when it is whole days ("365 days"), else as a duration ("36h0m0s").
func span(d time.Duration) string {
	switch {
	case d == 24*time.Hour:
		return "1 day"
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return d.String()
}
