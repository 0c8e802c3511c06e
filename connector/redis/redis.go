// Package redis is the Redis connector for data-subject requests (go-redis). It is the only
// package that imports go-redis. Subjects own whole keys (named by templates such as
// "profile:{subject}") and appear as members of sets (segments) found by patterns from the
// data map. A subject id is substituted into key names literally and used as a set member,
// never as a pattern: an id such as "*" names the key "profile:*", not every profile.
package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/dsar"
)

// Config configures [New].
type Config struct {
	Name string
	Addr string
	// Keys are templates of the keys a subject owns; "{subject}" is replaced by the id.
	Keys []string
	// SetMembers are patterns (SCAN MATCH syntax) of sets that list subject ids. Each
	// erasure, or batch of erasures, scans the keyspace once for the sets a pattern
	// matches; a name without glob characters is one set, used without a scan.
	SetMembers []string
	// Category is the data category of what the keys hold (default user.derived).
	Category privguard.DataCategory
	// DatedKeys are key templates with categories and a date, for retention sweeps; their
	// keys are also the subject's keys (exported and erased as Keys are).
	DatedKeys []DatedKey
}

// Connector is a Redis store.
type Connector struct {
	name     string
	client   *goredis.Client
	keys     []string
	sets     []string
	category privguard.DataCategory
	dated    []DatedKey
}

var (
	_ dsar.Connector   = (*Connector)(nil)
	_ dsar.BatchEraser = (*Connector)(nil)
)

// New connects to Redis.
func New(cfg Config) (*Connector, error) {
	if cfg.Name == "" {
		return nil, errors.New("redis: Config.Name is empty")
	}
	for _, k := range cfg.Keys {
		if strings.Count(k, "{subject}") != 1 {
			return nil, fmt.Errorf("redis %s: key template %q must contain {subject} once", cfg.Name, k)
		}
	}
	if err := checkDatedKeys(cfg.Name, cfg.DatedKeys); err != nil {
		return nil, err
	}
	keys := slices.Clone(cfg.Keys)
	for _, dk := range cfg.DatedKeys {
		if !slices.Contains(keys, dk.Key) {
			keys = append(keys, dk.Key)
		}
	}
	if cfg.Category == "" {
		cfg.Category = "user.derived"
	}
	return &Connector{name: cfg.Name, client: goredis.NewClient(&goredis.Options{Addr: cfg.Addr,
		// The engine's per-task deadline bounds every command, also on a server that hangs.
		ContextTimeoutEnabled: true}),
		keys: keys, sets: cfg.SetMembers, category: cfg.Category, dated: slices.Clone(cfg.DatedKeys)}, nil
}

// Close closes the client.
func (c *Connector) Close() error { return c.client.Close() }

// Name implements dsar.Connector.
func (c *Connector) Name() string { return c.name }

