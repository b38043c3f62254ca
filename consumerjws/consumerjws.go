// Package consumerjws obtains and caches the ConsumerJWS of each end
// consumer a LivePerson connector serves, and puts it on the connector's
// Send API requests.
//
// A connector acts on behalf of consumers: every Send API request carries
// the app's AppJWT in Authorization and the consumer's ConsumerJWS in
// X-LP-ON-BEHALF. LivePerson's idp issues a ConsumerJWS for an
// ext_consumer_id:
//
//	POST https://{idp}/api/account/{account}/consumer?v=1.0
//	Authorization: <AppJWT>
//
//	{"ext_consumer_id":"..."}
//
// and answers 201 {"token":"<ConsumerJWS>"}.
//
// [Config] describes where to ask and with which AppJWT; [Config.NewCache]
// returns a [Cache] that fetches each consumer's ConsumerJWS once and keeps
// it; [Transport] sets X-LP-ON-BEHALF for the consumer that [WithConsumer]
// put in a request's context, and recovers when the Send API rejects the
// ConsumerJWS. With an [appjwt.Transport] as its Base, one client recovers
// from either token being rejected:
//
//	client := &http.Client{Transport: &consumerjws.Transport{
//		Cache: cache,
//		Base:  &appjwt.Transport{Source: appJWTs},
//	}}
//	req = req.WithContext(consumerjws.WithConsumer(ctx, "john_doe_42"))
//	resp, err := client.Do(req)
//
// A Cache bounds its memory, the fetches it runs, and the load any failure
// puts on LivePerson; errors are one line, prefixed "consumerjws: ", and
// neither they nor log records show a token or an ext_consumer_id, which
// often names a person. The repository's docs/consumerjws.md gives each
// rule and bound as a number, and the log records [Config.Logger] gets.
package consumerjws

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/lpconnect/appjwt/internal/domain"
	"github.com/lpconnect/appjwt/internal/lifecycle"
	"github.com/lpconnect/appjwt/internal/lphttp"
	"github.com/lpconnect/appjwt/internal/shared"
	"github.com/lpconnect/appjwt/secret"
	"github.com/lpconnect/appjwt/store"
	"golang.org/x/oauth2"
)

// Defaults and bounds.
const (
	// defaultMaxConsumers is how many consumers a Cache keeps when
	// Config.MaxConsumers is zero.
	defaultMaxConsumers = 10000
	// defaultFetchTimeout bounds one fetch of a ConsumerJWS, idp lookup
	// and retries included, when Config.FetchTimeout is zero.
	defaultFetchTimeout = 30 * time.Second
	// maxConsumerIDLen is the longest ext_consumer_id accepted, in bytes.
	// LivePerson documents none; 256 bytes holds any user id, e-mail
	// address or phone number in practice.
	maxConsumerIDLen = 256
	// maxConsumerJWSLen is the longest ConsumerJWS kept, in bytes: with
	// MaxConsumers, it bounds a Cache's memory. LivePerson's sample is
	// some 600 bytes long.
	maxConsumerJWSLen = 8 << 10
	// maxFetches bounds the fetches a Cache runs at once, and so the
	// connections and goroutines a flood of new consumers can cause:
	// beyond it, Token fails at once for a consumer it has no ConsumerJWS
	// for, and background refreshes wait.
	maxFetches = 256
)

