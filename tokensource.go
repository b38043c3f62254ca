package appjwt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lpconnect/appjwt/internal/domain"
	"github.com/lpconnect/appjwt/internal/lifecycle"
	"github.com/lpconnect/appjwt/internal/lphttp"
	"github.com/lpconnect/appjwt/internal/sentinel"
	"golang.org/x/oauth2"
)

// source is what [Config.TokenSource] returns: a tokenCache, served
// through an [oauth2.ReuseTokenSourceWithExpiry] that hands out the current
// token without touching the cache's lock. The wrapper is replaced with
// each new token, its early expiry set so that it turns to the cache at
// that token's refresh point, and not before: the two agree on when a
// refresh is due.
type source struct {
	cache *tokenCache
}

// Token returns the current token: the same *oauth2.Token to every caller
// until it is replaced, which the caller must not modify.
func (s *source) Token() (*oauth2.Token, error) {
	return s.cache.serving.Load().Token()
}

// Reject implements [Rejecter].
func (s *source) Reject(tok *oauth2.Token) {
	s.cache.reject(tok)
}

// serving is the ReuseTokenSourceWithExpiry that serves the current token.
type serving struct{ oauth2.TokenSource }

// tokenCache is the cache behind [Config.TokenSource]. It serves the
// current token without waiting while one background fetch replaces it,
// and after failures backs off instead of letting every caller hit
// Sentinel. Its token is in one of the states of [lifecycle.State].
type tokenCache struct {
	// Fixed once made.
	ctx     context.Context
	conf    Config
	invalid error // a Config error: every call returns it
	retry   lphttp.Policy
	backoff lphttp.Backoff
	now     func() time.Time
	log     *slog.Logger // nil: no logging
	domain  *domain.Cache

	serving atomic.Pointer[serving] // serves tok; replaced under mu

	mu         sync.Mutex
	tok        *oauth2.Token // the newest good token, or nil
	sched      lifecycle.Schedule
	failures   lifecycle.Failures
	rejectedAt time.Time // when a rejection last dropped tok
	inflight   *flight   // the running fetch, or nil
}

// flight is one fetch; done is closed once its fields are set.
type flight struct {
	done     chan struct{}
	tok      *oauth2.Token
	err      error
	host     string // where it went, if known
	attempts int    // Sentinel requests it sent
	took     time.Duration
	records  []lifecycle.Record // what the fetch found to log, such as a failed re-lookup
}

// Bounds of the cache's schedule, scaled to each token's lifetime L (see
// [lifecycle.Plan]): the refresh point moves earlier at random by up to
// L/refreshJitterShare, so that replicas started together spread out; the
// token is served until expiryMargin (or EarlyExpiry/2, or
// L/serveMarginShare, if less) before its expiry.
const (
	refreshJitterShare = 10
	expiryMargin       = 10 * time.Second
	serveMarginShare   = 10
)

// forcedFetchFloor is the least time between two rejections that drop the
// current token: a stream of 401s makes at most one Sentinel request per
// forcedFetchFloor.
const forcedFetchFloor = 5 * time.Second

func newTokenCache(ctx context.Context, c Config) *tokenCache {
	tc := &tokenCache{
		ctx:     ctx,
		conf:    c,
		invalid: c.validate(),
		retry:   lphttp.Default,
		backoff: lphttp.Backoff{Base: time.Second, Max: 30 * time.Second},
		now:     time.Now,
		log:     c.Logger,
	}
	tc.domain = &domain.Cache{Fixed: c.Domain, API: c.domainAPI(), Account: c.AccountID, Service: sentinelService, Now: func() time.Time { return tc.now() }}
	tc.install(nil, time.Time{})
	return tc
}

