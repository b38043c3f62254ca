// Package appjwt obtains LivePerson AppJWTs and keeps them fresh.
//
// An AppJWT is the one-hour access token that Sentinel, LivePerson's identity
// broker, issues for an app installation through an OAuth 2.0
// client_credentials request. LivePerson's Connector API (Send API,
// Conversation API, ConsumerJWS) wants one on every request. Sentinel has a
// second token API for LivePerson's other APIs: [Config.TokenAPI] chooses.
//
// [Config] describes an app installation. [Config.TokenSource] returns a
// [Source], the cached [oauth2.TokenSource] every wiring shares:
// [Config.Client] and [NewClient] return an [http.Client] that authorizes
// every request, [Transport] does it in a connector's own transport chain,
// and [oauth2.NewClient] takes a Source as it takes any source. Whichever
// the wiring, no caller waits for a refresh, a Sentinel outage is ridden
// out on the valid token, and any mix of wirings over one Source is
// race-free. [Transport] and the clients of this package also honour the
// request's deadline while a token is fetched, recover from a token the
// API rejects, and send each token in the header style of its API: raw,
// "Authorization: <AppJWT>", for the Connector API, "Authorization: Bearer
// <token>" for the others.
//
// Errors are one line, prefixed "appjwt: ". A refusal by Sentinel is an
// [*oauth2.RetrieveError], a bad Config a [*ConfigError], and context
// errors are wrapped; no error, log record or formatted Config shows the
// client secret. The repository's docs/behaviour.md, docs/failures.md,
// docs/errors.md, docs/redaction.md and docs/token-apis.md give every rule
// and bound as a number, and the log records [Config.Logger] gets.
package appjwt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/lpconnect/appjwt/internal/domain"
	"github.com/lpconnect/appjwt/internal/jwt"
	"github.com/lpconnect/appjwt/internal/lifecycle"
	"github.com/lpconnect/appjwt/internal/lphttp"
	"github.com/lpconnect/appjwt/internal/sentinel"
	"github.com/lpconnect/appjwt/internal/shared"
	"github.com/lpconnect/appjwt/secret"
	"github.com/lpconnect/appjwt/store"
	"golang.org/x/oauth2"
)

// The defaults of [Config]'s zero values.
const (
	defaultDomainAPI    = domain.DefaultAPI
	defaultEarlyExpiry  = 5 * time.Minute
	defaultFetchTimeout = 30 * time.Second
)

// Config describes a LivePerson app installation that obtains AppJWTs.
//
// A Config is plain data: it is safe to copy, and its methods may be called
// concurrently as long as nobody changes its fields meanwhile. Formatted,
// logged or written as JSON, it shows its ClientSecret as "[REDACTED]",
// with the exceptions [secret.String] names, which go vet reports.
type Config struct {
	// AccountID is the LivePerson account (site) ID. Required.
	AccountID string

	// ClientID is the app installation ID. Required.
	ClientID string

	// ClientSecret is the app installation secret. Required. It never
	// shows, as [secret.String] says.
	ClientSecret secret.String

	// TokenAPI is the Sentinel API that issues the tokens. SentinelV1, the
	// zero value, for LivePerson's Connector API (Send API, Conversation
	// API, ConsumerJWS), which takes the token raw; SentinelV2 for
	// LivePerson's other APIs, which take it as Bearer. [Config.Client]
	// and [Transport] send each token in the style of its API. With
	// SentinelV2, CredentialsInQuery is a Config error.
	TokenAPI TokenAPI

	// Domain is the Sentinel host, or host:port, such as
	// "va.sentinel.liveperson.net". Empty: it is looked up with the Domain
	// API (service "sentinel"), as LivePerson asks.
	Domain string

	// DomainAPI is the Domain API host or host:port. Empty:
	// "api.liveperson.net".
	DomainAPI string

	// EarlyExpiry is how long before a token's expiry it is refreshed.
	// Zero: 5 minutes. A cached source never refreshes before half a
	// token's lifetime has passed, however large EarlyExpiry is.
	EarlyExpiry time.Duration

	// FetchTimeout bounds one fetch of a token: Domain API lookup, Sentinel
	// request and their retries. Zero: 30 s. It also bounds
	// how long a cached source takes to recover once Sentinel answers again
	// after an outage in which it hung: see [Config.TokenSource].
	FetchTimeout time.Duration

	// CredentialsInQuery sends grant_type, client_id and client_secret in
	// the URL's query string, as LivePerson's older documentation of
	// Sentinel's v1 API shows, instead of the form body. URLs end up in
	// proxy and server logs, so only set it for deployments that need it.
	// Errors never show the secret either way. Sentinel's v2 API takes the
	// credentials in the form body only: with SentinelV2 it is a Config
	// error.
	CredentialsInQuery bool

	// Logger receives the cached source's log records: failed fetches and
	// recovery from them (WARN, INFO), failed Domain API re-lookups (WARN),
	// tokens the API rejected (WARN) and each token fetched (DEBUG). Nil:
	// nothing is logged. The repository's docs/behaviour.md lists the
	// records and their keys; none carries the secret or any part of a
	// token.
	Logger *slog.Logger `json:"-"`

	// Store is what the replicas of a connector share, so that a fleet
	// costs Sentinel the load of one replica: at a refresh point one
	// replica fetches, under a lease, and stores the token, which the
	// others take from the Store; a cold replica takes the stored token
	// first; a token the API rejects is deleted from the Store; and after
	// a failed fetch every replica backs off. Nil: none, each source on
	// its own. [Source.Token] never asks the Store, which is asked only at
	// refresh points, rejections and failures, each call within 0.5 s; a
	// Store that fails or hangs leaves each source on its own until it
	// answers again. What the Store holds is sealed (AES-256-GCM) under a
	// key derived from ClientSecret, under keys that name neither account
	// nor client in clear; docs/fleet.md says what it holds, and for how
	// long.
	Store store.Store `json:"-"`
}

