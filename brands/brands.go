// Package brands serves many LivePerson accounts (brands) from one
// connector: an app installation per account, looked up when the account
// is first used, with one HTTP client and one webhook endpoint for all of
// them.
//
// [Config.Lookup] says what an account's installation is: its client id
// and secret, from wherever the connector keeps them. [Config.NewCache]
// returns a [Cache] that looks each brand up on first use and keeps, per
// brand, an [appjwt.Source], a [consumerjws.Cache], the Send API host and
// the webhook secrets:
//
//	brands, err := brands.Config{Lookup: lookup}.NewCache(ctx)
//	client := brands.Client()              // the brand is the URL's /api/account/{account}/
//	host, err := brands.SendAPIHost(ctx, account)
//	verifier, err := brands.NewVerifier(webhook.Config{})
//
// One brand's values never serve another's request: the client takes the
// brand from the request's URL (or [WithAccount]), and a request for an
// account the lookup does not know fails before anything is sent.
//
// A Cache is bounded and keeps brands apart: it holds at most
// Config.MaxBrands brands, drops those unused for Config.IdleTimeout,
// stopping everything they started; it remembers a failed lookup, so that
// a flood of forged account ids costs one lookup per id, and an unknown id
// sent again costs none for 5 minutes; each brand has its own token
// source, backoff and rejection floors, so that one brand's Sentinel
// outage changes nothing for the others; and at most Config.MaxFetches
// lookups and requests for tokens and hosts run at once, across all
// brands.
//
// While an installation's secret is rotated, [Installation] may hold two
// live secrets: webhooks signed with either verify, and the token side
// moves to the other when Sentinel answers invalid_client, looking the
// installation up again, at most once a minute, if neither is taken.
// Every Config.LookupTTL, a brand in use is looked up again.
//
// Errors are one line, prefixed "brands: ", and never show a secret or a
// token.
package brands

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/lpconnect/appjwt/internal/lifecycle"
	"github.com/lpconnect/appjwt/internal/lphttp"
	"github.com/lpconnect/appjwt/secret"
	"github.com/lpconnect/appjwt/store"
	"github.com/lpconnect/appjwt/webhook"
	"golang.org/x/oauth2"
)

// The defaults of [Config]'s zero values, and the Cache's fixed bounds.
const (
	defaultMaxBrands   = 10000
	defaultIdleTimeout = time.Hour
	defaultLookupTTL   = time.Hour
	defaultMaxFetches  = 64

	// lookupTimeout bounds one call of Config.Lookup.
	lookupTimeout = 30 * time.Second
	// unknownTTL is how long an account the lookup does not know is
	// remembered as such, and failedTTL a lookup that failed otherwise.
	unknownTTL = 5 * time.Minute
	failedTTL  = 30 * time.Second
	// maxPendingLookups bounds the lookups waiting for one of the
	// MaxFetches slots: beyond it, an account not yet known fails at once.
	maxPendingLookups = 1024
	// maxAccountLen is the longest account id taken; LivePerson's are
	// some 8 digits.
	maxAccountLen = 64
)

// ErrUnknownBrand is what [Config.Lookup] returns, or wraps, for an
// account the connector does not serve; [errors.Is] finds it in the
// errors of a request or lookup for such an account.
var ErrUnknownBrand = errors.New("brands: no such brand")

// unknownBrand is the error of an account the lookup does not know.
type unknownBrand string

func (u unknownBrand) Error() string {
	return "brands: account " + string(u) + " is no brand of this connector"
}

func (unknownBrand) Unwrap() error { return ErrUnknownBrand }

// Installation is an account's LivePerson app installation, as
// [Config.Lookup] finds it.
type Installation struct {
	// ClientID is the app installation ID. Required.
	ClientID string

	// ClientSecret is the installation's secret. Required.
	ClientSecret secret.String

	// PreviousSecret, while the secret is rotated, is the other live
	// secret: webhooks signed with it verify too, and the token side uses
	// it if Sentinel refuses ClientSecret with invalid_client. Empty: one
	// secret.
	PreviousSecret secret.String

	// DomainAPI is the Domain API host or host:port. Empty:
	// "api.liveperson.net".
	DomainAPI string
}

