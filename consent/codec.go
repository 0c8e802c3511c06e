package consent

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/privguard/privguard"
)

// Records are stored in protobuf wire format, written and read field by field with
// protowire (no generated code), so that any protobuf tool can read a ledger given this
// schema, unknown fields written by a later version are skipped, and the bytes that were
// hashed are the bytes that are stored. Field numbers are part of the proof format and must
// never be reused:
//
//	message Record {
//	  uint32 schema_version = 1;  string id = 2;  uint64 seq = 3;  string subject = 4;
//	  string purpose = 5;  string action = 6;  string legal_basis = 7;  string regime = 8;
//	  string notice_id = 9;  uint32 notice_version = 10;  string notice_language = 11;
//	  bytes notice_hash = 12;  string channel = 13;  string method = 14;  bool separate = 15;
//	  string separate_scope = 16;  Recipient recipient = 17;  Guardian guardian = 18;
//	  string age_band = 19;  Evidence evidence = 20;  repeated string categories = 21;
//	  bool written = 22;  int64 time_unix_nano = 23;  int64 expires_unix_nano = 24;
//	  string actor = 25;  string actor_type = 26;  bytes prev_hash = 27;  string ground = 28;
//	  int64 effective_unix_nano = 29;
//	}
//	message Recipient { string name = 1; string contact = 2; string purpose = 3; string method = 4; repeated string categories = 5; }
//	message Guardian { string reference = 1; string relationship = 2; string verification_method = 3; int64 verified_unix_nano = 4; }
//	message Evidence { string user_agent = 1; string ip_prefix = 2; bytes ip_hash = 3; string ui_screen = 4;
//	  string cmp_version = 5; string collected_by = 6; string contract_ref = 7; string proof_ref = 8;
//	  string tc_string = 9; bool gpc = 10; string identifier = 11; }
//
// The record hash is SHA-256 over the encoding, which includes prev_hash.

// Field-number masks for eachField.
const (
	recordFields    = (uint64(1)<<30 - 1) &^ 1 // fields 1..29
	recordVarints   = 1<<1 | 1<<3 | 1<<10 | 1<<15 | 1<<22 | 1<<23 | 1<<24 | 1<<29
	recipientFields = 0b111110       // 1..5
	guardianFields  = 0b11110        // 1..4
	evidenceFields  = 0b111111111110 // 1..11
)

// errCorrupt is wrapped by every decoding error.
var errCorrupt = errors.New("consent: corrupt record encoding")

