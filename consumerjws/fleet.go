package consumerjws

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/lpconnect/appjwt/internal/lifecycle"
	"github.com/lpconnect/appjwt/internal/lphttp"
	"github.com/lpconnect/appjwt/internal/shared"
)

// storeTTL is how long the Store keeps a ConsumerJWS without exp, from
// its fetch: LivePerson says such a ConsumerJWS never expires, but a
// consumer seen once must not hold a key for ever. A replica that took it
// keeps it in memory regardless; one that comes later and finds none
// fetches it again, once for the fleet.
const storeTTL = 24 * time.Hour

// storedJWS is a ConsumerJWS as the Store holds it, sealed.
type storedJWS struct {
	JWS    string        `json:"j"`
	Expiry time.Time     `json:"e,omitzero"` // zero: no exp
	Life   time.Duration `json:"l,omitempty"`
}

// obtain gets a new ConsumerJWS for consumer id, in fetch f: from the
// idp, without a Store; with one, the ConsumerJWS another replica stored,
// or one fetched under the consumer's lease and stored for the others, or,
// while the replicas back off after a failed fetch, that failure.
func (c *Cache) obtain(id string, f *flight) (*fetched, reach, []lifecycle.Record, error) {
	if c.keys == nil {
		return c.fetch(id, f)
	}
	c.mu.Lock()
	var held, dropped string
	var failures int
	if e := c.m[id]; e != nil {
		held, dropped = e.jws, e.dropped
		if e.failures != nil {
			failures = e.failures.N
		}
	}
	c.mu.Unlock()
	var got *fetched
	var reached reach
	var records []lifecycle.Record
	var err error
	g, gerr := c.slot(id).Obtain(c.ctx, func(plain []byte) bool {
		return c.takes(plain, held, dropped)
	}, func(context.Context) shared.Fetched {
		got, reached, records, err = c.fetch(id, f)
		if err != nil {
			return shared.Fetched{Err: err, RetryIn: c.backoff.Delay(failures + 1)}
		}
		ttl := storeTTL
		if !got.expiry.IsZero() {
			ttl = got.expiry.Sub(c.now())
		}
		plain, _ := json.Marshal(storedJWS{JWS: got.jws, Expiry: got.expiry, Life: got.life})
		return shared.Fetched{Plain: plain, TTL: ttl}
	})
	switch {
	case gerr != nil && err == nil:
		// The replicas back off, or the Cache's context ended while it
		// waited for another replica's fetch.
		return nil, unreached, records, fmt.Errorf("consumerjws: %w", gerr)
	case gerr != nil:
		return nil, reached, records, err
	case g.Shared:
		var st storedJWS
		json.Unmarshal(g.Plain, &st) // takes parsed it
		got = &fetched{jws: st.JWS, host: "the Store", expiry: st.Expiry, life: st.Life}
		if !st.Expiry.IsZero() {
			got.sched = schedule(c.now(), st.Expiry)
		}
	}
	got.sealed = g.Sealed
	return got, reached, records, nil
}

// slot is consumer id's slot in the Store. Its lease lasts FetchTimeout,
// the longest a fetch takes.
func (c *Cache) slot(id string) *shared.Slot {
	return c.keys.Slot(c.conf.Store, "consumerjws", id, c.timeout, c.now)
}

// takes reports whether the Cache takes a ConsumerJWS it found in the
// Store: one that is not held, the Cache's own, nor dropped, and, if it
// has an exp, not due for a refresh itself.
func (c *Cache) takes(plain []byte, held, dropped string) bool {
	var st storedJWS
	if json.Unmarshal(plain, &st) != nil || st.JWS == "" || st.JWS == held || st.JWS == dropped || !checkStored(st.JWS) {
		return false
	}
	return st.Expiry.IsZero() || st.Expiry.Sub(c.now()) > st.Life/10
}

// checkStored applies to a ConsumerJWS from the Store what the Cache
// checks of one from the idp before it sends it in a header.
func checkStored(jws string) bool {
	return len(jws) <= maxConsumerJWSLen && lphttp.IsToken68(jws)
}

// dropShared deletes e's ConsumerJWS from the Store, in the background,
// when the Cache drops it after a rejection: no replica takes it from the
// Store again. The replicas' floor between such deletions is
// [lifecycle.RejectFloor]. c.mu must be held.
func (c *Cache) dropShared(e *entry) {
	sealed := e.sealed
	e.dropped, e.sealed = e.jws, nil
	if c.keys != nil && sealed != nil {
		go c.slot(e.id).Drop(c.ctx, sealed, lifecycle.RejectFloor)
	}
}
