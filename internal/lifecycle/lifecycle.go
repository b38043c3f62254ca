// Package lifecycle is what the token caches of appjwt and consumerjws
// share: the schedule of a cached token and the states it goes through,
// the backoff after failed fetches, and log records written once the
// cache's lock is released.
package lifecycle

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/lpconnect/appjwt/internal/lphttp"
)

// State is where a cached token is in its life.
type State int

const (
	// Empty: no token; callers wait for a fetch.
	Empty State = iota
	// Fresh: the token is served, and nothing is due.
	Fresh
	// Stale: the token is served, and a refresh is due.
	Stale
	// Expired: the token is past its serving point, too close to its
	// expiry to send; callers wait for a fetch.
	Expired
)

var stateNames = [...]string{Empty: "empty", Fresh: "fresh", Stale: "stale", Expired: "expired"}

func (s State) String() string { return stateNames[s] }

// Servable reports whether a token in state s is served.
func (s State) Servable() bool { return s == Fresh || s == Stale }

// Schedule is when a cached token is refreshed and until when it is
// served. The zero Schedule is that of a token without an expiry: fresh
// for ever.
type Schedule struct {
	RefreshAt  time.Time // zero: never
	ServeUntil time.Time // zero: for ever
}

// State is the state at now of a token held on s.
func (s Schedule) State(now time.Time) State {
	switch {
	case !s.ServeUntil.IsZero() && !now.Before(s.ServeUntil):
		return Expired
	case !s.RefreshAt.IsZero() && !now.Before(s.RefreshAt):
		return Stale
	}
	return Fresh
}

// Plan says how a token's lifetime L, the time it has left when it
// arrives, is spent: it is refreshed Early before its expiry, moved
// earlier at random by up to L/JitterShare, and never before L/2; it is
// served until min(MaxMargin, L/MarginShare) before its expiry, so that no
// caller sends one about to expire.
type Plan struct {
	Early       time.Duration
	JitterShare int // 0: no jitter
	MaxMargin   time.Duration
	MarginShare int
}

// Schedule is the schedule of a token that arrived at now and expires at
// expiry.
func (p Plan) Schedule(now, expiry time.Time) Schedule {
	life := max(expiry.Sub(now), 0)
	var jitter time.Duration
	if p.JitterShare > 0 {
		jitter = rand.N(life/time.Duration(p.JitterShare) + 1)
	}
	refresh := max(life/2, life-min(p.Early, life/2)-jitter)
	margin := min(p.MaxMargin, life/time.Duration(p.MarginShare))
	return Schedule{RefreshAt: now.Add(refresh), ServeUntil: expiry.Add(-margin)}
}

// AppJWTPlan is the plan of an AppJWT refreshed early before its expiry:
// its refresh point moves earlier at random by up to a tenth of its
// lifetime, so that replicas started together spread out, and it is
// served until 10 s (or early/2, or a tenth of its lifetime, if less)
// before its expiry.
func AppJWTPlan(early time.Duration) Plan {
	return Plan{Early: early, JitterShare: 10, MaxMargin: min(10*time.Second, early/2), MarginShare: 10}
}

// FailureBackoff is the backoff of the caches after a failed fetch or
// lookup: 1 s doubling to 30 s, each delay between half and all of that.
var FailureBackoff = lphttp.Backoff{Base: time.Second, Max: 30 * time.Second}

// Failures are the consecutive failed fetches of a cache, and the backoff
// they cause. The zero value is no failure.
type Failures struct {
	N       int       // consecutive failed fetches
	Err     error     // the last one's error
	Since   time.Time // when the first of them ended
	At      time.Time // when the last ended
	RetryAt time.Time // no fetch starts before this
}

// Add counts a fetch that failed with err at now, and backs off by b's
// next delay.
func (f *Failures) Add(err error, now time.Time, b lphttp.Backoff) {
	if f.N == 0 {
		f.Since = now
	}
	f.N++
	f.Err, f.At = err, now
	f.RetryAt = now.Add(b.Delay(f.N))
}

// BackingOff reports whether no fetch may start at now.
func (f *Failures) BackingOff(now time.Time) bool { return now.Before(f.RetryAt) }

// BackoffError is the error to return, without a request, while backing
// off: the last failure's, saying so and until when. prefix is the
// package's, such as "appjwt: ".
func (f *Failures) BackoffError(prefix string) error {
	return &BackoffError{Prefix: prefix, Err: f.Err, RetryAt: f.RetryAt}
}

// BackoffError is the error of the last failed fetch, returned again,
// without a request, until the backoff after it ends. It wraps that error,
// so that [errors.As] finds what it wraps.
type BackoffError struct {
	Prefix  string    // the package's, such as "appjwt: ", which Err's text may start with too
	Err     error     // the last failure's
	RetryAt time.Time // zero: until a fetch that is running ends
}

func (e *BackoffError) Error() string {
	why := "until " + e.RetryAt.UTC().Format("2006-01-02T15:04:05.000Z") + " after a failed fetch"
	if e.RetryAt.IsZero() {
		why = "while another fetch retries the host"
	}
	return e.Prefix + "backing off " + why + ": " + strings.TrimPrefix(e.Err.Error(), e.Prefix)
}

func (e *BackoffError) Unwrap() error { return e.Err }

// Record is a log record, made under a cache's lock and written after it:
// a handler may well call back into the cache.
type Record struct {
	Level slog.Level
	Msg   string
	Attrs []slog.Attr
}

// Write writes records to l, if l is not nil.
func Write(ctx context.Context, l *slog.Logger, records []Record) {
	if l == nil {
		return
	}
	for _, r := range records {
		l.LogAttrs(ctx, r.Level, r.Msg, r.Attrs...)
	}
}
