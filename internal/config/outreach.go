package config

// Outreach configures the outreach gate (package outreach): message checks, unsubscribe
// links and the SMS gateways whose replies come in.
type Outreach struct {
	// PublicURL is the base URL subjects and mailbox providers reach privguard's public
	// routes at (the one-click unsubscribe: <public_url>/v1/outreach/unsubscribe/<token>).
	PublicURL string `yaml:"public_url" validate:"omitempty,url,startswith=http"`
	// PromoMarkers are what makes a message promotional beside the built-in markers
	// (prices, coupons, 限时, links to offers): a "service" template carrying one is marketing.
	PromoMarkers []string `yaml:"promo_markers" validate:"dive,required,max=64"`
	// StopWords are SMS reply keywords that withdraw SMS marketing, beside TD, T, 退订, N,
	// STOP and UNSUBSCRIBE.
	StopWords []string `yaml:"stop_words" validate:"dive,required,max=32"`
	// Gateways are the SMS gateways whose replies (mobile-originated messages) arrive at
	// POST /v1/outreach/replies/{name}, signed with the gateway's secret.
	Gateways []OutreachGateway `yaml:"gateways" validate:"dive"`
}

// OutreachGateway is an SMS gateway sending replies in.
type OutreachGateway struct {
	Name string `yaml:"name" validate:"required,max=64,name"`
	// SecretFile holds the HMAC secret (at least 32 bytes) the gateway signs with
	// (Privguard-Signature, as the webhook connector signs).
	SecretFile string `yaml:"secret_file" validate:"required"`
}