// Config describes the brands a [Cache] serves. It is plain data, copied
// by [Config.NewCache].
type Config struct {
	// Lookup returns the installation of account, or an error that is or
	// wraps [ErrUnknownBrand] for an account the connector does not serve.
	// Required. It gets account ids as sent, from webhooks too: untrusted
	// input, though only ids of up to 64 letters, digits, '-' and '_'. It
	// is called for one account at a time, at most MaxFetches calls at
	// once (shared with the brands' fetches), each with a context that
	// ends within 30 s, and from several goroutines. Its errors show in
	// the Cache's, so they should hold no secret.
	Lookup func(ctx context.Context, account string) (Installation, error) `json:"-"`

	// MaxBrands bounds the brands held; beyond it, the least recently used
	// is dropped, as after IdleTimeout. It also bounds the failed lookups
	// remembered. Zero: 10,000.
	MaxBrands int

	// IdleTimeout is how long a brand no request, webhook or host lookup
	// used is held: then, within half an IdleTimeout more, it is dropped,
	// and everything it started stopped. Zero: an hour.
	IdleTimeout time.Duration

	// LookupTTL is how long an installation is used before it is looked
	// up again, in the background, while the brand is in use. Zero: an
	// hour.
	LookupTTL time.Duration

	// MaxFetches bounds the lookups and the requests for tokens and hosts
	// (Sentinel, the Domain API, the idp) in flight across all brands:
	// more wait. Zero: 64.
	MaxFetches int

	// Logger is every brand's appjwt.Config.Logger and
	// consumerjws.Config.Logger. Nil: nothing is logged.
	Logger *slog.Logger `json:"-"`

	// Store, if set, is what the connector's replicas share: every
	// brand's appjwt.Config.Store and consumerjws.Config.Store, so that a
	// fleet costs LivePerson the load of one replica (one Sentinel request
	// per brand per refresh, one idp request per consumer, for the whole
	// fleet), and the de-duplication of every brand's webhooks by
	// [Cache.Seen], [Cache.Done] and [Cache.Forget], as
	// [webhook.DedupConfig]'s Dedup does with its defaults. What a brand
	// stores is sealed under a key derived from its installation's client
	// secret, under keys of one Redis Cluster hash tag per brand. Nil:
	// each replica on its own. docs/fleet.md.
	Store store.Store `json:"-"`
}

// NewCache checks c and returns a Cache of its brands, or an error naming
// the field that is wrong.
//
// ctx is kept: it supplies the HTTP client, under [oauth2.HTTPClient], of
// every brand's fetches and of [Cache.Client], and once cancelled it stops
// everything the Cache started. It should live as long as the Cache.
func (c Config) NewCache(ctx context.Context) (*Cache, error) {
	for _, f := range []struct {
		name string
		n    int64
	}{{"MaxBrands", int64(c.MaxBrands)}, {"IdleTimeout", int64(c.IdleTimeout)}, {"LookupTTL", int64(c.LookupTTL)}, {"MaxFetches", int64(c.MaxFetches)}} {
		if f.n < 0 {
			return nil, fmt.Errorf("brands: Config.%s is negative", f.name)
		}
	}
	if c.Lookup == nil {
		return nil, errors.New("brands: Config.Lookup is nil")
	}
	c.MaxBrands = cmp.Or(c.MaxBrands, defaultMaxBrands)
	c.IdleTimeout = cmp.Or(c.IdleTimeout, defaultIdleTimeout)
	c.LookupTTL = cmp.Or(c.LookupTTL, defaultLookupTTL)
	c.MaxFetches = cmp.Or(c.MaxFetches, defaultMaxFetches)

	hc, _ := ctx.Value(oauth2.HTTPClient).(*http.Client)
	if hc == nil {
		hc = http.DefaultClient
	}
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	dedup := webhook.NewDedup(0, 0)
	if c.Store != nil {
		var err error
		if dedup, err = (webhook.DedupConfig{Store: c.Store}).NewDedup(); err != nil {
			return nil, fmt.Errorf("brands: Config.Store: %w", err)
		}
	}
	k := &Cache{
		ctx:           ctx,
		conf:          c,
		slots:         make(chan struct{}, c.MaxFetches),
		finding:       make(chan struct{}, c.MaxFetches),
		hookedFinding: make(chan struct{}, max(c.MaxFetches/2, 1)),
		base:          base,
		dedup:         dedup,
		brands:        map[string]*brand{},
		misses:        map[string]*miss{},
		flights:       map[string]*lifecycle.Flight[*brand]{},
	}
	k.client = &http.Client{Transport: &router{k}, CheckRedirect: hc.CheckRedirect, Jar: hc.Jar, Timeout: hc.Timeout}
	// The brands' fetches go through the slots; only their connections
	// and timeouts come from the user's client.
	k.fetchClient = &http.Client{Transport: &limited{k.slots, base}, Timeout: hc.Timeout}
	k.fetchCtx = context.WithValue(ctx, oauth2.HTTPClient, k.fetchClient)
	context.AfterFunc(ctx, k.stop)
	return k, nil
}

