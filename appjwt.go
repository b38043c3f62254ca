// Package appjwt obtains LivePerson AppJWTs and keeps them fresh.
//
// An AppJWT is the one-hour access token that Sentinel, LivePerson's identity
// broker, issues for an app installation through an OAuth 2.0
// client_credentials request. LivePerson's Connector API (Send API,
// Conversation API, ConsumerJWS) wants one on every request.
//
// [Config] describes an app installation. [Config.Client] returns an
// [http.Client] that authorizes every request; [Config.TokenSource] returns an
// [oauth2.TokenSource] for use with the rest of golang.org/x/oauth2;
// [Transport] adds the token to requests sent through a connector's own
// transport chain.
//
// # Header styles
//
// LivePerson's Connector API documents the raw token, with no scheme:
//
//	Authorization: eyJraWQiOi...
//
// That is what [Transport] sends. [Config.Client] uses [oauth2.Transport],
// which always sends the token type as a scheme:
//
//	Authorization: Bearer eyJraWQiOi...
//
// Use [Transport] for the Connector API, and [Config.Client] for APIs that
// want the standard OAuth 2.0 bearer style.
//
// # Expiry and caching
//
// Sentinel's answer carries no expires_in, so the expiry is taken, first
// match wins, from expires_in when present, from the JWT's exp - iat counted
// from the moment the request was sent (so a skewed Sentinel clock changes
// nothing), from the JWT's exp, or else from the documented one-hour
// lifetime. A token from this package never has a zero Expiry.
//
// The source returned by [Config.TokenSource] refreshes the token in the
// background once it is within [Config.EarlyExpiry] of its expiry; callers
// keep getting the current token meanwhile, and keep getting it through a
// Sentinel outage until shortly before it really expires. Failed fetches are
// retried with capped, jittered exponential backoff.
//
// # Errors
//
// A non-2xx answer from Sentinel is an [*oauth2.RetrieveError], wrapped with
// the account, client id, host and status; use [errors.As] to get at it.
// Context errors are wrapped too, so [errors.Is] finds [context.Canceled] and
// [context.DeadlineExceeded]. No error, and no formatted [Config], contains
// the client secret.
package appjwt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Defaults for the zero values of [Config] fields.
const (
	// DefaultDomainAPI is the Domain API host used when Config.DomainAPI is empty.
	DefaultDomainAPI = "api.liveperson.net"
	// DefaultEarlyExpiry is how long before expiry a token is refreshed when
	// Config.EarlyExpiry is zero.
	DefaultEarlyExpiry = 5 * time.Minute
	// DefaultFetchTimeout bounds one fetch, retries included, when
	// Config.FetchTimeout is zero.
	DefaultFetchTimeout = 30 * time.Second
	// DefaultLifetime is the AppJWT lifetime LivePerson documents, assumed
	// when neither expires_in nor the JWT's claims give one.
	DefaultLifetime = time.Hour
	// MaxLifetime is the longest lifetime a token may claim, from expires_in
	// or from its JWT claims: an answer that claims more is an error, since
	// a token cached that long would outlive any revocation.
	MaxLifetime = 24 * time.Hour
)

// Config describes a LivePerson app installation that obtains AppJWTs.
//
// A Config is plain data: it is safe to copy, and its methods may be called
// concurrently as long as nobody changes its fields meanwhile. Formatting a
// Config with the fmt verbs or logging it with log/slog never shows the
// ClientSecret.
type Config struct {
	// AccountID is the LivePerson account (site) ID. Required.
	AccountID string

	// ClientID is the app installation ID. Required.
	ClientID string

	// ClientSecret is the app installation secret. Required.
	ClientSecret string

	// Domain is the Sentinel host, or host:port, such as
	// "va.sentinel.liveperson.net". Empty: it is looked up with the Domain
	// API (service "sentinel"), as LivePerson asks.
	Domain string

	// DomainAPI is the Domain API host or host:port. Empty: DefaultDomainAPI.
	DomainAPI string

	// EarlyExpiry is how long before a token's expiry it is refreshed.
	// Zero: DefaultEarlyExpiry. A cached source never refreshes before half a
	// token's lifetime has passed, however large EarlyExpiry is.
	EarlyExpiry time.Duration

	// FetchTimeout bounds one fetch of a token: Domain API lookup, Sentinel
	// request and their retries. Zero: DefaultFetchTimeout.
	FetchTimeout time.Duration

	// CredentialsInQuery sends client_id and client_secret in the URL's
	// query string, as LivePerson's older documentation shows, instead of
	// the form body. URLs end up in proxy and server logs, so only set it
	// for deployments that need it. Errors never show the secret either way.
	CredentialsInQuery bool
}

