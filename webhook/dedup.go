package webhook

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lpconnect/appjwt/internal/shared"
	"github.com/lpconnect/appjwt/store"
)

// The defaults of [NewDedup] and [DedupConfig], and DedupConfig's bounds,
// which their documentation gives.
const (
	defaultWindow     = 10 * time.Minute
	defaultMaxEntries = 100000

	defaultRetention = time.Hour
	minRetention     = 2 * time.Second      // LivePerson's shortest retention_time
	maxRetention     = 259200 * time.Second // and its longest: three days
	defaultClaimTime = time.Second
	maxClaimTime     = 30 * time.Second // the count-based policy's pause
)

// Dedup remembers which (dialogId, sequence) keys it has seen within a
// window, so that a connector drops what LivePerson delivered twice: a
// retry after a slow or failed answer, or a duplicate LivePerson sends
// anyway. A key is remembered from the first [Dedup.Seen] that returned
// false for it until the window has passed; a later Seen does not extend
// it. Memory is bounded: beyond maxEntries keys, the oldest is forgotten
// before its window ends. It is safe for concurrent use.
//
// Only events with a sequence have a key: use Seen for a MessagingEvent
// whose HasSequence is true. Chat states have none, and repeat their
// state; a conversation change can be keyed by (ConversationID,
// Details.MetaDataLastUpdateTs).
//
// LivePerson's time-based retries may redeliver up to three days later,
// beyond any window a bounded memory covers: a connector that must never
// process an event twice also keeps, per conversation, what it processed
// (durably, if it restarts).
//
// A Dedup that [DedupConfig.NewDedup] returns is shared by the replicas
// of a connector through a [store.Store]: see there.
type Dedup struct {
	window time.Duration
	max    int
	start  time.Time // times are durations since start, monotonic

	mu   sync.Mutex
	seen map[dedupKey]time.Duration // key: when it was first seen
	fifo dedupRing                  // keys in the order seen, oldest first

	// With a Store; the fields above are then the fallback of a key the
	// Store could not be asked about.
	store     store.Store
	retention time.Duration
	claimTime time.Duration
	namespace string
	holder    []byte // the value of d's claims: no other Dedup's
	failures  atomic.Int64
	errMu     sync.Mutex
	lastErr   error
	lastErrAt time.Time
}

type dedupKey struct {
	dialogID string
	sequence int64
}

// NewDedup returns a Dedup that remembers each key for window, and at
// most maxEntries keys. Zero or negative: 10 minutes, which covers
// LivePerson's count-based retries (at most 5, 30 s apart, after attempts
// that may each take 10 s to time out, end within 3.5 minutes of the
// first); and 100,000 keys, some 170 events a second over 10 minutes, in
// about 13 MB (about 85 bytes a key, 133 with a 36-byte dialog ID of its
// own, as when each comes from a notification decoded apart).
// Its memory grows with the keys it holds, up to maxEntries, and is not
// given back.
func NewDedup(window time.Duration, maxEntries int) *Dedup {
	if window <= 0 {
		window = defaultWindow
	}
	if maxEntries <= 0 {
		maxEntries = defaultMaxEntries
	}
	return &Dedup{
		window: window,
		max:    maxEntries,
		start:  time.Now(),
		seen:   make(map[dedupKey]time.Duration),
	}
}

