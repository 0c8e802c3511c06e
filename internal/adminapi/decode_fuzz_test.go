package adminapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"testing"

	"github.com/privguard/privguard"
)

// decodeSlow is decodeBytes as it was before the Unmarshal fast path: the key checks, then
// always the strict decoder.
func (s *Server) decodeSlow(body []byte, limit int64, dst any) error {
	if _, err := checkKeys(body, reflect.TypeOf(dst)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonProblem(err, limit)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return jsonProblem(err, limit)
		}
		return privguard.NewProblem(http.StatusBadRequest, TypeMalformedJSON, "Malformed JSON", "the body holds more than one JSON value")
	}
	if err := s.validate.Struct(dst); err != nil {
		return validationProblem(err)
	}
	return nil
}

// The fast path (json.Unmarshal when checkKeys finds the body plain) decides every body as
// the strict decoder does: the same problem, or the same value.
func FuzzDecodeFastPath(f *testing.F) {
	for _, seed := range []string{
		`{"subject":"s","action":"grant","purpose":"p","notice":{"id":"n","version":1},"evidence":{"ip":"1.2.3.4"}}`,
		`{"subject":5,"foo":1}`, `{"foo":1,"subject":5}`, `{"Subject":"s","action":"grant"}`, `{"subject":"s"} {}`,
		`[1]`, `null`, `{"notice":"x"}`, `{"guardian":{"reference":"r","relationship":"m","verification_method":"v","verified_at":"2026-01-01T00:00:00Z"}}`,
		`{"subject":"\u0073","action":"withdraw","idempotency_key":"k"}`, `{"categories":["a",1]}`, `{"recipient":{"categories":[]}}`,
	} {
		f.Add([]byte(seed))
	}
	s := &Server{validate: newValidator()}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, mk := range []func() any{func() any { return &consentBody{} }, func() any { return &importItem{} }} {
			fast, slow := mk(), mk()
			ef, es := s.decodeBytes(body, MaxConsentBody, fast), s.decodeSlow(body, MaxConsentBody, slow)
			if (ef == nil) != (es == nil) {
				t.Fatalf("%q: fast %v, strict %v", body, ef, es)
			}
			if ef != nil {
				pf, _ := json.Marshal(ef)
				ps, _ := json.Marshal(es)
				if !bytes.Equal(pf, ps) {
					t.Fatalf("%q: fast %s, strict %s", body, pf, ps)
				}
				continue
			}
			if !reflect.DeepEqual(fast, slow) {
				t.Fatalf("%q: fast %+v, strict %+v", body, fast, slow)
			}
		}
	})
}