// Token fetches one fresh AppJWT from Sentinel, looking up the Sentinel
// host first if Domain is empty. It does no caching: use
// [Config.TokenSource] or [Config.Client] for that.
//
// The HTTP client comes from ctx under [oauth2.HTTPClient], as in
// golang.org/x/oauth2; without one, a client with a 10 s timeout is used.
// Token honours ctx's deadline and cancellation, and never takes longer than
// FetchTimeout. Transient failures (network errors, 429, 5xx) are retried
// with backoff, honouring Retry-After; 4xx answers are not.
func (c *Config) Token(ctx context.Context) (*oauth2.Token, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.fetchTimeout())
	defer cancel()
	host, err := c.sentinelHost(ctx, defaultRetry)
	if err != nil {
		return nil, err
	}
	return c.requestToken(ctx, host, defaultRetry)
}

// ResolveDomain returns the Sentinel host the token requests go to: Domain
// if set, else the answer of the Domain API for the service "sentinel". It
// does not cache, and needs no credentials; ctx is used as by [Config.Token].
func (c *Config) ResolveDomain(ctx context.Context) (string, error) {
	if err := c.validateLookup(); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, c.fetchTimeout())
	defer cancel()
	return c.sentinelHost(ctx, defaultRetry)
}

// TokenSource returns a cached [oauth2.TokenSource], wrapped in
// [oauth2.ReuseTokenSourceWithExpiry], that returns the same token until it
// is within EarlyExpiry of its expiry. It is safe for concurrent use: however
// many goroutines call Token at once, one fetch reaches Sentinel.
//
// Once a token is due, one refresh runs in the background while callers keep
// the current token. When there is no usable token, Token waits for a fetch;
// after a failed fetch, callers get its error at once until the backoff
// (1 s doubling to 30 s, with jitter) allows the next attempt.
//
// ctx is kept and used for every fetch the source makes: it supplies the
// HTTP client (see [Config.Token]) and, once cancelled, stops all further
// fetches. It should live as long as the source, not be a request's context.
// The Config is copied: later changes to c do not affect the source.
// An invalid Config makes every Token call return the same error.
func (c *Config) TokenSource(ctx context.Context) oauth2.TokenSource {
	return oauth2.ReuseTokenSourceWithExpiry(nil, newTokenSource(ctx, *c), c.earlyExpiry())
}

// Client returns an HTTP client that sends "Authorization: Bearer <AppJWT>"
// on every request, from [Config.TokenSource]. It is
// oauth2.NewClient(ctx, c.TokenSource(ctx)): the client from ctx under
// [oauth2.HTTPClient], if any, carries the requests too. For the raw header
// style of LivePerson's Connector API, use [Transport].
func (c *Config) Client(ctx context.Context) *http.Client {
	return oauth2.NewClient(ctx, c.TokenSource(ctx))
}

// Transport is an [http.RoundTripper] that authorizes each request with the
// raw AppJWT, "Authorization: <AppJWT>" with no scheme, as LivePerson's
// Connector API documents it. It does not modify the caller's request.
//
// Transport is safe for concurrent use if Source and Base are. Source should
// cache, as [Config.TokenSource] does: Transport asks it for a token on every
// request.
type Transport struct {
	// Source supplies the token. Required.
	Source oauth2.TokenSource

	// Base sends the authorized request. Nil: http.DefaultTransport.
	Base http.RoundTripper
}

