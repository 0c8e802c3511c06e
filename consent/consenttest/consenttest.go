// Package consenttest provides helpers for tests that need a consent ledger: a real ledger
// on a bbolt file in a temporary directory, a settable clock and ready-made notices.
package consenttest

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/consent"
)

// Clock is a settable clock for Config.Now. The zero value reads as 2026-01-05 09:00 UTC.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.t.IsZero() {
		c.t = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	}
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.Now()
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Open opens a ledger on a fresh bbolt file in t.TempDir() (or on dir's file if dir is not
// empty) with cfg's other fields. It closes ledger and file when the test ends.
func Open(t testing.TB, dir string, cfg consent.Config) *consent.Ledger {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	db, err := boltstore.Open(filepath.Join(dir, "privguard.db"), boltstore.Options{})
	if err != nil {
		t.Fatalf("boltstore.Open: %v", err)
	}
	cfg.Store = db.Consent()
	l, err := consent.Open(context.Background(), cfg)
	if err != nil {
		db.Close()
		t.Fatalf("consent.Open: %v", err)
	}
	t.Cleanup(func() {
		l.Close()
		db.Close()
	})
	return l
}

// MarketingNotice is a notice (version 1, zh-CN) covering the marketing, analytics and
// personalisation purposes of the default taxonomy.
func MarketingNotice(version uint32, lang string) consent.Notice {
	return consent.Notice{
		ID: "marketing", Version: version, Language: lang,
		Text:           "我们将使用您的手机号码和购买记录向您发送促销信息。(v" + string(rune('0'+version)) + ")",
		Purposes:       []privguard.Purpose{"marketing", "analytics", "personalize", "third_party.sharing", "cross_border.transfer"},
		Controller:     consent.Controller{Name: "Example Retail Ltd", Contact: "privacy@example.com", DPO: "dpo@example.com"},
		Retention:      "until withdrawal, and at most 13 months after the last purchase",
		RightsChannels: []string{"https://example.com/privacy/choices", "app: 我的 > 隐私设置"},
		Categories:     []privguard.DataCategory{"user.contact.phone_number", "user.behavior.purchase_history"},
	}
}
