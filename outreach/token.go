package outreach

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/privguard/privguard"
)

// DefaultTokenLifetime is how long an unsubscribe link works when Gate.TokenLifetime is
// zero: a year, longer than any mailbox keeps a campaign in view.
const DefaultTokenLifetime = 365 * 24 * time.Hour

// tokenVersion is the first byte of a token's plaintext.
const tokenVersion = 1

// tokenAD binds a sealed token to its use: a token of another kind sealed with the same key
// does not open as an unsubscribe token.
var tokenAD = []byte("privguard outreach unsubscribe v1")

// maxTokenField bounds the subject and the template ID in a token (and so its length).
const maxTokenField = 255

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

// sealer seals tokens with XChaCha20-Poly1305 under one key: a fresh random 24-byte nonce
// per token (so two tokens of one subject share no visible byte pattern: sealed, not
// signed) without a system call per token.
type sealer struct {
	key []byte
}

// newSealer checks key (32 bytes).
func newSealer(key []byte) (*sealer, error) {
	if len(key) != chacha20poly1305.KeySize {
		return nil, fmt.Errorf("outreach: the token key is %d bytes, want %d", len(key), chacha20poly1305.KeySize)
	}
	return &sealer{key: key}, nil
}

// nonces returns a stream of nonces: ChaCha8, a cryptographically strong generator, seeded
// from crypto/rand for each batch.
func nonces() *mrand.ChaCha8 {
	var seed [32]byte
	rand.Read(seed[:])
	return mrand.NewChaCha8(seed)
}

// appendToken appends the base64url text of t sealed to dst. t's fields must fit
// (appendToken is called with checked values).
func appendToken(dst []byte, aead cipher.AEAD, rng *mrand.ChaCha8, scratch []byte, t Token) ([]byte, []byte) {
	plain := scratch[:0]
	plain = append(plain, tokenVersion, channelCodes[t.Channel])
	plain = binary.BigEndian.AppendUint64(plain, uint64(t.Issued.Unix()))
	plain = append(plain, byte(len(t.Subject)))
	plain = append(plain, t.Subject...)
	plain = append(plain, byte(len(t.Template)))
	plain = append(plain, t.Template...)
	var sealed [maxSealed]byte
	nonce := sealed[:chacha20poly1305.NonceSizeX]
	rng.Read(nonce)
	out := aead.Seal(sealed[:len(nonce)], nonce, plain, tokenAD)
	return base64.RawURLEncoding.AppendEncode(dst, out), plain
}

// seal returns t as a token text. It is for tests and tools; the gate seals in bulk.
func (s *sealer) seal(t Token) (string, error) {
	if err := tokenFits(t); err != nil {
		return "", err
	}
	aead, _ := chacha20poly1305.NewX(s.key)
	b, _ := appendToken(nil, aead, nonces(), make([]byte, 0, 64), t)
	return string(b), nil
}

// maxSealed bounds a sealed token's bytes: nonce, version, channel, issued, two
// length-prefixed fields and the tag.
const maxSealed = chacha20poly1305.NonceSizeX + 10 + 2*(1+maxTokenField) + chacha20poly1305.Overhead

// tokenLen is the length of the text of a token for subject and template.
func tokenLen(subject, template int) int {
	return base64.RawURLEncoding.EncodedLen(chacha20poly1305.NonceSizeX + 10 + 2 + subject + template + chacha20poly1305.Overhead)
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

// open opens text, a token sealed by s no longer than lifetime ago. It returns
// ErrInvalidToken for anything else.
func (s *sealer) open(text string, now time.Time, lifetime time.Duration) (Token, error) {
	if len(text) > base64.RawURLEncoding.EncodedLen(maxSealed) {
		return Token{}, ErrInvalidToken
	}
	raw, err := base64.RawURLEncoding.DecodeString(text)
	if err != nil || len(raw) < chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead {
		return Token{}, ErrInvalidToken
	}
	aead, _ := chacha20poly1305.NewX(s.key)
	plain, err := aead.Open(nil, raw[:chacha20poly1305.NonceSizeX], raw[chacha20poly1305.NonceSizeX:], tokenAD)
	if err != nil || len(plain) < 12 || plain[0] != tokenVersion {
		return Token{}, ErrInvalidToken
	}
	code := plain[1]
	if int(code) >= len(codeChannels) || codeChannels[code] == "" {
		return Token{}, ErrInvalidToken
	}
	issued := binary.BigEndian.Uint64(plain[2:10])
	rest := plain[10:]
	n := int(rest[0])
	if len(rest) < 1+n+1 {
		return Token{}, ErrInvalidToken
	}
	subject := rest[1 : 1+n]
	rest = rest[1+n:]
	m := int(rest[0])
	if len(rest) != 1+m || n == 0 || issued > math.MaxInt64 {
		return Token{}, ErrInvalidToken
	}
	t := Token{Subject: privguard.SubjectID(subject), Channel: codeChannels[code], Template: string(rest[1:]),
		Issued: time.Unix(int64(issued), 0).UTC()}
	if now.Sub(t.Issued) > lifetime || t.Issued.After(now.Add(time.Minute)) {
		return Token{}, ErrInvalidToken
	}
	return t, nil
}
