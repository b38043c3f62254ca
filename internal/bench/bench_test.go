package bench_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lpconnect/appjwt"
	"github.com/lpconnect/appjwt/appjwttest"
	"github.com/lpconnect/appjwt/internal/testkit"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Each benchmark compares appjwt, on the same appjwttest server, with what
// a user would otherwise pick: x/oauth2's clientcredentials pointed at
// Sentinel, and the hand-rolled source below.

// defaultEarlyExpiry is Config.EarlyExpiry's default, which the cached
// sources compared are given alike.
const defaultEarlyExpiry = 5 * time.Minute

func configFor(s *appjwttest.Server) appjwt.Config {
	return appjwt.Config{AccountID: s.AccountID, ClientID: s.ClientID, ClientSecret: s.ClientSecret, DomainAPI: s.Host()}
}

// mustToken returns src's token, or ends the benchmark.
func mustToken(b *testing.B, src oauth2.TokenSource) {
	b.Helper()
	if _, err := src.Token(); err != nil {
		b.Fatal(err)
	}
}

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

// contender is a token source the benchmarks compare.
type contender struct {
	name string
	src  oauth2.TokenSource
}

// contenders returns the token sources compared, all pointed at s.
func contenders(s *appjwttest.Server, early time.Duration) []contender {
	ctx := s.Context(context.Background())
	c := configFor(s)
	c.EarlyExpiry = early
	cc := clientcredentials.Config{ClientID: s.ClientID, ClientSecret: string(s.ClientSecret), TokenURL: tokenURL(s), AuthStyle: oauth2.AuthStyleInParams}
	hr := handRolled{client: s.Client(), tokenURL: tokenURL(s), id: s.ClientID, secret: string(s.ClientSecret)}
	return []contender{{"appjwt", c.TokenSource(ctx)}, {"handrolled", oauth2.ReuseTokenSourceWithExpiry(nil, hr, early)}, {"clientcredentials", cc.TokenSource(ctx)}}
}

var sinkToken *oauth2.Token

// staticSource hands out copies of one token with a one-hour Expiry: under
// ReuseTokenSourceWithExpiry it is the floor a cached Token() can reach.
type staticSource struct{ tok oauth2.Token }

func (s *staticSource) Token() (*oauth2.Token, error) { t := s.tok; return &t, nil }

func BenchmarkCachedToken(b *testing.B) {
	s := testkit.NewServer(b)
	floor := oauth2.ReuseTokenSourceWithExpiry(nil, &staticSource{oauth2.Token{AccessToken: "x", Expiry: time.Now().Add(time.Hour)}}, defaultEarlyExpiry)
	all := append(contenders(s, defaultEarlyExpiry), contender{"floor", floor})
	for _, c := range all {
		mustToken(b, c.src)
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
	s := testkit.NewServer(b)
	target := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	cc := clientcredentials.Config{ClientID: s.ClientID, ClientSecret: string(s.ClientSecret), TokenURL: tokenURL(s), AuthStyle: oauth2.AuthStyleInParams}
	clients := []struct {
		name   string
		client *http.Client
		path   string
	}{
		{"unauthorized", &http.Client{Transport: base}, "/open"},
		{"appjwt.Transport", &http.Client{Transport: &appjwt.Transport{Source: c.TokenSource(ctx), Base: base}}, "/"},
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
	s := testkit.NewServer(b)
	c := configFor(s)
	src := c.TokenSource(s.Context(context.Background()))
	mustToken(b, src)
	nop := testkit.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusNoContent, Body: http.NoBody, Request: r}, nil
	})
	for _, tr := range []struct {
		name string
		rt   http.RoundTripper
	}{
		{"none", nop},
		{"appjwt.Transport", &appjwt.Transport{Source: src, Base: nop}},
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
	s := appjwttest.NewUnstartedServer()
	s.Lifetime = 4 * time.Second
	s.Start()
	defer s.Close()
	var src oauth2.TokenSource
	for _, c := range contenders(s, time.Second) {
		if c.name == name {
			src = c.src
		}
	}
	mustToken(b, src)
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
	return all, len(s.Requests(appjwttest.Sentinel)) - 1
}
