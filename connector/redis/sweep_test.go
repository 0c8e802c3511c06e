package redis_test

import (
	"context"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/connector/redis"
	"github.com/privguard/privguard/dsar"
)

var (
	cut  = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	old  = time.Date(2025, 3, 17, 13, 45, 0, 0, time.UTC)
	newT = time.Date(2025, 9, 2, 8, 0, 0, 0, time.UTC)
)

// sweepClient returns a client, and removes keys under prefix before and after the test.
func sweepClient(t *testing.T, prefix string) (*goredis.Client, string) {
	t.Helper()
	addr := os.Getenv("PRIVGUARD_TEST_REDIS_ADDR")
	if addr == "" {
		t.Skip("PRIVGUARD_TEST_REDIS_ADDR is not set (CI sets it; see .ci/run)")
	}
	r := goredis.NewClient(&goredis.Options{Addr: addr})
	clean := func() {
		keys, _ := r.Keys(context.Background(), prefix+"*").Result()
		if len(keys) > 0 {
			r.Del(context.Background(), keys...)
		}
	}
	clean()
	t.Cleanup(func() { clean(); r.Close() })
	return r, addr
}

func sweepAll(t *testing.T, s dsar.Sweeper, a dsar.SweepAction, limit int) []int {
	t.Helper()
	var ns []int
	for range 100 {
		n, more, err := s.Sweep(context.Background(), a, limit)
		if err != nil {
			t.Fatalf("Sweep: %v", err)
		}
		if n > limit {
			t.Fatalf("Sweep changed %d keys, limit %d", n, limit)
		}
		ns = append(ns, n)
		if !more {
			return ns
		}
	}
	t.Fatal("Sweep never said done")
	return nil
}

func exists(t *testing.T, r *goredis.Client, keys ...string) []string {
	t.Helper()
	var out []string
	for _, k := range keys {
		if n, err := r.Exists(context.Background(), k).Result(); err != nil {
			t.Fatal(err)
		} else if n == 1 {
			out = append(out, k)
		}
	}
	return out
}

