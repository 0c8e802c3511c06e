// Package redislimit is a contact counter for frequency limits shared by every replica of
// privguard: a sliding window per subject and channel held in Redis (go-redis), which
// implements middleware.ContactCounter and middleware.ContactReserver. With one counter per
// process and each counting on its own, three replicas let three times the limit through;
// with this one they share one count per subject, checked and added atomically.
//
// Each (channel, subject) is a sorted set of contact times, scored in microseconds of the
// Redis server's clock (TIME inside the script, so replicas whose clocks disagree still
// agree on the window). A reservation is one Lua script (EVALSHA, loaded once) that drops
// the contacts older than the window, counts the rest, and adds one only if fewer than the
// limit are held, then sets the key to expire with the window: Redis runs a script without
// interleaving any other command, which is what makes the limit exact across processes. A
// batch is the same script for every subject, pipelined: one round trip.
//
// Keys never hold a subject id: they are the prefix, the channel and a keyed hash of the
// subject (HMAC-SHA256 under [Config.Key], truncated to 128 bits). Every process sharing
// the counter needs the same key, or their counts silently diverge; [Counter.CheckKey]
// refuses a key another process wrote a different fingerprint for.
//
// # Failure
//
// Every call is bounded by [Config.Timeout] (default [DefaultTimeout]) as well as by its
// context: dialling, writing and reading, with no retries (a retried reservation might be
// counted twice). An unreachable or slow Redis is an error wrapping privguard.ErrUnavailable,
// and the middleware then refuses the send or lets it through uncounted, as the channel is
// configured. A reservation whose answer was lost (a timeout after Redis ran it) is counted
// though the send is refused: the error is on the side of fewer contacts. Redis Cluster is
// not supported (one server or a primary behind a proxy such as Sentinel's).
package redislimit
