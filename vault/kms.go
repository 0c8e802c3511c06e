package vault

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/hashicorp/vault/api"
	"github.com/tink-crypto/tink-go-awskms/v3/integration/awskms"
	"github.com/tink-crypto/tink-go-gcpkms/v2/integration/gcpkms"
	"github.com/tink-crypto/tink-go-hcvault/v2/integration/hcvault"
)

// KEKFromURI returns the KEK held by a key management service, named by a Tink KMS URI:
//
//	gcp-kms://projects/P/locations/L/keyRings/R/cryptoKeys/K   (Google Cloud KMS; credentials
//	                                                            from the environment, ADC)
//	aws-kms://arn:aws:kms:REGION:ACCOUNT:key/ID                 (AWS KMS; credentials from the
//	                                                            environment or instance role)
//	hcvault://HOST[:PORT]/transit/keys/NAME                     (HashiCorp Vault transit;
//	                                                            VAULT_TOKEN from the environment)
//
// Only the subject keysets are wrapped by the KMS (one call per cache miss), never each value:
// KMS envelope mode per field would cost a KMS round trip per value. For HashiCorp Vault the
// associated data (the subject id) is sent as `associated_data`, which Vault honours for
// non-derived transit keys; its older `context` parameter would silently drop it.
func KEKFromURI(ctx context.Context, uri string) (KEK, error) {
	scheme, rest, ok := strings.Cut(uri, "://")
	if !ok || rest == "" {
		return nil, fmt.Errorf("vault: KEK URI %q: want gcp-kms://, aws-kms:// or hcvault://", uri)
	}
	switch scheme {
	case "gcp-kms":
		c, err := gcpkms.NewClientWithOptions(ctx, uri)
		if err != nil {
			return nil, fmt.Errorf("vault: Google Cloud KMS: %w", err)
		}
		return c.GetAEAD(uri)
	case "aws-kms":
		c, err := awskms.NewClient(ctx, uri)
		if err != nil {
			return nil, fmt.Errorf("vault: AWS KMS: %w", err)
		}
		return c.GetAEAD(uri)
	case "hcvault":
		u, err := url.Parse("https://" + rest)
		if err != nil || u.Host == "" || !strings.HasPrefix(u.Path, "/") || strings.Count(u.Path, "/") < 3 {
			return nil, fmt.Errorf("vault: KEK URI %q: want hcvault://HOST/MOUNT/keys/NAME", uri)
		}
		cfg := api.DefaultConfig() // VAULT_* environment: token, CA, TLS settings
		cfg.Address = "https://" + u.Host
		client, err := api.NewClient(cfg)
		if err != nil {
			return nil, fmt.Errorf("vault: HashiCorp Vault: %w", err)
		}
		return hcvault.NewAEAD(u.Path, client.Logical())
	}
	return nil, fmt.Errorf("vault: KEK URI scheme %q: want gcp-kms, aws-kms or hcvault", scheme)
}
