package appjwt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lpconnect/appjwt/appjwttest"
	"github.com/lpconnect/appjwt/internal/domain"
	"github.com/lpconnect/appjwt/internal/lifecycle"
	"github.com/lpconnect/appjwt/internal/lphttp"
	"github.com/lpconnect/appjwt/internal/testkit"
	"golang.org/x/oauth2"
)

// The tests of the wire protocol, the JWT rules, the Domain API cache and
// redaction live beside that code, under internal/; these test the root's
// own: Config, the cache, Transport and the logs.

func configFor(s *appjwttest.Server) Config {
	return Config{AccountID: s.AccountID, ClientID: s.ClientID, ClientSecret: s.ClientSecret, DomainAPI: s.Host()}
}

// fakeStand is an app installation at a new FakeLivePerson, the
// in-memory LivePerson that runs hours of tokens on synctest's clock, and
// a context whose client reaches it, cancelled when the test ends.
func fakeStand(t *testing.T) (*testkit.FakeLivePerson, Config, context.Context) {
	f := testkit.NewFakeLivePerson()
	c := Config{AccountID: "le1", ClientID: "id", ClientSecret: "s3cret-value", DomainAPI: "domain.test"}
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: f}))
	t.Cleanup(cancel)
	return f, c, ctx
}

// harness is what a test sees of a Source beyond its methods, through
// the package's one test seam, hooks: a settable clock, and the fetches
// under way.
type harness struct {
	clk     testkit.Clock
	running atomic.Int32
}

// newTestSource returns a Source over the stand-in s with the hooks of h:
// its clock, test-sized retries and backoff (unless edit changes them).
// Its context ends with the test.
func newTestSource(t testing.TB, s *appjwttest.Server, c Config, edit func(*hooks)) (*Source, *harness) {
	t.Helper()
	ctx, cancel := context.WithCancel(s.Context(context.Background()))
	h := &harness{}
	hk := hooks{now: h.clk.Now, retry: testkit.FastRetry, backoff: lphttp.Backoff{Base: 20 * time.Millisecond, Max: 100 * time.Millisecond}, running: &h.running}
	if edit != nil {
		edit(&hk)
	}
	t.Cleanup(func() { cancel(); h.waitIdle(t) })
	return newSource(newTokenCache(ctx, c, hk)), h
}

// bearerClient is Config.Client sending every token as Bearer, as a
// Transport with BearerStyle does.
func bearerClient(ctx context.Context, c Config) *http.Client {
	hc := c.Client(ctx)
	hc.Transport.(*Transport).Style = BearerStyle
	return hc
}

// mustToken returns src's token, or ends the test.
func mustToken(t testing.TB, src oauth2.TokenSource) *oauth2.Token {
	t.Helper()
	tok, err := src.Token()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// configToken is c's Token from s, or ends the test.
func configToken(t testing.TB, s *appjwttest.Server, c Config) *oauth2.Token {
	t.Helper()
	return mustToken(t, testkit.TokenSourceFunc(func() (*oauth2.Token, error) { return c.Token(s.Context(context.Background())) }))
}

// errOf is the error of a call that returns a value and an error.
func errOf[T any](_ T, err error) error { return err }

// waitIdle waits for the fetches under way, if any, to end.
func (h *harness) waitIdle(t testing.TB) {
	for deadline := time.Now().Add(10 * time.Second); h.running.Load() > 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("a fetch still running 10s on")
			return
		}
	}
}

// Config: validation, formatting, the uncached Token, LookupDomain.

// The request on the wire is internal/sentinel's to test; this, that each
// Config asks the API it names, as it names.
func TestTokenRequest(t *testing.T) {
	for _, tt := range []struct {
		api     TokenAPI
		inQuery bool
	}{{SentinelV1, false}, {SentinelV1, true}, {SentinelV2, false}} {
		t.Run(fmt.Sprintf("%v, in query %v", tt.api, tt.inQuery), func(t *testing.T) {
			s := testkit.NewServer(t)
			c := configFor(s)
			c.TokenAPI, c.CredentialsInQuery = tt.api, tt.inQuery
			tok := configToken(t, s, c)
			endpoint, path := appjwttest.Sentinel, "/sentinel/api/account/"+s.AccountID+"/app/token"
			if tt.api == SentinelV2 {
				endpoint, path = appjwttest.SentinelV2Token, "/sentinel/api/v2/account/"+s.AccountID+"/app/token"
			}
			if _, err := s.Verify(endpoint, tok.AccessToken); err != nil {
				t.Errorf("issued token does not verify: %v", err)
			}
			reqs := s.Requests(endpoint)
			if len(reqs) != 1 {
				t.Fatalf("%v got %d requests, want 1", endpoint, len(reqs))
			}
			if got := reqs[0]; got.Path != path || got.Query.Has("client_secret") != tt.inQuery || got.Form.Has("client_secret") == tt.inQuery {
				t.Errorf("request to %s, query %v, form with a secret %v; want %s, the secret in the query: %v", got.Path, got.Query, got.Form.Has("client_secret"), path, tt.inQuery)
			}
			if got := len(s.Requests(appjwttest.DomainAPI)); got != 1 {
				t.Errorf("Domain API got %d requests, want 1", got)
			}
		})
	}
}

// The host syntax is internal/lphttp's to test (TestBadHosts); this, that
// each field's error names it.
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
		{"domain api with scheme", func(c *Config) { c.DomainAPI = "http://api.liveperson.net" }, "DomainAPI"},
		{"negative early expiry", func(c *Config) { c.EarlyExpiry = -time.Second }, "EarlyExpiry"},
		{"negative fetch timeout", func(c *Config) { c.FetchTimeout = -time.Second }, "FetchTimeout"},
		{"v2 with the credentials in the URL", func(c *Config) { c.TokenAPI, c.CredentialsInQuery = SentinelV2, true }, "CredentialsInQuery"},
		{"no such token API", func(c *Config) { c.TokenAPI = SentinelV2 + 1 }, "TokenAPI"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var requests atomic.Int32
			hc := &http.Client{Transport: testkit.RoundTripFunc(func(*http.Request) (*http.Response, error) {
				requests.Add(1)
				return nil, errors.New("no request should be sent")
			})}
			c := good
			tt.change(&c)
			err := refusal(t, context.WithValue(context.Background(), oauth2.HTTPClient, hc), c, string(good.ClientSecret))
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field != tt.field || !strings.HasPrefix(err.Error(), "appjwt: Config."+tt.field+" ") || strings.Contains(ce.Reason, string(good.ClientSecret)) {
				t.Errorf("error %q is no ConfigError of Config.%s", err, tt.field)
			}
			if n := requests.Load(); n != 0 {
				t.Errorf("%d requests sent, want none", n)
			}
		})
	}
}

// A token's expiry is counted from the request, whatever Sentinel's clock
// says; a v2 token's from its expires_in, which the stand-in sends as a
// string, as Sentinel's v2 API may.
func TestExpiryAndExtra(t *testing.T) {
	tests := []struct {
		name   string
		skew   time.Duration
		api    TokenAPI
		body   string // the answer, if not the stand-in's
		lo, hi time.Duration
		extra  map[string]any
	}{
		{"Sentinel 5h behind", -5 * time.Hour, SentinelV1, "", time.Hour - time.Second, time.Hour, nil},
		{"Sentinel in step", 0, SentinelV1, "", time.Hour - time.Second, time.Hour, nil},
		{"Sentinel 3h ahead", 3 * time.Hour, SentinelV1, "", time.Hour - time.Second, time.Hour, nil},
		{"v2, expires_in a string", 0, SentinelV2, "", 20 * time.Minute, 20 * time.Minute, map[string]any{"expires_in": "1200"}},
		{"extra fields", 0, SentinelV1, fmt.Sprintf(`{"access_token":%q,"token_type":"Bearer","scope":"msg.consumer"}`, testkit.JWT(`{"aud":"le1"}`)),
			time.Hour - time.Second, time.Hour, map[string]any{"scope": "msg.consumer", "nope": nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testkit.NewServer(t, func(s *appjwttest.Server) {
				if tt.api == SentinelV2 {
					s.Lifetime = 20 * time.Minute
				}
			})
			s.SetClockSkew(tt.skew)
			if tt.body != "" {
				s.QueueFaults(appjwttest.Sentinel, appjwttest.Fault{Body: tt.body})
			}
			c := configFor(s)
			c.TokenAPI = tt.api
			before := time.Now()
			tok := mustToken(t, c.TokenSource(s.Context(context.Background())))
			if lo, hi := before.Add(tt.lo), time.Now().Add(tt.hi); tok.Expiry.Before(lo) || tok.Expiry.After(hi) {
				t.Errorf("Expiry = %v, want between %v and %v", tok.Expiry, lo, hi)
			}
			for k, want := range tt.extra {
				if got := tok.Extra(k); got != want {
					t.Errorf("Extra(%q) = %v, want %v", k, got, want)
				}
			}
		})
	}
}

