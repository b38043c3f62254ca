package appjwt

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/oauth2"
)

// source is what [Config.TokenSource] returns: the cache, tokenSource,
// inside an [oauth2.ReuseTokenSourceWithExpiry] that serves the current
// token without touching the cache's lock. The wrapper is replaced with
// each new token, its early expiry set so that it turns to the cache at
// that token's refresh point, and not before: the two agree on when a
// refresh is due.
type source struct {
	cache *tokenSource
}

// Token returns the current token: the same *oauth2.Token to every caller
// until it is replaced, which the caller must not modify.
func (s *source) Token() (*oauth2.Token, error) {
	return s.cache.reuse.Load().Token()
}

// Reject implements [Rejecter].
func (s *source) Reject(tok *oauth2.Token) {
	s.cache.reject(tok)
}

// reuse is the current ReuseTokenSourceWithExpiry, behind an
// atomic.Pointer.
type reuse struct{ oauth2.TokenSource }

// Bounds of the cache's schedule, scaled to each token's lifetime L (the
// time it has left when it arrives):
//   - a refresh starts EarlyExpiry before expiry, but never before L/2;
//   - the refresh point of each token is moved earlier at random, by up to
//     L/refreshJitterShare, so that replicas started together spread out;
//   - while refreshes fail, the token is served until expiryMargin before
//     its expiry (or EarlyExpiry/2 or L/serveMarginShare, if less), so that
//     no caller sends one about to expire.
const (
	refreshJitterShare = 10
	expiryMargin       = 10 * time.Second
	serveMarginShare   = 10
)

// forcedFetchFloor is the least time between two rejections that drop the
// current token: a stream of 401s makes at most one Sentinel request per
// forcedFetchFloor.
const forcedFetchFloor = 5 * time.Second

// tokenSource is the cache behind [Config.TokenSource]. It serves the
// current token without waiting while one background fetch replaces it,
// and after failures backs off instead of letting every caller hit Sentinel.
type tokenSource struct {
	// Fixed once made.
	ctx     context.Context
	conf    Config
	invalid error // a Config error: every call returns it
	retry   retryPolicy
	backoff backoff
	now     func() time.Time
	log     *slog.Logger // nil: no logging
	domain  domainCache  // used only by the running fetch

	reuse atomic.Pointer[reuse] // serves tok; replaced under mu

	mu           sync.Mutex
	tok          *oauth2.Token // the newest good token, or nil
	refreshAt    time.Time     // when to start replacing tok
	serveUntil   time.Time     // when to stop serving tok
	err          error         // the last fetch's error, if it failed
	retryAt      time.Time     // no fetch starts before this after a failure
	failures     int           // consecutive failed fetches
	failingSince time.Time     // when the first of them ended
	forcedAt     time.Time     // when a rejection last dropped tok
	inflight     *flight       // the running fetch, or nil
}

// flight is one fetch; done is closed once its fields are set.
type flight struct {
	done     chan struct{}
	tok      *oauth2.Token
	err      error
	host     string // where it went, if known
	attempts int    // Sentinel requests it sent
	took     time.Duration
}

func newTokenSource(ctx context.Context, c Config) *tokenSource {
	s := &tokenSource{
		ctx:     ctx,
		conf:    c,
		invalid: c.validate(),
		retry:   defaultRetry,
		backoff: backoff{base: time.Second, max: 30 * time.Second},
		now:     time.Now,
		log:     c.Logger,
	}
	s.install(nil, time.Time{})
	return s
}

// install makes tok the token the wrapper serves until refreshAt; with a
// nil tok, every call reaches the cache. s.mu must be held, but for the
// first call.
func (s *tokenSource) install(tok *oauth2.Token, refreshAt time.Time) {
	if tok == nil {
		s.reuse.Store(&reuse{oauth2.ReuseTokenSourceWithExpiry(nil, s, time.Nanosecond)})
		return
	}
	t := *tok // the wrapper's own: it sets the copy's early expiry
	s.reuse.Store(&reuse{oauth2.ReuseTokenSourceWithExpiry(&t, s, tok.Expiry.Sub(refreshAt))})
}

