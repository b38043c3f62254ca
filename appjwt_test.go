package appjwt

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"go/scanner"
	"go/token"
	"html"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lpconnect/appjwt/appjwttest"
	"github.com/lpconnect/appjwt/internal/lphttp"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// fastRetry keeps the shape of defaultRetry with pauses short enough for tests.
var fastRetry = lphttp.Policy{
	Attempts:      4,
	Pause:         lphttp.Backoff{Base: time.Millisecond, Max: 4 * time.Millisecond},
	RetryAfterMax: 20 * time.Millisecond,
	TooManyMin:    time.Millisecond,
}

func newServer(t testing.TB) *appjwttest.Server {
	t.Helper()
	s := appjwttest.NewServer()
	t.Cleanup(s.Close)
	return s
}

func configFor(s *appjwttest.Server) Config {
	return Config{AccountID: s.AccountID, ClientID: s.ClientID, ClientSecret: s.ClientSecret, DomainAPI: s.Host()}
}

// clock is a settable offset from the real time.
type clock struct{ off atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) advance(d time.Duration) { c.off.Add(int64(d)) }

// newTestSource returns the cache behind TokenSource with test-sized
// retries and backoff and a settable clock.
func newTestSource(t testing.TB, s *appjwttest.Server, c Config) (*tokenSource, *clock) {
	t.Helper()
	ts := newTokenSource(s.Context(context.Background()), c)
	ts.retry = fastRetry
	clk := &clock{}
	ts.now, ts.retry.Now = clk.now, clk.now
	ts.backoff = lphttp.Backoff{Base: 20 * time.Millisecond, Max: 100 * time.Millisecond}
	t.Cleanup(func() { waitIdle(t, ts) })
	return ts, clk
}

// fetchOnce runs one fetch of ts in the caller's goroutine, leaving the
// cache as it is.
func fetchOnce(ts *tokenSource) (*oauth2.Token, error) {
	var f flight
	ts.fetch(&f)
	return f.tok, f.err
}

// waitIdle waits for the source's background fetch, if any, to end.
func waitIdle(t testing.TB, ts *tokenSource) {
	ts.mu.Lock()
	f := ts.inflight
	ts.mu.Unlock()
	if f == nil {
		return
	}
	select {
	case <-f.done:
	case <-time.After(10 * time.Second):
		t.Errorf("background fetch still running 10s after the test")
	}
}

// checkGoroutines fails the test if goroutines it started outlive it.
// Register it before anything whose cleanup stops goroutines.
func checkGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<16)
			t.Errorf("%d goroutines left running after the test (before: %d):\n%s", n-before, before, buf[:runtime.Stack(buf, true)])
		}
	})
}

// noSecret fails if the secret shows in any of the texts.
func noSecret(t *testing.T, secret string, texts ...string) {
	t.Helper()
	for _, s := range texts {
		if strings.Contains(s, secret) {
			t.Errorf("secret leaked into %q", s)
		}
	}
}

// errorTexts is every way an error is commonly printed.
func errorTexts(err error) []string {
	return []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)}
}

func TestTokenRequest(t *testing.T) {
	tests := []struct {
		name      string
		inQuery   bool
		wantQuery func(s *appjwttest.Server) map[string][]string
		wantForm  func(s *appjwttest.Server) map[string][]string
	}{
		{
			name: "form body by default",
			wantQuery: func(*appjwttest.Server) map[string][]string {
				return map[string][]string{"v": {"1.0"}, "grant_type": {"client_credentials"}}
			},
			wantForm: func(s *appjwttest.Server) map[string][]string {
				return map[string][]string{"client_id": {s.ClientID}, "client_secret": {s.ClientSecret}}
			},
		},
		{
			name:    "query string when asked",
			inQuery: true,
			wantQuery: func(s *appjwttest.Server) map[string][]string {
				return map[string][]string{"v": {"1.0"}, "grant_type": {"client_credentials"}, "client_id": {s.ClientID}, "client_secret": {s.ClientSecret}}
			},
			wantForm: func(*appjwttest.Server) map[string][]string { return map[string][]string{} },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			c := configFor(s)
			c.CredentialsInQuery = tt.inQuery
			tok, err := c.Token(s.Context(context.Background()))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Verify(tok.AccessToken); err != nil {
				t.Errorf("issued token does not verify: %v", err)
			}
			reqs := s.Requests(appjwttest.Sentinel)
			if len(reqs) != 1 {
				t.Fatalf("Sentinel got %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if got, want := r.Method, "POST"; got != want {
				t.Errorf("method = %q, want %q", got, want)
			}
			if got, want := r.Path, "/sentinel/api/account/"+s.AccountID+"/app/token"; got != want {
				t.Errorf("path = %q, want %q", got, want)
			}
			if got, want := r.Header.Get("Content-Type"), "application/x-www-form-urlencoded"; got != want {
				t.Errorf("Content-Type = %q, want %q", got, want)
			}
			if diff := cmp.Diff(tt.wantQuery(s), map[string][]string(r.Query)); diff != "" {
				t.Errorf("query mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantForm(s), map[string][]string(r.Form)); diff != "" {
				t.Errorf("form mismatch (-want +got):\n%s", diff)
			}
			if got, want := s.Count(appjwttest.DomainAPI), 1; got != want {
				t.Errorf("Domain API got %d requests, want %d", got, want)
			}
		})
	}
}

func TestAccountCannotChangePath(t *testing.T) {
	for _, account := range []string{"a/../../x", "le1?x=y", "le1#frag", "%2e%2e", "a b", "../app/token"} {
		t.Run(account, func(t *testing.T) {
			s := newServer(t)
			c := configFor(s)
			c.AccountID = account
			c.Domain = s.Host()
			c.Token(s.Context(context.Background()))
			reqs := s.Requests(appjwttest.Sentinel)
			if len(reqs) != 1 {
				t.Fatalf("Sentinel endpoint got %d requests, want 1 (the path was changed)", len(reqs))
			}
			got := reqs[0].Path
			if !strings.HasPrefix(got, "/sentinel/api/account/") || !strings.HasSuffix(got, "/app/token") || strings.Count(got, "/") != 6 {
				t.Errorf("path = %q, want one escaped account segment", got)
			}
		})
	}
}

func TestBadConfig(t *testing.T) {
	good := Config{AccountID: "le1", ClientID: "id", ClientSecret: "s3cret-value", Domain: "sentinel.example"}
	tests := []struct {
		name   string
		change func(*Config)
		field  string
	}{
		{"no account", func(c *Config) { c.AccountID = "" }, "AccountID"},
		{"dot-dot account", func(c *Config) { c.AccountID = ".." }, "AccountID"},
		{"no client id", func(c *Config) { c.ClientID = "" }, "ClientID"},
		{"no secret", func(c *Config) { c.ClientSecret = "" }, "ClientSecret"},
		{"secret read back redacted", func(c *Config) { c.ClientSecret = "[REDACTED]" }, "ClientSecret"},
		{"nothing set", func(c *Config) { *c = Config{} }, "AccountID"},
		{"domain with scheme", func(c *Config) { c.Domain = "https://va.sentinel.liveperson.net" }, "Domain"},
		{"domain with path", func(c *Config) { c.Domain = "va.sentinel.liveperson.net/x" }, "Domain"},
		{"domain with query", func(c *Config) { c.Domain = "va.sentinel.liveperson.net?x=1" }, "Domain"},
		{"domain with userinfo", func(c *Config) { c.Domain = "u:p@va.sentinel.liveperson.net" }, "Domain"},
		{"domain with bad port", func(c *Config) { c.Domain = "va.sentinel.liveperson.net:99999" }, "Domain"},
		{"domain with space", func(c *Config) { c.Domain = "va sentinel" }, "Domain"},
		{"domain api with scheme", func(c *Config) { c.DomainAPI = "http://api.liveperson.net" }, "DomainAPI"},
		{"domain api with fragment", func(c *Config) { c.DomainAPI = "api.liveperson.net#x" }, "DomainAPI"},
		{"domain with a signed port", func(c *Config) { c.Domain = "host:+80" }, "Domain"},
		{"domain not an IP in brackets", func(c *Config) { c.Domain = "[a]:443" }, "Domain"},
		{"domain with a brace", func(c *Config) { c.Domain = "a{b}" }, "Domain"},
		{"domain api with a pipe", func(c *Config) { c.DomainAPI = "a|b" }, "DomainAPI"},
		{"domain api with a caret", func(c *Config) { c.DomainAPI = "a^b" }, "DomainAPI"},
		{"negative early expiry", func(c *Config) { c.EarlyExpiry = -time.Second }, "EarlyExpiry"},
		{"negative fetch timeout", func(c *Config) { c.FetchTimeout = -time.Second }, "FetchTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var requests atomic.Int32
			hc := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
				requests.Add(1)
				return nil, errors.New("no request should be sent")
			})}
			ctx := context.WithValue(context.Background(), oauth2.HTTPClient, hc)
			c := good
			tt.change(&c)
			_, err := c.Token(ctx)
			if err == nil {
				t.Fatal("Token succeeded, want a config error")
			}
			if !strings.HasPrefix(err.Error(), "appjwt: Config."+tt.field+" ") && !strings.HasPrefix(err.Error(), "appjwt: Config."+tt.field+":") {
				t.Errorf("error %q does not name Config.%s", err, tt.field)
			}
			_, srcErr := c.TokenSource(ctx).Token()
			if srcErr == nil || srcErr.Error() != err.Error() {
				t.Errorf("TokenSource error = %v, want %v", srcErr, err)
			}
			if n := requests.Load(); n != 0 {
				t.Errorf("%d requests sent, want none", n)
			}
			noSecret(t, good.ClientSecret, errorTexts(err)...)
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// jwt builds an unsigned JWT with the given payload.
func jwt(payload string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc([]byte(payload)) + ".c2ln"
}

func TestExpiry(t *testing.T) {
	sent := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	now := sent.Add(time.Second)
	// A Sentinel clock three hours ahead: exp alone would be three hours off.
	skewedIat := sent.Add(3 * time.Hour).Unix()
	tests := []struct {
		name string
		body string
		want time.Time
	}{
		{"expires_in number wins", fmt.Sprintf(`{"access_token":%q,"expires_in":600}`, jwt(fmt.Sprintf(`{"iat":%d,"exp":%d}`, skewedIat, skewedIat+3600))), sent.Add(10 * time.Minute)},
		{"expires_in string", `{"access_token":"opaque","expires_in":"1200"}`, sent.Add(20 * time.Minute)},
		{"exp - iat from the send time", fmt.Sprintf(`{"access_token":%q}`, jwt(fmt.Sprintf(`{"iat":%d,"exp":%d}`, skewedIat, skewedIat+1800))), sent.Add(30 * time.Minute)},
		{"fractional dates", fmt.Sprintf(`{"access_token":%q}`, jwt(fmt.Sprintf(`{"iat":%d.25,"exp":%d.25}`, skewedIat, skewedIat+1800))), sent.Add(30 * time.Minute)},
		{"exp alone", fmt.Sprintf(`{"access_token":%q}`, jwt(fmt.Sprintf(`{"exp":%d}`, sent.Add(45*time.Minute).Unix()))), sent.Add(45 * time.Minute)},
		{"no times: one hour", fmt.Sprintf(`{"access_token":%q}`, jwt(`{"aud":"le1"}`)), sent.Add(time.Hour)},
		{"not a JWT: one hour", `{"access_token":"opaque-token"}`, sent.Add(time.Hour)},
		{"token_type in lower case", `{"access_token":"t","token_type":"bearer"}`, sent.Add(time.Hour)},
		{"token_type in upper case", `{"access_token":"t","token_type":"BEARER"}`, sent.Add(time.Hour)},
		{"expires_in of a day", `{"access_token":"t","expires_in":86400}`, sent.Add(24 * time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := parseTokenResponse([]byte(tt.body), http.Header{"Content-Type": {"application/json"}}, sent, now)
			if err != nil {
				t.Fatal(err)
			}
			if !tok.Expiry.Equal(tt.want) {
				t.Errorf("Expiry = %v, want %v", tok.Expiry, tt.want)
			}
			if got, want := tok.Type(), "Bearer"; got != want {
				t.Errorf("Type() = %q, want %q", got, want)
			}
		})
	}
}

func TestBadTokenAnswers(t *testing.T) {
	sent := time.Now()
	past := sent.Add(-2 * time.Hour).Unix()
	tests := []struct {
		name, body, wantErr string
	}{
		{"HTML page", "<html><body>Service Unavailable</body></html>", "not a token"},
		{"truncated JSON", `{"access_token":"eyJ`, "not a token"},
		{"no access_token", `{"token_type":"Bearer"}`, "no access_token"},
		{"empty object", `{}`, "no access_token"},
		{"JSON null", `null`, "no access_token"},
		{"token with spaces", `{"access_token":"a b"}`, "characters"},
		{"token with newline", `{"access_token":"a\r\nX-Evil: 1"}`, "characters"},
		{"expires_in zero", `{"access_token":"t","expires_in":0}`, "expired"},
		{"expires_in negative", `{"access_token":"t","expires_in":-5}`, "expires_in"},
		{"expires_in garbage", `{"access_token":"t","expires_in":"soon"}`, "expires_in"},
		{"expires_in huge", `{"access_token":"t","expires_in":99999999999999}`, "expires_in"},
		{"exp before iat", fmt.Sprintf(`{"access_token":%q}`, jwt(fmt.Sprintf(`{"iat":%d,"exp":%d}`, past+60, past))), "expired"},
		{"exp in the past", fmt.Sprintf(`{"access_token":%q}`, jwt(fmt.Sprintf(`{"exp":%d}`, past))), "expired"},
		{"malformed payload", `{"access_token":"a.~~~.c"}`, "base64"},
		{"payload not JSON", fmt.Sprintf(`{"access_token":%q}`, jwt(`nope`)), "JWT payload"},
		{"exp not a number", fmt.Sprintf(`{"access_token":%q}`, jwt(`{"exp":"tomorrow"}`)), "JWT time"},
		{"iat in 1970, exp in an hour", fmt.Sprintf(`{"access_token":%q}`, jwt(fmt.Sprintf(`{"iat":4,"exp":%d}`, sent.Add(time.Hour).Unix()))), "longer than 24h"},
		{"iat in 1970, exp in 1990", fmt.Sprintf(`{"access_token":%q}`, jwt(`{"iat":4,"exp":631152000}`)), "longer than 24h"},
		{"exp alone, two days ahead", fmt.Sprintf(`{"access_token":%q}`, jwt(fmt.Sprintf(`{"exp":%d}`, sent.Add(48*time.Hour).Unix()))), "longer than 24h"},
		{"expires_in over a day", `{"access_token":"t","expires_in":86401}`, "expires_in"},
		{"token_type basic", `{"access_token":"t","token_type":"basic"}`, "token_type"},
		{"token_type with CRLF", `{"access_token":"t","token_type":"Bearer\r\nX-Evil: 1"}`, "token_type"},
		{"token_type with a space", `{"access_token":"t","token_type":"Bearer x"}`, "token_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := parseTokenResponse([]byte(tt.body), http.Header{"Content-Type": {"text/html; charset=utf-8"}}, sent, sent)
			if err == nil {
				t.Fatalf("got token %+v, want an error", tok)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not mention %q", err, tt.wantErr)
			}
		})
	}
}

