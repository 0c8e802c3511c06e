package vault

import (
	"bytes"
	"context"
	"fmt"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/privguard/privguard"
)

// RotateSubject adds a new key to subject's keyset and makes it primary: new data is sealed
// with it, old ciphertexts still open (their key stays in the keyset).
func (v *Vault) RotateSubject(ctx context.Context, subject privguard.SubjectID) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	wrapped, err := v.store.WrappedKey(ctx, subject)
	if err != nil {
		return fmt.Errorf("vault: rotate: %w", err)
	}
	h, _, err := v.unwrapHandle(subject, wrapped)
	if err != nil {
		return err
	}
	m := keyset.NewManagerFromHandle(h)
	id, err := m.Add(aead.AES256GCMKeyTemplate())
	if err != nil {
		return fmt.Errorf("vault: rotate: %w", err)
	}
	if err := m.SetPrimary(id); err != nil {
		return fmt.Errorf("vault: rotate: %w", err)
	}
	nh, err := m.Handle()
	if err != nil {
		return fmt.Errorf("vault: rotate: %w", err)
	}
	if err := v.storeHandle(ctx, subject, nh, true); err != nil {
		return err
	}
	v.cache.evict(subject)
	return nil
}

// storeHandle wraps h with the current KEK and stores it.
func (v *Vault) storeHandle(ctx context.Context, subject privguard.SubjectID, h *keyset.Handle, replace bool) error {
	var buf bytes.Buffer
	if err := h.WriteWithAssociatedData(keyset.NewBinaryWriter(&buf), v.kek, keyAD(subject)); err != nil {
		return fmt.Errorf("vault: wrap key: %w", err)
	}
	if err := v.store.PutWrappedKey(ctx, subject, buf.Bytes(), replace); err != nil {
		return fmt.Errorf("vault: store key: %w", err)
	}
	return nil
}

// unwrapHandle unwraps with the current KEK or, during a KEK rotation, a previous one.
// current reports which.
func (v *Vault) unwrapHandle(subject privguard.SubjectID, wrapped []byte) (h *keyset.Handle, current bool, err error) {
	for i, kek := range append([]tink.AEAD{v.kek}, v.previous...) {
		h, err := keyset.ReadWithAssociatedData(keyset.NewBinaryReader(bytes.NewReader(wrapped)), kek, keyAD(subject))
		if err == nil {
			return h, i == 0, nil
		}
	}
	return nil, false, fmt.Errorf("vault: unwrap the subject's key (wrong KEK?): %w", privguard.ErrUnavailable)
}

// KEKProgress reports a KEK rotation's progress.
type KEKProgress struct {
	Total     int // subjects with keys
	Rewrapped int // rewrapped by this run
	Remaining int // still wrapped by a previous KEK (0 when the rotation is complete)
}

// RotateKEK rewraps every subject keyset still wrapped by a previous KEK with the current
// one. It is resumable: a run interrupted at any point (even by kill -9) leaves every keyset
// readable, wrapped by either KEK, and the next run finishes the rest. progress, if set, is
// called after every rewrap.
func (v *Vault) RotateKEK(ctx context.Context, progress func(KEKProgress)) (KEKProgress, error) {
	var p KEKProgress
	var todo []privguard.SubjectID
	err := v.store.EachWrappedKey(ctx, func(subject privguard.SubjectID, wrapped []byte) error {
		p.Total++
		if _, current, err := v.unwrapHandle(subject, wrapped); err != nil {
			return err
		} else if !current {
			todo = append(todo, subject)
		}
		return nil
	})
	if err != nil {
		return p, err
	}
	p.Remaining = len(todo)
	for len(todo) > 0 {
		if err := ctx.Err(); err != nil {
			return p, err
		}
		chunk := todo[:min(rewrapBatch, len(todo))]
		todo = todo[len(chunk):]
		n, err := v.rewrap(ctx, chunk)
		if err != nil {
			return p, err
		}
		p.Rewrapped += n
		p.Remaining -= len(chunk)
		if progress != nil {
			progress(p)
		}
	}
	if err := v.rewrapSecrets(ctx); err != nil {
		return p, fmt.Errorf("vault: rewrap the vault's own keys: %w", err)
	}
	return p, nil
}

// rewrapBatch is how many keysets one KEK-rotation transaction rewraps.
const rewrapBatch = 512

// rewrap rewraps the subjects' keysets with the current KEK in one transaction and returns
// how many it rewrapped (shredded or already current ones are skipped).
func (v *Vault) rewrap(ctx context.Context, subjects []privguard.SubjectID) (int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make(map[privguard.SubjectID][]byte, len(subjects))
	for _, subject := range subjects {
		wrapped, err := v.store.WrappedKey(ctx, subject)
		if err != nil {
			continue // shredded meanwhile: nothing to rewrap
		}
		h, current, err := v.unwrapHandle(subject, wrapped)
		if err != nil {
			return 0, err
		}
		if current {
			continue
		}
		var buf bytes.Buffer
		if err := h.WriteWithAssociatedData(keyset.NewBinaryWriter(&buf), v.kek, keyAD(subject)); err != nil {
			return 0, fmt.Errorf("vault: wrap key: %w", err)
		}
		out[subject] = buf.Bytes()
	}
	if len(out) == 0 {
		return 0, nil
	}
	if err := v.store.PutWrappedKeys(ctx, out); err != nil {
		return 0, fmt.Errorf("vault: store keys: %w", err)
	}
	return len(out), nil
}
