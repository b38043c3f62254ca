package appjwt

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"github.com/lpconnect/appjwt/internal/domain"
	"github.com/lpconnect/appjwt/internal/lifecycle"
	"github.com/lpconnect/appjwt/internal/lphttp"
	"github.com/lpconnect/appjwt/internal/shared"
	"github.com/lpconnect/appjwt/secret"
	"golang.org/x/oauth2"
)

// Source is the cached AppJWT source that [Config.TokenSource] returns. It
// is safe for concurrent use, and may be shared by any number of clients,
// transports and direct callers: however many call it at once, one fetch
// reaches Sentinel. It refreshes each token in the background, before any
// caller has to wait, as long as the token is in use; a Source nobody
// calls any more fetches at most one more token, and one nobody holds is
// collected. docs/behaviour.md has the numbers.
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
// does not cancel the fetch, which goes on for the others.
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
// starts the refresh.
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
// are rejected as well, the least time between two drops doubles (5 s,
// 10 s, 20 s, ... up to the token's lifetime) until the API takes a token
// again, as [Transport] tells the source.
func (s *Source) Reject(tok *oauth2.Token) {
	s.cache.reject(tok, "")
}

// State returns the source's state now, for a readiness check. It waits
// for nothing, so that a health handler may call it as often as it likes.
//
// A call to State counts as a call for a token: a source that serves none
// starts a fetch in the background, unless one is running or it is
// backing off, and keeps retrying, once per backoff step, for 5 minutes
// after the last call; a source that serves one keeps it fresh. So a
// readiness check built on State alone turns ready with no other traffic
// (docs/behaviour.md has the bounds).
func (s *Source) State() State {
	c := s.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.invalid == nil {
		c.want(now)
	}
	st := State{
		Fetching:    c.inflight != nil,
		Failures:    c.failures.N,
		LastError:   c.failures.Err,
		LastErrorAt: c.failures.At,
		RetryAt:     c.failures.RetryAt,
	}
	if c.invalid != nil {
		st.LastError = c.invalid
	}
	if c.state(now).Servable() {
		sn := c.current.Load()
		st.Valid, st.Expiry, st.RefreshAt = true, sn.tok.Expiry, sn.sched.RefreshAt
	}
	return st
}

// What a Source is to [Transport] as [recovering]: its token unshared, and
// what the API did with it on a path (see [Transport]).

func (s *Source) sharedToken(ctx context.Context) (*oauth2.Token, error) { return s.token(ctx) }
func (s *Source) rejected(tok *oauth2.Token, path string) bool           { return s.cache.reject(tok, path) }
func (s *Source) accepted(tok *oauth2.Token, path string)                { s.cache.accepted(tok.AccessToken, path) }
func (s *Source) rejecting() bool                                        { return s.cache.floor.Rejecting() }

func (s *Source) logRejected(ctx context.Context, attrs ...slog.Attr) {
	if c := s.cache; c.log != nil {
		c.log.LogAttrs(ctx, slog.LevelWarn, msgRejected, append(c.who(), attrs...)...)
	}
}

// snapshot serves the current token until its refresh point without the
// cache's lock, as the AWS SDK's CredentialsCache does: it never changes
// once stored, but for used, which keeps the refresh timer going.
type snapshot struct {
	tok   *oauth2.Token // the newest good token, never modified; nil: none
	sched lifecycle.Schedule
	used  atomic.Bool // a caller asked for a token since it was stored
	due   atomic.Bool // a caller found it stale, and asked for a refresh
}

