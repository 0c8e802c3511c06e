package retention

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/privguard/privguard"
)

func TestDescribe(t *testing.T) {
	rules := []Rule{
		collected("browsing-1y", 365*day, ThenDelete, "user.behavior.browsing_history"),
		{Name: "sms-grace", Categories: []privguard.DataCategory{"user.behavior", "user.contact"}, Purposes: []privguard.Purpose{"marketing.communications.sms"},
			Period: 7 * day, From: FromWithdrawn, Then: ThenAnonymise},
		{Name: "accounting", Categories: []privguard.DataCategory{"user"}, Purposes: []privguard.Purpose{"essential.service"},
			From: FromAccountClosed, Then: ThenRestrict, Ground: "accounting records 30 years", Keep: 10950 * day},
		{Name: "idle", Categories: []privguard.DataCategory{"user.contact"}, Purposes: []privguard.Purpose{"essential.service"}, Period: 36 * time.Hour, From: FromLastActive, Then: ThenDelete},
	}
	for _, tc := range []struct {
		cat  privguard.DataCategory
		want []string
	}{
		{"user.behavior.browsing_history", []string{
			"Kept for personalize.recommendation for 365 days after collection, then deleted (rule browsing-1y).",
			"Kept for marketing.communications.sms for 7 days after consent for marketing.communications.sms is withdrawn, refused or expires, then anonymised (rule sms-grace).",
			"Kept for essential.service until the account is closed or the service ends, then kept for storage and security only for 10950 days (accounting records 30 years), then deleted (rule accounting).",
		}},
		{"user.contact.email", []string{
			"Kept for marketing.communications.sms for 7 days after consent for marketing.communications.sms is withdrawn, refused or expires, then anonymised (rule sms-grace).",
			"Kept for essential.service until the account is closed or the service ends, then kept for storage and security only for 10950 days (accounting records 30 years), then deleted (rule accounting).",
			"Kept for essential.service for 36h0m0s after the subject's last activity, then deleted (rule idle).",
		}},
	} {
		if diff := cmp.Diff(tc.want, Describe(rules, tc.cat)); diff != "" {
			t.Errorf("Describe(%s) (-want +got):\n%s", tc.cat, diff)
		}
	}
	if got := Describe(rules[:1], "user.contact"); got != nil {
		t.Errorf("Describe of an uncovered category = %q; want none", got)
	}
}

func TestUncovered(t *testing.T) {
	rules := []Rule{collected("b", 365*day, ThenDelete, "user.behavior")}
	stores := append(sql(orders, views), Store{Name: "cache", Kind: "redis", Keys: []KeySpec{{Template: "k:{subject}", Categories: []privguard.DataCategory{"user.contact.email"}, DatedBy: "ttl"}}})
	want := []privguard.DataCategory{"user.contact.address", "user.contact.email", "user.content"}
	if diff := cmp.Diff(want, Uncovered(rules, stores, nil)); diff != "" {
		t.Errorf("Uncovered (-want +got):\n%s", diff)
	}
}
