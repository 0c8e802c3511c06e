package evidence

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
)

// ConsentReport is what VerifyConsent checked.
type ConsentReport struct {
	Scope    Scope
	Records  int
	Receipts int
	Totals   Count
	Days     int // rows of counts.json
	TreeSize uint64
	Root     string
	HeadSeq  uint64
	HeadHash string
	KeyID    string
	// PublicKey is the Ed25519 key (hex) everything is signed with: compare it with the
	// ledger's (GET /v1/receipts/keys, or a copy kept elsewhere).
	PublicKey string
	SignedAt  time.Time
	ProofSize int
}

// maxLine bounds one line of records.jsonl.
const maxLine = 16 << 20

// VerifyConsent checks a consent evidence export b (opened with Open, which checked the
// manifest): the checkpoint's signature with the bundle's key, that it covers the
// members, every record's receipt signature and that the receipt is the record's, every
// record's encoding against its hash (in an export about one subject), that every record
// is in scope, the inclusion of every record in the checkpoint's tree, and the counts
// recomputed from the records. The first thing that does not verify is a *Failure naming
// the member, the line and the record.
func VerifyConsent(b *Bundle) (ConsentReport, error) {
	var rep ConsentReport
	if b.Manifest.Kind != ConsentKind {
		return rep, &Failure{Member: ManifestName, Problem: fmt.Sprintf("kind %q is not a consent evidence export", b.Manifest.Kind)}
	}
	// The key, and the checkpoint it signed.
	raw, err := b.ReadMember(MemberKey, 1<<20)
	if err != nil {
		return rep, err
	}
	var keys jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &keys); err != nil || len(keys.Keys) != 1 {
		return rep, &Failure{Member: MemberKey, Problem: "not a JWK set of one key"}
	}
	pub, ok := keys.Keys[0].Key.(ed25519.PublicKey)
	if !ok {
		return rep, &Failure{Member: MemberKey, Problem: "the key is not an Ed25519 public key"}
	}
	kid := keys.Keys[0].KeyID
	rep.KeyID, rep.PublicKey = kid, hex.EncodeToString(pub)
	raw, err = b.ReadMember(MemberCheckpoint, 1<<20)
	if err != nil {
		return rep, err
	}
	payload, problem := verifyJWS(strings.TrimSpace(string(raw)), pub, kid, consent.CheckpointType)
	if problem != "" {
		return rep, &Failure{Member: MemberCheckpoint, Problem: problem}
	}
	var cp Checkpoint
	if err := json.Unmarshal(payload, &cp); err != nil || cp.Type != CheckpointPayloadType {
		return rep, &Failure{Member: MemberCheckpoint, Problem: "the signed payload is not a consent checkpoint"}
	}
	root, err := hex32(cp.Root)
	if err != nil || cp.TreeSize != cp.HeadSeq {
		return rep, &Failure{Member: MemberCheckpoint, Problem: "the checkpoint's root or size is malformed"}
	}
	for _, m := range []string{MemberRecords, MemberCounts, MemberInclusion, MemberKey} {
		if cp.Members[m] != b.SHA256(m) {
			return rep, &Failure{Member: m, Problem: "is not the one the signed checkpoint covers (altered, and the manifest with it)"}
		}
	}
	rep.Scope, rep.TreeSize, rep.Root, rep.HeadSeq, rep.HeadHash, rep.SignedAt = cp.Scope, cp.TreeSize, cp.Root, cp.HeadSeq, cp.HeadHash, cp.SignedAt
	if err := cp.Scope.Validate(); err != nil {
		return rep, &Failure{Member: MemberCheckpoint, Problem: "the scope is not valid: " + err.Error()}
	}

	// The records, their receipts (checked in parallel) and the leaves they prove.
	rc, err := b.Member(MemberRecords)
	if err != nil {
		return rep, err
	}
	defer rc.Close()
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	var leaves []leaf
	counts := newCounter()
	rv := newReceiptChecker(pub, kid)
	fail := func(line int, seq uint64, format string, args ...any) error {
		rv.stop()
		return &Failure{Member: MemberRecords, Line: line, Record: seq, Problem: fmt.Sprintf(format, args...)}
	}
	line := 0
	for sc.Scan() {
		line++
		var ln Line
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ln); err != nil {
			return rep, fail(line, 0, "not a record line: %v", err)
		}
		hash, err := hex32(ln.Hash)
		if err != nil {
			return rep, fail(line, ln.Seq, "the record hash is malformed")
		}
		if ln.Seq == 0 || len(leaves) > 0 && ln.Seq <= leaves[len(leaves)-1].index+1 {
			return rep, fail(line, ln.Seq, "records are not in ledger order")
		}
		var rec recordFields
		if err := json.Unmarshal(ln.Record, &rec); err != nil {
			return rep, fail(line, ln.Seq, "the record is not a consent record: %v", err)
		}
		if rec.Seq != ln.Seq || rec.Hash != ln.Hash {
			return rep, fail(line, ln.Seq, "the record's seq or hash is not the line's")
		}
		if cp.Scope.pseudonymous() {
			if ln.Encoding != nil {
				return rep, fail(line, ln.Seq, "a pseudonymous export carries a record encoding (which names the subject)")
			}
			if !isPseudonym(rec.Subject) {
				return rep, fail(line, ln.Seq, "the subject is not a pseudonym")
			}
		} else {
			r, err := consent.DecodeRecord(ln.Encoding)
			if err != nil {
				return rep, fail(line, ln.Seq, "the encoding does not decode: %v", err)
			}
			if r.Hash != hash {
				return rep, fail(line, ln.Seq, "the encoding does not match the record hash (the record was altered)")
			}
			want, err := json.Marshal(r)
			if err != nil {
				return rep, fail(line, ln.Seq, "the encoding cannot be shown: %v", err)
			}
			var got bytes.Buffer
			if err := json.Compact(&got, ln.Record); err != nil || !bytes.Equal(got.Bytes(), want) {
				return rep, fail(line, ln.Seq, "the record is not what its encoding holds (the record was altered)")
			}
		}
		if !cp.Scope.holds(rec.subjectID(), rec.purpose(), rec.Action, rec.Time) {
			return rep, fail(line, ln.Seq, "the record is outside the export's scope")
		}
		if err := rv.check(line, ln, rec); err != nil {
			return rep, err
		}
		counts.add(rec.Purpose, rec.Action, rec.Time)
		leaves = append(leaves, leaf{index: ln.Seq - 1, hash: hash})
	}
	if err := sc.Err(); err != nil {
		return rep, fail(line+1, 0, "cannot be read: %v", err)
	}
	if err := rv.wait(); err != nil {
		return rep, err
	}
	rep.Records, rep.Receipts = len(leaves), len(leaves)
	if len(leaves) != cp.Records {
		return rep, &Failure{Member: MemberRecords, Problem: fmt.Sprintf("holds %d records; the signed checkpoint says %d", len(leaves), cp.Records)}
	}

	// Inclusion.
	raw, err = b.ReadMember(MemberInclusion, 1<<30)
	if err != nil {
		return rep, err
	}
	var inc Inclusion
	if err := json.Unmarshal(raw, &inc); err != nil || inc.TreeSize != cp.TreeSize {
		return rep, &Failure{Member: MemberInclusion, Problem: "not an inclusion proof for the checkpoint's tree"}
	}
	proof := make([][32]byte, len(inc.Nodes))
	for i, n := range inc.Nodes {
		if proof[i], err = hex32(n); err != nil {
			return rep, &Failure{Member: MemberInclusion, Problem: fmt.Sprintf("node %d is malformed", i)}
		}
	}
	if err := verifyInclusion(cp.TreeSize, root, leaves, proof); err != nil {
		return rep, &Failure{Member: MemberInclusion, Problem: err.Error()}
	}
	rep.ProofSize = len(proof)

	// Counts.
	raw, err = b.ReadMember(MemberCounts, 1<<30)
	if err != nil {
		return rep, err
	}
	var got Counts
	if err := json.Unmarshal(raw, &got); err != nil {
		return rep, &Failure{Member: MemberCounts, Problem: "not counts: " + err.Error()}
	}
	want := counts.result(cp.Scope)
	if got.Totals != want.Totals {
		return rep, &Failure{Member: MemberCounts, Problem: fmt.Sprintf("the totals %+v are not those of the records %+v", got.Totals, want.Totals)}
	}
	if len(got.ByDay) != len(want.ByDay) {
		return rep, &Failure{Member: MemberCounts, Problem: fmt.Sprintf("%d rows; the records make %d", len(got.ByDay), len(want.ByDay))}
	}
	for i := range want.ByDay {
		if got.ByDay[i] != want.ByDay[i] {
			return rep, &Failure{Member: MemberCounts, Problem: fmt.Sprintf("row %d %+v; the records make %+v", i+1, got.ByDay[i], want.ByDay[i])}
		}
	}
	rep.Totals, rep.Days = want.Totals, len(want.ByDay)
	return rep, nil
}

