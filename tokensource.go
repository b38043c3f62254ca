package appjwt

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lpconnect/appjwt/internal/lphttp"
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
	retry   lphttp.Policy
	backoff lphttp.Backoff
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
		retry:   lphttp.Default,
		backoff: lphttp.Backoff{Base: time.Second, Max: 30 * time.Second},
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
	if s.servable(now) {
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

// servable reports whether the cache has a token to serve at now. s.mu
// must be held.
func (s *tokenSource) servable(now time.Time) bool {
	return s.tok != nil && now.Before(s.serveUntil)
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
	// After settle's lock, as a handler may call back into the source (it
	// finds the outcome there); before done, so that a fetch's records are
	// written by the time its callers return.
	for _, e := range logs {
		s.log.LogAttrs(s.ctx, e.level, e.msg, e.attrs...)
	}
	close(f.done)
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
		s.retryAt = now.Add(s.backoff.Delay(s.failures))
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
		slog.Bool("serving", s.servable(now)),
	)
	if s.servable(now) {
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
func (c *Config) requestToken(ctx context.Context, host string, p lphttp.Policy) (*oauth2.Token, int, error) {
	fail := func(err error) error {
		return c.withhold(fmt.Errorf("appjwt: token request for account %q (client %q) to %s: %w", c.AccountID, c.ClientID, host, err))
	}
	rep, attempts, err := c.tokenCall(host).do(ctx, p)
	if err != nil {
		return nil, attempts, fail(err)
	}
	if rep.Resp.StatusCode < 200 || rep.Resp.StatusCode > 299 {
		return nil, attempts, fail(c.retrieveError(rep, rep.Resp.Status))
	}
	tok, err := parseTokenResponse(rep.Body, rep.Resp.Header, rep.SentAt, p.Time())
	if errors.Is(err, errErrorAnswer) {
		return nil, attempts, fail(c.retrieveError(rep, rep.Resp.Status+" with an error"))
	}
	if err != nil {
		return nil, attempts, fail(err)
	}
	return tok, attempts, nil
}

// tokenCall is the Sentinel request: credentials in the form body, or in
// the query string if CredentialsInQuery is set.
func (c *Config) tokenCall(host string) call {
	u := lphttp.Endpoint(host, "v=1.0&grant_type=client_credentials", "sentinel", "api", "account", c.AccountID, "app", "token")
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
// any encoding [lphttp.Echoes] knows, is withheld whole, the status line is
// rebuilt from the code, and only headers that do not echo are kept.
func (c *Config) retrieveError(rep *lphttp.Reply, status string) error {
	r := c.redactor()
	re := &oauth2.RetrieveError{Response: r.Response(rep.Resp, rep.Resp.Request), Body: r.Bytes(rep.Body, maxErrorBody)}
	var e struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
		ErrorURI         string `json:"error_uri"`
	}
	if json.Unmarshal(rep.Body, &e) == nil {
		re.ErrorCode = string(r.Bytes([]byte(e.Error), maxErrorField))
		re.ErrorDescription = string(r.Bytes([]byte(e.ErrorDescription), maxErrorField))
		re.ErrorURI = string(r.Bytes([]byte(e.ErrorURI), maxErrorField))
	}
	return &lphttp.RetrieveFailure{Msg: describeFailure(re, status), RE: re}
}

// maxErrorField caps the error, error_description and error_uri an
// [oauth2.RetrieveError] keeps: its Error method prints them all.
const maxErrorField = 256

// redactor withholds what an answer echoes of the secret.
func (c *Config) redactor() lphttp.Redactor {
	return lphttp.Redactor{Leaks: c.leaks, Window: lphttp.EchoWindow(c.ClientSecret), Withheld: withheldText}
}

func (c *Config) leaks(s string) bool { return lphttp.Echoes(s, c.ClientSecret) }

// withhold is the last line of defence for the texts a server can put in
// an error outside a RetrieveError, such as a malformed status line quoted
// by net/http or a Domain API answer: see [lphttp.Redactor.Error].
func (c *Config) withhold(err error) error {
	return c.redactor().Error(err, "appjwt: request failed; error text withheld: it echoed the credentials")
}

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

// maxBody caps every answer read from LivePerson.
const maxBody = 1 << 20

// maxErrorBody caps the body kept in an [oauth2.RetrieveError].
const maxErrorBody = 1 << 10

// defaultClient is used when the context has none: never one without a
// timeout, nor one that reads unbounded headers.
var defaultClient = newDefaultClient()

func newDefaultClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: lphttp.NewTransport()}
}

// call is one HTTP request to LivePerson, as often as it is sent.
type call struct {
	method string
	url    *url.URL
	safe   *url.URL // url as errors and Response.Request may show it
	form   string   // form-encoded body, if any
}

// do sends c as often as p allows; see [lphttp.Policy.Do].
func (c call) do(ctx context.Context, p lphttp.Policy) (*lphttp.Reply, int, error) {
	client := httpClient(ctx)
	return p.Do(ctx, func() (*lphttp.Reply, error) { return c.send(ctx, client, p.Time) })
}

func (c call) send(ctx context.Context, client *http.Client, now func() time.Time) (*lphttp.Reply, error) {
	req, err := http.NewRequestWithContext(ctx, c.method, c.safe.String(), strings.NewReader(c.form))
	if err != nil {
		return nil, lphttp.Final{Err: err}
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
	resp.Request = &http.Request{Method: req.Method, URL: c.safe, Host: req.Host, Header: req.Header.Clone()}
	rep, err := lphttp.Read(resp, maxBody, sentAt)
	return rep, c.scrub(err)
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
	if !lphttp.IsToken68(r.AccessToken) {
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

// seconds is expires_in, which Sentinel sends as a number or a string.
type seconds int64

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

// plausibleSpan bounds the JWT dates ParseClaims accepts: none is more
// than this far in the future.
const plausibleSpan = 10 * 365 * 24 * time.Hour

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