func TestClockSkewChangesNothing(t *testing.T) {
	for _, skew := range []time.Duration{-5 * time.Hour, 0, 3 * time.Hour} {
		t.Run(skew.String(), func(t *testing.T) {
			s := newServer(t)
			s.SetClockSkew(skew)
			c := configFor(s)
			before := time.Now()
			tok, err := c.Token(s.Context(context.Background()))
			if err != nil {
				t.Fatal(err)
			}
			lo, hi := before.Add(time.Hour-time.Second), time.Now().Add(time.Hour)
			if tok.Expiry.Before(lo) || tok.Expiry.After(hi) {
				t.Errorf("Expiry = %v, want between %v and %v", tok.Expiry, lo, hi)
			}
		})
	}
}

// tokenWithFault makes endpoint e always answer with f and returns the
// error of one Config.Token call, failing the test if there is none.
func tokenWithFault(t *testing.T, e appjwttest.Endpoint, f appjwttest.Fault) (*appjwttest.Server, error) {
	t.Helper()
	s := newServer(t)
	s.SetFault(e, f)
	c := configFor(s)
	_, err := c.Token(s.Context(context.Background()))
	if err == nil {
		t.Fatal("Token succeeded, want an error")
	}
	return s, err
}

func TestSentinelErrors(t *testing.T) {
	big := `{"access_token":"` + strings.Repeat("a", maxBody) + `"}`
	tests := []struct {
		name         string
		fault        appjwttest.Fault
		wantStatus   int // of the *oauth2.RetrieveError; 0: none wanted
		wantCode     string
		wantErr      string
		wantRequests int
	}{
		{"401 not retried", appjwttest.Fault{Status: 401, Body: `{"error":"invalid_client"}`}, 401, "invalid_client", "401 Unauthorized", 1},
		{"400 not retried", appjwttest.Fault{Status: 400, Body: "bad request"}, 400, "", "400 Bad Request", 1},
		{"404 HTML not retried", appjwttest.Fault{Status: 404, Body: "<html>Not Found</html>"}, 404, "", "404 Not Found", 1},
		{"error field with 200", appjwttest.Fault{Body: `{"error":"unauthorized_client","error_description":"nope"}`}, 200, "unauthorized_client", "with an error", 1},
		{"HTML with 200", appjwttest.Fault{Body: "<html>maintenance</html>"}, 0, "", "not a token", 1},
		{"oversized answer", appjwttest.Fault{Body: big}, 0, "", "larger than", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := tokenWithFault(t, appjwttest.Sentinel, tt.fault)
			if !strings.HasPrefix(err.Error(), "appjwt: token request for account") || !strings.Contains(err.Error(), s.Host()) {
				t.Errorf("error %q does not say what failed and where", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			var re *oauth2.RetrieveError
			switch {
			case tt.wantStatus == 0 && errors.As(err, &re):
				t.Errorf("error is a RetrieveError, want another error")
			case tt.wantStatus != 0 && !errors.As(err, &re):
				t.Errorf("error %v is not an *oauth2.RetrieveError", err)
			case tt.wantStatus != 0:
				if got := re.Response.StatusCode; got != tt.wantStatus {
					t.Errorf("RetrieveError status = %d, want %d", got, tt.wantStatus)
				}
				if got := re.ErrorCode; got != tt.wantCode {
					t.Errorf("RetrieveError.ErrorCode = %q, want %q", got, tt.wantCode)
				}
			}
			if got := s.Count(appjwttest.Sentinel); got != tt.wantRequests {
				t.Errorf("Sentinel got %d requests, want %d", got, tt.wantRequests)
			}
			noSecret(t, s.ClientSecret, errorTexts(err)...)
		})
	}
}

func TestRetrieveErrorBodyIsCappedAndScrubbed(t *testing.T) {
	s := newServer(t)
	s.SetFault(appjwttest.Sentinel, appjwttest.Fault{Status: 401, Body: "bad secret " + s.ClientSecret + strings.Repeat("x", 10000)})
	c := configFor(s)
	_, err := c.Token(s.Context(context.Background()))
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("error %v is not an *oauth2.RetrieveError", err)
	}
	if len(re.Body) > maxErrorBody {
		t.Errorf("RetrieveError.Body has %d bytes, want at most %d", len(re.Body), maxErrorBody)
	}
	noSecret(t, s.ClientSecret, string(re.Body), err.Error())
}

func TestDomainAPIErrors(t *testing.T) {
	tests := []struct {
		name    string
		fault   appjwttest.Fault
		wantErr string
	}{
		{"401", appjwttest.Fault{Status: 401, Body: `{"error":"invalid site"}`}, "401 Unauthorized"},
		{"404", appjwttest.Fault{Status: 404}, "404 Not Found"},
		{"no baseURI", appjwttest.Fault{Body: `{"service":"sentinel","account":"x"}`}, "no baseURI"},
		{"empty baseURI", appjwttest.Fault{Body: `{"baseURI":""}`}, "no baseURI"},
		{"baseURI with scheme", appjwttest.Fault{Body: `{"baseURI":"https://evil.example"}`}, "bare host"},
		{"baseURI with path", appjwttest.Fault{Body: `{"baseURI":"evil.example/steal"}`}, "bare host"},
		{"baseURI with userinfo", appjwttest.Fault{Body: `{"baseURI":"x@evil.example"}`}, "bare host"},
		{"not JSON", appjwttest.Fault{Body: `<html>`}, "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := tokenWithFault(t, appjwttest.DomainAPI, tt.fault)
			if !strings.HasPrefix(err.Error(), "appjwt: domain lookup of \"sentinel\" for account") || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q, want a domain lookup error containing %q", err, tt.wantErr)
			}
			if n := s.Count(appjwttest.Sentinel); n != 0 {
				t.Errorf("Sentinel got %d requests, want none", n)
			}
		})
	}
}

func TestLookupDomain(t *testing.T) {
	s := newServer(t)
	ctx := s.Context(context.Background())
	for _, service := range []string{"sentinel", "asyncMessagingEnt", "idp"} {
		host, err := LookupDomain(ctx, s.Host(), s.AccountID, service)
		if err != nil || host != s.Host() {
			t.Errorf("LookupDomain(%q) = %q, %v; want %q", service, host, err, s.Host())
		}
	}
	if _, err := LookupDomain(ctx, s.Host(), s.AccountID, "nope"); err == nil || !strings.Contains(err.Error(), `domain lookup of "nope"`) || !strings.Contains(err.Error(), "404") {
		t.Errorf("unknown service: error %v, want a domain lookup error with the 404", err)
	}
	before := s.Count(appjwttest.DomainAPI)
	for _, bad := range []struct{ api, account, service string }{
		{"https://x", s.AccountID, "idp"},
		{s.Host(), "", "idp"},
		{s.Host(), "..", "idp"},
		{s.Host(), s.AccountID, ""},
		{s.Host(), s.AccountID, ".."},
	} {
		if _, err := LookupDomain(ctx, bad.api, bad.account, bad.service); err == nil || !strings.HasPrefix(err.Error(), "appjwt: ") {
			t.Errorf("LookupDomain(%q, %q, %q) error %v, want an appjwt error", bad.api, bad.account, bad.service, err)
		}
	}
	if got := s.Count(appjwttest.DomainAPI) - before; got != 0 {
		t.Errorf("bad arguments sent %d requests, want none", got)
	}
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	var followed atomic.Bool
	evil := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { followed.Store(true) }))
	defer evil.Close()
	s := newServer(t)
	redirect := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, evil.URL+"/steal", http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	c := configFor(s)
	c.Domain = redirect.Listener.Addr().String()
	_, err := c.Token(context.WithValue(context.Background(), oauth2.HTTPClient, redirect.Client()))
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response.StatusCode != http.StatusTemporaryRedirect {
		t.Errorf("error = %v, want a RetrieveError with status 307", err)
	}
	if followed.Load() {
		t.Error("the redirect was followed")
	}
}

func TestSecretNeverShows(t *testing.T) {
	s := newServer(t)
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	deadHost := closed.Addr().String()
	closed.Close()
	for _, inQuery := range []bool{false, true} {
		c := configFor(s)
		c.CredentialsInQuery = inQuery
		var errs []error
		for _, f := range []appjwttest.Fault{{Status: 401}, {Status: 500}, {Reset: true}, {Body: "{"}} {
			s.QueueFaults(appjwttest.Sentinel, f, f, f, f)
			_, _, err := c.requestToken(s.Context(context.Background()), s.Host(), fastRetry)
			errs = append(errs, err)
		}
		dead := c
		dead.Domain = deadHost
		_, _, err := dead.requestToken(s.Context(context.Background()), deadHost, fastRetry)
		errs = append(errs, err)
		hung := c
		hung.FetchTimeout = 50 * time.Millisecond
		s.QueueFaults(appjwttest.Sentinel, appjwttest.Fault{Hang: true})
		_, err = hung.Token(s.Context(context.Background()))
		errs = append(errs, err)

		for _, err := range errs {
			if err == nil {
				t.Fatal("got no error")
			}
			noSecret(t, s.ClientSecret, errorTexts(err)...)
			var re *oauth2.RetrieveError
			if errors.As(err, &re) {
				noSecret(t, s.ClientSecret, re.Response.Request.URL.String(), fmt.Sprintf("%+v", *re.Response.Request))
				if re.Response.Request.GetBody != nil || re.Response.Request.Body != nil {
					t.Error("RetrieveError.Response.Request keeps a body")
				}
			}
		}
		var logs bytes.Buffer
		slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "c", c, "p", &c)
		slog.New(slog.NewTextHandler(&logs, nil)).Info("config", "c", c)
		noSecret(t, s.ClientSecret, logs.String(),
			fmt.Sprint(c), fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c),
			fmt.Sprintf("%v", &c), fmt.Sprintf("%+v", &c), fmt.Sprintf("%#v", &c), fmt.Sprintf("%s", c), fmt.Sprintf("%q", c), fmt.Sprintf("%x", c))
		if !strings.Contains(fmt.Sprintf("%#v", c), "appjwt.Config{") || !strings.Contains(fmt.Sprintf("%+v", c), "ClientSecret:[REDACTED]") {
			t.Errorf("formatted Config lost its shape: %#v", c)
		}
	}
}

func TestConfigJSON(t *testing.T) {
	c := Config{AccountID: "le1", ClientID: "id", ClientSecret: "s3cret-value", EarlyExpiry: time.Minute}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("start", "settings", struct{ Conf Config }{c})
	texts := []string{logs.String()}
	for _, v := range []any{c, &c, struct{ C Config }{c}, []Config{c}} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, string(b))
	}
	noSecret(t, c.ClientSecret, texts...)
	if !strings.Contains(texts[1], `"ClientSecret":"[REDACTED]"`) || !strings.Contains(texts[1], `"EarlyExpiry":60000000000`) {
		t.Errorf("json.Marshal(c) = %s, want the fields with the secret redacted", texts[1])
	}
	var read Config
	if err := json.Unmarshal([]byte(`{"AccountID":"le1","ClientID":"id","ClientSecret":"s3cret-value","EarlyExpiry":60000000000}`), &read); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, read); diff != "" {
		t.Errorf("Config read from JSON mismatch (-want +got):\n%s", diff)
	}
}

func TestErrorsAreOneLine(t *testing.T) {
	for _, status := range []int{400, 401, 503} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			_, err := tokenWithFault(t, appjwttest.Sentinel, appjwttest.Fault{Status: status})
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is not one line", err)
			}
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) || re.Response.StatusCode != status {
				t.Errorf("error %v, want a RetrieveError with status %d", err, status)
			}
		})
	}
}

func TestTokenHonoursContext(t *testing.T) {
	s := newServer(t)
	s.SetFault(appjwttest.Sentinel, appjwttest.Fault{Hang: true})
	c := configFor(s)

	ctx, cancel := context.WithTimeout(s.Context(context.Background()), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Token(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error = %v, want one that is context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Token returned after %v, want about 100ms", d)
	}

	ctx, cancel = context.WithCancel(s.Context(context.Background()))
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err = c.Token(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want one that is context.Canceled", err)
	}

	c.FetchTimeout = 100 * time.Millisecond
	start = time.Now()
	_, err = c.Token(s.Context(context.Background()))
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Errorf("with FetchTimeout 100ms: error = %v after %v, want a deadline error after about 100ms", err, time.Since(start))
	}
}

