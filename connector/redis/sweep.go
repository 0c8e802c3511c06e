package redis

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/dsar"
)

// DatedKey is a key template whose keys carry data categories and a date, for retention
// sweeps. Its keys are also the subject's keys for requests (exported and erased as Keys
// are).
type DatedKey struct {
	// Key is the template, "{subject}" once: "profile:{subject}".
	Key        string
	Categories []privguard.DataCategory
	// DatedBy is the hash field holding when the key's data was collected (RFC 3339 or
	// unix seconds), or "ttl": the key's TTL is its retention.
	DatedBy string
}

// DatedByTTL is DatedKey.DatedBy for keys whose TTL is their retention.
const DatedByTTL = "ttl"

var _ dsar.Sweeper = (*Connector)(nil)

func checkDatedKeys(name string, dks []DatedKey) error {
	seen := map[string]bool{}
	for _, dk := range dks {
		if strings.Count(dk.Key, "{subject}") != 1 {
			return fmt.Errorf("redis %s: dated key template %q must contain {subject} once", name, dk.Key)
		}
		if seen[dk.Key] {
			return fmt.Errorf("redis %s: dated key template %q is listed twice", name, dk.Key)
		}
		seen[dk.Key] = true
		if dk.DatedBy == "" || len(dk.Categories) == 0 {
			return fmt.Errorf("redis %s: dated key template %q needs dated_by and categories", name, dk.Key)
		}
	}
	return nil
}

// globEscape escapes SCAN MATCH's special characters.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// template is a dated key template split at {subject}.
type template struct {
	DatedKey
	prefix, suffix string
}

func (t template) pattern() string { return globEscape(t.prefix) + "*" + globEscape(t.suffix) }

func (t template) key(s privguard.SubjectID) string { return t.prefix + string(s) + t.suffix }

// matches reports whether key is the template's key of a subject id (SCAN MATCH's "*" also
// matches what no subject id is).
func (t template) matches(key string) bool {
	id, ok := strings.CutPrefix(key, t.prefix)
	if !ok {
		return false
	}
	id, ok = strings.CutSuffix(id, t.suffix)
	return ok && privguard.SubjectID(id).Validate() == nil
}

func (c *Connector) template(op, name string) (template, error) {
	for _, dk := range c.dated {
		if dk.Key == name {
			prefix, suffix, _ := strings.Cut(dk.Key, "{subject}")
			return template{dk, prefix, suffix}, nil
		}
	}
	return template{}, c.invalid(op, "key template %q is not a dated key of this store", name)
}

func (c *Connector) invalid(op, format string, args ...any) error {
	return &dsar.ConnectorError{Connector: c.name, Op: op, Err: fmt.Errorf(format+": %w", append(args, privguard.ErrInvalid)...)}
}

// delIfField deletes a key only if its dated_by field still holds the value read, so that
// a key renewed since is kept.
var delIfField = goredis.NewScript(`if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('DEL', KEYS[1]) end return 0`)

// expireIfLonger gives a key the TTL ARGV[1] (ms) if it has none or a longer one.
var expireIfLonger = goredis.NewScript(`local t = redis.call('PTTL', KEYS[1])
if t == -1 or t > tonumber(ARGV[1]) then return redis.call('PEXPIRE', KEYS[1], ARGV[1]) end return 0`)

// parseDate reads a dated_by field: RFC 3339 or unix seconds.
func parseDate(v string) (time.Time, bool) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(n, 0), true
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	return t, err == nil
}

// sweeper carries out one action on pages of candidate keys.
type sweeper struct {
	c      *Connector
	t      template
	a      dsar.SweepAction
	period int64 // SweepExpire: ms
	dry    bool
}

// page changes (or, dry, counts) what a asks for among keys, at most limit (0: no limit).
func (s sweeper) page(ctx context.Context, keys []string, limit int) (int, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	r := s.c.client
	switch {
	case s.a.Mode == dsar.SweepExpire:
		if s.dry {
			pipe := r.Pipeline()
			ttls := make([]*goredis.DurationCmd, len(keys))
			for i, k := range keys {
				ttls[i] = pipe.PTTL(ctx, k)
			}
			if _, err := pipe.Exec(ctx); err != nil {
				return 0, err
			}
			n := 0
			for _, d := range ttls {
				if v := d.Val(); v == -1 || v > time.Duration(s.period)*time.Millisecond { // -1: no TTL (go-redis keeps the reply)
					n++
				}
			}
			return n, nil
		}
		return s.run(ctx, keys, limit, func(pipe goredis.Pipeliner, k string) *goredis.Cmd {
			return expireIfLonger.Eval(ctx, pipe, []string{k}, s.period)
		})
	case s.a.Before.IsZero(): // SweepDelete of subjects' keys, whatever their date
		if s.dry {
			n, err := r.Exists(ctx, keys...).Result()
			return int(n), err
		}
		return s.run(ctx, keys, limit, func(pipe goredis.Pipeliner, k string) *goredis.Cmd {
			return pipe.Do(ctx, "DEL", k)
		})
	}
	// SweepDelete of keys dated before the cut-off.
	pipe := r.Pipeline()
	vals := make([]*goredis.StringCmd, len(keys))
	for i, k := range keys {
		vals[i] = pipe.HGet(ctx, k, s.t.DatedBy)
	}
	pipe.Exec(ctx) // missing fields (redis.Nil) and keys that are not hashes (WRONGTYPE) are read below
	var due []string
	var was []string
	for i, v := range vals {
		if v.Err() != nil {
			if v.Err() == goredis.Nil || strings.HasPrefix(v.Err().Error(), "WRONGTYPE") {
				continue // undated, or not a hash: never swept by date
			}
			return 0, v.Err()
		}
		if at, ok := parseDate(v.Val()); ok && at.Before(s.a.Before) {
			due, was = append(due, keys[i]), append(was, v.Val())
		}
	}
	if s.dry {
		return len(due), nil
	}
	i := 0
	return s.run(ctx, due, limit, func(pipe goredis.Pipeliner, k string) *goredis.Cmd {
		// run calls this in keys' order.
		cmd := delIfField.Eval(ctx, pipe, []string{k}, s.t.DatedBy, was[i])
		i++
		return cmd
	})
}

