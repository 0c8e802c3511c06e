package vault

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/privguard/privguard"
)

// FormatV1 is the first byte of every ciphertext this version writes: Tink's output prefix
// version, followed by the 4-byte key id.
const FormatV1 byte = 0x01

// DefaultCacheSize is how many unwrapped subject keysets are cached (per generation).
const DefaultCacheSize = 1 << 14

// Errors of Open and Seal. They never contain key material or plaintext.
var (
	// ErrShredded: the subject's keys were destroyed; the data is gone for good.
	ErrShredded = errors.New("vault: subject key shredded")
	// ErrNoKey: the subject has no key (nothing was ever sealed for it here).
	ErrNoKey = errors.New("vault: no key for subject")
	// ErrUnknownKey: the ciphertext names a key the subject's keyset does not hold (another
	// subject's ciphertext, or a key from another vault).
	ErrUnknownKey = errors.New("vault: ciphertext key unknown for this subject")
	// ErrTampered: the ciphertext or its associated data was altered.
	ErrTampered = errors.New("vault: ciphertext does not authenticate")
	// ErrTruncated: the ciphertext is too short to be one.
	ErrTruncated = errors.New("vault: ciphertext truncated")
	// ErrFormat: the ciphertext's format version is not one this vault reads.
	ErrFormat = errors.New("vault: unknown ciphertext format")
)

// minCiphertext is the shortest ciphertext: version and key id, nonce, tag.
const minCiphertext = 5 + 12 + 16

// Store holds wrapped subject keysets. boltstore.VaultStore is the embedded default.
type Store interface {
	// WrappedKey returns the wrapped keyset of subject, or an error wrapping
	// privguard.ErrNotFound.
	WrappedKey(ctx context.Context, subject privguard.SubjectID) ([]byte, error)
	// PutWrappedKey stores the wrapped keyset of subject durably. It fails with an error
	// wrapping privguard.ErrConflict if one exists and replace is false.
	PutWrappedKey(ctx context.Context, subject privguard.SubjectID, wrapped []byte, replace bool) error
	// Shred deletes the wrapped keyset of subject and records the tombstone (a keyed hash
	// of the subject) durably, in one transaction.
	Shred(ctx context.Context, subject privguard.SubjectID, tombstone [32]byte) error
	// Shredded reports whether tombstone was recorded.
	Shredded(ctx context.Context, tombstone [32]byte) (bool, error)
	// PutWrappedKeys replaces several wrapped keysets in one durable transaction.
	PutWrappedKeys(ctx context.Context, keys map[privguard.SubjectID][]byte) error
	// EachWrappedKey calls fn for every stored wrapped keyset.
	EachWrappedKey(ctx context.Context, fn func(subject privguard.SubjectID, wrapped []byte) error) error
}

// SharedStore is a Store that the vaults of several processes use at once (pgstore's is
// one). A vault on one follows the tombstones the others record, so that a subject
// shredded through any process can no longer be opened through this one, even from the
// cache of unwrapped keysets.
type SharedStore interface {
	Store
	// TombstonesAfter calls fn with every tombstone recorded after cursor (0: from the
	// first), in the order recorded, with each one's cursor (increasing).
	TombstonesAfter(ctx context.Context, cursor uint64, fn func(cursor uint64, tombstone [32]byte) error) error
}

// BatchShredder is a Store that shreds many subjects in one durable transaction
// (boltstore.VaultStore is one); ShredAll uses it when the store has it.
type BatchShredder interface {
	// ShredAll is Shred for every subject of tombstones, in one transaction.
	ShredAll(ctx context.Context, tombstones map[privguard.SubjectID][32]byte) error
}

