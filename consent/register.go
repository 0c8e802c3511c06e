package consent

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/privguard/privguard"
)

// Limits on notices.
const (
	MaxNoticeTextLen = 1 << 20
	maxNoticeIDLen   = 64
)

// RegisterNotice registers one language of a notice version and returns it as stored (with
// its SHA-256 and creation time). created is false when exactly the same text was already
// registered, which makes registration idempotent.
//
// The first language of a version must carry the version's metadata (purposes, controller,
// retention, rights channels: CON-13); later languages may omit it or must repeat it
// unchanged. A different text for a registered language is a conflict: notices are
// immutable, a change is a new version.
func (l *Ledger) RegisterNotice(ctx context.Context, n Notice) (stored Notice, created bool, err error) {
	if err := l.checkNotice(&n); err != nil {
		return Notice{}, false, err
	}
	res := l.submit(ctx, &op{notice: &n})
	return res.notice, !res.replayed, res.err
}

func (l *Ledger) checkNotice(n *Notice) error {
	if !validNoticeID(n.ID) {
		return invalid("id", CodeInvalid, "must be 1 to 64 letters, digits and ._- starting with a letter or digit")
	}
	if n.Version == 0 {
		return invalid("version", CodeRequired, "must be a positive integer")
	}
	if n.Language == "" || len(n.Language) > 35 {
		return invalid("language", CodeRequired, "must be a language tag such as zh-CN or en")
	}
	if n.Text == "" {
		return invalid("text", CodeRequired, "the exact notice text shown to subjects is required")
	}
	if len(n.Text) > MaxNoticeTextLen {
		return invalid("text", CodeInvalid, "longer than %d bytes", MaxNoticeTextLen)
	}
	for i, p := range n.Purposes {
		// A notice may name a registered purpose or a group of them ("marketing").
		if !slices.ContainsFunc(l.purposes, func(info *privguard.PurposeInfo) bool { return info.Purpose.Within(p) }) {
			return invalid(fmt.Sprintf("purposes[%d]", i), CodePurposeUnknown, "no registered purpose is or falls under it")
		}
	}
	for i, p := range n.AffectedPurposes {
		if !slices.ContainsFunc(n.Purposes, func(q privguard.Purpose) bool { return p.Within(q) || q.Within(p) }) {
			return invalid(fmt.Sprintf("affected_purposes[%d]", i), CodeInvalid, "an affected purpose must be one of the notice's purposes")
		}
	}
	for i, c := range n.Categories {
		if c.Validate() != nil {
			return invalid(fmt.Sprintf("categories[%d]", i), CodeInvalid, "not a data category name")
		}
	}
	n.SHA256 = hexHash(textHash(n.Text))
	return nil
}