// TokenAPI is one of the two token APIs of Sentinel that LivePerson's
// OAuth 2.0 Client Credentials page documents. Both take the same app
// installation's credentials and issue RS256 JWTs; they differ in the APIs
// that take their tokens. The zero value is SentinelV1.
type TokenAPI int

const (
	// SentinelV1 is POST /sentinel/api/account/{account}/app/token?v=1.0,
	// which signs its tokens with one static key and which LivePerson says
	// "can only be used for Connector API": the Send API, the Conversation
	// API and ConsumerJWS, which take the token raw. Its answer has no
	// expires_in: the expiry comes from the token's claims.
	SentinelV1 TokenAPI = iota
	// SentinelV2 is POST /sentinel/api/v2/account/{account}/app/token,
	// for LivePerson's other APIs, such as LivePerson Functions, which
	// take the token as Bearer. It signs with keys it publishes as a JWKS
	// at /sentinel/well-known/jwks, takes the credentials in the form body
	// only, and answers with expires_in.
	SentinelV2
)

// String returns "v1" or "v2", or "TokenAPI(n)" for any other value.
func (a TokenAPI) String() string {
	switch a {
	case SentinelV1:
		return "v1"
	case SentinelV2:
		return "v2"
	}
	return fmt.Sprintf("TokenAPI(%d)", int(a))
}

// MarshalText returns [TokenAPI.String]'s text, so that a Config written
// as JSON names its token API.
func (a TokenAPI) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText reads "v1" or "v2", as a Config read from JSON or a flag
// set with [flag.TextVar] gives them; any other text is an error.
func (a *TokenAPI) UnmarshalText(text []byte) error {
	switch string(text) {
	case "v1":
		*a = SentinelV1
	case "v2":
		*a = SentinelV2
	default:
		return errors.New(`appjwt: a TokenAPI is "v1" or "v2"`)
	}
	return nil
}

// Token fetches one fresh AppJWT from Sentinel's API that TokenAPI names,
// looking up the Sentinel host first if Domain is empty. It does no
// caching: use [Config.TokenSource] or [Config.Client] for that.
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
	host, err := c.sentinelHost(ctx)
	if err != nil {
		return nil, c.withhold(err)
	}
	tok, _, err := sentinel.Fetch(ctx, host, c.credentials(), lphttp.Default)
	return tok, prefixed(err)
}

// fetched is what one fetch of a token found.
type fetched struct {
	tok      *oauth2.Token
	err      error
	host     string // where it went, if known
	attempts int    // Sentinel requests it sent
	took     time.Duration
	domain   domain.Answer      // the Sentinel host, and a failed re-lookup
	records  []lifecycle.Record // what to log about it
	sealed   []byte             // the token as the Store holds it, if it does
	retryAt  time.Time          // while the replicas back off: until when
}

