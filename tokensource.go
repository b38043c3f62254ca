package appjwt

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// maxBody caps every answer read from LivePerson.
const maxBody = 1 << 20

// maxErrorBody caps the body kept in an [oauth2.RetrieveError].
const maxErrorBody = 1 << 10

// defaultClient is used when the context has none: never one without a timeout.
var defaultClient = &http.Client{Timeout: 10 * time.Second}

// requestToken sends the Sentinel token request and turns its answer into a
// token with an Expiry.
func (c *Config) requestToken(ctx context.Context, host string, p retryPolicy) (*oauth2.Token, error) {
	fail := func(err error) error {
		return fmt.Errorf("appjwt: token request for account %q (client %q) to %s: %w", c.AccountID, c.ClientID, host, err)
	}
	rep, err := p.do(ctx, c.tokenCall(host))
	if err != nil {
		return nil, fail(err)
	}
	if rep.resp.StatusCode < 200 || rep.resp.StatusCode > 299 {
		re := c.retrieveError(rep)
		if re.ErrorCode == "" {
			return nil, fail(re) // its message starts with the status
		}
		return nil, fail(fmt.Errorf("%s: %w", rep.resp.Status, re))
	}
	tok, err := parseTokenResponse(rep.body, rep.resp.Header.Get("Content-Type"), rep.sentAt, time.Now())
	if errors.Is(err, errErrorAnswer) {
		return nil, fail(fmt.Errorf("%s with an error: %w", rep.resp.Status, c.retrieveError(rep)))
	}
	if err != nil {
		return nil, fail(err)
	}
	return tok, nil
}

// tokenCall is the Sentinel request: credentials in the form body, or in
// the query string if CredentialsInQuery is set.
func (c *Config) tokenCall(host string) call {
	u := endpoint(host, "v=1.0&grant_type=client_credentials", "sentinel", "api", "account", c.AccountID, "app", "token")
	safe := *u
	creds := "client_id=" + url.QueryEscape(c.ClientID) + "&client_secret="
	cl := call{method: http.MethodPost, url: u, safe: &safe}
	if c.CredentialsInQuery {
		u.RawQuery += "&" + creds + url.QueryEscape(c.ClientSecret)
		safe.RawQuery += "&" + creds + "REDACTED"
	} else {
		cl.form = creds + url.QueryEscape(c.ClientSecret)
	}
	return cl
}

// retrieveError describes a failed answer, with the secret taken out of its
// body in case the server echoed it.
func (c *Config) retrieveError(rep *reply) *oauth2.RetrieveError {
	body := rep.body
	for _, s := range []string{c.ClientSecret, url.QueryEscape(c.ClientSecret)} {
		body = bytes.ReplaceAll(body, []byte(s), []byte(redacted))
	}
	if len(body) > maxErrorBody {
		body = body[:maxErrorBody]
	}
	re := &oauth2.RetrieveError{Response: rep.resp, Body: body}
	var e struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
		ErrorURI         string `json:"error_uri"`
	}
	if json.Unmarshal(body, &e) == nil {
		re.ErrorCode, re.ErrorDescription, re.ErrorURI = e.Error, e.ErrorDescription, e.ErrorURI
	}
	return re
}

// finalError marks an error that another attempt cannot cure.
type finalError struct{ error }

func (e finalError) Unwrap() error { return e.error }

// call is one HTTP request to LivePerson, as often as it is sent.
type call struct {
	method string
	url    *url.URL
	safe   *url.URL // url as errors and Response.Request may show it
	form   string   // form-encoded body, if any
}

// reply is a complete answer: Body is read (through the cap) and closed.
type reply struct {
	resp   *http.Response
	body   []byte
	sentAt time.Time
}

