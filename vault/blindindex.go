package vault

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"sync"

	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/prf"
)

// blindIndexAD is the associated data the blind-index keyset is wrapped with.
var blindIndexAD = []byte("privguard/vault/blind-index/v1")

// IndexStore holds the blind-index keyset, wrapped by the KEK.
type IndexStore interface {
	// IndexKeyset returns the stored wrapped keyset, creating it with create on first use.
	IndexKeyset(ctx context.Context, create func() ([]byte, error)) ([]byte, error)
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
		is, ok := v.store.(IndexStore)
		if !ok {
			v.index.err = fmt.Errorf("vault: the store keeps no blind-index key")
			return
		}
		wrapped, err := is.IndexKeyset(ctx, func() ([]byte, error) {
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
