package journal

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// maxGroup bounds the entries of one grouped write.
const maxGroup = 512

// Batcher appends to a Journal in groups: every entry waiting when a write starts goes in
// it, so that concurrent writers share one commit (one fsync on bbolt, one transaction on
// PostgreSQL). Safe for concurrent use; Close stops it.
type Batcher struct {
	j         *Journal
	queue     chan *pending
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

type pending struct {
	body any
	done chan error
}

// NewBatcher starts a Batcher on j.
func NewBatcher(j *Journal) *Batcher {
	b := &Batcher{j: j, queue: make(chan *pending, 1024), stop: make(chan struct{}), done: make(chan struct{})}
	go b.run()
	return b
}

// ErrClosed is returned by [Batcher.Append] after Close.
var ErrClosed = fmt.Errorf("journal: the batcher is closed")

// Append queues body and waits until its group is written (or ctx ends: the entry may
// then still be written).
func (b *Batcher) Append(ctx context.Context, body any) error {
	p := &pending{body: body, done: make(chan error, 1)}
	select {
	case <-b.stop:
		return ErrClosed
	default:
	}
	select {
	case b.queue <- p:
	case <-b.stop:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-p.done:
		return err
	case <-b.done:
		// Queued as the writer stopped: written if it drained it, else not.
		select {
		case err := <-p.done:
			return err
		default:
			return ErrClosed
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close writes what is queued and stops.
func (b *Batcher) Close() {
	b.closeOnce.Do(func() { close(b.stop) })
	<-b.done
}

func (b *Batcher) run() {
	defer close(b.done)
	group := make([]*pending, 0, maxGroup)
	for {
		var first *pending
		select {
		case first = <-b.queue:
		case <-b.stop:
			for {
				select {
				case p := <-b.queue:
					b.flush([]*pending{p})
				default:
					return
				}
			}
		}
		group = append(group[:0], first)
	drain:
		for len(group) < maxGroup {
			select {
			case p := <-b.queue:
				group = append(group, p)
			default:
				break drain
			}
		}
		b.flush(group)
	}
}

func (b *Batcher) flush(group []*pending) {
	bodies := make([]any, len(group))
	for i, p := range group {
		bodies[i] = p.body
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_, err := b.j.Append(ctx, bodies...)
	cancel()
	for _, p := range group {
		p.done <- err
	}
}

// AppendAfter appends bodies only if the log's head is still head (compare and swap): the
// caller read the log up to head, decided on what it held, and must not write if someone
// else wrote since. It returns ErrHeadMoved, and stores nothing, if they did.
func (j *Journal) AppendAfter(ctx context.Context, head Entry, bodies ...any) ([]Entry, error) {
	entries := make([]Entry, len(bodies))
	j.mu.Lock()
	defer j.mu.Unlock()
	now := j.now().UTC().Truncate(time.Microsecond)
	if now.Before(head.Time) {
		now = head.Time
	}
	prev, seq := head.Hash, head.Seq
	for i, body := range bodies {
		raw, err := encode(j.log, body)
		if err != nil {
			return nil, err
		}
		seq++
		e := Entry{Log: j.log, Seq: seq, Time: now, Body: raw, Prev: prev}
		e.Hash = e.Sum()
		entries[i], prev = e, e.Hash
	}
	if err := j.store.AppendJournal(ctx, j.log, entries); err != nil {
		return nil, fmt.Errorf("journal %s: %w", j.log, err)
	}
	return entries, nil
}