// Package secret tests its type; this, that a Config holds its secret as
// one (ExampleConfig_redacted shows what it prints). Every fmt verb, with any flags, shows a Config with its secret
// redacted, but the two the Config docs name, for which fmt calls no
// method and prints the value raw: %p of a value that is no pointer, map,
// slice, channel or func, and %w of anything but an error.
func TestConfigShowsNoSecret(t *testing.T) {
	c := Config{AccountID: "le1", ClientID: "id", ClientSecret: "s3cret-value", TokenAPI: SentinelV2, EarlyExpiry: time.Minute}
	for _, tt := range []struct {
		name string
		v    any
		want []string
	}{
		{"Config", c, []string{"p", "w"}},
		{"*Config", &c, []string{"w"}},
		{"struct holding one", struct{ C Config }{c}, []string{"p", "w"}},
		{"array of one", [1]Config{c}, []string{"p", "w"}},
		{"slice of one", []Config{c}, []string{"w"}},
		{"map to one", map[string]Config{"a": c}, []string{"w"}},
		// Its cache keeps the secret behind a func, out of the raw print
		// of fmt's complaint for a verb it rejects, such as %s (review).
		{"*Source", c.TokenSource(context.Background()), nil},
		{"Transport", &Transport{Source: c.TokenSource(context.Background())}, nil},
	} {
		if diff := cmp.Diff(tt.want, testkit.VerbsShowing(string(c.ClientSecret), tt.v)); diff != "" {
			t.Errorf("%s: verbs that show the secret (-want +got):\n%s", tt.name, diff)
		}
	}
	// A *Config in a struct: the verbs fmt takes for a pointer print its
	// address; any other fmt rejects, and shows the struct raw.
	texts := []string{fmt.Sprint(c), fmt.Sprintf("%+v", c)}
	for _, verb := range []string{"%v", "%+v", "%#v", "%d", "%x", "%X", "%o", "%b", "%p"} {
		texts = append(texts, fmt.Sprintf(verb, struct{ C *Config }{&c}))
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "c", c, "p", &c, "s", struct{ Conf Config }{c})
	slog.New(slog.NewTextHandler(&logs, nil)).Info("config", "c", c)
	texts = append(texts, logs.String())
	for _, v := range []any{c, &c, struct{ C Config }{c}, []Config{c}} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, string(b))
	}
	testkit.NoEcho(t, string(c.ClientSecret), texts...)
}

func TestLookupDomain(t *testing.T) {
	s := testkit.NewServer(t)
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
	before := len(s.Requests(appjwttest.DomainAPI))
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
	if got := len(s.Requests(appjwttest.DomainAPI)) - before; got != 0 {
		t.Errorf("bad arguments sent %d requests, want none", got)
	}
}

func TestDomainAPIEchoIsWithheld(t *testing.T) {
	const secret = "Ab/Cd+Ef0="
	ts := testkit.EchoServer(t, 200, nil, `{"baseURI":"https://`+secret+`"}`)
	c := Config{AccountID: "le1", ClientID: "id", ClientSecret: secret, DomainAPI: ts.Listener.Addr().String(), FetchTimeout: 2 * time.Second}
	refusal(t, context.WithValue(context.Background(), oauth2.HTTPClient, ts.Client()), c, secret)
}

// refusal is the error of c's Token, which its TokenSource's Token gives
// too: an appjwt error, in which secret shows in no form.
func refusal(t *testing.T, ctx context.Context, c Config, secret string) error {
	t.Helper()
	_, err := c.Token(ctx)
	srcErr := errOf(c.TokenSource(ctx).Token())
	if err == nil || srcErr == nil || srcErr.Error() != err.Error() || !strings.HasPrefix(err.Error(), "appjwt: ") {
		t.Fatalf("Token error %v, TokenSource's %v; want the one appjwt error", err, srcErr)
	}
	testkit.NoEcho(t, secret, append(testkit.ErrorTexts(err), testkit.ErrorTexts(srcErr)...)...)
	return err
}

// The cache behind TokenSource: caching, refresh ahead, outages, the schedule.

// A cold source's callers share one fetch, which one that gives up leaves
// running for the others; each gets a copy of its own, which it may
// modify, as x/oauth2's wrappers do. Past the refresh point the next token
// comes in the background, while every caller gets the old one at once.
func TestTokenSourceCaches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, c, ctx := fakeStand(t)
		src := c.TokenSource(ctx)
		impatient, giveUp := context.WithTimeout(ctx, time.Second)
		defer giveUp()
		toks := make([]*oauth2.Token, 200)
		var wg sync.WaitGroup
		for i := range toks {
			wg.Go(func() {
				var err error
				if toks[i], err = src.Token(); err != nil {
					t.Errorf("cold source: %v", err)
				}
			})
		}
		if _, err := src.TokenContext(impatient); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("impatient caller: %v, want a deadline error", err)
		}
		wg.Wait()
		if got := f.Count("sentinel.test"); got != 1 || t.Failed() {
			t.Fatalf("Sentinel got %d requests from 201 callers of a cold source, want 1", got)
		}
		old, copies := *toks[0], map[*oauth2.Token]bool{}
		for _, tok := range toks {
			if tok == nil || copies[tok] || tok.AccessToken != old.AccessToken {
				t.Fatalf("Token() = %p %v, want a copy of its own of the one token", tok, tok)
			}
			copies[tok] = true
			tok.AccessToken = "scribbled"
		}
		if tok := mustToken(t, src); tok.AccessToken != old.AccessToken || f.Count("sentinel.test") != 1 {
			t.Fatalf("after the callers scribbled on their copies: %v and %d requests, want the cached token", tok, f.Count("sentinel.test"))
		}

		time.Sleep(time.Until(src.State().RefreshAt))
		for range 20 {
			wg.Go(func() {
				for range 20 {
					start := time.Now()
					if tok, err := src.Token(); err != nil || tok.AccessToken != old.AccessToken || time.Since(start) > 0 {
						t.Errorf("during the refresh: Token() = %v, %v after %v; want the old token at once", tok, err, time.Since(start))
						return
					}
					time.Sleep(time.Millisecond)
				}
			})
		}
		wg.Wait()
		if !src.State().Fetching {
			t.Error("no refresh running past the refresh point")
		}
		time.Sleep(f.SentinelDelay)
		if tok := mustToken(t, src); tok.AccessToken == old.AccessToken {
			t.Error("after the refresh: the old token, want the new one")
		}
		if got := []int{f.Count("sentinel.test"), f.Count("domain.test")}; !slices.Equal(got, []int{2, 1}) {
			t.Errorf("Sentinel and the Domain API got %v requests, want [2 1]: one refresh, the domain cached", got)
		}
	})
}

// One fault of each class, and the Domain API's: the retries inside a
// fetch, and the answers that make a bad body, are internal/sentinel's to
// test; this, what a caller of a cold source sees, and that the next one,
// within the backoff, gets the error without a request.
func TestFaultMatrix(t *testing.T) {
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
		{"401", appjwttest.Sentinel, appjwttest.Fault{Status: 401}, 0, true, 1, nil, 401},
		{"500 always", appjwttest.Sentinel, appjwttest.Fault{Status: 500}, 0, true, 4, nil, 500},
		{"503 twice", appjwttest.Sentinel, appjwttest.Fault{Status: 503}, 2, false, 3, nil, 0},
		{"hang always", appjwttest.Sentinel, appjwttest.Fault{Hang: true}, 0, true, 1, context.DeadlineExceeded, 0},
		{"reset always", appjwttest.Sentinel, appjwttest.Fault{Reset: true}, 0, true, 4, nil, 0},
		{"malformed body", appjwttest.Sentinel, appjwttest.Fault{Body: `{"access_token":`}, 0, true, 1, nil, 0},
		{"error in 200", appjwttest.Sentinel, appjwttest.Fault{Body: `{"error":"invalid_client"}`}, 0, true, 1, nil, 200},
		{"Domain API 500 once", appjwttest.DomainAPI, appjwttest.Fault{Status: 500}, 1, false, 1, nil, 0},
		{"Domain API down", appjwttest.DomainAPI, appjwttest.Fault{Status: 503}, 0, true, 0, nil, 0},
		{"Domain API hangs", appjwttest.DomainAPI, appjwttest.Fault{Hang: true}, 0, true, 0, context.DeadlineExceeded, 0},
		{"Domain API resets", appjwttest.DomainAPI, appjwttest.Fault{Reset: true}, 0, true, 0, nil, 0},
		{"Domain API garbage", appjwttest.DomainAPI, appjwttest.Fault{Body: `{"baseURI":"evil.example/x"}`}, 0, true, 0, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testkit.CheckGoroutines(t)
			s := testkit.NewServer(t)
			if tt.times == 0 {
				s.SetFault(tt.endpoint, tt.fault)
			}
			s.QueueFaults(tt.endpoint, slices.Repeat([]appjwttest.Fault{tt.fault}, tt.times)...)
			c := configFor(s)
			// Short only where the fault hangs: TLS handshakes under -race on a
			// loaded machine take longer than that.
			c.FetchTimeout = 5 * time.Second
			if tt.fault.Hang {
				c.FetchTimeout = 300 * time.Millisecond
			}
			src, _ := newTestSource(t, s, c, nil)
			tok, err := src.Token()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Token() = %v, %v; want error: %v", tok, err, tt.wantErr)
			}
			if got := len(s.Requests(appjwttest.Sentinel)); got != tt.wantSentinel {
				t.Errorf("Sentinel got %d requests, want %d", got, tt.wantSentinel)
			}
			if err == nil {
				if _, err := s.Verify(appjwttest.Sentinel, tok.AccessToken); err != nil {
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
			testkit.NoEcho(t, string(s.ClientSecret), testkit.ErrorTexts(err)...)
			// Within the backoff, the next caller gets the error without a request.
			n := len(s.Requests(appjwttest.Sentinel))
			if _, err2 := src.Token(); err2 == nil || len(s.Requests(appjwttest.Sentinel)) != n {
				t.Errorf("right after the failure: error %v and %d new requests, want the error and none", err2, len(s.Requests(appjwttest.Sentinel))-n)
			}
		})
	}
}