// Config configures [New].
type Config struct {
	Store Store
	// KEK wraps the subject keysets (a local master keyset or a KMS AEAD).
	KEK tink.AEAD
	// PreviousKEKs still unwrap keysets not yet rewrapped by a KEK rotation.
	PreviousKEKs []tink.AEAD
	// TombstoneKey keys the hash that records shredded subjects (at least 16 bytes).
	TombstoneKey []byte
	// CacheSize bounds the unwrapped keysets kept; zero means DefaultCacheSize, negative
	// disables the cache.
	CacheSize int
	// Logger receives audit events (shreds) and errors, never key material. Nil: discard.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxStaleness, on a [SharedStore], is how long cached keysets are used without
	// confirming that no other process shredded them; after that, Seal and Open fail with
	// an error wrapping privguard.ErrUnavailable until the store answers again. Zero means
	// DefaultMaxStaleness.
	MaxStaleness time.Duration
	// FollowInterval, on a SharedStore, is how often the vault reads the tombstones other
	// processes recorded. Zero means DefaultFollowInterval.
	FollowInterval time.Duration
}

// Defaults of a vault on a SharedStore (as the consent ledger's).
const (
	DefaultMaxStaleness   = 5 * time.Second
	DefaultFollowInterval = 250 * time.Millisecond
)

// Vault seals and opens personal data per subject. It is safe for concurrent use.
type Vault struct {
	store    Store
	kek      tink.AEAD
	previous []tink.AEAD
	tombKey  []byte
	log      *slog.Logger
	now      func() time.Time
	// mu orders Shred and key creation (write) against cache fills (read): a fill cannot put
	// back a keyset that a concurrent Shred has just deleted and evicted.
	mu    sync.RWMutex
	cache *cache
	index indexKey

	// On a SharedStore (see follow.go); shared is nil otherwise.
	shared      SharedStore
	maxStale    time.Duration
	followEvery time.Duration
	confirmed   atomic.Int64 // UnixNano of the last read of the tombstones that succeeded
	cursor      uint64       // owned by the follower
	stop        chan struct{}
	stopped     chan struct{}
	closeOnce   sync.Once
}