// Token is what the wrapper calls once a refresh is due: it returns a copy
// of the current token (the wrapper modifies it) and starts a refresh.
// Without a token to serve, it waits for a fetch.
func (s *tokenSource) Token() (*oauth2.Token, error) {
	if s.invalid != nil {
		return nil, s.invalid
	}
	s.mu.Lock()
	now := s.now()
	if s.tok != nil && now.Before(s.serveUntil) {
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
	start := s.now()
	s.fetch(f)
	f.took = s.now().Sub(start)
	logs := append(s.domain.takeLogs(), s.settle(f)...)
	close(f.done)
	for _, e := range logs {
		s.log.LogAttrs(s.ctx, e.level, e.msg, e.attrs...)
	}
}

// settle records how f ended, and returns what to log about it once s.mu
// is released: a log handler may well call back into the source.
func (s *tokenSource) settle(f *flight) []logEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight = nil
	now := s.now()
	if f.err == nil && !f.tok.Expiry.After(now) {
		f.tok, f.err = nil, fmt.Errorf("appjwt: token from %s expired as it arrived", f.host)
	}
	if f.err != nil {
		if s.failures == 0 {
			s.failingSince = now
		}
		s.failures++
		s.err = f.err
		s.retryAt = now.Add(s.backoff.delay(s.failures))
		return s.logFailed(f, now)
	}
	logs := s.logRecovered(now)
	s.failures, s.err, s.retryAt = 0, nil, time.Time{}
	s.tok = f.tok
	s.refreshAt, s.serveUntil = s.schedule(now, f.tok.Expiry)
	s.install(f.tok, s.refreshAt)
	return append(logs, s.logFetched(f)...)
}

// schedule returns when to start replacing a token that expires at expiry
// and has arrived at now, and until when to serve it.
func (s *tokenSource) schedule(now, expiry time.Time) (refreshAt, serveUntil time.Time) {
	life := max(expiry.Sub(now), 0)
	early := min(s.conf.earlyExpiry(), life/2)
	jitter := rand.N(life/refreshJitterShare + 1)
	refreshAt = now.Add(max(life/2, life-early-jitter))
	margin := min(expiryMargin, s.conf.earlyExpiry()/2, life/serveMarginShare)
	return refreshAt, expiry.Add(-margin)
}

// fetch gets a new token into f: a Domain API lookup if one is due, then
// the Sentinel request.
func (s *tokenSource) fetch(f *flight) {
	ctx, cancel := context.WithTimeout(s.ctx, s.conf.fetchTimeout())
	defer cancel()
	f.host, f.err = s.domain.resolve(ctx, &s.conf, s.retry, s.now())
	if f.err != nil {
		f.err = s.conf.withhold(f.err)
		return
	}
	f.tok, f.attempts, f.err = s.conf.requestToken(ctx, f.host, s.retry)
}

// reject drops tok if it is still the current token and no rejection has
// dropped one within forcedFetchFloor, so that the next call fetches.
func (s *tokenSource) reject(tok *oauth2.Token) bool {
	if tok == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.tok == nil || s.tok.AccessToken != tok.AccessToken || now.Sub(s.forcedAt) < forcedFetchFloor {
		return false
	}
	s.forcedAt = now
	s.tok = nil
	s.install(nil, time.Time{})
	return true
}

// maxBody caps every answer read from LivePerson.
const maxBody = 1 << 20

// maxErrorBody caps the body kept in an [oauth2.RetrieveError].
const maxErrorBody = 1 << 10

// maxHeaderBytes caps the response headers the default client reads:
// net/http's own default is 1 MiB.
const maxHeaderBytes = 64 << 10

// defaultClient is used when the context has none: never one without a
// timeout, nor one that reads unbounded headers.
var defaultClient = newDefaultClient()

func newDefaultClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxResponseHeaderBytes = maxHeaderBytes
	return &http.Client{Timeout: 10 * time.Second, Transport: t}
}

