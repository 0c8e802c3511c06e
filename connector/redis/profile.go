package redis

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/dsar"
)

// The subject's derived items in Redis (dsar.Profiler). Two kinds:
//
//   - Memberships of the segment sets (Config.SetMembers) that list the subject: one item
//     per set, category user.derived.segments, Where and Value the set's key. Erasing one
//     removes the subject from that set (SREM), nothing else.
//   - The values of the subject's own keys whose category is derived (Config.Keys when
//     Config.Category is user.derived or below, and dated keys all of whose categories
//     are): a string key is one item (Where the key), each distinct element of a list and
//     each member of a set or sorted set is one (Where the key), and each field of a hash
//     is one (Where "key#field", Value the field's value; a dated key's dated_by field is
//     not an item). A hash field holding a list of tags ("vip,churn-risk") is one item:
//     privguard does not split a value by a delimiter it would have to guess, and erasing
//     the item removes the field. Keep tags as the members of a set or list key for the
//     subject to delete them one by one.
//
// Erasing a value item is one Lua script on its key that checks the key's type and the
// value again (a string or hash field is deleted only if it still holds the value listed;
// LREM, SREM and ZREM remove exactly that element), so a value changed since it was listed
// is kept, and the value is always an argument, never part of a pattern.

var _ dsar.Profiler = (*Connector)(nil)

// profKey is a key template whose keys hold derived data, with the category of their
// values and the hash field that dates them (not an item).
type profKey struct {
	tmpl     string
	category privguard.DataCategory
	skip     string
}

// profKeys returns the templates whose keys hold derived data.
func (c *Connector) profKeys() []profKey {
	var out []profKey
	seen := map[string]bool{}
	for _, dk := range c.dated {
		seen[dk.Key] = true
		if !slices.ContainsFunc(dk.Categories, func(cat privguard.DataCategory) bool { return !dsar.Derived(cat) }) {
			pk := profKey{tmpl: dk.Key, category: "user.derived"}
			if len(dk.Categories) == 1 {
				pk.category = dk.Categories[0]
			}
			if dk.DatedBy != DatedByTTL {
				pk.skip = dk.DatedBy
			}
			out = append(out, pk)
		}
	}
	if !dsar.Derived(c.category) {
		return out
	}
	for _, k := range c.keys {
		if !seen[k] {
			out = append(out, profKey{tmpl: k, category: c.category})
		}
	}
	return out
}

// Derived implements dsar.Profiler: the subject's segment memberships and the values of
// its keys that hold derived data, as described above.
func (c *Connector) Derived(ctx context.Context, subject privguard.SubjectID) ([]dsar.DerivedItem, error) {
	var out []dsar.DerivedItem
	item := func(where string, cat privguard.DataCategory, value string) {
		out = append(out, dsar.DerivedItem{Store: c.name, Where: where, Category: cat, Value: value})
	}
	for _, pk := range c.profKeys() {
		key := strings.Replace(pk.tmpl, "{subject}", string(subject), 1)
		t, err := c.client.Type(ctx, key).Result()
		if err != nil {
			return nil, c.fail(dsar.OpProfile, err)
		}
		var vals []string
		switch t {
		case "string":
			var v string
			v, err = c.client.Get(ctx, key).Result()
			vals = []string{v}
		case "hash":
			var h map[string]string
			h, err = c.client.HGetAll(ctx, key).Result()
			for _, f := range slices.Sorted(maps.Keys(h)) {
				if f != pk.skip {
					item(key+"#"+f, pk.category, h[f])
				}
			}
		case "list":
			vals, err = c.client.LRange(ctx, key, 0, -1).Result()
		case "set":
			vals, err = c.client.SMembers(ctx, key).Result()
		case "zset":
			vals, err = c.client.ZRange(ctx, key, 0, -1).Result()
		}
		if err == goredis.Nil {
			continue // gone since TYPE
		}
		if err != nil {
			return nil, c.fail(dsar.OpProfile, err)
		}
		slices.Sort(vals)
		for _, v := range slices.Compact(vals) {
			item(key, pk.category, v)
		}
	}
	setKeys, err := c.setKeys(ctx)
	if err != nil {
		return nil, c.fail(dsar.OpProfile, err)
	}
	if len(setKeys) > 0 {
		pipe := c.client.Pipeline()
		in := make([]*goredis.BoolCmd, len(setKeys))
		for i, key := range setKeys {
			in[i] = pipe.SIsMember(ctx, key, string(subject))
		}
		if _, err := pipe.Exec(ctx); err != nil && !onlyWrongType(in) {
			return nil, c.fail(dsar.OpProfile, err)
		}
		for i, key := range setKeys {
			if in[i].Err() == nil && in[i].Val() {
				item(key, "user.derived.segments", key)
			}
		}
	}
	return out, nil
}