func TestTokenSourceCaches(t *testing.T) {
	checkGoroutines(t)
	s := newServer(t)
	s.SetLifetime(3 * time.Second)
	c := configFor(s)
	c.EarlyExpiry = 2 * time.Second
	src := c.TokenSource(s.Context(context.Background()))

	first, err := src.Token()
	if err != nil {
		t.Fatal(err)
	}
	cached, err := src.Token()
	if err != nil || cached.AccessToken != first.AccessToken {
		t.Fatalf("second Token() = %v, %v; want the first token", cached, err)
	}
	for range 10 {
		// The wrapper hands out one *oauth2.Token: nothing is copied or locked.
		if tok, err := src.Token(); err != nil || tok != cached {
			t.Fatalf("Token() = %p, %v; want the cached %p", tok, err, cached)
		}
	}
	if got := s.Count(appjwttest.Sentinel); got != 1 {
		t.Fatalf("Sentinel got %d requests for a fresh token, want 1", got)
	}
	// Half the lifetime in, the token is due: a new one comes, without error.
	deadline := time.Now().Add(5 * time.Second)
	for s.Count(appjwttest.Sentinel) < 2 && time.Now().Before(deadline) {
		if _, err := src.Token(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := s.Count(appjwttest.Sentinel); got != 2 {
		t.Errorf("Sentinel got %d requests after the refresh point, want 2", got)
	}
	if got := s.Count(appjwttest.DomainAPI); got != 1 {
		t.Errorf("Domain API got %d requests, want 1 (the domain is cached)", got)
	}
}

func TestColdSourceSendsOneRequest(t *testing.T) {
	checkGoroutines(t)
	s := newServer(t)
	s.SetFault(appjwttest.Sentinel, appjwttest.Fault{Delay: 50 * time.Millisecond})
	c := configFor(s)
	src := c.TokenSource(s.Context(context.Background()))
	var wg sync.WaitGroup
	var failures atomic.Int32
	for range 200 {
		wg.Go(func() {
			if _, err := src.Token(); err != nil {
				failures.Add(1)
			}
		})
	}
	wg.Wait()
	if n := failures.Load(); n != 0 {
		t.Errorf("%d callers failed", n)
	}
	if got := s.Count(appjwttest.Sentinel); got != 1 {
		t.Errorf("Sentinel got %d requests, want 1", got)
	}
	if got := s.Count(appjwttest.DomainAPI); got != 1 {
		t.Errorf("Domain API got %d requests, want 1", got)
	}
}

func TestDomainCache(t *testing.T) {
	s := newServer(t)
	ts, clk := newTestSource(t, s, configFor(s))
	ts.conf.EarlyExpiry = time.Minute

	refresh := func() error {
		clk.advance(59 * time.Minute) // past the refresh point of each token
		ts.mu.Lock()
		f := ts.start()
		ts.mu.Unlock()
		<-f.done
		return f.err
	}
	if _, err := ts.Token(); err != nil {
		t.Fatal(err)
	}
	if err := refresh(); err != nil { // within the TTL: cached
		t.Fatal(err)
	}
	if got := s.Count(appjwttest.DomainAPI); got != 1 {
		t.Errorf("Domain API got %d requests within the TTL, want 1", got)
	}
	s.SetFault(appjwttest.DomainAPI, appjwttest.Fault{Status: 503})
	if err := refresh(); err != nil { // past the TTL, lookup fails: the last good domain serves
		t.Errorf("refresh with the Domain API down: %v, want the last good domain used", err)
	}
	if got, want := s.Count(appjwttest.Sentinel), 3; got != want {
		t.Errorf("Sentinel got %d requests, want %d", got, want)
	}
	s.ClearFault(appjwttest.DomainAPI)
	before := s.Count(appjwttest.DomainAPI)
	if err := refresh(); err != nil {
		t.Fatal(err)
	}
	if got := s.Count(appjwttest.DomainAPI); got != before+1 {
		t.Errorf("Domain API got %d new requests after a failed lookup, want 1", got-before)
	}
}

func TestTransport(t *testing.T) {
	s := newServer(t)
	c := configFor(s)
	ctx := s.Context(context.Background())
	tok, err := c.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var gotAuth string
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		gotAuth = r.Header.Get("Authorization")
		return &http.Response{StatusCode: 204, Body: http.NoBody, Request: r}, nil
	})
	tr := &Transport{Source: oauth2.StaticTokenSource(tok), Base: base}
	req, _ := http.NewRequest("GET", "https://example.invalid/x", nil)
	req.Header.Set("X-Keep", "1")
	if _, err := tr.RoundTrip(req); err != nil {
		t.Fatal(err)
	}
	if gotAuth != tok.AccessToken {
		t.Errorf("Authorization = %q, want the raw token", gotAuth)
	}
	if req.Header.Get("Authorization") != "" || req.Header.Get("X-Keep") != "1" {
		t.Errorf("the caller's request was modified: %v", req.Header)
	}

	body := &closeRecorder{Reader: strings.NewReader("x")}
	req, _ = http.NewRequest("POST", "https://example.invalid/x", body)
	failing := &Transport{Source: oauth2.ReuseTokenSource(nil, tokenSourceFunc(func() (*oauth2.Token, error) { return nil, errors.New("boom") }))}
	if _, err := failing.RoundTrip(req); err == nil || !body.closed {
		t.Errorf("RoundTrip with a failing source: err = %v, body closed = %v; want an error and a closed body", err, body.closed)
	}
	if _, err := (&Transport{}).RoundTrip(req); err == nil || !strings.HasPrefix(err.Error(), "appjwt: ") {
		t.Errorf("RoundTrip with no Source: err = %v, want an appjwt error", err)
	}
}