// encodeRecord appends r's encoding to b. r.Hash is not encoded.
func encodeRecord(b []byte, r *Record) []byte {
	b = appendVarint(b, 1, uint64(r.SchemaVersion))
	b = appendString(b, 2, r.ID)
	b = appendVarint(b, 3, r.Seq)
	b = appendString(b, 4, string(r.Subject))
	b = appendString(b, 5, string(r.Purpose))
	b = appendString(b, 6, string(r.Action))
	b = appendString(b, 7, string(r.LegalBasis))
	b = appendString(b, 8, string(r.Regime))
	if n := r.Notice; n != nil {
		b = appendString(b, 9, n.ID)
		b = appendVarint(b, 10, uint64(n.Version))
		b = appendString(b, 11, n.Language)
		b = appendBytes(b, 12, n.Hash[:])
	}
	b = appendString(b, 13, string(r.Channel))
	b = appendString(b, 14, string(r.Method))
	b = appendBool(b, 15, r.Separate)
	b = appendString(b, 16, string(r.SeparateScope))
	if p := r.Recipient; p != nil {
		var m []byte
		m = appendString(m, 1, p.Name)
		m = appendString(m, 2, p.Contact)
		m = appendString(m, 3, p.Purpose)
		m = appendString(m, 4, p.Method)
		for _, c := range p.Categories {
			m = appendStringAlways(m, 5, string(c))
		}
		b = appendBytesAlways(b, 17, m)
	}
	if g := r.Guardian; g != nil {
		var m []byte
		m = appendString(m, 1, g.Reference)
		m = appendString(m, 2, g.Relationship)
		m = appendString(m, 3, g.VerificationMethod)
		m = appendTime(m, 4, g.VerifiedAt)
		b = appendBytesAlways(b, 18, m)
	}
	b = appendString(b, 19, string(r.AgeBand))
	if e := r.Evidence; e.UserAgent != "" || e.IPPrefix != "" || len(e.IPHash) > 0 || e.UIScreen != "" || e.CMPVersion != "" ||
		e.CollectedBy != "" || e.ContractRef != "" || e.ProofRef != "" || e.TCString != "" || e.GPC || e.Identifier != "" {
		var m []byte
		m = appendString(m, 1, e.UserAgent)
		m = appendString(m, 2, e.IPPrefix)
		if len(e.IPHash) > 0 {
			m = appendBytesAlways(m, 3, e.IPHash)
		}
		m = appendString(m, 4, e.UIScreen)
		m = appendString(m, 5, e.CMPVersion)
		m = appendString(m, 6, e.CollectedBy)
		m = appendString(m, 7, e.ContractRef)
		m = appendString(m, 8, e.ProofRef)
		m = appendString(m, 9, e.TCString)
		m = appendBool(m, 10, e.GPC)
		m = appendString(m, 11, e.Identifier)
		b = appendBytesAlways(b, 20, m)
	}
	for _, c := range r.Categories {
		b = appendStringAlways(b, 21, string(c))
	}
	b = appendBool(b, 22, r.Written)
	b = appendTime(b, 23, r.Time)
	b = appendTime(b, 24, r.ExpiresAt)
	b = appendString(b, 25, r.Actor)
	b = appendString(b, 26, string(r.ActorType))
	b = appendBytes(b, 27, r.PrevHash[:])
	// Written only when set, so that records without them encode (and hash) as before.
	b = appendString(b, 28, r.Ground)
	b = appendTime(b, 29, r.EffectiveAt)
	return b
}

// decodeRecord parses an encoding written by encodeRecord. It does not set r.Hash.
// Unknown fields are skipped. It never panics on hostile input.
func decodeRecord(b []byte) (Record, error) {
	var r Record
	var notice NoticeRef
	hasNotice := false
	err := eachField(b, recordFields, recordVarints, func(num protowire.Number, v []byte, x uint64) error {
		switch num {
		case 1:
			r.SchemaVersion = uint32(x)
		case 2:
			r.ID = string(v)
		case 3:
			r.Seq = x
		case 4:
			r.Subject = privguard.SubjectID(v)
		case 5:
			r.Purpose = privguard.Purpose(v)
		case 6:
			r.Action = Action(v)
		case 7:
			r.LegalBasis = privguard.LegalBasis(v)
		case 8:
			r.Regime = privguard.Regime(v)
		case 9:
			notice.ID, hasNotice = string(v), true
		case 10:
			notice.Version, hasNotice = uint32(x), true
		case 11:
			notice.Language, hasNotice = string(v), true
		case 12:
			if len(v) != len(notice.Hash) {
				return fmt.Errorf("notice hash of %d bytes: %w", len(v), errCorrupt)
			}
			copy(notice.Hash[:], v)
			hasNotice = true
		case 13:
			r.Channel = Channel(v)
		case 14:
			r.Method = Method(v)
		case 15:
			r.Separate = x != 0
		case 16:
			r.SeparateScope = privguard.SeparateScope(v)
		case 17:
			p := &Recipient{}
			r.Recipient = p
			return eachField(v, recipientFields, 0, func(num protowire.Number, v []byte, _ uint64) error {
				switch num {
				case 1:
					p.Name = string(v)
				case 2:
					p.Contact = string(v)
				case 3:
					p.Purpose = string(v)
				case 4:
					p.Method = string(v)
				case 5:
					p.Categories = append(p.Categories, privguard.DataCategory(v))
				}
				return nil
			})
		case 18:
			g := &Guardian{}
			r.Guardian = g
			return eachField(v, guardianFields, 1<<4, func(num protowire.Number, v []byte, x uint64) error {
				switch num {
				case 1:
					g.Reference = string(v)
				case 2:
					g.Relationship = string(v)
				case 3:
					g.VerificationMethod = string(v)
				case 4:
					g.VerifiedAt = timeFromWire(x)
				}
				return nil
			})
		case 19:
			r.AgeBand = AgeBand(v)
		case 20:
			e := &r.Evidence
			return eachField(v, evidenceFields, 1<<10, func(num protowire.Number, v []byte, x uint64) error {
				switch num {
				case 1:
					e.UserAgent = string(v)
				case 2:
					e.IPPrefix = string(v)
				case 3:
					e.IPHash = append([]byte(nil), v...)
				case 4:
					e.UIScreen = string(v)
				case 5:
					e.CMPVersion = string(v)
				case 6:
					e.CollectedBy = string(v)
				case 7:
					e.ContractRef = string(v)
				case 8:
					e.ProofRef = string(v)
				case 9:
					e.TCString = string(v)
				case 10:
					e.GPC = x != 0
				case 11:
					e.Identifier = string(v)
				}
				return nil
			})
		case 21:
			r.Categories = append(r.Categories, privguard.DataCategory(v))
		case 22:
			r.Written = x != 0
		case 23:
			r.Time = timeFromWire(x)
		case 24:
			r.ExpiresAt = timeFromWire(x)
		case 25:
			r.Actor = string(v)
		case 26:
			r.ActorType = ActorType(v)
		case 27:
			if len(v) != len(r.PrevHash) {
				return fmt.Errorf("prev hash of %d bytes: %w", len(v), errCorrupt)
			}
			copy(r.PrevHash[:], v)
		case 28:
			r.Ground = string(v)
		case 29:
			r.EffectiveAt = timeFromWire(x)
		}
		return nil
	})
	if err != nil {
		return Record{}, err
	}
	if hasNotice && notice != (NoticeRef{}) {
		r.Notice = &notice
	}
	return r, nil
}