// fetch gets a new token under ctx and FetchTimeout: the Sentinel host
// from hosts, then the token request, with the retries of p.
func (c *Config) fetch(ctx context.Context, hosts *domain.Cache, p lphttp.Policy) (r fetched) {
	ctx, cancel := context.WithTimeout(ctx, c.fetchTimeout())
	defer cancel()
	a, err := hosts.Host(ctx, p)
	r.domain = a
	if err != nil {
		r.err = c.withhold(prefixed(err))
		return r
	}
	r.host = a.Host
	r.tok, r.attempts, r.err = sentinel.Fetch(ctx, r.host, c.credentials(), p)
	r.err = prefixed(r.err)
	return r
}

// TokenSource returns a cached source of AppJWTs, the [Source] every
// wiring shares: it returns the same token until its refresh point,
// refreshes it in the background before anyone waits, rides out an outage
// on it, and drops it when told the API rejected it ([Rejecter]).
// docs/behaviour.md and docs/failures.md give its schedule, backoff and
// recovery bounds.
//
// ctx is kept and used for every fetch the source makes: it supplies the
// HTTP client (see [Config.Token]) and, once cancelled, stops the timer and
// all further fetches. It should live as long as the source, not be a
// request's context. The Config is copied: later changes to c do not affect
// the source. An invalid Config makes every Token call return the same
// [*ConfigError].
func (c *Config) TokenSource(ctx context.Context) *Source {
	return newSource(newTokenCache(ctx, *c, hooks{}))
}

// Client returns an HTTP client that authorizes every request with an
// AppJWT from [Config.TokenSource], through a [Transport] in the header
// style the token's API documents ([AutoStyle]): "Authorization: <AppJWT>",
// raw, for LivePerson's Connector API, with TokenAPI [SentinelV1];
// "Authorization: Bearer <AppJWT>" for LivePerson's other APIs, with
// [SentinelV2]. Like [oauth2.NewClient], it takes the client
// in ctx under [oauth2.HTTPClient], if any: its transport (the base),
// Timeout, Jar and CheckRedirect; so wrapping a company's own client is
// putting it in ctx. It recovers as [Transport] does when the API rejects
// a token, and sends the token only where [Transport] does.
func (c *Config) Client(ctx context.Context) *http.Client {
	return NewClient(ctx, c.TokenSource(ctx))
}

// NewClient is [Config.Client] over a source of your own, such as one
// [Source] that other clients and a consumerjws Cache share: an HTTP
// client that authorizes every request through a [Transport] over src, in
// the header style the token's API documents, taking the client in ctx as
// [oauth2.NewClient] does.
func NewClient(ctx context.Context, src oauth2.TokenSource) *http.Client {
	hc, _ := ctx.Value(oauth2.HTTPClient).(*http.Client)
	if hc == nil {
		hc = http.DefaultClient
	}
	return &http.Client{
		Transport:     &Transport{Source: src, Base: hc.Transport},
		CheckRedirect: hc.CheckRedirect,
		Jar:           hc.Jar,
		Timeout:       hc.Timeout,
	}
}

// State is a snapshot of a [Source], for a health or readiness check.
type State struct {
	// Valid: the source holds a token it still serves, so requests go out
	// without waiting for Sentinel.
	Valid bool
	// Expiry is the token's expiry, and RefreshAt when its refresh starts
	// (or started); zero unless Valid. The token is served until shortly
	// before Expiry.
	Expiry, RefreshAt time.Time
	// Fetching: a fetch is running.
	Fetching bool
	// Failures counts the fetches that failed in a row; zero after a
	// success. LastError is the last one's error, LastErrorAt when it
	// ended, and RetryAt when the next fetch may start.
	Failures    int
	LastError   error
	LastErrorAt time.Time
	RetryAt     time.Time
}

// Rejecter is a token source that can be told that the API rejected a
// token it returned. The source [Config.TokenSource] returns is one;
// [Transport] tells it of the 401s it gets, and code that sends requests
// its own way can do the same.
type Rejecter interface {
	// Reject reports that the API rejected tok, with a 401, before the
	// expiry the source gave it: revoked, or a clock disagreement. If tok
	// is still the current token, it is dropped, and the next Token call
	// fetches a new one and waits for it; a late rejection of an older
	// token changes nothing. A source drops at most one token per 5 s, so
	// that an API that rejects everything cannot cause a stream of fetches.
	Reject(tok *oauth2.Token)
}

