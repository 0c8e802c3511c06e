package consent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"google.golang.org/protobuf/encoding/protowire"
)

// Break is the first place a ledger fails verification.
type Break struct {
	Seq     uint64 `json:"seq"`
	ID      string `json:"id,omitempty"` // empty if the record cannot be decoded
	Problem string `json:"problem"`
}

func (b *Break) Error() string {
	if b.ID != "" {
		return fmt.Sprintf("record %d (%s): %s", b.Seq, b.ID, b.Problem)
	}
	return fmt.Sprintf("record %d: %s", b.Seq, b.Problem)
}

// Report is the result of [Verify].
type Report struct {
	Records  uint64 `json:"records"`
	Notices  int    `json:"notices"`
	HeadSeq  uint64 `json:"head_seq"`
	HeadHash string `json:"head_hash"`
	// Break is nil when the whole ledger verifies.
	Break *Break `json:"break,omitempty"`
}

// Verify checks the whole ledger in store: every record's stored hash is the SHA-256 of its
// encoding, records are numbered 1..n without gaps, each carries its predecessor's hash,
// the stored head is the last record, every notice's hash matches its text and every grant
// cites a stored notice text by its hash. It reports the first record that does not match.
// An error means the store could not be read.
func Verify(ctx context.Context, store Store) (Report, error) {
	return walk(ctx, store, 0, nil)
}

// walk is Verify calling fn with each record that verifies, in order. With until > 0 it
// stops after record until, which must then be stored and be the last record checked
// (records appended meanwhile are not read), instead of comparing with the stored head.
func walk(ctx context.Context, store Store, until uint64, fn func(seq uint64, hash [32]byte, body []byte) error) (Report, error) {
	var rep Report
	texts := map[[32]byte]bool{} // text hashes of stored notices
	var noticeBreak *Break
	err := store.ScanNotices(ctx, func(body []byte) error {
		n, err := decodeNotice(body)
		if err != nil {
			noticeBreak = &Break{Problem: "a stored notice cannot be decoded"}
			return nil
		}
		rep.Notices++
		if hexHash(textHash(n.Text)) != n.SHA256 {
			noticeBreak = &Break{Problem: fmt.Sprintf("notice %s version %d (%s): text does not match its SHA-256", n.ID, n.Version, n.Language)}
		}
		texts[textHash(n.Text)] = true
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("verify: read notices: %w", err)
	}
	var prev [32]byte
	var want uint64 = 1
	errStop := errors.New("stop")
	check := func(seq uint64, hash, body []byte) error {
		brk := func(id []byte, format string, args ...any) error {
			rep.Break = &Break{Seq: seq, ID: string(id), Problem: fmt.Sprintf(format, args...)}
			return errStop
		}
		if seq != want {
			rep.Break = &Break{Seq: want, Problem: fmt.Sprintf("record is missing (next stored record is %d)", seq)}
			return errStop
		}
		c, err := chainFields(body)
		if err != nil {
			return brk(nil, "encoding is corrupt")
		}
		id := c.id
		sum := sha256.Sum256(body)
		if string(sum[:]) != string(hash) {
			return brk(id, "content does not match its hash (altered after it was written)")
		}
		if c.seq != seq {
			return brk(id, "says it is record %d", c.seq)
		}
		if c.prevHash != prev {
			return brk(id, "does not carry the hash of the record before it (a record was altered, removed or inserted)")
		}
		if c.grant && !texts[c.noticeHash] {
			return brk(id, "cites a notice text that is not stored")
		}
		prev = sum
		rep.Records++
		want++
		if fn != nil {
			if err := fn(seq, sum, body); err != nil {
				return err
			}
		}
		if seq == until {
			return errStop
		}
		return nil
	}
	if fn == nil {
		err = store.ScanRecords(ctx, 1, check)
	} else {
		// Page by page, so that fn runs outside the store's read and may read it too. A
		// page's hashes and bodies are copied into one buffer, reused for every page (fn
		// may not keep them): a walk of the whole ledger allocates a page, not the ledger.
		var page []storedRecord
		var arena []byte
		for err == nil {
			page, arena = page[:0], arena[:0]
			err = store.ScanRecords(ctx, want, func(seq uint64, hash, body []byte) error {
				page = append(page, storedRecord{seq: seq, at: len(arena), hashLen: len(hash), bodyLen: len(body)})
				arena = append(append(arena, hash...), body...)
				if len(page) == walkPage || seq == until {
					return errStop
				}
				return nil
			})
			if err != nil && !errors.Is(err, errStop) {
				break
			}
			err = nil
			for _, r := range page {
				hash := arena[r.at : r.at+r.hashLen : r.at+r.hashLen]
				body := arena[r.at+r.hashLen : r.at+r.hashLen+r.bodyLen : r.at+r.hashLen+r.bodyLen]
				if err = check(r.seq, hash, body); err != nil {
					break
				}
			}
			if len(page) < walkPage {
				break
			}
		}
	}
	if err != nil && !errors.Is(err, errStop) {
		return rep, fmt.Errorf("verify: read records: %w", err)
	}
	rep.HeadSeq = rep.Records
	rep.HeadHash = hex.EncodeToString(prev[:])
	if rep.Break != nil {
		return rep, nil
	}
	if until > 0 {
		if rep.Records != until {
			rep.Break = &Break{Seq: rep.Records + 1, Problem: fmt.Sprintf("record is missing (the head names record %d, the ledger ends at record %d)", until, rep.Records)}
		} else if noticeBreak != nil {
			rep.Break = noticeBreak
		}
		return rep, nil
	}
	headSeq, headHash, err := store.Head(ctx)
	if err != nil {
		return rep, fmt.Errorf("verify: read head: %w", err)
	}
	if headSeq != rep.Records || (headSeq > 0 && string(headHash) != string(prev[:])) {
		rep.Break = &Break{Seq: headSeq, Problem: fmt.Sprintf("the stored head names record %d but the ledger ends at record %d (records were removed or the head altered)", headSeq, rep.Records)}
		return rep, nil
	}
	if noticeBreak != nil {
		rep.Break = noticeBreak
	}
	return rep, nil
}

// walkPage is how many records walk reads from the store at a time when it calls fn.
const walkPage = 1024

// storedRecord is a record of a page: its hash and body are arena[at:at+hashLen] and the
// bodyLen bytes after them.
type storedRecord struct {
	seq                  uint64
	at, hashLen, bodyLen int
}

// chain is what Verify reads of a record.
type chain struct {
	id         []byte
	seq        uint64
	grant      bool
	noticeHash [32]byte
	prevHash   [32]byte
}

// chainFields reads the fields Verify needs from an encoding, without decoding the rest.
func chainFields(body []byte) (chain, error) {
	var c chain
	err := eachField(body, recordFields, recordVarints, func(num protowire.Number, v []byte, x uint64) error {
		switch num {
		case 2:
			c.id = v
		case 3:
			c.seq = x
		case 6:
			c.grant = string(v) == string(ActionGrant)
		case 12:
			if len(v) != 32 {
				return errCorrupt
			}
			c.noticeHash = [32]byte(v)
		case 27:
			if len(v) != 32 {
				return errCorrupt
			}
			c.prevHash = [32]byte(v)
		}
		return nil
	})
	return c, err
}