// RoundTrip authorizes req with a token from t.Source and sends it with
// t.Base. As the [http.RoundTripper] contract asks, it closes req.Body even
// when it returns an error before sending.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	tok, err := t.token()
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	r := *req
	r.Header = make(http.Header, len(req.Header)+1)
	for k, v := range req.Header {
		r.Header[k] = v
	}
	r.Header.Set("Authorization", tok.AccessToken)
	return t.base().RoundTrip(&r)
}

func (t *Transport) token() (*oauth2.Token, error) {
	if t.Source == nil {
		return nil, errors.New("appjwt: Transport.Source is nil")
	}
	tok, err := t.Source.Token()
	if err != nil {
		return nil, err
	}
	if tok == nil || tok.AccessToken == "" {
		return nil, errors.New("appjwt: Transport.Source returned an empty token")
	}
	return tok, nil
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

const redacted = "[REDACTED]"

// Format implements [fmt.Formatter] so that every verb, %#v included, shows
// the Config with its ClientSecret redacted.
func (c Config) Format(f fmt.State, verb rune) {
	type config Config // the same fields without this method
	v := config(c)
	if v.ClientSecret != "" {
		v.ClientSecret = redacted
	}
	s := fmt.Sprintf(fmt.FormatString(f, verb), v)
	if f.Flag('#') {
		s = strings.Replace(s, "appjwt.config", "appjwt.Config", 1)
	}
	io.WriteString(f, s)
}

// LogValue implements [slog.LogValuer] so that logging a Config never shows
// its ClientSecret.
func (c Config) LogValue() slog.Value {
	secret := ""
	if c.ClientSecret != "" {
		secret = redacted
	}
	return slog.GroupValue(
		slog.String("AccountID", c.AccountID),
		slog.String("ClientID", c.ClientID),
		slog.String("ClientSecret", secret),
		slog.String("Domain", c.Domain),
		slog.String("DomainAPI", c.DomainAPI),
		slog.Duration("EarlyExpiry", c.EarlyExpiry),
		slog.Duration("FetchTimeout", c.FetchTimeout),
		slog.Bool("CredentialsInQuery", c.CredentialsInQuery),
	)
}

// validate checks everything that can be checked before any request.
func (c *Config) validate() error {
	for _, f := range []struct{ name, value string }{
		{"ClientID", c.ClientID},
		{"ClientSecret", c.ClientSecret},
	} {
		if f.value == "" {
			return fmt.Errorf("appjwt: Config.%s is empty", f.name)
		}
	}
	return c.validateLookup()
}

// validateLookup checks the fields a Domain API lookup needs.
func (c *Config) validateLookup() error {
	if c.AccountID == "" {
		return errors.New("appjwt: Config.AccountID is empty")
	}
	// Path escaping cannot neutralise these two segments.
	if c.AccountID == "." || c.AccountID == ".." {
		return fmt.Errorf("appjwt: Config.AccountID %q is not an account ID", c.AccountID)
	}
	if c.Domain != "" {
		if err := checkHost(c.Domain); err != nil {
			return fmt.Errorf("appjwt: Config.Domain: %w", err)
		}
	}
	if c.DomainAPI != "" {
		if err := checkHost(c.DomainAPI); err != nil {
			return fmt.Errorf("appjwt: Config.DomainAPI: %w", err)
		}
	}
	if c.EarlyExpiry < 0 {
		return fmt.Errorf("appjwt: Config.EarlyExpiry %v is negative", c.EarlyExpiry)
	}
	if c.FetchTimeout < 0 {
		return fmt.Errorf("appjwt: Config.FetchTimeout %v is negative", c.FetchTimeout)
	}
	return nil
}

func (c *Config) earlyExpiry() time.Duration {
	if c.EarlyExpiry == 0 {
		return DefaultEarlyExpiry
	}
	return c.EarlyExpiry
}

func (c *Config) fetchTimeout() time.Duration {
	if c.FetchTimeout == 0 {
		return DefaultFetchTimeout
	}
	return c.FetchTimeout
}

func (c *Config) domainAPI() string {
	if c.DomainAPI == "" {
		return DefaultDomainAPI
	}
	return c.DomainAPI
}