// Replicas started together refresh minutes apart, and none before half
// the token's lifetime.
func TestFleetRefreshesSpread(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, c, ctx := fakeStand(t)
		f.SentinelDelay = 0
		start := time.Now()
		var points []time.Time
		for range 100 {
			src := c.TokenSource(ctx)
			mustToken(t, src)
			points = append(points, src.State().RefreshAt)
		}
		first, last := slices.MinFunc(points, time.Time.Compare), slices.MaxFunc(points, time.Time.Compare)
		if spread := last.Sub(first); spread < 3*time.Minute {
			t.Errorf("100 sources refresh within %v of each other, want several minutes apart", spread)
		}
		if first.Before(start.Add(30 * time.Minute)) {
			t.Errorf("a source refreshes %v after its token arrived, before half its lifetime", first.Sub(start))
		}
	})
}

// underLoad drives src, with its harness's clock, through rounds
// lifetimes of tokens that live life each: at every step of life/40, 8
// goroutines call Token() at once. It fails the test if any call waits for
// a fetch while a token is valid, or gets a token at or past its Expiry,
// and returns the Sentinel requests per minute of the clock.
func underLoad(t testing.TB, s *appjwttest.Server, src *Source, h *harness, life time.Duration, rounds int) float64 {
	t.Helper()
	mustToken(t, src)
	h.waitIdle(t)
	start, before := h.clk.Now(), len(s.Requests(appjwttest.Sentinel))
	step := life / 40
	for range 40 * rounds {
		h.clk.Advance(step)
		if !src.State().Valid {
			t.Fatalf("after %v: no token to serve, callers wait", h.clk.Now().Sub(start))
		}
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				tok, err := src.Token()
				if err != nil || !tok.Expiry.After(h.clk.Now()) {
					t.Errorf("after %v: Token() = %v, %v; want a token not yet expired", h.clk.Now().Sub(start), tok, err)
				}
			})
		}
		wg.Wait()
		h.waitIdle(t)
	}
	return float64(len(s.Requests(appjwttest.Sentinel))-before) / h.clk.Now().Sub(start).Minutes()
}

func TestLifetimesUnderLoad(t *testing.T) {
	for _, life := range []time.Duration{2 * time.Second, 3 * time.Second, 5 * time.Second, 15 * time.Second, time.Minute, time.Hour} {
		t.Run(life.String(), func(t *testing.T) {
			s := testkit.NewServer(t, func(s *appjwttest.Server) { s.Lifetime = life })
			src, h := newTestSource(t, s, configFor(s), nil)
			const rounds = 4
			perMinute := underLoad(t, s, src, h, life, rounds)
			// One request per half-lifetime at most: two per lifetime, as
			// counted from the answer's Date, which takes a second off.
			if max := 2 / (life - time.Second).Minutes(); perMinute > max {
				t.Errorf("%.1f Sentinel requests a minute, want at most %.1f", perMinute, max)
			}
		})
	}
}

// Transport, and what it does when the API rejects a token.

// Transport sends the token in a deep clone of the caller's request, which
// whatever the Base does stays as it was.
func TestTransport(t *testing.T) {
	s := testkit.NewServer(t)
	tok := configToken(t, s, configFor(s))
	var gotAuth string
	scribbler := testkit.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
		gotAuth = r.Header.Get("Authorization")
		r.URL.Path = "/changed"
		r.Header["X-Keep"][0] = "changed"
		r.Header.Set("X-Added", "1")
		return &http.Response{StatusCode: 204, Body: http.NoBody, Request: r}, nil
	})
	req, _ := http.NewRequest("GET", "https://example.invalid/x", nil)
	req.Header.Set("X-Keep", "1")
	if _, err := (&Transport{Source: oauth2.StaticTokenSource(tok), Base: scribbler}).RoundTrip(req); err != nil {
		t.Fatal(err)
	}
	if gotAuth != tok.AccessToken {
		t.Errorf("Authorization = %q, want the raw token", gotAuth)
	}
	got := []string{req.URL.Path, req.Header.Get("X-Keep"), req.Header.Get("X-Added"), req.Header.Get("Authorization")}
	if want := []string{"/x", "1", "", ""}; !slices.Equal(got, want) {
		t.Errorf("caller's request after RoundTrip: path, X-Keep, X-Added, Authorization = %q, want %q", got, want)
	}

	body := &closeRecorder{Reader: strings.NewReader("x")}
	req, _ = http.NewRequest("POST", "https://example.invalid/x", body)
	failing := &Transport{Source: oauth2.ReuseTokenSource(nil, testkit.TokenSourceFunc(func() (*oauth2.Token, error) { return nil, errors.New("boom") }))}
	if _, err := failing.RoundTrip(req); err == nil || !body.closed {
		t.Errorf("RoundTrip with a failing source: err = %v, body closed = %v; want an error and a closed body", err, body.closed)
	}
	if _, err := (&Transport{}).RoundTrip(req); err == nil || !strings.HasPrefix(err.Error(), "appjwt: ") {
		t.Errorf("RoundTrip with no Source: err = %v, want an appjwt error", err)
	}
}

// Each wiring sends the header it says it sends, and the header follows the
// token: the package's clients send a v1 token raw, which the strict
// stand-in of the Connector API takes, as LivePerson documents it, and its
// v2 API refuses; a v2 token as Bearer, which the v2 API takes and the
// Connector API refuses. Explicit styles stay as chosen.
func TestHeaderStyles(t *testing.T) {
	s := testkit.NewServer(t)
	ctx := s.Context(context.Background())
	v1, v2 := configFor(s), configFor(s)
	v2.TokenAPI = SentinelV2
	src, src2 := v1.TokenSource(ctx), v2.TokenSource(ctx)
	base := s.Client().Transport
	tr := func(src oauth2.TokenSource, style HeaderStyle) *http.Client {
		return &http.Client{Transport: &Transport{Source: src, Base: base, Style: style}}
	}
	setAuthHeader := testkit.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
		tok, err := src.Token()
		if err != nil {
			return nil, err
		}
		r = r.Clone(r.Context())
		tok.SetAuthHeader(r)
		return base.RoundTrip(r)
	})
	tests := []struct {
		name       string
		client     *http.Client
		v2API      bool   // a GET of the v2 API; else a POST to the Connector API
		wantPrefix string // of the Authorization sent
		wantStatus int
	}{
		{"Transport", tr(src, AutoStyle), false, "ey", 201},
		{"Transport, BearerStyle", tr(src, BearerStyle), false, "Bearer ey", 401},
		{"Config.Client", v1.Client(ctx), false, "ey", 201},
		{"Config.Client's Transport, BearerStyle", bearerClient(ctx, v1), false, "Bearer ey", 401},
		{"oauth2.NewClient", oauth2.NewClient(ctx, src), false, "Bearer ey", 401},
		{"oauth2.Transport", &http.Client{Transport: &oauth2.Transport{Source: src, Base: base}}, false, "Bearer ey", 401},
		{"tok.SetAuthHeader", &http.Client{Transport: setAuthHeader}, false, "Bearer ey", 401},
		{"no token", s.Client(), false, "", 401},
		{"v2 Config.Client to the Connector API", v2.Client(ctx), false, "Bearer ey", 401},
		{"v2 Config.Client", v2.Client(ctx), true, "Bearer ey", 200},
		{"v2 Transport, BearerStyle", bearerClient(ctx, v2), true, "Bearer ey", 200},
		{"v2 Transport", tr(src2, AutoStyle), true, "Bearer ey", 200},
		{"v2 oauth2.NewClient", oauth2.NewClient(ctx, src2), true, "Bearer ey", 200},
		{"v2 Transport, RawStyle", tr(src2, RawStyle), true, "ey", 401},
		{"v2 in oauth2.ReuseTokenSource", tr(oauth2.ReuseTokenSource(nil, src2), AutoStyle), true, "Bearer ey", 200},
		{"v2 in oauth2.ReuseTokenSource, NewClient", NewClient(ctx, oauth2.ReuseTokenSource(nil, src2)), true, "Bearer ey", 200},
		{"v2 in a source of the user's", NewClient(ctx, testkit.TokenSourceFunc(src2.Token)), true, "Bearer ey", 200},
		{"v1 in oauth2.ReuseTokenSource", NewClient(ctx, oauth2.ReuseTokenSource(nil, v1.TokenSource(ctx))), true, "ey", 401},
		{"v1 Config.Client", v1.Client(ctx), true, "ey", 401},
		{"v1 Transport, BearerStyle", bearerClient(ctx, v1), true, "Bearer ey", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, endpoint := 0, appjwttest.V2API
			if tt.v2API {
				status = getV2API(t, tt.client, s)
			} else {
				status, endpoint = postConsumer(t, tt.client, s), appjwttest.Consumer
			}
			reqs := s.Requests(endpoint)
			auth := reqs[len(reqs)-1].Header.Get("Authorization")
			if status != tt.wantStatus || !strings.HasPrefix(auth, tt.wantPrefix) || tt.wantPrefix == "" && auth != "" {
				t.Errorf("status %d, Authorization %.20q; want %d and %q...", status, auth, tt.wantStatus, tt.wantPrefix)
			}
		})
	}
}

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