// eraseValue removes ARGV[1] from key KEYS[1] if the key (or, with ARGV[2] = "1", its hash
// field ARGV[3]) still holds it, whatever the key's type, and returns how many it removed.
var eraseValue = goredis.NewScript(`local t = redis.call('TYPE', KEYS[1]).ok
if ARGV[2] == '1' then
  if t == 'hash' and redis.call('HGET', KEYS[1], ARGV[3]) == ARGV[1] then return redis.call('HDEL', KEYS[1], ARGV[3]) end
  return 0
end
if t == 'string' then
  if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
  return 0
end
if t == 'list' then return redis.call('LREM', KEYS[1], 0, ARGV[1]) end
if t == 'set' then return redis.call('SREM', KEYS[1], ARGV[1]) end
if t == 'zset' then return redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0`)

// EraseDerived implements dsar.Profiler, in one pipelined round: a membership item is an
// SREM of the subject from that set (which must be one of the data map's segment sets), a
// value item the eraseValue script on the subject's key. An item whose Where is neither a
// key of the subject that holds derived data nor a segment set is an error.
func (c *Connector) EraseDerived(ctx context.Context, subject privguard.SubjectID, items []dsar.DerivedItem) (dsar.Erased, error) {
	type op struct {
		key, field string
		hasField   bool
		member     bool
	}
	keys := map[string]bool{}
	for _, pk := range c.profKeys() {
		keys[strings.Replace(pk.tmpl, "{subject}", string(subject), 1)] = true
	}
	var sets map[string]bool // found once, if an item may be a membership
	ops := make([]op, len(items))
	for i, it := range items {
		if keys[it.Where] {
			ops[i] = op{key: it.Where}
			continue
		}
		if k, f, ok := cutField(keys, it.Where); ok {
			ops[i] = op{key: k, field: f, hasField: true}
			continue
		}
		if sets == nil {
			found, err := c.setKeys(ctx)
			if err != nil {
				return dsar.Erased{}, c.fail(dsar.OpEraseDerived, err)
			}
			sets = map[string]bool{}
			for _, s := range found {
				sets[s] = true
			}
		}
		if !sets[it.Where] {
			return dsar.Erased{}, &dsar.ConnectorError{Connector: c.name, Op: dsar.OpEraseDerived,
				Err: fmt.Errorf("%q is neither a key of the subject holding derived data nor a segment set: %w", it.Where, privguard.ErrInvalid)}
		}
		ops[i] = op{key: it.Where, member: true}
	}
	pipe := c.client.Pipeline()
	cmds := make([]goredis.Cmder, len(items))
	for i, o := range ops {
		if o.member {
			cmds[i] = pipe.SRem(ctx, o.key, string(subject))
			continue
		}
		flag := "0"
		if o.hasField {
			flag = "1"
		}
		cmds[i] = eraseValue.Eval(ctx, pipe, []string{o.key}, items[i].Value, flag, o.field)
	}
	if len(cmds) == 0 {
		return dsar.Erased{}, nil
	}
	if _, err := pipe.Exec(ctx); err != nil && !onlyWrongType(cmds) {
		return dsar.Erased{}, c.fail(dsar.OpEraseDerived, err)
	}
	var out dsar.Erased
	for _, cmd := range cmds {
		switch cmd := cmd.(type) {
		case *goredis.IntCmd:
			out.Items += int(cmd.Val())
		case *goredis.Cmd:
			n, _ := cmd.Int64()
			out.Items += int(n)
		}
	}
	return out, nil
}

// cutField splits where ("key#field") at the longest of keys followed by "#".
func cutField(keys map[string]bool, where string) (key, field string, ok bool) {
	for k := range keys {
		if f, found := strings.CutPrefix(where, k+"#"); found && len(k) > len(key) {
			key, field, ok = k, f, true
		}
	}
	return key, field, ok
}