func TestHeaderStylesAgainstServer(t *testing.T) {
	s := newServer(t)
	c := configFor(s)
	ctx := s.Context(context.Background())
	consumer := s.URL() + "/api/account/" + s.AccountID + "/consumer?v=1.0"
	post := func(hc *http.Client) (int, string) {
		resp, err := hc.Post(consumer, "application/json", strings.NewReader(`{"ext_consumer_id":"c1"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode, s.Requests(appjwttest.Consumer)[s.Count(appjwttest.Consumer)-1].Header.Get("Authorization")
	}
	status, auth := post(c.Client(ctx))
	if status != 401 || !strings.HasPrefix(auth, "Bearer ey") {
		t.Errorf("Config.Client, strict server: status %d, Authorization %.20q; want 401 and a Bearer token", status, auth)
	}
	s.SetAcceptBearer(true)
	status, auth = post(c.Client(ctx))
	if status != 201 || !strings.HasPrefix(auth, "Bearer ey") {
		t.Errorf("Config.Client: status %d, Authorization %.20q; want 201 and a Bearer token", status, auth)
	}
	s.SetAcceptBearer(false)
	raw := &http.Client{Transport: &Transport{Source: c.TokenSource(ctx), Base: s.Client().Transport}}
	status, auth = post(raw)
	if status != 201 || !strings.HasPrefix(auth, "ey") {
		t.Errorf("Transport: status %d, Authorization %.20q; want 201 and a raw token", status, auth)
	}
	status, _ = post(s.Client())
	if status != 401 {
		t.Errorf("unauthorized client: status %d, want 401", status)
	}
}

type tokenSourceFunc func() (*oauth2.Token, error)

func (f tokenSourceFunc) Token() (*oauth2.Token, error) { return f() }

type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

func TestParseClaims(t *testing.T) {
	// The sample AppJWT from LivePerson's documentation.
	const sample = "eyJraWQiOiJhcHBqd3QtMTMtMDUtMTciLCJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJsZTgxODIzMTE4IiwiYXpwIjoiNzU1ODhlMTgtMDIxMy00ZTMzLTgxNzQtODgzYWNhYzdlM2M0Iiwic2NvcGUiOiJtc2cuY29uc3VtZXIiLCJpc3MiOiJTZW50aW5lbCIsImV4cCI6MTUyNDY0NjI3MCwiaWF0IjoxNTI0NjQyNjcwfQ.aC1EbVQDIKJkrMgfoqhDqo5KZVMILTGP5UnK_4lUJQIfpFcrymvQKU9E6zt_WDhWmM2SOOcr1sz4u5xVZ9rMWZciDW_9KofEM2NDgVw1EVBxAIgGYeO0sbE9o--HKjk9DHZvukJkQFhYaHMDnj6ay4BNUqTJpDn6y3XQY7eh7rM"
	got, err := ParseClaims(sample)
	if err != nil {
		t.Fatal(err)
	}
	want := &Claims{
		Audience:        "le81823118",
		AuthorizedParty: "75588e18-0213-4e33-8174-883acac7e3c4",
		Scope:           "msg.consumer",
		Issuer:          "Sentinel",
		IssuedAt:        time.Unix(1524642670, 0),
		ExpiresAt:       time.Unix(1524646270, 0),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseClaims mismatch (-want +got):\n%s", diff)
	}
	list, err := ParseClaims(jwt(`{"aud":["a","b"]}`))
	if err != nil || list.Audience != "a b" {
		t.Errorf("aud list: got %+v, %v; want Audience \"a b\"", list, err)
	}
}

func TestRetriesInsideOneFetch(t *testing.T) {
	tests := []struct {
		name         string
		faults       []appjwttest.Fault
		wantErr      bool
		wantRequests int
	}{
		{"503 then success", []appjwttest.Fault{{Status: 503}}, false, 2},
		{"429 with Retry-After then success", []appjwttest.Fault{{Status: 429, RetryAfter: "1"}}, false, 2},
		{"reset then success", []appjwttest.Fault{{Reset: true}}, false, 2},
		{"three 5xx then success", []appjwttest.Fault{{Status: 500}, {Status: 502}, {Status: 504}}, false, 4},
		{"four 503: gives up", []appjwttest.Fault{{Status: 503}, {Status: 503}, {Status: 503}, {Status: 503}}, true, 4},
		{"400 is final", []appjwttest.Fault{{Status: 400}}, true, 1},
		{"403 is final", []appjwttest.Fault{{Status: 403}}, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			s.QueueFaults(appjwttest.Sentinel, tt.faults...)
			c := configFor(s)
			_, _, err := c.requestToken(s.Context(context.Background()), s.Host(), fastRetry)
			if (err != nil) != tt.wantErr {
				t.Errorf("error = %v, want error: %v", err, tt.wantErr)
			}
			if got := s.Count(appjwttest.Sentinel); got != tt.wantRequests {
				t.Errorf("Sentinel got %d requests, want %d", got, tt.wantRequests)
			}
		})
	}
}

func TestRetryStopsAtDeadline(t *testing.T) {
	s := newServer(t)
	s.QueueFaults(appjwttest.Sentinel, appjwttest.Fault{Status: 503, RetryAfter: "10"})
	c := configFor(s)
	c.FetchTimeout = 500 * time.Millisecond
	start := time.Now()
	_, err := c.Token(s.Context(context.Background()))
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response.StatusCode != 503 {
		t.Errorf("error = %v, want the 503 answer", err)
	}
	if d := time.Since(start); d > 400*time.Millisecond {
		t.Errorf("took %v: waited for a retry that could not fit the deadline", d)
	}
}

// The tests below drive the cache behind TokenSource through failures.

// dueSource returns a source holding a token whose refresh is due by its
// clock, after fault has been set up on the server.
func dueSource(t *testing.T, fault func(*appjwttest.Server)) (*appjwttest.Server, *tokenSource, *clock, *oauth2.Token) {
	t.Helper()
	s := newServer(t)
	ts, clk := newTestSource(t, s, configFor(s))
	old, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	fault(s)
	clk.advance(time.Hour - DefaultEarlyExpiry + time.Second)
	return s, ts, clk, old
}

func TestRefreshAheadDoesNotBlock(t *testing.T) {
	checkGoroutines(t)
	s, ts, _, old := dueSource(t, func(s *appjwttest.Server) {
		s.QueueFaults(appjwttest.Sentinel, appjwttest.Fault{Delay: time.Second})
		s.SetClockSkew(time.Minute) // so that the new token differs from the old
	})

	var mu sync.Mutex
	var worst time.Duration
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			for range 20 {
				start := time.Now()
				tok, err := ts.Token()
				mu.Lock()
				worst = max(worst, time.Since(start))
				mu.Unlock()
				if err != nil || tok.AccessToken != old.AccessToken {
					t.Errorf("during the refresh: Token() = %v, %v; want the old token", tok, err)
					return
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	wg.Wait()
	if w := worst; w > 100*time.Millisecond {
		t.Errorf("a caller waited %v during a slow refresh, want well under 100ms", w)
	}
	waitIdle(t, ts)
	tok, err := ts.Token()
	if err != nil || tok.AccessToken == old.AccessToken {
		t.Errorf("after the refresh: Token() = %v, %v; want the new token", tok, err)
	}
	if got := s.Count(appjwttest.Sentinel); got != 2 {
		t.Errorf("Sentinel got %d requests, want 2 (one refresh)", got)
	}
}

func TestOutageWithValidToken(t *testing.T) {
	checkGoroutines(t)
	s, ts, clk, old := dueSource(t, func(s *appjwttest.Server) {
		s.SetFault(appjwttest.Sentinel, appjwttest.Fault{Status: 503})
	})
	for i := range 50 {
		tok, err := ts.Token()
		if err != nil || tok.AccessToken != old.AccessToken {
			t.Fatalf("call %d during the outage: Token() = %v, %v; want the old token", i, tok, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	waitIdle(t, ts)
	ts.mu.Lock()
	failures := ts.failures
	ts.mu.Unlock()
	if failures < 1 {
		t.Errorf("no failed refresh recorded during the outage")
	}
	// Well within the margin before real expiry, the old token is no longer served.
	clk.advance(DefaultEarlyExpiry - 5*time.Second)
	if tok, err := ts.Token(); err == nil {
		t.Errorf("5s before expiry, during the outage: got %v, want the fetch error", tok)
	}
	s.ClearFault(appjwttest.Sentinel)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if tok, err := ts.Token(); err == nil && tok.AccessToken != old.AccessToken {
			ts.mu.Lock()
			failures = ts.failures
			ts.mu.Unlock()
			if failures != 0 {
				t.Errorf("failures = %d after a success, want the backoff reset", failures)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Error("no new token within 3s of the recovery")
}

func TestOutageWithoutTokenBoundsLoad(t *testing.T) {
	checkGoroutines(t)
	s := newServer(t)
	s.SetFault(appjwttest.Sentinel, appjwttest.Fault{Status: 503})
	c := configFor(s)
	src := c.TokenSource(s.Context(context.Background())) // default retry and backoff
	stop := time.Now().Add(time.Second)
	var calls, failures atomic.Int32
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			for time.Now().Before(stop) {
				calls.Add(1)
				if _, err := src.Token(); err != nil {
					failures.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if calls.Load() != failures.Load() {
		t.Errorf("%d of %d calls succeeded during the outage", calls.Load()-failures.Load(), calls.Load())
	}
	if got := s.Count(appjwttest.Sentinel); got > 5 {
		t.Errorf("Sentinel got %d requests from 50 goroutines in a second, want at most 5", got)
	}
	// Within the backoff window, the error comes at once and sends nothing.
	before := s.Count(appjwttest.Sentinel)
	start := time.Now()
	_, err := src.Token()
	if err == nil || time.Since(start) > 50*time.Millisecond {
		t.Errorf("within the backoff: Token() error %v after %v, want the last error at once", err, time.Since(start))
	}
	if got := s.Count(appjwttest.Sentinel); got != before {
		t.Errorf("within the backoff: %d new requests, want none", got-before)
	}
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response.StatusCode != 503 {
		t.Errorf("error = %v, want the 503 RetrieveError", err)
	}
}

func TestFaultMatrix(t *testing.T) {
	big := `{"access_token":"` + strings.Repeat("a", maxBody+10) + `"}`
	tests := []struct {
		name         string
		endpoint     appjwttest.Endpoint
		fault        appjwttest.Fault
		times        int  // how many requests get the fault; 0: all
		wantErr      bool // what the caller of a cold source sees
		wantSentinel int
		errIs        error
		wantStatus   int
	}{
		{"400", appjwttest.Sentinel, appjwttest.Fault{Status: 400}, 0, true, 1, nil, 400},
		{"401", appjwttest.Sentinel, appjwttest.Fault{Status: 401}, 0, true, 1, nil, 401},
		{"403", appjwttest.Sentinel, appjwttest.Fault{Status: 403}, 0, true, 1, nil, 403},
		{"429 once", appjwttest.Sentinel, appjwttest.Fault{Status: 429}, 1, false, 2, nil, 0},
		{"429 with Retry-After once", appjwttest.Sentinel, appjwttest.Fault{Status: 429, RetryAfter: "1"}, 1, false, 2, nil, 0},
		{"429 always", appjwttest.Sentinel, appjwttest.Fault{Status: 429}, 0, true, 4, nil, 429},
		{"500 always", appjwttest.Sentinel, appjwttest.Fault{Status: 500}, 0, true, 4, nil, 500},
		{"503 twice", appjwttest.Sentinel, appjwttest.Fault{Status: 503}, 2, false, 3, nil, 0},
		{"slow", appjwttest.Sentinel, appjwttest.Fault{Delay: 100 * time.Millisecond}, 0, false, 1, nil, 0},
		{"hang always", appjwttest.Sentinel, appjwttest.Fault{Hang: true}, 0, true, 1, context.DeadlineExceeded, 0},
		{"reset once", appjwttest.Sentinel, appjwttest.Fault{Reset: true}, 1, false, 2, nil, 0},
		{"reset always", appjwttest.Sentinel, appjwttest.Fault{Reset: true}, 0, true, 4, nil, 0},
		{"malformed body", appjwttest.Sentinel, appjwttest.Fault{Body: `{"access_token":`}, 0, true, 1, nil, 0},
		{"HTML body", appjwttest.Sentinel, appjwttest.Fault{Body: `<html>oops</html>`}, 0, true, 1, nil, 0},
		{"oversized body", appjwttest.Sentinel, appjwttest.Fault{Body: big}, 0, true, 1, nil, 0},
		{"error in 200", appjwttest.Sentinel, appjwttest.Fault{Body: `{"error":"invalid_client"}`}, 0, true, 1, nil, 200},
		{"Domain API 500 once", appjwttest.DomainAPI, appjwttest.Fault{Status: 500}, 1, false, 1, nil, 0},
		{"Domain API down", appjwttest.DomainAPI, appjwttest.Fault{Status: 503}, 0, true, 0, nil, 0},
		{"Domain API hangs", appjwttest.DomainAPI, appjwttest.Fault{Hang: true}, 0, true, 0, context.DeadlineExceeded, 0},
		{"Domain API resets", appjwttest.DomainAPI, appjwttest.Fault{Reset: true}, 0, true, 0, nil, 0},
		{"Domain API garbage", appjwttest.DomainAPI, appjwttest.Fault{Body: `{"baseURI":"evil.example/x"}`}, 0, true, 0, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkGoroutines(t)
			s := newServer(t)
			if tt.times == 0 {
				s.SetFault(tt.endpoint, tt.fault)
			} else {
				for range tt.times {
					s.QueueFaults(tt.endpoint, tt.fault)
				}
			}
			c := configFor(s)
			c.FetchTimeout = 300 * time.Millisecond
			ts, _ := newTestSource(t, s, c)
			ts.retry.RetryAfterMax = 5 * time.Millisecond
			tok, err := ts.Token()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Token() = %v, %v; want error: %v", tok, err, tt.wantErr)
			}
			if got := s.Count(appjwttest.Sentinel); got != tt.wantSentinel {
				t.Errorf("Sentinel got %d requests, want %d", got, tt.wantSentinel)
			}
			if err == nil {
				if err := s.Verify(tok.AccessToken); err != nil {
					t.Errorf("token does not verify: %v", err)
				}
				return
			}
			if !strings.HasPrefix(err.Error(), "appjwt: ") {
				t.Errorf("error %q lacks the appjwt: prefix", err)
			}
			if tt.errIs != nil && !errors.Is(err, tt.errIs) {
				t.Errorf("error %v is not %v", err, tt.errIs)
			}
			var re *oauth2.RetrieveError
			if got := errors.As(err, &re); got != (tt.wantStatus != 0) {
				t.Errorf("errors.As(RetrieveError) = %v, want %v (error: %v)", got, tt.wantStatus != 0, err)
			} else if got && re.Response.StatusCode != tt.wantStatus {
				t.Errorf("RetrieveError status %d, want %d", re.Response.StatusCode, tt.wantStatus)
			}
			noSecret(t, s.ClientSecret, errorTexts(err)...)
			// Within the backoff, the next caller gets the error without a request.
			n := s.Count(appjwttest.Sentinel)
			if _, err2 := ts.Token(); err2 == nil || s.Count(appjwttest.Sentinel) != n {
				t.Errorf("right after the failure: error %v and %d new requests, want the error and none", err2, s.Count(appjwttest.Sentinel)-n)
			}
		})
	}
}

// The tests below hold the cache's schedule to each token's lifetime, and
// Sentinel's clock to what it says.

func TestSentinelDate(t *testing.T) {
	sent := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	now := sent.Add(time.Second)
	// Sentinel's clock, and its Date, three hours ahead of ours.
	date := sent.Add(3 * time.Hour)
	token := func(iat, exp time.Time) string {
		return fmt.Sprintf(`{"access_token":%q}`, jwt(fmt.Sprintf(`{"iat":%d,"exp":%d}`, iat.Unix(), exp.Unix())))
	}
	tests := []struct {
		name    string
		body    string
		date    string
		want    time.Time
		wantErr string
	}{
		{"issued 50 minutes ago: 10 left", token(date.Add(-50*time.Minute), date.Add(10*time.Minute)), date.Format(http.TimeFormat), sent.Add(10 * time.Minute), ""},
		{"fresh: an hour", token(date, date.Add(time.Hour)), date.Format(http.TimeFormat), sent.Add(time.Hour), ""},
		{"exp at Date", token(date.Add(-time.Hour), date), date.Format(http.TimeFormat), time.Time{}, "by Sentinel's own clock"},
		{"exp before Date", token(date.Add(-2*time.Hour), date.Add(-time.Hour)), date.Format(http.TimeFormat), time.Time{}, "by Sentinel's own clock"},
		{"exp a day and more past Date", token(date, date.Add(25*time.Hour)), date.Format(http.TimeFormat), time.Time{}, "longer than 24h"},
		{"expires_in wins", `{"access_token":"t","expires_in":120}`, date.Format(http.TimeFormat), sent.Add(2 * time.Minute), ""},
		{"no Date: exp - iat", token(date.Add(-50*time.Minute), date.Add(10*time.Minute)), "", sent.Add(time.Hour), ""},
		{"Date unparsable: exp - iat", token(date.Add(-50*time.Minute), date.Add(10*time.Minute)), "yesterday", sent.Add(time.Hour), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"Content-Type": {"application/json"}}
			if tt.date != "" {
				h.Set("Date", tt.date)
			}
			tok, err := parseTokenResponse([]byte(tt.body), h, sent, now)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("got %v, %v; want an error containing %q", tok, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tok.Expiry.Equal(tt.want) {
				t.Errorf("Expiry = %v, want %v", tok.Expiry, tt.want)
			}
		})
	}
}

func TestExtra(t *testing.T) {
	s := newServer(t)
	s.QueueFaults(appjwttest.Sentinel, appjwttest.Fault{Body: fmt.Sprintf(`{"access_token":%q,"token_type":"Bearer","scope":"msg.consumer"}`, jwt(`{"aud":"le1"}`))})
	c := configFor(s)
	tok, err := c.TokenSource(s.Context(context.Background())).Token()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tok.Extra("scope"), any("msg.consumer"); got != want {
		t.Errorf(`Extra("scope") = %v, want %v`, got, want)
	}
	if got := tok.Extra("nope"); got != nil {
		t.Errorf(`Extra("nope") = %v, want nil`, got)
	}
}

func TestSchedule(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		life, early time.Duration
		// refreshLo and refreshHi bound the refresh point, serve when
		// the token stops being served; all after now.
		refreshLo, refreshHi, serve time.Duration
	}{
		{2 * time.Second, DefaultEarlyExpiry, time.Second, time.Second, 1800 * time.Millisecond},
		{5 * time.Second, DefaultEarlyExpiry, 2500 * time.Millisecond, 2500 * time.Millisecond, 4500 * time.Millisecond},
		{15 * time.Second, DefaultEarlyExpiry, 7500 * time.Millisecond, 7500 * time.Millisecond, 13500 * time.Millisecond},
		{time.Minute, DefaultEarlyExpiry, 30 * time.Second, 30 * time.Second, 54 * time.Second},
		{time.Hour, DefaultEarlyExpiry, 49 * time.Minute, 55 * time.Minute, time.Hour - 10*time.Second},
		{time.Hour, time.Second, 54*time.Minute - time.Second, time.Hour - time.Second, time.Hour - 500*time.Millisecond},
		{time.Hour, 2 * time.Hour, 30 * time.Minute, 30 * time.Minute, time.Hour - 10*time.Second},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v/early %v", tt.life, tt.early), func(t *testing.T) {
			s := &tokenSource{conf: Config{EarlyExpiry: tt.early}}
			for range 100 {
				refreshAt, serveUntil := s.schedule(now, now.Add(tt.life))
				if r := refreshAt.Sub(now); r < tt.refreshLo || r > tt.refreshHi {
					t.Fatalf("refresh after %v, want between %v and %v", r, tt.refreshLo, tt.refreshHi)
				}
				if got := serveUntil.Sub(now); got != tt.serve {
					t.Fatalf("served for %v, want %v", got, tt.serve)
				}
			}
		})
	}
}

func TestFleetRefreshesSpread(t *testing.T) {
	now := time.Now()
	var points []time.Time
	for range 100 {
		ts := newTokenSource(context.Background(), Config{AccountID: "le1", ClientID: "id", ClientSecret: "s"})
		ts.now = func() time.Time { return now }
		ts.settle(&flight{tok: &oauth2.Token{AccessToken: "t", Expiry: now.Add(time.Hour)}})
		points = append(points, ts.refreshAt)
	}
	first, last := slices.MinFunc(points, time.Time.Compare), slices.MaxFunc(points, time.Time.Compare)
	if spread := last.Sub(first); spread < 3*time.Minute {
		t.Errorf("100 sources refresh within %v of each other, want several minutes apart", spread)
	}
	if first.Before(now.Add(30 * time.Minute)) {
		t.Errorf("a source refreshes %v after its token arrived, before half its lifetime", first.Sub(now))
	}
}

// underLoad drives ts, with its injected clock, through rounds lifetimes
// of tokens that live life each: at every step of life/40, 8 goroutines
// call Token() at once. It fails the test if any call waits for a fetch
// while a token is valid, or gets a token at or past its Expiry, and
// returns the Sentinel requests per minute of the clock.
func underLoad(t testing.TB, s *appjwttest.Server, ts *tokenSource, clk *clock, life time.Duration, rounds int) float64 {
	t.Helper()
	if _, err := ts.Token(); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, ts)
	start, before := clk.now(), s.Count(appjwttest.Sentinel)
	step := life / 40
	for range 40 * rounds {
		clk.advance(step)
		ts.mu.Lock()
		servable := ts.tok != nil && clk.now().Before(ts.serveUntil)
		ts.mu.Unlock()
		if !servable {
			t.Fatalf("after %v: no token to serve, callers wait", clk.now().Sub(start))
		}
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				tok, err := ts.Token()
				if err != nil || !tok.Expiry.After(clk.now()) {
					t.Errorf("after %v: Token() = %v, %v; want a token not yet expired", clk.now().Sub(start), tok, err)
				}
			})
		}
		wg.Wait()
		waitIdle(t, ts)
	}
	return float64(s.Count(appjwttest.Sentinel)-before) / clk.now().Sub(start).Minutes()
}

func TestLifetimesUnderLoad(t *testing.T) {
	for _, life := range []time.Duration{2 * time.Second, 5 * time.Second, 15 * time.Second, time.Minute, time.Hour} {
		t.Run(life.String(), func(t *testing.T) {
			s := newServer(t)
			s.SetLifetime(life)
			ts, clk := newTestSource(t, s, configFor(s))
			const rounds = 4
			perMinute := underLoad(t, s, ts, clk, life, rounds)
			// One request per half-lifetime at most: two per lifetime.
			if max := 2 / life.Minutes(); perMinute > max {
				t.Errorf("%.1f Sentinel requests a minute, want at most %.1f", perMinute, max)
			}
		})
	}
}

// TestShortLifetimeRealTime runs 2 s tokens through the whole source, the
// wrapper included, on the real clock.
func TestShortLifetimeRealTime(t *testing.T) {
	checkGoroutines(t)
	s := newServer(t)
	s.SetLifetime(2 * time.Second)
	c := configFor(s)
	src := c.TokenSource(s.Context(context.Background()))
	if _, err := src.Token(); err != nil {
		t.Fatal(err)
	}
	stop := time.Now().Add(4 * time.Second)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for time.Now().Before(stop) {
				tok, err := src.Token()
				if err != nil || !tok.Expiry.After(time.Now()) {
					t.Errorf("Token() = %v, %v; want a token not yet expired", tok, err)
					return
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	wg.Wait()
	// A refresh a second: 4 in 4 s, and a little slack for the clock.
	if got := s.Count(appjwttest.Sentinel); got > 6 {
		t.Errorf("Sentinel got %d requests in 4 s of 2 s tokens, want at most 6", got)
	}
}

// captured is a log record a test saw.
type captured struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

// captureHandler keeps every record it is given.
type captureHandler struct {
	mu      sync.Mutex
	records []captured
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *captureHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *captureHandler) WithGroup(string) slog.Handler            { return h }

func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	c := captured{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	r.Attrs(func(a slog.Attr) bool {
		c.attrs[a.Key] = a.Value.String()
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, c)
	return nil
}

func (h *captureHandler) take() []captured {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.records
	h.records = nil
	return r
}

// keys returns the sorted keys of c's attributes.
func (c captured) keys() []string { return slices.Sorted(maps.Keys(c.attrs)) }

func TestLogRecords(t *testing.T) {
	s := newServer(t)
	var h captureHandler
	c := configFor(s)
	c.Logger = slog.New(&h)
	ts, clk := newTestSource(t, s, c)
	var tokens []string
	token := func() {
		t.Helper()
		tok, err := ts.Token()
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, tok.AccessToken)
	}
	type want struct {
		Level slog.Level
		Msg   string
		Keys  []string
	}
	fetched := want{slog.LevelDebug, msgFetched, []string{"account", "client_id", "expiry", "host", "lifetime", "refresh_at", "took"}}
	var seen []captured
	check := func(step string, wants ...want) []captured {
		t.Helper()
		waitIdle(t, ts)
		got := h.take()
		seen = append(seen, got...)
		if len(got) != len(wants) {
			t.Fatalf("%s: %d records %v, want %d", step, len(got), got, len(wants))
		}
		for i, w := range wants {
			if diff := cmp.Diff(w, want{got[i].level, got[i].msg, got[i].keys()}); diff != "" {
				t.Errorf("%s: record %d mismatch (-want +got):\n%s", step, i, diff)
			}
		}
		return got
	}

	token()
	check("first token", fetched)

	s.SetFault(appjwttest.Sentinel, appjwttest.Fault{Status: 503})
	clk.advance(56 * time.Minute)
	token()
	failed := check("failed refresh", want{slog.LevelWarn, msgFetchFailed, []string{"account", "attempts", "client_id", "error", "error_class", "failures", "host", "retry_at", "serving", "serving_until", "status"}})
	if got, want := []string{failed[0].attrs["status"], failed[0].attrs["error_class"], failed[0].attrs["attempts"], failed[0].attrs["serving"]}, []string{"503", "status", "4", "true"}; !slices.Equal(got, want) {
		t.Errorf("failed refresh: status, error_class, attempts, serving = %v, want %v", got, want)
	}

	s.ClearFault(appjwttest.Sentinel)
	s.SetFault(appjwttest.DomainAPI, appjwttest.Fault{Status: 503})
	clk.advance(lphttp.DomainTTL) // past the backoff and the domain's TTL
	token()
	recovered := check("recovery past the domain TTL",
		want{slog.LevelWarn, msgRelookupFailed, []string{"account", "domain_api", "error", "error_class", "host", "retry_at"}},
		want{slog.LevelInfo, msgRecovered, []string{"account", "client_id", "failures", "outage"}},
		fetched)
	if got, want := recovered[1].attrs["failures"], "1"; got != want {
		t.Errorf("recovery: failures = %s, want %s", got, want)
	}

	var all []string
	for _, r := range seen {
		all = append(all, r.msg)
		for _, v := range r.attrs {
			all = append(all, v)
		}
	}
	noSecret(t, s.ClientSecret, all...)
	for _, tok := range tokens {
		for _, part := range strings.Split(tok, ".") {
			for _, v := range all {
				if strings.Contains(v, part) {
					t.Errorf("a log record shows part of a token: %q", v)
				}
			}
		}
	}
}

func TestTransportClonesDeeply(t *testing.T) {
	scribbler := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r.URL.Path = "/changed"
		r.Header["X-Keep"][0] = "changed"
		r.Header.Set("X-Added", "1")
		return &http.Response{StatusCode: 204, Body: http.NoBody, Request: r}, nil
	})
	tr := &Transport{Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "t"}), Base: scribbler}
	req, _ := http.NewRequest("GET", "https://example.invalid/x", nil)
	req.Header.Set("X-Keep", "1")
	if _, err := tr.RoundTrip(req); err != nil {
		t.Fatal(err)
	}
	got := []string{req.URL.Path, req.Header.Get("X-Keep"), req.Header.Get("X-Added"), req.Header.Get("Authorization")}
	if want := []string{"/x", "1", "", ""}; !slices.Equal(got, want) {
		t.Errorf("caller's request after RoundTrip: path, X-Keep, X-Added, Authorization = %q, want %q", got, want)
	}
}

// The tests below hold Transport and the cache to their promises when the
// API rejects a token before its expiry.

// consumerURL is the stand-in's ConsumerJWS endpoint, which checks the AppJWT.
func consumerURL(s *appjwttest.Server) string {
	return s.URL() + "/api/account/" + s.AccountID + "/consumer?v=1.0"
}

// postConsumer creates a ConsumerJWS through hc and returns the status.
func postConsumer(t *testing.T, hc *http.Client, s *appjwttest.Server) int {
	t.Helper()
	resp, err := hc.Post(consumerURL(s), "application/json", strings.NewReader(`{"ext_consumer_id":"c1"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// recoveringClients are the two header styles, each on its own source.
func recoveringClients(s *appjwttest.Server, c Config) map[string]*http.Client {
	ctx := s.Context(context.Background())
	return map[string]*http.Client{
		"Transport":     {Transport: &Transport{Source: c.TokenSource(ctx), Base: s.Client().Transport}},
		"Config.Client": c.Client(ctx),
	}
}

func TestRevocationCausesOneFetch(t *testing.T) {
	s := newServer(t)
	s.SetAcceptBearer(true)
	for name, hc := range recoveringClients(s, configFor(s)) {
		t.Run(name, func(t *testing.T) {
			if got := postConsumer(t, hc, s); got != 201 {
				t.Fatalf("before the revocation: status %d, want 201", got)
			}
			s.RevokeTokens()
			before := s.Count(appjwttest.Sentinel)
			var wg sync.WaitGroup
			for range 50 {
				wg.Go(func() {
					if got := postConsumer(t, hc, s); got != 201 {
						t.Errorf("after the revocation: status %d, want 201", got)
					}
				})
			}
			wg.Wait()
			if got := s.Count(appjwttest.Sentinel) - before; got != 1 {
				t.Errorf("Sentinel got %d requests after the revocation, want 1", got)
			}
		})
	}
}

func TestRejectionStormIsBounded(t *testing.T) {
	s := newServer(t)
	hc := recoveringClients(s, configFor(s))["Transport"]
	if got := postConsumer(t, hc, s); got != 201 {
		t.Fatalf("status %d, want 201", got)
	}
	s.SetRejectCode(40102)
	stop := time.Now().Add(2 * time.Second)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			for time.Now().Before(stop) {
				if got := postConsumer(t, hc, s); got != 401 {
					t.Errorf("during the storm: status %d, want 401", got)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := s.Count(appjwttest.Sentinel); got > 4 {
		t.Errorf("Sentinel got %d requests in all, want at most 4", got)
	}
	s.SetRejectCode(0)
	if got := postConsumer(t, hc, s); got != 201 {
		t.Errorf("after the storm: status %d, want 201", got)
	}
}

func TestTransportOn401(t *testing.T) {
	tests := []struct {
		name        string
		setup       func(s *appjwttest.Server)
		body        func() io.Reader // nil: no body
		wantStatus  int
		wantAPI     int // requests the API got for the call
		wantFetches int // Sentinel requests the call caused
		wantNext    int // status of the next, replayable call
	}{
		{"revoked, no body", func(s *appjwttest.Server) { s.RevokeTokens() }, nil, 400, 2, 1, 201},
		{"revoked, POST body resent whole", func(s *appjwttest.Server) { s.RevokeTokens() }, func() io.Reader { return strings.NewReader(`{"ext_consumer_id":"c1"}`) }, 201, 2, 1, 201},
		{"revoked, body that cannot be resent", func(s *appjwttest.Server) { s.RevokeTokens() }, func() io.Reader { return io.MultiReader(strings.NewReader(`{"ext_consumer_id":"c1"}`)) }, 401, 1, 0, 201},
		{"ConsumerJWS invalid: AppJWT kept", func(s *appjwttest.Server) { s.SetRejectCode(40103) }, nil, 401, 1, 0, 401},
		{"ConsumerJWS missing: AppJWT kept", func(s *appjwttest.Server) { s.SetRejectCode(40104) }, nil, 401, 1, 0, 401},
		{"second 401 goes back", func(s *appjwttest.Server) { s.SetRejectCode(40102) }, nil, 401, 2, 1, 401},
		{"401 without LivePerson's body", func(s *appjwttest.Server) { s.QueueFaults(appjwttest.Consumer, appjwttest.Fault{Status: 401}) }, nil, 400, 2, 1, 201},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			hc := recoveringClients(s, configFor(s))["Transport"]
			if got := postConsumer(t, hc, s); got != 201 {
				t.Fatalf("status %d, want 201", got)
			}
			tt.setup(s)
			api, sentinel := s.Count(appjwttest.Consumer), s.Count(appjwttest.Sentinel)
			var body io.Reader
			if tt.body != nil {
				body = tt.body()
			}
			req, _ := http.NewRequest("POST", consumerURL(s), body)
			req.Header.Set("Content-Type", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status %d (%s), want %d", resp.StatusCode, b, tt.wantStatus)
			}
			if resp.StatusCode == 401 && !json.Valid(b) {
				t.Errorf("the 401 that went back lost its body: %q", b)
			}
			if got := s.Count(appjwttest.Consumer) - api; got != tt.wantAPI {
				t.Errorf("the API got %d requests, want %d", got, tt.wantAPI)
			}
			if got := s.Count(appjwttest.Sentinel) - sentinel; got != tt.wantFetches {
				t.Errorf("Sentinel got %d requests, want %d", got, tt.wantFetches)
			}
			if got := postConsumer(t, hc, s); got != tt.wantNext {
				t.Errorf("next call: status %d, want %d", got, tt.wantNext)
			}
		})
	}
}

func TestTransportDoneContextIsNotResent(t *testing.T) {
	s := newServer(t)
	c := configFor(s)
	src := c.TokenSource(s.Context(context.Background()))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The caller gives up while the first answer is on its way.
	cancelling := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := s.Client().Transport.RoundTrip(r)
		cancel()
		return resp, err
	})
	hc := &http.Client{Transport: &Transport{Source: src, Base: cancelling}}
	if _, err := src.Token(); err != nil {
		t.Fatal(err)
	}
	s.RevokeTokens()
	req, _ := http.NewRequestWithContext(ctx, "POST", consumerURL(s), nil)
	resp, err := hc.Do(req)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("status %d, want the 401", resp.StatusCode)
		}
	}
	if got := s.Count(appjwttest.Consumer); got != 1 {
		t.Errorf("the API got %d requests, want 1: a done request is not resent", got)
	}
}

func TestTransportWithoutRejecter(t *testing.T) {
	s := newServer(t)
	c := configFor(s)
	tok, err := c.Token(s.Context(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &Transport{Source: oauth2.StaticTokenSource(tok), Base: s.Client().Transport}}
	s.RevokeTokens()
	if got := postConsumer(t, hc, s); got != 401 {
		t.Errorf("status %d, want the 401 as it came", got)
	}
	if got := s.Count(appjwttest.Consumer); got != 1 {
		t.Errorf("the API got %d requests, want 1", got)
	}
}

func TestRejectKeepsNewerToken(t *testing.T) {
	s := newServer(t)
	ts, clk := newTestSource(t, s, configFor(s))
	old, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	clk.advance(time.Hour) // the old token is gone: the next call fetches
	current, err := ts.Token()
	if err != nil || current.AccessToken == old.AccessToken {
		t.Fatalf("Token() = %v, %v; want a new token", current, err)
	}
	if ts.reject(old) {
		t.Error("a late rejection of the old token dropped the current one")
	}
	if !ts.reject(current) {
		t.Error("rejecting the current token did not drop it")
	}
	clk.advance(time.Second)
	if _, err := ts.Token(); err != nil {
		t.Fatal(err)
	}
	ts.mu.Lock()
	next := ts.tok
	ts.mu.Unlock()
	if ts.reject(next) {
		t.Errorf("a second rejection within %v dropped a token", forcedFetchFloor)
	}
	clk.advance(forcedFetchFloor)
	if !ts.reject(next) {
		t.Errorf("a rejection %v after the last did not drop the token", forcedFetchFloor)
	}
}

func TestRejectionIsLogged(t *testing.T) {
	s := newServer(t)
	var h captureHandler
	c := configFor(s)
	c.Logger = slog.New(&h)
	hc := recoveringClients(s, c)["Transport"]
	if got := postConsumer(t, hc, s); got != 201 {
		t.Fatalf("status %d, want 201", got)
	}
	s.RevokeTokens()
	if got := postConsumer(t, hc, s); got != 201 {
		t.Fatalf("after the revocation: status %d, want 201", got)
	}
	var rejected []captured
	for _, r := range h.take() {
		if r.msg == msgRejected {
			rejected = append(rejected, r)
		}
	}
	if len(rejected) != 1 {
		t.Fatalf("%d rejection records, want 1", len(rejected))
	}
	want := map[string]string{"account": s.AccountID, "client_id": s.ClientID, "host": s.Host(), "path": "/api/account/" + s.AccountID + "/consumer", "error_code": "40102", "resent": "true"}
	if diff := cmp.Diff(want, rejected[0].attrs); diff != "" {
		t.Errorf("rejection record mismatch (-want +got):\n%s", diff)
	}
	if got := rejected[0].level; got != slog.LevelWarn {
		t.Errorf("level %v, want WARN", got)
	}
}

func TestErrorCode(t *testing.T) {
	tests := []struct {
		name, body string
		want       int
	}{
		{"LivePerson's 401", `{"kind":"resp","code":401,"body":{"title":"AppJWT has expired or is invalid","details":"x","errorCode":40102},"type":".ReqBody$ErrorResp"}`, 40102},
		{"errorCode as a string", `{"body":{"errorCode":"40103"}}`, 40103},
		{"no errorCode", `{"error":"invalid_client"}`, 0},
		{"not JSON", `<html>401</html>`, 0},
		{"empty", ``, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: 401, Body: io.NopCloser(strings.NewReader(tt.body))}
			if got := ErrorCode(resp); got != tt.want {
				t.Errorf("ErrorCode = %d, want %d", got, tt.want)
			}
			if b, err := io.ReadAll(resp.Body); err != nil || string(b) != tt.body {
				t.Errorf("body after ErrorCode = %q, %v; want it whole", b, err)
			}
		})
	}
}

// The tests below hold the promises a hostile or broken server tests:
// echoed secrets, odd status lines and bodies, implausible answers.

// fixedSecrets are secrets with the characters encodings treat specially:
// '/', '+', '=', '&', '<', '>', '"', '\', '%', a space, a leading '-'.
var fixedSecrets = []string{`Ab/Cd+Ef0=`, `-x&y<z>"q\w`, `p a+s%s`}

// echoForms are the ways a server or proxy may encode secret when it
// echoes a request back.
func echoForms(secret string) map[string]string {
	var uLower, uUpper, dec, hexRef, pctLower strings.Builder
	for _, r := range secret {
		fmt.Fprintf(&uLower, `\u%04x`, r)
		fmt.Fprintf(&uUpper, `\u%04X`, r)
		fmt.Fprintf(&dec, "&#%d;", r)
		fmt.Fprintf(&hexRef, "&#x%x;", r)
	}
	for i := 0; i < len(secret); i++ {
		fmt.Fprintf(&pctLower, "%%%02x", secret[i])
	}
	jsonText := jsonString(secret) // Go escapes <, > and & too
	return map[string]string{
		"plain":              secret,
		"JSON":               jsonText,
		`JSON \/`:            strings.ReplaceAll(jsonText, "/", `\/`),
		`JSON \u lower`:      uLower.String(),
		`JSON \u upper`:      uUpper.String(),
		"query escape":       url.QueryEscape(secret),
		"path escape":        url.PathEscape(secret),
		"percent lower":      pctLower.String(),
		"HTML escape":        html.EscapeString(secret),
		"HTML decimal":       dec.String(),
		"HTML hex":           hexRef.String(),
		"JSON of query":      jsonString(url.QueryEscape(secret)),
		"HTML of query":      html.EscapeString(url.QueryEscape(secret)),
		"query of JSON \\/":  url.QueryEscape(strings.ReplaceAll(jsonText, "/", `\/`)),
		"percent lower HTML": html.EscapeString(pctLower.String()),
	}
}

// jsonString is s as encoding/json writes it in a string, without quotes.
func jsonString(s string) string {
	b := must(json.Marshal(s))
	return string(b[1 : len(b)-1])
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// echoServer answers every request with status, header and body.
func echoServer(t *testing.T, status int, header http.Header, body string) *httptest.Server {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		maps.Copy(w.Header(), header)
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(ts.Close)
	return ts
}

// rawServer answers every request with answer, written straight to the
// connection: what net/http's server never sends, such as a reason phrase
// of its own or a body shorter than its Content-Length.
func rawServer(t *testing.T, answer string) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		io.Copy(io.Discard, r.Body)
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		buf.WriteString(answer)
		buf.Flush()
	}))
	t.Cleanup(ts.Close)
	return ts, &n
}