// DedupConfig describes a [Dedup] that the replicas of a connector share
// through a [store.Store], so that each webhook delivery is processed by
// one replica, whichever receives its copies, and none is lost when a
// replica fails while processing it. It is plain data, copied by
// [DedupConfig.NewDedup].
//
// For each event, [Dedup.Seen] claims its key in the Store for ClaimTime
// (Store.Add): the replica that gets the claim processes the event, the
// others drop their copies. [Dedup.Done] then records the event processed
// for Retention (Store.Set), and [Dedup.Forget] gives the claim back
// instead (Store.Delete of the claim, only if it is still this Dedup's),
// so that LivePerson's retry is processed. A replica that dies between
// Seen and Done or Forget leaves a claim that ends before LivePerson's
// next attempt, which another replica then processes: LivePerson retries
// a failed delivery 2 s after the failure at the soonest (the TTL-based
// policy's first pause; the count-based policy waits 30 s), and the
// failure comes after the claim was taken.
//
// A handler slower than ClaimTime between Seen and Done loses its claim
// on the way: a copy that comes after the claim ended, before Done, is
// processed too. So an event is processed twice at worst, never lost.
//
// Keys are short and name no id in clear: "appjwt:wh:{h}:seq", or
// "appjwt:wh:n:{h}:seq" with a Namespace, where h is 16 characters of
// base64url of the SHA-256 of the Namespace, if any, and the dialog ID
// (and of the account, for package brands), and seq the sequence; the
// braces are Redis Cluster's hash tag, so that a dialog's keys share a
// slot. The hash is not keyed: dialog IDs are random, so
// what a key hides is which dialog it counts, not that it counts one.
// Values are a byte or a claim's 17. Replicas of one connector share a
// Store and a Namespace; two connectors (two app installations) that get
// the same account's notifications and share a Store must have distinct
// Namespaces, else one drops what the other processes.
//
// When the Store fails (an error, its own timeout or the 500 ms one),
// each call makes no other and waits for nothing more: the key is decided
// by the Dedup's own memory, as [NewDedup]'s with its defaults decides it, so the replica
// carries on as it would alone, and an event may then be processed by more
// than one replica. Nothing is logged per call: [Dedup.State] tells
// whether the Store is failing. No call fails a delivery.
type DedupConfig struct {
	// Store holds the keys of every replica. Required. Each call of Seen,
	// Done and Forget makes one call of it, under a context that ends
	// after 500 ms: an answer after that counts as a failure. A Store must
	// return when its context ends; redisstore's own timeout, 200 ms, is
	// shorter.
	Store store.Store `json:"-"`

	// Retention is how long an event that is Done is remembered: a copy
	// that comes later is processed again. At least 2 s, at most 259,200
	// s (three days), LivePerson's bounds of an app's retention_time.
	// Zero: an hour, which covers the count-based retries (3.5 minutes)
	// and, under the TTL-based policy, a retry after an answer that got
	// lost (at most 5 minutes later); a connector whose whole fleet may
	// fail to answer for longer sets it to its retention_time. Redis keeps
	// about 100 bytes a key: 0.36 MB an hour per event a second, 26 MB
	// over three days.
	Retention time.Duration

	// ClaimTime is how long a replica's claim of an event lasts, from Seen
	// until Done or Forget. More than zero and at most 30 s, the pause of
	// the count-based policy; over 2 s, the first pause of the TTL-based
	// one, a replica that dies while processing loses the event under that
	// policy (the retry finds the claim still held, and is dropped). Zero:
	// 1 s, which is 1 s within 2 s, and long beside the milliseconds a
	// handler that queues its events takes.
	ClaimTime time.Duration

	// Namespace sets this connector's keys apart from another's in a
	// shared Store: the replicas of one connector give the same, two
	// connectors different ones (their app installation ids, say). It is
	// hashed into each key, never stored in clear. Empty: none, for a
	// Store that this connector alone uses.
	Namespace string
}

// NewDedup checks c and returns a Dedup over c.Store, or an error naming
// the field that is wrong.
func (c DedupConfig) NewDedup() (*Dedup, error) {
	if c.Store == nil {
		return nil, errors.New("webhook: DedupConfig.Store is nil")
	}
	if c.Retention == 0 {
		c.Retention = defaultRetention
	}
	if c.ClaimTime == 0 {
		c.ClaimTime = defaultClaimTime
	}
	if c.Retention < minRetention || c.Retention > maxRetention {
		return nil, fmt.Errorf("webhook: DedupConfig.Retention %v is not between %v and %v", c.Retention, minRetention, maxRetention)
	}
	if c.ClaimTime < 0 || c.ClaimTime > maxClaimTime {
		return nil, fmt.Errorf("webhook: DedupConfig.ClaimTime %v is not between 0 and %v", c.ClaimTime, maxClaimTime)
	}
	if c.ClaimTime >= c.Retention {
		return nil, fmt.Errorf("webhook: DedupConfig.ClaimTime %v is not shorter than Retention %v", c.ClaimTime, c.Retention)
	}
	d := NewDedup(0, 0)
	d.store, d.retention, d.claimTime, d.namespace = c.Store, c.Retention, c.ClaimTime, c.Namespace
	d.holder = make([]byte, 1+16)
	d.holder[0] = 'c'
	rand.Read(d.holder[1:]) // never fails, says crypto/rand
	return d, nil
}

// doneValue is the value of an event that is Done; a claim's starts with
// 'c'.
var doneValue = []byte("d")

// DedupState is a snapshot of a Dedup's Store, for a readiness or metrics
// endpoint. It is zero for a Dedup without a Store.
type DedupState struct {
	// Failures counts the Store's calls that failed in a row, each of
	// whose keys the Dedup decided on its own; zero after one succeeds.
	Failures int
	// LastError is the last failed call's error, and LastErrorAt when it
	// ended; they stay after a success.
	LastError   error
	LastErrorAt time.Time
}

// State returns a snapshot of d's Store. It waits for no Store call.
func (d *Dedup) State() DedupState {
	d.errMu.Lock()
	defer d.errMu.Unlock()
	return DedupState{Failures: int(d.failures.Load()), LastError: d.lastErr, LastErrorAt: d.lastErrAt}
}

// Seen reports whether (dialogID, sequence) was seen within the window,
// and, if not, remembers it from now on.
//
// With a Store, it reports whether another call, of any replica, claimed
// the key within the claim time or recorded it Done within the retention,
// and if not claims it, so that the caller processes the event and then
// calls Done, or Forget if it could not.
func (d *Dedup) Seen(dialogID string, sequence int64) bool {
	if d.store != nil {
		key := storeKey(d.namespace, dialogID, sequence)
		added, err := shared.Call(context.Background(), func(ctx context.Context) (bool, error) {
			return d.store.Add(ctx, key, d.holder, d.claimTime)
		})
		if d.note(err) {
			return !added
		}
	}
	return d.seenLocally(dialogID, sequence)
}

