package brands_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lpconnect/appjwt/brands"
	"github.com/lpconnect/appjwt/internal/testkit"
	"github.com/lpconnect/appjwt/secret"
	"golang.org/x/oauth2"
)

// fleet is LivePerson in memory (testkit.FakeLivePerson) for many
// accounts: it counts Sentinel's requests per account and the most in
// flight at once, and can take one account's Sentinel down or have the
// API reject every token of one account.
type fleet struct {
	fake *testkit.FakeLivePerson

	mu          sync.Mutex
	sentinel    map[string]int
	inflight    int
	maxInflight int
	down        map[string]bool // Sentinel answers 503
	rejected    map[string]bool // the API answers 401
}

func newFleet() *fleet {
	f := &fleet{fake: testkit.NewFakeLivePerson(), sentinel: map[string]int{}, down: map[string]bool{}, rejected: map[string]bool{}}
	f.fake.SentinelDelay = 500 * time.Millisecond
	return f
}

// accountOf returns the account after /account/ in path.
func accountOf(path string) string {
	_, rest, _ := strings.Cut(path, "/account/")
	a, _, _ := strings.Cut(rest, "/")
	return a
}

func (f *fleet) RoundTrip(r *http.Request) (*http.Response, error) {
	account := accountOf(r.URL.Path)
	f.mu.Lock()
	down, rejected := f.down[account], f.rejected[account]
	f.mu.Unlock()
	switch r.URL.Host {
	case "sentinel.test":
		f.mu.Lock()
		f.sentinel[account]++
		f.inflight++
		f.maxInflight = max(f.maxInflight, f.inflight)
		f.mu.Unlock()
		defer func() {
			f.mu.Lock()
			f.inflight--
			f.mu.Unlock()
		}()
		if down {
			time.Sleep(f.fake.SentinelDelay)
			return answer(r, http.StatusServiceUnavailable, "")
		}
	case "api.test":
		if rejected {
			return answer(r, http.StatusUnauthorized, `{"kind":"resp","code":401,"body":{"errorCode":40102}}`)
		}
	}
	return f.fake.RoundTrip(r)
}

func (f *fleet) set(m map[string]bool, account string, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m[account] = on
}

func (f *fleet) sentinelCount(account string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sentinel[account]
}

func answer(r *http.Request, status int, body string) (*http.Response, error) {
	if r.Body != nil {
		r.Body.Close()
	}
	return &http.Response{StatusCode: status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
}

// fleetLookup knows every account: each has its own client id and secret.
func fleetLookup(_ context.Context, account string) (brands.Installation, error) {
	return brands.Installation{ClientID: "client-" + account, ClientSecret: secret.String("secret-" + account), DomainAPI: "domain.test"}, nil
}

// call sends one request for account to the fleet's API, and returns its
// status, or 0 with the error.
func call(client *http.Client, account string) (int, error) {
	resp, err := client.Get("https://api.test/api/account/" + account + "/x")
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// running counts the goroutines of the caller's synctest bubble that run
// this module's code but the test's own: those a Cache and its brands
// start. Other tests' goroutines, outside the bubble, come and go
// meanwhile; the traceback names each goroutine's bubble.
func running() int {
	self := make([]byte, 256)
	self = self[:runtime.Stack(self, false)]
	header, _, _ := strings.Cut(string(self), "\n")
	_, bubble, ok := strings.Cut(header, "synctest bubble ")
	if !ok {
		panic("running: not in a synctest bubble")
	}
	bubble = "synctest bubble " + bubble // "synctest bubble N]:"
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		header, body, _ := strings.Cut(g, "\n")
		if strings.HasSuffix(header, bubble) && strings.Contains(body, "github.com/lpconnect/appjwt") && !strings.Contains(body, "brands_test.") {
			n++
		}
	}
	return n
}

func fleetCache(t *testing.T, f *fleet, c brands.Config) *brands.Cache {
	t.Helper()
	c.Lookup = fleetLookup
	return newCache(t, context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: f}), c)
}

// A brand dropped, for the limit on brands or for idleness, stops
// everything it started: no goroutine is left, and its token source sends
// nothing more.
func TestEvictionStopsEverything(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFleet()
		before := running()
		k := fleetCache(t, f, brands.Config{MaxBrands: 2, IdleTimeout: 10 * time.Minute})
		client := k.Client()
		for _, a := range []string{"1001", "1002", "1003"} {
			if status, err := call(client, a); status != http.StatusOK {
				t.Fatalf("account %s: %d, %v", a, status, err)
			}
		}
		synctest.Wait()
		if h := k.Health(); len(h) != 2 || h[0].Account != "1002" || h[1].Account != "1003" {
			t.Errorf("Health after 3 brands with MaxBrands 2: %+v, want 1002 and 1003", h)
		}
		time.Sleep(16 * time.Minute) // idle: dropped within 1.5 IdleTimeout
		synctest.Wait()
		if h := k.Health(); len(h) != 0 {
			t.Errorf("Health after the brands idled: %d brands, want none", len(h))
		}
		if n := running(); n != before {
			t.Errorf("%d goroutines of the module's code after eviction, want %d, as before the Cache", n, before)
		}
		counts := map[string]int{}
		for _, a := range []string{"1001", "1002", "1003"} {
			counts[a] = f.sentinelCount(a)
		}
		time.Sleep(3 * time.Hour)
		synctest.Wait()
		for a, n := range counts {
			if got := f.sentinelCount(a); got != n {
				t.Errorf("account %s: Sentinel got %d requests after eviction, want none", a, got-n)
			}
		}
	})
}