// Transport is an [http.RoundTripper] that authorizes each request with an
// AppJWT, in the header style Style says: by default ([AutoStyle]) the
// style of the token's API, raw, "Authorization: <AppJWT>" with no scheme,
// as LivePerson's Connector API documents it, unless the token came from
// [SentinelV2], when it goes as "Authorization: Bearer <AppJWT>". Each
// token of this package names its API in its Extra fields, so the style
// follows the token through any wrapper, such as [oauth2.ReuseTokenSource].
// It does not modify the caller's request.
//
// The token goes only where it should: over https, and on a redirect hop
// (a request whose Response is set, as [http.Client] makes them) only to
// the host, port included, that the first request named. A redirect hop
// elsewhere, or to plain http, goes without Authorization, as net/http does
// for a header the caller set; a first request over plain http is an
// error, not a request.
//
// When the API answers 401 to a request it authorized, and Source is a
// [Rejecter] (as [Source] is), Transport reads LivePerson's errorCode from
// the first 64 KiB of the body, for at most 1 s (and no longer than the
// request's context allows; past that, the 401 goes back unread, its body
// whole), then:
//   - if the errorCode blames the ConsumerJWS (40103 or 40104), the 401
//     goes back to the caller and the AppJWT is kept;
//   - otherwise Transport reports the token as rejected and, if the request
//     can be sent again (it has no body, or a GetBody that works) and its
//     context is not done, sends it once more with a new token, after
//     draining and closing the first answer's body. A second 401 goes back
//     to the caller. If the request cannot be sent again, or the source has
//     no new token (a [Source] drops one per 5 s at most, and less often
//     while new tokens are rejected too), the 401 goes back to the caller,
//     its body intact, and later requests get the new token.
//
// Transport asks Source for a token on every request, so Source should
// cache, as [Source] does. If Source has a method
// TokenContext(context.Context) (*oauth2.Token, error), as [Source] does,
// Transport calls it with the request's context: a request whose deadline
// passes while the source waits for Sentinel fails with an error that
// wraps [context.DeadlineExceeded], and [http.Client.Timeout] counts the
// wait.
//
// Transport is safe for concurrent use if Source and Base are.
type Transport struct {
	// Source supplies the token. Required.
	Source oauth2.TokenSource

	// Base sends the authorized request. Nil: http.DefaultTransport.
	Base http.RoundTripper

	// Style is how the token goes in the Authorization header. Zero
	// (AutoStyle): as the token's API documents it, raw or Bearer.
	Style HeaderStyle
}

// HeaderStyle is how a token goes in the Authorization header.
type HeaderStyle int

const (
	// AutoStyle sends a token as the API it is for documents it: Bearer
	// for a token of Sentinel's v2 API ([SentinelV2]), which LivePerson's
	// APIs other than the Connector API take; raw for a token of its v1
	// API ([SentinelV1]), which is for the Connector API, and for a token
	// that this package did not fetch, whose API it cannot tell. It reads
	// the token's API from the token's Extra fields, however its source is
	// wrapped; a token rebuilt, or given Extra fields of its own with
	// [oauth2.Token.WithExtra], which replaces them all, goes raw.
	AutoStyle HeaderStyle = iota
	// RawStyle sends "Authorization: <token>", with no scheme, whatever
	// the token.
	RawStyle
	// BearerStyle sends "Authorization: Bearer <token>", the standard
	// OAuth 2.0 style, whatever the token.
	BearerStyle
)

// String returns "auto", "raw" or "bearer", as log records name a style.
func (s HeaderStyle) String() string {
	switch s {
	case RawStyle:
		return "raw"
	case BearerStyle:
		return "bearer"
	}
	return "auto"
}

// RoundTrip authorizes req with a token from t.Source and sends it with
// t.Base, once more after a 401 as [Transport] says. As the
// [http.RoundTripper] contract asks, it closes req.Body even when it
// returns an error before sending.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	return lphttp.RoundTrip(appJWT, t.base(), (*authority)(t), req)
}

var appJWT = lphttp.Kind{Pkg: "appjwt", Name: "AppJWT", A: "an AppJWT", Header: "Authorization"}

// recovering is what [Transport] uses of a source beyond
// [oauth2.TokenSource], if the source has it, as a [Source] does, and so
// any type that embeds one: its token without a copy, and what the API
// did with it, on which path. Any other [Rejecter] is told of rejections
// through Reject.
type recovering interface {
	sharedToken(ctx context.Context) (*oauth2.Token, error)
	rejected(tok *oauth2.Token, path string) (again bool)
	accepted(tok *oauth2.Token, path string)
	rejecting() bool // whether accepted has anything to do
	logRejected(ctx context.Context, attrs ...slog.Attr)
}