// New returns a vault.
func New(cfg Config) (*Vault, error) {
	if cfg.Store == nil || cfg.KEK == nil {
		return nil, errors.New("vault: Config.Store and Config.KEK are required")
	}
	if len(cfg.TombstoneKey) < 16 {
		return nil, errors.New("vault: Config.TombstoneKey is shorter than 16 bytes")
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	v := &Vault{store: cfg.Store, kek: cfg.KEK, previous: cfg.PreviousKEKs, tombKey: cfg.TombstoneKey, log: cfg.Logger, now: cfg.Now,
		cache: newCache(cfg.CacheSize)}
	if ss, ok := cfg.Store.(SharedStore); ok {
		if err := v.startFollowing(ss, cfg); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// keyAD is the associated data a subject's keyset is wrapped with.
func keyAD(subject privguard.SubjectID) []byte {
	return append([]byte("privguard/vault/key/v1\x00"), subject...)
}

func (v *Vault) tombstone(subject privguard.SubjectID) [32]byte {
	m := hmac.New(sha256.New, v.tombKey)
	m.Write([]byte(subject))
	return [32]byte(m.Sum(nil))
}

// Seal encrypts plaintext for subject, binding ad (the field or context it belongs to).
// The subject's keyset is created on first use. Sealing for a shredded subject fails with
// ErrShredded: its data must not come back.
func (v *Vault) Seal(ctx context.Context, subject privguard.SubjectID, plaintext, ad []byte) ([]byte, error) {
	if err := subject.Validate(); err != nil {
		return nil, err
	}
	a, err := v.primitive(ctx, subject, true)
	if err != nil {
		return nil, err
	}
	// The subject is bound by its own key (another subject's keyset cannot open it); ad
	// binds the field or context.
	ct, err := a.Encrypt(plaintext, ad)
	if err != nil {
		return nil, fmt.Errorf("vault: seal: %w", err)
	}
	return ct, nil
}

// Open decrypts a ciphertext of subject sealed with the same ad. Errors: ErrShredded,
// ErrNoKey, ErrUnknownKey, ErrTampered, ErrTruncated, ErrFormat.
func (v *Vault) Open(ctx context.Context, subject privguard.SubjectID, ciphertext, ad []byte) ([]byte, error) {
	if len(ciphertext) == 0 {
		return nil, ErrTruncated
	}
	if ciphertext[0] != FormatV1 {
		return nil, ErrFormat
	}
	if len(ciphertext) < minCiphertext {
		return nil, ErrTruncated
	}
	if err := subject.Validate(); err != nil {
		return nil, err
	}
	e, err := v.entry(ctx, subject, false)
	if err != nil {
		return nil, err
	}
	if !e.hasKeyID(binary.BigEndian.Uint32(ciphertext[1:5])) {
		return nil, ErrUnknownKey
	}
	pt, err := e.aead.Decrypt(ciphertext, ad)
	if err != nil {
		return nil, ErrTampered
	}
	return pt, nil
}

// Shred destroys subject's keys: the wrapped keyset is deleted, a tombstone (a keyed hash of
// the subject, no key material) is recorded in the same transaction, and the cache entry is
// evicted. Every later Open of the subject's ciphertexts fails with ErrShredded. Shredding a
// subject without keys records the tombstone too, so that no key is created afterwards.
func (v *Vault) Shred(ctx context.Context, subject privguard.SubjectID) error {
	if err := subject.Validate(); err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.store.Shred(ctx, subject, v.tombstone(subject)); err != nil {
		return fmt.Errorf("vault: shred: %w", err)
	}
	v.cache.evict(subject)
	v.log.Info("vault: subject keys shredded", "subjects", 1, "at", v.now().UTC()) // never the id: it is personal data
	return nil
}

// ShredAll is Shred for many subjects: in one durable transaction if the store is a
// BatchShredder, one by one otherwise. It is idempotent, as Shred is.
func (v *Vault) ShredAll(ctx context.Context, subjects []privguard.SubjectID) error {
	for _, s := range subjects {
		if err := s.Validate(); err != nil {
			return err
		}
	}
	bs, ok := v.store.(BatchShredder)
	if !ok {
		for _, s := range subjects {
			if err := v.Shred(ctx, s); err != nil {
				return err
			}
		}
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	tombstones := make(map[privguard.SubjectID][32]byte, len(subjects))
	for _, s := range subjects {
		tombstones[s] = v.tombstone(s)
	}
	if err := bs.ShredAll(ctx, tombstones); err != nil {
		return fmt.Errorf("vault: shred: %w", err)
	}
	for _, s := range subjects {
		v.cache.evict(s)
	}
	v.log.Info("vault: subject keys shredded", "subjects", len(tombstones), "at", v.now().UTC())
	return nil
}

// entry is an unwrapped subject keyset.
type entry struct {
	aead   tink.AEAD
	keyIDs []uint32
	tomb   [32]byte // the subject's tombstone, on a shared store (set by cache.put)
}

func (e *entry) hasKeyID(id uint32) bool {
	for _, k := range e.keyIDs {
		if k == id {
			return true
		}
	}
	return false
}

func (v *Vault) primitive(ctx context.Context, subject privguard.SubjectID, create bool) (tink.AEAD, error) {
	e, err := v.entry(ctx, subject, create)
	if err != nil {
		return nil, err
	}
	return e.aead, nil
}

// entry returns the subject's unwrapped keyset from the cache or the store, creating it if
// create is set and there is none.
func (v *Vault) entry(ctx context.Context, subject privguard.SubjectID, create bool) (*entry, error) {
	if err := v.current(); err != nil {
		return nil, err
	}
	if e, ok := v.cache.get(subject); ok {
		return e, nil
	}
	e, err := v.load(ctx, subject)
	if err != nil || e != nil {
		return e, err
	}
	if !create {
		return nil, ErrNoKey
	}
	return v.create(ctx, subject)
}

// load reads and unwraps the subject's keyset into the cache; (nil, nil) if it has none.
func (v *Vault) load(ctx context.Context, subject privguard.SubjectID) (*entry, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	wrapped, err := v.store.WrappedKey(ctx, subject)
	switch {
	case err == nil:
		e, err := v.unwrap(subject, wrapped)
		if err != nil {
			return nil, err
		}
		v.cache.put(subject, e)
		return e, nil
	case !errors.Is(err, privguard.ErrNotFound):
		return nil, fmt.Errorf("vault: read key: %w: %w", err, privguard.ErrUnavailable)
	}
	if shredded, err := v.store.Shredded(ctx, v.tombstone(subject)); err != nil {
		return nil, fmt.Errorf("vault: read tombstone: %w: %w", err, privguard.ErrUnavailable)
	} else if shredded {
		return nil, ErrShredded
	}
	return nil, nil
}

// create makes, wraps and stores a new keyset for subject (once, even when racing).
func (v *Vault) create(ctx context.Context, subject privguard.SubjectID) (*entry, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if e, ok := v.cache.get(subject); ok {
		return e, nil
	}
	if shredded, err := v.store.Shredded(ctx, v.tombstone(subject)); err != nil {
		return nil, fmt.Errorf("vault: read tombstone: %w: %w", err, privguard.ErrUnavailable)
	} else if shredded {
		return nil, ErrShredded
	}
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return nil, fmt.Errorf("vault: new key: %w", err)
	}
	var buf bytes.Buffer
	if err := h.WriteWithAssociatedData(keyset.NewBinaryWriter(&buf), v.kek, keyAD(subject)); err != nil {
		return nil, fmt.Errorf("vault: wrap key: %w", err)
	}
	if err := v.store.PutWrappedKey(ctx, subject, buf.Bytes(), false); err != nil {
		if errors.Is(err, privguard.ErrConflict) { // created by another process meanwhile
			wrapped, rerr := v.store.WrappedKey(ctx, subject)
			if rerr != nil {
				return nil, fmt.Errorf("vault: read key: %w", rerr)
			}
			e, err := v.unwrap(subject, wrapped)
			if err == nil {
				v.cache.put(subject, e)
			}
			return e, err
		}
		return nil, fmt.Errorf("vault: store key: %w: %w", err, privguard.ErrUnavailable)
	}
	e, err := entryOf(h)
	if err != nil {
		return nil, err
	}
	v.cache.put(subject, e)
	return e, nil
}

// unwrap decrypts a wrapped keyset with the KEK.
func (v *Vault) unwrap(subject privguard.SubjectID, wrapped []byte) (*entry, error) {
	h, _, err := v.unwrapHandle(subject, wrapped)
	if err != nil {
		return nil, err
	}
	return entryOf(h)
}

func entryOf(h *keyset.Handle) (*entry, error) {
	a, err := aead.New(h)
	if err != nil {
		return nil, fmt.Errorf("vault: key primitive: %w", err)
	}
	e := &entry{aead: a}
	for _, k := range h.KeysetInfo().GetKeyInfo() {
		e.keyIDs = append(e.keyIDs, k.GetKeyId())
	}
	return e, nil
}

// cache holds unwrapped keysets in two generations (see policy's memo).
type cache struct {
	mu        sync.RWMutex
	size      int
	cur, prev map[privguard.SubjectID]*entry
	tomb      func(privguard.SubjectID) [32]byte // on a shared store: entries carry their tombstone
}

func newCache(size int) *cache {
	return &cache{size: size, cur: map[privguard.SubjectID]*entry{}}
}

func (c *cache) get(s privguard.SubjectID) (*entry, bool) {
	if c.size < 0 {
		return nil, false
	}
	c.mu.RLock()
	e, ok := c.cur[s]
	if !ok && c.prev != nil {
		if e, ok = c.prev[s]; ok {
			c.mu.RUnlock()
			c.put(s, e)
			return e, true
		}
	}
	c.mu.RUnlock()
	return e, ok
}

func (c *cache) put(s privguard.SubjectID, e *entry) {
	if c.size < 0 {
		return
	}
	if c.tomb != nil && e.tomb == ([32]byte{}) {
		e.tomb = c.tomb(s)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cur) >= c.size {
		c.prev, c.cur = c.cur, make(map[privguard.SubjectID]*entry, c.size)
	}
	c.cur[s] = e
}

// evictTombstones evicts the entries of the subjects with these tombstones.
func (c *cache) evictTombstones(tombs map[[32]byte]bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, m := range []map[privguard.SubjectID]*entry{c.cur, c.prev} {
		for s, e := range m {
			if tombs[e.tomb] {
				delete(m, s)
				n++
			}
		}
	}
	return n
}

func (c *cache) evict(s privguard.SubjectID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.cur, s)
	delete(c.prev, s)
}
