package lphttp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// Policy is LivePerson's retry policy scaled to an interactive call:
// network errors, 429 and 5xx are retried with growing, jittered pauses; a
// Retry-After is honoured up to a cap; other answers are final.
type Policy struct {
	Attempts      int
	Pause         Backoff
	RetryAfterMax time.Duration
	TooManyMin    time.Duration    // LivePerson: wait at least 1 s after a 429
	Now           func() time.Time // times the answers; nil: time.Now
}

// Default is the policy of every request: 4 attempts in all, pauses of
// 0.5 s, 1 s, 2 s (jittered, capped at 8 s), at least 1 s after a 429, a
// Retry-After honoured up to 10 s.
var Default = Policy{
	Attempts:      4,
	Pause:         Backoff{Base: 500 * time.Millisecond, Max: 8 * time.Second},
	RetryAfterMax: 10 * time.Second,
	TooManyMin:    time.Second,
}

// Time is the policy's clock.
func (p Policy) Time() time.Time {
	if p.Now == nil {
		return time.Now()
	}
	return p.Now()
}

// Do calls send until it gets a final answer, runs out of attempts, or the
// next pause would pass ctx's deadline, and says how often it called it.
// The last answer is returned as is: its status is the caller's to judge.
func (p Policy) Do(ctx context.Context, send func() (*Reply, error)) (rep *Reply, attempts int, err error) {
	for attempt := 1; ; attempt++ {
		rep, err := send()
		wait, retry := p.wait(attempt, rep, err, time.Now())
		if !retry || ctx.Err() != nil {
			return rep, attempt, err
		}
		if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
			return rep, attempt, err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			if err == nil {
				err = errors.New(rep.Resp.Status)
			}
			return nil, attempt, fmt.Errorf("%w; gave up retrying: %w", err, ctx.Err())
		}
	}
}

// wait says whether to try again after this attempt, and after how long.
// A certificate that does not verify is final: no retry can change it.
func (p Policy) wait(attempt int, rep *Reply, err error, now time.Time) (time.Duration, bool) {
	if attempt >= p.Attempts {
		return 0, false
	}
	wait := p.Pause.Delay(attempt)
	switch {
	case err != nil:
		return wait, !errors.As(err, new(Final)) && !errors.As(err, new(*tls.CertificateVerificationError))
	case rep.Resp.StatusCode == http.StatusTooManyRequests:
		wait = max(wait, p.TooManyMin)
	case rep.Resp.StatusCode < 500:
		return 0, false
	}
	if ra, ok := parseRetryAfter(rep.Resp.Header.Get("Retry-After"), now); ok {
		wait = max(wait, min(ra, p.RetryAfterMax))
	}
	return wait, true
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// Backoff is capped exponential backoff with "equal jitter": the n-th delay
// is between half and all of min(Base*2^(n-1), Max), so that many clients
// failing together do not retry together.
type Backoff struct {
	Base, Max time.Duration
	// Rand returns a duration from 0 to less than its argument, at
	// random; nil: [rand.N]. Tests fix it to try the edges.
	Rand func(time.Duration) time.Duration
}

// Delay is the n-th delay, n from 1.
func (b Backoff) Delay(n int) time.Duration {
	d := b.Max
	if n < 32 && b.Base<<(n-1) < b.Max {
		d = b.Base << (n - 1)
	}
	random := rand.N[time.Duration]
	if b.Rand != nil {
		random = b.Rand
	}
	return d/2 + random(d/2+1)
}

// Final marks an error that another attempt cannot cure.
type Final struct{ Err error }

func (e Final) Error() string { return e.Err.Error() }
func (e Final) Unwrap() error { return e.Err }
