package appjwt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// domainTTL is how long a cached source trusts a Domain API answer.
// LivePerson documents no TTL; its own clients cache for 1 minute to 3 hours.
const domainTTL = time.Hour

// sentinelService is the Domain API's (case-sensitive) name for Sentinel.
const sentinelService = "sentinel"

// sentinelHost returns the configured Sentinel host, or looks it up.
func (c *Config) sentinelHost(ctx context.Context, p retryPolicy) (string, error) {
	if c.Domain != "" {
		return c.Domain, nil
	}
	return c.lookupSentinel(ctx, p)
}

// lookupSentinel asks the Domain API for the account's Sentinel host. The
// answer must be a bare host[:port]: a server cannot redirect the token
// request to another scheme or path.
func (c *Config) lookupSentinel(ctx context.Context, p retryPolicy) (string, error) {
	api := c.domainAPI()
	fail := func(err error) error {
		return fmt.Errorf("appjwt: domain lookup of %q for account %q at %s: %w", sentinelService, c.AccountID, api, err)
	}
	u := endpoint(api, "version=1.0", "api", "account", c.AccountID, "service", sentinelService, "baseURI.json")
	rep, err := p.do(ctx, call{method: http.MethodGet, url: u, safe: u})
	if err != nil {
		return "", fail(err)
	}
	if rep.resp.StatusCode != http.StatusOK {
		return "", fail(errors.New(rep.resp.Status))
	}
	var answer struct {
		BaseURI string `json:"baseURI"`
	}
	if err := json.Unmarshal(rep.body, &answer); err != nil {
		return "", fail(fmt.Errorf("malformed answer: %w", err))
	}
	if answer.BaseURI == "" {
		return "", fail(errors.New("answer has no baseURI"))
	}
	if err := checkHost(answer.BaseURI); err != nil {
		return "", fail(fmt.Errorf("baseURI: %w", err))
	}
	return answer.BaseURI, nil
}

// checkHost accepts a bare host or host:port and nothing else: no scheme,
// userinfo, path, query or fragment.
func checkHost(h string) error {
	if strings.ContainsAny(h, "/?#@\\%") || strings.ContainsFunc(h, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return fmt.Errorf("%q is not a bare host[:port] (no scheme, path, query or userinfo)", h)
	}
	host, port := h, ""
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
		var err error
		if host, port, err = net.SplitHostPort(h); err != nil {
			return fmt.Errorf("%q is not a bare host[:port]: %v", h, err)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q has an invalid port", h)
		}
	}
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") && port == "" {
		host = host[1 : len(host)-1]
	}
	if host == "" || strings.ContainsAny(host, "[]") {
		return fmt.Errorf("%q is not a bare host[:port]", h)
	}
	return nil
}

// endpoint builds an https URL from a checked host, path segments (each
// escaped, so none can add a segment) and an already encoded query.
func endpoint(host, rawQuery string, segments ...string) *url.URL {
	var path, raw strings.Builder
	for _, s := range segments {
		path.WriteString("/" + s)
		raw.WriteString("/" + url.PathEscape(s))
	}
	return &url.URL{Scheme: "https", Host: host, Path: path.String(), RawPath: raw.String(), RawQuery: rawQuery}
}

// domainCache remembers the Sentinel host a cached source looked up. It is
// used only by the source's running fetch, and fetches never overlap, so it
// needs no lock of its own.
type domainCache struct {
	host    string
	expires time.Time
}

// resolve returns the cached host while it is fresh, else asks sentinelHost
// again (which answers at once when Config.Domain is set).
// A failed re-lookup keeps the last good host, to be tried again next fetch.
func (d *domainCache) resolve(ctx context.Context, c *Config, p retryPolicy, now time.Time) (string, error) {
	if d.host != "" && now.Before(d.expires) {
		return d.host, nil
	}
	host, err := c.sentinelHost(ctx, p)
	if err != nil {
		if d.host != "" && !errors.Is(err, context.Canceled) {
			return d.host, nil
		}
		return "", err
	}
	d.host, d.expires = host, now.Add(domainTTL)
	return host, nil
}