// logEntry is a log record, made under a lock and logged after it.
type logEntry struct {
	level slog.Level
	msg   string
	attrs []slog.Attr
}

// The log records' messages. Their keys are listed in the package docs.
const (
	msgFetchFailed    = "appjwt: token fetch failed"
	msgRecovered      = "appjwt: token fetch recovered"
	msgFetched        = "appjwt: token fetched"
	msgRelookupFailed = "appjwt: Domain API re-lookup failed; keeping the last good host"
	msgRejected       = "appjwt: token rejected by the API"
)

func (s *tokenSource) who() []slog.Attr {
	return []slog.Attr{slog.String("account", s.conf.AccountID), slog.String("client_id", s.conf.ClientID)}
}

// logFailed describes a failed fetch. s.mu must be held.
func (s *tokenSource) logFailed(f *flight, now time.Time) []logEntry {
	if s.log == nil {
		return nil
	}
	class, status := errorClass(f.err, f.host == "")
	attrs := append(s.who(),
		slog.String("host", cmp.Or(f.host, s.domain.host)),
		slog.Int("status", status),
		slog.String("error_class", class),
		slog.String("error", f.err.Error()),
		slog.Int("attempts", f.attempts),
		slog.Int("failures", s.failures),
		slog.Time("retry_at", s.retryAt),
		slog.Bool("serving", s.tok != nil && now.Before(s.serveUntil)),
	)
	if s.tok != nil && now.Before(s.serveUntil) {
		attrs = append(attrs, slog.Time("serving_until", s.serveUntil))
	}
	return []logEntry{{slog.LevelWarn, msgFetchFailed, attrs}}
}

// logRecovered describes the end of a run of failed fetches, if any. s.mu
// must be held.
func (s *tokenSource) logRecovered(now time.Time) []logEntry {
	if s.log == nil || s.failures == 0 {
		return nil
	}
	attrs := append(s.who(), slog.Int("failures", s.failures), slog.Duration("outage", now.Sub(s.failingSince)))
	return []logEntry{{slog.LevelInfo, msgRecovered, attrs}}
}

// logFetched describes a new token, without any of it. s.mu must be held.
func (s *tokenSource) logFetched(f *flight) []logEntry {
	if s.log == nil {
		return nil
	}
	attrs := append(s.who(),
		slog.String("host", f.host),
		slog.Duration("lifetime", f.tok.Expiry.Sub(s.now()).Round(time.Second)),
		slog.Time("expiry", f.tok.Expiry),
		slog.Time("refresh_at", s.refreshAt),
		slog.Duration("took", f.took),
	)
	return []logEntry{{slog.LevelDebug, msgFetched, attrs}}
}

// errorClass sorts a fetch's error for a log record, with the HTTP status
// of the answer, if one caused it.
func errorClass(err error, inLookup bool) (class string, status int) {
	var re *oauth2.RetrieveError
	switch {
	case errors.As(err, &re):
		return "status", re.Response.StatusCode
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout", 0
	case errors.Is(err, context.Canceled):
		return "canceled", 0
	case inLookup:
		return "domain", 0
	case errors.As(err, new(*url.Error)):
		return "network", 0
	}
	return "answer", 0
}

