package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// TestTagDeletionEndToEnd runs serve on the real MariaDB and Redis: the subject's profile
// lists its tags (a table's column) and segments (Redis sets) as derived; deleting some of
// them is a request that removes exactly those from the stores (the same tag of another
// subject, the subject's other tags and its other segment stay; a hostile tag text is
// data), records no erasure in the consent ledger and leaves the vault key; asking again
// for the same ids is refused, as they are no longer held.
//
// proves MKT-06 (tag list/delete API works)
func TestTagDeletionEndToEnd(t *testing.T) {
	env := needServices(t, "MYSQL_DSN", "REDIS_ADDR")
	myDSN, redisAddr := env[0], env[1]
	ctx := context.Background()
	sfx := fmt.Sprintf("%d", time.Now().UnixNano()%1e9)
	table, seg := "e2e_tags_"+sfx, "e2etag:"+sfx+":seg:"
	const hostile = "O'Brien 100%_*\n--"
	my, err := sql.Open("mysql", myDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer my.Close()
	for _, q := range []string{`CREATE TABLE ` + table + ` (id INT AUTO_INCREMENT PRIMARY KEY, uid VARCHAR(64) NOT NULL, tag VARCHAR(200), KEY (uid))`} {
		if _, err := my.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	defer my.Exec(`DROP TABLE IF EXISTS ` + table)
	for _, row := range [][2]string{{"tag-a", "vip"}, {"tag-a", "churn-risk"}, {"tag-a", hostile}, {"tag-b", "vip"}, {"tag-b", hostile}} {
		if _, err := my.Exec(`INSERT INTO `+table+` (uid, tag) VALUES (?, ?)`, row[0], row[1]); err != nil {
			t.Fatal(err)
		}
	}
	rd := goredis.NewClient(&goredis.Options{Addr: redisAddr})
	defer rd.Close()
	rd.SAdd(ctx, seg+"vip", "tag-a", "tag-b")
	rd.SAdd(ctx, seg+"new", "tag-a")
	defer rd.Del(context.Background(), seg+"vip", seg+"new")

	dir := t.TempDir()
	cfg := filepath.Join(dir, "privguard.yaml")
	os.WriteFile(cfg, []byte(`admin_listen: 127.0.0.1:0
data: `+dir+`
dsar:
  stores:
    - name: shop
      type: mysql
      dsn: "`+myDSN+`"
      tables: [{table: `+table+`, subject_column: uid, columns: {tag: user.derived.tags}, erase: delete}]
    - name: cache
      type: redis
      addr: `+redisAddr+`
      set_members: ["`+seg+`*"]
`), 0o600)
	url, tok, stop, _ := startServe(t, dir, "--config", cfg)
	defer stop()
	type item struct {
		ID, Store, Where, Category, Value string
		Derived                           bool
	}
	profile := func(s string) []item {
		t.Helper()
		var p struct{ Items []item }
		_, m := callJSON(t, url, tok, "GET", "/v1/subjects/"+s+"/profile", "")
		b, _ := json.Marshal(m)
		json.Unmarshal(b, &p)
		return p.Items
	}
	values := func(items []item) []string {
		var out []string
		for _, it := range items {
			if !it.Derived {
				t.Errorf("item %+v is not labelled derived", it)
			}
			out = append(out, it.Store+" "+it.Value)
		}
		return out
	}
	items := profile("tag-a")
	want := []string{"cache " + seg + "new", "cache " + seg + "vip", "shop " + hostile, "shop churn-risk", "shop vip"}
	if got := values(items); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("profile(tag-a) = %q; want %q", got, want)
	}
	sealed := func() string {
		_, m := callJSON(t, url, tok, "POST", "/v1/vault/seal", `{"subject":"tag-a","plaintext":"eA=="}`)
		return m["ciphertext"].(string)
	}()
	ids := []string{items[1].ID, items[2].ID, items[4].ID} // the vip segment, the hostile tag, the vip tag
	body := `{"items":["` + strings.Join(ids, `","`) + `"],"identity":{"method":"operator","note":"portal session"}}`
	st, r := callJSON(t, url, tok, "POST", "/v1/subjects/tag-a/profile/delete", body)
	if st != 202 || r["type"] != "tag_deletion" {
		t.Fatalf("delete = %d %v", st, r)
	}
	awaitCompleted(t, url, tok, r["id"].(string))

	count := func(uid, tag string) int {
		var n int
		my.QueryRow(`SELECT count(*) FROM `+table+` WHERE uid = ? AND CAST(tag AS BINARY) = CAST(? AS BINARY)`, uid, tag).Scan(&n)
		return n
	}
	if count("tag-a", "vip") != 0 || count("tag-a", hostile) != 0 {
		t.Errorf("MariaDB still holds tag-a's deleted tags: vip %d, hostile %d", count("tag-a", "vip"), count("tag-a", hostile))
	}
	if count("tag-a", "churn-risk") != 1 || count("tag-b", "vip") != 1 || count("tag-b", hostile) != 1 {
		t.Errorf("MariaDB lost what was not deleted: tag-a churn-risk %d, tag-b vip %d, tag-b hostile %d",
			count("tag-a", "churn-risk"), count("tag-b", "vip"), count("tag-b", hostile))
	}
	if in, _ := rd.SIsMember(ctx, seg+"vip", "tag-a").Result(); in {
		t.Error("tag-a is still in the vip segment")
	}
	if in, _ := rd.SIsMember(ctx, seg+"vip", "tag-b").Result(); !in {
		t.Error("tag-b was removed from the vip segment")
	}
	if in, _ := rd.SIsMember(ctx, seg+"new", "tag-a").Result(); !in {
		t.Error("tag-a was removed from its other segment")
	}
	if got := values(profile("tag-a")); strings.Join(got, "|") != "cache "+seg+"new|shop churn-risk" {
		t.Errorf("profile(tag-a) after the deletion = %q", got)
	}
	// A narrow erasure is not the subject's erasure: no erase in the ledger, the vault key stays.
	_, h := callJSON(t, url, tok, "GET", "/v1/subjects/tag-a/consents/history", "")
	if b, _ := json.Marshal(h); strings.Contains(string(b), `"action":"erase"`) {
		t.Errorf("the ledger records an erasure: %s", b)
	}
	if st, o := callJSON(t, url, tok, "POST", "/v1/vault/open", `{"subject":"tag-a","ciphertext":"`+sealed+`"}`); st != 200 {
		t.Errorf("vault open after the tag deletion = %d %v; want 200", st, o)
	}
	if st, p := callJSON(t, url, tok, "POST", "/v1/subjects/tag-a/profile/delete", body); st != 422 {
		t.Errorf("deleting the same ids again = %d %v; want 422 (no longer held)", st, p)
	}
}