// tokenFrom returns the error of one Config.Token call with secret against
// ts, which stands for Sentinel.
func tokenFrom(t *testing.T, ts *httptest.Server, secret string, inQuery bool) error {
	t.Helper()
	c := Config{AccountID: "le1", ClientID: "id", ClientSecret: secret, Domain: ts.Listener.Addr().String(), CredentialsInQuery: inQuery, FetchTimeout: 2 * time.Second}
	_, err := c.Token(context.WithValue(context.Background(), oauth2.HTTPClient, ts.Client()))
	if err == nil {
		t.Fatal("Token succeeded, want an error")
	}
	return err
}

// reachableTexts is every text a caller can reach from err: its own
// texts, and those of the RetrieveError inside, if any.
func reachableTexts(err error) []string {
	texts := errorTexts(err)
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		texts = append(texts, string(re.Body), re.ErrorCode, re.ErrorDescription, re.ErrorURI, re.Response.Status, fmt.Sprintf("%+v", *re.Response.Request), fmt.Sprint(re.Response.Header))
		for k, vs := range re.Response.Header {
			texts = append(texts, k+": "+strings.Join(vs, ", "))
		}
	}
	return texts
}

// noEcho fails if secret shows, in any form of echoForms, in any text.
func noEcho(t *testing.T, secret string, texts ...string) {
	t.Helper()
	for form, enc := range echoForms(secret) {
		for _, s := range texts {
			if strings.Contains(s, enc) {
				t.Errorf("secret (%s: %s) shows in %q", form, enc, s)
			}
		}
	}
}