// getV2API sends a GET to the stand-in's v2 API through hc and returns the status.
func getV2API(t *testing.T, hc *http.Client, s *appjwttest.Server) int {
	t.Helper()
	resp, err := hc.Get(s.URL() + strings.Replace(appjwttest.V2APIPath, "{account}", s.AccountID, 1))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// recoveringClients are Transport, raw and Bearer, and Config.Client, each on its own source.
func recoveringClients(s *appjwttest.Server, c Config) map[string]*http.Client {
	ctx := s.Context(context.Background())
	return map[string]*http.Client{
		"Transport":              {Transport: &Transport{Source: c.TokenSource(ctx), Base: s.Client().Transport}},
		"Config.Client":          c.Client(ctx),
		"Transport, BearerStyle": bearerClient(ctx, c),
	}
}

func TestRevocationCausesOneFetch(t *testing.T) {
	s := testkit.NewServer(t, func(s *appjwttest.Server) { s.AcceptBearer = true })
	for name, hc := range recoveringClients(s, configFor(s)) {
		t.Run(name, func(t *testing.T) {
			if got := postConsumer(t, hc, s); got != 201 {
				t.Fatalf("before the revocation: status %d, want 201", got)
			}
			s.RevokeTokens()
			before := len(s.Requests(appjwttest.Sentinel))
			var wg sync.WaitGroup
			for range 50 {
				wg.Go(func() {
					if got := postConsumer(t, hc, s); got != 201 {
						t.Errorf("after the revocation: status %d, want 201", got)
					}
				})
			}
			wg.Wait()
			if got := len(s.Requests(appjwttest.Sentinel)) - before; got != 1 {
				t.Errorf("Sentinel got %d requests after the revocation, want 1", got)
			}
		})
	}
}

// What Transport does with a 401: it drops the token and resends the
// request with a new one, if it can resend it; it gives the 401 back as it
// came for a ConsumerJWS, a second 401, a source that cannot drop a token,
// or a caller whose context ends while the new token is on its way.
func TestTransportOn401(t *testing.T) {
	revoke := func(s *appjwttest.Server) { s.RevokeTokens() }
	body := func() io.Reader { return strings.NewReader(`{"ext_consumer_id":"c1"}`) }
	none := func() io.Reader { return nil }
	static := func(s *appjwttest.Server) *http.Client {
		return &http.Client{Transport: &Transport{Source: oauth2.StaticTokenSource(configToken(t, s, configFor(s))), Base: s.Client().Transport}}
	}
	// cancelling's Base ends the call's context, cancelCall, as the 401 arrives.
	var cancelCall context.CancelFunc
	cancelling := func(s *appjwttest.Server) *http.Client {
		hc := recoveringClients(s, configFor(s))["Transport"]
		base := hc.Transport.(*Transport).Base
		hc.Transport.(*Transport).Base = testkit.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
			resp, err := base.RoundTrip(r)
			if err == nil { // read whole first, so that the context's end cannot cut it
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				resp.Body = io.NopCloser(bytes.NewReader(b))
			}
			cancelCall()
			return resp, err
		})
		return hc
	}
	tests := []struct {
		name        string
		setup       func(s *appjwttest.Server)
		body        func() io.Reader
		client      func(s *appjwttest.Server) *http.Client // nil: a Transport over a Source
		timeout     time.Duration                           // of the request; 0: none
		wantStatus  int
		wantAPI     int // requests the API got for the call
		wantFetches int // Sentinel requests the call caused; -1: any
		wantNext    int // status of the next, replayable call
	}{
		{"revoked, no body", revoke, none, nil, 0, 400, 2, 1, 201},
		{"revoked, POST body resent whole", revoke, body, nil, 0, 201, 2, 1, 201},
		{"revoked, body that cannot be resent", revoke, func() io.Reader { return io.MultiReader(body()) }, nil, 0, 401, 1, 0, 201},
		{"ConsumerJWS invalid: AppJWT kept", func(s *appjwttest.Server) { s.SetRejectCode(40103) }, none, nil, 0, 401, 1, 0, 401},
		{"ConsumerJWS missing: AppJWT kept", func(s *appjwttest.Server) { s.SetRejectCode(40104) }, none, nil, 0, 401, 1, 0, 401},
		{"second 401 goes back", func(s *appjwttest.Server) { s.SetRejectCode(40102) }, none, nil, 0, 401, 2, 1, 401},
		{"401 without LivePerson's body", func(s *appjwttest.Server) { s.QueueFaults(appjwttest.Consumer, appjwttest.Fault{Status: 401}) }, none, nil, 0, 400, 2, 1, 201},
		{"a source that cannot drop a token", revoke, none, static, 0, 401, 1, 0, 401},
		{"the context ends while the new token is on its way", func(s *appjwttest.Server) {
			s.RevokeTokens()
			s.QueueFaults(appjwttest.Sentinel, appjwttest.Fault{Delay: 500 * time.Millisecond})
		}, body, nil, 200 * time.Millisecond, 401, 1, -1, 201},
		{"the context ends as the 401 arrives", revoke, none, cancelling, 0, 401, 1, -1, 201},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testkit.NewServer(t)
			cancelCall = func() {}
			hc := recoveringClients(s, configFor(s))["Transport"]
			if tt.client != nil {
				hc = tt.client(s)
			}
			if got := postConsumer(t, hc, s); got != 201 {
				t.Fatalf("status %d, want 201", got)
			}
			tt.setup(s)
			api, sentinel := len(s.Requests(appjwttest.Consumer)), len(s.Requests(appjwttest.Sentinel))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cancelCall = cancel
			if tt.timeout > 0 {
				var stop context.CancelFunc
				ctx, stop = context.WithTimeout(ctx, tt.timeout)
				defer stop()
			}
			req, _ := http.NewRequestWithContext(ctx, "POST", consumerURL(s), tt.body())
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
			if got := len(s.Requests(appjwttest.Consumer)) - api; got != tt.wantAPI {
				t.Errorf("the API got %d requests, want %d", got, tt.wantAPI)
			}
			if got := len(s.Requests(appjwttest.Sentinel)) - sentinel; tt.wantFetches >= 0 && got != tt.wantFetches {
				t.Errorf("Sentinel got %d requests, want %d", got, tt.wantFetches)
			}
			if got := postConsumer(t, hc, s); got != tt.wantNext {
				t.Errorf("next call: status %d, want %d", got, tt.wantNext)
			}
		})
	}
}

// A late rejection of an older token keeps the current one; the floor
// between drops of the current one (internal/lifecycle tests it) doubles
// up to the token's lifetime.
func TestRejectKeepsNewerToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, c, ctx := fakeStand(t)
		f.Lifetime, f.SentinelDelay = 30*time.Second, 0
		src := c.TokenSource(ctx)
		// dropped rejects tok, or the current token if nil, once any refresh
		// running has ended, and says whether the current token went.
		dropped := func(tok *oauth2.Token) bool {
			mustToken(t, src)
			synctest.Wait()
			current := mustToken(t, src)
			if tok == nil {
				tok = current
			}
			src.Reject(tok)
			return mustToken(t, src).AccessToken != current.AccessToken
		}
		old := mustToken(t, src)
		time.Sleep(f.Lifetime) // the old token is gone: the next call fetches
		if dropped(old) || !dropped(nil) {
			t.Fatal("a late rejection of the old token dropped the current one, or one of the current did not")
		}
		// Floors of 5, 10 and 20 s; the next, 40 s, is capped at the
		// lifetime counted on arrival, a second or so under 30 s.
		for _, floor := range []struct{ kept, gone time.Duration }{{4, 5}, {9, 10}, {19, 20}, {20, 30}} {
			floor.kept, floor.gone = floor.kept*time.Second, floor.gone*time.Second
			time.Sleep(floor.kept)
			if dropped(nil) {
				t.Errorf("a rejection %v after the last dropped the token", floor.kept)
			}
			time.Sleep(floor.gone - floor.kept)
			if !dropped(nil) {
				t.Errorf("a rejection %v after the last did not drop the token", floor.gone)
			}
		}
	})
}

type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

// Logs.

