package boltstore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
)

var ctx = context.Background()

// written is the number of records writeLedger writes.
const written = 50

// ledgerFile is a closed ledger file and what was written to it.
type ledgerFile struct {
	path     string
	ids      map[uint64]string              // record id by seq
	subjects map[uint64]privguard.SubjectID // subject by seq
}

// writeLedger writes a ledger of 50 grants and withdrawals to a file in a temporary
// directory and closes it. Every fourth record withdraws the grant before it.
func writeLedger(t *testing.T) ledgerFile {
	t.Helper()
	dir := t.TempDir()
	lf := ledgerFile{path: filepath.Join(dir, "privguard.db"), ids: map[uint64]string{}, subjects: map[uint64]privguard.SubjectID{}}
	// A subtest, so that consenttest.Open's cleanup closes ledger and file when it ends.
	ok := t.Run("write", func(t *testing.T) {
		l := consenttest.Open(t, dir, consent.Config{})
		if _, _, err := l.RegisterNotice(ctx, consenttest.MarketingNotice(1, "zh-CN")); err != nil {
			t.Fatalf("RegisterNotice: %v", err)
		}
		purposes := []privguard.Purpose{"marketing.communications.sms", "marketing.communications.email", "analytics.ab_testing"}
		var last consent.Request
		for i := 1; i <= written; i++ {
			req := consent.Request{
				Subject: privguard.SubjectID(fmt.Sprintf("cust-%03d", i)), Purpose: purposes[i%len(purposes)],
				Action: consent.ActionGrant, Regime: privguard.RegimePIPL,
				Notice:  &consent.NoticeRef{ID: "marketing", Version: 1, Language: "zh-CN"},
				Channel: consent.ChannelApp, Method: consent.MethodExplicit,
				Evidence: consent.Evidence{UserAgent: "ExampleApp/7.2 (iOS 18)"}, IP: fmt.Sprintf("203.0.113.%d", i),
			}
			if i%4 == 0 {
				req = consent.Request{Subject: last.Subject, Purpose: last.Purpose, Action: consent.ActionWithdraw}
			}
			rec, _, err := l.Append(ctx, req)
			if err != nil {
				t.Fatalf("Append #%d (%s): %v", i, req.Action, err)
			}
			if rec.Seq != uint64(i) {
				t.Fatalf("Append #%d: seq = %d; want %d", i, rec.Seq, i)
			}
			lf.ids[rec.Seq], lf.subjects[rec.Seq] = rec.ID, rec.Subject
			last = req
		}
	})
	if !ok {
		t.FailNow()
	}
	return lf
}