// A Source that stopped being recovering would lose, silently, all that
// Transport does with it beyond other sources.
var _ recovering = (*Source)(nil)

// contextTokenSource is a token source whose callers can give up waiting.
type contextTokenSource interface {
	TokenContext(ctx context.Context) (*oauth2.Token, error)
}

// authority is a [Transport] as [lphttp.RoundTrip] sees it.
type authority Transport

func (a *authority) Credential(ctx context.Context) (*oauth2.Token, error) {
	var tok *oauth2.Token
	var err error
	switch src := a.Source.(type) {
	case nil:
		return nil, errors.New("appjwt: Transport.Source is nil")
	case recovering:
		tok, err = src.sharedToken(ctx)
	case contextTokenSource:
		tok, err = src.TokenContext(ctx)
	default:
		tok, err = src.Token()
	}
	if err != nil {
		return nil, err
	}
	if tok == nil || tok.AccessToken == "" {
		return nil, errors.New("appjwt: Transport.Source returned an empty token")
	}
	return tok, nil
}

func (a *authority) Set(r *http.Request, tok *oauth2.Token) {
	if a.style(tok) == BearerStyle {
		r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	} else {
		r.Header.Set("Authorization", tok.AccessToken)
	}
}

func (a *authority) Value(tok *oauth2.Token) string { return tok.AccessToken }

func (a *authority) Recovers() bool {
	_, ok := a.Source.(Rejecter)
	_, rec := a.Source.(recovering)
	return ok || rec
}

// Reject leaves the AppJWT alone when the errorCode blames the
// ConsumerJWS.
func (a *authority) Reject(req *http.Request, tok *oauth2.Token, code int) (blamed, again bool) {
	if code == lphttp.CodeConsumerJWSInvalid || code == lphttp.CodeConsumerJWSMissing {
		return false, false
	}
	switch src := a.Source.(type) {
	case recovering:
		return true, src.rejected(tok, a.path(req, tok))
	case Rejecter:
		src.Reject(tok)
	}
	return true, false
}

func (a *authority) Accepted(req *http.Request, tok *oauth2.Token) {
	// Most answers come outside a rejection floor: no path to build.
	if src, ok := a.Source.(recovering); ok && src.rejecting() {
		src.accepted(tok, a.path(req, tok))
	}
}

func (a *authority) Logged(req *http.Request, tok *oauth2.Token, code int, resent, again bool) {
	src, ok := a.Source.(recovering)
	if !ok {
		return
	}
	sent := a.style(tok)
	attrs := []slog.Attr{
		slog.String("host", req.URL.Host),
		slog.String("path", req.URL.Path),
		slog.Int("error_code", code),
		slog.String("scheme", sent.String()),
		slog.Bool("resent", resent),
	}
	if hint := rejectionHint(tok, sent, again); hint != "" {
		attrs = append(attrs, slog.String("hint", hint))
	}
	src.logRejected(req.Context(), attrs...)
}

// path names where a request goes and how its token is sent, the unit in
// which a [Source] counts rejections: an API that rejects the tokens one
// client sends it does not reset with another API taking its own.
func (a *authority) path(req *http.Request, tok *oauth2.Token) string {
	return strings.ToLower(req.URL.Host) + " " + a.style(tok).String()
}

// style is the header style to send tok in: Style, or what AutoStyle
// stands for.
func (a *authority) style(tok *oauth2.Token) HeaderStyle {
	if a.Style != AutoStyle {
		return a.Style
	}
	return documentedStyle(tok)
}

// documentedStyle is the style tok's API documents: Bearer for a v2
// token, raw for any other, as AutoStyle says.
func documentedStyle(tok *oauth2.Token) HeaderStyle {
	if sentinel.IsV2(tok) {
		return BearerStyle
	}
	return RawStyle
}

