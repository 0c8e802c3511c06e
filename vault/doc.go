// Package vault envelope-encrypts personal data fields with Tink: one AES-256-GCM keyset per
// subject, wrapped by a key-encryption key (KEK) with the subject id as associated data, so
// that destroying a subject's keyset makes every ciphertext of that subject, wherever it was
// copied, unreadable (crypto-shredding). It is the only package that imports Tink.
//
// # Ciphertexts
//
// A ciphertext is Tink's output: a format version byte (0x01) and the 4-byte id of the key
// that sealed it, a 12-byte nonce, the encrypted data and a 16-byte tag (33 bytes of
// overhead). The subject is bound by its key: another subject's keyset does not hold that
// key id (and a colliding id fails the tag); the caller's associated data (the field) is
// bound into the tag, so a ciphertext moved to another field fails. [Vault.Open] reports each failure with its own error:
// [ErrShredded], [ErrNoKey], [ErrUnknownKey], [ErrTampered], [ErrTruncated], [ErrFormat].
//
// # Keys
//
// Subject keysets are created on first Seal, never derived from a master key (a derived key
// can always be derived again, so it could not be shredded). Unwrapped keysets are cached,
// bounded in number; a miss unwraps from the [Store]. [Vault.Shred] deletes the wrapped
// keyset, leaves a tombstone holding only a keyed hash of the subject, and evicts the cache.
//
// # Caveats
//
// A deleted wrapped keyset may survive in the store's free pages (bbolt keeps them until
// reused) and in backups: it stays unreadable only while the KEK that wrapped it is not
// available. Compact the store after shredding, and rotate the KEK (destroying the old one)
// to bound how long old copies matter.
package vault
