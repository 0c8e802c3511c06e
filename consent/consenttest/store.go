package consenttest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
)

// TestStore is the conformance suite of a consent.Store (and of the optional Prober and
// Snapshotter): what one commit writes reads back exactly, copies are the caller's, the
// first suppression of a key is kept, a secret is created once, and a real ledger on the
// store keeps its state across a reopen and verifies. open returns a fresh, empty store
// each time it is called; the test closes what it opens.
func TestStore(t *testing.T, open func(t *testing.T) consent.Store) {
	ctx := context.Background()
	t.Run("empty", func(t *testing.T) {
		s := open(t)
		if seq, hash, err := s.Head(ctx); err != nil || seq != 0 || hash != nil {
			t.Errorf("Head() = %d, %x, %v; want 0, nil, nil", seq, hash, err)
		}
		if _, _, err := s.Record(ctx, 1); !errors.Is(err, privguard.ErrNotFound) {
			t.Errorf("Record(1) error = %v; want ErrNotFound", err)
		}
		if _, err := s.SeqByID(ctx, "nope"); !errors.Is(err, privguard.ErrNotFound) {
			t.Errorf("SeqByID error = %v; want ErrNotFound", err)
		}
		if seqs, err := s.SubjectSeqs(ctx, "cust-1"); err != nil || len(seqs) != 0 {
			t.Errorf("SubjectSeqs = %v, %v; want none", seqs, err)
		}
		if _, _, ok, err := s.Idempotent(ctx, "k"); ok || err != nil {
			t.Errorf("Idempotent = %v, %v; want not found", ok, err)
		}
		if _, ok, err := s.Suppression(ctx, [32]byte{1}); ok || err != nil {
			t.Errorf("Suppression = %v, %v; want not found", ok, err)
		}
		n := 0
		if err := s.ScanRecords(ctx, 1, func(uint64, []byte, []byte) error { n++; return nil }); err != nil || n != 0 {
			t.Errorf("ScanRecords = %d records, %v; want none", n, err)
		}
		if err := s.ScanNotices(ctx, func([]byte) error { n++; return nil }); err != nil || n != 0 {
			t.Errorf("ScanNotices = %d notices, %v; want none", n, err)
		}
	})

	t.Run("commit_reads_back", func(t *testing.T) {
		s := open(t)
		recs := Records(0, [32]byte{}, "cust-1", "cust-2", "cust-1")
		recs[0].IdempotencyKey, recs[0].Fingerprint = "idem-1", []byte("fp-1")
		sup := [32]byte{9}
		b := &consent.Batch{Records: recs, Notices: []consent.StoredNotice{{Key: "n\x00\x00\x00\x00\x01\x00en", Body: []byte(`{"id":"n"}`)}},
			Suppressions: []consent.StoredSuppression{{Key: sup, Seq: 2}}}
		if err := s.Commit(ctx, b); err != nil {
			t.Fatalf("Commit: %v", err)
		}
		for i := range b.Records { // the store must have copied what it keeps
			b.Records[i].Body[0] ^= 0xff
		}
		for _, r := range Records(0, [32]byte{}, "cust-1", "cust-2", "cust-1") {
			hash, body, err := s.Record(ctx, r.Seq)
			if err != nil || !bytes.Equal(hash, r.Hash[:]) || !bytes.Equal(body, r.Body) {
				t.Errorf("Record(%d) = %x, %q, %v; want %x, %q", r.Seq, hash, body, err, r.Hash, r.Body)
			}
			if seq, err := s.SeqByID(ctx, r.ID); err != nil || seq != r.Seq {
				t.Errorf("SeqByID(%s) = %d, %v; want %d", r.ID, seq, err, r.Seq)
			}
		}
		hash, body, _ := s.Record(ctx, 1)
		hash[0], body[0] = hash[0]^1, body[0]^1 // the caller's copy
		if h2, b2, _ := s.Record(ctx, 1); bytes.Equal(h2, hash) || bytes.Equal(b2, body) {
			t.Error("changing what Record returned changed the store")
		}
		if seqs, err := s.SubjectSeqs(ctx, "cust-1"); err != nil || !slices.Equal(seqs, []uint64{1, 3}) {
			t.Errorf("SubjectSeqs(cust-1) = %v, %v; want [1 3]", seqs, err)
		}
		if seqs, _ := s.SubjectSeqs(ctx, "cust-"); len(seqs) != 0 {
			t.Errorf("SubjectSeqs(a prefix of a subject) = %v; want none", seqs)
		}
		if seq, fp, ok, err := s.Idempotent(ctx, "idem-1"); err != nil || !ok || seq != 1 || string(fp) != "fp-1" {
			t.Errorf("Idempotent = %d, %q, %v, %v; want 1, fp-1", seq, fp, ok, err)
		}
		if seq, h, err := s.Head(ctx); err != nil || seq != 3 || !bytes.Equal(h, recs[2].Hash[:]) {
			t.Errorf("Head = %d, %x, %v; want 3, %x", seq, h, err, recs[2].Hash)
		}
		var notices []string
		s.ScanNotices(ctx, func(b []byte) error { notices = append(notices, string(b)); return nil })
		if !slices.Equal(notices, []string{`{"id":"n"}`}) {
			t.Errorf("ScanNotices = %q", notices)
		}
		var seqs []uint64
		if err := s.ScanRecords(ctx, 2, func(seq uint64, hash, body []byte) error {
			if want := recs[seq-1]; !bytes.Equal(hash, want.Hash[:]) {
				return fmt.Errorf("record %d: wrong hash", seq)
			}
			seqs = append(seqs, seq)
			return nil
		}); err != nil || !slices.Equal(seqs, []uint64{2, 3}) {
			t.Errorf("ScanRecords(from 2) = %v, %v; want [2 3]", seqs, err)
		}
		stop := errors.New("stop")
		if err := s.ScanRecords(ctx, 1, func(uint64, []byte, []byte) error { return stop }); !errors.Is(err, stop) {
			t.Errorf("ScanRecords returned %v; want fn's error", err)
		}
		// A later suppression of the same key keeps the first.
		more := Records(3, recs[2].Hash, "cust-2")
		if err := s.Commit(ctx, &consent.Batch{Base: 3, BaseHash: recs[2].Hash, Records: more,
			Suppressions: []consent.StoredSuppression{{Key: sup, Seq: 4}}}); err != nil {
			t.Fatalf("second Commit: %v", err)
		}
		if seq, ok, err := s.Suppression(ctx, sup); err != nil || !ok || seq != 2 {
			t.Errorf("Suppression = %d, %v, %v; want the first, 2", seq, ok, err)
		}
	})

	t.Run("secret_created_once", func(t *testing.T) {
		s := open(t)
		calls := 0
		create := func() ([]byte, error) { calls++; return []byte("s3cret"), nil }
		for range 2 {
			v, err := s.Secret(ctx, "audit.subject-hmac", create)
			if err != nil || string(v) != "s3cret" {
				t.Fatalf("Secret = %q, %v", v, err)
			}
		}
		if calls != 1 {
			t.Errorf("create called %d times; want 1", calls)
		}
		boom := errors.New("no entropy")
		if _, err := s.Secret(ctx, "other", func() ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
			t.Errorf("Secret with a failing create = %v; want its error", err)
		}
		if v, err := s.Secret(ctx, "other", func() ([]byte, error) { return []byte("later"), nil }); err != nil || string(v) != "later" {
			t.Errorf("Secret after a failed create = %q, %v; want it created now", v, err)
		}
	})

	t.Run("snapshot", func(t *testing.T) {
		s := open(t)
		snap, ok := s.(consent.Snapshotter)
		if !ok {
			t.Skip("the store keeps no snapshot")
		}
		read := func() (string, error) {
			var got string
			err := snap.ReadSnapshot(ctx, func(r io.Reader, size int64) error {
				b, err := io.ReadAll(r)
				if int64(len(b)) != size {
					return fmt.Errorf("size %d; read %d bytes", size, len(b))
				}
				got = string(b)
				return err
			})
			return got, err
		}
		if _, err := read(); !errors.Is(err, privguard.ErrNotFound) {
			t.Errorf("ReadSnapshot before any = %v; want ErrNotFound", err)
		}
		for _, v := range []string{"first", "second"} {
			if err := snap.WriteSnapshot(ctx, func(w io.Writer) error { _, err := io.WriteString(w, v); return err }); err != nil {
				t.Fatalf("WriteSnapshot: %v", err)
			}
		}
		boom := errors.New("disk full")
		if err := snap.WriteSnapshot(ctx, func(w io.Writer) error { io.WriteString(w, "half"); return boom }); err == nil {
			t.Error("WriteSnapshot with a failing write returned nil")
		}
		if got, err := read(); err != nil || got != "second" {
			t.Errorf("ReadSnapshot = %q, %v; want the last complete one", got, err)
		}
	})

	t.Run("probe", func(t *testing.T) {
		s := open(t)
		p, ok := s.(consent.Prober)
		if !ok {
			t.Skip("the store has no probe")
		}
		if err := p.Probe(ctx); err != nil {
			t.Errorf("Probe: %v", err)
		}
	})

	t.Run("ledger_reopens_and_verifies", func(t *testing.T) {
		s := open(t)
		clock := &Clock{}
		l, err := consent.Open(ctx, consent.Config{Store: s, Now: clock.Now})
		if err != nil {
			t.Fatalf("consent.Open: %v", err)
		}
		if _, _, err := l.RegisterNotice(ctx, MarketingNotice(1, "zh-CN")); err != nil {
			t.Fatal(err)
		}
		grant := func(subject privguard.SubjectID, p privguard.Purpose, key string) consent.Request {
			return consent.Request{Subject: subject, Purpose: p, Action: consent.ActionGrant, Regime: privguard.RegimePIPL,
				Notice:  &consent.NoticeRef{ID: "marketing", Version: 1, Language: "zh-CN"},
				Channel: consent.ChannelApp, Method: consent.MethodExplicit, IdempotencyKey: key,
				Evidence: consent.Evidence{UserAgent: "ExampleApp/7.2"}, IP: "203.0.113.77"}
		}
		for i, req := range []consent.Request{
			grant("cust-12", "marketing.communications.sms", "k1"),
			grant("cust-12", "marketing.communications.email", ""),
			{Subject: "cust-12", Purpose: "marketing.communications.email", Action: consent.ActionWithdraw},
			{Subject: "cust-13", Action: consent.ActionObject},
		} {
			if _, _, err := l.Append(ctx, req); err != nil {
				t.Fatalf("Append %d: %v", i, err)
			}
		}
		l.Close()
		l, err = consent.Open(ctx, consent.Config{Store: s, Now: clock.Now})
		if err != nil {
			t.Fatalf("consent.Open again: %v", err)
		}
		defer l.Close()
		for _, c := range []struct {
			subject privguard.SubjectID
			purpose privguard.Purpose
			allowed bool
		}{
			{"cust-12", "marketing.communications.sms", true},
			{"cust-12", "marketing.communications.email", false},
			{"cust-13", "marketing.communications.sms", false},
		} {
			if st, err := l.Check(ctx, c.subject, c.purpose); err != nil || st.Allowed != c.allowed {
				t.Errorf("Check(%s) after reopen = %v, %v; want allowed %v", c.purpose, st.Allowed, err, c.allowed)
			}
		}
		if sup, err := l.Suppressed(ctx, "cust-13"); err != nil || !sup {
			t.Errorf("Suppressed after reopen = %v, %v; want true", sup, err)
		}
		if _, replayed, err := l.Append(ctx, grant("cust-12", "marketing.communications.sms", "k1")); err != nil || !replayed {
			t.Errorf("Append with a used idempotency key after reopen: replayed %v, %v; want a replay", replayed, err)
		}
		if r, _, err := l.Append(ctx, grant("cust-14", "marketing.communications.sms", "")); err != nil || r.Seq != 5 {
			t.Errorf("next Append after reopen = seq %d, %v; want 5", r.Seq, err)
		}
		rep, err := consent.Verify(ctx, s)
		if err != nil || rep.Break != nil || rep.Records != 5 || rep.Notices != 1 {
			t.Errorf("Verify = %+v, %v; want 5 records, 1 notice, no break", rep, err)
		}
	})
}

// Records returns stored records for subjects, numbered from base+1 and hash-chained from
// baseHash. Their bodies are not record encodings (a store does not read them).
func Records(base uint64, baseHash [32]byte, subjects ...privguard.SubjectID) []consent.StoredRecord {
	out := make([]consent.StoredRecord, len(subjects))
	prev := baseHash
	for i, s := range subjects {
		seq := base + 1 + uint64(i)
		body := fmt.Appendf(nil, "record %d of %s after %x", seq, s, prev[:4])
		h := sha256.Sum256(append(prev[:], body...))
		out[i] = consent.StoredRecord{Seq: seq, ID: fmt.Sprintf("rec-%d-%x", seq, h[:4]), Subject: s, Hash: h, Body: body}
		prev = h
	}
	return out
}