func (c call) send(ctx context.Context, client *http.Client) (*reply, error) {
	req, err := http.NewRequestWithContext(ctx, c.method, c.safe.String(), strings.NewReader(c.form))
	if err != nil {
		return nil, finalError{err}
	}
	req.URL = c.url
	req.Header.Set("Accept", "application/json")
	if c.method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	sentAt := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return nil, c.scrub(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	resp.Request = &http.Request{Method: req.Method, URL: c.safe, Host: req.Host, Header: req.Header.Clone()}
	if err != nil {
		return nil, fmt.Errorf("reading answer (%s): %w", resp.Status, c.scrub(err))
	}
	if len(body) > maxBody {
		return nil, finalError{fmt.Errorf("answer (%s) is larger than %d bytes", resp.Status, maxBody)}
	}
	return &reply{resp: resp, body: body, sentAt: sentAt}, nil
}

// scrub keeps the request URL, which may hold the secret, out of err:
// net/http's *url.Error prints it whole.
func (c call) scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = c.safe.String()
	}
	return err
}

// httpClient is the client from ctx, or the default, with redirects off: a
// server must not move the request, and the secret, to another host or path.
func httpClient(ctx context.Context) *http.Client {
	hc, _ := ctx.Value(oauth2.HTTPClient).(*http.Client)
	if hc == nil {
		hc = defaultClient
	}
	c := *hc
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// retryPolicy is LivePerson's retry policy scaled to an interactive call:
// network errors, 429 and 5xx are retried with growing, jittered pauses; a
// Retry-After is honoured up to a cap; other answers are final.
type retryPolicy struct {
	attempts      int
	pause         backoff
	retryAfterMax time.Duration
	tooManyMin    time.Duration // LivePerson: wait at least 1 s after a 429
}

var defaultRetry = retryPolicy{
	attempts:      4,
	pause:         backoff{base: 500 * time.Millisecond, max: 8 * time.Second},
	retryAfterMax: 10 * time.Second,
	tooManyMin:    time.Second,
}

// do sends c until it gets a final answer, runs out of attempts, or the
// next pause would pass ctx's deadline. The last answer is returned as is:
// its status is the caller's to judge.
func (p retryPolicy) do(ctx context.Context, c call) (*reply, error) {
	client := httpClient(ctx)
	for attempt := 1; ; attempt++ {
		rep, err := c.send(ctx, client)
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
	wait := p.pause.delay(attempt)
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

// backoff is capped exponential backoff with "equal jitter": the n-th delay
// is between half and all of min(base*2^(n-1), max), so that many clients
// failing together do not retry together.
type backoff struct {
	base, max time.Duration
}

func (b backoff) delay(n int) time.Duration {
	d := b.max
	if n < 32 && b.base<<(n-1) < b.max {
		d = b.base << (n - 1)
	}
	return d/2 + rand.N(d/2+1)
}

// tokenResponse is Sentinel's answer.
type tokenResponse struct {
	AccessToken string   `json:"access_token"`
	TokenType   string   `json:"token_type"`
	ExpiresIn   *seconds `json:"expires_in"`
	Error       string   `json:"error"`
}

// errErrorAnswer is a 2xx answer that carries an OAuth 2.0 error instead of
// a token; the caller turns it into an [oauth2.RetrieveError].
var errErrorAnswer = errors.New("answer carries an error")

// parseTokenResponse turns a 2xx answer body into a token whose Expiry is
// set and in the future. sentAt is when the request was sent.
func parseTokenResponse(body []byte, contentType string, sentAt, now time.Time) (*oauth2.Token, error) {
	var r tokenResponse
	if err := json.Unmarshal(body, &r); err != nil {
		mt, _, _ := mime.ParseMediaType(contentType)
		return nil, fmt.Errorf("answer is not a token (Content-Type %q): %w", mt, err)
	}
	if r.Error != "" {
		return nil, errErrorAnswer
	}
	if r.AccessToken == "" {
		return nil, errors.New("answer has no access_token")
	}
	if !isToken68(r.AccessToken) {
		return nil, errors.New("access_token has characters a token cannot have")
	}
	exp, err := expiry(&r, sentAt)
	if err != nil {
		return nil, err
	}
	if !exp.After(now) {
		return nil, fmt.Errorf("token expired at %s, before it arrived", exp.UTC().Format(time.RFC3339))
	}
	return &oauth2.Token{AccessToken: r.AccessToken, TokenType: cmp.Or(r.TokenType, "Bearer"), Expiry: exp.Round(0)}, nil
}

// expiry picks the token's expiry, first match wins: expires_in; the JWT's
// lifetime (exp - iat) from sentAt, which no server clock skew can change;
// the JWT's exp; LivePerson's documented lifetime.
func expiry(r *tokenResponse, sentAt time.Time) (time.Time, error) {
	if r.ExpiresIn != nil {
		return sentAt.Add(time.Duration(*r.ExpiresIn) * time.Second), nil
	}
	if strings.Count(r.AccessToken, ".") != 2 {
		return sentAt.Add(DefaultLifetime), nil
	}
	cl, err := ParseClaims(r.AccessToken)
	switch {
	case err != nil:
		return time.Time{}, err
	case !cl.ExpiresAt.IsZero() && !cl.IssuedAt.IsZero():
		return sentAt.Add(cl.ExpiresAt.Sub(cl.IssuedAt)), nil
	case !cl.ExpiresAt.IsZero():
		return cl.ExpiresAt, nil
	}
	return sentAt.Add(DefaultLifetime), nil
}

// isToken68 reports whether s is an RFC 7235 token68, the form a token
// must have to be sent in an Authorization header.
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

// seconds is expires_in, which Sentinel sends as a number or a string.
type seconds int64

// maxLifetime bounds expires_in and JWT times to something a token could mean.
const maxLifetime = 10 * 365 * 24 * time.Hour

func (s *seconds) UnmarshalJSON(b []byte) error {
	v := string(bytes.Trim(b, `"`))
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || time.Duration(n) > maxLifetime/time.Second {
		return fmt.Errorf("expires_in %s is not a number of seconds", b)
	}
	*s = seconds(n)
	return nil
}

// Claims are the claims of an AppJWT that this package knows.
type Claims struct {
	Audience        string    // aud: the account; several audiences are joined with spaces
	AuthorizedParty string    // azp: the app installation (client) ID
	Scope           string    // scope, such as "msg.consumer"
	Issuer          string    // iss: Sentinel
	IssuedAt        time.Time // iat; zero if absent
	ExpiresAt       time.Time // exp; zero if absent
}

// ParseClaims decodes the claims of a JWT without verifying its signature:
// that is for the API receiving the token to do. It is meant for reading a
// token this package obtained over HTTPS, not for trusting one from anyone
// else.
func ParseClaims(token string) (*Claims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, errors.New("appjwt: token is not a JWT (want 3 dot-separated parts)")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, fmt.Errorf("appjwt: JWT payload is not base64url: %w", err)
	}
	var raw struct {
		Aud   audience    `json:"aud"`
		Azp   string      `json:"azp"`
		Scope string      `json:"scope"`
		Iss   string      `json:"iss"`
		Iat   numericDate `json:"iat"`
		Exp   numericDate `json:"exp"`
	}
	if err := json.Unmarshal(payload, &raw); err != nil {
		return nil, fmt.Errorf("appjwt: JWT payload: %w", err)
	}
	return &Claims{
		Audience:        string(raw.Aud),
		AuthorizedParty: raw.Azp,
		Scope:           raw.Scope,
		Issuer:          raw.Iss,
		IssuedAt:        time.Time(raw.Iat),
		ExpiresAt:       time.Time(raw.Exp),
	}, nil
}

// audience is aud, a string or a list of strings.
type audience string

func (a *audience) UnmarshalJSON(b []byte) error {
	var list []string
	if err := json.Unmarshal(b, &list); err == nil {
		*a = audience(strings.Join(list, " "))
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("aud is neither a string nor a list of strings")
	}
	*a = audience(s)
	return nil
}

// numericDate is a JWT time: seconds since the epoch, maybe fractional.
type numericDate time.Time

func (d *numericDate) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	// No valid token is older than 1970 or outlives maxLifetime from now.
	if err != nil || !(f > 0) || f > float64(time.Now().Add(maxLifetime).Unix()) {
		return fmt.Errorf("JWT time %.40s is not a plausible date", b)
	}
	sec, frac := math.Modf(f)
	*d = numericDate(time.Unix(int64(sec), int64(frac*1e9)))
	return nil
}

// tokenSource is the cache behind [Config.TokenSource]. It serves the
// current token without waiting while one background fetch replaces it,
// and after failures backs off instead of letting every caller hit Sentinel.
type tokenSource struct {
	ctx     context.Context
	conf    Config
	invalid error // a Config error: every call returns it
	retry   retryPolicy
	backoff backoff
	now     func() time.Time
	margin  time.Duration // a token is served until its Expiry - margin
	domain  domainCache   // used only by the running fetch

	mu        sync.Mutex
	tok       *oauth2.Token // the newest good token, or nil
	refreshAt time.Time     // when to start replacing tok
	err       error         // the last fetch's error, if it failed
	retryAt   time.Time     // no fetch starts before this after a failure
	failures  int           // consecutive failed fetches
	inflight  *flight       // the running fetch, or nil
}

// flight is one fetch; done is closed once tok and err are set.
type flight struct {
	done chan struct{}
	tok  *oauth2.Token
	err  error
}

// expiryMargin is the most a token's life is cut short while Sentinel is
// unreachable: callers get it until this long before it really expires.
const expiryMargin = 10 * time.Second

func newTokenSource(ctx context.Context, c Config) *tokenSource {
	return &tokenSource{
		ctx:     ctx,
		conf:    c,
		invalid: c.validate(),
		retry:   defaultRetry,
		backoff: backoff{base: time.Second, max: 30 * time.Second},
		now:     time.Now,
		margin:  min(expiryMargin, c.earlyExpiry()/2),
	}
}

// Token returns a copy of the current token (the caller, such as
// ReuseTokenSource, may modify it) and starts a refresh when one is due.
func (s *tokenSource) Token() (*oauth2.Token, error) {
	if s.invalid != nil {
		return nil, s.invalid
	}
	s.mu.Lock()
	now := s.now()
	if s.tok != nil && now.Before(s.tok.Expiry.Add(-s.margin)) {
		if !now.Before(s.refreshAt) && s.inflight == nil && !now.Before(s.retryAt) {
			s.start()
		}
		t := *s.tok
		s.mu.Unlock()
		return &t, nil
	}
	f := s.inflight
	if f == nil {
		if now.Before(s.retryAt) {
			err := s.err
			s.mu.Unlock()
			return nil, err
		}
		f = s.start()
	}
	s.mu.Unlock()
	<-f.done
	if f.err != nil {
		return nil, f.err
	}
	t := *f.tok
	return &t, nil
}

// start begins a fetch in the background. s.mu must be held.
func (s *tokenSource) start() *flight {
	f := &flight{done: make(chan struct{})}
	s.inflight = f
	go s.refresh(f)
	return f
}

func (s *tokenSource) refresh(f *flight) {
	defer close(f.done)
	f.tok, f.err = s.fetch()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight = nil
	if f.err != nil {
		s.failures++
		s.err = f.err
		s.retryAt = s.now().Add(s.backoff.delay(s.failures))
		return
	}
	now := s.now()
	s.failures, s.err, s.retryAt = 0, nil, time.Time{}
	s.tok = f.tok
	// However large EarlyExpiry is, use at least half of each token's life.
	s.refreshAt = now.Add(max(f.tok.Expiry.Sub(now)/2, f.tok.Expiry.Sub(now)-s.conf.earlyExpiry()))
}

func (s *tokenSource) fetch() (*oauth2.Token, error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.conf.fetchTimeout())
	defer cancel()
	host, err := s.domain.resolve(ctx, &s.conf, s.retry, s.now())
	if err != nil {
		return nil, err
	}
	return s.conf.requestToken(ctx, host, s.retry)
}