// requestToken sends the Sentinel token request, as often as p allows, and
// turns its answer into a token with an Expiry. It says how many requests
// it sent.
func (c *Config) requestToken(ctx context.Context, host string, p retryPolicy) (*oauth2.Token, int, error) {
	fail := func(err error) error {
		return c.withhold(fmt.Errorf("appjwt: token request for account %q (client %q) to %s: %w", c.AccountID, c.ClientID, host, err))
	}
	rep, attempts, err := p.do(ctx, c.tokenCall(host))
	if err != nil {
		return nil, attempts, fail(err)
	}
	if rep.resp.StatusCode < 200 || rep.resp.StatusCode > 299 {
		return nil, attempts, fail(c.retrieveError(rep, rep.resp.Status))
	}
	tok, err := parseTokenResponse(rep.body, rep.resp.Header, rep.sentAt, p.now())
	if errors.Is(err, errErrorAnswer) {
		return nil, attempts, fail(c.retrieveError(rep, rep.resp.Status+" with an error"))
	}
	if err != nil {
		return nil, attempts, fail(err)
	}
	return tok, attempts, nil
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

// withheldText replaces any text from a server that echoed the secret.
const withheldText = "[withheld: it echoed the credentials]"

// retrieveError describes a failed answer. Every text in it comes from the
// server, which may echo the request: a field that holds the secret, in
// any encoding [echoes] knows, is withheld whole, the status line is
// rebuilt from the code, and only headers that do not echo are kept.
func (c *Config) retrieveError(rep *reply, status string) error {
	re := &oauth2.RetrieveError{Response: c.safeResponse(rep.resp), Body: c.safeBytes(rep.body, maxErrorBody)}
	var e struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
		ErrorURI         string `json:"error_uri"`
	}
	if json.Unmarshal(rep.body, &e) == nil {
		re.ErrorCode = string(c.safeBytes([]byte(e.Error), maxErrorField))
		re.ErrorDescription = string(c.safeBytes([]byte(e.ErrorDescription), maxErrorField))
		re.ErrorURI = string(c.safeBytes([]byte(e.ErrorURI), maxErrorField))
	}
	return &retrieveFailure{msg: describeFailure(re, status), re: re}
}

// maxErrorField caps the error, error_description and error_uri an
// [oauth2.RetrieveError] keeps: its Error method prints them all.
const maxErrorField = 256

// safeBytes is b cut to max bytes, or withheldText if b echoes the secret.
// Both the whole and the cut are checked: a cut can change what the end of
// an encoding decodes to ("&#61" is "=", "&#619;" is not).
func (c *Config) safeBytes(b []byte, max int) []byte {
	cut := b[:min(len(b), max)]
	if c.leaks(string(b[:min(len(b), max+echoWindow(c.ClientSecret))])) || c.leaks(string(cut)) {
		return []byte(withheldText)
	}
	return cut
}

// safeResponse is the part of resp an error may show: the status code, a
// status line rebuilt from it, the headers that do not echo the secret, and
// the bodiless, redacted request.
func (c *Config) safeResponse(resp *http.Response) *http.Response {
	h := make(http.Header, len(resp.Header))
	for k, vs := range resp.Header {
		// A header prints its values joined: the secret may be split among them.
		if c.leaks(k) || slices.ContainsFunc(vs, c.leaks) || c.leaks(fmt.Sprint(vs)) || c.leaks(strings.Join(vs, ", ")) {
			continue
		}
		h[k] = vs
	}
	if c.leaks(fmt.Sprint(h)) {
		h = http.Header{}
	}
	return &http.Response{
		Status:        resp.Status,
		StatusCode:    resp.StatusCode,
		Proto:         resp.Proto,
		ProtoMajor:    resp.ProtoMajor,
		ProtoMinor:    resp.ProtoMinor,
		Header:        h,
		Body:          http.NoBody,
		ContentLength: resp.ContentLength,
		Request:       resp.Request,
	}
}

func (c *Config) leaks(s string) bool { return echoes(s, c.ClientSecret) }

// withhold is the last line of defence for the texts a server can put in
// an error outside a RetrieveError, such as a malformed status line quoted
// by net/http or a Domain API answer: if err's text echoes the secret, it is
// replaced whole, and only its context error, if any, stays reachable.
func (c *Config) withhold(err error) error {
	if err == nil || !c.leaks(err.Error()) {
		return err
	}
	const msg = "appjwt: request failed; error text withheld: it echoed the credentials"
	for _, ce := range []error{context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, ce) {
			return fmt.Errorf("%s: %w", msg, ce)
		}
	}
	return errors.New(msg)
}

// retrieveFailure carries an [oauth2.RetrieveError] under a message of one
// line: the RetrieveError's own text puts the body on a line of its own.
type retrieveFailure struct {
	msg string
	re  *oauth2.RetrieveError
}

func (e *retrieveFailure) Error() string { return e.msg }
func (e *retrieveFailure) Unwrap() error { return e.re }

