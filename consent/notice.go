package consent

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"time"

	"github.com/privguard/privguard"
)

// Notice is one language of one version of a privacy notice: the exact text shown to the
// subject, its hash, and what it tells (PIPL Art. 17, GDPR Arts. 13-14). Notices are
// immutable once registered; a change is a new version. The metadata (everything but the
// text and its language) belongs to the version and is the same in every language.
type Notice struct {
	ID       string `json:"id"`
	Version  uint32 `json:"version"`
	Language string `json:"language"`
	Text     string `json:"text"`
	// SHA256 is the hex SHA-256 of Text, computed by the ledger.
	SHA256 string `json:"sha256"`
	// MaterialChange marks a version that changes purposes, methods or categories
	// (PIPL Art. 14(2)): grants citing an earlier version of this notice stop counting for
	// the affected purposes until the subject consents again.
	MaterialChange bool `json:"material_change"`
	// AffectedPurposes are the purposes a material change affects; empty means all Purposes.
	AffectedPurposes []privguard.Purpose `json:"affected_purposes,omitempty"`
	// Purposes the notice asks consent for or informs about. A grant must cite a notice that
	// lists its purpose (or an ancestor of it).
	Purposes   []privguard.Purpose      `json:"purposes"`
	Categories []privguard.DataCategory `json:"categories,omitempty"`
	Controller Controller               `json:"controller"`
	// Retention says how long data is kept, in the words shown to the subject.
	Retention string `json:"retention"`
	// RightsChannels are the ways subjects exercise their rights and withdraw (URLs, email
	// addresses, in-app paths).
	RightsChannels   []string `json:"rights_channels"`
	Recipients       []string `json:"recipients,omitempty"`
	StorageLocations []string `json:"storage_locations,omitempty"`
	// PolicyURL is where the full policy is published.
	PolicyURL string    `json:"policy_url,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Controller identifies the personal information handler (controller) and its contact,
// including the DPO where there is one.
type Controller struct {
	Name    string `json:"name"`
	Contact string `json:"contact"`
	Address string `json:"address,omitempty"`
	DPO     string `json:"dpo,omitempty"`
}

// affected reports whether a material change in n affects purpose p.
func (n *Notice) affected(p privguard.Purpose) bool {
	list := n.AffectedPurposes
	if len(list) == 0 {
		list = n.Purposes
	}
	for _, a := range list {
		if p.Within(a) || a.Within(p) {
			return true
		}
	}
	return false
}

// covers reports whether n informs about purpose p.
func (n *Notice) covers(p privguard.Purpose) bool {
	return slices.ContainsFunc(n.Purposes, func(q privguard.Purpose) bool { return p.Within(q) })
}

// sameMeta reports whether a and b carry the same version metadata.
func sameMeta(a, b *Notice) bool {
	ma, mb := *a, *b
	ma.Language, mb.Language = "", ""
	ma.Text, mb.Text = "", ""
	ma.SHA256, mb.SHA256 = "", ""
	ma.CreatedAt, mb.CreatedAt = time.Time{}, time.Time{}
	ja, _ := json.Marshal(ma)
	jb, _ := json.Marshal(mb)
	return string(ja) == string(jb)
}

func textHash(text string) [32]byte { return sha256.Sum256([]byte(text)) }

func hexHash(h [32]byte) string { return hex.EncodeToString(h[:]) }
