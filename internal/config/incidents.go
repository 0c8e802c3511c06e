package config

// Incidents configures the clocks of the incident register (GET /v1/incidents).
type Incidents struct {
	// CIIOperator: the controller operates critical information infrastructure, so an
	// incident of level 较大 or worse is reported within 1 hour instead of 4
	// (国家网络安全事件报告管理办法 Art. 4).
	CIIOperator bool `yaml:"cii_operator"`
	// Regimes whose clocks run: pipl (the CAC report), gdpr (the supervisory authority's
	// 72 hours). Default: the service's regime alone.
	Regimes []string `yaml:"regimes" validate:"dive,oneof=pipl gdpr"`
}