// Each path writes the records it should, with no secret and no part of a
// token in them, and a handler may call back into the source from every
// record without a deadlock.
func TestLogRecords(t *testing.T) {
	s := testkit.NewServer(t)
	h := &callbackHandler{}
	c := configFor(s)
	c.FetchTimeout, c.Logger = 2*time.Second, slog.New(h)
	src, hs := newTestSource(t, s, c, nil)
	h.src = src
	hc := &http.Client{Transport: &Transport{Source: src, Base: s.Client().Transport}}
	type want struct {
		Level slog.Level
		Msg   string
		Keys  []string
	}
	fetched := want{slog.LevelDebug, msgFetched, []string{"account", "client_id", "expiry", "host", "lifetime", "refresh_at", "took"}}
	failed := func(serving ...string) want {
		return want{slog.LevelWarn, msgFetchFailed, append([]string{"account", "attempts", "client_id", "error", "error_class", "failures", "host", "retry_at"}, serving...)}
	}
	recovered := want{slog.LevelInfo, msgRecovered, []string{"account", "client_id", "failures", "outage"}}
	steps := []struct {
		name    string
		before  func()
		wantErr bool
		wants   []want
		attrs   map[string]string // of the step's first record
	}{
		{"first token", func() {}, false, []want{fetched}, nil},
		{"refresh, Sentinel down", func() {
			s.SetFault(appjwttest.Sentinel, appjwttest.Fault{Status: 503})
			hs.clk.Advance(56 * time.Minute)
		}, false, []want{failed("serving", "serving_until", "status")}, map[string]string{"status": "503", "error_class": "status", "attempts": "4", "serving": "true"}},
		{"re-lookup fails past the domain TTL, then recovered", func() {
			s.ClearFault(appjwttest.Sentinel)
			s.SetFault(appjwttest.DomainAPI, appjwttest.Fault{Status: 503})
			hs.clk.Advance(domain.TTL) // past the backoff and the domain's TTL
		}, false, []want{{slog.LevelWarn, msgRelookupFailed, []string{"account", "domain_api", "error", "error_class", "host", "retry_at"}}, recovered, fetched}, nil},
		{"rejected, and the fetch after it", func() { s.ClearFault(appjwttest.DomainAPI); s.RevokeTokens() }, false,
			[]want{fetched, {slog.LevelWarn, msgRejected, []string{"account", "client_id", "error_code", "host", "path", "resent", "scheme"}}}, nil},
		{"expired, Sentinel down", func() {
			s.SetFault(appjwttest.Sentinel, appjwttest.Fault{Status: 503})
			hs.clk.Advance(2 * time.Hour)
		}, true, []want{failed("serving", "status")}, map[string]string{"serving": "false"}},
		{"recovered", func() { s.ClearFault(appjwttest.Sentinel); hs.clk.Advance(time.Second) }, false, []want{recovered, fetched}, map[string]string{"failures": "1"}},
	}
	var tokens []string
	var seen []testkit.Record
	for _, st := range steps {
		st.before()
		done := make(chan error, 1)
		go func() {
			tok, err := src.Token()
			if err == nil {
				tokens = append(tokens, tok.AccessToken)
			}
			if st.name == "rejected, and the fetch after it" {
				if got := postConsumer(t, hc, s); got != 201 {
					err = fmt.Errorf("status %d after the rejection, want 201", got)
				}
			}
			hs.waitIdle(t)
			done <- err
		}()
		select {
		case err := <-done:
			if (err != nil) != st.wantErr {
				t.Errorf("%s: error %v, want one: %v", st.name, err, st.wantErr)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: deadlocked on a log record", st.name)
		}
		got := h.Take()
		seen = append(seen, got...)
		if len(got) != len(st.wants) {
			t.Fatalf("%s: %d records %v, want %d", st.name, len(got), got, len(st.wants))
		}
		for i, w := range st.wants {
			if diff := cmp.Diff(w, want{got[i].Level, got[i].Msg, got[i].Keys()}); diff != "" {
				t.Errorf("%s: record %d mismatch (-want +got):\n%s", st.name, i, diff)
			}
		}
		for k, v := range st.attrs {
			if got := got[0].Attrs[k]; got != v {
				t.Errorf("%s: %s = %s, want %s", st.name, k, got, v)
			}
		}
	}
	var all []string
	for _, r := range seen {
		all = append(append(all, r.Msg), slices.Collect(maps.Values(r.Attrs))...)
	}
	testkit.NoEcho(t, string(s.ClientSecret), all...)
	for _, tok := range tokens {
		for _, part := range strings.Split(tok, ".") {
			testkit.NoPiece(t, part, len(part), all...)
		}
	}
}

// A rejection is logged once, at WARN, saying where and how the token went.
// A v2 API's 401 carries no LivePerson errorCode: the token is rejected,
// and the request sent again with a new one, in the Bearer style. A token
// sent in another style than its API documents gets the scheme hint on its
// first rejection, not only after a second token fails too.
func TestRejectionIsLogged(t *testing.T) {
	const consumer, v2 = "/api/account/{account}/consumer", appjwttest.V2APIPath
	tests := []struct {
		name  string
		api   TokenAPI
		style HeaderStyle
		v2API bool              // the calls go to the v2 API, through Config.Client
		want  map[string]string // the first rejection's attributes but account, client_id and host; with a hint, the first call's
	}{
		{"v1 raw, revoked", SentinelV1, AutoStyle, false, map[string]string{"path": consumer, "error_code": "40102", "scheme": "raw", "resent": "true"}},
		{"v2 Bearer, revoked", SentinelV2, AutoStyle, true, map[string]string{"path": v2, "error_code": "0", "scheme": "bearer", "resent": "true"}},
		{"v1 as Bearer", SentinelV1, BearerStyle, false, map[string]string{"path": consumer, "error_code": "40102", "scheme": "bearer", "resent": "true",
			"hint": "check the header scheme: the token was sent bearer, but Sentinel's v1 API issued it, and its tokens go raw"}},
		{"v2 raw", SentinelV2, RawStyle, false, map[string]string{"path": consumer, "error_code": "40102", "scheme": "raw", "resent": "true",
			"hint": "check the header scheme: the token was sent raw, but Sentinel's v2 API issued it, and its tokens go bearer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testkit.NewServer(t)
			var h testkit.Capture
			c := configFor(s)
			c.TokenAPI, c.Logger = tt.api, slog.New(&h)
			hc, call, ok := &http.Client{Transport: &Transport{Source: c.TokenSource(s.Context(context.Background())), Base: s.Client().Transport, Style: tt.style}}, postConsumer, 201
			if tt.v2API {
				hc, call, ok = c.Client(s.Context(context.Background())), getV2API, 200
			}
			if tt.want["hint"] == "" {
				if got := call(t, hc, s); got != ok {
					t.Fatalf("status %d, want %d", got, ok)
				}
				s.RevokeTokens()
				if got := call(t, hc, s); got != ok {
					t.Errorf("after the revocation: status %d, want %d", got, ok)
				}
				if got := len(s.Requests(appjwttest.Sentinel)) + len(s.Requests(appjwttest.SentinelV2Token)); got != 2 {
					t.Errorf("%d token requests, want 2", got)
				}
			} else {
				call(t, hc, s)
			}
			rejected := slices.DeleteFunc(h.Take(), func(r testkit.Record) bool { return r.Msg != msgRejected })
			if len(rejected) == 0 || tt.want["hint"] == "" && len(rejected) != 1 {
				t.Fatalf("%d rejection records, want 1", len(rejected))
			}
			want := map[string]string{"account": s.AccountID, "client_id": s.ClientID, "host": s.Host()}
			for k, v := range tt.want {
				want[k] = strings.Replace(v, "{account}", s.AccountID, 1)
			}
			if diff := cmp.Diff(want, rejected[0].Attrs); diff != "" || rejected[0].Level != slog.LevelWarn {
				t.Errorf("rejection record at %v, want WARN; mismatch (-want +got):\n%s", rejected[0].Level, diff)
			}
		})
	}
}

// callbackHandler keeps every record, and calls every method of the
// source on each, as a handler that ships logs through an authorized
// client would.
type callbackHandler struct {
	testkit.Capture
	src *Source
}

func (h *callbackHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *callbackHandler) WithGroup(string) slog.Handler      { return h }

func (h *callbackHandler) Handle(ctx context.Context, r slog.Record) error {
	h.Capture.Handle(ctx, r)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	h.src.Token()
	h.src.TokenContext(ctx)
	h.src.State()
	h.src.Reject(&oauth2.Token{AccessToken: "not-the-current-one"})
	return nil
}

// Sentinel hangs on a cold start: every call gives up when the caller's
// deadline passes or its context is cancelled, or FetchTimeout passes,
// not when the fetch does.
func TestWaitEndsWithTheCallersDeadline(t *testing.T) {
	within := func(ctx context.Context, d time.Duration) context.Context {
		ctx, cancel := context.WithTimeout(ctx, d)
		_ = cancel // the deadline ends it, or fakeStand's context with the test
		return ctx
	}
	type fake = *testkit.FakeLivePerson
	tests := []struct {
		name   string
		call   func(ctx context.Context, c Config, f fake) error
		within time.Duration
		want   error
	}{
		{"Config.Token, a 100 ms deadline", func(ctx context.Context, c Config, _ fake) error {
			return errOf(c.Token(within(ctx, 100*time.Millisecond)))
		}, 100 * time.Millisecond, context.DeadlineExceeded},
		{"Config.Token, cancelled after 50 ms", func(ctx context.Context, c Config, _ fake) error {
			ctx, cancel := context.WithCancel(ctx)
			time.AfterFunc(50*time.Millisecond, cancel)
			return errOf(c.Token(ctx))
		}, 50 * time.Millisecond, context.Canceled},
		{"Config.Token, FetchTimeout 100 ms", func(ctx context.Context, c Config, _ fake) error {
			c.FetchTimeout = 100 * time.Millisecond
			return errOf(c.Token(ctx))
		}, 100 * time.Millisecond, context.DeadlineExceeded},
		{"Transport, a request with a 200 ms deadline", func(ctx context.Context, c Config, f fake) error {
			req, _ := http.NewRequestWithContext(within(ctx, 200*time.Millisecond), "GET", "https://api.test/x", nil)
			return errOf((&http.Client{Transport: &Transport{Source: c.TokenSource(ctx), Base: f}}).Do(req))
		}, 200 * time.Millisecond, context.DeadlineExceeded},
		{"Config.Client, a 300 ms client Timeout", func(ctx context.Context, c Config, f fake) error {
			return errOf(c.Client(context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: f, Timeout: 300 * time.Millisecond})).Get("https://api.test/x"))
		}, 300 * time.Millisecond, context.DeadlineExceeded},
		{"TokenContext, a 200 ms deadline", func(ctx context.Context, c Config, _ fake) error {
			return errOf(c.TokenSource(ctx).TokenContext(within(ctx, 200*time.Millisecond)))
		}, 200 * time.Millisecond, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f, c, ctx := fakeStand(t)
				f.SetHang(func(time.Time) bool { return true })
				start := time.Now()
				err := tt.call(ctx, c, f)
				if d := time.Since(start); d > tt.within {
					t.Errorf("returned after %v, want within %v", d, tt.within)
				}
				if !errors.Is(err, tt.want) {
					t.Errorf("error %v, want one that is %v", err, tt.want)
				}
			})
		})
	}
}

