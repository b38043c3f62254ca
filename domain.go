package appjwt

import (
	"context"
	"fmt"

	"github.com/lpconnect/appjwt/internal/domain"
	"github.com/lpconnect/appjwt/internal/lphttp"
)

// sentinelService is the Domain API's (case-sensitive) name for Sentinel.
const sentinelService = "sentinel"

// LookupDomain asks LivePerson's Domain API for the host of a service on
// an account: "sentinel" (AppJWTs), "asyncMessagingEnt" (the Send API),
// "idp" (ConsumerJWS) or any other; names are case sensitive. domainAPI is
// the Domain API's host[:port]; empty: "api.liveperson.net".
//
// The answer is a bare host[:port] that no server can turn into another scheme
// or path; a non-200 answer or a missing baseURI is an error, and 429, 5xx
// and network errors are tried up to 4 times. ctx supplies the HTTP client
// under [oauth2.HTTPClient]; the lookup takes at most 30 s,
// less if ctx's deadline is sooner. It does not cache.
func LookupDomain(ctx context.Context, domainAPI, accountID, service string) (string, error) {
	c := Config{AccountID: accountID, DomainAPI: domainAPI}
	if err := c.validateLookup(); err != nil {
		return "", err
	}
	if service == "" || service == "." || service == ".." {
		return "", fmt.Errorf("appjwt: service %q is not a service name", service)
	}
	ctx, cancel := context.WithTimeout(ctx, defaultFetchTimeout)
	defer cancel()
	host, err := domain.Lookup(ctx, c.domainAPI(), accountID, service, lphttp.Default)
	return host, prefixed(err)
}

// sentinelHost returns the configured Sentinel host, or looks it up.
func (c *Config) sentinelHost(ctx context.Context) (string, error) {
	if c.Domain != "" {
		return c.Domain, nil
	}
	host, err := domain.Lookup(ctx, c.domainAPI(), c.AccountID, sentinelService, lphttp.Default)
	return host, prefixed(err)
}