// Config describes how to obtain the ConsumerJWS of an account's consumers.
//
// A Config is plain data: it is safe to copy, and [Config.NewCache] copies
// it, so later changes do not affect a Cache.
type Config struct {
	// AccountID is the LivePerson account (site) ID. Required.
	AccountID string

	// Domain is the idp host, or host:port, such as "va.idp.liveperson.net".
	// Empty: it is looked up with the Domain API (service "idp"), cached
	// for an hour; if a re-lookup fails, the last good host is used and the
	// Domain API is not asked again for 5 minutes. Until a lookup succeeds,
	// a failed one is not tried again, for any consumer, within the backoff
	// after it (docs/consumerjws.md).
	Domain string

	// DomainAPI is the Domain API host or host:port. Empty:
	// "api.liveperson.net".
	DomainAPI string

	// Source supplies the AppJWT, such as appjwt.Config.TokenSource
	// returns for a Config of Sentinel's v1 token API (the default: the
	// Connector API takes no other, and a v2 token fails the fetch with an
	// error that says so). It is sent through an appjwt.Transport, raw,
	// "Authorization: <AppJWT>", and recovers once if the idp rejects it.
	// Required.
	Source oauth2.TokenSource

	// MaxConsumers bounds how many consumers a Cache keeps; beyond it, the
	// least recently used is dropped. Zero: 10,000.
	MaxConsumers int

	// FetchTimeout bounds one fetch of a ConsumerJWS: idp lookup, the
	// wait for an AppJWT, request and retries. Zero: 30 s.
	// The wait for an AppJWT counts only if Source has a TokenContext
	// method, as an *appjwt.Source does; a plain [oauth2.TokenSource]
	// bounds its own.
	FetchTimeout time.Duration

	// Logger receives the records docs/consumerjws.md lists. Nil: nothing
	// is logged.
	Logger *slog.Logger

	// Store is what the replicas of a connector share, so that the fleet
	// makes one idp request per consumer: one replica fetches a
	// consumer's ConsumerJWS, under a lease, and stores it; the others,
	// and replicas started later, take it from the Store. A ConsumerJWS
	// the API rejects is deleted from the Store, and after a failed fetch
	// every replica backs off for that consumer. Nil: none, each Cache on
	// its own. The Store is asked only when a Cache has no ConsumerJWS to
	// serve for a consumer, or one is due for a refresh or rejected, each
	// call within 0.5 s; a Store that fails or hangs leaves each Cache on
	// its own until it answers again. A ConsumerJWS without exp is kept
	// there 24 hours from its fetch; one with exp, until it expires.
	// What the Store holds is sealed (AES-256-GCM) under a key derived
	// from ClientSecret, under keys that name no account or consumer in
	// clear: docs/consumerjws.md.
	Store store.Store

	// ClientSecret is the secret of the app installation whose AppJWTs
	// Source gives, as in its appjwt.Config. It is never sent: with Store,
	// the key that seals what the Cache stores, and the one that names
	// its keys, are derived from it, so that only the installation's
	// replicas can read them. Required with Store; unused without.
	ClientSecret secret.String
}

// NewCache returns a Cache of the ConsumerJWS of c's consumers.
//
// ctx is kept and used for every fetch: it supplies, under
// [oauth2.HTTPClient], the client whose Transport and Timeout the requests
// to the Domain API and the idp use (without one: http.DefaultTransport's
// settings, with response headers capped at 64 KiB), and once cancelled it
// stops all fetches. It should live as long as the Cache, not be a
// request's context. Redirects are never followed.
//
// An invalid Config makes every Token call return the same error, without
// a request.
func (c *Config) NewCache(ctx context.Context) *Cache {
	k := &Cache{
		ctx:     ctx,
		conf:    *c,
		invalid: c.validate(),
		retry:   lphttp.Default,
		backoff: lifecycle.FailureBackoff,
		now:     time.Now,
		max:     c.MaxConsumers,
		timeout: c.FetchTimeout,
		m:       map[string]*entry{},
		flights: map[string]*flight{},
	}
	if k.max == 0 {
		k.max = defaultMaxConsumers
	}
	if k.timeout == 0 {
		k.timeout = defaultFetchTimeout
	}
	k.domain = &domain.Cache{Fixed: c.Domain, API: c.DomainAPI, Account: c.AccountID, Service: idpService, Backoff: k.backoff, Now: func() time.Time { return k.now() }}
	k.client = newClient(ctx, c.Source)
	if c.Store != nil && k.invalid == nil {
		k.keys = shared.NewKeys(string(c.ClientSecret), c.AccountID)
	}
	k.conf.ClientSecret = "" // the keys hold what the Cache needs of it
	return k
}