// Done records (dialogID, sequence) processed, for the retention, so that
// any copy that comes later is dropped, by every replica. Call it once the
// event is safely on its way (queued, say), before answering the
// delivery. Without a Store it does nothing: Seen already remembered the
// key.
func (d *Dedup) Done(dialogID string, sequence int64) {
	if d.store == nil {
		return
	}
	key := storeKey(d.namespace, dialogID, sequence)
	_, err := shared.Call(context.Background(), func(ctx context.Context) (bool, error) {
		return true, d.store.Set(ctx, key, doneValue, d.retention)
	})
	if !d.note(err) {
		d.seenLocally(dialogID, sequence) // this replica at least drops the copies
	}
}

// seenLocally is Seen in d's own memory.
func (d *Dedup) seenLocally(dialogID string, sequence int64) bool {
	k := dedupKey{dialogID, sequence}
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Since(d.start)
	d.expire(now)
	if _, ok := d.seen[k]; ok {
		return true
	}
	if d.fifo.n == d.max {
		d.drop(d.fifo.pop())
	}
	d.fifo.push(dedupEntry{k, now}, d.max)
	d.seen[k] = now
	return false
}

// Forget forgets (dialogID, sequence), so that its next delivery is not
// dropped: for an event that was seen but could not be processed (a full
// queue, say), whose delivery was answered with an error so that
// LivePerson retries it. With a Store, it gives back d's claim of the
// key, if d still holds it; an event already Done stays so.
func (d *Dedup) Forget(dialogID string, sequence int64) {
	if d.store != nil {
		key := storeKey(d.namespace, dialogID, sequence)
		_, err := shared.Call(context.Background(), func(ctx context.Context) (bool, error) {
			return d.store.Delete(ctx, key, d.holder)
		})
		d.note(err) // if it failed, the claim ends on its own
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.seen, dedupKey{dialogID, sequence})
}

// note records the outcome of a Store call, and reports whether it
// succeeded.
func (d *Dedup) note(err error) bool {
	if err == nil {
		if d.failures.Load() != 0 {
			d.failures.Store(0)
		}
		return true
	}
	d.errMu.Lock()
	defer d.errMu.Unlock()
	d.failures.Add(1)
	d.lastErr, d.lastErrAt = err, time.Now()
	return false
}

// storeKey returns the Store's key of (dialogID, sequence) under
// namespace. Without one, the key is the hash of dialogID alone; with one,
// it is in a key space of its own, and the hash's input is the
// namespace's length, the namespace and dialogID, so that no two
// (namespace, dialogID) pairs share a key, whatever bytes they hold.
func storeKey(namespace, dialogID string, sequence int64) string {
	prefix := "appjwt:wh:{"
	var in []byte
	if namespace != "" {
		prefix = "appjwt:wh:n:{"
		var buf [128]byte // on the stack for the usual sizes
		in = binary.AppendUvarint(buf[:0], uint64(len(namespace)))
		in = append(append(in, namespace...), dialogID...)
	} else {
		in = []byte(dialogID)
	}
	sum := sha256.Sum256(in)
	b := make([]byte, 0, len(prefix)+16+2+20)
	b = append(b, prefix...)
	b = base64.RawURLEncoding.AppendEncode(b, sum[:12])
	b = append(b, "}:"...)
	b = strconv.AppendInt(b, sequence, 10)
	return string(b)
}

// expire forgets the keys seen a window or more before now.
func (d *Dedup) expire(now time.Duration) {
	for d.fifo.n > 0 && now-d.fifo.oldest().at >= d.window {
		d.drop(d.fifo.pop())
	}
}

// drop forgets the key of a FIFO entry, unless it was forgotten and seen
// again since.
func (d *Dedup) drop(e dedupEntry) {
	if at, ok := d.seen[e.key]; ok && at == e.at {
		delete(d.seen, e.key)
	}
}

type dedupEntry struct {
	key dedupKey
	at  time.Duration
}

// dedupRing is a FIFO of entries in a ring buffer that grows, by
// doubling, up to a bound.
type dedupRing struct {
	buf     []dedupEntry
	head, n int
}

func (r *dedupRing) oldest() dedupEntry { return r.buf[r.head] }

func (r *dedupRing) pop() dedupEntry {
	e := r.buf[r.head]
	r.buf[r.head] = dedupEntry{} // let the dialog ID go
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	return e
}

// push appends e; the caller keeps n below limit.
func (r *dedupRing) push(e dedupEntry, limit int) {
	if r.n == len(r.buf) {
		grown := make([]dedupEntry, min(max(2*len(r.buf), 64), limit))
		for i := range r.n {
			grown[i] = r.buf[(r.head+i)%len(r.buf)]
		}
		r.buf, r.head = grown, 0
	}
	r.buf[(r.head+r.n)%len(r.buf)] = e
	r.n++
}