// rejectionHint is what a rejection log record suggests: the header
// scheme at once when tok went in another style than its API documents,
// and the usual suspects when tokens fetched after a rejection are
// rejected too.
func rejectionHint(tok *oauth2.Token, sent HeaderStyle, again bool) string {
	if tok.Extra(sentinel.APIField) != nil {
		if doc := documentedStyle(tok); doc != sent {
			api := "v1"
			if doc == BearerStyle {
				api = "v2"
			}
			return "check the header scheme: the token was sent " + sent.String() + ", but Sentinel's " + api + " API issued it, and its tokens go " + doc.String()
		}
	}
	if again {
		return "a token fetched after a rejection was rejected too: check the header scheme, the account, and the clock"
	}
	return ""
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

// ErrorCode returns the errorCode of a LivePerson Connector API error
// answer's body, such as 40102 in
//
//	{"kind":"resp","code":401,"body":{"title":"...","errorCode":40102}}
//
// or 0 if body has none. It takes the bytes a caller has read, so that it
// works however the body was consumed; the answers it is meant for are
// small, and 64 KiB is plenty to read of one.
func ErrorCode(body []byte) int {
	return lphttp.ErrorCode(body)
}

// Claims are the claims of an AppJWT that this package knows.
type Claims struct {
	Audience        string    // aud: the account; several audiences are joined with spaces
	AuthorizedParty string    // azp: the app installation (client) ID
	Scope           string    // scope, such as "msg.consumer"
	Issuer          string    // iss: Sentinel
	IssuedAt        time.Time // iat; zero if absent or not a date
	ExpiresAt       time.Time // exp; zero if absent
}

// ParseClaims decodes the claims of a JWT without verifying its signature:
// that is for the API receiving the token to do. It is meant for reading a
// token this package obtained over HTTPS, not for trusting one from anyone
// else. A token that is not three dot-separated parts, a payload that is
// not a base64url JSON object, and an exp that is not a plausible date
// (after 1970, and less than 10 years ahead) are errors; the other claims
// are read as absent if they are not of their documented type.
func ParseClaims(token string) (*Claims, error) {
	c, err := jwt.Decode(token)
	if err != nil {
		return nil, prefixed(err)
	}
	return &Claims{
		Audience:        c.Audience,
		AuthorizedParty: c.AuthorizedParty,
		Scope:           c.Scope,
		Issuer:          c.Issuer,
		IssuedAt:        c.IssuedAt,
		ExpiresAt:       c.ExpiresAt,
	}, nil
}

// ConfigError is the error of a [Config] that no request can fix, found
// before any request: every call with such a Config returns one, which
// [errors.As] finds. Its text names the field, and shows its value unless
// the field holds a secret.
type ConfigError struct {
	Field  string // the field at fault, such as "Domain"
	Reason string // what is wrong, without the value, such as "has an invalid port"
	value  string // shown in the text, if not empty
}

func (e *ConfigError) Error() string {
	return (&lphttp.FieldError{Pkg: "appjwt", Field: e.Field, Value: e.value, Reason: e.Reason}).Error()
}

// validate checks everything that can be checked before any request.
func (c *Config) validate() error {
	for _, f := range []struct{ name, value string }{
		{"AccountID", c.AccountID},
		{"ClientID", c.ClientID},
		{"ClientSecret", string(c.ClientSecret)},
	} {
		if f.value == "" {
			return &ConfigError{Field: f.name, Reason: "is empty"}
		}
	}
	switch {
	case c.ClientSecret.IsRedacted():
		return &ConfigError{Field: "ClientSecret", Reason: "is " + secret.Redacted + ": the Config was read back from redacted JSON or logs"}
	case c.TokenAPI != SentinelV1 && c.TokenAPI != SentinelV2:
		return &ConfigError{Field: "TokenAPI", value: c.TokenAPI.String(), Reason: "is neither SentinelV1 nor SentinelV2"}
	case c.TokenAPI == SentinelV2 && c.CredentialsInQuery:
		return &ConfigError{Field: "CredentialsInQuery", Reason: "is for SentinelV1: SentinelV2 takes the credentials in the form body only, never in the URL"}
	}
	return c.validateLookup()
}

// validateLookup checks the fields a Domain API lookup needs.
func (c *Config) validateLookup() error {
	var fe *lphttp.FieldError
	if err := lphttp.CheckConfig("appjwt", c.AccountID, c.Domain, c.DomainAPI); errors.As(err, &fe) {
		return &ConfigError{Field: fe.Field, Reason: fe.Reason, value: fe.Value}
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"EarlyExpiry", c.EarlyExpiry}, {"FetchTimeout", c.FetchTimeout}} {
		if f.d < 0 {
			return &ConfigError{Field: f.name, value: f.d.String(), Reason: "is negative"}
		}
	}
	return nil
}

func (c *Config) earlyExpiry() time.Duration {
	if c.EarlyExpiry == 0 {
		return defaultEarlyExpiry
	}
	return c.EarlyExpiry
}