// describeFailure says in one line what a failed answer was.
func describeFailure(re *oauth2.RetrieveError, status string) string {
	switch {
	case re.ErrorCode != "":
		return status + ": " + re.Error() // quoted, so one line
	case len(re.Body) == 0:
		return status + ": empty answer"
	}
	return fmt.Sprintf("%s: answer %.120q", status, re.Body)
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

func (c call) send(ctx context.Context, client *http.Client, now func() time.Time) (*reply, error) {
	req, err := http.NewRequestWithContext(ctx, c.method, c.safe.String(), strings.NewReader(c.form))
	if err != nil {
		return nil, finalError{err}
	}
	req.URL = c.url
	req.Header.Set("Accept", "application/json")
	if c.method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	sentAt := now()
	resp, err := client.Do(req)
	if err != nil {
		return nil, c.scrub(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	resp.Request = &http.Request{Method: req.Method, URL: c.safe, Host: req.Host, Header: req.Header.Clone()}
	// The reason phrase is the server's free text: it may echo the request.
	resp.Status = statusLine(resp.StatusCode)
	if err != nil && !isFinalStatus(resp.StatusCode) {
		return nil, fmt.Errorf("reading answer (%s): %w", resp.Status, c.scrub(err))
	}
	if len(body) > maxBody {
		return nil, finalError{fmt.Errorf("answer (%s) is larger than %d bytes", resp.Status, maxBody)}
	}
	// A final status is final however its body ends: what arrived is kept.
	return &reply{resp: resp, body: body, sentAt: sentAt}, nil
}

// statusLine is the status line net/http would write for code.
func statusLine(code int) string {
	if t := http.StatusText(code); t != "" {
		return strconv.Itoa(code) + " " + t
	}
	return strconv.Itoa(code)
}

// isFinalStatus reports whether an answer with this status is never
// retried: any 4xx but 429.
func isFinalStatus(code int) bool {
	return code >= 400 && code < 500 && code != http.StatusTooManyRequests
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
	tooManyMin    time.Duration    // LivePerson: wait at least 1 s after a 429
	now           func() time.Time // times the answers, for their expiry
}

var defaultRetry = retryPolicy{
	attempts:      4,
	pause:         backoff{base: 500 * time.Millisecond, max: 8 * time.Second},
	retryAfterMax: 10 * time.Second,
	tooManyMin:    time.Second,
	now:           time.Now,
}

// do sends c until it gets a final answer, runs out of attempts, or the
// next pause would pass ctx's deadline, and says how often it sent it. The
// last answer is returned as is: its status is the caller's to judge.
func (p retryPolicy) do(ctx context.Context, c call) (rep *reply, attempts int, err error) {
	client := httpClient(ctx)
	for attempt := 1; ; attempt++ {
		rep, err := c.send(ctx, client, p.now)
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
				err = errors.New(rep.resp.Status)
			}
			return nil, attempt, fmt.Errorf("%w; gave up retrying: %w", err, ctx.Err())
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

// parseTokenResponse turns a 2xx answer into a token whose Expiry is set
// and in the future, carrying the answer's fields as its Extra. sentAt is
// when the request was sent; header is the answer's.
func parseTokenResponse(body []byte, header http.Header, sentAt, now time.Time) (*oauth2.Token, error) {
	var r tokenResponse
	if err := json.Unmarshal(body, &r); err != nil {
		mt, _, _ := mime.ParseMediaType(header.Get("Content-Type"))
		return nil, fmt.Errorf("answer is not a token (Content-Type %q): %w", safeToken(mt), err)
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
	if !strings.EqualFold(cmp.Or(r.TokenType, "Bearer"), "Bearer") {
		return nil, fmt.Errorf("token_type %.20q is not Bearer, the only type Sentinel documents", safeToken(r.TokenType))
	}
	date, _ := http.ParseTime(header.Get("Date"))
	exp, err := expiry(&r, date, sentAt, now)
	if err != nil {
		return nil, err
	}
	if !exp.After(now) {
		return nil, fmt.Errorf("token expired at %s, before it arrived", exp.UTC().Format(time.RFC3339))
	}
	var extra map[string]any
	json.Unmarshal(body, &extra) // it parsed as tokenResponse: an object
	tok := &oauth2.Token{AccessToken: r.AccessToken, TokenType: "Bearer", Expiry: exp.Round(0)}
	return tok.WithExtra(extra), nil
}

// expiry picks the token's expiry, first match wins:
//   - expires_in, from sentAt;
//   - the JWT's exp - date, from sentAt, when the answer has a Date: the
//     time left by Sentinel's own clock, so that a token issued a while ago
//     counts as such, and one whose exp is not after Date is an error;
//   - the JWT's lifetime, exp - iat, from sentAt;
//   - the JWT's exp;
//   - LivePerson's documented lifetime, from sentAt.
//
// Counting from sentAt makes a Sentinel clock that is off, with a Date off
// the same way, change nothing. A lifetime longer than MaxLifetime is an
// error, not a token that outlives any revocation.
func expiry(r *tokenResponse, date, sentAt, now time.Time) (time.Time, error) {
	if r.ExpiresIn != nil {
		return sentAt.Add(time.Duration(*r.ExpiresIn) * time.Second), nil
	}
	if strings.Count(r.AccessToken, ".") != 2 {
		return sentAt.Add(DefaultLifetime), nil
	}
	cl, err := ParseClaims(r.AccessToken)
	if err != nil {
		return time.Time{}, err
	}
	exp, iat := cl.ExpiresAt, cl.IssuedAt
	switch {
	case exp.IsZero():
		return sentAt.Add(DefaultLifetime), nil
	case !iat.IsZero() && exp.Sub(iat) > MaxLifetime:
		return time.Time{}, lifetimeError(exp.Sub(iat), "exp - iat")
	case !date.IsZero() && !exp.After(date):
		return time.Time{}, fmt.Errorf("token expired at %s by Sentinel's own clock (its Date: %s)", exp.UTC().Format(time.RFC3339), date.UTC().Format(time.RFC3339))
	case !date.IsZero():
		return boundedExpiry(sentAt, exp.Sub(date), "exp - Date")
	case !iat.IsZero():
		return sentAt.Add(exp.Sub(iat)), nil
	}
	_, err = boundedExpiry(now, exp.Sub(now), "exp - now")
	return exp, err
}

// boundedExpiry is from + lifetime, if lifetime is at most MaxLifetime.
func boundedExpiry(from time.Time, lifetime time.Duration, what string) (time.Time, error) {
	if lifetime > MaxLifetime {
		return time.Time{}, lifetimeError(lifetime, what)
	}
	return from.Add(lifetime), nil
}

func lifetimeError(lifetime time.Duration, what string) error {
	return fmt.Errorf("token lifetime (%s) of %v is longer than %v", what, lifetime.Truncate(time.Second), MaxLifetime)
}

// safeToken is s if it is a short token of visible ASCII, such as a media
// type or a token_type; else a placeholder, so that no error quotes much
// of what a server sent.
func safeToken(s string) string {
	if len(s) > 40 || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return "(unprintable)"
	}
	return s
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

// plausibleSpan bounds the JWT dates ParseClaims accepts: none is more
// than this far in the future.
const plausibleSpan = 10 * 365 * 24 * time.Hour

func (s *seconds) UnmarshalJSON(b []byte) error {
	v := string(bytes.Trim(b, `"`))
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || time.Duration(n) > MaxLifetime/time.Second {
		return fmt.Errorf("expires_in is not a number of seconds up to %d", int64(MaxLifetime/time.Second))
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
	// No valid token is older than 1970 or dated plausibleSpan from now.
	if err != nil || !(f > 0) || f > float64(time.Now().Add(plausibleSpan).Unix()) {
		return errors.New("JWT time is not a plausible date")
	}
	sec, frac := math.Modf(f)
	*d = numericDate(time.Unix(int64(sec), int64(frac*1e9)))
	return nil
}

// echoes reports whether text holds secret, plainly or under the encodings
// a server or proxy may apply when it echoes a request back: JSON and Go
// string escapes, HTML character references, and percent-encoding (hex in either
// case, with or without '+' for space), up to maxEchoLayers of them on top
// of each other.
func echoes(text, secret string) bool {
	if secret == "" {
		return false
	}
	layer, seen := []string{text}, map[string]bool{text: true}
	for depth := 0; len(layer) > 0; depth++ {
		var next []string
		for _, s := range layer {
			if strings.Contains(s, secret) {
				return true
			}
			if depth == maxEchoLayers {
				continue
			}
			for _, decode := range echoDecoders {
				if d := decode(s); !seen[d] {
					seen[d] = true
					next = append(next, d)
				}
			}
		}
		layer = next
	}
	return false
}

// maxEchoLayers is how many encodings on top of each other echoes undoes.
const maxEchoLayers = 3

// echoWindow is how much longer than itself an encoded secret can be: a
// body is checked this far past the part of it an error keeps, so that a
// secret cut in two by the cap is found too.
func echoWindow(secret string) int { return 16*len(secret) + 16 }

// echoDecoders each undo one layer of an encoding, leaving what is not
// validly encoded as it is.
var echoDecoders = []func(string) string{
	unescapeBackslashes,
	html.UnescapeString,
	func(s string) string { return unescapePercent(s, false) },
	func(s string) string { return unescapePercent(s, true) },
}

// unescapeBackslashes undoes the backslash escapes of a JSON string and of
// Go's strconv.Quote, which net/http uses to quote what it could not parse:
// \n, \", \/ and the like, \uXXXX (surrogate pairs too), \UXXXXXXXX, \xHH
// and octal \ooo.
func unescapeBackslashes(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		if c, ok := simpleEscapes[s[i+1]]; ok {
			b.WriteByte(c)
			i++
			continue
		}
		n := unescapeCode(&b, s[i:])
		if n == 0 {
			b.WriteByte(s[i])
			continue
		}
		i += n - 1
	}
	return b.String()
}

var simpleEscapes = map[byte]byte{'"': '"', '\'': '\'', '\\': '\\', '/': '/', 'a': '\a', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t', 'v': '\v'}

// unescapeCode writes what the numeric escape s starts with stands for, and
// returns its length: 0 if s starts with none.
func unescapeCode(b *strings.Builder, s string) int {
	switch s[1] {
	case 'u':
		r, ok := hexAt(s, 2, 4)
		if !ok {
			return 0
		}
		if utf16.IsSurrogate(r) && len(s) >= 12 && s[6] == '\\' && s[7] == 'u' {
			if r2, ok := hexAt(s, 8, 4); ok {
				if p := utf16.DecodeRune(r, r2); p != utf8.RuneError {
					b.WriteRune(p)
					return 12
				}
			}
		}
		b.WriteRune(r)
		return 6
	case 'U':
		r, ok := hexAt(s, 2, 8)
		if !ok {
			return 0
		}
		b.WriteRune(r)
		return 10
	case 'x':
		c, ok := hexAt(s, 2, 2)
		if !ok {
			return 0
		}
		b.WriteByte(byte(c))
		return 4
	case '0', '1', '2', '3':
		if len(s) < 4 {
			return 0
		}
		n, err := strconv.ParseUint(s[1:4], 8, 8)
		if err != nil {
			return 0
		}
		b.WriteByte(byte(n))
		return 4
	}
	return 0
}

// hexAt reads the n hex digits of s at i.
func hexAt(s string, i, n int) (rune, bool) {
	if len(s) < i+n {
		return 0, false
	}
	v, err := strconv.ParseUint(s[i:i+n], 16, 32)
	return rune(v), err == nil
}

// unescapePercent undoes percent-encoding, and '+' for space if plus is set.
func unescapePercent(s string, plus bool) string {
	if !strings.Contains(s, "%") && (!plus || !strings.Contains(s, "+")) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '+' && plus:
			b.WriteByte(' ')
		case s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			n, _ := strconv.ParseUint(s[i+1:i+3], 16, 8)
			b.WriteByte(byte(n))
			i += 2
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
