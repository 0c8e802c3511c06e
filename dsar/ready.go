package dsar

import (
	"context"
	"errors"
	"fmt"

	"github.com/privguard/privguard"
)

// Prober is a Store that can show it still commits (boltstore.DSARStore does): Probe makes a
// small durable write of no meaning, as PutRequest would, and reports whether it could.
type Prober interface {
	Probe(ctx context.Context) error
}

// Ping reports whether the request store can commit: it probes a [Prober], and reads any
// other store (which a store that can no longer write may pass). A probe writes, so callers
// should not call Ping on every request (the admin API's readiness check probes at most
// once per consent.ProbeInterval while it succeeds). Returns an error wrapping
// privguard.ErrUnavailable.
func (e *Engine) Ping(ctx context.Context) error {
	var err error
	if p, ok := e.cfg.Store.(Prober); ok {
		err = p.Probe(ctx)
	} else if _, err = e.cfg.Store.Request(ctx, "\x00probe"); errors.Is(err, privguard.ErrNotFound) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("dsar: request store cannot commit: %w: %w", err, privguard.ErrUnavailable)
	}
	return nil
}