// Cache holds the brands a connector serves. It is safe for concurrent
// use.
type Cache struct {
	// Fixed once made.
	ctx           context.Context
	fetchCtx      context.Context // ctx with fetchClient
	fetchClient   *http.Client    // of the brands' fetches, through the slots
	conf          Config
	slots         chan struct{} // MaxFetches: one per fetch request in flight
	finding       chan struct{} // MaxFetches: one per Config.Lookup call running
	hookedFinding chan struct{} // half as many: one per lookup a notification started
	base          http.RoundTripper
	client        *http.Client
	dedup         *webhook.Dedup

	mu      sync.RWMutex
	brands  map[string]*brand
	misses  map[string]*miss                     // failed lookups, while remembered
	missed  []string                             // the misses' accounts, oldest first, some forgotten since
	flights map[string]*lifecycle.Flight[*brand] // the first lookups running
	hooked  int                                  // of flights, those a notification started
	sweep   *time.Timer                          // drops idle brands; nil while none is held
	stopped bool
}

// miss is a failed lookup, remembered until until.
type miss struct {
	err       error
	at, until time.Time
}

// get returns account's brand, looking it up if it is not held, and
// notes its use.
func (c *Cache) get(ctx context.Context, account string) (*brand, error) {
	return c.getFor(ctx, account, false)
}

// getFor is get; byWebhook: for a notification, whose first lookups may
// take only half the queue, so that forged notifications, which anyone
// can send, cannot keep a request's brand from being looked up.
func (c *Cache) getFor(ctx context.Context, account string, byWebhook bool) (*brand, error) {
	now := time.Now()
	c.mu.RLock()
	b := c.brands[account]
	c.mu.RUnlock()
	if b != nil {
		b.used(now)
		return b, nil
	}
	return c.load(ctx, account, now, byWebhook)
}

// load waits for the first lookup of account, starting it unless one runs
// or a failed one is remembered; for a webhook, at most webhookLookupWait.
func (c *Cache) load(ctx context.Context, account string, now time.Time, byWebhook bool) (*brand, error) {
	if byWebhook {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, webhookLookupWait)
		defer cancel()
	}
	if err := checkAccount(account); err != nil {
		return nil, err
	}
	c.mu.Lock()
	if b := c.brands[account]; b != nil {
		c.mu.Unlock()
		b.used(now)
		return b, nil
	}
	if m := c.misses[account]; m != nil && now.Before(m.until) {
		c.mu.Unlock()
		return nil, m.err
	}
	f := c.flights[account]
	switch {
	case f != nil:
	case c.stopped:
		c.mu.Unlock()
		return nil, fmt.Errorf("brands: the Cache's context is done: %w", c.ctx.Err())
	case len(c.flights) >= maxPendingLookups || byWebhook && c.hooked >= maxPendingLookups/2:
		n := len(c.flights)
		c.mu.Unlock()
		return nil, fmt.Errorf("brands: %d lookups are waiting already, the most a Cache queues", n)
	default:
		f = lifecycle.NewFlight[*brand]()
		c.flights[account] = f
		if byWebhook {
			c.hooked++
		}
		go c.lookup(account, f, byWebhook)
	}
	c.mu.Unlock()
	b, err := f.Wait(ctx, "brands: waiting for the lookup of account "+account)
	if b != nil {
		b.used(time.Now())
	}
	return b, err
}

// checkAccount refuses, before any lookup, an account id that none of
// LivePerson's is like.
func checkAccount(account string) error {
	if account == "" || len(account) > maxAccountLen {
		return errors.New("brands: an account id is 1 to 64 characters long")
	}
	for i := 0; i < len(account); i++ {
		switch b := account[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9', b == '-', b == '_':
		default:
			return errors.New("brands: an account id has only letters, digits, '-' and '_'")
		}
	}
	return nil
}

// lookup runs the first lookup of account, and holds its brand, or
// remembers its failure.
func (c *Cache) lookup(account string, f *lifecycle.Flight[*brand], byWebhook bool) {
	inst, err := c.find(c.ctx, account, byWebhook)
	var b *brand
	var dropped []*brand
	c.mu.Lock()
	delete(c.flights, account)
	if byWebhook {
		c.hooked--
	}
	now := time.Now()
	switch {
	case err != nil:
		c.remember(account, err, now)
	case c.stopped:
		err = fmt.Errorf("brands: the Cache's context is done: %w", c.ctx.Err())
	default:
		b = c.newBrand(account, inst, now)
		c.brands[account] = b
		delete(c.misses, account)
		dropped = c.overLimit()
		if c.sweep == nil {
			c.sweep = time.AfterFunc(c.conf.IdleTimeout/2, c.dropIdle)
		}
	}
	c.mu.Unlock()
	for _, d := range dropped {
		d.stop()
	}
	f.End(b, err)
}

