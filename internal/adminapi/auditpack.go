package adminapi

import (
	"context"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/internal/auditpack"
)

// AuditPacker writes the signed audit pack of a period (auditpack.Write with the sources
// the server enforces).
type AuditPacker func(ctx context.Context, period auditpack.Period, w io.Writer) error

// maxPackPeriod bounds the period of one pack.
const maxPackPeriod = 10 * 366 * 24 * time.Hour

// packTimeout bounds making and sending one pack.
const packTimeout = 10 * time.Minute

// getAuditPack serves GET /v1/audit/pack?from=&to= (from ≤ t < to; RFC 3339 or dates): the
// signed zip of the period. It is written to a temporary file first, so a failure half way
// is a problem, never half a pack; the file is removed once sent.
func (s *Server) getAuditPack(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := knownQuery(q, "from", "to"); err != nil {
		return err
	}
	from, err := queryTime(q, "from")
	if err != nil {
		return err
	}
	to, err := queryTime(q, "to")
	if err != nil {
		return err
	}
	switch {
	case from.IsZero() || to.IsZero():
		return privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Invalid query", "from and to are required: the pack covers from ≤ t < to")
	case !from.Before(to):
		return privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Invalid query", "from must be before to")
	case to.Sub(from) > maxPackPeriod:
		return privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Invalid query", "the period is longer than ten years")
	}
	// A year's pack takes longer than the listener's write timeout to make and send.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(packTimeout))
	f, err := os.CreateTemp("", "privguard-pack-*.zip")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := s.auditPack(r.Context(), auditpack.Period{From: from, To: to}, f); err != nil {
		return chainBroken(err)
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/zip")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Disposition", `attachment; filename="privguard-audit-`+from.UTC().Format("20060102")+"-"+to.UTC().Format("20060102")+`.zip"`)
	http.ServeContent(w, r, "", time.Time{}, io.NewSectionReader(f, 0, size))
	return nil
}