// tokenCache is the cache behind [Source]: its token is in one of the
// states of [lifecycle.State]. Nothing waits while holding mu, which is
// held only to read or change the fields below it.
type tokenCache struct {
	// Fixed once made.
	ctx     context.Context
	conf    Config               // without its secret: fmt prints an unexported field raw
	secret  func() secret.String // conf's, out of fmt's reach
	invalid error                // a Config error: every call returns it
	hooks
	log    *slog.Logger // nil: no logging
	domain *domain.Cache
	slot   *shared.Slot // in Config.Store; nil: none

	current atomic.Pointer[snapshot] // the newest good token, if any; replaced under mu
	floor   lifecycle.Floor          // of rejected; its counter is read without mu
	gone    atomic.Bool              // nobody holds the Source: the timer stops

	mu       sync.Mutex
	sealed   []byte // current's token as the Store holds it; nil if it does not
	dropped  string // the access token last dropped: none to take from the Store
	failures lifecycle.Failures
	life     time.Duration        // current's token's lifetime when it came
	rejected lifecycle.Rejections // the drops since the API last took a token
	wantedAt time.Time            // when a token was last asked for while none was served
	inflight *lifecycle.Flight[*oauth2.Token]
	waited   bool        // callers wait for inflight: its token is in use
	timer    *time.Timer // starts the next refresh or retry in the background
	stopped  bool        // ctx is done: no timer, no fetch
	unhook   func() bool // forgets the stop that ctx's end calls
}

// hooks are the package's test seam: what a test may set when it makes a
// cache, and all it may see of the cache beyond the Source's methods. The
// zero value is what [Config.TokenSource] uses.
type hooks struct {
	now     func() time.Time // the clock; nil: time.Now
	retry   lphttp.Policy    // the retries of one fetch; zero: lphttp.Default
	backoff lphttp.Backoff   // after a failed fetch; zero: lifecycle.FailureBackoff
	running *atomic.Int32    // if set, counts the fetches under way
}

// retryWindow is how long after the last call for a token a source that
// serves none keeps retrying on its timer, once per backoff step: longer
// than any readiness probe's period, so that a probe alone keeps it
// trying, and short enough that a source nobody calls stops soon.
const retryWindow = 5 * time.Minute

func newTokenCache(ctx context.Context, c Config, h hooks) *tokenCache {
	if h.now == nil {
		h.now = time.Now
	}
	if h.retry.Attempts == 0 {
		h.retry = lphttp.Default
	}
	if h.backoff.Max == 0 {
		h.backoff = lifecycle.FailureBackoff
	}
	h.retry.Now = h.now
	invalid, key := c.validate(), c.ClientSecret
	var slot *shared.Slot
	if invalid == nil {
		slot = newSlot(&c, h.now)
	}
	c.ClientSecret = ""
	tc := &tokenCache{ctx: ctx, conf: c, secret: func() secret.String { return key }, invalid: invalid, hooks: h, log: c.Logger, slot: slot}
	tc.domain = &domain.Cache{Fixed: c.Domain, API: c.domainAPI(), Account: c.AccountID, Service: sentinelService, Backoff: h.backoff, Now: h.now}
	tc.current.Store(&snapshot{})
	tc.unhook = context.AfterFunc(ctx, tc.stop)
	return tc
}

// newSource is a Source over c, whose cache lets go of its context once
// nobody holds the Source, so that a long-lived context keeps no cache
// alive. The timer, which may belong to a testing/synctest bubble that the
// cleanup's goroutine is outside of, sees gone and does nothing.
func newSource(c *tokenCache) *Source {
	s := &Source{c}
	runtime.AddCleanup(s, func(c *tokenCache) { c.gone.Store(true); c.unhook() }, c)
	return s
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
		tok := c.current.Load().tok
		c.mu.Unlock()
		return tok, nil
	}
	c.wantedAt = now
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
	c.waited = true
	c.mu.Unlock()
	return f.Wait(ctx, "appjwt: waiting for a token from Sentinel")
}

// config is the cache's Config, its secret included.
func (c *tokenCache) config() *Config { conf := c.conf; conf.ClientSecret = c.secret(); return &conf }

// state is the state of the cache's token at now. c.mu must be held.
func (c *tokenCache) state(now time.Time) lifecycle.State {
	sn := c.current.Load()
	if sn.tok == nil {
		return lifecycle.Empty
	}
	return sn.sched.State(now)
}

// want notes a call for a token at now: it keeps the token served fresh,
// and starts a fetch if none is served and none can be waited for. c.mu
// must be held.
func (c *tokenCache) want(now time.Time) {
	c.current.Load().used.Store(true)
	if !c.state(now).Servable() {
		c.wantedAt = now
		c.refreshIfDue(now)
	}
}

func (c *tokenCache) refreshNow() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); c.state(now) == lifecycle.Stale {
		c.refreshIfDue(now)
	}
}

