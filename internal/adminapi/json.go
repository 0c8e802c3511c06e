package adminapi

import (
	"encoding/json"
	"net/http"

	"github.com/privguard/privguard/consent"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeRecord writes a consent record as writeJSON would, byte for byte, without
// encoding/json's second pass over what Record.MarshalJSON produced (an Encoder compacts
// and re-escapes a Marshaler's output; json.Marshal's is compact and escaped already).
func writeRecord(w http.ResponseWriter, status int, rec consent.Record) {
	b, err := rec.MarshalJSON()
	if err != nil {
		writeJSON(w, status, rec) // cannot happen: every field encodes
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
