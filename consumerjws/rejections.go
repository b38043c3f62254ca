package consumerjws

import (
	"time"

	"github.com/lpconnect/appjwt/internal/lifecycle"
)

// maxRejectFloor caps the rejection floor of a consumer's ConsumerJWS (see
// [lifecycle.Floor]): a ConsumerJWS without exp has no lifetime to cap it
// at, as the root package caps an AppJWT's, so the cap is an hour, an
// AppJWT's lifetime.
const maxRejectFloor = time.Hour

// reject drops jws if it is still the current ConsumerJWS of consumer id
// and the rejection floor lets it, so that the next call fetches. again:
// jws came after an earlier drop, and none was taken since.
func (c *Cache) reject(id, jws string) (again bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[id]
	if e == nil || jws == "" || e.jws != jws {
		return false
	}
	dropped, again := c.floor.Drop(&e.rejected, c.now(), "", maxRejectFloor)
	if dropped {
		c.dropShared(e)
		e.jws, e.sched = "", lifecycle.Schedule{}
	}
	return again
}

// accepted notes that the API took jws, the ConsumerJWS of consumer id: if
// it is still current, the floor is back to its first step. It costs one
// atomic load unless ConsumerJWS were dropped.
func (c *Cache) accepted(id, jws string) {
	if !c.floor.Rejecting() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.m[id]; e != nil && e.jws == jws {
		c.floor.Accept(&e.rejected, "")
	}
}
