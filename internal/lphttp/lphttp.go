// Package lphttp is the HTTP plumbing that appjwt and its subpackages share
// for their requests to LivePerson: LivePerson's retry policy, answers read
// whole through a cap, status lines that keep none of the server's text,
// URLs that no input can move to another host or path, and the detection of
// a secret that a server echoes back.
package lphttp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
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
		wait, retry := p.Wait(attempt, rep, err, time.Now())
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

// Wait says whether to try again after this attempt, and after how long.
// A certificate that does not verify is final: no retry can change it.
func (p Policy) Wait(attempt int, rep *Reply, err error, now time.Time) (time.Duration, bool) {
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
	if ra, ok := ParseRetryAfter(rep.Resp.Header.Get("Retry-After"), now); ok {
		wait = max(wait, min(ra, p.RetryAfterMax))
	}
	return wait, true
}

// ParseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
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
}

// Delay is the n-th delay, n from 1.
func (b Backoff) Delay(n int) time.Duration {
	d := b.Max
	if n < 32 && b.Base<<(n-1) < b.Max {
		d = b.Base << (n - 1)
	}
	return d/2 + rand.N(d/2+1)
}

// Reply is a complete answer: its body read through a cap and closed.
type Reply struct {
	Resp   *http.Response
	Body   []byte
	SentAt time.Time
}

// Final marks an error that another attempt cannot cure.
type Final struct{ Err error }

func (e Final) Error() string { return e.Err.Error() }
func (e Final) Unwrap() error { return e.Err }

// Read reads resp's body, up to max bytes, and closes it. The status line
// is rebuilt from the code: the reason phrase is the server's free text,
// which may echo the request. An answer with a final status is final
// however its body ends: what arrived is kept. A longer body is a Final
// error.
func Read(resp *http.Response, max int, sentAt time.Time) (*Reply, error) {
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(max)+1))
	resp.Status = StatusLine(resp.StatusCode)
	if err != nil && !IsFinalStatus(resp.StatusCode) {
		return nil, fmt.Errorf("reading answer (%s): %w", resp.Status, err)
	}
	if len(body) > max {
		return nil, Final{fmt.Errorf("answer (%s) is larger than %d bytes", resp.Status, max)}
	}
	return &Reply{Resp: resp, Body: body, SentAt: sentAt}, nil
}

// StatusLine is the status line net/http would write for code.
func StatusLine(code int) string {
	if t := http.StatusText(code); t != "" {
		return strconv.Itoa(code) + " " + t
	}
	return strconv.Itoa(code)
}

// IsFinalStatus reports whether an answer with this status is never
// retried: any 4xx but 429.
func IsFinalStatus(code int) bool {
	return code >= 400 && code < 500 && code != http.StatusTooManyRequests
}

// CheckHost accepts a bare host or host:port and nothing else: no scheme,
// userinfo, path, query or fragment. It accepts exactly the hosts that the
// URL built by [Endpoint] keeps as they are and that net/http sends, so
// that a host that passes fails no later, inside a request.
func CheckHost(h string) error {
	if strings.ContainsAny(h, "/?#@\\%") || strings.ContainsFunc(h, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return fmt.Errorf("%q is not a bare host[:port] (no scheme, path, query or userinfo)", h)
	}
	if strings.ContainsFunc(h, func(r rune) bool { return !strings.ContainsRune(hostChars, r) }) {
		return fmt.Errorf("%q has a character no host name has", h)
	}
	u, err := url.Parse("https://" + h)
	if err != nil || u.Host != h || u.Hostname() == "" {
		return fmt.Errorf("%q is not a bare host[:port]", h)
	}
	if strings.HasSuffix(h, ":") {
		return fmt.Errorf("%q has an empty port", h)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q has an invalid port", h)
		}
	}
	return nil
}

// hostChars are the characters net/http accepts in a Host header.
const hostChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!$&'()*+,-.:;=[]_~"

// Endpoint builds an https URL from a checked host, path segments (each
// escaped, so that none can add a segment) and an already encoded query.
func Endpoint(host, rawQuery string, segments ...string) *url.URL {
	var path, raw strings.Builder
	for _, s := range segments {
		path.WriteString("/" + s)
		raw.WriteString("/" + url.PathEscape(s))
	}
	return &url.URL{Scheme: "https", Host: host, Path: path.String(), RawPath: raw.String(), RawQuery: rawQuery}
}

// IsToken68 reports whether s is an RFC 7235 token68, the form a token
// must have to be sent in an Authorization header.
func IsToken68(s string) bool {
	t := strings.TrimRight(s, "=")
	if t == "" {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~+/", c) >= 0) {
			return false
		}
	}
	return true
}

// CanReplay reports whether req can be sent again, as net/http's redirect
// logic decides: it has no body, or GetBody to make a new one.
func CanReplay(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// Replay returns a copy of req, for which CanReplay is true, with a new
// body from GetBody.
func Replay(req *http.Request) (*http.Request, error) {
	r := *req
	if req.Body != nil && req.Body != http.NoBody {
		body, err := req.GetBody()
		if err != nil {
			return nil, fmt.Errorf("resending the request: %w", err)
		}
		r.Body = body
	}
	return &r, nil
}
