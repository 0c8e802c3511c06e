package pgstore_test

import (
	"testing"

	"github.com/privguard/privguard/identity/identitytest"
)

func TestIdentityStore(t *testing.T) {
	t.Parallel()
	identitytest.TestStore(t, func(t *testing.T) identitytest.Stores {
		db := openDB(t)
		return identitytest.Stores{Identity: db.Identity(), Vault: db.Vault()}
	})
}
