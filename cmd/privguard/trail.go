package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"time"

	"github.com/privguard/privguard/internal/trail"
	"github.com/privguard/privguard/policy"
)

// openTrail opens the admin trail in the backend's journal, with its subject key kept in
// the store.
func openTrail(ctx context.Context, be *backend, replica string, log *slog.Logger) (*trail.Trail, error) {
	key, err := be.Consent.Secret(ctx, "trail.subject-hmac", func() ([]byte, error) {
		k := make([]byte, 32)
		_, err := rand.Read(k)
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("admin trail key: %w", err)
	}
	return trail.Open(be.Journal, key, replica, log)
}

// trailReloads writes each policy reload (its revision, or that it was rejected) to the
// trail, until ctx ends.
func trailReloads(ctx context.Context, engine *policy.Engine, t *trail.Trail) {
	st := engine.Status()
	rev, failures := st.Revision, st.Failures
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		st := engine.Status()
		if st.Revision != rev {
			_ = t.Record(ctx, trail.Entry{Principal: "serve", Via: "serve", Act: "policy reload", Outcome: "ok",
				Target: map[string]string{"revision": st.Revision, "previous": rev}})
			rev = st.Revision
		}
		if st.Failures != failures {
			_ = t.Record(ctx, trail.Entry{Principal: "serve", Via: "serve", Act: "policy reload", Outcome: "failed",
				Target: map[string]string{"revision": rev}, Detail: "the new policy was rejected; the previous one stays"})
			failures = st.Failures
		}
	}
}

// cliPrincipal names who runs a command: the operating-system user.
func cliPrincipal() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "os:" + u.Username
	}
	return fmt.Sprintf("os:uid-%d", os.Getuid())
}
