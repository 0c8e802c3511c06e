// Package journaltest holds test helpers for the journal: Mem, an in-memory store, and
// TestStore, the conformance suite every journal store passes.
package journaltest

import (
	"context"
	"sync"

	"github.com/privguard/privguard/journal"
)

// Mem is an in-memory journal.Store and journal.SetStore. The zero value is ready.
type Mem struct {
	mu   sync.Mutex
	logs map[string][]journal.Entry
	sets map[string]map[string]bool
}

var (
	_ journal.Store    = (*Mem)(nil)
	_ journal.SetStore = (*Mem)(nil)
)

// AppendJournal implements journal.Store.
func (m *Mem) AppendJournal(ctx context.Context, log string, entries []journal.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.logs == nil {
		m.logs = map[string][]journal.Entry{}
	}
	l := m.logs[log]
	var head journal.Entry
	if len(l) > 0 {
		head = l[len(l)-1]
	}
	if entries[0].Seq != head.Seq+1 || entries[0].Prev != head.Hash {
		return journal.ErrHeadMoved
	}
	for _, e := range entries {
		e.Body = append([]byte(nil), e.Body...)
		l = append(l, e)
	}
	m.logs[log] = l
	return nil
}

// JournalHead implements journal.Store.
func (m *Mem) JournalHead(ctx context.Context, log string) (journal.Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.logs[log]
	if len(l) == 0 {
		return journal.Entry{}, nil
	}
	return l[len(l)-1], nil
}

// JournalEntries implements journal.Store.
func (m *Mem) JournalEntries(ctx context.Context, log string, from uint64, fn func(journal.Entry) error) error {
	m.mu.Lock()
	l := append([]journal.Entry(nil), m.logs[log]...)
	m.mu.Unlock()
	for _, e := range l {
		if e.Seq < from {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// AddToSet implements journal.SetStore.
func (m *Mem) AddToSet(ctx context.Context, set string, members [][]byte, limit int64) (int, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sets == nil {
		m.sets = map[string]map[string]bool{}
	}
	s := m.sets[set]
	if s == nil {
		s = map[string]bool{}
		m.sets[set] = s
	}
	fresh := map[string]bool{}
	for _, b := range members {
		if !s[string(b)] {
			fresh[string(b)] = true
		}
	}
	if limit > 0 && int64(len(s)+len(fresh)) > limit {
		return len(fresh), int64(len(s)), journal.ErrSetLimit
	}
	for b := range fresh {
		s[b] = true
	}
	return len(fresh), int64(len(s)), nil
}

// SetSize implements journal.SetStore.
func (m *Mem) SetSize(ctx context.Context, set string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return int64(len(m.sets[set])), nil
}

// Tamper calls fn with log's stored entries, which it may change, for tests of Verify.
func (m *Mem) Tamper(log string, fn func([]journal.Entry) []journal.Entry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.logs[log] = fn(m.logs[log])
}
