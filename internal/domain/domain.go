// Package domain asks LivePerson's Domain API for the host of a service on
// an account, and keeps the answer for the caches of appjwt and
// consumerjws, with the same bounds for both.
package domain

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/lpconnect/appjwt/internal/lifecycle"
	"github.com/lpconnect/appjwt/internal/lphttp"
)

// Lookup asks the Domain API at api for the host of service on account.
// The answer must be a bare host[:port]: a server cannot move the requests
// made to it to another scheme or path. A non-200 answer or a missing
// baseURI is an error; p says what is retried.
func Lookup(ctx context.Context, api, account, service string, p lphttp.Policy) (string, error) {
	fail := func(err error) error {
		return fmt.Errorf("domain lookup of %q for account %q at %s: %w", service, account, api, err)
	}
	u := lphttp.Endpoint(api, "version=1.0", "api", "account", account, "service", service, "baseURI.json")
	rep, _, err := lphttp.Call{Method: http.MethodGet, URL: u, Safe: u, Max: maxBody}.Do(ctx, p)
	if err != nil {
		return "", fail(err)
	}
	if rep.Resp.StatusCode != http.StatusOK {
		return "", fail(errors.New(rep.Resp.Status))
	}
	var answer struct {
		BaseURI string `json:"baseURI"`
	}
	if err := json.Unmarshal(rep.Body, &answer); err != nil {
		return "", fail(fmt.Errorf("malformed answer: %w", err))
	}
	if answer.BaseURI == "" {
		return "", fail(errors.New("answer has no baseURI"))
	}
	if err := lphttp.CheckHost(answer.BaseURI); err != nil {
		return "", fail(fmt.Errorf("baseURI %q %w", answer.BaseURI, err))
	}
	return answer.BaseURI, nil
}

// DefaultAPI is LivePerson's Domain API host, which Configs use when they
// name none.
const DefaultAPI = "api.liveperson.net"

// maxBody caps a Domain API answer.
const maxBody = 1 << 20

// How a Cache trusts the Domain API: an answer for TTL (LivePerson
// documents no TTL; its own clients cache for 1 minute to 3 hours); once a
// host is known, a re-lookup gets a small share of a fetch's time, which
// belongs to the request the host is for, and relookupAttempts requests;
// after a failed re-lookup the last good host serves for RelookupPause
// before the Domain API is asked again.
const (
	TTL              = time.Hour
	RelookupPause    = 5 * time.Minute
	RelookupAttempts = 2
	relookupShare    = 4 // of the time left in the fetch
	relookupMaxDur   = 5 * time.Second
)

// Cache is the host of one service on one account: Fixed, if set, or what
// the Domain API said. It is safe for concurrent use: one lookup runs at a
// time, and while a known host is looked up again, callers go on with it.
// Until a host is known, a failed lookup is remembered: callers get its
// error at once, without a request, until the backoff after it ends, and
// the first good answer ends that.
type Cache struct {
	// Fixed once made.
	Fixed                 string           // the configured host: no lookup
	API, Account, Service string           // API: zero is DefaultAPI
	Backoff               lphttp.Backoff   // after a failed first lookup; zero: lifecycle.FailureBackoff
	Now                   func() time.Time // nil: time.Now

	mu       sync.Mutex
	host     string
	expires  time.Time
	lookup   *lifecycle.Flight[string] // the running lookup, or nil
	failures lifecycle.Failures        // the failed lookups since the last good one, while no host is known
}

// Answer is what [Cache.Host] found.
type Answer struct {
	Host string
	// RelookupErr says why a re-lookup failed, if one did in this call:
	// Host is then the last good host, kept until RetryAt without asking
	// the Domain API again.
	RelookupErr error
	RetryAt     time.Time
}

// Host returns the service's host: Fixed; the cached host while it is
// fresh, or while it is being looked up again; or a new answer of the
// Domain API, which concurrent callers share. With no host known, while
// backing off after a failed lookup, it returns that lookup's error at
// once. A caller whose ctx ends stops waiting for a lookup another caller
// runs.
func (c *Cache) Host(ctx context.Context, p lphttp.Policy) (Answer, error) {
	if c.Fixed != "" {
		return Answer{Host: c.Fixed}, nil
	}
	c.mu.Lock()
	now := c.now()
	if c.host != "" && (now.Before(c.expires) || c.lookup != nil) {
		host := c.host
		c.mu.Unlock()
		return Answer{Host: host}, nil
	}
	if c.host == "" && c.lookup == nil && c.failures.BackingOff(now) {
		err := c.failures.Err
		c.mu.Unlock()
		return Answer{}, err
	}
	if c.lookup == nil {
		f := lifecycle.NewFlight[string]()
		c.lookup = f
		last := c.host
		c.mu.Unlock()
		return c.run(ctx, p, f, last)
	}
	f := c.lookup
	c.mu.Unlock()
	host, err := f.Wait(ctx, "waiting for the "+c.Service+" host")
	return Answer{Host: host}, err
}

// run carries out lookup f: the first, or a re-lookup within its share of
// ctx's time that keeps the last good host if it fails.
func (c *Cache) run(ctx context.Context, p lphttp.Policy, f *lifecycle.Flight[string], last string) (Answer, error) {
	lctx := ctx
	if last != "" {
		var cancel context.CancelFunc
		lctx, cancel = relookupContext(ctx)
		defer cancel()
		p.Attempts = min(p.Attempts, RelookupAttempts)
	}
	host, err := Lookup(lctx, cmp.Or(c.API, DefaultAPI), c.Account, c.Service, p)
	a := Answer{Host: host}
	c.mu.Lock()
	now := c.now()
	switch {
	case err == nil:
		c.host, c.expires = host, now.Add(TTL)
		c.failures = lifecycle.Failures{}
	case last == "":
		c.failures.Add(err, now, c.backoff())
	case ctx.Err() == nil:
		c.expires = now.Add(RelookupPause)
		a = Answer{Host: last, RelookupErr: err, RetryAt: c.expires}
		err = nil
	}
	c.lookup = nil
	c.mu.Unlock()
	f.End(a.Host, err)
	return a, err
}

// relookupContext bounds ctx to a re-lookup's share of its time: at most
// relookupMaxDur, and at most 1/relookupShare of what is left before ctx's
// deadline.
func relookupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	budget := relookupMaxDur
	if dl, ok := ctx.Deadline(); ok {
		budget = min(budget, time.Until(dl)/relookupShare)
	}
	return context.WithTimeout(ctx, budget)
}

// RetryAt is when a lookup may start again, after one failed while no
// host is known; zero if none did. A caller that retries on a timer of its
// own waits for it, or its retry fails at once.
func (c *Cache) RetryAt() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failures.RetryAt
}

func (c *Cache) backoff() lphttp.Backoff {
	if c.Backoff.Max == 0 {
		return lifecycle.FailureBackoff
	}
	return c.Backoff
}

func (c *Cache) now() time.Time {
	if c.Now == nil {
		return time.Now()
	}
	return c.Now()
}
