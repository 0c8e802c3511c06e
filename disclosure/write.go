package disclosure

import (
	"context"
	"fmt"
	"time"

	"github.com/privguard/privguard"
)

// maxGroup bounds the entries of one write.
const maxGroup = 512

type pending struct {
	e    *Entry
	done chan error
}

// append queues e and waits for its group to be written.
func (g *Gate) append(ctx context.Context, e *Entry) error {
	p := &pending{e: e, done: make(chan error, 1)}
	select {
	case g.queue <- p:
	case <-g.stop:
		return fmt.Errorf("disclosure: the gate is closed: %w", privguard.ErrUnavailable)
	case <-ctx.Done():
		return fmt.Errorf("disclosure: log the provision: %w: %w", ctx.Err(), privguard.ErrUnavailable)
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		// The entry may still be written: the log errs on the side of a provision that
		// did not happen.
		return fmt.Errorf("disclosure: log the provision: %w: %w", ctx.Err(), privguard.ErrUnavailable)
	}
}

// write writes queued entries in groups: every entry waiting when a write starts goes in
// it, so that concurrent provisions share one commit.
func (g *Gate) write() {
	defer close(g.done)
	group := make([]*pending, 0, maxGroup)
	for {
		var first *pending
		select {
		case first = <-g.queue:
		case <-g.stop:
			// Entries queued before Close are written.
			for {
				select {
				case p := <-g.queue:
					g.flush(append(group[:0], p))
				default:
					return
				}
			}
		}
		group = append(group[:0], first)
	drain:
		for len(group) < maxGroup {
			select {
			case p := <-g.queue:
				group = append(group, p)
			default:
				break drain
			}
		}
		g.flush(group)
	}
}

func (g *Gate) flush(group []*pending) {
	bodies := make([]any, len(group))
	for i, p := range group {
		bodies[i] = p.e
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_, err := g.log.Append(ctx, bodies...)
	cancel()
	if err != nil {
		err = fmt.Errorf("disclosure: log the provision: %w: %w", err, privguard.ErrUnavailable)
	}
	for _, p := range group {
		p.done <- err
	}
}