// run sends one command per key, pipelined, and returns how many changed a key (replied
// 1). With a limit (0: none) it sends at most as many commands as changes may still be
// made, and again for the keys left, so that it never changes more than limit keys.
func (s sweeper) run(ctx context.Context, keys []string, limit int, cmd func(goredis.Pipeliner, string) *goredis.Cmd) (int, error) {
	n := 0
	for len(keys) > 0 && (limit == 0 || n < limit) {
		batch := keys
		if limit > 0 && len(batch) > limit-n {
			batch = batch[:limit-n]
		}
		keys = keys[len(batch):]
		pipe := s.c.client.Pipeline()
		cmds := make([]*goredis.Cmd, len(batch))
		for i, k := range batch {
			cmds[i] = cmd(pipe, k)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return n, err
		}
		for _, c := range cmds {
			if v, _ := c.Int64(); v == 1 {
				n++
			}
		}
	}
	return n, nil
}

// scanPage is how many keys one SCAN call is asked to look at.
const scanPage = 1000

// each calls fn with pages of the action's candidate keys: the subjects' keys (literal
// substitution), or every key SCAN MATCH finds for the template, until fn says stop.
func (s sweeper) each(ctx context.Context, fn func([]string) (stop bool, err error)) error {
	if s.a.Subjects != nil {
		keys := make([]string, 0, len(s.a.Subjects))
		for _, id := range s.a.Subjects {
			keys = append(keys, s.t.key(id))
		}
		slices.Sort(keys)
		for chunk := range slices.Chunk(slices.Compact(keys), scanPage) {
			if stop, err := fn(chunk); stop || err != nil {
				return err
			}
		}
		return nil
	}
	var iter *goredis.ScanIterator
	if s.a.Mode == dsar.SweepExpire {
		iter = s.c.client.Scan(ctx, 0, s.t.pattern(), scanPage).Iterator()
	} else {
		iter = s.c.client.ScanType(ctx, 0, s.t.pattern(), scanPage, "hash").Iterator()
	}
	seen := map[string]bool{} // SCAN may return a key twice
	var page []string
	flush := func() (bool, error) {
		stop, err := fn(page)
		page = page[:0]
		return stop, err
	}
	for iter.Next(ctx) {
		if k := iter.Val(); s.t.matches(k) && !seen[k] {
			seen[k] = true
			page = append(page, k)
		}
		if len(page) == scanPage {
			if stop, err := flush(); stop || err != nil {
				return err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	_, err := flush()
	return err
}

func (c *Connector) sweeper(op string, a dsar.SweepAction) (sweeper, error) {
	t, err := c.template(op, a.Table)
	if err != nil {
		return sweeper{}, err
	}
	s := sweeper{c: c, t: t, a: a}
	switch a.Mode {
	case dsar.SweepDelete:
		if a.Before.IsZero() && a.Subjects == nil {
			return s, c.invalid(op, "sweep action names neither a cut-off nor subjects")
		}
		if !a.Before.IsZero() && t.DatedBy == DatedByTTL {
			return s, c.invalid(op, "keys of %q are dated by their TTL: no cut-off applies", t.Key)
		}
	case dsar.SweepExpire:
		if t.DatedBy != DatedByTTL || a.Period <= 0 || !a.Before.IsZero() {
			return s, c.invalid(op, "expire needs keys dated by their TTL and a period > 0")
		}
		s.period = max(a.Period.Milliseconds(), 1)
	default:
		return s, c.invalid(op, "sweep mode %q: a Redis store deletes or expires keys", a.Mode)
	}
	return s, nil
}

// Sweep implements dsar.Sweeper. Keys are found by SCAN MATCH on the template, or by
// literal substitution of Subjects; each change is atomic on its key (a Lua script checks
// the date or TTL it acts on again), so a key renewed since it was read is kept. Every call
// scans from the start: what earlier calls changed no longer matches.
func (c *Connector) Sweep(ctx context.Context, a dsar.SweepAction, limit int) (int, bool, error) {
	s, err := c.sweeper("sweep", a)
	if err != nil {
		return 0, false, err
	}
	if limit <= 0 {
		return 0, false, c.invalid("sweep", "limit %d: want > 0", limit)
	}
	n := 0
	err = s.each(ctx, func(keys []string) (bool, error) {
		k, err := s.page(ctx, keys, limit-n)
		n += k
		return n >= limit, err
	})
	if err != nil {
		return n, false, c.fail("sweep", err)
	}
	return n, n >= limit, nil
}

// CountSweep implements dsar.Sweeper.
func (c *Connector) CountSweep(ctx context.Context, a dsar.SweepAction) (int, error) {
	s, err := c.sweeper("count sweep", a)
	if err != nil {
		return 0, err
	}
	s.dry = true
	n := 0
	err = s.each(ctx, func(keys []string) (bool, error) {
		k, err := s.page(ctx, keys, 0)
		n += k
		return false, err
	})
	if err != nil {
		return 0, c.fail("count sweep", err)
	}
	return n, nil
}