// Token is what the wrapper calls once a refresh is due: it returns a copy
// of the current token (the wrapper modifies it) and starts a refresh.
// Without a token to serve, it waits for a fetch.
func (c *tokenCache) Token() (*oauth2.Token, error) {
	if c.invalid != nil {
		return nil, c.invalid
	}
	c.mu.Lock()
	now := c.now()
	switch c.state(now) {
	case lifecycle.Stale:
		if !c.fetching() && !c.failures.BackingOff(now) {
			c.start()
		}
		fallthrough
	case lifecycle.Fresh:
		t := *c.tok
		c.mu.Unlock()
		return &t, nil
	}
	// Empty or Expired: the caller waits for a fetch.
	f := c.inflight
	if f == nil && c.failures.BackingOff(now) {
		err := c.failures.Err
		c.mu.Unlock()
		return nil, err
	}
	if f == nil {
		f = c.start()
	}
	c.mu.Unlock()
	<-f.done
	if f.err != nil {
		return nil, f.err
	}
	t := *f.tok
	return &t, nil
}

// state is the state of the cache's token at now. c.mu must be held.
func (c *tokenCache) state(now time.Time) lifecycle.State {
	if c.tok == nil {
		return lifecycle.Empty
	}
	return c.sched.State(now)
}

// fetching reports whether a fetch is running. c.mu must be held.
func (c *tokenCache) fetching() bool { return c.inflight != nil }

// install makes tok the token the wrapper serves until refreshAt; with a
// nil tok, every call reaches the cache. c.mu must be held, but for the
// first call.
func (c *tokenCache) install(tok *oauth2.Token, refreshAt time.Time) {
	if tok == nil {
		c.serving.Store(&serving{oauth2.ReuseTokenSourceWithExpiry(nil, c, time.Nanosecond)})
		return
	}
	t := *tok // the wrapper's own: it sets the copy's early expiry
	c.serving.Store(&serving{oauth2.ReuseTokenSourceWithExpiry(&t, c, tok.Expiry.Sub(refreshAt))})
}

// start begins a fetch in the background. c.mu must be held.
func (c *tokenCache) start() *flight {
	f := &flight{done: make(chan struct{})}
	c.inflight = f
	go c.refresh(f)
	return f
}

func (c *tokenCache) refresh(f *flight) {
	start := c.now()
	c.fetch(f)
	f.took = c.now().Sub(start)
	records := append(f.records, c.settle(f)...)
	// After settle's lock, as a handler may call back into the source (it
	// finds the outcome there); before done, so that a fetch's records are
	// written by the time its callers return.
	lifecycle.Write(c.ctx, c.log, records)
	close(f.done)
}

// fetch gets a new token into f: the Sentinel host, looked up if need be,
// then the token request.
func (c *tokenCache) fetch(f *flight) {
	ctx, cancel := context.WithTimeout(c.ctx, c.conf.fetchTimeout())
	defer cancel()
	a, err := c.domain.Host(ctx, c.retry)
	if a.RelookupErr != nil {
		f.records = append(f.records, c.relookupFailed(a)...)
	}
	if err != nil {
		f.err = c.conf.withhold(prefixed(err))
		return
	}
	f.host = a.Host
	f.tok, f.attempts, f.err = sentinel.Fetch(ctx, f.host, c.conf.credentials(), c.retry)
	f.err = prefixed(f.err)
}

// settle records how f ended, and returns what to log about it once c.mu
// is released: a log handler may well call back into the source.
func (c *tokenCache) settle(f *flight) []lifecycle.Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inflight = nil
	now := c.now()
	if f.err == nil && !f.tok.Expiry.After(now) {
		f.tok, f.err = nil, fmt.Errorf("appjwt: token from %s expired as it arrived", f.host)
	}
	if f.err != nil {
		c.failures.Add(f.err, now, c.backoff)
		return c.fetchFailed(f, now)
	}
	records := c.recovered(now)
	c.failures = lifecycle.Failures{}
	c.tok, c.sched = f.tok, c.plan().Schedule(now, f.tok.Expiry)
	c.install(f.tok, c.sched.RefreshAt)
	return append(records, c.fetched(f)...)
}

// plan is how each token's lifetime is spent: see [lifecycle.Plan].
func (c *tokenCache) plan() lifecycle.Plan {
	early := c.conf.earlyExpiry()
	return lifecycle.Plan{Early: early, JitterShare: refreshJitterShare, MaxMargin: min(expiryMargin, early/2), MarginShare: serveMarginShare}
}