// recordFields is what the verifier reads of a record line's JSON.
type recordFields struct {
	ID      string         `json:"id"`
	Seq     uint64         `json:"seq"`
	Subject string         `json:"subject"`
	Purpose string         `json:"purpose"`
	Action  consent.Action `json:"action"`
	Time    time.Time      `json:"time"`
	Hash    string         `json:"hash"`
}

func (r recordFields) subjectID() privguard.SubjectID { return privguard.SubjectID(r.Subject) }
func (r recordFields) purpose() privguard.Purpose     { return privguard.Purpose(r.Purpose) }

// isPseudonym reports whether s has the form of Ledger.Pseudonym's result.
func isPseudonym(s string) bool {
	h, ok := strings.CutPrefix(s, "p-")
	if !ok || len(h) != 32 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil
}

func hex32(s string) ([32]byte, error) {
	var h [32]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return h, errors.New("want 64 hex digits")
	}
	return [32]byte(b), nil
}

// VerifyJWS verifies a compact JWS (RFC 7515) signed with EdDSA by pub under kid with
// header typ, and returns its payload, or a problem ("" when it verifies).
func VerifyJWS(compact string, pub ed25519.PublicKey, kid, typ string) ([]byte, string) {
	return verifyJWS(compact, pub, kid, typ)
}