// TestSweepDatedField: keys whose dated_by field is before the cut-off (RFC 3339 or unix
// seconds) are deleted in batches; undated keys, later keys, keys that are not hashes,
// and keys matching the pattern but not naming a subject stay; a repeat changes nothing.
// The template's glob characters are taken literally.
func TestSweepDatedField(t *testing.T) {
	const p = "rsweep:field:[x]*:"
	r, addr := sweepClient(t, "rsweep:field:")
	ctx := context.Background()
	hset := func(key string, fields ...any) {
		if err := r.HSet(ctx, key, fields...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	hset(p+"S-1", "updated_at", old.Format(time.RFC3339), "email", "a@example.com")
	hset(p+"S-2", "updated_at", strconv.FormatInt(old.Unix(), 10))
	hset(p+"S-3", "updated_at", old.Add(-time.Hour).Format(time.RFC3339Nano))
	hset(p+"S-4", "updated_at", newT.Format(time.RFC3339))
	hset(p+"S-5", "email", "undated@example.com")
	hset(p+"S-6", "updated_at", "not a date")
	hset(p+"a b", "updated_at", old.Format(time.RFC3339))                // not a subject id
	hset("rsweep:field:x-y:S-7", "updated_at", old.Format(time.RFC3339)) // the unescaped pattern would match it
	r.Set(ctx, p+"S-8", old.Format(time.RFC3339), 0)                     // not a hash
	c, err := redis.New(redis.Config{Name: "cache", Addr: addr, DatedKeys: []redis.DatedKey{
		{Key: p + "{subject}", Categories: []privguard.DataCategory{"user.behavior.browsing_history"}, DatedBy: "updated_at"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a := dsar.SweepAction{Rule: "r", Table: p + "{subject}", Mode: dsar.SweepDelete, Before: cut}
	if n, err := c.CountSweep(ctx, a); err != nil || n != 3 {
		t.Fatalf("CountSweep = %d, %v; want 3", n, err)
	}
	if ns := sweepAll(t, c, a, 2); !slices.Equal(ns, []int{2, 1}) {
		t.Errorf("batches = %v, want [2 1]", ns)
	}
	all := []string{p + "S-1", p + "S-2", p + "S-3", p + "S-4", p + "S-5", p + "S-6", p + "a b", "rsweep:field:x-y:S-7", p + "S-8"}
	if got, want := exists(t, r, all...), all[3:]; !slices.Equal(got, want) {
		t.Errorf("keys left = %q, want %q", got, want)
	}
	if ns := sweepAll(t, c, a, 2); !slices.Equal(ns, []int{0}) {
		t.Errorf("repeat: batches = %v, want [0]", ns)
	}
	if n, err := c.CountSweep(ctx, a); err != nil || n != 0 {
		t.Errorf("CountSweep after = %d, %v; want 0", n, err)
	}
	// A request erases the dated keys too.
	if e, err := c.Erase(ctx, "S-4"); err != nil || e.Items != 1 || len(exists(t, r, p+"S-4")) != 0 {
		t.Errorf("Erase = %+v, %v; want the dated key deleted", e, err)
	}
}

// TestSweepSubjectsKeys: a Subjects action touches exactly the named subjects' keys (by
// literal substitution), never keys of ids differing by case or spaces; with a cut-off,
// only those dated before it.
func TestSweepSubjectsKeys(t *testing.T) {
	const p = "rsweep:subj:"
	r, addr := sweepClient(t, p)
	ctx := context.Background()
	for _, id := range []string{"S-1", "s-1", "S-1 ", " S-1", "S-2", "S-3"} {
		at := old
		if id == "S-3" {
			at = newT
		}
		r.HSet(ctx, p+id, "updated_at", at.Format(time.RFC3339))
	}
	c, err := redis.New(redis.Config{Name: "cache", Addr: addr, DatedKeys: []redis.DatedKey{
		{Key: p + "{subject}", Categories: []privguard.DataCategory{"user.behavior"}, DatedBy: "updated_at"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a := dsar.SweepAction{Table: p + "{subject}", Mode: dsar.SweepDelete, Subjects: []privguard.SubjectID{"S-1", "S-404"}}
	if n, err := c.CountSweep(ctx, a); err != nil || n != 1 {
		t.Fatalf("CountSweep = %d, %v; want 1", n, err)
	}
	if ns := sweepAll(t, c, a, 10); !slices.Equal(ns, []int{1}) {
		t.Errorf("batches = %v, want [1]", ns)
	}
	if got, want := exists(t, r, p+"S-1", p+"s-1", p+"S-1 ", p+" S-1"), []string{p + "s-1", p + "S-1 ", p + " S-1"}; !slices.Equal(got, want) {
		t.Errorf("keys left = %q, want %q", got, want)
	}
	a = dsar.SweepAction{Table: p + "{subject}", Mode: dsar.SweepDelete, Before: cut, Subjects: []privguard.SubjectID{"S-2", "S-3"}}
	if ns := sweepAll(t, c, a, 10); !slices.Equal(ns, []int{1}) {
		t.Errorf("with cut-off: batches = %v, want [1]", ns)
	}
	if got := exists(t, r, p+"S-2", p+"S-3"); !slices.Equal(got, []string{p + "S-3"}) {
		t.Errorf("keys left = %q, want S-3's", got)
	}
}

// TestSweepExpire: keys dated by their TTL get the period as TTL when they have none or a
// longer one; shorter TTLs stay; a repeat changes nothing.
func TestSweepExpire(t *testing.T) {
	const p = "rsweep:ttl:"
	r, addr := sweepClient(t, p)
	ctx := context.Background()
	r.Set(ctx, p+"S-1", "x", 0)
	r.RPush(ctx, p+"S-2", "x")
	r.Expire(ctx, p+"S-2", time.Hour)
	r.Set(ctx, p+"S-3", "x", 10*time.Second)
	c, err := redis.New(redis.Config{Name: "cache", Addr: addr, DatedKeys: []redis.DatedKey{
		{Key: p + "{subject}", Categories: []privguard.DataCategory{"user.behavior"}, DatedBy: redis.DatedByTTL}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a := dsar.SweepAction{Table: p + "{subject}", Mode: dsar.SweepExpire, Period: time.Minute}
	if n, err := c.CountSweep(ctx, a); err != nil || n != 2 {
		t.Fatalf("CountSweep = %d, %v; want 2", n, err)
	}
	if ns := sweepAll(t, c, a, 1); !slices.Equal(ns, []int{1, 1, 0}) {
		t.Errorf("batches = %v, want [1 1 0]", ns)
	}
	for _, id := range []string{"S-1", "S-2"} {
		if d := r.PTTL(ctx, p+id).Val(); d <= 0 || d > time.Minute {
			t.Errorf("%s: TTL %v, want at most 1m", id, d)
		}
	}
	if d := r.PTTL(ctx, p+"S-3").Val(); d <= 0 || d > 10*time.Second {
		t.Errorf("S-3: TTL %v, want its own 10s", d)
	}
	if ns := sweepAll(t, c, a, 1); !slices.Equal(ns, []int{0}) {
		t.Errorf("repeat: batches = %v, want [0]", ns)
	}
}

// TestSweepRefuses: actions a Redis store cannot carry out, and malformed dated keys.
func TestSweepRefuses(t *testing.T) {
	_, addr := sweepClient(t, "rsweep:bad:")
	cats := []privguard.DataCategory{"user.behavior"}
	c, err := redis.New(redis.Config{Name: "cache", Addr: addr, DatedKeys: []redis.DatedKey{
		{Key: "rsweep:bad:f:{subject}", Categories: cats, DatedBy: "at"},
		{Key: "rsweep:bad:t:{subject}", Categories: cats, DatedBy: redis.DatedByTTL}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, a := range []dsar.SweepAction{
		{Table: "rsweep:bad:f:{subject}", Mode: dsar.SweepAnonymise, Before: cut},
		{Table: "rsweep:bad:f:{subject}", Mode: dsar.SweepClear, Before: cut, Columns: []string{"at"}},
		{Table: "rsweep:bad:f:{subject}", Mode: dsar.SweepDelete},
		{Table: "rsweep:bad:f:{subject}", Mode: dsar.SweepExpire, Period: time.Hour},
		{Table: "rsweep:bad:t:{subject}", Mode: dsar.SweepDelete, Before: cut},
		{Table: "rsweep:bad:t:{subject}", Mode: dsar.SweepExpire},
		{Table: "rsweep:bad:nope:{subject}", Mode: dsar.SweepDelete, Before: cut},
	} {
		if _, _, err := c.Sweep(context.Background(), a, 10); err == nil {
			t.Errorf("Sweep(%+v) accepted", a)
		}
		if _, err := c.CountSweep(context.Background(), a); err == nil {
			t.Errorf("CountSweep(%+v) accepted", a)
		}
	}
	for _, dks := range [][]redis.DatedKey{
		{{Key: "profile", Categories: cats, DatedBy: "at"}},
		{{Key: "p:{subject}", DatedBy: "at"}},
		{{Key: "p:{subject}", Categories: cats}},
		{{Key: "p:{subject}", Categories: cats, DatedBy: "at"}, {Key: "p:{subject}", Categories: cats, DatedBy: "ttl"}},
	} {
		if _, err := redis.New(redis.Config{Name: "x", DatedKeys: dks}); err == nil {
			t.Errorf("New accepted dated keys %+v", dks)
		}
	}
}
