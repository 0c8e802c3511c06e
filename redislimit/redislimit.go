package redislimit

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/middleware"
)

// Defaults.
const (
	// DefaultTimeout bounds each call to Redis (dial, write, read).
	DefaultTimeout = 300 * time.Millisecond
	// DefaultKeyPrefix starts every key the counter writes.
	DefaultKeyPrefix = "privguard:freq:"
	// MinKeyLen is the shortest HMAC key accepted.
	MinKeyLen = 32
)

// ErrKeyMismatch means another process shares the Redis keys under a different HMAC key:
// its counts and this one's would never meet.
var ErrKeyMismatch = errors.New("redislimit: another process counts under a different subject key")

// Config configures [New].
type Config struct {
	// Addr is the Redis server's host:port.
	Addr string
	// Password authenticates to Redis (AUTH); empty: none.
	Password string
	// DB is the Redis database number.
	DB int
	// KeyPrefix starts every key; empty means DefaultKeyPrefix. Counters that must share
	// counts use the same prefix (and Key).
	KeyPrefix string
	// Key is the HMAC-SHA256 key subject ids are hashed with in key names, at least
	// MinKeyLen bytes; every process sharing the counter needs the same one.
	Key []byte
	// Windows are the counting windows per channel; a channel without one is not counted
	// (a reservation on it is granted with count 0).
	Windows map[string]time.Duration
	// Timeout bounds each call to Redis; zero means DefaultTimeout.
	Timeout time.Duration
	// Logger receives the errors of Contacts and AddContact, which cannot return them
	// (never a subject id), and, if set, go-redis's own messages (process-wide: the driver
	// has one logger) at debug level, since every failed dial of an outage is one and the
	// middleware already reports the outage. If nil, nothing is logged.
	Logger *slog.Logger
}

// Counter is the shared sliding-window counter. It is safe for concurrent use.
type Counter struct {
	rdb     *goredis.Client
	prefix  string
	windows map[string]int64 // microseconds
	timeout time.Duration
	log     *slog.Logger
	macs    sync.Pool // of hash.Hash (HMAC-SHA256 under Config.Key)
	check   string    // the key's fingerprint (see CheckKey)
	nonce   string    // this counter's random part of member names
	seq     atomic.Uint64
}

var (
	_ middleware.ContactCounter  = (*Counter)(nil)
	_ middleware.ContactReserver = (*Counter)(nil)
)

// reserveScript reserves one contact. KEYS[1]: the sorted set of (channel, subject).
// ARGV: the window in microseconds, the limit (negative: none), a member name unique to
// this reservation. Returns {granted (0/1), contacts held before}.
var reserveScript = goredis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
local limit = tonumber(ARGV[2])
if limit >= 0 and n >= limit then
	return {0, n}
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
return {1, n}
`)

// countScript counts the contacts in the window. KEYS[1], ARGV[1] as for reserveScript.
var countScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
return redis.call('ZCOUNT', KEYS[1], now - tonumber(ARGV[1]) + 1, '+inf')
`)

// New returns a counter on the Redis server of cfg. It does not connect: the first call
// does (see [Counter.CheckKey] for a check at start).
func New(cfg Config) (*Counter, error) {
	if cfg.Addr == "" {
		return nil, errors.New("redislimit: Addr is empty")
	}
	if len(cfg.Key) < MinKeyLen {
		return nil, fmt.Errorf("redislimit: Key has %d bytes; want at least %d", len(cfg.Key), MinKeyLen)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("redislimit: Timeout %s is negative", cfg.Timeout)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = DefaultKeyPrefix
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	} else {
		goredis.SetLogger(driverLog{cfg.Logger})
	}
	c := &Counter{prefix: cfg.KeyPrefix, windows: make(map[string]int64, len(cfg.Windows)), timeout: cfg.Timeout, log: cfg.Logger}
	for ch, w := range cfg.Windows {
		if w <= 0 {
			return nil, fmt.Errorf("redislimit: Windows[%s] %s is not positive", ch, w)
		}
		c.windows[ch] = w.Microseconds()
	}
	key := append([]byte(nil), cfg.Key...)
	c.macs.New = func() any { return hmac.New(sha256.New, key) }
	m := hmac.New(sha256.New, key)
	m.Write([]byte("privguard redislimit key check"))
	c.check = hex.EncodeToString(m.Sum(nil))
	var r [8]byte
	rand.Read(r[:])
	c.nonce = hex.EncodeToString(r[:]) + ":"
	c.rdb = goredis.NewClient(&goredis.Options{
		Addr: cfg.Addr, Password: cfg.Password, DB: cfg.DB,
		DialTimeout: cfg.Timeout, ReadTimeout: cfg.Timeout, WriteTimeout: cfg.Timeout, PoolTimeout: cfg.Timeout,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1, // a retried reservation could be counted twice
		DialerRetries:         1,
		DisableIdentity:       true, // no CLIENT SETINFO round trip on every new connection
	})
	return c, nil
}

// Close closes the connections to Redis.
func (c *Counter) Close() error { return c.rdb.Close() }

// key is the Redis key of (channel, subject): the prefix, the channel and the subject's
// keyed hash, so that no subject id is ever in the keyspace.
func (c *Counter) key(subject privguard.SubjectID, channel string) string {
	m := c.macs.Get().(hash.Hash)
	m.Reset()
	m.Write([]byte(subject))
	var sum [sha256.Size]byte
	m.Sum(sum[:0])
	c.macs.Put(m)
	b := make([]byte, 0, len(c.prefix)+len(channel)+1+32)
	b = append(b, c.prefix...)
	b = append(b, channel...)
	b = append(b, ':')
	return string(hex.AppendEncode(b, sum[:16]))
}