// One brand's Sentinel outage, then a storm of rejections of its tokens,
// changes nothing for another brand: every request of the other goes
// through, with as many Sentinel requests as without the outage.
func TestOutageIsolated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFleet()
		k := fleetCache(t, f, brands.Config{})
		client := k.Client()
		f.set(f.down, "6666", true)
		var failed, failedOther int
		for minute := range 180 {
			if minute == 90 {
				f.set(f.down, "6666", false)
				f.set(f.rejected, "6666", true)
			}
			if status, _ := call(client, "6666"); status != http.StatusOK {
				failed++
			}
			if status, err := call(client, "7777"); status != http.StatusOK {
				failedOther++
				t.Errorf("minute %d: the other brand's request: %d, %v", minute, status, err)
			}
			time.Sleep(time.Minute)
		}
		if failed < 170 {
			t.Errorf("the failing brand: %d of 180 requests failed, want nearly all", failed)
		}
		if got := f.sentinelCount("7777"); got > 4 {
			t.Errorf("the other brand: Sentinel got %d requests in 3 hours, want at most 4, one per token lifetime", got)
		}
		t.Logf("failing brand: %d Sentinel requests in 3 h (90 min down, 90 min of rejections); other brand: %d", f.sentinelCount("6666"), f.sentinelCount("7777"))
	})
}

// 1,000 brands, all used at once from cold, then every 5 minutes for 3
// hours: Sentinel gets about one request per brand per token lifetime,
// never more than Config.MaxFetches at once.
func TestSentinelLoadThousandBrands(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, maxFetches = 1000, 64
		f := newFleet()
		k := fleetCache(t, f, brands.Config{MaxFetches: maxFetches})
		client := k.Client()
		start := time.Now()
		for round := 0; time.Since(start) < 3*time.Hour; round++ {
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					if status, err := call(client, fmt.Sprint(10000+i)); status != http.StatusOK {
						t.Errorf("round %d, brand %d: %d, %v", round, i, status, err)
					}
				})
			}
			wg.Wait()
			if round == 0 {
				t.Logf("cold start of %d brands took %v", n, time.Since(start))
			}
			time.Sleep(5 * time.Minute)
		}
		var total, most int
		for i := range n {
			c := f.sentinelCount(fmt.Sprint(10000 + i))
			total += c
			most = max(most, c)
		}
		t.Logf("%d brands, 3 h: %d Sentinel requests (%.2f a brand, at most %d), at most %d in flight", n, total, float64(total)/n, most, f.maxInflight)
		if most > 4 {
			t.Errorf("a brand sent %d Sentinel requests in 3 hours, want at most 4", most)
		}
		if f.maxInflight > maxFetches {
			t.Errorf("%d Sentinel requests in flight at once, want at most %d", f.maxInflight, maxFetches)
		}
	})
}

// A brand in use is looked up again every LookupTTL, in the background;
// a failed re-lookup keeps the brand, and shows in Health; one that says
// the account is no brand any more drops it.
func TestRelookup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFleet()
		var mu sync.Mutex
		var calls int
		var answer error
		lookup := func(ctx context.Context, account string) (brands.Installation, error) {
			mu.Lock()
			defer mu.Unlock()
			calls++
			if answer != nil {
				return brands.Installation{}, answer
			}
			return fleetLookup(ctx, account)
		}
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: f})
		k := newCache(t, ctx, brands.Config{Lookup: lookup, LookupTTL: 10 * time.Minute})
		client := k.Client()
		use := func(minutes int) {
			for range minutes {
				if status, err := call(client, "1001"); status != http.StatusOK {
					t.Fatalf("%d, %v", status, err)
				}
				time.Sleep(time.Minute)
			}
			synctest.Wait()
		}
		use(60)
		if calls != 6 {
			t.Errorf("%d lookups in an hour with LookupTTL 10 min, want 6", calls)
		}
		mu.Lock()
		answer = errors.New("secret manager down")
		mu.Unlock()
		use(11)
		h := k.Health()
		if len(h) != 1 || !h[0].Held || h[0].LookupError == nil || !strings.Contains(h[0].LookupError.Error(), "secret manager down") {
			t.Errorf("Health after a failed re-lookup: %+v, want the brand held, with the lookup's error", h)
		}
		mu.Lock()
		answer = brands.ErrUnknownBrand
		mu.Unlock()
		time.Sleep(time.Minute)
		call(client, "1001") // starts the re-lookup, which drops the brand
		synctest.Wait()
		if _, err := call(client, "1001"); !errors.Is(err, brands.ErrUnknownBrand) {
			t.Errorf("after a re-lookup found no brand: %v, want ErrUnknownBrand", err)
		}
	})
}