func TestEchoedSecretIsWithheld(t *testing.T) {
	locations := []struct {
		name    string
		inQuery bool
		answer  func(echo string) (int, http.Header, string)
	}{
		{"error_description", false, func(e string) (int, http.Header, string) {
			return 401, nil, `{"error":"invalid_client","error_description":"unknown client_secret ` + e + `"}`
		}},
		{"error code", false, func(e string) (int, http.Header, string) { return 400, nil, `{"error":"` + e + `"}` }},
		{"error_uri", false, func(e string) (int, http.Header, string) {
			return 401, nil, `{"error":"invalid_client","error_uri":"https://x/?s=` + e + `"}`
		}},
		{"text body", false, func(e string) (int, http.Header, string) { return 400, nil, "bad secret " + e }},
		{"HTML body", false, func(e string) (int, http.Header, string) {
			return 403, nil, "<html><body>" + strings.Repeat("x", maxErrorBody-20) + e + "</body></html>"
		}},
		{"error in a 200", false, func(e string) (int, http.Header, string) {
			return 200, nil, `{"error":"invalid_client","error_description":"` + e + `"}`
		}},
		{"header", false, func(e string) (int, http.Header, string) { return 401, http.Header{"X-Echo": {"secret=" + e}}, "" }},
		{"Location in query mode", true, func(e string) (int, http.Header, string) {
			return 302, http.Header{"Location": {"https://elsewhere.example/?client_secret=" + e}}, ""
		}},
	}
	for _, secret := range fixedSecrets {
		for _, loc := range locations {
			for form, echo := range echoForms(secret) {
				t.Run(secret+"/"+loc.name+"/"+form, func(t *testing.T) {
					status, header, body := loc.answer(echo)
					err := tokenFrom(t, echoServer(t, status, header, body), secret, loc.inQuery)
					var re *oauth2.RetrieveError
					// A 200 whose echo broke its JSON is no RetrieveError.
					if (status != 200 || json.Valid([]byte(body))) && (!errors.As(err, &re) || re.Response.StatusCode != status) {
						t.Errorf("error %v, want a RetrieveError with status %d", err, status)
					}
					noEcho(t, secret, reachableTexts(err)...)
				})
			}
		}
	}
}

func TestWithheldFieldsKeepTheRest(t *testing.T) {
	const secret = "Ab/Cd+Ef0="
	body := `{"error":"invalid_client","error_description":"unknown client_secret Ab\/Cd+Ef0="}`
	err := tokenFrom(t, echoServer(t, 401, http.Header{"Www-Authenticate": {"Basic"}, "X-Echo": {secret}}, body), secret, false)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("error %v is not a RetrieveError", err)
	}
	got := []string{re.ErrorCode, re.ErrorDescription, string(re.Body), re.Response.Header.Get("WWW-Authenticate"), re.Response.Header.Get("X-Echo")}
	want := []string{"invalid_client", withheldText, withheldText, "Basic", ""}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("RetrieveError fields mismatch (-want +got):\n%s", diff)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q is not one line", err)
	}
}

func TestStatusLineIsRebuilt(t *testing.T) {
	const secret = "Ab/Cd+Ef0="
	tests := []struct {
		name, answer string
		wantStatus   int // of the RetrieveError; 0: none
	}{
		{"reason phrase", "HTTP/1.1 401 bad secret " + secret + "\r\nContent-Length: 0\r\n\r\n", 401},
		{"encoded reason phrase", "HTTP/1.1 400 bad secret " + url.QueryEscape(secret) + "\r\nContent-Length: 0\r\n\r\n", 400},
		{"malformed status line", "HTTP/1.1 4x1 " + secret + "\r\n\r\n", 0},
		{"malformed header", "HTTP/1.1 401 Unauthorized\r\nX-Echo " + secret + "\r\n\r\n", 0},
	}
	for _, tt := range tests {
		for _, inQuery := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/query=%v", tt.name, inQuery), func(t *testing.T) {
				ts, _ := rawServer(t, tt.answer)
				err := tokenFrom(t, ts, secret, inQuery)
				var re *oauth2.RetrieveError
				got := errors.As(err, &re)
				if got != (tt.wantStatus != 0) || got && re.Response.StatusCode != tt.wantStatus {
					t.Errorf("error %v, want a RetrieveError: %v (status %d)", err, tt.wantStatus != 0, tt.wantStatus)
				}
				if got && re.Response.Status != lphttp.StatusLine(tt.wantStatus) {
					t.Errorf("Response.Status = %q, want %q", re.Response.Status, lphttp.StatusLine(tt.wantStatus))
				}
				noEcho(t, secret, reachableTexts(err)...)
			})
		}
	}
}

func TestFinalStatusWithBrokenBodyIsNotRetried(t *testing.T) {
	tests := []struct {
		name         string
		answer       string
		wantStatus   int
		wantRequests int32
	}{
		{"401 short body", "HTTP/1.1 401 Unauthorized\r\nContent-Length: 100\r\n\r\n{\"error\":\"invalid_cl", 401, 1},
		{"400 broken chunks", "HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", 400, 1},
		{"503 short body is retried", "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 100\r\n\r\nshort", 0, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, n := rawServer(t, tt.answer)
			c := Config{AccountID: "le1", ClientID: "id", ClientSecret: "s3cret", Domain: ts.Listener.Addr().String()}
			_, _, err := c.requestToken(context.WithValue(context.Background(), oauth2.HTTPClient, ts.Client()), c.Domain, fastRetry)
			var re *oauth2.RetrieveError
			if got := errors.As(err, &re); got != (tt.wantStatus != 0) || got && re.Response.StatusCode != tt.wantStatus {
				t.Errorf("error %v, want a RetrieveError: %v (status %d)", err, tt.wantStatus != 0, tt.wantStatus)
			}
			if got := n.Load(); got != tt.wantRequests {
				t.Errorf("%d requests, want %d", got, tt.wantRequests)
			}
		})
	}
}

