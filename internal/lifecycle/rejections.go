package lifecycle

import (
	"sync/atomic"
	"time"
)

// RejectFloor is the least time between two drops of one cached
// credential after the API rejected it: a stream of 401s causes at most
// one fetch per RejectFloor, and fewer while credentials fetched after a
// drop are rejected too, the floor doubling up to a cap.
const RejectFloor = 5 * time.Second

// Rejections are the drops of one cached credential since the API last
// took one. The zero value is none. Its owner's lock guards it.
type Rejections struct {
	n  int
	at time.Time // the last drop
	on string    // where the drops came from; "" if unknown
}

// Floor is the rejection floor of a cache's credentials. It counts those
// under drops, so that noting an acceptance costs one atomic load while
// none is. Its methods that take Rejections need their owner's lock.
type Floor struct {
	rejecting atomic.Int32
}

// Drop reports whether a credential whose drops are r, rejected at now on
// the path on, may be dropped: it was never dropped, or the floor since
// the last drop has passed, the floor being RejectFloor after one drop and
// doubling with each drop since, up to limit (at least RejectFloor). If
// so, it counts the drop. again reports an earlier drop with no credential
// taken since: new credentials are not helping.
func (f *Floor) Drop(r *Rejections, now time.Time, on string, limit time.Duration) (dropped, again bool) {
	again = r.n > 0
	if again && now.Sub(r.at) < floor(r.n, limit) {
		return false, again
	}
	if !again {
		f.rejecting.Add(1)
	}
	r.n++
	r.at, r.on = now, on
	return true, again
}

func floor(n int, limit time.Duration) time.Duration {
	return min(RejectFloor<<min(n-1, 20), max(limit, RejectFloor))
}

// Rejecting reports whether any credential of the cache is under drops.
// It takes no lock.
func (f *Floor) Rejecting() bool { return f.rejecting.Load() > 0 }

// Accept notes that the API took the credential whose drops are r, on the
// path on: if the drops came from there, or from a path unknown, they end,
// and the floor is back to RejectFloor. A client whose credentials are
// taken does not reset the floor of one whose are rejected.
func (f *Floor) Accept(r *Rejections, on string) {
	if r.n > 0 && (r.on == "" || r.on == on) {
		f.Forget(r)
	}
}

// Forget ends r's drops, as when its credential is evicted.
func (f *Floor) Forget(r *Rejections) {
	if r.n > 0 {
		f.rejecting.Add(-1)
	}
	*r = Rejections{}
}