// idpService is the Domain API's (case-sensitive) name for the idp.
const idpService = "idp"

// validate checks everything that can be checked before any request.
func (c *Config) validate() error {
	if err := lphttp.CheckConfig("consumerjws", c.AccountID, c.Domain, c.DomainAPI); err != nil {
		return err
	}
	switch {
	case c.Source == nil:
		return errors.New("consumerjws: Config.Source is nil")
	case c.MaxConsumers < 0:
		return fmt.Errorf("consumerjws: Config.MaxConsumers %d is negative", c.MaxConsumers)
	case c.FetchTimeout < 0:
		return fmt.Errorf("consumerjws: Config.FetchTimeout %v is negative", c.FetchTimeout)
	case c.Store != nil && c.ClientSecret == "":
		return errors.New("consumerjws: Config.Store is set, and ClientSecret, which seals what goes there, is empty")
	case c.Store != nil && c.ClientSecret.IsRedacted():
		return errors.New("consumerjws: Config.ClientSecret is " + secret.Redacted + ": the Config was read back from redacted JSON or logs")
	}
	return nil
}

// checkConsumerID rejects an ext_consumer_id before any request.
func checkConsumerID(id string) error {
	switch {
	case id == "":
		return errors.New("consumerjws: ext_consumer_id is empty")
	case len(id) > maxConsumerIDLen:
		return fmt.Errorf("consumerjws: ext_consumer_id is %d bytes long, more than %d", len(id), maxConsumerIDLen)
	case !utf8.ValidString(id):
		// JSON would turn the invalid bytes into U+FFFD: two ids, one consumer.
		return errors.New("consumerjws: ext_consumer_id is not valid UTF-8")
	}
	return nil
}

// Cache holds the ConsumerJWS of up to Config.MaxConsumers consumers. It is
// safe for concurrent use: concurrent calls for one consumer make one
// request, and calls for different consumers proceed in parallel, since no
// lock is held during a request. Formatted with any fmt verb, logged or
// written as JSON, a Cache shows the summary [Cache.LogValue] gives, never
// an ext_consumer_id or a token.
type Cache struct {
	// Fixed once made.
	ctx     context.Context
	conf    Config
	invalid error
	client  *http.Client
	retry   lphttp.Policy
	backoff lphttp.Backoff
	now     func() time.Time
	max     int
	timeout time.Duration
	domain  *domain.Cache
	keys    *shared.Keys // of Config.Store; nil: none

	floor lifecycle.Floor // of the entries' rejected

	mu         sync.Mutex
	m          map[string]*entry
	head, tail *entry             // most and least recently used
	flights    map[string]*flight // the running fetches, by consumer, evicted ones too
	idp        idpHealth
}

// entry is one consumer's place in the cache. All fields but id are
// guarded by Cache.mu.
type entry struct {
	id         string
	jws        string               // "" until fetched, and once dropped
	sched      lifecycle.Schedule   // zero: fresh for ever (no exp)
	failures   *lifecycle.Failures  // the fetches that failed in a row; nil: none
	rejected   lifecycle.Rejections // the drops since the API last took its ConsumerJWS
	sealed     []byte               // jws as the Store holds it; nil if it does not
	dropped    string               // the ConsumerJWS last dropped: none to take from the Store
	prev, next *entry               // the LRU list
}

// state is the state of e's ConsumerJWS at now. Cache.mu must be held.
func (e *entry) state(now time.Time) lifecycle.State {
	if e.jws == "" {
		return lifecycle.Empty
	}
	return e.sched.State(now)
}

// backingOff reports whether no fetch for e may start at now, after one
// failed. Cache.mu must be held.
func (e *entry) backingOff(now time.Time) bool {
	return e.failures != nil && e.failures.BackingOff(now)
}

// flight is one fetch of a consumer's ConsumerJWS.
type flight = lifecycle.Flight[string]

// errPrefix starts the package's errors.
const errPrefix = "consumerjws: "