func TestHeadersAreCappedOnTheDefaultClient(t *testing.T) {
	ts := echoServer(t, 401, http.Header{"X-Big": {strings.Repeat("x", 2*lphttp.MaxHeaderBytes)}}, "")
	hc := newDefaultClient()
	hc.Transport.(*http.Transport).TLSClientConfig = ts.Client().Transport.(*http.Transport).TLSClientConfig
	c := Config{AccountID: "le1", ClientID: "id", ClientSecret: "s3cret", Domain: ts.Listener.Addr().String()}
	_, _, err := c.requestToken(context.WithValue(context.Background(), oauth2.HTTPClient, hc), c.Domain, fastRetry)
	var re *oauth2.RetrieveError
	if err == nil || errors.As(err, &re) || !strings.Contains(err.Error(), "exceeded") {
		t.Errorf("error %v, want the headers refused", err)
	}
}

func TestHostsTheURLRejects(t *testing.T) {
	for _, h := range []string{"host:+80", "[a]", "[a]:443", "a{b}", "a|b", "a`b", "a^b", "host:", "host:0", ":443", "a%41b", `a"b`, "a<b>"} {
		t.Run(h, func(t *testing.T) {
			if err := lphttp.CheckHost(h); err == nil {
				t.Errorf("lphttp.CheckHost(%q) = nil, want an error", h)
			}
			_, err := tokenWithFault(t, appjwttest.DomainAPI, appjwttest.Fault{Body: `{"baseURI":` + string(must(json.Marshal(h))) + `}`})
			if !strings.Contains(err.Error(), "baseURI") {
				t.Errorf("Domain API answering %q: error %v, want one about baseURI", h, err)
			}
		})
	}
}

func TestDomainRelookupIsBounded(t *testing.T) {
	tests := []struct {
		name  string
		fault appjwttest.Fault
	}{
		{"Domain API hangs", appjwttest.Fault{Hang: true}},
		{"Domain API answers 503", appjwttest.Fault{Status: 503}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			c := configFor(s)
			c.FetchTimeout = 2 * time.Second
			ts, clk := newTestSource(t, s, c)
			ts.retry = lphttp.Default // real pauses: the re-lookup's budget must bound them
			ts.retry.Now = clk.now
			if _, err := fetchOnce(ts); err != nil {
				t.Fatal(err)
			}
			s.SetFault(appjwttest.DomainAPI, tt.fault)
			// Past the TTL, then twice within the pause after a failed re-lookup.
			for i, step := range []time.Duration{lphttp.DomainTTL, lphttp.RelookupPause / 3, lphttp.RelookupPause / 3} {
				clk.advance(step)
				start := time.Now()
				if _, err := fetchOnce(ts); err != nil {
					t.Fatalf("refresh %d: %v, want a token from the last good host", i, err)
				}
				if d := time.Since(start); d > c.FetchTimeout/2 {
					t.Errorf("refresh %d took %v, want well within FetchTimeout %v", i, d, c.FetchTimeout)
				}
			}
			// One lookup, then one failed re-lookup (at most relookupAttempts
			// requests); the refresh after it does not ask again.
			if got := s.Count(appjwttest.DomainAPI); got < 2 || got > 1+relookupAttempts {
				t.Errorf("Domain API got %d requests, want 2 to %d", got, 1+relookupAttempts)
			}
			s.ClearFault(appjwttest.DomainAPI)
			before := s.Count(appjwttest.DomainAPI)
			clk.advance(lphttp.RelookupPause)
			if _, err := fetchOnce(ts); err != nil {
				t.Fatal(err)
			}
			if got := s.Count(appjwttest.DomainAPI) - before; got != 1 {
				t.Errorf("after the pause: %d Domain API requests, want 1", got)
			}
		})
	}
}

// callbackHandler is a log handler that asks the source for a token, as a
// handler that ships logs through an authorized client would.
type callbackHandler struct{ src oauth2.TokenSource }

func (h *callbackHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *callbackHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *callbackHandler) WithGroup(string) slog.Handler            { return h }
func (h *callbackHandler) Handle(context.Context, slog.Record) error {
	if h.src != nil {
		h.src.Token()
	}
	return nil
}

func TestLogHandlerCallingBackDoesNotDeadlock(t *testing.T) {
	s := newServer(t)
	c := configFor(s)
	c.FetchTimeout = 2 * time.Second
	h := &callbackHandler{}
	c.Logger = slog.New(h)
	ts, clk := newTestSource(t, s, c)
	src := &source{ts}
	h.src = src
	tok, err := src.Token()
	if err != nil {
		t.Fatal(err)
	}
	s.SetFault(appjwttest.DomainAPI, appjwttest.Fault{Status: 503})
	clk.advance(lphttp.DomainTTL + time.Minute) // a re-lookup is due, and fails
	src.Reject(tok)                             // no token to serve: callers wait
	done := make(chan error, 1)
	go func() { _, err := src.Token(); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Token() = %v, want a token from the last good host", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Token() deadlocked on a log record")
	}
}

func TestTokenExpiringAsItArrives(t *testing.T) {
	s := newServer(t)
	ts, clk := newTestSource(t, s, configFor(s))
	now := clk.now()
	f := &flight{tok: &oauth2.Token{AccessToken: "t", Expiry: now.Add(-time.Microsecond)}, host: "h"}
	ts.settle(f)
	if f.err == nil || f.tok != nil {
		t.Errorf("settle kept a token that expired as it arrived: %v, %v", f.tok, f.err)
	}
	if refreshAt, serveUntil := ts.schedule(now, now.Add(-time.Second)); serveUntil.After(now) || refreshAt.Before(now) {
		t.Errorf("schedule of an expired token: refresh at %v, serve until %v; want now and no later", refreshAt.Sub(now), serveUntil.Sub(now))
	}
}

func TestEchoCutByTheBodyCap(t *testing.T) {
	const secret = "Ab/Cd+Ef0="
	enc := secret[:len(secret)-1] + "&#61" // "&#61" is "=", but "&#619;" is not
	body := strings.Repeat("x", maxErrorBody-len(enc)) + enc + "9;" + strings.Repeat("y", 200)
	err := tokenFrom(t, echoServer(t, 400, nil, body), secret, false)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatal(err)
	}
	if lphttp.Echoes(string(re.Body), secret) {
		t.Errorf("Body echoes the secret: ...%q", re.Body[len(re.Body)-20:])
	}
}

func TestSecretSplitAcrossHeaderValues(t *testing.T) {
	const secret = "p a+s%s"
	err := tokenFrom(t, echoServer(t, 401, http.Header{"X-Echo": {"p", "a+s%s"}, "X-Kept": {"1"}}, ""), secret, false)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatal(err)
	}
	noEcho(t, secret, fmt.Sprintf("%v", re.Response.Header), fmt.Sprintf("%+v", *re.Response))
	if got := re.Response.Header.Get("X-Kept"); got != "1" {
		t.Errorf("X-Kept = %q, want the header that did not echo kept", got)
	}
}

func TestDomainAPIEchoIsWithheld(t *testing.T) {
	const secret = "Ab/Cd+Ef0="
	ts := echoServer(t, 200, nil, `{"baseURI":"https://`+secret+`"}`)
	c := Config{AccountID: "le1", ClientID: "id", ClientSecret: secret, DomainAPI: ts.Listener.Addr().String(), FetchTimeout: 2 * time.Second}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, ts.Client())
	_, err := c.Token(ctx)
	_, srcErr := c.TokenSource(ctx).Token()
	_, resolveErr := c.ResolveDomain(ctx)
	for _, err := range []error{err, srcErr, resolveErr} {
		if err == nil {
			t.Fatal("got no error")
		}
		noEcho(t, secret, errorTexts(err)...)
	}
}

func TestGoQuotedEchoIsWithheld(t *testing.T) {
	for _, secret := range []string{"Ab\x7fCd", "Ab\vCd", "Ab\U000E0041Cd", "Ab\xffCd"} {
		t.Run(fmt.Sprintf("%q", secret), func(t *testing.T) {
			ts, _ := rawServer(t, "HTTP/1.1 "+secret+" x\r\n\r\n")
			err := tokenFrom(t, ts, secret, false)
			quoted := strings.Trim(fmt.Sprintf("%q", secret), `"`)
			for _, s := range errorTexts(err) {
				if strings.Contains(s, quoted) || strings.Contains(s, secret) {
					t.Errorf("Go-quoted secret in %q", s)
				}
			}
		})
	}
}