// A source nobody calls fetches at most one more token. Cancelling its
// context ends every wait at once, whatever the wiring, and nothing is
// fetched after.
func TestCancelEndsEverything(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, c, ctx := fakeStand(t)
		ctx, cancel := context.WithCancel(ctx)
		src := c.TokenSource(ctx)
		mustToken(t, src)
		time.Sleep(10 * time.Hour)
		if got := f.Count("sentinel.test"); got != 2 {
			t.Fatalf("Sentinel got %d requests in 10 idle hours, want 2: the token used, and one more", got)
		}
		f.SetHang(func(time.Time) bool { return true }) // the token has expired: every call waits
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for _, hc := range []*http.Client{oauth2.NewClient(ctx, src), NewClient(ctx, src), {Transport: &Transport{Source: src, Base: f}}} {
			wg.Go(func() { errs <- errOf(hc.Get("https://api.test/x")) })
		}
		wg.Go(func() { errs <- errOf(src.Token()) })
		wg.Go(func() { errs <- errOf(oauth2.ReuseTokenSource(nil, src).Token()) })
		time.Sleep(5 * time.Second)
		start := time.Now()
		cancel()
		wg.Wait()
		if d := time.Since(start); d > 0 {
			t.Errorf("callers returned %v after cancel", d)
		}
		close(errs)
		for err := range errs {
			if !errors.Is(err, context.Canceled) {
				t.Errorf("error %v, want context.Canceled", err)
			}
		}
		before := f.Count("sentinel.test")
		for range 100 {
			src.Token()
			time.Sleep(100 * time.Millisecond)
		}
		if got := f.Count("sentinel.test") - before; got != 0 {
			t.Errorf("%d Sentinel requests after cancel", got)
		}
	})
}

// One source, two clients: the API takes the raw tokens of one and
// rejects the Bearer tokens of the other. The rejected one's drops back
// off as if it were alone; the other's successes do not reset them.
func TestRejectionsCountPerPath(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, c, ctx := fakeStand(t)
		strict := testkit.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.URL.Host == "api.test" && strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
				return &http.Response{StatusCode: 401, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(`{"kind":"resp","code":401,"body":{"errorCode":40102}}`)), Request: r}, nil
			}
			return f.RoundTrip(r)
		})
		src := c.TokenSource(ctx)
		var waited atomic.Int32
		var wg sync.WaitGroup
		stop := time.Now().Add(3 * time.Hour)
		for _, style := range []HeaderStyle{RawStyle, BearerStyle} {
			hc := &http.Client{Transport: &Transport{Source: src, Base: strict, Style: style}}
			wg.Go(func() {
				for time.Now().Before(stop) {
					start := time.Now()
					if resp, err := hc.Get("https://api.test/x"); err == nil {
						resp.Body.Close()
					}
					if style == RawStyle && time.Since(start) > 0 {
						waited.Add(1)
					}
					time.Sleep(time.Second)
				}
			})
		}
		wg.Wait()
		t.Logf("3 h: Sentinel %d requests; raw (good) requests that waited for Sentinel: %d", f.Count("sentinel.test"), waited.Load())
		if n := waited.Load(); n > 20 {
			t.Errorf("%d requests of the client whose tokens are taken waited for Sentinel, want at most 20", n)
		}
		if n := f.Count("sentinel.test"); n > 20 {
			t.Errorf("Sentinel got %d requests in 3 h (issue 16: at most 20 for an API that rejects everything)", n)
		}
	})
}

// An issuer of tokens that last 20 ms (a v1 JWT's claims), or 1 s (v2's
// expires_in): MinLifetime and the backoff bound the load to 2 requests a
// second.
func TestShortLivedTokensBoundTheLoad(t *testing.T) {
	for _, api := range []TokenAPI{SentinelV1, SentinelV2} {
		t.Run(api.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var n atomic.Int64
				sentinel := testkit.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
					io.Copy(io.Discard, r.Body)
					iat := float64(time.Now().UnixNano()) / 1e9
					body := fmt.Sprintf(`{"access_token":%q,"token_type":"Bearer"}`, testkit.JWT(fmt.Sprintf(`{"iat":%.3f,"exp":%.3f}`, iat, iat+0.020)))
					if k := n.Add(1); api == SentinelV2 {
						body = fmt.Sprintf(`{"access_token":"abc%d","token_type":"Bearer","expires_in":1}`, k)
					}
					return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
				})
				c := Config{AccountID: "le1", ClientID: "id", ClientSecret: "s3cret-value", Domain: "sentinel.test", TokenAPI: api}
				src := c.TokenSource(context.WithValue(t.Context(), oauth2.HTTPClient, &http.Client{Transport: sentinel}))
				for range 10000 { // one caller, a call per ms, for 10 s
					src.Token()
					time.Sleep(time.Millisecond)
				}
				t.Logf("Sentinel requests in 10 s: %d", n.Load())
				if n.Load() > 21 { // 2 a second, and the first
					t.Errorf("Sentinel got %d requests in 10 s from one source and one caller (%.0f/s)", n.Load(), float64(n.Load())/10)
				}
			})
		})
	}
}

// Sources dropped while their context lives on (an app's root context)
// are collected, with their Config and token: nothing of ctx keeps them.
// A Source used once and dropped is collected within two garbage
// collections, its timer still pending and its context still live: the
// timer holds the cache weakly.
func TestDroppedSourcesAreCollected(t *testing.T) {
	f, c, ctx := fakeStand(t) // ctx lives as long as the app
	f.SentinelDelay = 0
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	const n = 2000
	for range n {
		hc := c.Client(ctx) // e.g. a client per job, as with x/oauth2's Config.Client
		resp, err := hc.Get("https://api.test/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// The first collection finds the Sources unreachable and queues their
	// cleanups, which run on a goroutine of the runtime's; the second
	// collects the caches, about 1.9 KB each. Allow the cleanups a second.
	const most = n * 512
	after, gcs := heap(), 1
	for deadline := time.Now().Add(time.Second); (after > before+most || gcs < 4) && time.Now().Before(deadline); gcs++ {
		time.Sleep(time.Millisecond)
		after = heap()
	}
	t.Logf("%d dropped Sources: the heap grew by %d KiB after %d collections", n, (int64(after)-int64(before))/1024, gcs)
	if after > before+most {
		t.Errorf("%d dropped Sources kept %d KiB after %d collections, want less than %d KiB: the caches stay reachable", n, (after-before)>>10, gcs, most>>10)
	}
}

// State through an outage: the token held serves until shortly before
// its expiry, a cold source's callers share one failed fetch and then get
// its error at once, and the first success resets the backoff.
func TestState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, c, ctx := fakeStand(t)
		src := c.TokenSource(ctx)
		if diff := cmp.Diff(State{Fetching: true}, src.State()); diff != "" {
			t.Errorf("the first call, which starts a fetch (-want +got):\n%s", diff)
		}
		start := time.Now()
		old := mustToken(t, src)
		got := src.State()
		expiry := start.Add(time.Hour - time.Second) // counted from when the request was sent, less the second Date names
		if !got.Valid || !got.Expiry.Equal(expiry) || got.RefreshAt.Before(expiry.Add(-11*time.Minute)) || got.RefreshAt.After(expiry.Add(-5*time.Minute)) || got.Failures != 0 {
			t.Errorf("with a token: %+v, want Valid, Expiry %v, RefreshAt 5 to 11 min before", got, expiry)
		}

		// Sentinel goes down: the refresh on the timer fails, the token serves.
		f.SetDown(func(time.Time) bool { return true })
		// 4 attempts of 2 s each, with pauses of 0.5 to 2 s between them.
		time.Sleep(time.Until(got.RefreshAt) + 12*time.Second)
		got = src.State()
		var re *oauth2.RetrieveError
		if !got.Valid || got.Failures != 1 || !errors.As(got.LastError, &re) || re.Response.StatusCode != 503 || !got.RetryAt.After(got.LastErrorAt) {
			t.Errorf("during the outage: %+v, want Valid, 1 failure, its 503 and a retry after it", got)
		}
		if tok, err := src.Token(); err != nil || tok.AccessToken != old.AccessToken {
			t.Errorf("during the outage: Token() = %v, %v; want the old token", tok, err)
		}

		// A cold source, on a LivePerson of its own that is down: 50
		// callers for a second all fail, on one fetch.
		fc, cc, cctx := fakeStand(t)
		fc.SetDown(func(time.Time) bool { return true })
		cold := cc.TokenSource(cctx)
		stop := time.Now().Add(time.Second)
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				for time.Now().Before(stop) {
					if _, err := cold.Token(); err == nil {
						t.Error("cold start with Sentinel down: no error")
					}
					time.Sleep(time.Millisecond)
				}
			})
		}
		wg.Wait()
		if got := fc.Count("sentinel.test"); got > 5 {
			t.Errorf("Sentinel got %d requests from 50 callers in a second, want at most 5", got)
		}
		// The caller after the failed fetch gets its error at once, saying
		// that it backs off, until when.
		before, start := fc.Count("sentinel.test"), time.Now()
		_, err := cold.Token()
		st := cold.State()
		if err == nil || !strings.HasPrefix(err.Error(), "appjwt: backing off until "+st.RetryAt.UTC().Format("2006-01-02T15:04:05.000Z")+" after a failed fetch: token request for account") ||
			strings.Contains(err.Error(), "\n") || !errors.As(err, &re) || re.Response.StatusCode != 503 || fc.Count("sentinel.test") != before || time.Since(start) > 0 {
			t.Errorf("within the backoff: %v, want the last 503 at once, saying until when, one line, with its RetrieveError", err)
		}
		if st.Valid || st.Failures != 1 || st.LastError == nil {
			t.Errorf("cold source after a failure: %+v", st)
		}

		// 5 s before its expiry, the old token is no longer served.
		time.Sleep(time.Until(old.Expiry) - 5*time.Second)
		if tok, err := src.Token(); err == nil {
			t.Errorf("5 s before expiry, during the outage: got %v, want the fetch error", tok)
		}
		// Sentinel recovers: a new token within a backoff step and a fetch.
		f.SetDown(func(time.Time) bool { return false })
		recovered := time.Now()
		for _, err := src.Token(); err != nil; _, err = src.Token() {
			if time.Since(recovered) > lifecycle.FailureBackoff.Max+f.SentinelDelay {
				t.Fatalf("no new token %v after the recovery: %v", time.Since(recovered), err)
			}
			time.Sleep(time.Second)
		}
		if st := src.State(); st.Failures != 0 {
			t.Errorf("failures = %d after a success, want the backoff reset", st.Failures)
		}
	})
}