// reject drops tok if it is still the current token and no rejection has
// dropped one within forcedFetchFloor, so that the next call fetches.
func (c *tokenCache) reject(tok *oauth2.Token) bool {
	if tok == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.tok == nil || c.tok.AccessToken != tok.AccessToken || now.Sub(c.rejectedAt) < forcedFetchFloor {
		return false
	}
	c.rejectedAt = now
	c.tok = nil
	c.install(nil, time.Time{})
	return true
}

// The log records' messages. Their keys are listed in the package docs.
const (
	msgFetchFailed    = "appjwt: token fetch failed"
	msgRecovered      = "appjwt: token fetch recovered"
	msgFetched        = "appjwt: token fetched"
	msgRelookupFailed = "appjwt: Domain API re-lookup failed; keeping the last good host"
	msgRejected       = "appjwt: token rejected by the API"
)

func (c *tokenCache) who() []slog.Attr {
	return []slog.Attr{slog.String("account", c.conf.AccountID), slog.String("client_id", c.conf.ClientID)}
}

// fetchFailed describes a failed fetch. c.mu must be held.
func (c *tokenCache) fetchFailed(f *flight, now time.Time) []lifecycle.Record {
	if c.log == nil {
		return nil
	}
	class, status := errorClass(f.err, f.host == "")
	serving := c.state(now).Servable()
	attrs := append(c.who(),
		slog.String("host", f.host),
		slog.Int("status", status),
		slog.String("error_class", class),
		slog.String("error", f.err.Error()),
		slog.Int("attempts", f.attempts),
		slog.Int("failures", c.failures.N),
		slog.Time("retry_at", c.failures.RetryAt),
		slog.Bool("serving", serving),
	)
	if serving {
		attrs = append(attrs, slog.Time("serving_until", c.sched.ServeUntil))
	}
	return []lifecycle.Record{{Level: slog.LevelWarn, Msg: msgFetchFailed, Attrs: attrs}}
}

// recovered describes the end of a run of failed fetches, if any. c.mu
// must be held.
func (c *tokenCache) recovered(now time.Time) []lifecycle.Record {
	if c.log == nil || c.failures.N == 0 {
		return nil
	}
	attrs := append(c.who(), slog.Int("failures", c.failures.N), slog.Duration("outage", now.Sub(c.failures.Since)))
	return []lifecycle.Record{{Level: slog.LevelInfo, Msg: msgRecovered, Attrs: attrs}}
}

// fetched describes a new token, without any of it. c.mu must be held.
func (c *tokenCache) fetched(f *flight) []lifecycle.Record {
	if c.log == nil {
		return nil
	}
	attrs := append(c.who(),
		slog.String("host", f.host),
		slog.Duration("lifetime", f.tok.Expiry.Sub(c.now()).Round(time.Second)),
		slog.Time("expiry", f.tok.Expiry),
		slog.Time("refresh_at", c.sched.RefreshAt),
		slog.Duration("took", f.took),
	)
	return []lifecycle.Record{{Level: slog.LevelDebug, Msg: msgFetched, Attrs: attrs}}
}

// relookupFailed describes a failed re-lookup of the Sentinel host.
func (c *tokenCache) relookupFailed(a domain.Answer) []lifecycle.Record {
	if c.log == nil {
		return nil
	}
	class, _ := errorClass(a.RelookupErr, true)
	return []lifecycle.Record{{Level: slog.LevelWarn, Msg: msgRelookupFailed, Attrs: []slog.Attr{
		slog.String("account", c.conf.AccountID),
		slog.String("domain_api", c.conf.domainAPI()),
		slog.String("host", a.Host),
		slog.String("error_class", class),
		slog.String("error", c.conf.withhold(prefixed(a.RelookupErr)).Error()),
		slog.Time("retry_at", a.RetryAt),
	}}}
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

// prefixed is err with the package's prefix, or nil.
func prefixed(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("appjwt: %w", err)
}
