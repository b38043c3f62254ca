package consumerjws

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lpconnect/appjwt"
	"github.com/lpconnect/appjwt/appjwttest"
	"github.com/lpconnect/appjwt/internal/testkit"
	"golang.org/x/oauth2"
)

func TestTokenCached(t *testing.T) {
	s := newStand(t)
	c := s.cache(nil)
	first, err := c.Token(context.Background(), "john_doe_42")
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Token(context.Background(), "john_doe_42")
	if err != nil {
		t.Fatal(err)
	}
	if again != first {
		t.Errorf("second call got another ConsumerJWS: not cached")
	}
	if got, err := s.srv.Verify(appjwttest.Consumer, first); err != nil || got != "john_doe_42" {
		t.Errorf("VerifyConsumerJWS = %q, %v; want john_doe_42, nil", got, err)
	}
	if diff := cmp.Diff(counts{DomainAPI: 1, Sentinel: 1, Consumer: 1}, s.counts()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	req := s.srv.Requests(appjwttest.Consumer)[0]
	if got, want := req.Path, "/api/account/"+s.srv.AccountID+"/consumer"; got != want {
		t.Errorf("path %q, want %q", got, want)
	}
	if got, want := req.Query.Get("v"), "1.0"; got != want {
		t.Errorf("v=%q, want %q", got, want)
	}
	if _, err := s.srv.Verify(appjwttest.Sentinel, req.Header.Get("Authorization")); err != nil {
		t.Errorf("Authorization is not the raw AppJWT: %v", err)
	}
}

// 1,000 concurrent first calls for 100 consumers make exactly 100
// requests, and each caller gets its own consumer's ConsumerJWS.
func TestConcurrentFirstCalls(t *testing.T) {
	s := newStand(t)
	s.srv.SetFault(appjwttest.Consumer, appjwttest.Fault{Delay: 20 * time.Millisecond}) // so that calls overlap
	c := s.cache(nil)
	const consumers, calls = 100, 1000
	var start, done sync.WaitGroup
	start.Add(1)
	errs := make(chan error, calls)
	for i := range calls {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			id := fmt.Sprintf("consumer-%d", i%consumers)
			jws, err := c.Token(context.Background(), id)
			if err == nil {
				var got string
				if got, err = s.srv.Verify(appjwttest.Consumer, jws); err == nil && got != id {
					err = fmt.Errorf("got the ConsumerJWS of %q, want %q", got, id)
				}
			}
			errs <- err
		}()
	}
	start.Done()
	done.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got, want := len(s.srv.Requests(appjwttest.Consumer)), consumers; got != want {
		t.Errorf("%d ConsumerJWS requests, want %d", got, want)
	}
	if got, want := len(s.srv.Requests(appjwttest.DomainAPI)), 1; got != want {
		t.Errorf("%d Domain API requests, want %d", got, want)
	}
}

// A hanging fetch for one consumer holds up no other.
func TestConsumersInParallel(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	idp := &fakeIdP{gate: func(body string) {
		if strings.Contains(body, "slow") {
			close(entered)
			<-release
		}
	}}
	c := fakeCache(idp, 0)
	slow := make(chan error, 1)
	go func() { _, err := c.Token(context.Background(), "slow"); slow <- err }()
	<-entered
	if _, err := c.Token(context.Background(), "fast"); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-slow; err != nil {
		t.Fatal(err)
	}
}