// A readiness check that calls State alone, as ExampleSource_State does,
// turns ready with no other traffic: within one fetch on a fresh start,
// within one backoff step of Sentinel's recovery after a failed cold start,
// and stays ready for hours.
func TestReadinessFromStateAlone(t *testing.T) {
	const probe = 10 * time.Second // a Kubernetes readiness probe's default period
	t.Run("fresh start", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f, c, ctx := fakeStand(t)
			src := c.TokenSource(ctx)
			start := time.Now()
			for ; !src.State().Valid; time.Sleep(probe) {
				if time.Since(start) > time.Minute {
					t.Fatalf("not ready a minute after the start, State %+v", src.State())
				}
			}
			if got := time.Since(start); got > probe {
				t.Errorf("ready after %v, want the second probe (%v): one fetch takes %v", got, probe, f.SentinelDelay)
			}
			// Three hours of probes and nothing else: never unready again.
			for range 3 * 360 {
				time.Sleep(probe)
				if st := src.State(); !st.Valid {
					t.Fatalf("unready %v in: %+v", time.Since(start), st)
				}
			}
			if got := f.Count("sentinel.test"); got > 5 {
				t.Errorf("Sentinel got %d requests in 3 probed hours, want one an hour or so", got)
			}
		})
	})
	// Probes of any period up to the retry window, State alone, the cold
	// start failed: the token comes within one backoff step (30 s) and an
	// answer of the recovery, and the next probe sees it.
	for _, period := range []time.Duration{10 * time.Second, 30 * time.Second, time.Minute, 3 * time.Minute} {
		t.Run(fmt.Sprintf("after a failed cold start, probes %v apart", period), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f, c, ctx := fakeStand(t)
				start := time.Now()
				recovery := start.Add(5*time.Minute + 15*time.Second)
				f.SetDown(func(now time.Time) bool { return now.Before(recovery) })
				src := c.TokenSource(ctx)
				for st := src.State(); !st.Valid; st = src.State() {
					if time.Now().After(recovery.Add(period + time.Minute)) {
						t.Fatalf("not ready %v after Sentinel recovered: %+v", time.Since(recovery), st)
					}
					time.Sleep(period)
				}
				// Its request was sent a lifetime before its expiry, less the
				// second Date takes off, and answered sentinelDelay later.
				took := src.State().Expiry.Add(time.Second - f.Lifetime + f.SentinelDelay).Sub(recovery)
				t.Logf("token %v after Sentinel recovered (fetch included); %d Sentinel requests", took, f.Count("sentinel.test"))
				if took > 30*time.Second+f.SentinelDelay+time.Second {
					t.Errorf("token %v after Sentinel recovered, want within one backoff step (30 s) and an answer", took)
				}
				// A fetch of 4 attempts per backoff step of 15 s at least, and
				// the first ones of its ramp.
				if got, most := f.Count("sentinel.test"), 4*(int(recovery.Sub(start)/(15*time.Second))+5); got > most {
					t.Errorf("Sentinel got %d requests in the outage, want at most %d", got, most)
				}
			})
		})
	}
	t.Run("a probe's last call", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f, c, ctx := fakeStand(t)
			f.SetDown(func(time.Time) bool { return true })
			src := c.TokenSource(ctx)
			src.State()
			time.Sleep(retryWindow + time.Minute) // retries within the window, then none
			before := f.Count("sentinel.test")
			time.Sleep(time.Hour)
			if got := f.Count("sentinel.test") - before; got != 0 {
				t.Errorf("Sentinel got %d requests in an hour nobody asked the source anything, want 0", got)
			}
		})
	})
}

// Benchmarks of what needs the package's insides; those that compare the
// public API with other libraries are in internal/bench.

var sinkToken *oauth2.Token

// BenchmarkSource is each method of a Source that holds a token beside
// the floor, in one run: Token and TokenContext copy the token, the path
// Transport takes does not, and State takes the lock for a moment.
func BenchmarkSource(b *testing.B) {
	s := testkit.NewServer(b)
	c := configFor(s)
	src := c.TokenSource(s.Context(context.Background()))
	// The floor a cached Token() can reach: copies of one token, under
	// ReuseTokenSourceWithExpiry.
	static := oauth2.Token{AccessToken: "x", Expiry: time.Now().Add(time.Hour)}
	floor := oauth2.ReuseTokenSourceWithExpiry(nil, testkit.TokenSourceFunc(func() (*oauth2.Token, error) { t := static; return &t, nil }), defaultEarlyExpiry)
	ctx := context.Background()
	mustToken(b, src)
	mustToken(b, floor)
	for _, m := range []struct {
		name string
		call func()
	}{
		{"Token", func() { sinkToken, _ = src.Token() }},
		{"TokenContext", func() { sinkToken, _ = src.TokenContext(ctx) }},
		{"Transport's", func() { sinkToken, _ = src.token(ctx) }},
		{"State", func() { src.State() }},
		{"floor", func() { sinkToken, _ = floor.Token() }},
	} {
		b.Run(m.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m.call()
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
			s := testkit.NewServer(b, func(s *appjwttest.Server) { s.Lifetime = life })
			var perMinute float64
			for b.Loop() {
				src, h := newTestSource(b, s, configFor(s), nil)
				perMinute = max(perMinute, underLoad(b, s, src, h, life, 10))
			}
			b.ReportMetric(perMinute, "requests/min")
		})
	}
}

// wirings are the ways to wire a Source into a client: ctx reaches
// LivePerson, and src is the source to wire (Config.Client makes its own
// from c).
var wirings = []struct {
	name   string
	client func(ctx context.Context, c Config, src *Source) *http.Client
}{
	{"oauth2.NewClient", func(ctx context.Context, _ Config, src *Source) *http.Client { return oauth2.NewClient(ctx, src) }},
	{"oauth2.Transport", func(ctx context.Context, _ Config, src *Source) *http.Client {
		return &http.Client{Transport: &oauth2.Transport{Source: src, Base: baseOf(ctx)}}
	}},
	{"Config.Client", func(ctx context.Context, c Config, _ *Source) *http.Client { return c.Client(ctx) }},
	{"Transport", func(ctx context.Context, _ Config, src *Source) *http.Client {
		return &http.Client{Transport: &Transport{Source: src, Base: baseOf(ctx)}}
	}},
}

func baseOf(ctx context.Context) http.RoundTripper {
	return ctx.Value(oauth2.HTTPClient).(*http.Client).Transport
}

// callEvery10s sends a GET to the API through client every 10 s for
// hours, and returns how many requests after the first waited (took any
// time on the fake clock) and how many failed.
func callEvery10s(t *testing.T, client *http.Client, hours int) (waited, failed int) {
	t.Helper()
	for i := range hours * 360 {
		start := time.Now()
		resp, err := client.Get("https://api.test/x")
		if err == nil {
			resp.Body.Close()
		}
		switch {
		case err != nil || resp.StatusCode != http.StatusOK:
			failed++
			if failed <= 3 {
				t.Logf("request at %v: %v, %v", time.Duration(i)*10*time.Second, resp, err)
			}
		case i > 0 && time.Since(start) > 0:
			waited++
		}
		time.Sleep(10 * time.Second)
	}
	return waited, failed
}

