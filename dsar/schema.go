package dsar

import "embed"

// Schemas holds the published JSON Schemas (draft 2020-12) of an access package's files:
// schema/disclosure.schema.json, schema/store-export.schema.json and
// schema/manifest.schema.json. The admin API serves them under /v1/schema/.
//
//go:embed schema/*.schema.json
var Schemas embed.FS