func (c *Config) fetchTimeout() time.Duration {
	if c.FetchTimeout == 0 {
		return defaultFetchTimeout
	}
	return c.FetchTimeout
}

func (c *Config) domainAPI() string {
	if c.DomainAPI == "" {
		return defaultDomainAPI
	}
	return c.DomainAPI
}

func (c *Config) credentials() sentinel.Credentials {
	return sentinel.Credentials{AccountID: c.AccountID, ClientID: c.ClientID, ClientSecret: string(c.ClientSecret), InQuery: c.CredentialsInQuery, V2: c.TokenAPI == SentinelV2}
}

// withhold is the last line of defence for the texts a server can put in
// an error outside a RetrieveError: see [sentinel.Credentials.Withhold].
// An error it replaces keeps the package's prefix.
func (c *Config) withhold(err error) error {
	w := c.credentials().Withhold(err)
	if w == err {
		return err
	}
	return prefixed(w)
}

// The log records' messages. Their keys are listed in docs/behaviour.md.
const (
	msgFetchFailed    = "appjwt: token fetch failed"
	msgRecovered      = "appjwt: token fetch recovered"
	msgFetched        = "appjwt: token fetched"
	msgRelookupFailed = "appjwt: Domain API re-lookup failed; keeping the last good host"
	msgRejected       = "appjwt: token rejected by the API"
)

func (c *tokenCache) who() []slog.Attr {
	return []slog.Attr{slog.String("account", c.conf.AccountID), slog.String("client_id", c.conf.ClientID)}
}

// fetchFailed describes a failed fetch. c.mu must be held.
func (c *tokenCache) fetchFailed(r *fetched, now time.Time) []lifecycle.Record {
	if c.log == nil {
		return nil
	}
	class, status := errorClass(r.err, r.host == "")
	serving := c.state(now).Servable()
	attrs := append(c.who(),
		slog.String("host", r.host),
		slog.Int("status", status),
		slog.String("error_class", class),
		slog.String("error", r.err.Error()),
		slog.Int("attempts", r.attempts),
		slog.Int("failures", c.failures.N),
		slog.Time("retry_at", c.failures.RetryAt),
		slog.Bool("serving", serving),
	)
	if serving {
		attrs = append(attrs, slog.Time("serving_until", c.current.Load().sched.ServeUntil))
	}
	return []lifecycle.Record{{Level: slog.LevelWarn, Msg: msgFetchFailed, Attrs: attrs}}
}

// recovered describes the end of a run of failed fetches, if any. c.mu
// must be held.
func (c *tokenCache) recovered(now time.Time) []lifecycle.Record {
	if c.log == nil || c.failures.N == 0 {
		return nil
	}
	attrs := append(c.who(), slog.Int("failures", c.failures.N), slog.Duration("outage", now.Sub(c.failures.Since)))
	return []lifecycle.Record{{Level: slog.LevelInfo, Msg: msgRecovered, Attrs: attrs}}
}

// fetched describes a new token, without any of it. c.mu must be held.
func (c *tokenCache) fetched(r *fetched) []lifecycle.Record {
	if c.log == nil {
		return nil
	}
	attrs := append(c.who(),
		slog.String("host", r.host),
		slog.Duration("lifetime", r.tok.Expiry.Sub(c.now()).Round(time.Second)),
		slog.Time("expiry", r.tok.Expiry),
		slog.Time("refresh_at", c.current.Load().sched.RefreshAt),
		slog.Duration("took", r.took),
	)
	return []lifecycle.Record{{Level: slog.LevelDebug, Msg: msgFetched, Attrs: attrs}}
}

// relookupFailed describes a failed re-lookup of the Sentinel host.
func (c *tokenCache) relookupFailed(a domain.Answer) []lifecycle.Record {
	if c.log == nil {
		return nil
	}
	class, _ := errorClass(a.RelookupErr, true)
	return []lifecycle.Record{{Level: slog.LevelWarn, Msg: msgRelookupFailed, Attrs: []slog.Attr{
		slog.String("account", c.conf.AccountID),
		slog.String("domain_api", c.conf.domainAPI()),
		slog.String("host", a.Host),
		slog.String("error_class", class),
		slog.String("error", c.config().withhold(prefixed(a.RelookupErr)).Error()),
		slog.Time("retry_at", a.RetryAt),
	}}}
}

