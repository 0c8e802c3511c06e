package consent

import (
	"context"
	"fmt"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/privguard/privguard"
)

// replay applies the stored record body at seq to the state during start-up. It reads only
// the fields the state needs, straight from the encoding, and allocates little: the
// subject's key and, for a new subject or purpose list, the state itself.
func (l *Ledger) replay(seq uint64, body []byte, owner ownerFunc) error {
	_, err := l.replayRecord(seq, body, owner, false)
	return err
}

// replayRecord is replay that also returns the record's previous hash, for a caller that
// checks the chain; live, while the ledger serves (following another process's record on a
// shared store), it changes the state under the shard locks.
func (l *Ledger) replayRecord(seq uint64, body []byte, owner ownerFunc, live bool) (prev [32]byte, err error) {
	var (
		c               = change{purpose: -1}
		subject, action []byte
		purpose, notice []byte
		recipient       []byte
		haveRecipient   bool
		categories      [][]byte
		recordSeq       uint64
		noticeVer       uint32
		channel, method []byte
		collectedBy     []byte
		proof, contract bool
	)
	err = eachField(body, recordFields, recordVarints, func(num protowire.Number, v []byte, x uint64) error {
		switch num {
		case 3:
			recordSeq = x
		case 4:
			subject = v
		case 5:
			purpose = v
		case 6:
			action = v
		case 8:
			c.regime = regimeOfBytes(v)
		case 9:
			notice = v
		case 10:
			noticeVer = uint32(x)
		case 17:
			haveRecipient = true
			return eachField(v, recipientFields, 0, func(num protowire.Number, v []byte, _ uint64) error {
				if num == 1 {
					recipient = v
				}
				return nil
			})
		case 13:
			channel = v
		case 14:
			method = v
		case 18:
			c.guardian = true
		case 20:
			return eachField(v, evidenceFields, 1<<10, func(num protowire.Number, v []byte, _ uint64) error {
				switch num {
				case 6:
					collectedBy = v
				case 7:
					contract = len(v) > 0
				case 8:
					proof = len(v) > 0
				}
				return nil
			})
		case 19:
			c.ageBand = ageBandOf(v)
		case 21:
			categories = append(categories, v)
		case 23:
			c.time = int64(x)
		case 24:
			c.expires = int64(x)
		case 27:
			copy(prev[:], v)
		case 29:
			c.effective = int64(x)
		}
		return nil
	})
	if err != nil {
		return prev, err
	}
	if recordSeq != seq {
		return prev, fmt.Errorf("stored at %d but says it is %d: %w", seq, recordSeq, errCorrupt)
	}
	c.seq, c.action = seq, actionOf(action)
	if c.action == "" {
		return prev, fmt.Errorf("unknown action: %w", errCorrupt)
	}
	if c.action == ActionGrant {
		c.unproven = unprovenGrant(string(channel), string(method), string(collectedBy), proof, contract)
	}
	if len(purpose) > 0 {
		idx, ok := l.purposeIdx[privguard.Purpose(purpose)]
		if !ok {
			return prev, nil // a purpose no longer configured: kept in the ledger, not in the state
		}
		c.purpose = int32(idx)
	}
	if c.action == ActionRestrict || c.action == ActionLiftRestriction {
		for _, v := range categories {
			c.categories = append(c.categories, privguard.DataCategory(v))
		}
	}
	if haveRecipient {
		c.recipient = l.interns.internBytes(l.interns.recipients, recipient)
	}
	if len(notice) > 0 && c.action == ActionGrant {
		c.notice = l.interns.noticeVersionBytes(notice, noticeVer)
		c.superseded = l.notices.supersededBytes(notice, noticeVer, l.purposes[c.purpose].Purpose)
	}
	// The id is only compared and hashed (put copies it if it keeps it): no allocation.
	id := privguard.SubjectID(unsafe.String(unsafe.SliceData(subject), len(subject)))
	h := l.state.hash(id)
	st, i, _, err := l.state.lookupHash(h, id, owner)
	if err != nil {
		return prev, err
	}
	st = l.apply(st, &c)
	if i >= 0 {
		sh := &l.state.s[h.shard()]
		if !live {
			sh.t.store(i, st) // Open has not returned: no reader yet
			return prev, nil
		}
		sh.mu.Lock()
		sh.t.store(i, st)
		sh.mu.Unlock()
		return prev, nil
	}
	return prev, l.state.putHash(h, id, st, owner)
}

// owner returns the ownerFunc that reads the record from the store.
func (l *Ledger) owner(ctx context.Context) ownerFunc {
	return func(seq uint64) (privguard.SubjectID, error) {
		_, body, err := l.store.Record(ctx, seq)
		if err != nil {
			return "", fmt.Errorf("read record %d: %w", seq, err)
		}
		subject, err := subjectOf(body)
		if err != nil {
			return "", fmt.Errorf("record %d: %w", seq, err)
		}
		return privguard.SubjectID(subject), nil
	}
}

// subjectOf returns the subject field of a record encoding.
func subjectOf(body []byte) (subject []byte, err error) {
	err = eachField(body, recordFields, recordVarints, func(num protowire.Number, v []byte, _ uint64) error {
		if num == 4 {
			subject = v
		}
		return nil
	})
	return subject, err
}

// noticeVersionBytes is noticeVersion for an id held as bytes; it allocates only for a
// new notice version.
func (in *interns) noticeVersionBytes(id []byte, version uint32) uint32 {
	in.mu.RLock()
	v, ok := in.notices[noticeVersion{string(id), version}]
	in.mu.RUnlock()
	if ok {
		return v
	}
	return in.noticeVersion(string(id), version)
}

// internBytes is intern for a key held as bytes; it allocates only for a new key.
func (in *interns) internBytes(m map[string]uint32, b []byte) uint32 {
	in.mu.RLock()
	v, ok := m[string(b)]
	in.mu.RUnlock()
	if ok {
		return v
	}
	return in.intern(m, string(b))
}

func actionOf(v []byte) Action {
	switch string(v) {
	case "grant":
		return ActionGrant
	case "withdraw":
		return ActionWithdraw
	case "refuse":
		return ActionRefuse
	case "expire":
		return ActionExpire
	case "restrict":
		return ActionRestrict
	case "lift_restriction":
		return ActionLiftRestriction
	case "object":
		return ActionObject
	case "personalisation_off":
		return ActionPersonalisationOff
	case "personalisation_on":
		return ActionPersonalisationOn
	case "gpc_opt_out":
		return ActionGPCOptOut
	case "declare_age":
		return ActionDeclareAge
	case "erase":
		return ActionErase
	case "close_account":
		return ActionCloseAccount
	case "end_service":
		return ActionEndService
	}
	return ""
}

func regimeOfBytes(v []byte) regime {
	switch string(v) {
	case "pipl":
		return regimePIPL
	case "gdpr":
		return regimeGDPR
	}
	return regimeNone
}

func ageBandOf(v []byte) AgeBand {
	switch string(v) {
	case "0-12":
		return Age0to12
	case "13":
		return Age13
	case "14":
		return Age14
	case "15":
		return Age15
	case "16-17":
		return Age16to17
	case "18+":
		return AgeAdult
	}
	return AgeUnknown
}