// verifyJWS verifies a compact JWS (RFC 7515) signed with EdDSA by pub under kid with
// header typ, and returns its payload, or a problem. It is done by hand rather than with
// go-jose, which costs more than the Ed25519 check itself on a million receipts.
func verifyJWS(compact string, pub ed25519.PublicKey, kid, typ string) ([]byte, string) {
	header, rest, ok1 := strings.Cut(compact, ".")
	payload64, sig64, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(sig64, ".") {
		return nil, "not a compact JWS"
	}
	if problem := checkHeader(header, kid, typ); problem != "" {
		return nil, problem
	}
	sig, err := base64.RawURLEncoding.DecodeString(sig64)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, "not a compact JWS: the signature is malformed"
	}
	if !ed25519.Verify(pub, []byte(compact[:len(header)+1+len(payload64)]), sig) {
		return nil, "the signature does not verify (altered, or signed with another key)"
	}
	payload, err := base64.RawURLEncoding.DecodeString(payload64)
	if err != nil {
		return nil, "not a compact JWS: the payload is malformed"
	}
	return payload, ""
}

// checkHeader checks a JWS protected header (base64url): EdDSA, kid, typ, and no critical
// extensions.
func checkHeader(header64, kid, typ string) string {
	raw, err := base64.RawURLEncoding.DecodeString(header64)
	if err != nil {
		return "not a compact JWS: the header is malformed"
	}
	var h struct {
		Alg  string          `json:"alg"`
		Kid  string          `json:"kid"`
		Typ  string          `json:"typ"`
		Crit json.RawMessage `json:"crit"`
	}
	if err := json.Unmarshal(raw, &h); err != nil || h.Alg != "EdDSA" || h.Crit != nil {
		return "not a JWS signed with EdDSA"
	}
	if h.Kid != kid {
		return fmt.Sprintf("signed with key %q, not the bundle's %q", h.Kid, kid)
	}
	if h.Typ != typ {
		return fmt.Sprintf("a JWS of type %q, not %q", h.Typ, typ)
	}
	return ""
}

// receiptChecker verifies receipts on every processor while the records are read, and
// reports the failure of the earliest line.
type receiptChecker struct {
	pub  ed25519.PublicKey
	kid  string
	jobs chan receiptJob
	wg   sync.WaitGroup
	mu   sync.Mutex
	fail *Failure
	once sync.Once
}

type receiptJob struct {
	line int
	ln   Line
	rec  recordFields
}

func newReceiptChecker(pub ed25519.PublicKey, kid string) *receiptChecker {
	c := &receiptChecker{pub: pub, kid: kid, jobs: make(chan receiptJob, 1024)}
	for range runtime.GOMAXPROCS(0) {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			for j := range c.jobs {
				if p := c.verify(j); p != "" {
					c.mu.Lock()
					if c.fail == nil || j.line < c.fail.Line {
						c.fail = &Failure{Member: MemberRecords, Line: j.line, Record: j.ln.Seq, Problem: p}
					}
					c.mu.Unlock()
				}
			}
		}()
	}
	return c
}

func (c *receiptChecker) check(line int, ln Line, rec recordFields) error {
	c.mu.Lock()
	f := c.fail
	c.mu.Unlock()
	if f != nil {
		c.stop()
		return f
	}
	c.jobs <- receiptJob{line, ln, rec}
	return nil
}

func (c *receiptChecker) stop() {
	c.once.Do(func() { close(c.jobs) })
	c.wg.Wait()
}

func (c *receiptChecker) wait() error {
	c.stop()
	if c.fail != nil {
		return c.fail
	}
	return nil
}

func (c *receiptChecker) verify(j receiptJob) string {
	payload, problem := verifyJWS(j.ln.Receipt, c.pub, c.kid, "JWT")
	if problem != "" {
		return "the receipt: " + problem
	}
	var r consent.Receipt
	if err := json.Unmarshal(payload, &r); err != nil {
		return "the receipt is not a consent receipt"
	}
	x := r.ISO27560
	purpose := j.rec.Purpose
	if purpose == "" {
		purpose = "subject:" + string(j.rec.Action)
	}
	switch {
	case x.RecordHash != j.ln.Hash || x.LedgerSeq != j.ln.Seq:
		return "the receipt is for another record (its record hash or seq differs)"
	case r.ConsentReceiptID != j.rec.ID:
		return "the receipt's id is not the record's"
	case r.PIIPrincipalID != j.rec.Subject:
		return "the receipt names another subject than the record"
	case x.Action != j.rec.Action || r.ConsentTimestamp != j.rec.Time.Unix():
		return "the receipt's action or time is not the record's"
	case len(r.Services) != 1 || len(r.Services[0].Purposes) != 1 || r.Services[0].Purposes[0].Purpose != purpose:
		return "the receipt's purpose is not the record's"
	}
	return ""
}
