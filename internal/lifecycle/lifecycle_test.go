package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/lpconnect/appjwt/internal/lphttp"
)

func TestState(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	s := Schedule{RefreshAt: now.Add(time.Minute), ServeUntil: now.Add(2 * time.Minute)}
	tests := []struct {
		at   time.Time
		s    Schedule
		want State
	}{
		{now, s, Fresh},
		{now.Add(time.Minute - 1), s, Fresh},
		{now.Add(time.Minute), s, Stale},
		{now.Add(2*time.Minute - 1), s, Stale},
		{now.Add(2 * time.Minute), s, Expired},
		{now.Add(1000 * time.Hour), Schedule{}, Fresh}, // no exp: fresh for ever
	}
	for _, tt := range tests {
		if got := tt.s.State(tt.at); got != tt.want {
			t.Errorf("State(%v) = %v, want %v", tt.at.Sub(now), got, tt.want)
		}
	}
	for st, servable := range map[State]bool{Empty: false, Fresh: true, Stale: true, Expired: false} {
		if got := st.Servable(); got != servable {
			t.Errorf("%v.Servable() = %v, want %v", st, got, servable)
		}
	}
}

// A ConsumerJWS's plan: refreshed at 90% of its lifetime, served until
// 5% (at most 10 s) before its expiry, without jitter.
func TestPlanWithoutJitter(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	for _, tt := range []struct{ life, refresh, serve time.Duration }{
		{100 * time.Second, 90 * time.Second, 95 * time.Second},
		{time.Hour, 54 * time.Minute, time.Hour - 10*time.Second},
	} {
		p := Plan{Early: tt.life / 10, MaxMargin: 10 * time.Second, MarginShare: 20}
		got := p.Schedule(now, now.Add(tt.life))
		if want := (Schedule{RefreshAt: now.Add(tt.refresh), ServeUntil: now.Add(tt.serve)}); got != want {
			t.Errorf("life %v: Schedule = %+v, want %+v", tt.life, got, want)
		}
	}
}

// The AppJWT source's plan (appjwt's tokensource.go): refreshed EarlyExpiry
// before expiry, less up to a tenth of the lifetime at random, never before
// half of it; served until min(10 s, EarlyExpiry/2, a tenth) before expiry.
func TestPlanOfTheAppJWTSource(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	const defaultEarly = 5 * time.Minute
	tests := []struct {
		life, early time.Duration
		// refreshLo and refreshHi bound the refresh point, serve when
		// the token stops being served; all after now.
		refreshLo, refreshHi, serve time.Duration
	}{
		{2 * time.Second, defaultEarly, time.Second, time.Second, 1800 * time.Millisecond},
		{5 * time.Second, defaultEarly, 2500 * time.Millisecond, 2500 * time.Millisecond, 4500 * time.Millisecond},
		{15 * time.Second, defaultEarly, 7500 * time.Millisecond, 7500 * time.Millisecond, 13500 * time.Millisecond},
		{time.Minute, defaultEarly, 30 * time.Second, 30 * time.Second, 54 * time.Second},
		{time.Hour, defaultEarly, 49 * time.Minute, 55 * time.Minute, time.Hour - 10*time.Second},
		{time.Hour, time.Second, 54*time.Minute - time.Second, time.Hour - time.Second, time.Hour - 500*time.Millisecond},
		{time.Hour, 2 * time.Hour, 30 * time.Minute, 30 * time.Minute, time.Hour - 10*time.Second},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v/early %v", tt.life, tt.early), func(t *testing.T) {
			p := Plan{Early: tt.early, JitterShare: 10, MaxMargin: min(10*time.Second, tt.early/2), MarginShare: 10}
			for range 100 {
				s := p.Schedule(now, now.Add(tt.life))
				if r := s.RefreshAt.Sub(now); r < tt.refreshLo || r > tt.refreshHi {
					t.Fatalf("refresh after %v, want between %v and %v", r, tt.refreshLo, tt.refreshHi)
				}
				if got := s.ServeUntil.Sub(now); got != tt.serve {
					t.Fatalf("served for %v, want %v", got, tt.serve)
				}
			}
		})
	}
}

func TestFailures(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	b := lphttp.Backoff{Base: time.Second, Max: 30 * time.Second}
	var f Failures
	for n := 1; n <= 8; n++ {
		at := now.Add(time.Duration(n) * time.Minute)
		f.Add(errors.New("boom"), at, b)
		ceiling := min(time.Second<<(n-1), 30*time.Second)
		if d := f.RetryAt.Sub(at); f.N != n || d < ceiling/2 || d > ceiling || !f.Since.Equal(now.Add(time.Minute)) || !f.At.Equal(at) {
			t.Fatalf("after %d failures: %+v, want a backoff of %v to %v", n, f, ceiling/2, ceiling)
		}
		if !f.BackingOff(at) || f.BackingOff(f.RetryAt) {
			t.Errorf("after %d failures: BackingOff wrong at %v or at RetryAt", n, at)
		}
	}
}

func TestBackoffError(t *testing.T) {
	last := fmt.Errorf("pkg: token request: %w", context.DeadlineExceeded)
	f := Failures{Err: last, RetryAt: time.Date(2026, 11, 27, 10, 0, 1, 500e6, time.FixedZone("CET", 3600))}
	tests := []struct {
		err  error
		want string
	}{
		{f.BackoffError("pkg: "), "pkg: backing off until 2026-11-27T09:00:01.500Z after a failed fetch: token request: context deadline exceeded"},
		{&BackoffError{Prefix: "pkg: ", Err: last}, "pkg: backing off while another fetch retries the host: token request: context deadline exceeded"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
		if !errors.Is(tt.err, context.DeadlineExceeded) || !errors.Is(tt.err, last) {
			t.Errorf("%v does not wrap the last error", tt.err)
		}
	}
}
