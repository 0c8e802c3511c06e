package adminapi

import (
	"errors"
	"net/http"
	"strings"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/identity"
	"github.com/privguard/privguard/vault"
)

// Vault problem types.
const (
	TypeVaultShredded   = "vault-shredded"
	TypeVaultNoKey      = "vault-no-key"
	TypeVaultCiphertext = "vault-ciphertext-invalid"
)

// MaxVaultBody bounds seal and open requests (base64 values of up to ~1.4 MB).
const MaxVaultBody = 2 << 20

type sealBody struct {
	Subject   string `json:"subject" validate:"required,max=128"`
	Plaintext []byte `json:"plaintext" validate:"max=1048576"` // base64 in JSON
	Context   string `json:"context" validate:"max=256"`
}

type openBody struct {
	Subject    string `json:"subject" validate:"required,max=128"`
	Ciphertext []byte `json:"ciphertext" validate:"required,max=1048576"` // base64 in JSON
	Context    string `json:"context" validate:"max=256"`
}

type indexBody struct {
	Field string `json:"field" validate:"required,max=100"`
	Value string `json:"value" validate:"required,max=4096"`
}

func (s *Server) vaultSeal(w http.ResponseWriter, r *http.Request) error {
	var b sealBody
	if err := s.decode(w, r, MaxVaultBody, &b); err != nil {
		return err
	}
	subject, err := validSubject(b.Subject)
	if err != nil {
		return err
	}
	ct, err := s.vault.Seal(r.Context(), subject, b.Plaintext, []byte(b.Context))
	if err != nil {
		return vaultProblem(err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"ciphertext": ct})
	return nil
}

func (s *Server) vaultOpen(w http.ResponseWriter, r *http.Request) error {
	var b openBody
	if err := s.decode(w, r, MaxVaultBody, &b); err != nil {
		return err
	}
	subject, err := validSubject(b.Subject)
	if err != nil {
		return err
	}
	pt, err := s.vault.Open(r.Context(), subject, b.Ciphertext, []byte(b.Context))
	if err != nil {
		return vaultProblem(err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"plaintext": pt})
	return nil
}

func (s *Server) vaultBlindIndex(w http.ResponseWriter, r *http.Request) error {
	var b indexBody
	if err := s.decode(w, r, MaxConsentBody, &b); err != nil {
		return err
	}
	if strings.HasPrefix(b.Field, identity.BlindIndexPrefix) {
		// privguard's own indexes (the identity links' hashes) are not for the API to
		// compute: a token of one would be the lookup key of someone's phone or email.
		p := privguard.NewProblem(http.StatusUnprocessableEntity, TypeValidation, "The request breaks a rule",
			"field: names starting with "+identity.BlindIndexPrefix+" are privguard's own")
		p.Field = "field"
		return p
	}
	tok, err := s.vault.BlindIndex(r.Context(), b.Field, []byte(b.Value))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"token": tok})
	return nil
}

func (s *Server) vaultShred(w http.ResponseWriter, r *http.Request) error {
	subject, err := s.subject(r)
	if err != nil {
		return err
	}
	if err := s.vault.Shred(r.Context(), subject); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func validSubject(s string) (privguard.SubjectID, error) {
	subject := privguard.SubjectID(s)
	if subject.Validate() != nil {
		p := privguard.NewProblem(http.StatusUnprocessableEntity, TypeValidation, "The request breaks a rule",
			"subject "+privguard.SubjectIDRule)
		p.Field = "subject"
		return "", p
	}
	return subject, nil
}

// vaultProblem maps the vault's errors to problems; each ciphertext failure keeps its code.
func vaultProblem(err error) error {
	code := ""
	switch {
	case errors.Is(err, vault.ErrShredded):
		return privguard.NewProblem(http.StatusGone, TypeVaultShredded, "Subject's keys were shredded", "the data is gone for good")
	case errors.Is(err, vault.ErrNoKey):
		return privguard.NewProblem(http.StatusNotFound, TypeVaultNoKey, "No key for this subject", "")
	case errors.Is(err, vault.ErrTampered):
		code = "tampered"
	case errors.Is(err, vault.ErrTruncated):
		code = "truncated"
	case errors.Is(err, vault.ErrFormat):
		code = "unknown_format"
	case errors.Is(err, vault.ErrUnknownKey):
		code = "unknown_key"
	default:
		return err
	}
	p := privguard.NewProblem(http.StatusUnprocessableEntity, TypeVaultCiphertext, "The ciphertext does not open", code)
	p.Field = "ciphertext"
	p.Errors = []privguard.FieldError{{Field: "ciphertext", Rule: code}}
	return p
}
