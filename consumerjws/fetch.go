package consumerjws

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/lpconnect/appjwt"
	"golang.org/x/oauth2"
)

// Caps on what is read from a server and kept in an error.
const (
	maxBody        = 64 << 10 // an answer
	maxErrorBody   = 1 << 10  // the Body of a RetrieveError
	maxHeaderBytes = 64 << 10 // response headers, with the default transport
)

// newClient is the client of a Cache's requests: the AppJWT goes on through
// an appjwt.Transport, over a base that notes each token it sees sent, so
// that errors can withhold what echoes it. Redirects are answers, never
// followed: no server may move the AppJWT elsewhere.
func newClient(ctx context.Context, src oauth2.TokenSource) *http.Client {
	var base http.RoundTripper
	var timeout time.Duration
	if hc, ok := ctx.Value(oauth2.HTTPClient).(*http.Client); ok && hc != nil {
		base, timeout = hc.Transport, hc.Timeout
	}
	if base == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxResponseHeaderBytes = maxHeaderBytes
		base = t
	}
	return &http.Client{
		Transport:     &appjwt.Transport{Source: src, Base: recorder{base}},
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// sentKey keys the *sentLog of a fetch in its requests' contexts.
type sentKey struct{}

// sentLog holds the AppJWTs a fetch's requests carried. Its requests are
// sent one after another, so it needs no lock.
type sentLog struct{ tokens []string }

// recorder notes the Authorization of each request it sends.
type recorder struct{ base http.RoundTripper }

func (r recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if l, ok := req.Context().Value(sentKey{}).(*sentLog); ok {
		l.tokens = append(l.tokens, req.Header.Get("Authorization"))
	}
	return r.base.RoundTrip(req)
}

// fetched is a new ConsumerJWS and its schedule.
type fetched struct {
	jws                   string
	host                  string
	refreshAt, serveUntil time.Time // zero: no exp
	took                  time.Duration
}

func (f *fetched) log(c *Cache) {
	attrs := []slog.Attr{slog.String("host", f.host), slog.Duration("took", f.took)}
	if !f.serveUntil.IsZero() {
		attrs = append(attrs, slog.Time("refresh_at", f.refreshAt))
	}
	c.logAttrs(slog.LevelDebug, msgFetched, attrs...)
}

// fetch asks the idp for a new ConsumerJWS of consumer id.
func (c *Cache) fetch(id string) (*fetched, error) {
	ctx, cancel := context.WithTimeout(c.ctx, c.timeout)
	defer cancel()
	start := c.now()
	host, err := c.domain.resolve(ctx, c)
	if err != nil {
		return nil, err
	}
	fail := func(err error) error {
		return fmt.Errorf("consumerjws: ConsumerJWS request for account %q to %s: %w", c.conf.AccountID, host, err)
	}
	body, _ := json.Marshal(struct {
		ID string `json:"ext_consumer_id"`
	}{id})
	u := endpoint(host, "v=1.0", "api", "account", c.conf.AccountID, "consumer")
	sent := &sentLog{}
	rep, err := c.retry.do(ctx, func() (*reply, error) { return c.send(ctx, u, body, sent) })
	if err != nil {
		return nil, fail(sent.withhold(err))
	}
	if rep.resp.StatusCode < 200 || rep.resp.StatusCode > 299 {
		return nil, fail(sent.retrieveError(rep, u))
	}
	got, err := c.parse(rep)
	if err != nil {
		return nil, fail(err)
	}
	got.host, got.took = host, c.now().Sub(start)
	return got, nil
}

// reply is a complete answer: its body read through the cap and closed.
type reply struct {
	resp   *http.Response
	body   []byte
	sentAt time.Time
}

// finalError marks an error that another attempt cannot cure.
type finalError struct{ error }

func (e finalError) Unwrap() error { return e.error }

// send sends the request once, or more if appjwt.Transport resends it
// after the AppJWT was rejected.
func (c *Cache) send(ctx context.Context, u *url.URL, body []byte, sent *sentLog) (*reply, error) {
	req, err := http.NewRequestWithContext(context.WithValue(ctx, sentKey{}, sent), http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, finalError{err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	before, sentAt := len(sent.tokens), c.now()
	resp, err := c.client.Do(req)
	if err != nil {
		if len(sent.tokens) == before {
			// Nothing went out: the AppJWT source failed, and it has
			// retries and backoff of its own.
			return nil, finalError{err}
		}
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	resp.Status = statusLine(resp.StatusCode) // the reason phrase is the server's free text
	if err != nil && !isFinalStatus(resp.StatusCode) {
		return nil, fmt.Errorf("reading answer (%s): %w", resp.Status, err)
	}
	if len(b) > maxBody {
		return nil, finalError{fmt.Errorf("answer (%s) is larger than %d bytes", resp.Status, maxBody)}
	}
	return &reply{resp: resp, body: b, sentAt: sentAt}, nil
}

func statusLine(code int) string {
	if t := http.StatusText(code); t != "" {
		return strconv.Itoa(code) + " " + t
	}
	return strconv.Itoa(code)
}

// isFinalStatus reports whether an answer is never retried: any 4xx but 429.
func isFinalStatus(code int) bool {
	return code >= 400 && code < 500 && code != http.StatusTooManyRequests
}

// parse reads a 2xx answer: {"token":"..."}, and schedules the token's
// refresh if it has an exp claim.
func (c *Cache) parse(rep *reply) (*fetched, error) {
	var a struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(rep.body, &a); err != nil {
		return nil, fmt.Errorf("%s: answer is not a ConsumerJWS: %w", rep.resp.Status, err)
	}
	if a.Token == "" {
		return nil, fmt.Errorf("%s: answer has no token", rep.resp.Status)
	}
	if !isToken68(a.Token) {
		return nil, fmt.Errorf("%s: token has characters a header cannot carry", rep.resp.Status)
	}
	life, ok := lifetime(a.Token, rep.resp.Header, c.now())
	got := &fetched{jws: a.Token}
	if !ok {
		return got, nil
	}
	if life <= 0 {
		return nil, fmt.Errorf("%s: ConsumerJWS expired before it arrived", rep.resp.Status)
	}
	got.refreshAt = rep.sentAt.Add(life / 10 * refreshTenths)
	got.serveUntil = rep.sentAt.Add(life - min(maxServeMargin, life/serveMarginShare))
	return got, nil
}

// A ConsumerJWS with an exp is refreshed once refreshTenths tenths of its
// lifetime L have passed, and served until min(maxServeMargin,
// L/serveMarginShare) before it expires.
const (
	refreshTenths    = 9
	serveMarginShare = 20
	maxServeMargin   = 10 * time.Second
)

// lifetime is how long the token lasts, if it is a JWS with an exp: exp -
// iat, else exp - the answer's Date, else exp - now.
func lifetime(token string, header http.Header, now time.Time) (time.Duration, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return 0, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return 0, false
	}
	var cl struct {
		Exp, Iat float64
	}
	// Beyond maxDate, a float converts to no defined int64.
	if json.Unmarshal(payload, &cl) != nil || !(cl.Exp > 0 && cl.Exp < maxDate) || !(cl.Iat >= 0 && cl.Iat < maxDate) {
		return 0, false
	}
	exp := time.Unix(int64(cl.Exp), 0)
	date, err := http.ParseTime(header.Get("Date"))
	switch {
	case cl.Iat > 0:
		return exp.Sub(time.Unix(int64(cl.Iat), 0)), true
	case err == nil:
		return exp.Sub(date), true
	}
	return exp.Sub(now), true
}

// maxDate bounds the JWT dates read: seconds since 1970, some 35,000 years.
const maxDate = 1 << 40

// isToken68 reports whether s is an RFC 7235 token68, which a JWS is and
// which a header can carry as it is.
func isToken68(s string) bool {
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

// retryPolicy is LivePerson's retry policy scaled to an interactive call,
// as appjwt's: network errors, 429 and 5xx are retried with growing,
// jittered pauses; a Retry-After is honoured up to a cap.
type retryPolicy struct {
	attempts      int
	base, max     time.Duration // of the pauses, before jitter
	retryAfterMax time.Duration
	tooManyMin    time.Duration // LivePerson: at least 1 s after a 429
}

var defaultRetry = retryPolicy{
	attempts:      4,
	base:          500 * time.Millisecond,
	max:           8 * time.Second,
	retryAfterMax: 10 * time.Second,
	tooManyMin:    time.Second,
}

// do calls send until it gets a final answer, runs out of attempts, or the
// next pause would pass ctx's deadline. The last answer is the caller's to
// judge.
func (p retryPolicy) do(ctx context.Context, send func() (*reply, error)) (*reply, error) {
	for attempt := 1; ; attempt++ {
		rep, err := send()
		wait, retry := p.wait(attempt, rep, err, time.Now())
		if !retry || ctx.Err() != nil {
			return rep, err
		}
		if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
			return rep, err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			if err == nil {
				err = errors.New(rep.resp.Status)
			}
			return nil, fmt.Errorf("%w; gave up retrying: %w", err, ctx.Err())
		}
	}
}

// wait says whether to try again after this attempt, and after how long.
func (p retryPolicy) wait(attempt int, rep *reply, err error, now time.Time) (time.Duration, bool) {
	if attempt >= p.attempts {
		return 0, false
	}
	wait := p.pause(attempt)
	switch {
	case err != nil:
		return wait, !errors.As(err, new(finalError))
	case rep.resp.StatusCode == http.StatusTooManyRequests:
		wait = max(wait, p.tooManyMin)
	case rep.resp.StatusCode < 500:
		return 0, false
	}
	if ra, ok := parseRetryAfter(rep.resp.Header.Get("Retry-After"), now); ok {
		wait = max(wait, min(ra, p.retryAfterMax))
	}
	return wait, true
}

// pause is the n-th pause, with "equal jitter": between half and all of
// min(base*2^(n-1), max), so that clients failing together spread out.
func (p retryPolicy) pause(n int) time.Duration {
	d := p.max
	if n < 32 && p.base<<(n-1) < p.max {
		d = p.base << (n - 1)
	}
	return d/2 + rand.N(d/2+1)
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

// endpoint builds an https URL from a checked host, path segments (each
// escaped, so that none can add a segment) and an encoded query.
func endpoint(host, rawQuery string, segments ...string) *url.URL {
	var path, raw strings.Builder
	for _, s := range segments {
		path.WriteString("/" + s)
		raw.WriteString("/" + url.PathEscape(s))
	}
	return &url.URL{Scheme: "https", Host: host, Path: path.String(), RawPath: raw.String(), RawQuery: rawQuery}
}
