package lphttp

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"
)

func TestRetryPolicyWait(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	p := Policy{Attempts: 4, Pause: Backoff{Base: 100 * time.Millisecond, Max: time.Second}, RetryAfterMax: 5 * time.Second, TooManyMin: time.Second}
	answer := func(status int, retryAfter string) *Reply {
		h := http.Header{}
		if retryAfter != "" {
			h.Set("Retry-After", retryAfter)
		}
		return &Reply{Resp: &http.Response{StatusCode: status, Header: h}}
	}
	tests := []struct {
		name      string
		attempt   int
		rep       *Reply
		err       error
		wantRetry bool
		lo, hi    time.Duration
	}{
		{"network error", 1, nil, errors.New("connection reset"), true, 50 * time.Millisecond, 100 * time.Millisecond},
		{"oversized answer", 1, nil, Final{errors.New("too large")}, false, 0, 0},
		{"certificate that does not verify", 1, nil, fmt.Errorf("tls: %w", &tls.CertificateVerificationError{Err: errors.New("unknown authority")}), false, 0, 0},
		{"503 grows", 3, answer(503, ""), nil, true, 200 * time.Millisecond, 400 * time.Millisecond},
		{"429 waits a second", 1, answer(429, ""), nil, true, time.Second, time.Second},
		{"Retry-After seconds", 1, answer(503, "2"), nil, true, 2 * time.Second, 2 * time.Second},
		{"Retry-After capped", 1, answer(429, "3600"), nil, true, 5 * time.Second, 5 * time.Second},
		{"Retry-After date", 1, answer(503, now.Add(3*time.Second).Format(http.TimeFormat)), nil, true, 3 * time.Second, 3 * time.Second},
		{"Retry-After garbage", 1, answer(503, "soon"), nil, true, 50 * time.Millisecond, 100 * time.Millisecond},
		{"400 never", 1, answer(400, "1"), nil, false, 0, 0},
		{"401 never", 1, answer(401, ""), nil, false, 0, 0},
		{"200 final", 1, answer(200, ""), nil, false, 0, 0},
		{"out of attempts", 4, answer(503, ""), nil, false, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wait, retry := p.wait(tt.attempt, tt.rep, tt.err, now)
			if retry != tt.wantRetry {
				t.Fatalf("retry = %v, want %v", retry, tt.wantRetry)
			}
			if retry && (wait < tt.lo || wait > tt.hi) {
				t.Errorf("wait = %v, want between %v and %v", wait, tt.lo, tt.hi)
			}
		})
	}
}

// The edges of the jitter: half the ceiling, and all of it.
func TestBackoffEdges(t *testing.T) {
	least := Backoff{Base: time.Second, Max: 30 * time.Second, Rand: func(time.Duration) time.Duration { return 0 }}
	most := Backoff{Base: time.Second, Max: 30 * time.Second, Rand: func(n time.Duration) time.Duration { return n - 1 }}
	for _, tt := range []struct {
		n      int
		lo, hi time.Duration
	}{{1, 500 * time.Millisecond, time.Second}, {5, 8 * time.Second, 16 * time.Second}, {6, 15 * time.Second, 30 * time.Second}, {40, 15 * time.Second, 30 * time.Second}} {
		if lo, hi := least.Delay(tt.n), most.Delay(tt.n); lo != tt.lo || hi != tt.hi {
			t.Errorf("delay(%d) from %v to %v, want %v to %v", tt.n, lo, hi, tt.lo, tt.hi)
		}
	}
}

func TestBackoffGrowsWithJitterAndCap(t *testing.T) {
	b := Backoff{Base: time.Second, Max: 30 * time.Second}
	seen := map[time.Duration]bool{}
	for n := 1; n <= 100; n++ {
		ceiling := min(time.Second<<min(n-1, 10), 30*time.Second)
		for range 20 {
			d := b.Delay(n)
			if d < ceiling/2 || d > ceiling {
				t.Fatalf("delay(%d) = %v, want between %v and %v", n, d, ceiling/2, ceiling)
			}
			seen[d] = true
		}
	}
	if len(seen) < 100 {
		t.Errorf("only %d distinct delays in 2000: no jitter?", len(seen))
	}
}
