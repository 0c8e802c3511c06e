package outreach

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/privguard/privguard"
)

// DefaultTokenLifetime is how long an unsubscribe link works when Gate.TokenLifetime is
// zero: a year, longer than any mailbox keeps a campaign in view.
const DefaultTokenLifetime = 365 * 24 * time.Hour

// KeySize is the length of Gate.Key.
const KeySize = 32

// tokenVersion is the first byte of a token's plaintext.
const tokenVersion = 1

// maxTokenField bounds the subject and the template ID in a token (and so its length).
const maxTokenField = 255

// A token is header || AES-256-GCM(subkey, nonce, plaintext, additional data = header):
//
//   - header is one AES block, AES(headerKey, salt || counter): a pseudorandom
//     permutation of a value that is unique per token, so that it is unique and shows
//     nothing (two tokens of one subject, or of one send, share no visible bytes);
//   - salt is 8 random bytes per batch of tokens (a worker of one Gate.Check), counter
//     numbers the batch's tokens from 1;
//   - subkey is HMAC-SHA256(bodyKey, salt), nonce is 0^4 || counter: a (key, nonce) pair
//     is never used twice unless two batches draw the same salt (2^-64 per pair).
//
// Sealing costs one AES block and one short GCM seal per token; the subkey is made once
// per batch. The plaintext is version, channel, issued (Unix seconds) and the
// length-prefixed subject and template ID.
const (
	headerSize = aes.BlockSize
	tagSize    = 16
	fixedPlain = 1 + 1 + 8 + 1 + 1
	maxSealed  = headerSize + fixedPlain + 2*maxTokenField + tagSize
)

// ErrInvalidToken is an unsubscribe token that does not open: forged, tampered with,
// expired, sealed with another key or not a token at all. Callers say no more than
// "invalid link".
var ErrInvalidToken = errors.New("outreach: invalid unsubscribe token")

// Token is what an unsubscribe link names, sealed: who, for which channel (and so which
// marketing purpose), from which message, when issued.
type Token struct {
	Subject  privguard.SubjectID
	Channel  string
	Template string
	Issued   time.Time
}

// Purpose is the marketing purpose the token's link withdraws.
func (t Token) Purpose() privguard.Purpose {
	return privguard.Purpose("marketing.communications." + t.Channel)
}

var channelCodes = map[string]byte{ChannelSMS: 1, ChannelEmail: 2, ChannelPush: 3, ChannelWeChat: 4}

var codeChannels = [...]string{1: ChannelSMS, 2: ChannelEmail, 3: ChannelPush, 4: ChannelWeChat}

// sealer holds the two keys derived from Gate.Key.
type sealer struct {
	header  cipher.Block
	bodyKey []byte
}

// newSealer derives the sealer's keys from key (KeySize bytes).
func newSealer(key []byte) (*sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("outreach: the token key is %d bytes, want %d: %w", len(key), KeySize, privguard.ErrInvalid)
	}
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(label))
		return m.Sum(nil)
	}
	block, err := aes.NewCipher(derive("privguard outreach token header v1"))
	if err != nil {
		return nil, err
	}
	return &sealer{header: block, bodyKey: derive("privguard outreach token body v1")}, nil
}

// body returns the AEAD of salt's batch.
func (s *sealer) body(salt []byte) cipher.AEAD {
	m := hmac.New(sha256.New, s.bodyKey)
	m.Write(salt)
	block, _ := aes.NewCipher(m.Sum(nil)) // 32 bytes: cannot fail
	aead, _ := cipher.NewGCM(block)       // the standard sizes: cannot fail
	return aead
}

// batch seals tokens under one salt. It is not safe for concurrent use.
type batch struct {
	s       *sealer
	aead    cipher.AEAD
	salt    [8]byte
	counter uint64
	// channel and code are the last token's channel and its code.
	channel string
	code    byte
	plain   []byte
	sealed  []byte
	// in and nonce are buffers here, not on the stack, since the cipher interfaces make
	// them escape.
	in    [headerSize]byte
	nonce [12]byte
}

func (s *sealer) batch() *batch {
	b := &batch{s: s, plain: make([]byte, 0, maxSealed), sealed: make([]byte, 0, maxSealed)}
	rand.Read(b.salt[:])
	b.aead = s.body(b.salt[:])
	return b
}

