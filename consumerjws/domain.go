package consumerjws

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/lpconnect/appjwt"
)

// idpService is the Domain API's (case-sensitive) name for the idp.
const idpService = "idp"

// Bounds of the idp host's cache, as appjwt's for the Sentinel host: an
// answer is trusted for domainTTL; a re-lookup gets relookupShare of the
// time left in the fetch, at most relookupMax, and after it fails the last
// good host serves for relookupPause before the Domain API is asked again.
const (
	domainTTL     = time.Hour
	relookupShare = 4
	relookupMax   = 5 * time.Second
	relookupPause = 5 * time.Minute
)

// domainCache is the idp host of a Cache: Config.Domain, or what the
// Domain API said. One lookup runs at a time; while a known host is
// re-looked up, fetches go on with it.
type domainCache struct {
	mu      sync.Mutex
	host    string
	expires time.Time
	lookup  *hostFlight // the running lookup, or nil
}

// hostFlight is one lookup; done is closed once host or err is set.
type hostFlight struct {
	done chan struct{}
	host string
	err  error
}

// resolve returns the idp host, looking it up if need be.
func (d *domainCache) resolve(ctx context.Context, c *Cache) (string, error) {
	if c.conf.Domain != "" {
		return c.conf.Domain, nil
	}
	d.mu.Lock()
	now := c.now()
	if d.host != "" && (now.Before(d.expires) || d.lookup != nil) {
		host := d.host
		d.mu.Unlock()
		return host, nil
	}
	f := d.lookup
	if f == nil {
		f = &hostFlight{done: make(chan struct{})}
		d.lookup = f
		d.mu.Unlock()
		d.run(ctx, c, f)
	} else {
		d.mu.Unlock()
	}
	select {
	case <-f.done:
		return f.host, f.err
	case <-ctx.Done():
		return "", fmt.Errorf("consumerjws: waiting for the idp host: %w", ctx.Err())
	}
}

// run carries out lookup f: the first, or a re-lookup within its share of
// ctx's time that keeps the last good host if it fails.
func (d *domainCache) run(ctx context.Context, c *Cache, f *hostFlight) {
	d.mu.Lock()
	last := d.host
	d.mu.Unlock()
	lctx := ctx
	if last != "" {
		budget := relookupMax
		if dl, ok := ctx.Deadline(); ok {
			budget = min(budget, time.Until(dl)/relookupShare)
		}
		var cancel context.CancelFunc
		lctx, cancel = context.WithTimeout(ctx, budget)
		defer cancel()
	}
	host, err := appjwt.LookupDomain(lctx, c.conf.DomainAPI, c.conf.AccountID, idpService)
	d.mu.Lock()
	now := c.now()
	switch {
	case err == nil:
		d.host, d.expires = host, now.Add(domainTTL)
	case last != "" && ctx.Err() == nil:
		defer c.logAttrs(slog.LevelWarn, msgRelookupFailed, slog.String("host", last), slog.String("error", err.Error()))
		host, err = last, nil
		d.expires = now.Add(relookupPause)
	default:
		err = fmt.Errorf("consumerjws: idp host: %w", err)
	}
	f.host, f.err = host, err
	d.lookup = nil
	d.mu.Unlock()
	close(f.done)
}