// Token returns the ConsumerJWS of the consumer extConsumerID: the cached
// one, or a new one from the idp, which concurrent callers for that
// consumer share. An empty ext_consumer_id, one longer than
// 256 bytes or one that is not UTF-8 is an error, without a request.
//
// The fetch runs under the Cache's context and FetchTimeout, not under
// ctx: a caller whose ctx ends stops waiting, with an error that wraps
// ctx's, while the fetch goes on for the others. Transient failures (429,
// 5xx, network errors) are tried up to 4 times, with pauses of 0.5, 1 and
// 2 s (jittered, at least 1 s after a 429, longer if Retry-After says so,
// up to 10 s), and not when the pause would pass the fetch's deadline;
// other answers are final.
//
// A failed fetch is remembered, as the repository's docs/consumerjws.md
// says under "Failures and the load on LivePerson": until the backoff after it ends, Token returns its error at
// once, saying so and until when, without a request; [errors.As] still
// finds the [*oauth2.RetrieveError] in it. So does a call refused because
// the idp fails for other consumers.
func (c *Cache) Token(ctx context.Context, extConsumerID string) (string, error) {
	if c.invalid != nil {
		return "", c.invalid
	}
	if err := checkConsumerID(extConsumerID); err != nil {
		return "", err
	}
	c.mu.Lock()
	e := c.m[extConsumerID]
	if e != nil {
		c.touch(e)
		if e.jws != "" && e.sched.RefreshAt.IsZero() { // no exp: fresh for ever, without reading the clock
			jws := e.jws
			c.mu.Unlock()
			return jws, nil
		}
	}
	jws, f, err := c.due(extConsumerID, e)
	c.mu.Unlock()
	if f == nil {
		return jws, err
	}
	return f.Wait(ctx, "consumerjws: waiting for a ConsumerJWS")
}

// due returns the ConsumerJWS of consumer id, whose entry is e (nil if it
// has none), if it may be served now, starting a background refresh if one
// is due; else the fetch to wait for, running or started; else why there
// is none: the consumer's backoff, the idp's, or maxFetches running. A
// call refused leaves the LRU list as it was. c.mu must be held.
func (c *Cache) due(id string, e *entry) (string, *flight, error) {
	now := c.now()
	if e != nil {
		switch e.state(now) {
		case lifecycle.Stale:
			c.refresh(e, now)
			fallthrough
		case lifecycle.Fresh:
			return e.jws, nil, nil
		}
	}
	// Empty or Expired: the caller waits for a fetch.
	if f := c.flights[id]; f != nil {
		if e == nil {
			c.add(id) // evicted while its fetch ran: what the fetch gets is kept
		}
		return "", f, nil
	}
	if e != nil && e.backingOff(now) {
		return "", nil, e.failures.BackoffError(errPrefix)
	}
	probe, err := c.idp.admit(now)
	if err != nil {
		return "", nil, err
	}
	if len(c.flights) >= maxFetches {
		return "", nil, fmt.Errorf("consumerjws: %d ConsumerJWS fetches are running already, the most a Cache runs at once", maxFetches)
	}
	if e == nil {
		c.add(id)
	}
	return "", c.start(id, probe), nil
}

// refresh starts a background refresh of e's ConsumerJWS, unless one is
// running, e or the idp is backing off after a failure, or maxFetches are
// running. c.mu must be held.
func (c *Cache) refresh(e *entry, now time.Time) {
	if c.flights[e.id] != nil || e.backingOff(now) || len(c.flights) >= maxFetches {
		return
	}
	if probe, err := c.idp.admit(now); err == nil {
		c.start(e.id, probe)
	}
}