// validNoticeID reports whether id is 1 to maxNoticeIDLen ASCII letters, digits and "._-",
// starting with a letter or digit ("privacy-policy", "Marketing_2026.v2"). A notice id is the
// controller's name for a document, not a purpose: it needs only to fit unescaped in a URL
// path segment (GET /v1/notices/{id}), a storage key and a log line.
func validNoticeID(id string) bool {
	if id == "" || len(id) > maxNoticeIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// hasMeta reports whether n carries version metadata.
func (n *Notice) hasMeta() bool {
	return len(n.Purposes) > 0 || n.Controller != (Controller{}) || n.Retention != "" || len(n.RightsChannels) > 0 ||
		n.MaterialChange || len(n.AffectedPurposes) > 0 || len(n.Categories) > 0 || len(n.Recipients) > 0 ||
		len(n.StorageLocations) > 0 || n.PolicyURL != ""
}

// commitNotice validates a notice registration against what is registered, stores it and
// applies a material change to the in-memory state.
func (l *Ledger) commitNotice(o *op) {
	for attempt := 1; ; attempt++ {
		res, moved := l.tryNotice(o)
		if moved && attempt < maxCommitAttempts {
			// Another process committed meanwhile, perhaps this very notice: validate again
			// against what it registered.
			if err := l.catchUp(context.Background()); err == nil {
				continue
			}
		}
		if moved {
			res.err = fmt.Errorf("consent: commit notice: %w", privguard.ErrUnavailable)
		}
		o.res <- res
		return
	}
}

// tryNotice is one attempt of commitNotice; moved reports that a shared store's head
// moved, and nothing was committed.
func (l *Ledger) tryNotice(o *op) (res opResult, moved bool) {
	n := *o.notice
	langs := l.notices.version(n.ID, n.Version)
	if old := langs[n.Language]; old != nil {
		if old.Text != n.Text || (n.hasMeta() && !sameMeta(old, &n)) {
			res.err = conflict("text", CodeNoticeImmutable, "this language of this notice version is registered with a different content; register a new version")
			return
		}
		res.notice, res.replayed = *old, true
		return
	}
	if len(langs) > 0 {
		var first *Notice
		for _, x := range langs {
			first = x
			break
		}
		if n.hasMeta() && !sameMeta(first, &n) {
			res.err = conflict("purposes", CodeNoticeImmutable, "every language of a version must carry the same metadata")
			return
		}
		text, lang := n.Text, n.Language
		n = *first
		n.Text, n.Language, n.SHA256 = text, lang, hexHash(textHash(text))
	} else {
		switch {
		case len(n.Purposes) == 0:
			res.err = invalid("purposes", CodeRequired, "a notice version must list the purposes it informs about")
		case n.Controller.Name == "" || n.Controller.Contact == "":
			res.err = invalid("controller", CodeRequired, "a notice must name the controller and its contact (PIPL Art. 17)")
		case n.Retention == "":
			res.err = invalid("retention", CodeRequired, "a notice must say how long data is kept")
		case len(n.RightsChannels) == 0:
			res.err = invalid("rights_channels", CodeRequired, "a notice must say how subjects exercise their rights and withdraw")
		}
		if res.err != nil {
			return
		}
	}
	n.CreatedAt = l.now().UTC()
	body, err := json.Marshal(&n)
	if err != nil {
		res.err = fmt.Errorf("consent: encode notice: %w", err)
		return
	}
	err = l.commitBatch(&Batch{Notices: []StoredNotice{{Key: noticeKey(&n), Body: body}}})
	if errors.Is(err, ErrHeadMoved) {
		return res, true
	}
	if errors.Is(err, ErrMaybeCommitted) {
		// The answer was lost: the catch-up finds the notice if it was stored (and applies
		// it as another process's), or says the store cannot tell.
		switch cerr := l.catchUp(context.Background()); {
		case cerr != nil:
			l.log.Error("consent notice commit of unknown outcome", "err", err)
			res.err = ErrOutcomeUnknown
			return
		case l.notices.version(n.ID, n.Version)[n.Language] != nil:
			res.notice = *l.notices.version(n.ID, n.Version)[n.Language]
			return
		}
	}
	if err != nil {
		l.log.Error("consent notice commit failed", "err", err)
		res.err = fmt.Errorf("consent: commit notice: %w", privguard.ErrUnavailable)
		return
	}
	l.notices.add(&n)
	l.snapOld = true // snapshots depend on the notices
	if n.MaterialChange {
		l.invalidate(&n)
	}
	res.notice = n
	return res, false
}

// invalidate marks as invalidated every counting grant that cites an earlier version of n's
// notice for a purpose n's material change affects (CON-06).
func (l *Ledger) invalidate(n *Notice) {
	// The interned notice versions this change supersedes.
	older := map[uint32]bool{}
	for i, nv := range l.interns.noticeVersions() {
		if nv.id == n.ID && nv.version < n.Version {
			older[uint32(i+1)] = true
		}
	}
	marked := 0
	for i := range l.state.s {
		sh := &l.state.s[i]
		sh.mu.Lock()
		sh.each(func(_ privguard.SubjectID, st *subjectState) bool {
			var entries []entry
			for j, e := range st.list() {
				if !older[e.notice] || !e.state().Counts() || !n.affected(l.purposes[e.purpose].Purpose) {
					continue
				}
				if entries == nil {
					entries = slices.Clone(st.list())
				}
				entries[j].setState(StateInvalidated)
				marked++
			}
			if entries == nil {
				return false
			}
			st.setList(entries)
			return true
		})
		sh.mu.Unlock()
	}
	l.log.Info("notice material change invalidated earlier grants", "notice", n.ID, "version", n.Version, "grants", marked)
}

func noticeKey(n *Notice) string {
	k := binary.BigEndian.AppendUint32([]byte(n.ID+"\x00"), n.Version)
	return string(append(append(k, 0), n.Language...))
}

func decodeNotice(body []byte) (*Notice, error) {
	var n Notice
	if err := json.Unmarshal(body, &n); err != nil {
		return nil, fmt.Errorf("decode notice: %w", err)
	}
	return &n, nil
}

// Notices returns every version and language of notice id, or an error wrapping
// privguard.ErrNotFound.
func (l *Ledger) Notices(ctx context.Context, id string) ([]Notice, error) {
	list := l.notices.list(id)
	if len(list) == 0 {
		return nil, fmt.Errorf("notice: %w", privguard.ErrNotFound)
	}
	return list, nil
}