func TestLRUEviction(t *testing.T) {
	idp := &fakeIdP{}
	c := fakeCache(idp, 2)
	steps := []struct {
		id           string
		wantRequests int // after the call
	}{
		{"a", 1}, {"b", 2}, {"a", 2}, // a is now the most recently used
		{"c", 3}, // evicts b
		{"a", 3}, {"c", 3},
		{"b", 4}, // b again: fetched; evicts a
		{"a", 5},
	}
	for i, st := range steps {
		if _, err := c.Token(context.Background(), st.id); err != nil {
			t.Fatal(err)
		}
		if got := idp.count(); got != st.wantRequests {
			t.Errorf("step %d (%s): %d requests, want %d", i, st.id, got, st.wantRequests)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if got, want := len(c.m), 2; got != want {
		t.Errorf("%d consumers cached, want %d", got, want)
	}
}

// withExp returns a Cache whose stand-in issues ConsumerJWS that live
// 100 s, on a clock the test moves, and consumer a's first ConsumerJWS.
func withExp(t *testing.T) (*stand, *Cache, *testkit.Clock, string) {
	t.Helper()
	s := newStand(t, func(s *appjwttest.Server) { s.ConsumerJWSLifetime = 100 * time.Second })
	c := s.cache(nil)
	clk := clockOf(c)
	first, err := c.Token(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	return s, c, clk, first
}

// A ConsumerJWS with an exp is refreshed in the background after 90% of
// its lifetime, served until 95%, and waited for after that.
func TestExpRefresh(t *testing.T) {
	s, c, clk, first := withExp(t)
	ctx := context.Background()
	tests := []struct {
		at           time.Duration
		wantFirst    bool // the first ConsumerJWS, or a newer one
		wantRequests int  // once any refresh has settled
	}{
		{89 * time.Second, true, 1},
		{91 * time.Second, true, 2}, // refreshed in the background
		{92 * time.Second, false, 2},
		{170 * time.Second, false, 2}, // the new one lasts 100 s from 91 s
	}
	for _, tt := range tests {
		clk.Set(tt.at)
		got, err := c.Token(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		settle(c, "a")
		if (got == first) != tt.wantFirst {
			t.Errorf("at %v: got the first ConsumerJWS: %v, want %v", tt.at, got == first, tt.wantFirst)
		}
		if got := len(s.srv.Requests(appjwttest.Consumer)); got != tt.wantRequests {
			t.Errorf("at %v: %d requests, want %d", tt.at, got, tt.wantRequests)
		}
	}

	// Past 95%, a caller waits for the new one.
	clk.Set(0)
	old, err := c.Token(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	clk.Set(96 * time.Second)
	if got, err := c.Token(ctx, "b"); err != nil || got == old {
		t.Errorf("past 95%%: got the old ConsumerJWS: %v, error %v; want a new one", got == old, err)
	}
}

// A failed background refresh leaves the current ConsumerJWS served, and
// the next one waits for the backoff after it: 0.5 to 1 s after the first
// failure, 1 to 2 s after the second.
func TestExpRefreshFails(t *testing.T) {
	s, c, clk, first := withExp(t)
	// The shortest backoffs, 0.5 s then 1 s, so that each step falls on a
	// known side of them, all before the serving point (some 94 s: the
	// lifetime counts from the end of Date's second).
	c.backoff.Rand = func(time.Duration) time.Duration { return 0 }
	ctx := context.Background()
	s.srv.SetFault(appjwttest.Consumer, appjwttest.Fault{Status: 400})
	steps := []struct {
		at           time.Duration
		wantRequests int // once any refresh has settled
	}{
		{91 * time.Second, 2}, // the refresh is due, and fails
		{91*time.Second + 400*time.Millisecond, 2},
		{91*time.Second + 600*time.Millisecond, 3}, // fails again
		{92*time.Second + 500*time.Millisecond, 3},
		{92*time.Second + 700*time.Millisecond, 4},
	}
	for _, st := range steps {
		clk.Set(st.at)
		if got, err := c.Token(ctx, "a"); err != nil || got != first {
			t.Errorf("at %v: got the first: %v, error %v; want it, nil", st.at, got == first, err)
		}
		settle(c, "a")
		if got := len(s.srv.Requests(appjwttest.Consumer)); got != st.wantRequests {
			t.Errorf("at %v: %d requests, want %d", st.at, got, st.wantRequests)
		}
	}
	clk.Set(96 * time.Second)
	if _, err := c.Token(ctx, "a"); err == nil {
		t.Error("past 95% with the idp failing: no error")
	}
}

func TestExpiredOnArrival(t *testing.T) {
	s := newStand(t, func(s *appjwttest.Server) { s.ConsumerJWSLifetime = -time.Minute })
	_, err := s.cache(nil).Token(context.Background(), "a")
	if err == nil || !strings.Contains(err.Error(), "expired before it arrived") {
		t.Errorf("error %v, want one saying the ConsumerJWS expired before it arrived", err)
	}
}

func TestRejectOnlyIfCurrent(t *testing.T) {
	idp := &fakeIdP{}
	c := fakeCache(idp, 0)
	ctx := context.Background()
	first, _ := c.Token(ctx, "a")
	steps := []struct {
		reject       string
		wantRequests int
		wantFirst    bool
	}{
		{"not-the-current-one", 1, true},
		{"", 1, true},
		{first, 2, false},
		{first, 2, false}, // a late report about the old one
	}
	for i, st := range steps {
		c.Reject("a", st.reject)
		got, err := c.Token(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		if n := idp.count(); n != st.wantRequests || (got == first) != st.wantFirst {
			t.Errorf("step %d: %d requests, got the first: %v; want %d, %v", i, n, got == first, st.wantRequests, st.wantFirst)
		}
	}
	c.Reject("unknown", first) // no entry: nothing happens
}

// The idp host is looked up once, for an hour; a failed re-lookup keeps
// the last good host and is not tried again for 5 minutes.
func TestDomainCached(t *testing.T) {
	s := newStand(t)
	c := s.cache(nil)
	clk := clockOf(c)
	ctx := context.Background()
	steps := []struct {
		at            time.Duration
		fail          bool
		wantDomainAPI int
	}{
		{0, false, 1},
		{59 * time.Minute, false, 1},
		{61 * time.Minute, false, 2},
		{122 * time.Minute, true, 3}, // fails: last good host kept
		{126 * time.Minute, false, 3},
		{128 * time.Minute, false, 4},
	}
	for i, st := range steps {
		clk.Set(st.at)
		if st.fail {
			s.srv.SetFault(appjwttest.DomainAPI, appjwttest.Fault{Status: 400})
		} else {
			s.srv.ClearFault(appjwttest.DomainAPI)
		}
		if _, err := c.Token(ctx, fmt.Sprint("consumer-", i)); err != nil {
			t.Fatalf("at %v: %v", st.at, err)
		}
		if got := len(s.srv.Requests(appjwttest.DomainAPI)); got != st.wantDomainAPI {
			t.Errorf("at %v: %d Domain API requests, want %d", st.at, got, st.wantDomainAPI)
		}
	}
	if got, want := s.srv.Requests(appjwttest.DomainAPI)[0].Path, "/api/account/"+s.srv.AccountID+"/service/idp/baseURI.json"; got != want {
		t.Errorf("Domain API path %q, want %q", got, want)
	}

	// With Domain set, no lookup.
	s2 := newStand(t)
	if _, err := s2.cache(func(c *Config) { c.Domain = s2.srv.Host() }).Token(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if got := len(s2.srv.Requests(appjwttest.DomainAPI)); got != 0 {
		t.Errorf("with Domain set: %d Domain API requests, want 0", got)
	}
}

// Bad configuration and bad ext_consumer_ids fail before any request.
func TestValidation(t *testing.T) {
	s := newStand(t)
	tests := []struct {
		name     string
		edit     func(*Config)
		consumer string
		want     string
	}{
		{"no account", func(c *Config) { c.AccountID = "" }, "a", "consumerjws: Config.AccountID is empty"},
		{"account ..", func(c *Config) { c.AccountID = ".." }, "a", `consumerjws: Config.AccountID ".." is not an account ID`},
		{"no source", func(c *Config) { c.Source = nil }, "a", "consumerjws: Config.Source is nil"},
		{"negative MaxConsumers", func(c *Config) { c.MaxConsumers = -1 }, "a", "consumerjws: Config.MaxConsumers -1 is negative"},
		{"negative FetchTimeout", func(c *Config) { c.FetchTimeout = -time.Second }, "a", "consumerjws: Config.FetchTimeout -1s is negative"},
		{"Domain with scheme", func(c *Config) { c.Domain = "https://x" }, "a", `consumerjws: Config.Domain "https://x" is not a bare host[:port] (no scheme, path, query or userinfo)`},
		{"Domain with path", func(c *Config) { c.Domain = "x/y" }, "a", `consumerjws: Config.Domain "x/y" is not a bare host[:port] (no scheme, path, query or userinfo)`},
		{"Domain with userinfo", func(c *Config) { c.Domain = "u@x" }, "a", `consumerjws: Config.Domain is not a bare host[:port] (no scheme, path, query or userinfo)`},
		{"Domain with bad port", func(c *Config) { c.Domain = "x:99999" }, "a", `consumerjws: Config.Domain "x:99999" has an invalid port`},
		{"Domain with empty port", func(c *Config) { c.Domain = "x:" }, "a", `consumerjws: Config.Domain "x:" has an empty port`},
		{"DomainAPI with query", func(c *Config) { c.DomainAPI = "x?y" }, "a", `consumerjws: Config.DomainAPI is not a bare host[:port] (no scheme, path, query or userinfo)`},
		{"empty consumer", nil, "", "consumerjws: ext_consumer_id is empty"},
		{"long consumer", nil, strings.Repeat("x", maxConsumerIDLen+1), "consumerjws: ext_consumer_id is 257 bytes long, more than 256"},
		{"consumer not UTF-8", nil, "a\xffb", "consumerjws: ext_consumer_id is not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.cache(tt.edit).Token(context.Background(), tt.consumer)
			if err == nil {
				t.Fatal("no error")
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error %q, want %q", got, tt.want)
			}
		})
	}
	if _, err := s.cache(nil).Token(context.Background(), strings.Repeat("x", maxConsumerIDLen)); err != nil {
		t.Errorf("ext_consumer_id of %d bytes: %v", maxConsumerIDLen, err)
	}
	if diff := cmp.Diff(counts{DomainAPI: 1, Sentinel: 1, Consumer: 1}, s.counts()); diff != "" {
		t.Errorf("requests (-want +got), all from the one valid call:\n%s", diff)
	}
}

// A source of v2 tokens, however it is wrapped, fails the first fetch
// with an error that says so, before the idp is asked: the idp and the
// Send API take v1 AppJWTs only.
func TestSourceOfV2Tokens(t *testing.T) {
	s := newStand(t)
	app := appjwt.Config{AccountID: s.srv.AccountID, ClientID: s.srv.ClientID, ClientSecret: s.srv.ClientSecret, Domain: s.srv.Host(), TokenAPI: appjwt.SentinelV2}
	for name, src := range map[string]oauth2.TokenSource{
		"Source":             app.TokenSource(s.ctx),
		"ReuseTokenSource":   oauth2.ReuseTokenSource(nil, app.TokenSource(s.ctx)),
		"a source of a user": testkit.TokenSourceFunc(app.TokenSource(s.ctx).Token),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := s.cache(func(c *Config) { c.Source = src }).Token(context.Background(), "a")
			want := "consumerjws: Config.Source gives tokens of Sentinel's v2 API: the idp and the Send API take v1 AppJWTs (appjwt.SentinelV1)"
			if err == nil || err.Error() != want {
				t.Errorf("error %v, want %q", err, want)
			}
		})
	}
	if got := len(s.srv.Requests(appjwttest.Consumer)); got != 0 {
		t.Errorf("the idp got %d requests, want none", got)
	}
}

func TestCallerContext(t *testing.T) {
	s := newStand(t)
	s.srv.SetFault(appjwttest.Consumer, appjwttest.Fault{Hang: true})
	c := s.cache(func(c *Config) { c.FetchTimeout = 300 * time.Millisecond })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Token(ctx, "a"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller: error %v, want one that wraps context.Canceled", err)
	}
	_, err := c.Token(context.Background(), "a")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hanging idp: error %v, want one that wraps context.DeadlineExceeded", err)
	}
	if err != nil && !strings.HasPrefix(err.Error(), "consumerjws: ConsumerJWS request for account \""+s.srv.AccountID+"\" to "+s.srv.Host()+": ") {
		t.Errorf("error %q does not say what failed and where", err)
	}
}

func TestFetchesAreBounded(t *testing.T) {
	release := make(chan struct{})
	var inflight atomic.Int64
	c := fakeCache(&fakeIdP{gate: func(string) { inflight.Add(1); <-release }}, 2)
	defer close(release)
	var refused int
	for i := range maxFetches + 50 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		if _, err := c.Token(ctx, fmt.Sprint("id", i)); err != nil && strings.Contains(err.Error(), "fetches are running already") {
			refused++
		}
		cancel()
	}
	c.mu.Lock()
	running := len(c.flights)
	c.mu.Unlock()
	if running > maxFetches || refused != 50 {
		t.Errorf("%d fetches running, %d calls refused; want at most %d running and 50 refused", running, refused, maxFetches)
	}
}

// While maxFetches fetches run, a call refused for a new consumer takes no
// place in the LRU list: the consumers cached a moment ago stay cached.
func TestRefusedCallsLeaveTheLRU(t *testing.T) {
	release := make(chan struct{})
	idp := &fakeIdP{gate: func(body string) {
		if strings.Contains(body, "busy-") {
			<-release
		}
	}}
	c := fakeCache(idp, maxFetches+2)
	defer close(release)
	ctx := context.Background()
	a, _ := c.Token(ctx, "a")
	b, _ := c.Token(ctx, "b")
	short := func(id string) error {
		ctx, cancel := context.WithTimeout(ctx, time.Millisecond)
		defer cancel()
		_, err := c.Token(ctx, id)
		return err
	}
	for i := range maxFetches {
		short(fmt.Sprint("busy-", i)) // fills the cache, a and b the least recently used
	}
	for i := range 50 {
		if err := short(fmt.Sprint("refused-", i)); err == nil || !strings.Contains(err.Error(), "fetches are running already") {
			t.Fatalf("call %d with %d fetches running: error %v, want it refused", i, maxFetches, err)
		}
	}
	for id, want := range map[string]string{"a": a, "b": b} {
		if got, err := c.Token(ctx, id); err != nil || got != want {
			t.Errorf("consumer %s after the refused calls: got its ConsumerJWS: %v, error %v; want it, cached", id, got == want, err)
		}
	}
	if got := idp.count(); got != 2 {
		t.Errorf("%d ConsumerJWS requests answered, want 2: a and b, once each", got)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if got, want := len(c.m), maxFetches+2; got != want {
		t.Errorf("%d consumers cached, want %d", got, want)
	}
}

func TestEvictedMidFetchJoinsTheFetch(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	seen := map[string]int{}
	c := fakeCache(&fakeIdP{gate: func(body string) { mu.Lock(); seen[body]++; mu.Unlock(); <-release }}, 1)
	short := func(id string) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		c.Token(ctx, id)
	}
	short("a")
	short("b") // evicts a, whose fetch goes on
	short("a")
	mu.Lock()
	got := seen[`{"ext_consumer_id":"a"}`]
	mu.Unlock()
	close(release)
	settle(c, "a")
	if got != 1 {
		t.Errorf("%d requests for consumer a, want 1", got)
	}
	if jws, err := c.Token(context.Background(), "a"); err != nil || jws == "" {
		t.Errorf("after the fetch: Token = %q, %v; want the ConsumerJWS it got", jws, err)
	}
}

// jwsWith is a JWS with the given payload.
func jwsWith(payload string) string {
	return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".sig" + jwsPad[:40]
}

func TestLifetime(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	date := http.Header{"Date": {now.Format(http.TimeFormat)}}
	tests := []struct {
		name    string
		payload string
		header  http.Header
		want    time.Duration
		wantOK  bool
		wantErr bool
	}{
		{"no exp", `{"ext_consumer_id":"a"}`, date, 0, false, false},
		{"issued 50 minutes ago: Date first, less its second", fmt.Sprintf(`{"iat":%d,"exp":%d}`, now.Add(-50*time.Minute).Unix(), now.Add(10*time.Minute).Unix()), date, 10*time.Minute - time.Second, true, false},
		{"no Date: exp - iat", fmt.Sprintf(`{"iat":%d,"exp":%d}`, now.Add(-50*time.Minute).Unix(), now.Add(10*time.Minute).Unix()), http.Header{}, time.Hour, true, false},
		{"iat a string: exp still counts", fmt.Sprintf(`{"iat":"%d","exp":%d}`, now.Unix(), now.Add(time.Minute).Unix()), http.Header{}, time.Minute, true, false},
		{"exp a string: an error, not for ever", fmt.Sprintf(`{"exp":"%d"}`, now.Unix()), date, 0, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := lifetime(jwsWith(tt.payload), tt.header, now)
			if got != tt.want || ok != tt.wantOK || (err != nil) != tt.wantErr {
				t.Errorf("lifetime = %v, %v, %v; want %v, %v, error: %v", got, ok, err, tt.want, tt.wantOK, tt.wantErr)
			}
		})
	}
}

// An idp of ConsumerJWS that last 20 ms: MinLifetime and the backoff bound
// the load for one consumer to 2 requests a second.
func TestShortLivedConsumerJWSBoundTheLoad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int64
		rt := testkit.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
			io.Copy(io.Discard, r.Body)
			n.Add(1)
			iat := float64(time.Now().UnixNano()) / 1e9
			payload := base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, `{"iat":%.3f,"exp":%.3f}`, iat, iat+0.020))
			body := `{"token":"eyJhbGciOiJSUzI1NiJ9.` + payload + `.c2lnbmF0dXJlLW9mLXRoZS1qd3M"}`
			return &http.Response{StatusCode: 201, Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
		})
		ctx, cancel := context.WithCancel(context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: rt}))
		defer cancel()
		cfg := Config{AccountID: "le1", Domain: "idp.test", Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "app.jwt.sig"})}
		c := cfg.NewCache(ctx)
		for range 10000 {
			c.Token(ctx, "john_doe_42")
			time.Sleep(time.Millisecond)
		}
		t.Logf("idp requests in 10 s for one consumer: %d", n.Load())
		if n.Load() > 21 { // 2 a second, and the first
			t.Errorf("idp got %d requests in 10 s for one consumer (%.0f/s)", n.Load(), float64(n.Load())/10)
		}
	})
}