// appendToken appends the base64url text of t sealed to dst. t's fields must fit
// (tokenFits).
func (b *batch) appendToken(dst []byte, t Token) []byte {
	b.counter++
	if t.Channel != b.channel || b.code == 0 {
		b.channel, b.code = t.Channel, channelCodes[t.Channel]
	}
	p := append(b.plain[:0], tokenVersion, b.code)
	p = binary.BigEndian.AppendUint64(p, uint64(t.Issued.Unix()))
	p = append(p, byte(len(t.Subject)))
	p = append(p, t.Subject...)
	p = append(p, byte(len(t.Template)))
	p = append(p, t.Template...)
	b.plain = p
	copy(b.in[:8], b.salt[:])
	binary.BigEndian.PutUint64(b.in[8:], b.counter)
	out := append(b.sealed[:0], make([]byte, headerSize)...)
	b.s.header.Encrypt(out, b.in[:])
	binary.BigEndian.PutUint64(b.nonce[4:], b.counter)
	out = b.aead.Seal(out, b.nonce[:], p, out[:headerSize])
	b.sealed = out
	return base64.RawURLEncoding.AppendEncode(dst, out)
}

// tokenLen is the length of the text of a token for subject and template lengths.
func tokenLen(subject, template int) int {
	return base64.RawURLEncoding.EncodedLen(headerSize + fixedPlain + subject + template + tagSize)
}

// seal returns t as a token text (for tests and tools; the gate seals in batches).
func (s *sealer) seal(t Token) (string, error) {
	if err := tokenFits(t); err != nil {
		return "", err
	}
	return string(s.batch().appendToken(nil, t)), nil
}

// tokenFits checks that t can be sealed.
func tokenFits(t Token) error {
	if len(t.Subject) == 0 || len(t.Subject) > maxTokenField || len(t.Template) > maxTokenField {
		return fmt.Errorf("outreach: subject or template ID too long for a token: %w", privguard.ErrInvalid)
	}
	if channelCodes[t.Channel] == 0 {
		return fmt.Errorf("outreach: channel %q: %w", t.Channel, privguard.ErrInvalid)
	}
	return nil
}

// open opens text, a token sealed by s no longer than lifetime before now. It returns
// ErrInvalidToken for anything else.
func (s *sealer) open(text string, now time.Time, lifetime time.Duration) (Token, error) {
	if len(text) > base64.RawURLEncoding.EncodedLen(maxSealed) {
		return Token{}, ErrInvalidToken
	}
	// Strict: a text whose unused low bits are set is not the same token spelled another way.
	raw, err := base64.RawURLEncoding.Strict().DecodeString(text)
	if err != nil || len(raw) < headerSize+fixedPlain+1+tagSize {
		return Token{}, ErrInvalidToken
	}
	var in [headerSize]byte
	s.header.Decrypt(in[:], raw[:headerSize])
	var nonce [12]byte
	copy(nonce[4:], in[8:])
	plain, err := s.body(in[:8]).Open(nil, nonce[:], raw[headerSize:], raw[:headerSize])
	if err != nil || len(plain) < fixedPlain || plain[0] != tokenVersion {
		return Token{}, ErrInvalidToken
	}
	code := plain[1]
	if int(code) >= len(codeChannels) || codeChannels[code] == "" {
		return Token{}, ErrInvalidToken
	}
	issued := binary.BigEndian.Uint64(plain[2:10])
	rest := plain[10:]
	n := int(rest[0])
	if n == 0 || len(rest) < 1+n+1 {
		return Token{}, ErrInvalidToken
	}
	subject := rest[1 : 1+n]
	rest = rest[1+n:]
	if m := int(rest[0]); len(rest) != 1+m || issued > math.MaxInt64 {
		return Token{}, ErrInvalidToken
	}
	t := Token{Subject: privguard.SubjectID(subject), Channel: codeChannels[code], Template: string(rest[1:]),
		Issued: time.Unix(int64(issued), 0).UTC()}
	if now.Sub(t.Issued) > lifetime || t.Issued.After(now.Add(time.Minute)) {
		return Token{}, ErrInvalidToken
	}
	return t, nil
}