// find calls Config.Lookup in a slot, under ctx, and checks its answer.
func (c *Cache) find(ctx context.Context, account string, byWebhook bool) (Installation, error) {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	// Slots of their own: lookups never hold up a brand's token fetches;
	// and those of notifications, which anyone can send, take at most half.
	slots := []chan struct{}{c.finding}
	if byWebhook {
		slots = []chan struct{}{c.hookedFinding, c.finding}
	}
	for i, sl := range slots {
		select {
		case sl <- struct{}{}:
		case <-ctx.Done():
			for _, taken := range slots[:i] {
				<-taken
			}
			return Installation{}, fmt.Errorf("brands: lookup of account %s: %w", account, ctx.Err())
		}
	}
	inst, err := c.conf.Lookup(ctx, account)
	for _, sl := range slots {
		<-sl
	}
	switch {
	case errors.Is(err, ErrUnknownBrand):
		return Installation{}, unknownBrand(account)
	case err != nil:
		return Installation{}, fmt.Errorf("brands: lookup of account %s: %w", account, err)
	case inst.ClientID == "" || inst.ClientSecret == "":
		return Installation{}, fmt.Errorf("brands: lookup of account %s: the Installation has no ClientID or ClientSecret", account)
	case inst.ClientSecret.IsRedacted() || inst.PreviousSecret.IsRedacted():
		return Installation{}, fmt.Errorf("brands: lookup of account %s: a secret of the Installation is %s", account, secret.Redacted)
	}
	return inst, nil
}

// remember notes a failed lookup of account, forgetting the oldest one
// beyond MaxBrands. c.mu must be held.
func (c *Cache) remember(account string, err error, now time.Time) {
	ttl := failedTTL
	if errors.Is(err, ErrUnknownBrand) {
		ttl = unknownTTL
	}
	if _, ok := c.misses[account]; !ok {
		for len(c.misses) >= c.conf.MaxBrands { // the oldest first, in O(1) each
			delete(c.misses, c.missed[0])
			c.missed = c.missed[1:]
		}
		if len(c.missed) > 2*c.conf.MaxBrands { // accounts forgotten or found since
			c.missed = slices.DeleteFunc(c.missed, func(a string) bool { return c.misses[a] == nil })
		}
		c.missed = append(c.missed, account)
	}
	c.misses[account] = &miss{err: err, at: now, until: now.Add(ttl)}
}

// overLimit drops the least recently used brands beyond MaxBrands, and
// returns them, for the caller to stop once c.mu is released. c.mu must
// be held.
func (c *Cache) overLimit() []*brand {
	var dropped []*brand
	for len(c.brands) > c.conf.MaxBrands {
		var lru *brand
		for _, b := range c.brands {
			if lru == nil || b.lastUsed.Load() < lru.lastUsed.Load() {
				lru = b
			}
		}
		delete(c.brands, lru.account)
		dropped = append(dropped, lru)
	}
	return dropped
}

// dropIdle drops the brands unused for IdleTimeout, and runs again while
// any is held.
func (c *Cache) dropIdle() {
	idle := time.Now().Add(-c.conf.IdleTimeout).UnixNano()
	var dropped []*brand
	c.mu.Lock()
	for a, b := range c.brands {
		if b.lastUsed.Load() <= idle {
			delete(c.brands, a)
			dropped = append(dropped, b)
		}
	}
	switch {
	case c.stopped:
	case len(c.brands) == 0:
		c.sweep = nil
	default:
		c.sweep.Reset(c.conf.IdleTimeout / 2)
	}
	c.mu.Unlock()
	for _, b := range dropped {
		b.stop()
	}
}

// drop drops account's brand b, if it is still held, and remembers err.
func (c *Cache) drop(b *brand, err error) {
	c.mu.Lock()
	held := c.brands[b.account] == b
	if held {
		delete(c.brands, b.account)
		c.remember(b.account, err, time.Now())
	}
	c.mu.Unlock()
	if held {
		b.stop()
	}
}

// stop drops every brand once the Cache's context is done.
func (c *Cache) stop() {
	c.mu.Lock()
	c.stopped = true
	if c.sweep != nil {
		c.sweep.Stop()
	}
	all := c.brands
	c.brands = map[string]*brand{}
	c.mu.Unlock()
	for _, b := range all {
		b.stop()
	}
}

// limited is the transport of the brands' fetches: at most cap(slots)
// requests in flight, across all brands.
type limited struct {
	slots chan struct{}
	base  http.RoundTripper
}

func (l *limited) RoundTrip(req *http.Request) (*http.Response, error) {
	select {
	case l.slots <- struct{}{}:
	case <-req.Context().Done():
		lphttp.CloseBody(req)
		return nil, fmt.Errorf("brands: waiting for one of the %d fetches in flight to end: %w", cap(l.slots), req.Context().Err())
	}
	defer func() { <-l.slots }()
	return l.base.RoundTrip(req)
}
