package appjwt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"github.com/lpconnect/appjwt/internal/domain"
	"github.com/lpconnect/appjwt/internal/lifecycle"
	"github.com/lpconnect/appjwt/internal/lphttp"
	"github.com/lpconnect/appjwt/internal/sentinel"
	"golang.org/x/oauth2"
)

// Source is the cached AppJWT source that [Config.TokenSource] returns. It
// is safe for concurrent use, and may be shared by any number of clients,
// transports and direct callers: however many call it at once, one fetch
// reaches Sentinel.
//
// While it holds a fresh token, a call reads an immutable snapshot and the
// clock, with no lock, plus one copy of the token for Token and
// TokenContext; [Transport] takes no copy. It refreshes each token in the
// background at its refresh point, on a timer, as long as the token is in
// use, so that a caller never waits for a refresh, even through
// [oauth2.NewClient], which asks it only 10 s before each expiry. Nothing
// runs once its context is done; a Source nobody calls any more fetches at
// most one more token, then stops; one nobody holds any more is collected
// within two garbage collections, even while its context lives on.
type Source struct {
	cache *tokenCache
}

// Token returns the current token, waiting for a fetch if it has none that
// can still be sent. The token is the caller's own copy, which it may
// modify, as [oauth2.ReuseTokenSource] does. Errors are as for
// [Config.Token]; while the source backs off after a failed fetch, the
// error says so, and wraps the failed fetch's.
func (s *Source) Token() (*oauth2.Token, error) {
	return s.TokenContext(context.Background())
}

// TokenContext is Token, but gives up waiting for a fetch once ctx is
// done, with an error that wraps ctx's: [errors.Is] finds
// [context.DeadlineExceeded] or [context.Canceled]. A caller that gives up
// does not cancel the fetch, which goes on for the others. [Transport]
// calls it with each request's context.
func (s *Source) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	tok, err := s.token(ctx)
	if err != nil {
		return nil, err
	}
	t := *tok
	return &t, nil
}

// token is TokenContext without the copy: the token it returns is shared,
// read-only. Until its serving point, a token is served from the cache's
// snapshot, without its lock; the first caller past its refresh point
// starts the refresh (later ones, if it fails, are the timer's).
func (s *Source) token(ctx context.Context) (*oauth2.Token, error) {
	c := s.cache
	sn := c.current.Load()
	if !sn.used.Load() {
		sn.used.Store(true)
	}
	if sn.tok != nil {
		switch sn.sched.State(c.now()) {
		case lifecycle.Stale:
			if !sn.due.Load() && sn.due.CompareAndSwap(false, true) {
				c.refreshNow()
			}
			fallthrough
		case lifecycle.Fresh:
			return sn.tok, nil
		}
	}
	return c.token(ctx)
}

// Reject implements [Rejecter]. While tokens fetched after a rejection
// are rejected as well, new tokens are not helping, and the least time
// between two drops doubles (5 s, 10 s, 20 s, ... up to the token's
// lifetime) until the API takes a token again, as [Transport] tells the
// source.
func (s *Source) Reject(tok *oauth2.Token) {
	s.cache.reject(tok, "")
}

// TokenAPI returns the Sentinel token API the source's Config names, and
// so the API its tokens are for (see [Config.TokenAPI]).
func (s *Source) TokenAPI() TokenAPI { return s.cache.conf.TokenAPI }

// State is a snapshot of a [Source], for a health or readiness check.
type State struct {
	// Valid: the source holds a token it still serves, so requests go out
	// without waiting for Sentinel.
	Valid bool
	// Expiry is the token's expiry, and RefreshAt when its refresh starts
	// (or started); zero unless Valid. The token is served until shortly
	// before Expiry: 10 s, or less for short-lived tokens.
	Expiry, RefreshAt time.Time
	// Fetching: a fetch is running.
	Fetching bool
	// Failures counts the fetches that failed in a row; zero after a
	// success. LastError is the last one's error, LastErrorAt when it
	// ended, and RetryAt when the next fetch may start.
	Failures    int
	LastError   error
	LastErrorAt time.Time
	RetryAt     time.Time
}

// State returns the source's state now, for a readiness check. It takes
// the source's lock for a moment and waits for nothing, so that a health
// handler may call it as often as it likes.
//
// A call to State counts as a call for a token: a source that serves none
// starts a fetch in the background, unless one is running or it is
// backing off, and keeps retrying on its timer while State or Token is
// called between attempts; a source that serves one keeps it fresh. So a
// readiness check built on State alone turns ready within one fetch of its
// first call, and within one backoff step (30 s at most) of Sentinel's
// recovery, with no other traffic; it costs Sentinel what a source in use
// costs (docs/behaviour.md).
func (s *Source) State() State {
	c := s.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.invalid == nil {
		c.want(c.now())
	}
	st := State{
		Fetching:    c.fetching(),
		Failures:    c.failures.N,
		LastError:   c.failures.Err,
		LastErrorAt: c.failures.At,
		RetryAt:     c.failures.RetryAt,
	}
	if c.invalid != nil {
		st.LastError = c.invalid
	}
	if c.state(c.now()).Servable() {
		st.Valid, st.Expiry, st.RefreshAt = true, c.tok.Expiry, c.sched.RefreshAt
	}
	return st
}

