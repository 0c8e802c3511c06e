package privguard_test

import (
	"testing"

	"github.com/privguard/privguard"
)

func TestMask(t *testing.T) {
	for in, want := range map[string]string{
		"13812345678":        "138****5678",
		"+86 138 1234 5678":  "+86**********5678",
		"1234567":            "12***67",
		"li.lei@example.com": "l***@example.com",
		"@example.com":       "***@example.com",
		"李雷":                 "李***",
		"":                   "",
		"x":                  "x***",
	} {
		if got := privguard.Mask(in); got != want {
			t.Errorf("Mask(%q) = %q; want %q", in, got, want)
		}
	}
}