func TestTransportContextEndsWhileWaitingForToken(t *testing.T) {
	s := newServer(t)
	c := configFor(s)
	hc := &http.Client{Transport: &Transport{Source: c.TokenSource(s.Context(context.Background())), Base: s.Client().Transport}}
	if got := postConsumer(t, hc, s); got != 201 {
		t.Fatalf("status %d, want 201", got)
	}
	s.RevokeTokens()
	s.QueueFaults(appjwttest.Sentinel, appjwttest.Fault{Delay: 500 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", consumerURL(s), strings.NewReader(`{"ext_consumer_id":"c1"}`))
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("error %v, want the 401", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("status %d, want the 401", resp.StatusCode)
	}
}

func FuzzParseTokenResponse(f *testing.F) {
	const secret = "fuzz-secret-do-not-show"
	f.Add([]byte(`{"access_token":"eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjQxMDI0NDQ4MDAsImlhdCI6NDEwMjQ0MTIwMH0.c2ln","token_type":"Bearer"}`))
	f.Add([]byte(`{"access_token":"x","expires_in":"3600"}`))
	f.Add([]byte(`{"access_token":"x","expires_in":3600,"error":""}`))
	f.Add([]byte(`{"error":"invalid_client","error_description":"` + secret + `"}`))
	f.Add([]byte(`<html>` + secret + `</html>`))
	f.Add([]byte(`{"access_token":"a.b.c"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		sent := time.Now()
		tok, err := parseTokenResponse(body, http.Header{"Content-Type": {"application/json"}}, sent, sent)
		if err != nil {
			if tok != nil {
				t.Errorf("got both a token and an error")
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error shows the secret: %v", err)
			}
			return
		}
		if !lphttp.IsToken68(tok.AccessToken) || !tok.Expiry.After(sent) || tok.Expiry.After(sent.Add(MaxLifetime)) {
			t.Errorf("invalid token accepted: %+v", tok)
		}
	})
}

func FuzzErrorCode(f *testing.F) {
	f.Add(`{"kind":"resp","code":401,"body":{"title":"t","details":"d","errorCode":40102}}`)
	f.Add(`{"body":{"errorCode":"40103"}}`)
	f.Add(`{"body":{"errorCode":1e99}}`)
	f.Add(`<html>`)
	f.Fuzz(func(t *testing.T, body string) {
		resp := &http.Response{Body: io.NopCloser(strings.NewReader(body))}
		ErrorCode(resp)
		if b, err := io.ReadAll(resp.Body); err != nil || string(b) != body {
			t.Errorf("body after ErrorCode = %q, %v; want %q", b, err, body)
		}
	})
}

func FuzzParseClaims(f *testing.F) {
	f.Add(jwt(`{"aud":"le1","azp":"id","scope":"msg.consumer","iss":"Sentinel","exp":1524646270,"iat":1524642670}`))
	f.Add(jwt(`{"aud":["a","b"],"exp":1.5e9}`))
	f.Add(jwt(`{"exp":1e300}`))
	f.Add("a.b.c")
	f.Add("..")
	f.Add(jwt(`{"exp":-1}`))
	f.Fuzz(func(t *testing.T, token string) {
		c, err := ParseClaims(token)
		if err != nil {
			if c != nil {
				t.Errorf("got both claims and an error")
			}
			if !strings.HasPrefix(err.Error(), "appjwt: ") {
				t.Errorf("error %q lacks the appjwt: prefix", err)
			}
			return
		}
		for _, d := range []time.Time{c.IssuedAt, c.ExpiresAt} {
			if !d.IsZero() && (d.Unix() <= 0 || d.After(time.Now().Add(plausibleSpan))) {
				t.Errorf("implausible date %v accepted from %q", d, token)
			}
		}
	})
}

// Benchmarks. The README has the command and the results. Each compares
// appjwt, on the same appjwttest server, with what a user would otherwise
// pick: x/oauth2's clientcredentials pointed at Sentinel, and the hand-rolled
// source below.

// handRolled is the usual hand-rolled AppJWT source: post the credentials,
// take Expiry from the JWT's exp, and wrap it in ReuseTokenSourceWithExpiry.
type handRolled struct {
	client               *http.Client
	tokenURL, id, secret string
}

func (h handRolled) Token() (*oauth2.Token, error) {
	form := url.Values{"client_id": {h.id}, "client_secret": {h.secret}}
	resp, err := h.client.PostForm(h.tokenURL, form)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("sentinel: %s", resp.Status)
	}
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	parts := strings.Split(body.AccessToken, ".")
	if len(parts) != 3 {
		return nil, errors.New("sentinel: not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, err
	}
	return &oauth2.Token{AccessToken: body.AccessToken, TokenType: "Bearer", Expiry: time.Unix(claims.Exp, 0)}, nil
}

func tokenURL(s *appjwttest.Server) string {
	return s.URL() + "/sentinel/api/account/" + s.AccountID + "/app/token?v=1.0&grant_type=client_credentials"
}

// contenders returns the token sources compared, all pointed at s.
func contenders(s *appjwttest.Server, early time.Duration) []struct {
	name string
	src  oauth2.TokenSource
} {
	ctx := s.Context(context.Background())
	c := configFor(s)
	c.EarlyExpiry = early
	cc := clientcredentials.Config{ClientID: s.ClientID, ClientSecret: s.ClientSecret, TokenURL: tokenURL(s), AuthStyle: oauth2.AuthStyleInParams}
	hr := handRolled{client: s.Client(), tokenURL: tokenURL(s), id: s.ClientID, secret: s.ClientSecret}
	return []struct {
		name string
		src  oauth2.TokenSource
	}{
		{"appjwt", c.TokenSource(ctx)},
		{"handrolled", oauth2.ReuseTokenSourceWithExpiry(nil, hr, early)},
		{"clientcredentials", cc.TokenSource(ctx)},
	}
}

var sinkToken *oauth2.Token

// staticSource hands out copies of one token with a one-hour Expiry: under
// ReuseTokenSourceWithExpiry it is the floor a cached Token() can reach.
type staticSource struct{ tok oauth2.Token }

func (s *staticSource) Token() (*oauth2.Token, error) { t := s.tok; return &t, nil }

func BenchmarkCachedToken(b *testing.B) {
	s := newServer(b)
	floor := oauth2.ReuseTokenSourceWithExpiry(nil, &staticSource{oauth2.Token{AccessToken: "x", Expiry: time.Now().Add(time.Hour)}}, DefaultEarlyExpiry)
	all := append(contenders(s, DefaultEarlyExpiry), struct {
		name string
		src  oauth2.TokenSource
	}{"floor", floor})
	for _, c := range all {
		if _, err := c.src.Token(); err != nil {
			b.Fatal(err)
		}
		b.Run(c.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sinkToken, _ = c.src.Token()
			}
		})
		b.Run(c.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					c.src.Token()
				}
			})
		})
	}
}

// BenchmarkAuthorizedGET is one GET on loopback through each way of
// authorizing it; the unauthorized client is the baseline for the overhead.
func BenchmarkAuthorizedGET(b *testing.B) {
	s := newServer(b)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" && r.URL.Path != "/open" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(target.Close)
	ctx := s.Context(context.Background())
	c := configFor(s)
	base := s.Client().Transport
	cc := clientcredentials.Config{ClientID: s.ClientID, ClientSecret: s.ClientSecret, TokenURL: tokenURL(s), AuthStyle: oauth2.AuthStyleInParams}
	clients := []struct {
		name   string
		client *http.Client
		path   string
	}{
		{"unauthorized", &http.Client{Transport: base}, "/open"},
		{"appjwt.Transport", &http.Client{Transport: &Transport{Source: c.TokenSource(ctx), Base: base}}, "/"},
		{"Config.Client", c.Client(ctx), "/"},
		{"oauth2.Transport+clientcredentials", oauth2.NewClient(ctx, cc.TokenSource(ctx)), "/"},
	}
	for _, cl := range clients {
		b.Run(cl.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				resp, err := cl.client.Get(target.URL + cl.path)
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusNoContent {
					b.Fatalf("status %s", resp.Status)
				}
			}
		})
	}
}

// BenchmarkTransportOverhead is what authorizing a request costs, without
// the network's noise: the same cached source, and a base that answers at once.
func BenchmarkTransportOverhead(b *testing.B) {
	s := newServer(b)
	c := configFor(s)
	src := c.TokenSource(s.Context(context.Background()))
	if _, err := src.Token(); err != nil {
		b.Fatal(err)
	}
	nop := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusNoContent, Body: http.NoBody, Request: r}, nil
	})
	for _, tr := range []struct {
		name string
		rt   http.RoundTripper
	}{
		{"none", nop},
		{"appjwt.Transport", &Transport{Source: src, Base: nop}},
		{"oauth2.Transport", &oauth2.Transport{Source: src, Base: nop}},
	} {
		b.Run(tr.name, func(b *testing.B) {
			req, _ := http.NewRequest("GET", "https://example.invalid/v1/send", nil)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-LP-ON-BEHALF", "consumer-jws")
			b.ReportAllocs()
			for b.Loop() {
				tr.rt.RoundTrip(req)
			}
		})
	}
}

// BenchmarkSentinelLoad reports the Sentinel requests a minute that one
// source sends under continuous load (8 callers at every fortieth of a
// lifetime, on the injected clock), for four token lifetimes. One
// iteration is ten lifetimes.
func BenchmarkSentinelLoad(b *testing.B) {
	for _, life := range []time.Duration{3 * time.Second, 10 * time.Second, time.Minute, time.Hour} {
		b.Run(life.String(), func(b *testing.B) {
			s := newServer(b)
			s.SetLifetime(life)
			var perMinute float64
			for b.Loop() {
				ts, clk := newTestSource(b, s, configFor(s))
				perMinute = max(perMinute, underLoad(b, s, ts, clk, life, 10))
			}
			b.ReportMetric(perMinute, "requests/min")
		})
	}
}

// BenchmarkRefresh measures one refresh under load: 100 goroutines call
// Token() in a loop across the refresh point of a 4 s token (EarlyExpiry
// 1 s) while Sentinel takes 200 ms to answer. worst-ns and p99-ns are per
// Token() call; requests/refresh counts Sentinel requests after the first
// token. One iteration is one refresh.
func BenchmarkRefresh(b *testing.B) {
	for _, name := range []string{"appjwt", "handrolled", "clientcredentials"} {
		b.Run(name, func(b *testing.B) {
			var worst, p99 time.Duration
			var requests int
			for b.Loop() {
				lat, n := acrossRefresh(b, name)
				worst, p99, requests = max(worst, lat[len(lat)-1]), max(p99, lat[len(lat)*99/100]), max(requests, n)
			}
			b.ReportMetric(float64(worst), "worst-ns")
			b.ReportMetric(float64(p99), "p99-ns")
			b.ReportMetric(float64(requests), "requests/refresh")
		})
	}
}

// acrossRefresh returns the sorted Token() latencies of the callers and the
// Sentinel requests made after the first token.
func acrossRefresh(b *testing.B, name string) ([]time.Duration, int) {
	s := appjwttest.NewServer()
	defer s.Close()
	s.SetLifetime(4 * time.Second)
	var src oauth2.TokenSource
	for _, c := range contenders(s, time.Second) {
		if c.name == name {
			src = c.src
		}
	}
	if _, err := src.Token(); err != nil {
		b.Fatal(err)
	}
	s.SetFault(appjwttest.Sentinel, appjwttest.Fault{Delay: 200 * time.Millisecond})
	// Past the refresh point (3 s; sooner for the hand-rolled source, which
	// truncates to exp's whole second) and the 200 ms answer, before the next.
	stop := time.Now().Add(3500 * time.Millisecond)
	// Allocate and collect first, so the harness's own garbage does not
	// show up as the source's latency.
	lat := make([][]time.Duration, 100)
	for i := range lat {
		lat[i] = make([]time.Duration, 0, 8192)
	}
	runtime.GC()
	var wg sync.WaitGroup
	for i := range lat {
		wg.Go(func() {
			for time.Now().Before(stop) {
				start := time.Now()
				if _, err := src.Token(); err != nil {
					b.Error(err)
					return
				}
				lat[i] = append(lat[i], time.Since(start))
				time.Sleep(time.Millisecond)
			}
		})
	}
	wg.Wait()
	all := slices.Concat(lat...)
	slices.Sort(all)
	return all, s.Count(appjwttest.Sentinel) - 1
}

// README snippets.

// readmePackages are the packages README.md's Go blocks may use without
// importing them, as goimports would add them for the reader, by the name
// they are used with.
var readmePackages = map[string]string{
	"appjwt":      "github.com/lpconnect/appjwt",
	"appjwttest":  "github.com/lpconnect/appjwt/appjwttest",
	"consumerjws": "github.com/lpconnect/appjwt/consumerjws",
	"oauth2":      "golang.org/x/oauth2",
	"context":     "context",
	"errors":      "errors",
	"fmt":         "fmt",
	"http":        "net/http",
	"io":          "io",
	"log":         "log",
	"os":          "os",
	"slog":        "log/slog",
	"strings":     "strings",
	"testing":     "testing",
	"time":        "time",
}

// readmeBlock is a ```go block of a Markdown text.
type readmeBlock struct {
	line int    // the number of its first line in the text
	code string // without the indentation of its fence
}

// readmeBlocks returns the ```go blocks of md, including those indented
// under a list item.
func readmeBlocks(md string) []readmeBlock {
	var blocks []readmeBlock
	lines := strings.Split(md, "\n")
	for i := 0; i < len(lines); i++ {
		indent, ok := strings.CutSuffix(lines[i], "```go")
		if !ok || strings.Trim(indent, " ") != "" {
			continue
		}
		b := readmeBlock{line: i + 2}
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			b.code += strings.TrimPrefix(lines[i], indent) + "\n"
		}
		blocks = append(blocks, b)
	}
	return blocks
}

// readmeProgram makes b a file of package main, with the imports it uses:
// the block as it is if it declares functions, else the body of main. A
// line directive makes the compiler's messages point into file.
func readmeProgram(b readmeBlock, file string) string {
	// Scanning, not searching the text, keeps "context." in a comment or a
	// string from adding an import that would then be unused.
	imports := map[string]bool{}
	src := []byte(b.code)
	var s scanner.Scanner
	s.Init(token.NewFileSet().AddFile("", -1, len(src)), src, nil, 0)
	// before and prev are the two tokens before tok; name is prev's text.
	before, prev, name := token.ILLEGAL, token.ILLEGAL, ""
	for {
		_, tok, lit := s.Scan()
		if tok == token.EOF {
			break
		}
		if path, ok := readmePackages[name]; ok && tok == token.PERIOD && prev == token.IDENT && before != token.PERIOD {
			imports[path] = true
		}
		before, prev, name = prev, tok, lit
	}

	var p strings.Builder
	p.WriteString("package main\n\nimport (\n")
	for _, path := range slices.Sorted(maps.Keys(imports)) {
		fmt.Fprintf(&p, "\t%q\n", path)
	}
	p.WriteString(")\n\n")
	directive := fmt.Sprintf("//line %s:%d\n", file, b.line)
	declares := strings.HasPrefix(b.code, "func ") || strings.Contains(b.code, "\nfunc ") ||
		strings.HasPrefix(b.code, "type ") || strings.Contains(b.code, "\ntype ")
	switch {
	case !declares:
		p.WriteString("func main() {\n" + directive + b.code + "}\n")
	case strings.Contains(b.code, "\nfunc main() {") || strings.HasPrefix(b.code, "func main() {"):
		p.WriteString(directive + b.code)
	default:
		p.WriteString(directive + b.code + "\nfunc main() {}\n")
	}
	return p.String()
}

// TestReadmeSnippets compiles and vets every ```go block of README.md, each
// as a package of one module that uses this repository through a replace
// directive, as a reader who pastes it would.
func TestReadmeSnippets(t *testing.T) {
	t.Run("blocks", testReadmeBlocks)
	t.Run("program", testReadmeProgram)
	t.Run("vet", testReadmeVet)
}

func testReadmeProgram(t *testing.T) {
	tests := []struct {
		name string
		code string
		want string
	}{
		{"fragment", "ctx := context.Background() // not fmt.Println\nfmt.Println(ctx, \"os.Args\", cfg.Client, cfg.time.Now)\n",
			"package main\n\nimport (\n\t\"context\"\n\t\"fmt\"\n)\n\nfunc main() {\n//line README.md:7\nctx := context.Background() // not fmt.Println\nfmt.Println(ctx, \"os.Args\", cfg.Client, cfg.time.Now)\n}\n"},
		{"file", "func TestX(t *testing.T) {\n\thttp.Get(srv.URL())\n}\n",
			"package main\n\nimport (\n\t\"net/http\"\n\t\"testing\"\n)\n\n//line README.md:7\nfunc TestX(t *testing.T) {\n\thttp.Get(srv.URL())\n}\n\nfunc main() {}\n"},
		{"file with main", "type T int\n\nfunc main() { log.Print(T(1)) }\n",
			"package main\n\nimport (\n\t\"log\"\n)\n\n//line README.md:7\ntype T int\n\nfunc main() { log.Print(T(1)) }\n"},
	}
	for _, tt := range tests {
		if got := readmeProgram(readmeBlock{7, tt.code}, "README.md"); got != tt.want {
			t.Errorf("%s: readmeProgram(%q):\n%s\nwant:\n%s", tt.name, tt.code, got, tt.want)
		}
	}
}

func testReadmeBlocks(t *testing.T) {
	md := "# T\n\n```go\na := 1\n```\n\n- item\n\n  ```go\n  if x {\n  \ty()\n  }\n  ```\n\n```\nnot go\n```\n"
	want := []readmeBlock{{4, "a := 1\n"}, {10, "if x {\n\ty()\n}\n"}}
	if diff := cmp.Diff(want, readmeBlocks(md), cmp.AllowUnexported(readmeBlock{})); diff != "" {
		t.Errorf("readmeBlocks (-want +got):\n%s", diff)
	}
}

func testReadmeVet(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	readme, err := filepath.Abs("README.md")
	if err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	blocks := readmeBlocks(string(md))
	if len(blocks) == 0 {
		t.Fatal("README.md has no ```go block")
	}
	// The repository's own requirements and go.sum pin the dependencies, so
	// that the go command needs no more than what this package's test has
	// already downloaded.
	gomod, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	gosum, err := os.ReadFile("go.sum")
	if err != nil {
		t.Fatal(err)
	}
	module, rest, ok := strings.Cut(string(gomod), "\n")
	if !ok || module != "module github.com/lpconnect/appjwt" {
		t.Fatalf("go.mod starts %q, want the module line", module)
	}
	dir := t.TempDir()
	files := map[string]string{
		"go.mod": "module readme.example\n" + rest + fmt.Sprintf("\nrequire github.com/lpconnect/appjwt v0.0.0\n\nreplace github.com/lpconnect/appjwt => %q\n", filepath.Dir(readme)),
		"go.sum": string(gosum),
	}
	for i, b := range blocks {
		files[filepath.Join(fmt.Sprintf("block%02d", i+1), "main.go")] = readmeProgram(b, readme)
	}
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(goCmd, "vet", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("go vet over the %d Go blocks of README.md: %v\n%s", len(blocks), err, out)
	}
}