// member is a member name no other reservation of any process uses.
func (c *Counter) member() string {
	return c.nonce + strconv.FormatUint(c.seq.Add(1), 36)
}

// Reserve implements middleware.ContactReserver with one script run. An error wraps
// privguard.ErrUnavailable.
func (c *Counter) Reserve(ctx context.Context, subject privguard.SubjectID, channel string, limit int) (bool, int, error) {
	w, ok := c.windows[channel]
	if !ok {
		return true, 0, nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	v, err := reserveScript.Run(ctx, c.rdb, []string{c.key(subject, channel)}, w, limit, c.member()).Int64Slice()
	if err != nil {
		return false, 0, unavailable("reserve", err)
	}
	return parse(v)
}

// ReserveBatch implements middleware.ContactReserver: the script for every entry, in one
// pipeline (a second one, for the entries Redis did not know the script for, if its script
// cache was flushed). An error wraps privguard.ErrUnavailable.
func (c *Counter) ReserveBatch(ctx context.Context, channel string, rs []middleware.Reservation) error {
	w, ok := c.windows[channel]
	if !ok {
		for i := range rs {
			rs[i].Granted, rs[i].Count = true, 0
		}
		return nil
	}
	todo := make([]int, len(rs))
	for i := range todo {
		todo[i] = i
	}
	for attempt := 0; len(todo) > 0; attempt++ {
		if attempt == 2 {
			return unavailable("reserve batch", errors.New("the script is not loaded"))
		}
		if attempt == 1 {
			if err := reserveScript.Load(ctx, c.rdb).Err(); err != nil {
				return unavailable("load script", err)
			}
		}
		pctx, cancel := context.WithTimeout(ctx, c.timeout)
		pipe := c.rdb.Pipeline()
		cmds := make([]*goredis.Cmd, len(todo))
		for n, i := range todo {
			cmds[n] = reserveScript.EvalSha(pctx, pipe, []string{c.key(rs[i].Subject, channel)}, w, rs[i].Limit, c.member())
		}
		_, err := pipe.Exec(pctx)
		cancel()
		var again []int
		for n, i := range todo {
			v, cerr := cmds[n].Int64Slice()
			if cerr != nil && goredis.HasErrorPrefix(cerr, "NOSCRIPT") {
				again = append(again, i) // not run: safe to send again
				continue
			}
			if cerr != nil {
				return unavailable("reserve batch", cerr)
			}
			if rs[i].Granted, rs[i].Count, cerr = parse(v); cerr != nil {
				return cerr
			}
		}
		if err != nil && len(again) == 0 {
			return unavailable("reserve batch", err)
		}
		todo = again
	}
	return nil
}

// Contacts implements middleware.ContactCounter: the contacts in the window. It cannot
// return an error, so when Redis does not answer it logs and returns math.MaxInt32, a
// count every limit is reached at: a caller that cannot count does not send.
func (c *Counter) Contacts(subject privguard.SubjectID, channel string) int {
	w, ok := c.windows[channel]
	if !ok {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	n, err := countScript.Run(ctx, c.rdb, []string{c.key(subject, channel)}, w).Int64()
	if err != nil {
		c.log.Warn("redislimit: counting contacts failed", "channel", channel, "err", err)
		return math.MaxInt32
	}
	return int(n)
}

// AddContact implements middleware.ContactCounter: a reservation without a limit. An
// error is logged.
func (c *Counter) AddContact(subject privguard.SubjectID, channel string) {
	if _, _, err := c.Reserve(context.Background(), subject, channel, -1); err != nil {
		c.log.Warn("redislimit: adding a contact failed", "channel", channel, "err", err)
	}
}

// CheckKey records the fingerprint of the counter's HMAC key under the prefix, or checks
// it against the one recorded: ErrKeyMismatch if a process with another key shares the
// prefix (their counts would never meet). Any other error wraps privguard.ErrUnavailable.
// The fingerprint is an HMAC of a fixed text: it does not reveal the key.
func (c *Counter) CheckKey(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	k := c.prefix + "key-check"
	if err := c.rdb.SetNX(ctx, k, c.check, 0).Err(); err != nil {
		return unavailable("key check", err)
	}
	got, err := c.rdb.Get(ctx, k).Result()
	if err != nil {
		return unavailable("key check", err)
	}
	if got != c.check {
		return fmt.Errorf("%w (the fingerprint at %s differs)", ErrKeyMismatch, k)
	}
	return nil
}

// parse reads a script's answer {granted, count}.
func parse(v []int64) (bool, int, error) {
	if len(v) != 2 {
		return false, 0, unavailable("reserve", fmt.Errorf("the script answered %d values", len(v)))
	}
	return v[0] == 1, int(v[1]), nil
}

// unavailable wraps a Redis error (which names no subject: keys are hashed).
func unavailable(op string, err error) error {
	return fmt.Errorf("redislimit: %s: %w: %w", op, err, privguard.ErrUnavailable)
}

// driverLog adapts slog to go-redis's logger.
type driverLog struct{ l *slog.Logger }

func (d driverLog) Printf(ctx context.Context, format string, v ...any) {
	d.l.DebugContext(ctx, "go-redis: "+fmt.Sprintf(format, v...))
}
