package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/privguard/privguard/internal/config"
	"github.com/privguard/privguard/middleware"
	"github.com/privguard/privguard/redislimit"
)

// frequencyKeySecret names the store's secret the shared counter hashes subject ids with.
const frequencyKeySecret = "frequency.subject-hmac"

// secretStore is the store's named secrets (boltstore.ConsentStore has them).
type secretStore interface {
	Secret(ctx context.Context, name string, create func() ([]byte, error)) ([]byte, error)
}

// contactCounter builds the counter of the frequency limits, with the windows of
// policy.frequency: in memory, or shared by the replicas on Redis (frequency_store.redis).
// allowUncounted lists the channels whose sends go ahead uncounted when Redis does not
// answer (policy.frequency.<channel>.on_unavailable: allow). closeIt closes the counter.
func contactCounter(ctx context.Context, cfg *config.File, secrets secretStore, log *slog.Logger) (_ middleware.ContactCounter, allowUncounted map[string]bool, closeIt func() error, err error) {
	windows := map[string]time.Duration{}
	for ch, f := range frequency(cfg) {
		w, err := time.ParseDuration(f.Window)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("config: policy.frequency[%s].window %q is not a duration", ch, f.Window)
		}
		windows[ch] = w
	}
	rc := cfg.FrequencyStore.Redis
	if rc == nil {
		return middleware.NewContacts(windows, nil), nil, func() error { return nil }, nil
	}
	for ch, f := range cfg.Policy.Frequency {
		if f.OnUnavailable == "allow" {
			if allowUncounted == nil {
				allowUncounted = map[string]bool{}
			}
			allowUncounted[ch] = true
		}
	}
	rcfg := redislimit.Config{Addr: rc.Addr, DB: rc.DB, KeyPrefix: rc.KeyPrefix, Windows: windows, Logger: log}
	if rc.Timeout != nil {
		rcfg.Timeout = rc.Timeout.Duration
	}
	if rc.PasswordFile != "" {
		b, err := os.ReadFile(rc.PasswordFile)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("config: frequency_store.redis.password_file: %w", err)
		}
		rcfg.Password = string(bytes.TrimRight(b, "\r\n"))
	}
	if rc.KeyFile != "" {
		b, err := os.ReadFile(rc.KeyFile)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("config: frequency_store.redis.key_file: %w", err)
		}
		if rcfg.Key = bytes.TrimSpace(b); len(rcfg.Key) < redislimit.MinKeyLen {
			return nil, nil, nil, fmt.Errorf("config: frequency_store.redis.key_file %s holds %d bytes; want at least %d", rc.KeyFile, len(rcfg.Key), redislimit.MinKeyLen)
		}
	} else if rcfg.Key, err = secrets.Secret(ctx, frequencyKeySecret, func() ([]byte, error) {
		k := make([]byte, 32)
		_, err := rand.Read(k)
		return k, err
	}); err != nil {
		return nil, nil, nil, fmt.Errorf("frequency counter key: %w", err)
	}
	c, err := redislimit.New(rcfg)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("config: frequency_store.redis: %w", err)
	}
	// Replicas whose keys differ would count the same subject under different keys: a
	// limit of 2 would let 2 through each. Refused at start; an unreachable Redis is not
	// (it may come back, and on_unavailable says what happens meanwhile).
	switch err := c.CheckKey(ctx); {
	case errors.Is(err, redislimit.ErrKeyMismatch):
		c.Close()
		return nil, nil, nil, fmt.Errorf("frequency_store.redis: %w; give every replica the same frequency_store.redis.key_file (or one shared store)", err)
	case err != nil:
		log.Warn("frequency_store.redis does not answer; sends on its channels follow on_unavailable until it does", "addr", rc.Addr, "err", err)
	}
	log.Info("contacts counted on Redis, shared by the replicas", "addr", rc.Addr, "allow_uncounted", len(allowUncounted))
	return c, allowUncounted, c.Close, nil
}