// snapshot serves the current token until its refresh point without the
// cache's lock, as the AWS SDK's CredentialsCache does: it never changes
// once stored, but for used, which keeps the refresh timer going.
type snapshot struct {
	tok   *oauth2.Token // nil: none to serve without the lock
	sched lifecycle.Schedule
	used  atomic.Bool // a caller asked for a token since it was stored
	due   atomic.Bool // a caller found it stale, and asked for a refresh
}

// tokenCache is the cache behind [Source]. It serves the current token
// without waiting while one background fetch replaces it, and after
// failures backs off instead of letting every caller hit Sentinel. Its
// token is in one of the states of [lifecycle.State]. Nothing waits while
// holding mu, which is held only to read or change the fields below it.
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

	current atomic.Pointer[snapshot] // serves tok while fresh; replaced under mu

	mu         sync.Mutex
	tok        *oauth2.Token // the newest good token, or nil; never modified
	sched      lifecycle.Schedule
	failures   lifecycle.Failures
	life       time.Duration // tok's lifetime when it came
	rejectedAt time.Time     // when a rejection last dropped tok
	rejectedOn string        // the path it came from; "" if unknown
	rejections atomic.Int32  // drops since the API last took a token; written under mu
	wanted     bool          // a token was asked for while none was served, since the last fetch started
	inflight   *flight       // the running fetch, or nil
	timer      *time.Timer   // starts the next refresh or retry in the background
	stopped    bool          // ctx is done, or the Source gone: no timer, no fetch
	unhook     func() bool   // forgets the stop that ctx's end calls
	gone       atomic.Bool   // nobody holds the Source: the timer stops
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
	waited   bool               // callers wait for it: its token is in use; guarded by mu
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

// rejectFloor is the least time between two rejections that drop the
// current token: a stream of 401s makes at most one Sentinel request per
// rejectFloor, and fewer while tokens fetched after a rejection are
// rejected too (see [tokenCache.floor]).
const rejectFloor = 5 * time.Second

func newTokenCache(ctx context.Context, c Config) *tokenCache {
	tc := &tokenCache{
		ctx:     ctx,
		conf:    c,
		invalid: c.validate(),
		retry:   lphttp.Default,
		backoff: lifecycle.FailureBackoff,
		now:     time.Now,
		log:     c.Logger,
	}
	tc.domain = &domain.Cache{Fixed: c.Domain, API: c.domainAPI(), Account: c.AccountID, Service: sentinelService, Backoff: tc.backoff, Now: func() time.Time { return tc.now() }}
	tc.install(nil, lifecycle.Schedule{})
	tc.unhook = context.AfterFunc(ctx, tc.stop)
	return tc
}

// token returns the token to serve past the snapshot: a stale one, while
// one refresh starts in the background, or else the token of a fetch,
// waited for as long as ctx allows (the running fetch, or one it starts),
// unless the cache is backing off after a failure, when it returns that
// failure at once. The token is shared.
func (c *tokenCache) token(ctx context.Context) (*oauth2.Token, error) {
	if c.invalid != nil {
		return nil, c.invalid
	}
	c.mu.Lock()
	now := c.now()
	switch c.state(now) {
	case lifecycle.Stale:
		c.refreshIfDue(now)
		fallthrough
	case lifecycle.Fresh: // a fetch ended since the snapshot was read
		tok := c.tok
		c.mu.Unlock()
		return tok, nil
	}
	c.wanted = true
	f := c.inflight
	switch {
	case f == nil && c.stopped:
		c.mu.Unlock()
		return nil, fmt.Errorf("appjwt: the source's context is done: %w", c.ctx.Err())
	case f == nil && c.failures.BackingOff(now):
		err := c.failures.BackoffError("appjwt: ")
		c.mu.Unlock()
		return nil, err
	case f == nil:
		f = c.start()
	}
	f.waited = true
	c.mu.Unlock()
	select {
	case <-f.done:
		return f.tok, f.err
	case <-ctx.Done():
		return nil, fmt.Errorf("appjwt: waiting for a token from Sentinel: %w", ctx.Err())
	}
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

// install makes tok the token the snapshot serves on sched; with a
// nil tok, every call reaches the cache. c.mu must be held, but for the
// first call.
func (c *tokenCache) install(tok *oauth2.Token, sched lifecycle.Schedule) {
	c.current.Store(&snapshot{tok: tok, sched: sched})
}

// want notes a call for a token at now: it keeps the token served fresh,
// and starts a fetch if none is served and none can be waited for. c.mu
// must be held.
func (c *tokenCache) want(now time.Time) {
	c.current.Load().used.Store(true)
	if !c.state(now).Servable() {
		c.wanted = true
		c.refreshIfDue(now)
	}
}

// refreshNow starts a refresh, if one is due.
func (c *tokenCache) refreshNow() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); c.state(now) == lifecycle.Stale {
		c.refreshIfDue(now)
	}
}

