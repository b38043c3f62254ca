package consumerjws

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lpconnect/appjwt/appjwttest"
	"golang.org/x/oauth2"
)

// The load a failure causes on LivePerson, counted as an attacker would:
// a caller asks for a ConsumerJWS every millisecond for 2 s, giving up on
// each after a millisecond, while the Domain API or the idp fails. These
// run in a synctest bubble, on its clock, with the retry policy and
// backoff of production.

// memLP is LivePerson in memory: it answers every Domain API request with
// domainStatus (200: the idp host) and every ConsumerJWS request with
// idpStatus (201: a ConsumerJWS), and counts them.
type memLP struct {
	domainStatus, idpStatus int

	mu                  sync.Mutex
	domainAPI, consumer int
}

func (l *memLP) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	status, body := l.idpStatus, ""
	if strings.HasSuffix(r.URL.Path, "/baseURI.json") {
		l.domainAPI++
		status, body = l.domainStatus, `{"service":"idp","account":"le1","baseURI":"idp.test"}`
	} else {
		l.consumer++
		body = fmt.Sprintf(`{"token":"eyJhbGciOiJSUzI1NiJ9.%d.%s"}`, l.consumer, jwsPad)
	}
	if status >= 300 {
		body = `{"error":"failing"}`
	}
	return &http.Response{
		StatusCode: status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body)), Request: r,
	}, nil
}

// requests is what a test expects LivePerson to have received.
type requests struct{ DomainAPI, Consumer int }

func (l *memLP) requests() requests {
	l.mu.Lock()
	defer l.mu.Unlock()
	return requests{l.domainAPI, l.consumer}
}

// memCache is a Cache of lp's consumers, with the production retry policy
// and backoff; edit, if set, changes its Config first.
func memCache(lp *memLP, edit func(*Config)) *Cache {
	cfg := Config{AccountID: "le1", DomainAPI: "domain.test", Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "app.jwt.signature-of-the-appjwt"})}
	if edit != nil {
		edit(&cfg)
	}
	return cfg.NewCache(context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: lp}))
}

// hammer asks c for the ConsumerJWS of consumer(i) in the i-th call, once
// a millisecond for 2 s of the bubble's clock, and returns what lp got
// meanwhile. Then it lets the fetches still running end, as the bubble's
// clock stops once its test returns.
func hammer(c *Cache, lp *memLP, consumer func(i int) string) requests {
	start := time.Now()
	for i := 0; time.Since(start) < 2*time.Second; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		c.Token(ctx, consumer(i))
		cancel()
		time.Sleep(time.Millisecond)
	}
	got := lp.requests()
	time.Sleep(defaultFetchTimeout)
	return got
}

func oneConsumer(int) string       { return "john_doe_42" }
func newConsumerEach(i int) string { return fmt.Sprint("consumer-", i) }

func TestFailureLoadIsBounded(t *testing.T) {
	tests := []struct {
		name     string
		domain   int // the Domain API's status
		idp      int // the idp's
		edit     func(*Config)
		consumer func(int) string
		max      requests // within the 2 s
	}{
		// One request per lookup, at 0, then after 0.5 to 1 s, then 1 to 2 s.
		{"Domain API 404, a new consumer each call", 404, 201, nil, newConsumerEach, requests{DomainAPI: 3}},
		{"Domain API 404, one consumer", 404, 201, nil, oneConsumer, requests{DomainAPI: 3}},
		// One request per fetch, as for the lookups.
		{"idp 400, one consumer", 200, 400, nil, oneConsumer, requests{DomainAPI: 1, Consumer: 3}},
		// A FetchTimeout too short for the retries' pauses: one request
		// per fetch.
		{"idp 503, one consumer, short FetchTimeout", 200, 503,
			func(c *Config) { c.FetchTimeout = 200 * time.Millisecond }, oneConsumer, requests{DomainAPI: 1, Consumer: 3}},
		// The first fetch's 4 attempts take 1.75 s at least; the next
		// fetch comes 0.5 s after it at the earliest.
		{"idp 503, one consumer", 200, 503, nil, oneConsumer, requests{DomainAPI: 1, Consumer: 4}},
		// Once the idp fails, the fetch that saw it is the only one until
		// it ends: other consumers' calls start none.
		{"idp 503, a new consumer each call", 200, 503, nil, newConsumerEach, requests{DomainAPI: 1, Consumer: 4}},
		{"idp 429, a new consumer each call", 200, 429, nil, newConsumerEach, requests{DomainAPI: 1, Consumer: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				lp := &memLP{domainStatus: tt.domain, idpStatus: tt.idp}
				got := hammer(memCache(lp, tt.edit), lp, tt.consumer)
				t.Logf("requests in 2 s: %+v", got)
				if got.DomainAPI > tt.max.DomainAPI || got.Consumer > tt.max.Consumer {
					t.Errorf("requests in 2 s: %+v, want at most %+v", got, tt.max)
				}
			})
		})
	}
}

