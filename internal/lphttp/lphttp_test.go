package lphttp

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// The secrets FuzzEchoes starts from: the characters encodings treat
// specially, '/', '+', '=', '&', '<', '>', '"', '\', '%', a space, a
// leading '-'.
var seedSecrets = []string{`Ab/Cd+Ef0=`, `-x&y<z>"q\w`, `p a+s%s`}

// jsonString is s as encoding/json writes it in a string, without quotes.
func jsonString(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b[1 : len(b)-1])
}

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
			wait, retry := p.Wait(tt.attempt, tt.rep, tt.err, now)
			if retry != tt.wantRetry {
				t.Fatalf("retry = %v, want %v", retry, tt.wantRetry)
			}
			if retry && (wait < tt.lo || wait > tt.hi) {
				t.Errorf("wait = %v, want between %v and %v", wait, tt.lo, tt.hi)
			}
		})
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

func TestGoodHosts(t *testing.T) {
	for _, h := range []string{"va.sentinel.liveperson.net", "127.0.0.1:8443", "[::1]:443", "[::1]", "localhost"} {
		if err := CheckHost(h); err != nil {
			t.Errorf("CheckHost(%q) = %v, want nil", h, err)
		}
	}
}

// echoEncoders are the encodings Echoes must see through, one layer each.
var echoEncoders = []func(string) string{
	func(s string) string { return s },
	jsonString,
	url.QueryEscape,
	url.PathEscape,
	html.EscapeString,
	func(s string) string {
		var b strings.Builder
		for _, u := range utf16.Encode([]rune(s)) {
			fmt.Fprintf(&b, `\u%04X`, u)
		}
		return b.String()
	},
	func(s string) string {
		var b strings.Builder
		for _, r := range s {
			fmt.Fprintf(&b, "&#%d;", r)
		}
		return b.String()
	},
	func(s string) string {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			fmt.Fprintf(&b, "%%%02x", s[i])
		}
		return b.String()
	},
}

func FuzzEchoes(f *testing.F) {
	for _, s := range seedSecrets {
		f.Add(s, "unknown client_secret", "!", uint8(1), uint8(2))
	}
	f.Add("\U0001F600 x", `{"a":"\\`, "&amp", uint8(5), uint8(3))
	f.Fuzz(func(t *testing.T, secret, before, after string, first, second uint8) {
		// HTML maps some control characters to others: no secret has them.
		if secret == "" || !utf8.ValidString(secret) || strings.ContainsFunc(secret, func(r rune) bool { return !unicode.IsGraphic(r) }) {
			return
		}
		// Spaces keep the surrounding text from running into an escape.
		enc := echoEncoders[int(second)%len(echoEncoders)](echoEncoders[int(first)%len(echoEncoders)](secret))
		if text := before + " " + enc + " " + after; !Echoes(text, secret) {
			t.Errorf("Echoes(%q, %q) = false, want true", text, secret)
		}
	})
}