// copyLedger copies the ledger file to a new temporary directory.
func copyLedger(t *testing.T, lf ledgerFile) ledgerFile {
	t.Helper()
	b, err := os.ReadFile(lf.path)
	if err != nil {
		t.Fatal(err)
	}
	c := lf
	c.path = filepath.Join(t.TempDir(), "privguard.db")
	if err := os.WriteFile(c.path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// tamper edits the records bucket of the (closed) ledger file directly, as someone with
// write access to the file could.
func tamper(t *testing.T, path string, edit func(recs *bolt.Bucket) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("bolt.Open: %v", err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		recs := tx.Bucket([]byte("consent.records"))
		if recs == nil {
			return fmt.Errorf("no bucket consent.records")
		}
		return edit(recs)
	})
	if err != nil {
		t.Fatalf("tamper: %v", err)
	}
}

// storedRecord returns a copy of the stored value of record seq: hash, then body.
func storedRecord(recs *bolt.Bucket, seq uint64) ([]byte, error) {
	v := recs.Get(seqKey(seq))
	if len(v) < 32 {
		return nil, fmt.Errorf("record %d: stored value of %d bytes", seq, len(v))
	}
	return bytes.Clone(v), nil // v is the read-only mmap: never write to it
}

// changeSubjectByte changes the last character of the subject inside the stored body of
// record seq. If rehash, it also replaces the stored hash with the SHA-256 of the new body.
func changeSubjectByte(lf ledgerFile, seq uint64, rehash bool) func(*bolt.Bucket) error {
	return func(recs *bolt.Bucket) error {
		v, err := storedRecord(recs, seq)
		if err != nil {
			return err
		}
		body := v[32:]
		subject := []byte(lf.subjects[seq])
		i := bytes.Index(body, subject)
		if i < 0 {
			return fmt.Errorf("record %d: subject %q not found in its body", seq, subject)
		}
		body[i+len(subject)-1] = 'X' // cust-017 -> cust-01X
		if rehash {
			sum := sha256.Sum256(body)
			copy(v[:32], sum[:])
		}
		return recs.Put(seqKey(seq), v)
	}
}

func deleteRecord(seq uint64) func(*bolt.Bucket) error {
	return func(recs *bolt.Bucket) error {
		if recs.Get(seqKey(seq)) == nil {
			return fmt.Errorf("record %d is not stored", seq)
		}
		return recs.Delete(seqKey(seq))
	}
}

func swapRecords(a, b uint64) func(*bolt.Bucket) error {
	return func(recs *bolt.Bucket) error {
		va, err := storedRecord(recs, a)
		if err != nil {
			return err
		}
		vb, err := storedRecord(recs, b)
		if err != nil {
			return err
		}
		if err := recs.Put(seqKey(a), vb); err != nil {
			return err
		}
		return recs.Put(seqKey(b), va)
	}
}

// verifyFile runs consent.Verify on the ledger file, opened read-only as
// `privguard consent verify` opens it.
func verifyFile(t *testing.T, path string) consent.Report {
	t.Helper()
	db, err := boltstore.Open(path, boltstore.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("boltstore.Open: %v", err)
	}
	defer db.Close()
	rep, err := consent.Verify(ctx, db.Consent())
	if err != nil {
		t.Fatalf("Verify() error = %v; want a report", err)
	}
	return rep
}

// openLedger opens the ledger file with consent.Open and closes it again.
func openLedger(t *testing.T, path string) error {
	t.Helper()
	db, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatalf("boltstore.Open: %v", err)
	}
	defer db.Close()
	l, err := consent.Open(ctx, consent.Config{Store: db.Consent()})
	if err != nil {
		return err
	}
	return l.Close()
}

