package main

import (
	"testing"

	"github.com/privguard/privguard/internal/consentload"
)

// TestAppendGrant keeps the load's grants the same as consentload's.
func TestAppendGrant(t *testing.T) {
	for _, i := range []int{0, 7, 70000, 1 << 23} {
		got, want := string(appendGrant(nil, []byte("load-w1-2"), i)), string(consentload.GrantBody("load-w1-2", i))
		if got != want {
			t.Errorf("appendGrant(%d) = %s; want %s", i, got, want)
		}
	}
}
