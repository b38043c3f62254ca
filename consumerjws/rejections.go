package consumerjws

import (
	"time"

	"github.com/lpconnect/appjwt/internal/lifecycle"
)

// rejections are the drops of a consumer's ConsumerJWS since the API last
// took one.
type rejections struct {
	n  int       // drops
	at time.Time // the last one
}

// The least time between two drops of a consumer's ConsumerJWS: a stream
// of rejections makes at most one idp request per rejectFloor for a
// consumer, and fewer while ConsumerJWS fetched after a drop are rejected
// too, the floor doubling up to maxRejectFloor. A ConsumerJWS without exp
// has no lifetime to cap the floor at, as the root package caps it: an
// hour, an AppJWT's lifetime, is the cap.
const (
	rejectFloor    = 5 * time.Second
	maxRejectFloor = time.Hour
)

// floor is the least time after the n-th drop before the next.
func floor(n int) time.Duration {
	return min(rejectFloor<<min(n-1, 20), maxRejectFloor)
}

// rejection is what reject did.
type rejection struct {
	dropped bool
	again   bool // the ConsumerJWS came after an earlier drop, and none was taken since
}

// reject drops jws if it is still the current ConsumerJWS of consumer id
// and the floor since its last drop has passed, so that the next call
// fetches.
func (c *Cache) reject(id, jws string) rejection {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[id]
	if e == nil || jws == "" || e.jws != jws {
		return rejection{}
	}
	now := c.now()
	r := rejection{again: e.rejected != nil}
	if e.rejected != nil && now.Sub(e.rejected.at) < floor(e.rejected.n) {
		return r
	}
	if e.rejected == nil {
		e.rejected = &rejections{}
		c.rejecting.Add(1)
	}
	e.rejected.n++
	e.rejected.at = now
	e.jws, e.sched = "", lifecycle.Schedule{}
	r.dropped = true
	return r
}

// accepted notes that the API took jws, the ConsumerJWS of consumer id: if
// it is still current, the floor is back to rejectFloor. It costs one
// atomic load unless ConsumerJWS were dropped.
func (c *Cache) accepted(id, jws string) {
	if c.rejecting.Load() == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.m[id]; e != nil && e.rejected != nil && e.jws == jws {
		e.rejected = nil
		c.rejecting.Add(-1)
	}
}
