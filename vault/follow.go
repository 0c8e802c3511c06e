package vault

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/privguard/privguard"
)

// A vault on a [SharedStore] follows the tombstones the other processes record: every
// FollowInterval it reads those after the last it read and evicts their subjects'
// keysets from its cache, so that a subject shredded through any process can no longer be
// opened through this one (a keyset not cached is read from the store, which no longer
// has it). When it cannot read them for MaxStaleness, it fails closed: Seal and Open
// answer privguard.ErrUnavailable rather than use a keyset that may have been shredded.

// ErrStale is returned (wrapped; it matches privguard.ErrUnavailable) by a vault on a
// shared store that could not read the other processes' shreds for Config.MaxStaleness.
var ErrStale = fmt.Errorf("vault: cannot confirm that no other process shredded the key (the shared store is unreachable): %w", privguard.ErrUnavailable)

func (v *Vault) startFollowing(ss SharedStore, cfg Config) error {
	v.shared = ss
	v.maxStale = cmp.Or(cfg.MaxStaleness, DefaultMaxStaleness)
	v.followEvery = min(cmp.Or(cfg.FollowInterval, DefaultFollowInterval), v.maxStale/3)
	v.cache.tomb = v.tombstone
	v.stop, v.stopped = make(chan struct{}), make(chan struct{})
	// The tombstones recorded so far are in the store already: only the cursor is needed.
	ctx, cancel := context.WithTimeout(context.Background(), v.maxStale)
	defer cancel()
	start := v.now().UnixNano()
	if err := ss.TombstonesAfter(ctx, 0, func(cursor uint64, _ [32]byte) error {
		v.cursor = cursor
		return nil
	}); err != nil {
		return fmt.Errorf("vault: read tombstones: %w", err)
	}
	v.confirmed.Store(start)
	go v.follow()
	return nil
}

// Close stops following a shared store. It is a no-op for a vault on a store of its own.
func (v *Vault) Close() error {
	if v.shared == nil {
		return nil
	}
	v.closeOnce.Do(func() { close(v.stop); <-v.stopped })
	return nil
}

func (v *Vault) follow() {
	defer close(v.stopped)
	t := time.NewTicker(v.followEvery)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-v.stop:
			return
		case <-t.C:
		}
		err := v.readTombstones()
		switch {
		case err != nil && !failing:
			failing = true
			v.log.Warn("vault cannot read the shared store's tombstones; seal and open fail closed once stale", "max_staleness", v.maxStale.String(), "err", err)
		case err == nil && failing:
			failing = false
			v.log.Info("vault follows the shared store's tombstones again")
		}
	}
}

// readTombstones evicts the subjects shredded since the last read.
func (v *Vault) readTombstones() error {
	ctx, cancel := context.WithTimeout(context.Background(), max(v.maxStale/2, time.Second))
	defer cancel()
	start := v.now().UnixNano()
	tombs := map[[32]byte]bool{}
	cursor := v.cursor
	if err := v.shared.TombstonesAfter(ctx, cursor, func(c uint64, t [32]byte) error {
		tombs[t], cursor = true, c
		return nil
	}); err != nil {
		return err
	}
	if len(tombs) > 0 {
		// Under the write lock, so that a load that read the keyset before the shred
		// cannot put it back after this eviction.
		v.mu.Lock()
		v.cache.evictTombstones(tombs)
		v.mu.Unlock()
	}
	v.cursor = cursor
	v.confirmed.Store(start)
	return nil
}

// current fails with ErrStale on a shared store not read for MaxStaleness.
func (v *Vault) current() error {
	if v.shared != nil && v.now().UnixNano()-v.confirmed.Load() > int64(v.maxStale) {
		return ErrStale
	}
	return nil
}