// Categories implements dsar.CategoryLister: what the keys hold, segment membership, and
// the dated keys' categories.
func (c *Connector) Categories() []privguard.DataCategory {
	out := []privguard.DataCategory{c.category, "user.derived.segments"}
	for _, dk := range c.dated {
		out = append(out, dk.Categories...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (c *Connector) fail(op string, err error) error {
	return &dsar.ConnectorError{Connector: c.name, Op: op, Kind: kind(err), Err: fmt.Errorf("%w: %w", err, privguard.ErrUnavailable)}
}

// kind classifies a go-redis error by the error code that starts a server's reply (the
// rest of the reply, which may name a key, is not read), then as the network or context
// error it wraps.
func kind(err error) dsar.ErrorKind {
	switch {
	case goredis.HasErrorPrefix(err, "NOAUTH"), goredis.HasErrorPrefix(err, "WRONGPASS"):
		return dsar.KindAuthFailed
	case goredis.HasErrorPrefix(err, "NOPERM"):
		return dsar.KindPermissionDenied
	case goredis.HasErrorPrefix(err, "READONLY"):
		return dsar.KindReadOnly
	}
	return dsar.KindOf(err)
}

func (c *Connector) keyNames(subject privguard.SubjectID) []string {
	out := make([]string, len(c.keys))
	for i, k := range c.keys {
		out[i] = strings.Replace(k, "{subject}", string(subject), 1)
	}
	return out
}

// setKeys returns every set matching the data map's patterns. SCAN ... TYPE set (Redis
// 6+) lets the server skip other keys, so no TYPE round trip per key is needed. A SCAN
// walks the whole keyspace, whatever the pattern; a name without glob characters (*, ?,
// [ or \) is taken as it is, without one (if it is missing or not a set, the commands on
// it change nothing).
func (c *Connector) setKeys(ctx context.Context) ([]string, error) {
	var out []string
	for _, pattern := range c.sets {
		if !strings.ContainsAny(pattern, `*?[\`) {
			out = append(out, pattern)
			continue
		}
		iter := c.client.ScanType(ctx, 0, pattern, 1000, "set").Iterator()
		for iter.Next(ctx) {
			out = append(out, iter.Val())
		}
		if err := iter.Err(); err != nil {
			return nil, err
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil // SCAN may return a key twice
}

// onlyWrongType reports whether every failed command failed with WRONGTYPE: the key was
// no longer a set when the command ran (changed since SCAN), so it lists no subject. (DEL
// and EXISTS never fail so.)
func onlyWrongType[C interface{ Err() error }](cmds []C) bool {
	for _, c := range cmds {
		if err := c.Err(); err != nil && !strings.HasPrefix(err.Error(), "WRONGTYPE") {
			return false
		}
	}
	return true
}

// Export implements dsar.Connector: the subject's keys with their values, and the sets
// (segments) that list the subject.
func (c *Connector) Export(ctx context.Context, subject privguard.SubjectID) (dsar.Export, error) {
	out := dsar.Export{Store: c.name}
	keys := dsar.Table{Name: "keys", Categories: map[string]privguard.DataCategory{"value": c.category}, Rows: []map[string]any{}}
	for _, key := range c.keyNames(subject) {
		t, err := c.client.Type(ctx, key).Result()
		if err != nil {
			return dsar.Export{}, c.fail("export", err)
		}
		var v any
		switch t {
		case "none":
			continue
		case "string":
			v, err = c.client.Get(ctx, key).Result()
		case "hash":
			v, err = c.client.HGetAll(ctx, key).Result()
		case "list":
			v, err = c.client.LRange(ctx, key, 0, -1).Result()
		case "set":
			v, err = c.client.SMembers(ctx, key).Result()
		case "zset":
			v, err = c.client.ZRangeWithScores(ctx, key, 0, -1).Result()
		default:
			v = "(" + t + ")"
		}
		if err != nil {
			return dsar.Export{}, c.fail("export", err)
		}
		keys.Rows = append(keys.Rows, map[string]any{"key": key, "type": t, "value": v})
	}
	sets := dsar.Table{Name: "sets", Categories: map[string]privguard.DataCategory{"set": "user.derived.segments"}, Rows: []map[string]any{}}
	setKeys, err := c.setKeys(ctx)
	if err != nil {
		return dsar.Export{}, c.fail("export", err)
	}
	if len(setKeys) > 0 {
		// One round trip for every membership test.
		pipe := c.client.Pipeline()
		in := make([]*goredis.BoolCmd, len(setKeys))
		for i, key := range setKeys {
			in[i] = pipe.SIsMember(ctx, key, string(subject))
		}
		if _, err := pipe.Exec(ctx); err != nil && !onlyWrongType(in) {
			return dsar.Export{}, c.fail("export", err)
		}
		for i, key := range setKeys {
			if in[i].Err() == nil && in[i].Val() {
				sets.Rows = append(sets.Rows, map[string]any{"set": key})
			}
		}
	}
	out.Tables = []dsar.Table{keys, sets}
	return out, nil
}

// Erase implements dsar.Connector: deletes the subject's keys and removes the subject from
// every matching set. The sets are searched for (SCAN) on every call, so a set created
// since an earlier erasure is found.
func (c *Connector) Erase(ctx context.Context, subject privguard.SubjectID) (dsar.Erased, error) {
	out, err := c.EraseBatch(ctx, []privguard.SubjectID{subject})
	if err != nil {
		return dsar.Erased{}, err
	}
	return out[0], nil
}

// EraseBatch implements dsar.BatchEraser: Erase for many subjects, with one search for the
// matching sets (one SCAN of the keyspace per batch, not per subject) and one pipelined
// round: per subject a DEL of its keys, per set an SMISMEMBER of the batch's subjects (what
// is counted) followed at once by an SREM of all of them. Every set that existed when the
// call began is searched; membership is read when the SREM runs, so a subject added to a
// set at any time before that is removed (nothing about membership is cached). A set
// created after the SCAN passed its place is not seen: the next erasure finds it.
// SMISMEMBER needs Redis 6.2 or later.
func (c *Connector) EraseBatch(ctx context.Context, subjects []privguard.SubjectID) ([]dsar.Erased, error) {
	out := make([]dsar.Erased, len(subjects))
	if len(subjects) == 0 {
		return out, nil
	}
	setKeys, err := c.setKeys(ctx)
	if err != nil {
		return nil, c.fail("erase", err)
	}
	// Each distinct id once in the set commands, counted for its first position.
	first := make(map[privguard.SubjectID]int, len(subjects))
	var members []any
	var at []int
	for i, s := range subjects {
		if _, dup := first[s]; !dup {
			first[s] = i
			members = append(members, string(s))
			at = append(at, i)
		}
	}
	pipe := c.client.Pipeline()
	var dels []*goredis.IntCmd
	if len(c.keys) > 0 {
		dels = make([]*goredis.IntCmd, len(subjects))
		for i, s := range subjects {
			dels[i] = pipe.Del(ctx, c.keyNames(s)...)
		}
	}
	in := make([]*goredis.BoolSliceCmd, len(setKeys))
	for j, key := range setKeys {
		in[j] = pipe.SMIsMember(ctx, key, members...)
		pipe.SRem(ctx, key, members...)
	}
	cmds, err := pipe.Exec(ctx)
	if err != nil && !onlyWrongType(cmds) {
		return nil, c.fail("erase", err)
	}
	for i, d := range dels {
		out[i].Items += int(d.Val())
	}
	for _, m := range in {
		if m.Err() != nil {
			continue // no longer a set (WRONGTYPE): it lists no subject
		}
		for k, isMember := range m.Val() {
			if isMember {
				out[at[k]].Items++
			}
		}
	}
	return out, nil
}
