package config

import (
	"fmt"
	"time"
)

// FrequencyStore is where the sidecar counts contacts for the frequency limits. Unset:
// in memory, per process (replicas then count separately, and a restart forgets).
type FrequencyStore struct {
	// Redis counts in Redis, shared by every replica pointed at it (package redislimit).
	Redis *FrequencyRedis `yaml:"redis"`
}

// FrequencyRedis is a Redis server the replicas share their contact counts on.
type FrequencyRedis struct {
	// Addr is the server's host:port.
	Addr string `yaml:"addr" validate:"required,host_port"`
	// PasswordFile holds the password (AUTH), if the server wants one.
	PasswordFile string `yaml:"password_file"`
	// DB is the database number (0).
	DB int `yaml:"db" validate:"min=0,max=1000"`
	// KeyPrefix starts every key (default "privguard:freq:"); replicas that share counts
	// use the same one.
	KeyPrefix string `yaml:"key_prefix" validate:"max=100"`
	// KeyFile holds the HMAC key (at least 32 bytes) subject ids are hashed with in key
	// names. Default: the store's secret frequency.subject-hmac, which replicas share
	// only if they share the store; replicas with stores of their own need this file (a
	// replica whose key differs from the one recorded in Redis refuses to start).
	KeyFile string `yaml:"key_file"`
	// Timeout bounds each call to Redis (default 300ms, at most 5s): an unreachable
	// server delays a send by this much before on_unavailable applies.
	Timeout *Duration `yaml:"timeout"`
}

// MaxFrequencyTimeout bounds frequency_store.redis.timeout.
const MaxFrequencyTimeout = 5 * time.Second

// frequencyProblems checks what the validator tags cannot: durations.
func (f *File) frequencyProblems() []string {
	var msgs []string
	if r := f.FrequencyStore.Redis; r != nil && r.Timeout != nil && (r.Timeout.Duration <= 0 || r.Timeout.Duration > MaxFrequencyTimeout) {
		msgs = append(msgs, fmt.Sprintf("frequency_store.redis.timeout: must be more than 0 and at most %s", MaxFrequencyTimeout))
	}
	return msgs
}
