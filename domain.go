package appjwt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/lpconnect/appjwt/internal/lphttp"
)

// sentinelService is the Domain API's (case-sensitive) name for Sentinel.
const sentinelService = "sentinel"

// LookupDomain asks LivePerson's Domain API for the host of a service on
// an account: "sentinel" (AppJWTs), "asyncMessagingEnt" (the Send API),
// "idp" (ConsumerJWS) or any other; names are case sensitive. domainAPI is
// the Domain API's host[:port]; empty: DefaultDomainAPI.
//
// It validates, retries and fails as [Config.ResolveDomain] does: the
// answer is a bare host[:port] that no server can turn into another scheme
// or path; a non-200 answer or a missing baseURI is an error, and 429, 5xx
// and network errors are tried up to 4 times. ctx supplies the HTTP client
// under [oauth2.HTTPClient]; the lookup takes at most DefaultFetchTimeout,
// less if ctx's deadline is sooner. It does not cache.
func LookupDomain(ctx context.Context, domainAPI, accountID, service string) (string, error) {
	c := Config{AccountID: accountID, DomainAPI: domainAPI}
	if err := c.validateLookup(); err != nil {
		return "", err
	}
	if service == "" || service == "." || service == ".." {
		return "", fmt.Errorf("appjwt: service %q is not a service name", service)
	}
	ctx, cancel := context.WithTimeout(ctx, DefaultFetchTimeout)
	defer cancel()
	return c.lookup(ctx, service, lphttp.Default)
}

// sentinelHost returns the configured Sentinel host, or looks it up.
func (c *Config) sentinelHost(ctx context.Context, p lphttp.Policy) (string, error) {
	if c.Domain != "" {
		return c.Domain, nil
	}
	return c.lookup(ctx, sentinelService, p)
}

// lookup asks the Domain API for the host of the account's service. The
// answer must be a bare host[:port]: a server cannot redirect the requests
// made to it to another scheme or path.
func (c *Config) lookup(ctx context.Context, service string, p lphttp.Policy) (string, error) {
	api := c.domainAPI()
	fail := func(err error) error {
		return fmt.Errorf("appjwt: domain lookup of %q for account %q at %s: %w", service, c.AccountID, api, err)
	}
	u := lphttp.Endpoint(api, "version=1.0", "api", "account", c.AccountID, "service", service, "baseURI.json")
	rep, _, err := call{method: http.MethodGet, url: u, safe: u}.do(ctx, p)
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
		return "", fail(fmt.Errorf("baseURI: %w", err))
	}
	return answer.BaseURI, nil
}

// domainCache remembers the Sentinel host a cached source looked up. It is
// used only by the source's running fetch, and fetches never overlap, so it
// needs no lock of its own.
type domainCache struct {
	host    string
	expires time.Time
	logs    []logEntry // to log once the fetch is over, out of its way
}

// takeLogs returns the records to log and forgets them.
func (d *domainCache) takeLogs() []logEntry {
	logs := d.logs
	d.logs = nil
	return logs
}

// relookupAttempts bounds the requests of a re-lookup: within its share
// of the fetch's time (see [lphttp.RelookupContext]), two tries are enough.
const relookupAttempts = 2

// resolve returns the cached host while it is fresh, else asks sentinelHost
// again (which answers at once when Config.Domain is set). A failed
// re-lookup keeps the last good host, and is not tried again for
// lphttp.RelookupPause.
func (d *domainCache) resolve(ctx context.Context, c *Config, p lphttp.Policy, now time.Time) (string, error) {
	if d.host != "" && now.Before(d.expires) {
		return d.host, nil
	}
	host, err := d.lookup(ctx, c, p)
	switch {
	case err == nil:
		d.host, d.expires = host, now.Add(lphttp.DomainTTL)
	case d.host == "" || ctx.Err() != nil:
		return "", err
	default:
		host, d.expires = d.host, now.Add(lphttp.RelookupPause)
		d.logRelookupFailed(c, err)
	}
	return host, nil
}

// lookup asks sentinelHost; once a host is known, within a re-lookup's
// share of ctx's time and with at most relookupAttempts requests.
func (d *domainCache) lookup(ctx context.Context, c *Config, p lphttp.Policy) (string, error) {
	if d.host != "" {
		var cancel context.CancelFunc
		ctx, cancel = lphttp.RelookupContext(ctx)
		defer cancel()
		p.Attempts = min(p.Attempts, relookupAttempts)
	}
	return c.sentinelHost(ctx, p)
}

// logRelookupFailed keeps a record of a failed re-lookup, to log once the
// fetch is over.
func (d *domainCache) logRelookupFailed(c *Config, err error) {
	if c.Logger == nil {
		return
	}
	class, _ := errorClass(err, true)
	d.logs = append(d.logs, logEntry{slog.LevelWarn, msgRelookupFailed, []slog.Attr{
		slog.String("account", c.AccountID),
		slog.String("domain_api", c.domainAPI()),
		slog.String("host", d.host),
		slog.String("error_class", class),
		slog.String("error", c.withhold(err).Error()),
		slog.Time("retry_at", d.expires),
	}})
}
