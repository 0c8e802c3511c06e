package redis_test

import (
	"context"
	"os"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/connector/redis"
	"github.com/privguard/privguard/dsar/dsartest"
)

// segmentSeeder puts subjects into segment sets named "rptest:seg:" + the value.
type segmentSeeder struct{ r *goredis.Client }

func (s segmentSeeder) SeedDerived(ctx context.Context, subject privguard.SubjectID, value string) error {
	return s.r.SAdd(ctx, "rptest:seg:"+value, string(subject)).Err()
}

func (s segmentSeeder) HoldsDerived(ctx context.Context, subject privguard.SubjectID, value string) (bool, error) {
	return s.r.SIsMember(ctx, "rptest:seg:"+value, string(subject)).Result()
}

func (s segmentSeeder) ItemValue(v string) string { return "rptest:seg:" + v }

// listSeeder pushes tags onto the subject's list key "rptest:tags:{subject}".
type listSeeder struct{ r *goredis.Client }

func (s listSeeder) SeedDerived(ctx context.Context, subject privguard.SubjectID, value string) error {
	return s.r.RPush(ctx, "rptest:tags:"+string(subject), value).Err()
}

func (s listSeeder) HoldsDerived(ctx context.Context, subject privguard.SubjectID, value string) (bool, error) {
	n, err := s.r.LPos(ctx, "rptest:tags:"+string(subject), value, goredis.LPosArgs{}).Result()
	if err == goredis.Nil {
		return false, nil
	}
	return n >= 0, err
}

func (s listSeeder) ItemValue(v string) string { return v }

// hashSeeder stores each tag as a field of the subject's hash "rptest:prof:{subject}".
type hashSeeder struct{ r *goredis.Client }

func (s hashSeeder) SeedDerived(ctx context.Context, subject privguard.SubjectID, value string) error {
	return s.r.HSet(ctx, "rptest:prof:"+string(subject), "t:"+value, value).Err()
}

func (s hashSeeder) HoldsDerived(ctx context.Context, subject privguard.SubjectID, value string) (bool, error) {
	v, err := s.r.HGet(ctx, "rptest:prof:"+string(subject), "t:"+value).Result()
	if err == goredis.Nil {
		return false, nil
	}
	return v == value, err
}

func (s hashSeeder) ItemValue(v string) string { return v }

// TestProfiler runs the profile suite on segment sets found by a pattern, on a list key of
// tags and on a hash of tag fields.
func TestProfiler(t *testing.T) {
	addr := os.Getenv("PRIVGUARD_TEST_REDIS_ADDR")
	if addr == "" {
		t.Skip("PRIVGUARD_TEST_REDIS_ADDR is not set (CI sets it; see .ci/run)")
	}
	ctx := context.Background()
	r := goredis.NewClient(&goredis.Options{Addr: addr})
	defer r.Close()
	clean := func() {
		keys, _ := r.Keys(ctx, "rptest:*").Result()
		if len(keys) > 0 {
			r.Del(ctx, keys...)
		}
	}
	for _, tc := range []struct {
		name string
		cfg  redis.Config
		s    dsartest.ProfileSeeder
	}{
		{"segment_sets", redis.Config{SetMembers: []string{"rptest:seg:*"}}, segmentSeeder{r}},
		{"list_key", redis.Config{Keys: []string{"rptest:tags:{subject}"}, Category: "user.derived.tags"}, listSeeder{r}},
		{"hash_fields", redis.Config{Keys: []string{"rptest:prof:{subject}"}}, hashSeeder{r}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clean()
			t.Cleanup(clean)
			tc.cfg.Name, tc.cfg.Addr = "cache", addr
			c, err := redis.New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			dsartest.TestProfiler(t, c, tc.s)
		})
	}
}

// TestProfileKeysOfOtherCategories: keys of a category that is not derived are not a
// profile, and a dated key's date field is not an item.
func TestProfileKeysOfOtherCategories(t *testing.T) {
	addr := os.Getenv("PRIVGUARD_TEST_REDIS_ADDR")
	if addr == "" {
		t.Skip("PRIVGUARD_TEST_REDIS_ADDR is not set (CI sets it; see .ci/run)")
	}
	ctx := context.Background()
	r := goredis.NewClient(&goredis.Options{Addr: addr})
	defer r.Close()
	keys := []string{"rpcat:contact:p-1", "rpcat:score:p-1"}
	r.Del(ctx, keys...)
	t.Cleanup(func() { r.Del(context.Background(), keys...) })
	r.Set(ctx, "rpcat:contact:p-1", "li.lei@example.com", 0)
	r.HSet(ctx, "rpcat:score:p-1", "rfm", "0.87", "collected_at", "2026-01-02T03:04:05Z")
	c, err := redis.New(redis.Config{Name: "cache", Addr: addr, Keys: []string{"rpcat:contact:{subject}"}, Category: "user.contact.email",
		DatedKeys: []redis.DatedKey{{Key: "rpcat:score:{subject}", Categories: []privguard.DataCategory{"user.derived.rfm_score"}, DatedBy: "collected_at"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	items, err := c.Derived(ctx, "p-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || items[0].Where != "rpcat:score:p-1#rfm" || items[0].Value != "0.87" || items[0].Category != "user.derived.rfm_score" {
		t.Fatalf("Derived = %+v; want the rfm field alone", items)
	}
	if n, err := c.EraseDerived(ctx, "p-1", items); err != nil || n.Items != 1 {
		t.Fatalf("EraseDerived = %+v, %v; want 1", n, err)
	}
	if v, _ := r.HGet(ctx, "rpcat:score:p-1", "collected_at").Result(); v == "" {
		t.Error("EraseDerived removed the date field too")
	}
	if v, _ := r.Get(ctx, "rpcat:contact:p-1").Result(); v != "li.lei@example.com" {
		t.Errorf("a contact key was changed: %q", v)
	}
}
