package consumerjws

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/lpconnect/appjwt"
	"github.com/lpconnect/appjwt/internal/lphttp"
)

// idpService is the Domain API's (case-sensitive) name for the idp.
const idpService = "idp"

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
// ctx's time (the same bounds as appjwt's, from lphttp) that keeps the last
// good host if it fails.
func (d *domainCache) run(ctx context.Context, c *Cache, f *hostFlight) {
	d.mu.Lock()
	last := d.host
	d.mu.Unlock()
	lctx := ctx
	if last != "" {
		var cancel context.CancelFunc
		lctx, cancel = lphttp.RelookupContext(ctx)
		defer cancel()
	}
	host, err := appjwt.LookupDomain(lctx, c.conf.DomainAPI, c.conf.AccountID, idpService)
	d.mu.Lock()
	now := c.now()
	switch {
	case err == nil:
		d.host, d.expires = host, now.Add(lphttp.DomainTTL)
	case last != "" && ctx.Err() == nil:
		defer c.logAttrs(slog.LevelWarn, msgRelookupFailed, slog.String("host", last), slog.String("error", err.Error()))
		host, err = last, nil
		d.expires = now.Add(lphttp.RelookupPause)
	default:
		err = fmt.Errorf("consumerjws: idp host: %w", err)
	}
	f.host, f.err = host, err
	d.lookup = nil
	d.mu.Unlock()
	close(f.done)
}