// errorClass sorts a fetch's error for a log record, with the HTTP status
// of the answer, if one caused it.
func errorClass(err error, inLookup bool) (class string, status int) {
	var re *oauth2.RetrieveError
	switch {
	case errors.As(err, &re):
		return "status", re.Response.StatusCode
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout", 0
	case errors.Is(err, context.Canceled):
		return "canceled", 0
	case inLookup:
		return "domain", 0
	case errors.As(err, new(*url.Error)):
		return "network", 0
	}
	return "answer", 0
}

// prefixed is err with the package's prefix, or nil.
func prefixed(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("appjwt: %w", err)
}

// A fleet of replicas: the tokens the cache shares through Config.Store.

// newSlot returns the Store slot of c's tokens, or nil if c, which is
// valid, names no Store. The slot's lease lasts FetchTimeout, the longest
// a fetch takes.
func newSlot(c *Config, now func() time.Time) *shared.Slot {
	if c.Store == nil {
		return nil
	}
	keys := shared.NewKeys(string(c.ClientSecret), c.AccountID)
	return keys.Slot(c.Store, "appjwt", c.ClientID+"\x00"+c.TokenAPI.String(), c.fetchTimeout(), now)
}

// storedToken is a token as the Store holds it, sealed: all of it that
// the source and [Transport] use. A token taken from the Store has no
// Extra fields but the one that names its API.
type storedToken struct {
	AccessToken string        `json:"a"`
	Expiry      time.Time     `json:"e"`
	Life        time.Duration `json:"l"` // its lifetime when it came
	API         string        `json:"v"`
}

// obtain gets a new token: from Sentinel, without a Store; with one, the
// token another replica stored, or one fetched under the slot's lease and
// stored for the others, or, while the replicas back off after a failed
// fetch, that failure.
func (c *tokenCache) obtain() fetched {
	if c.slot == nil {
		return c.config().fetch(c.ctx, c.domain, c.retry)
	}
	c.mu.Lock()
	held, dropped, failures := c.current.Load().tok, c.dropped, c.failures.N
	c.mu.Unlock()
	var r fetched
	got, err := c.slot.Obtain(c.ctx, func(plain []byte) bool {
		return c.takes(plain, held, dropped)
	}, func(ctx context.Context) shared.Fetched {
		r = c.config().fetch(ctx, c.domain, c.retry)
		if r.err != nil {
			return shared.Fetched{Err: r.err, RetryIn: c.backoff.Delay(failures + 1)}
		}
		api, _ := r.tok.Extra(sentinel.APIField).(string)
		plain, _ := json.Marshal(storedToken{AccessToken: r.tok.AccessToken, Expiry: r.tok.Expiry, Life: r.tok.Expiry.Sub(c.now()), API: api})
		return shared.Fetched{Plain: plain, TTL: r.tok.Expiry.Sub(c.now())}
	})
	if err != nil {
		if be, ok := err.(*shared.BackoffError); ok {
			r.err, r.retryAt = prefixed(be), be.Until
		} else if r.err == nil {
			r.err = prefixed(err) // the source's context ended while it waited
		}
		return r
	}
	if got.Shared {
		var st storedToken
		json.Unmarshal(got.Plain, &st) // takes parsed it
		r.tok = (&oauth2.Token{AccessToken: st.AccessToken, TokenType: "Bearer", Expiry: st.Expiry}).WithExtra(map[string]any{sentinel.APIField: st.API})
		r.host = "the Store"
	}
	r.sealed = got.Sealed
	return r
}

// takes reports whether the source takes a token it found in the Store:
// one that expires after held, the source's (nil if none), was not
// dropped by the source, and is not due for a refresh itself.
func (c *tokenCache) takes(plain []byte, held *oauth2.Token, dropped string) bool {
	var st storedToken
	if json.Unmarshal(plain, &st) != nil || st.AccessToken == "" || st.AccessToken == dropped {
		return false
	}
	if held != nil && (st.AccessToken == held.AccessToken || !st.Expiry.After(held.Expiry)) {
		return false
	}
	return st.Expiry.Sub(c.now()) > min(c.conf.earlyExpiry(), st.Life/2)
}

// dropShared deletes the current token from the Store, in the background,
// when the source drops it after a rejection: no replica takes it from
// the Store again. The replicas' floor between such deletions is
// [lifecycle.RejectFloor]. c.mu must be held.
func (c *tokenCache) dropShared(tok *oauth2.Token) {
	sealed := c.sealed
	c.dropped, c.sealed = tok.AccessToken, nil
	if c.slot != nil && sealed != nil {
		go c.slot.Drop(c.ctx, sealed, lifecycle.RejectFloor)
	}
}