// eachField calls fn for every field of the message b. For varint fields x is the value and
// v is nil; for length-delimited fields v is the content. Unknown fields are skipped; a
// known field whose wire type does not match the schema is an error. known has a bit set for every field number of the message, varints for those that are
// varints; the others must be length-delimited.
func eachField(b []byte, known, varints uint64, fn func(num protowire.Number, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("tag: %w: %w", protowire.ParseError(n), errCorrupt)
		}
		b = b[n:]
		if num < 64 {
			if bit := uint64(1) << num; (varints&bit != 0 && typ != protowire.VarintType) ||
				(varints&bit == 0 && known&bit != 0 && typ != protowire.BytesType) {
				return fmt.Errorf("field %d has wire type %d: %w", num, typ, errCorrupt)
			}
		}
		var v []byte
		var x uint64
		switch typ {
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		default: // an unknown field of a fixed-width or group type: skipped
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n >= 0 {
				b = b[n:]
				continue
			}
		}
		if n < 0 {
			return fmt.Errorf("field %d: %w: %w", num, protowire.ParseError(n), errCorrupt)
		}
		b = b[n:]
		if err := fn(num, v, x); err != nil {
			return err
		}
	}
	return nil
}

func appendVarint(b []byte, num protowire.Number, x uint64) []byte {
	if x == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, x)
}

func appendBool(b []byte, num protowire.Number, x bool) []byte {
	if !x {
		return b
	}
	return appendVarint(b, num, 1)
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	return appendStringAlways(b, num, s)
}

func appendStringAlways(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 || allZero(v) {
		return b
	}
	return appendBytesAlways(b, num, v)
}

func appendBytesAlways(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// appendTime writes t as Unix nanoseconds (zero time: nothing).
func appendTime(b []byte, num protowire.Number, t time.Time) []byte {
	if t.IsZero() {
		return b
	}
	return appendVarint(b, num, uint64(t.UnixNano()))
}

func timeFromWire(x uint64) time.Time {
	if x == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(x)).UTC()
}

func allZero(v []byte) bool {
	for _, c := range v {
		if c != 0 {
			return false
		}
	}
	return true
}
