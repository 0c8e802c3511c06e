package consent

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"

	"github.com/privguard/privguard"
)

// What the evidence export (package evidence) needs of the ledger: every record in chain
// order, checked as Verify checks it; receipts that name a pseudonym; the receipt key to
// sign a checkpoint with.

// CheckpointType is the JWS "typ" of a checkpoint signed with [Ledger.SignCheckpoint]. A
// receipt's is "JWT", so that neither can be passed off as the other.
const CheckpointType = "privguard-checkpoint+json"

// Walk reads the stored head, then calls fn with every record up to it in sequence order,
// decoded (Hash set; r is fn's to keep) and as stored (body, valid only during the call:
// SHA-256 of it is r.Hash), each checked as [Verify] checks it. Records committed after the head
// was read are not visited. If the chain does not verify, Walk stops there and returns a
// *[Break] naming the record (errors.As); fn has then seen only the records before it.
// It returns the head walked to. Other errors: the store could not be read, or fn's.
func (l *Ledger) Walk(ctx context.Context, fn func(r *Record, body []byte) error) (seq uint64, hash [32]byte, err error) {
	headSeq, headHash, err := l.store.Head(ctx)
	if err != nil {
		return 0, hash, fmt.Errorf("consent: read head: %w", err)
	}
	if headSeq == 0 {
		return 0, hash, nil
	}
	rep, err := walk(ctx, l.store, headSeq, func(seq uint64, sum [32]byte, body []byte) error {
		r, err := decodeRecord(body)
		if err != nil {
			return &Break{Seq: seq, Problem: "encoding is corrupt"}
		}
		r.Hash = sum
		return fn(&r, body)
	})
	var brk *Break
	if errors.As(err, &brk) {
		return 0, hash, brk
	}
	if err != nil {
		return 0, hash, err
	}
	if rep.Break != nil {
		return 0, hash, rep.Break
	}
	if rep.HeadHash != hex.EncodeToString(headHash) {
		return 0, hash, &Break{Seq: headSeq, Problem: "does not have the hash the stored head names (the head or the record was altered)"}
	}
	return headSeq, [32]byte(headHash), nil
}

// Taxonomy returns the purposes the ledger records consent for.
func (l *Ledger) Taxonomy() *privguard.Taxonomy { return l.taxonomy }

// DecodeRecord parses a record encoding as stored (the bytes the record hash is the
// SHA-256 of), setting Hash to that digest. It never panics on hostile input.
func DecodeRecord(body []byte) (Record, error) {
	r, err := decodeRecord(body)
	if err != nil {
		return Record{}, err
	}
	r.Hash = sha256.Sum256(body)
	return r, nil
}

// Pseudonym returns the keyed pseudonym of subject that evidence exports name it by: the
// same for a subject in every export of this ledger, and computable only with the ledger's
// key (an HMAC-SHA256 under a key derived from it, distinct from the suppression list's).
func (l *Ledger) Pseudonym(subject privguard.SubjectID) string {
	mac := hmac.New(sha256.New, l.evidenceKey)
	mac.Write([]byte("privguard evidence pseudonym v1\x00"))
	mac.Write([]byte(subject))
	return "p-" + hex.EncodeToString(mac.Sum(nil)[:16])
}

// ReceiptOf returns the signed receipt of r, a record read from the ledger, as [Ledger.Receipt]
// does; with pseudonymous set, the receipt names the subject (and a guardian's reference)
// by [Ledger.Pseudonym] instead.
func (l *Ledger) ReceiptOf(ctx context.Context, r *Record, pseudonymous bool) (SignedReceipt, error) {
	rc := l.receiptOf(r, l.receiptNotice(ctx, r))
	if pseudonymous {
		rc.PIIPrincipalID = l.Pseudonym(r.Subject)
		if g := rc.ISO27560.Guardian; g != nil {
			c := *g
			c.Reference = l.Pseudonym(privguard.SubjectID(g.Reference))
			rc.ISO27560.Guardian = &c
		}
	}
	return l.sign(rc)
}

// sign returns rc with its compact JWS.
func (l *Ledger) sign(rc Receipt) (SignedReceipt, error) {
	payload, err := json.Marshal(rc)
	if err != nil {
		return SignedReceipt{}, fmt.Errorf("consent: encode receipt: %w", err)
	}
	compact, err := l.signJWS("JWT", payload)
	if err != nil {
		return SignedReceipt{}, err
	}
	return SignedReceipt{Receipt: rc, JWS: compact}, nil
}

// SignCheckpoint returns a compact JWS (EdDSA, the receipt key, typ [CheckpointType]) over
// payload, a checkpoint of the ledger's head.
func (l *Ledger) SignCheckpoint(payload []byte) (string, error) {
	return l.signJWS(CheckpointType, payload)
}

func (l *Ledger) signJWS(typ string, payload []byte) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: l.signer},
		(&jose.SignerOptions{}).WithType(jose.ContentType(typ)).WithHeader(jose.HeaderKey("kid"), l.ReceiptKeyID()))
	if err != nil {
		return "", fmt.Errorf("consent: signer: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("consent: sign: %w", err)
	}
	compact, err := jws.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("consent: serialize signature: %w", err)
	}
	return compact, nil
}