// TestVerifyNamesTamperedRecord alters a written ledger file directly in bbolt, as someone
// with access to the file could, and checks that Verify names the first record that no
// longer verifies.
//
// proves CON-05: the ledger is tamper-evident; an altered, removed or reordered record, or a
// truncated ledger, is detected and the first broken record is named.
func TestVerifyNamesTamperedRecord(t *testing.T) {
	orig := writeLedger(t)
	const (
		opens     = "opens"
		fails     = "fails"
		unchecked = "" // consent.Open only checks the head, not the hashes: not asserted
	)
	cases := []struct {
		name    string
		edit    func(lf ledgerFile) func(*bolt.Bucket) error
		wantSeq uint64 // 0: no break
		wantID  func(lf ledgerFile) string
		problem string // part of Break.Problem
		records uint64 // Report.Records: records verified before the break
		open    string // outcome of consent.Open on the tampered file
	}{{
		// proves CON-05: one byte of record 17's body changed (its subject) no longer matches
		// the stored hash.
		name:    "body_byte_changed",
		edit:    func(lf ledgerFile) func(*bolt.Bucket) error { return changeSubjectByte(lf, 17, false) },
		wantSeq: 17, wantID: func(lf ledgerFile) string { return lf.ids[17] },
		problem: "does not match its hash", records: 16, open: unchecked,
	}, {
		// proves CON-05: a record removed from the middle is named as missing. It has no id:
		// there is nothing left to read it from.
		name:    "record_deleted",
		edit:    func(ledgerFile) func(*bolt.Bucket) error { return deleteRecord(30) },
		wantSeq: 30, wantID: func(ledgerFile) string { return "" },
		problem: "missing", records: 29, open: unchecked,
	}, {
		// proves CON-05: an attacker who changes record 10 and stores the SHA-256 of the new
		// body as its hash makes record 10 consistent in itself, so Verify cannot fault it.
		// The break is named at record 11, the first record whose prev hash (the original hash
		// of record 10, which the attacker cannot change without rewriting every later record
		// and the head) no longer matches. Records 1 to 10 verify.
		name:    "body_and_hash_rewritten",
		edit:    func(lf ledgerFile) func(*bolt.Bucket) error { return changeSubjectByte(lf, 10, true) },
		wantSeq: 11, wantID: func(lf ledgerFile) string { return lf.ids[11] },
		problem: "does not carry the hash of the record before it", records: 10, open: unchecked,
	}, {
		// proves CON-05: records 20 and 21 swapped: record 20's slot holds a record that says
		// it is 21.
		name:    "records_reordered",
		edit:    func(ledgerFile) func(*bolt.Bucket) error { return swapRecords(20, 21) },
		wantSeq: 20, wantID: func(lf ledgerFile) string { return lf.ids[21] },
		problem: "says it is record 21", records: 19, open: fails,
	}, {
		// proves CON-05: the last record removed leaves every record's chain intact, but the
		// stored head still names record 50: the head check reports it, and consent.Open
		// refuses the ledger.
		name:    "last_record_removed",
		edit:    func(ledgerFile) func(*bolt.Bucket) error { return deleteRecord(written) },
		wantSeq: written, wantID: func(ledgerFile) string { return "" },
		problem: "head", records: written - 1, open: fails,
	}, {
		name:    "untouched",
		records: written, open: opens,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lf := copyLedger(t, orig)
			if tc.edit != nil {
				tamper(t, lf.path, tc.edit(lf))
			}
			rep := verifyFile(t, lf.path)
			if tc.wantSeq == 0 {
				if rep.Break != nil {
					t.Errorf("Verify() = %v; want no break", rep.Break)
				}
			} else {
				want := &consent.Break{Seq: tc.wantSeq, ID: tc.wantID(lf)}
				switch brk := rep.Break; {
				case brk == nil:
					t.Errorf("Verify() = no break; want a break at record %d (%s)", want.Seq, want.ID)
				case brk.Seq != want.Seq || brk.ID != want.ID:
					t.Errorf("Verify() = %v; want a break at record %d (%s)", brk, want.Seq, want.ID)
				case !strings.Contains(brk.Problem, tc.problem):
					t.Errorf("Verify() = %v; want a problem mentioning %q", brk, tc.problem)
				}
			}
			if rep.Records != tc.records {
				t.Errorf("Verify().Records = %d; want %d", rep.Records, tc.records)
			}
			if rep.Notices != 1 {
				t.Errorf("Verify().Notices = %d; want 1", rep.Notices)
			}
			err := openLedger(t, lf.path)
			switch tc.open {
			case opens:
				if err != nil {
					t.Errorf("consent.Open() = %v; want the ledger to open", err)
				}
			case fails:
				if err == nil {
					t.Errorf("consent.Open() = nil; want an error for the tampered ledger")
				}
			}
		})
	}
}

// TestOpenRefusesTruncatedLedger: a ledger whose last record was removed no longer matches
// its stored head, and consent.Open refuses it rather than rebuilding a state that silently
// lacks the record (and then reusing its sequence number).
//
// proves CON-05: truncation of the ledger is detected on open.
func TestOpenRefusesTruncatedLedger(t *testing.T) {
	lf := copyLedger(t, writeLedger(t))
	if err := openLedger(t, lf.path); err != nil {
		t.Fatalf("consent.Open() on the untouched ledger = %v; want nil", err)
	}
	tamper(t, lf.path, deleteRecord(written))
	err := openLedger(t, lf.path)
	if err == nil || !strings.Contains(err.Error(), "head") {
		t.Fatalf("consent.Open() = %v; want a head mismatch error", err)
	}
}