// refreshIfDue starts a fetch, unless one is running, the cache is
// backing off, or its context is done. c.mu must be held.
func (c *tokenCache) refreshIfDue(now time.Time) {
	if c.inflight == nil && !c.failures.BackingOff(now) && !c.stopped {
		c.start()
	}
}

// arm sets the timer to start the next refresh, or retry, at at, so that
// the token in use is replaced before any caller has to wait: x/oauth2's
// wrappers ask only shortly before its expiry. The timer holds the cache
// weakly: a pending timer, which the runtime keeps until it fires, keeps
// no cache that nobody holds alive. c.mu must be held.
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
// asked for since the last one came, or, while none is served, within
// retryWindow: a source nobody calls any more fetches at most one token
// after its last call, and gives up retrying retryWindow after it.
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
		if now.Sub(c.wantedAt) <= retryWindow {
			c.refreshIfDue(now)
		}
	}
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
func (c *tokenCache) start() *lifecycle.Flight[*oauth2.Token] {
	f := lifecycle.NewFlight[*oauth2.Token]()
	c.inflight, c.waited = f, false
	if c.running != nil {
		c.running.Add(1)
	}
	go c.refresh(f)
	return f
}

func (c *tokenCache) refresh(f *lifecycle.Flight[*oauth2.Token]) {
	start := c.now()
	r := c.obtain()
	if r.domain.RelookupErr != nil {
		r.records = c.relookupFailed(r.domain)
	}
	r.took = c.now().Sub(start)
	records := append(r.records, c.settle(&r)...)
	// After settle's lock, as a handler may call back into the source (it
	// finds the outcome there); before the flight ends, so that a fetch's
	// records are written by the time its callers return.
	lifecycle.Write(c.ctx, c.log, records)
	f.End(r.tok, r.err)
	if c.running != nil {
		c.running.Add(-1)
	}
}

// settle records how fetch r ended, and returns what to log about it once
// c.mu is released: a log handler may well call back into the source.
func (c *tokenCache) settle(r *fetched) []lifecycle.Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inflight = nil
	now := c.now()
	if r.err == nil && !r.tok.Expiry.After(now) {
		r.tok, r.err = nil, fmt.Errorf("appjwt: token from %s expired as it arrived", r.host)
	}
	if r.err != nil {
		c.failures.Add(r.err, now, c.backoff)
		for _, at := range []time.Time{c.domain.RetryAt(), r.retryAt} {
			if at.After(c.failures.RetryAt) {
				c.failures.RetryAt = at // a retry before it would fail at once
			}
		}
		c.arm(c.failures.RetryAt) // onTimer retries if a token is still wanted
		return c.fetchFailed(r, now)
	}
	records := c.recovered(now)
	c.failures = lifecycle.Failures{}
	c.sealed, c.life = r.sealed, r.tok.Expiry.Sub(now)
	sn := &snapshot{tok: r.tok, sched: lifecycle.AppJWTPlan(c.conf.earlyExpiry()).Schedule(now, r.tok.Expiry)}
	sn.used.Store(c.waited)
	c.current.Store(sn)
	c.arm(sn.sched.RefreshAt)
	return append(records, c.fetched(r)...)
}

// reject drops tok, so that the next call fetches, if it is still the
// current token and the rejection floor (capped at its lifetime) lets it.
// path is where the rejection came from, "" if unknown. again: tok came
// after an earlier drop, and no token was taken since.
func (c *tokenCache) reject(tok *oauth2.Token, path string) (again bool) {
	if tok == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.current.Load().tok; cur == nil || cur.AccessToken != tok.AccessToken {
		return c.floor.Rejecting()
	}
	dropped, again := c.floor.Drop(&c.rejected, c.now(), path, c.life)
	if dropped {
		c.dropShared(tok)
		c.current.Store(&snapshot{})
	}
	return again
}

// accepted notes that the API took the access token on path, which ends
// the rejection floor of the current token; one atomic load if none.
func (c *tokenCache) accepted(token, path string) {
	if !c.floor.Rejecting() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.current.Load().tok; cur != nil && cur.AccessToken == token {
		c.floor.Accept(&c.rejected, path)
	}
}