// Calls within the backoff get the last error at once, saying so and
// until when; a call for another consumer is not held up by one failing.
func TestFailureIsRemembered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lp := &memLP{domainStatus: 200, idpStatus: 400}
		c := memCache(lp, nil)
		ctx := context.Background()
		_, first := c.Token(ctx, "a")
		_, again := c.Token(ctx, "a")
		if first == nil || again == nil || !strings.HasPrefix(again.Error(), "consumerjws: backing off until ") ||
			!strings.HasSuffix(again.Error(), strings.TrimPrefix(first.Error(), "consumerjws: ")) {
			t.Errorf("within the backoff: error %v, want the first one, %v, saying that it backs off", again, first)
		}
		if got, want := lp.requests(), (requests{DomainAPI: 1, Consumer: 1}); got != want {
			t.Errorf("requests %+v, want %+v", got, want)
		}
		lp.mu.Lock()
		lp.idpStatus = 201
		lp.mu.Unlock()
		if _, err := c.Token(ctx, "b"); err != nil {
			t.Errorf("another consumer: %v, want its ConsumerJWS: a 400 is about one consumer", err)
		}
		time.Sleep(time.Second) // past the backoff
		if _, err := c.Token(ctx, "a"); err != nil {
			t.Errorf("past the backoff: %v, want a new fetch", err)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if f := c.m["a"].failures; f != nil {
			t.Errorf("after a good fetch: %+v remembered, want no failure", f)
		}
	})
}

// While the idp fails as a host fails, one fetch at a time tries it, and
// none within the backoff after it failed; the first answer ends that.
func TestIdPHealth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lp := &memLP{domainStatus: 200, idpStatus: 503}
		c := memCache(lp, nil)
		ctx := context.Background()
		done := make(chan error)
		go func() { _, err := c.Token(ctx, "a"); done <- err }()
		time.Sleep(100 * time.Millisecond) // a's fetch got its first 503 and retries
		_, err := c.Token(ctx, "b")
		if err == nil || !strings.HasPrefix(err.Error(), "consumerjws: backing off while another fetch retries the host: ConsumerJWS request") {
			t.Errorf("while a's fetch retries: error %v, want one saying it backs off", err)
		}
		if err := <-done; err == nil {
			t.Fatal("a: no error")
		}
		if _, err := c.Token(ctx, "b"); err == nil || !strings.HasPrefix(err.Error(), "consumerjws: backing off until ") {
			t.Errorf("after a's fetch failed: error %v, want one saying until when it backs off", err)
		}
		if got, want := lp.requests(), (requests{DomainAPI: 1, Consumer: 4}); got != want {
			t.Errorf("requests %+v, want %+v", got, want)
		}
		lp.mu.Lock()
		lp.idpStatus = 201
		lp.mu.Unlock()
		time.Sleep(time.Second) // past the backoff
		if _, err := c.Token(ctx, "b"); err != nil {
			t.Errorf("the idp back, past the backoff: %v", err)
		}
		if _, err := c.Token(ctx, "c"); err != nil {
			t.Errorf("after the probe succeeded: %v", err)
		}
	})
}

// A Send API that rejects every ConsumerJWS of a consumer with 40103,
// through the README's chain: ConsumerJWS over AppJWT over the stand-in.
// The first rejection drops the ConsumerJWS; the next ones within 5 s do
// not; the floor doubles while new ConsumerJWS are rejected too, and is
// back to 5 s once the API takes one.
func TestRejectionStorm(t *testing.T) {
	s := newStand(t)
	c := s.cache(nil)
	clk := clockOf(c)
	client := s.client(c, nil)
	if resp := s.conversation(t, client, "a"); resp.StatusCode != http.StatusOK {
		t.Fatalf("priming: %s", resp.Status)
	}
	reject := appjwttest.Fault{Status: 401, Body: lpError(40103)}
	steps := []struct {
		name        string
		advance     time.Duration // before the requests
		rejecting   bool
		requests    int // each 20 ms after the last
		wantIdP     int // new ConsumerJWS requests
		wantResends int
	}{
		{"2 s of rejections", 0, true, 100, 1, 1},
		{"5 s after the first drop", 5 * time.Second, true, 1, 1, 1},
		{"5 s after the second: floor doubled to 10 s", 5 * time.Second, true, 1, 0, 0},
		{"10 s after the second", 5 * time.Second, true, 1, 1, 1},
		{"the API takes one", 0, false, 1, 0, 0},
		{"rejected again: dropped at once", 0, true, 1, 1, 1},
	}
	for _, st := range steps {
		if st.rejecting {
			s.srv.SetFault(appjwttest.Conversation, reject)
		} else {
			s.srv.ClearFault(appjwttest.Conversation)
		}
		clk.Advance(st.advance)
		before := s.counts()
		for range st.requests {
			resp := s.conversation(t, client, "a")
			if got, want := resp.StatusCode, map[bool]int{true: 401, false: 200}[st.rejecting]; got != want {
				t.Fatalf("%s: status %d, want %d", st.name, got, want)
			}
			clk.Advance(20 * time.Millisecond)
		}
		got := s.counts()
		want := counts{DomainAPI: before.DomainAPI, Sentinel: before.Sentinel, Consumer: before.Consumer + st.wantIdP,
			Conversation: before.Conversation + st.requests + st.wantResends}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: requests (-want +got):\n%s", st.name, diff)
		}
	}
}
