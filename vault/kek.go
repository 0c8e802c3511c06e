package vault

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// KEK is a key-encryption key: the AEAD that wraps subject keysets (a local master keyset
// or a KMS key). Callers outside this package name it without importing Tink.
type KEK = tink.AEAD

// ErrNoMasterKey means the local master keyset file does not exist: run
// `privguard keys init` first.
var ErrNoMasterKey = errors.New("vault: no master keyset (run `privguard keys init`)")

// InitLocalKEK creates a local master keyset file at path (mode 0600) holding a fresh
// AES-256-GCM keyset in clear. It refuses to overwrite an existing file. The local master
// keyset is a development and single-host option: anyone who reads the file can unwrap every
// subject key. Production deployments use a KMS.
func InitLocalKEK(path string) error {
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return fmt.Errorf("vault: new master key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("vault: %s already exists; a master key is never overwritten", path)
		}
		return fmt.Errorf("vault: %w", err)
	}
	if err := insecurecleartextkeyset.Write(h, keyset.NewJSONWriter(f)); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("vault: write master key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("vault: sync master key: %w", err)
	}
	return f.Close()
}

// LoadLocalKEK reads the local master keyset at path and returns its AEAD. A file that group
// or others can read is still loaded but logged as a loud warning.
func LoadLocalKEK(path string, log *slog.Logger) (tink.AEAD, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoMasterKey
	}
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Mode().Perm()&0o077 != 0 && log != nil {
		log.Warn("VAULT MASTER KEY FILE IS READABLE BY OTHER USERS: anyone who can read it can decrypt all personal data; chmod 600 it",
			"file", path, "mode", st.Mode().Perm().String())
	}
	h, err := insecurecleartextkeyset.Read(keyset.NewJSONReader(f))
	if err != nil {
		return nil, fmt.Errorf("vault: %s is not a master keyset: %w", path, err)
	}
	a, err := aead.New(h)
	if err != nil {
		return nil, fmt.Errorf("vault: master key: %w", err)
	}
	return a, nil
}
