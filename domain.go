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
	return c.lookupDomain(ctx, sentinelService, p)
}

// lookupDomain asks the Domain API for the host of one service of the
// account. The answer must be a bare host[:port]: a server cannot redirect
// the token request to another scheme or path.
func (c *Config) lookupDomain(ctx context.Context, service string, p retryPolicy) (string, error) {
	api := c.domainAPI()
	u := endpoint(api, "version=1.0", "api", "account", c.AccountID, "service", service, "baseURI.json")
	fail := func(format string, args ...any) error {
		return fmt.Errorf("appjwt: domain lookup of %q for account %q at %s: %s",
			service, c.AccountID, api, fmt.Sprintf(format, args...))
	}
	rep, err := p.do(ctx, call{method: http.MethodGet, url: u, safe: u})
	if err != nil {
		return "", fmt.Errorf("appjwt: domain lookup of %q for account %q at %s: %w", service, c.AccountID, api, err)
	}
	if rep.resp.StatusCode != 200 {
		return "", fail("%s", rep.resp.Status)
	}
	var answer struct {
		BaseURI string `json:"baseURI"`
	}
	if err := json.Unmarshal(rep.body, &answer); err != nil {
		return "", fail("malformed answer: %v", err)
	}
	if answer.BaseURI == "" {
		return "", fail("answer has no baseURI")
	}
	if err := checkHost(answer.BaseURI); err != nil {
		return "", fail("baseURI: %v", err)
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

// resolve returns the cached host while it is fresh, else looks it up again.
// A failed re-lookup keeps the last good host, to be tried again next fetch.
func (d *domainCache) resolve(ctx context.Context, c *Config, p retryPolicy, now time.Time) (string, error) {
	if c.Domain != "" {
		return c.Domain, nil
	}
	if d.host != "" && now.Before(d.expires) {
		return d.host, nil
	}
	host, err := c.lookupDomain(ctx, sentinelService, p)
	if err != nil {
		if d.host != "" && !errors.Is(err, context.Canceled) {
			return d.host, nil
		}
		return "", err
	}
	d.host, d.expires = host, now.Add(domainTTL)
	return host, nil
}
