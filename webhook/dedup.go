package webhook

import (
	"sync"
	"time"
)

// The defaults of [NewDedup], which its documentation gives.
const (
	defaultWindow     = 10 * time.Minute
	defaultMaxEntries = 100000
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
type Dedup struct {
	window time.Duration
	max    int
	start  time.Time // times are durations since start, monotonic

	mu   sync.Mutex
	seen map[dedupKey]time.Duration // key: when it was first seen
	fifo dedupRing                  // keys in the order seen, oldest first
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

// Seen reports whether (dialogID, sequence) was seen within the window,
// and, if not, remembers it from now on.
func (d *Dedup) Seen(dialogID string, sequence int64) bool {
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
// LivePerson retries it.
func (d *Dedup) Forget(dialogID string, sequence int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.seen, dedupKey{dialogID, sequence})
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