// Reject reports that the API rejected jws, the ConsumerJWS of the
// consumer extConsumerID. If jws is still that consumer's current
// ConsumerJWS, it is dropped and the next Token call fetches a new one; a
// late report about an older one changes nothing. [Transport] calls it on
// a 401 with errorCode 40103 or 40104.
//
// A consumer's ConsumerJWS is dropped at most once per 5 s, so that an API
// that rejects everything cannot cause a stream of fetches; while each
// ConsumerJWS fetched after a drop is rejected too, new ones are not
// helping, and the least time between two drops doubles (10 s, 20 s, ...
// up to an hour), until the API takes one again, as [Transport] tells the
// Cache. A rejection within that time changes nothing.
func (c *Cache) Reject(extConsumerID, jws string) {
	c.reject(extConsumerID, jws)
}

// start begins a fetch for consumer id in the background; probe: it is the
// one that tries the idp after the idp failed. c.mu must be held.
func (c *Cache) start(id string, probe bool) *flight {
	f := lifecycle.NewFlight[string]()
	if probe {
		c.idp.probe = f
	}
	c.flights[id] = f
	go c.run(id, f)
	return f
}

// run fetches, and keeps what it got, or how it failed, in the consumer's
// entry, if the consumer is cached still or again.
func (c *Cache) run(id string, f *flight) {
	got, reached, records, err := c.obtain(id, f)
	c.mu.Lock()
	delete(c.flights, id)
	now := c.now()
	c.idp.settle(f, reached, err, now, c.backoff)
	e := c.m[id]
	var jws string
	switch {
	case err != nil:
		if e != nil {
			if e.failures == nil {
				e.failures = new(lifecycle.Failures)
			}
			e.failures.Add(err, now, c.backoff)
			if be := (*shared.BackoffError)(nil); errors.As(err, &be) && be.Until.After(e.failures.RetryAt) {
				e.failures.RetryAt = be.Until // the replicas' backoff
			}
			if e.jws != "" {
				records = append(records, c.record(slog.LevelWarn, msgRefreshFailed, slog.String("error", err.Error()))...)
			}
		}
	default:
		jws = got.jws
		if e != nil {
			e.jws, e.sched, e.failures, e.sealed = got.jws, got.sched, nil, got.sealed
		}
		records = append(records, got.record(c)...)
	}
	c.mu.Unlock()
	// After the lock, as a handler may call back into the Cache; before
	// the flight ends, so that a fetch's records are written once its
	// callers return.
	lifecycle.Write(c.ctx, c.conf.Logger, records)
	f.End(jws, err)
}

// touch makes e the most recently used. c.mu must be held.
func (c *Cache) touch(e *entry) {
	if c.head != e {
		c.unlink(e)
		c.pushFront(e)
	}
}

// add adds an entry for id, the most recently used, evicting the least
// recently used if need be. c.mu must be held.
func (c *Cache) add(id string) {
	c.m[id] = &entry{id: id}
	c.pushFront(c.m[id])
	if len(c.m) > c.max {
		old := c.tail
		c.unlink(old)
		delete(c.m, old.id) // a fetch it awaits still reaches its waiters
		c.floor.Forget(&old.rejected)
	}
}

func (c *Cache) pushFront(e *entry) {
	e.prev, e.next = nil, c.head
	if c.head != nil {
		c.head.prev = e
	}
	c.head = e
	if c.tail == nil {
		c.tail = e
	}
}

func (c *Cache) unlink(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		c.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		c.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

// The log records' messages.
const (
	msgFetched        = "consumerjws: ConsumerJWS fetched"
	msgRefreshFailed  = "consumerjws: refresh failed; serving the current ConsumerJWS"
	msgRelookupFailed = "consumerjws: Domain API re-lookup failed; keeping the last good host"
	msgRejected       = "consumerjws: ConsumerJWS rejected by the API"
)

// record is a log record with the Cache's account, or none if the Cache
// logs nothing.
func (c *Cache) record(level slog.Level, msg string, attrs ...slog.Attr) []lifecycle.Record {
	if c.conf.Logger == nil {
		return nil
	}
	return []lifecycle.Record{{Level: level, Msg: msg, Attrs: append([]slog.Attr{slog.String("account", c.conf.AccountID)}, attrs...)}}
}
