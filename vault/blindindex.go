package vault

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/tink-crypto/tink-go/v2/tink"
	"strconv"
	"sync"

	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/prf"
)

// blindIndexAD is the associated data the blind-index keyset is wrapped with.
var blindIndexAD = []byte("privguard/vault/blind-index/v1")

// SecretStore keeps the vault's own small secrets (the wrapped blind-index keyset, the KEK
// check value).
type SecretStore interface {
	// Secret returns the named secret, creating it with create on first use, durably.
	Secret(ctx context.Context, name string, create func() ([]byte, error)) ([]byte, error)
	// PutSecret replaces the named secret durably.
	PutSecret(ctx context.Context, name string, value []byte) error
}

// BlindIndex returns a keyed, deterministic token of value for field: equal values of a
// field give equal tokens, so encrypted values can still be looked up or joined by
// equality, and without the key the token reveals nothing else. Tokens are versioned
// ("bi1.<key id>.<base64>") so that a new index key never collides with an old one.
//
// What it leaks: which records share a value of the field (equality), and so the
// frequency of each value; rare values can be linked across datasets that use the same key.
// It is pseudonymisation (PIPL Art. 73(3), GDPR Art. 4(5)), not anonymisation: the token is
// still personal data. It is not per subject, so shredding a subject does not change its
// tokens; erase the token with the row.
func (v *Vault) BlindIndex(ctx context.Context, field string, value []byte) (string, error) {
	set, id, err := v.indexSet(ctx)
	if err != nil {
		return "", err
	}
	in := make([]byte, 0, len(field)+1+len(value))
	in = append(append(append(in, field...), 0), value...)
	out, err := set.ComputePrimaryPRF(in, 16)
	if err != nil {
		return "", fmt.Errorf("vault: blind index: %w", err)
	}
	return "bi1." + strconv.FormatUint(uint64(id), 36) + "." + base64.RawURLEncoding.EncodeToString(out), nil
}

type indexKey struct {
	once sync.Once
	set  *prf.Set
	id   uint32
	err  error
}

func (v *Vault) indexSet(ctx context.Context) (*prf.Set, uint32, error) {
	v.index.once.Do(func() {
		ss, ok := v.store.(SecretStore)
		if !ok {
			v.index.err = fmt.Errorf("vault: the store keeps no blind-index key")
			return
		}
		wrapped, err := ss.Secret(ctx, "vault.blind-index-keyset", func() ([]byte, error) {
			h, err := keyset.NewHandle(prf.HMACSHA256PRFKeyTemplate())
			if err != nil {
				return nil, err
			}
			var buf bytes.Buffer
			err = h.WriteWithAssociatedData(keyset.NewBinaryWriter(&buf), v.kek, blindIndexAD)
			return buf.Bytes(), err
		})
		if err != nil {
			v.index.err = fmt.Errorf("vault: blind-index key: %w", err)
			return
		}
		h, err := keyset.ReadWithAssociatedData(keyset.NewBinaryReader(bytes.NewReader(wrapped)), v.kek, blindIndexAD)
		if err != nil {
			v.index.err = fmt.Errorf("vault: unwrap the blind-index key (wrong KEK?)")
			return
		}
		v.index.set, v.index.err = prf.NewPRFSet(h)
		v.index.id = h.KeysetInfo().GetPrimaryKeyId()
	})
	return v.index.set, v.index.id, v.index.err
}

// ErrWrongKEK means the configured KEK is not the one the store's keys were wrapped with.
var ErrWrongKEK = errors.New("vault: the master key is not the one this data was encrypted with")

var kekCheckAD = []byte("privguard/vault/kek-check/v1")

// CheckKEK verifies that the KEK is the one the store was initialised with (a check value
// sealed by the first KEK, rewrapped by KEK rotations). On a new store it records the check
// value. Returns ErrWrongKEK if the KEK cannot open it.
func (v *Vault) CheckKEK(ctx context.Context) error {
	ss, ok := v.store.(SecretStore)
	if !ok {
		return nil
	}
	check, err := ss.Secret(ctx, "vault.kek-check", func() ([]byte, error) {
		return v.kek.Encrypt([]byte("privguard"), kekCheckAD)
	})
	if err != nil {
		return fmt.Errorf("vault: kek check: %w", err)
	}
	if _, err := v.kek.Decrypt(check, kekCheckAD); err == nil {
		return nil
	}
	for _, k := range v.previous {
		if _, err := k.Decrypt(check, kekCheckAD); err == nil {
			return nil
		}
	}
	return ErrWrongKEK
}

// rewrapSecrets moves the KEK check value and the blind-index keyset to the current KEK.
func (v *Vault) rewrapSecrets(ctx context.Context) error {
	ss, ok := v.store.(SecretStore)
	if !ok {
		return nil
	}
	check, err := v.kek.Encrypt([]byte("privguard"), kekCheckAD)
	if err != nil {
		return err
	}
	if err := ss.PutSecret(ctx, "vault.kek-check", check); err != nil {
		return err
	}
	errNone := errors.New("no blind-index key yet")
	wrapped, err := ss.Secret(ctx, "vault.blind-index-keyset", func() ([]byte, error) { return nil, errNone })
	if errors.Is(err, errNone) {
		return nil // none was ever made: nothing to rewrap
	}
	if err != nil {
		return err
	}
	for _, k := range append([]tink.AEAD{v.kek}, v.previous...) {
		h, err := keyset.ReadWithAssociatedData(keyset.NewBinaryReader(bytes.NewReader(wrapped)), k, blindIndexAD)
		if err != nil {
			continue
		}
		var buf bytes.Buffer
		if err := h.WriteWithAssociatedData(keyset.NewBinaryWriter(&buf), v.kek, blindIndexAD); err != nil {
			return err
		}
		return ss.PutSecret(ctx, "vault.blind-index-keyset", buf.Bytes())
	}
	return fmt.Errorf("vault: the blind-index key opens with no known KEK")
}