// Every wiring serves requests a token without waiting for Sentinel, with
// a token an hour and one more at most, however the refresh points fall;
// and rides out an outage from minute 45 to 58 of the first token's life.
func TestEveryWiringNeverWaits(t *testing.T) {
	for _, w := range wirings {
		for _, outage := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/outage %v", w.name, outage), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					f, c, ctx := fakeStand(t)
					start := time.Now()
					f.SetDown(func(now time.Time) bool {
						life := now.Sub(start.Add(f.SentinelDelay))
						return outage && life >= 45*time.Minute && life < 58*time.Minute
					})
					waited, failed := callEvery10s(t, w.client(ctx, c, c.TokenSource(ctx)), 3)
					if waited != 0 || failed != 0 {
						t.Errorf("%d requests after the first waited for Sentinel, %d failed; want none", waited, failed)
					}
					if got := f.Count("sentinel.test"); !outage && got > 4 {
						t.Errorf("Sentinel got %d requests in 3 hours, want at most 4", got)
					}
				})
			})
		}
	}
}

// After an outage in which Sentinel hangs (takes requests and answers
// none), a source serves a new token at most FetchTimeout (the fetch that
// hung as Sentinel recovered gives up only then), plus the backoff cap of
// 30 s, plus one answer after Sentinel recovers; after a long outage, that
// is what it takes. Sentinel recovers 1 ms after a fetch's request went
// out, the worst moment; the backoff takes each edge of its jitter. A long
// outage outlasts the token, and the first call after the backoff starts
// the fetch; in a short one the token is still served, and the source's
// timer starts it.
func TestRecoveryAfterAHangingOutage(t *testing.T) {
	edges := map[string]func(time.Duration) time.Duration{
		"least backoff": func(time.Duration) time.Duration { return 0 },
		"most backoff":  func(n time.Duration) time.Duration { return n - 1 },
	}
	outages := []struct {
		name       string
		from, past time.Duration // Sentinel hangs from, until the first request past
	}{
		{"long outage", 10 * time.Minute, 2 * time.Hour},
		// From before the earliest refresh point (49 min) to after the latest (55 min).
		{"short outage", 48 * time.Minute, 56 * time.Minute},
	}
	const callEvery = 100 * time.Millisecond
	for _, fetchTimeout := range []time.Duration{0, 10 * time.Second} {
		for _, o := range outages {
			for edge, rand := range edges {
				t.Run(fmt.Sprintf("FetchTimeout %v/%s/%s", fetchTimeout, o.name, edge), func(t *testing.T) {
					synctest.Test(t, func(t *testing.T) {
						f, c, ctx := fakeStand(t)
						start := time.Now()
						var mu sync.Mutex
						var end time.Time // when Sentinel recovers
						f.SetHang(func(now time.Time) bool {
							mu.Lock()
							defer mu.Unlock()
							if end.IsZero() && now.Sub(start) >= o.past {
								end = now.Add(time.Millisecond)
							}
							return now.Sub(start) >= o.from && (end.IsZero() || now.Before(end))
						})
						c.FetchTimeout = fetchTimeout
						backoff := lifecycle.FailureBackoff
						backoff.Rand = rand
						src := newSource(newTokenCache(ctx, c, hooks{backoff: backoff}))
						first := mustToken(t, src)
						for {
							time.Sleep(callEvery)
							tok, err := src.Token()
							mu.Lock()
							recovered := end
							mu.Unlock()
							if err == nil && tok.AccessToken != first.AccessToken {
								took := time.Since(recovered)
								bound := c.fetchTimeout() + backoff.Max + f.SentinelDelay + callEvery
								t.Logf("a new token %v after Sentinel recovered (bound %v)", took, bound)
								if recovered.IsZero() || took > bound {
									t.Errorf("a new token %v after Sentinel recovered, want at most %v", took, bound)
								}
								if worst := o.name == "long outage" && edge == "most backoff"; worst && took < bound-time.Second {
									t.Errorf("a new token %v after Sentinel recovered, want the bound %v: is it too high now?", took, bound)
								}
								return
							}
							if time.Since(start) > o.past+time.Hour {
								t.Fatalf("no new token an hour after Sentinel recovered: %v", err)
							}
						}
					})
				})
			}
		}
	}
}

// One source shared by every wiring and by direct callers, across
// refreshes of 12 s tokens and a revocation: -race finds any token written
// by one caller while another reads it.
func TestSharedSourceIsRaceFree(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, c, ctx := fakeStand(t)
		f.Lifetime, f.SentinelDelay = 12*time.Second, 100*time.Millisecond
		src := c.TokenSource(ctx)
		var clients []*http.Client
		for _, w := range wirings {
			clients = append(clients, w.client(ctx, c, src))
		}
		clients = append(clients, &http.Client{Transport: &Transport{Source: src, Base: f, Style: BearerStyle}})
		direct := []func() (*oauth2.Token, error){
			src.Token,
			func() (*oauth2.Token, error) { return src.TokenContext(ctx) },
			oauth2.ReuseTokenSource(nil, src).Token,
			oauth2.ReuseTokenSourceWithExpiry(nil, src, 5*time.Second).Token,
		}
		stop := time.Now().Add(40 * time.Second)
		var wg sync.WaitGroup
		for _, hc := range clients {
			wg.Go(func() {
				for time.Now().Before(stop) {
					if resp, err := hc.Get("https://api.test/x"); err == nil {
						resp.Body.Close()
					}
					time.Sleep(7 * time.Millisecond)
				}
			})
		}
		for _, token := range direct {
			wg.Go(func() {
				for time.Now().Before(stop) {
					if tok, err := token(); err == nil {
						tok.AccessToken += "" // a write, as x/oauth2's wrappers make
						tok.Expiry = tok.Expiry.Add(0)
					}
					src.State()
					time.Sleep(5 * time.Millisecond)
				}
			})
		}
		time.Sleep(20 * time.Second)
		f.RevokeAll()
		wg.Wait()
		if got := f.Count("sentinel.test"); got < 4 {
			t.Errorf("Sentinel got %d requests in 40 s of 12 s tokens, want refreshes", got)
		}
	})
}

// The rule is lphttp.MayCarry's, shared with consumerjws: this holds each
// wiring of Transport to it.
func TestRedirects(t *testing.T) {
	s := testkit.NewServer(t)
	c := configFor(s)
	static := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "t0k3n"})
	over := func(tr *Transport) func(http.RoundTripper) http.RoundTripper {
		return func(base http.RoundTripper) http.RoundTripper { tr := *tr; tr.Base = base; return &tr }
	}
	testkit.Redirects(t, "Authorization", context.Background, map[string]func(http.RoundTripper) http.RoundTripper{
		"Transport":              over(&Transport{Source: static}),
		"Config.Client":          over(c.Client(s.Context(context.Background())).Transport.(*Transport)),
		"Transport, BearerStyle": over(bearerClient(s.Context(context.Background()), c).Transport.(*Transport)),
	})
}

// rotating is a Rejecter that hands out a new token after each rejection.
type rotating struct{ n atomic.Int64 }

func (r *rotating) Token() (*oauth2.Token, error) {
	return &oauth2.Token{AccessToken: "tok" + strconv.FormatInt(r.n.Load(), 10)}, nil
}

func (r *rotating) Reject(*oauth2.Token) { r.n.Add(1) }

func TestRoundTripEdgeCases(t *testing.T) {
	testkit.RoundTripEdgeCases(t, context.Background, `{"kind":"resp","code":401,"body":{"errorCode":40102}}`,
		func(base http.RoundTripper) http.RoundTripper { return &Transport{Source: &rotating{}, Base: base} })
}

// An API that rejects every token: a storm of 20 callers for 2 s sends at
// most 4 token requests, and a request a second for 3 hours at most 20, the
// floor between drops doubling while new tokens are rejected too; once the
// API takes tokens again, the next call goes through.
func TestRejectEverythingLoad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, c, ctx := fakeStand(t)
		var h testkit.Capture
		c.Logger = slog.New(&h)
		hc := &http.Client{Transport: &Transport{Source: c.TokenSource(ctx), Base: f}}
		get := func() int {
			resp, err := hc.Get("https://api.test/x")
			if err != nil {
				t.Error(err)
				return 0
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if got := get(); got != 200 {
			t.Fatalf("status %d, want 200", got)
		}
		f.SetRevokeEvery(true)
		stop := time.Now().Add(2 * time.Second)
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				for time.Now().Before(stop) {
					if got := get(); got != 401 {
						t.Errorf("during the storm: status %d, want 401", got)
						return
					}
					time.Sleep(10 * time.Millisecond)
				}
			})
		}
		wg.Wait()
		if got := f.Count("sentinel.test"); got > 4 {
			t.Errorf("Sentinel got %d requests in a 2 s storm, want at most 4", got)
		}
		for range 3 * 3600 {
			get()
			time.Sleep(time.Second)
		}
		if got := f.Count("sentinel.test"); got > 20 {
			t.Errorf("Sentinel got %d requests in 3 hours, want at most 20", got)
		}
		if !slices.ContainsFunc(h.Take(), func(r testkit.Record) bool {
			return r.Msg == msgRejected && r.Attrs["scheme"] == "raw" && r.Attrs["hint"] != ""
		}) {
			t.Error("no rejection record hints that new tokens are rejected too")
		}
		f.SetRevokeEvery(false)
		if got := get(); got != 200 {
			t.Errorf("after the storm: status %d, want 200", got)
		}
	})
}
