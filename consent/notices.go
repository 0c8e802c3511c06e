package consent

import (
	"slices"
	"sync"

	"github.com/privguard/privguard"
)

// noticeTable holds every registered notice in memory (notices are few and small).
type noticeTable struct {
	mu sync.RWMutex
	// byID maps notice id -> version -> language -> notice.
	byID map[string]map[uint32]map[string]*Notice
}

func newNoticeTable() *noticeTable {
	return &noticeTable{byID: map[string]map[uint32]map[string]*Notice{}}
}

func (t *noticeTable) add(n *Notice) {
	t.mu.Lock()
	defer t.mu.Unlock()
	vs := t.byID[n.ID]
	if vs == nil {
		vs = map[uint32]map[string]*Notice{}
		t.byID[n.ID] = vs
	}
	ls := vs[n.Version]
	if ls == nil {
		ls = map[string]*Notice{}
		vs[n.Version] = ls
	}
	ls[n.Language] = n
}

// version returns the languages of one notice version (nil if none).
func (t *noticeTable) version(id string, v uint32) map[string]*Notice {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.byID[id][v]
}

// anyOf returns one language of a notice version, or nil.
func (t *noticeTable) anyOf(id string, v uint32) *Notice {
	for _, n := range t.version(id, v) {
		return n
	}
	return nil
}

// list returns every language of every version of notice id, ordered by version and language.
func (t *noticeTable) list(id string) []Notice {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []Notice
	for _, ls := range t.byID[id] {
		for _, n := range ls {
			out = append(out, *n)
		}
	}
	slices.SortFunc(out, func(a, b Notice) int {
		if a.Version != b.Version {
			return int(a.Version) - int(b.Version)
		}
		if a.Language < b.Language {
			return -1
		}
		if a.Language > b.Language {
			return 1
		}
		return 0
	})
	return out
}

// superseded reports whether a later version of notice id marked as a material change
// affects purpose p, so that a grant citing version v no longer counts for p.
func (t *noticeTable) superseded(id string, v uint32, p privguard.Purpose) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.supersededLocked(t.byID[id], v, p)
}

// supersededBytes is superseded for an id held as bytes.
func (t *noticeTable) supersededBytes(id []byte, v uint32, p privguard.Purpose) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.supersededLocked(t.byID[string(id)], v, p)
}

func (t *noticeTable) supersededLocked(versions map[uint32]map[string]*Notice, v uint32, p privguard.Purpose) bool {
	for ver, ls := range versions {
		if ver <= v {
			continue
		}
		for _, n := range ls {
			if n.MaterialChange && n.affected(p) {
				return true
			}
			break // metadata is the same in every language
		}
	}
	return false
}