// refreshIfDue starts a refresh, unless one is running or the cache is
// backing off. c.mu must be held.
func (c *tokenCache) refreshIfDue(now time.Time) {
	if !c.fetching() && !c.failures.BackingOff(now) && !c.stopped {
		c.start()
	}
}

// arm sets the timer to start the next refresh, or retry, at at, so that
// the token in use is replaced before any caller has to wait: x/oauth2's
// wrappers ask only shortly before its expiry. c.mu must be held.
//
// The timer holds the cache weakly: a pending timer, which the runtime
// keeps until it fires, does not keep a cache nobody holds alive.
func (c *tokenCache) arm(at time.Time) {
	if c.stopped {
		return
	}
	d := max(at.Sub(c.now()), 0)
	if c.timer == nil {
		wc := weak.Make(c)
		c.timer = time.AfterFunc(d, func() {
			if c := wc.Value(); c != nil {
				c.onTimer()
			}
		})
		return
	}
	c.timer.Reset(d)
}

// onTimer starts the refresh or retry that is due, if a token has been
// asked for since the last one came, or since the last fetch started while
// none is served: a source nobody calls any more fetches at most one token
// after its last call.
func (c *tokenCache) onTimer() {
	if c.gone.Load() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	switch c.state(now) {
	case lifecycle.Stale:
		if c.current.Load().used.Load() {
			c.refreshIfDue(now)
		}
	case lifecycle.Empty, lifecycle.Expired:
		if c.wanted {
			c.refreshIfDue(now)
		}
	}
}

// newSource is a Source over c, whose cache stops, and lets go of its
// context, once nobody holds the Source any more: a context that lives
// longer than the Source (an app's root context, say) keeps no cache of
// it alive, with its Config and its last token.
func newSource(c *tokenCache) *Source {
	s := &Source{c}
	runtime.AddCleanup(s, func(c *tokenCache) {
		// The cleanup runs on a goroutine of its own: it leaves the timer,
		// which may belong to a testing/synctest bubble, to see gone, fire
		// once more at most and stop.
		c.gone.Store(true)
		c.unhook()
	}, c)
	return s
}

// stop stops the timer for good, once the source's context is done.
func (c *tokenCache) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
	if c.timer != nil {
		c.timer.Stop()
	}
}

// start begins a fetch in the background. c.mu must be held.
func (c *tokenCache) start() *flight {
	f := &flight{done: make(chan struct{})}
	c.inflight = f
	c.wanted = false
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
		c.arm(c.failures.RetryAt) // onTimer retries if the token is still wanted

		return c.fetchFailed(f, now)
	}
	records := c.recovered(now)
	c.failures = lifecycle.Failures{}
	c.tok, c.life, c.sched = f.tok, f.tok.Expiry.Sub(now), c.plan().Schedule(now, f.tok.Expiry)
	c.install(f.tok, c.sched)
	c.current.Load().used.Store(f.waited)
	c.arm(c.sched.RefreshAt)
	return append(records, c.fetched(f)...)
}

// plan is how each token's lifetime is spent: see [lifecycle.Plan].
func (c *tokenCache) plan() lifecycle.Plan {
	early := c.conf.earlyExpiry()
	return lifecycle.Plan{Early: early, JitterShare: refreshJitterShare, MaxMargin: min(expiryMargin, early/2), MarginShare: serveMarginShare}
}

// rejection is what reject did.
type rejection struct {
	dropped bool
	again   bool // tok came after an earlier drop, and no token was taken since
}

// reject drops tok if it is still the current token and the floor since
// the last drop has passed, so that the next call fetches. path names
// where the rejection came from (see [Transport.path]); "" if unknown.
func (c *tokenCache) reject(tok *oauth2.Token, path string) rejection {
	if tok == nil {
		return rejection{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	n := c.rejections.Load()
	r := rejection{again: n > 0}
	if c.tok == nil || c.tok.AccessToken != tok.AccessToken || now.Sub(c.rejectedAt) < c.floor(n) {
		return r
	}
	r.dropped = true
	c.rejections.Add(1)
	c.rejectedAt, c.rejectedOn = now, path
	c.tok = nil
	c.install(nil, lifecycle.Schedule{})
	return r
}

// floor is the least time between the n-th drop and the next: rejectFloor
// after one, doubling with each drop since, up to the token's lifetime.
func (c *tokenCache) floor(n int32) time.Duration {
	if n <= 1 {
		return rejectFloor
	}
	return min(rejectFloor<<min(n-1, 20), max(c.life, rejectFloor))
}

// accepted notes that the API took the access token on path: if it is
// the current token's, and the path the drops came from (or they came
// from one unknown), the floor between drops is back to rejectFloor. A
// client whose tokens are taken does not reset the floor of one whose
// tokens are rejected over the same source. It costs one atomic load
// unless tokens were dropped.
func (c *tokenCache) accepted(token, path string) {
	if c.rejections.Load() == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok != nil && c.tok.AccessToken == token && (c.rejectedOn == "" || c.rejectedOn == path) {
		c.rejections.Store(0)
	}
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
