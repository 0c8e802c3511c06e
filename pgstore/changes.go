package pgstore

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
)

// Listener timing.
const (
	// listenIdle is how long the listener waits for a notification before it pings the
	// connection, so that a connection dead without a reset is noticed.
	listenIdle = 30 * time.Second
	// listenRetryMin and listenRetryMax bound the wait between reconnection attempts.
	listenRetryMin = 100 * time.Millisecond
	listenRetryMax = 5 * time.Second
)

// Changes implements consent.SharedStore. The first call starts the listener: a
// connection of its own (outside the pool) that LISTENs on the schema's channel and
// reconnects by itself, with backoff, when it is lost. The channel receives a value,
// coalesced, when another process committed, and also after every (re)connection, since
// notifications sent while disconnected are lost. It is never closed; after Close it
// stays silent.
func (s *ConsentStore) Changes() <-chan struct{} {
	s.db.listenOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		s.db.stop = cancel
		go s.db.listen(ctx)
	})
	return s.db.changes
}

// signal tells the ledger to look, without waiting for it.
func (db *DB) signal() {
	select {
	case db.changes <- struct{}{}:
	default:
	}
}

// listen is the listener's goroutine; Close stops it and waits.
func (db *DB) listen(ctx context.Context) {
	defer close(db.done)
	wait := listenRetryMin
	for {
		err := db.follow(ctx, func() { wait = listenRetryMin })
		if ctx.Err() != nil {
			return
		}
		db.log.Warn("pgstore: the change listener lost its connection; reconnecting", "err", err, "retry_in", wait.String())
		db.signal() // something may have been committed meanwhile
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, listenRetryMax)
	}
}

// follow connects, listens and forwards notifications until the connection fails or ctx
// ends. listening is called once the LISTEN is in place.
func (db *DB) follow(ctx context.Context, listening func()) error {
	cfg := db.pool.Config().ConnConfig
	// A deadline, not a cancel request, interrupts the idle wait: the connection stays
	// usable, and no cancel request can arrive later and hit the ping.
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.DeadlineContextWatcherHandler{Conn: c.Conn()}
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn.Close(cctx)
		cancel()
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{db.channel()}.Sanitize()); err != nil {
		return err
	}
	listening()
	db.signal()
	for {
		wctx, cancel := context.WithTimeout(ctx, listenIdle)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err):
			if err := conn.Ping(ctx); err != nil {
				return err
			}
		case err != nil:
			return err
		case n.Payload != db.instance:
			db.signal()
		}
	}
}
