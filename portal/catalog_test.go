package portal

import (
	"io/fs"
	"regexp"
	"testing"

	"github.com/privguard/privguard/dsar"
)

// TestCatalogComplete: every text a template asks for exists in both languages, and so do
// the names of every request type, state and channel a page can show.
func TestCatalogComplete(t *testing.T) {
	for key, m := range msgs {
		if m[0] == "" || m[1] == "" {
			t.Errorf("%s lacks a language: %q", key, m)
		}
	}
	used := regexp.MustCompile(`\{\{-?\s*t \$?[a-zA-Z.]* "([a-z._]+)"`)
	err := fs.WalkDir(templateFS, "templates", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(templateFS, path)
		for _, m := range used.FindAllStringSubmatch(string(b), -1) {
			if _, ok := msgs[m[1]]; !ok {
				t.Errorf("%s: no text %q", path, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, typ := range append(offered, dsar.TypeTagDeletion) {
		keys = append(keys, "type."+string(typ))
	}
	for _, st := range []dsar.State{dsar.StateReceived, dsar.StateAwaitingVerify, dsar.StateVerified, dsar.StateAwaitingApproval,
		dsar.StateInProgress, dsar.StateCompleted, dsar.StatePartiallyFailed, dsar.StateRejected, dsar.StateCancelled, dsar.StateAwaitingReview} {
		keys = append(keys, "state."+string(st))
	}
	for _, r := range []string{"requested", dsar.ReviewUpheld, dsar.ReviewChanged} {
		keys = append(keys, "requests.review."+r)
	}
	for _, ch := range channels {
		keys = append(keys, "channel."+ch)
	}
	for _, k := range keys {
		if _, ok := msgs[k]; !ok {
			t.Errorf("no text %q", k)
		}
	}
}

func TestAcceptLanguage(t *testing.T) {
	for h, want := range map[string]string{
		"zh-CN,zh;q=0.9,en;q=0.8": LangZH,
		"en-GB,en;q=0.9":          LangEN,
		"fr-FR,en;q=0.5,zh;q=0.4": LangEN,
		"fr-FR,zh-TW;q=0.7":       LangZH,
		"zh;q=0,en;q=0.1":         LangEN,
		"":                        "",
		"de":                      "",
	} {
		got, _ := acceptLanguage(h)
		if got != want {
			t.Errorf("acceptLanguage(%q) = %q, want %q", h, got, want)
		}
	}
}
