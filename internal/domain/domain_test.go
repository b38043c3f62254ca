package domain

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lpconnect/appjwt/appjwttest"
	"github.com/lpconnect/appjwt/internal/lphttp"
	"github.com/lpconnect/appjwt/internal/testkit"
)

// lookupWithFault makes the Domain API always answer with f and returns the
// error of one Lookup, failing the test if there is none.
func lookupWithFault(t *testing.T, f appjwttest.Fault) error {
	t.Helper()
	s := testkit.NewServer(t)
	s.SetFault(appjwttest.DomainAPI, f)
	host, err := Lookup(s.Context(context.Background()), s.Host(), s.AccountID, "sentinel", testkit.FastRetry)
	if err == nil {
		t.Fatalf("Lookup = %q, want an error", host)
	}
	return err
}

func TestLookupErrors(t *testing.T) {
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
			err := lookupWithFault(t, tt.fault)
			if !strings.HasPrefix(err.Error(), `domain lookup of "sentinel" for account`) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q, want a domain lookup error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestLookupRejectsHostsTheURLWould(t *testing.T) {
	for _, h := range []string{"host:+80", "[a]", "[a]:443", "a{b}", "a|b", "a`b", "a^b", "host:", "host:0", ":443", "a%41b", `a"b`, "a<b>"} {
		t.Run(h, func(t *testing.T) {
			quoted, _ := json.Marshal(h)
			err := lookupWithFault(t, appjwttest.Fault{Body: `{"baseURI":` + string(quoted) + `}`})
			if !strings.Contains(err.Error(), "baseURI") {
				t.Errorf("Domain API answering %q: error %v, want one about baseURI", h, err)
			}
		})
	}
}

// newCache is a Cache of the sentinel host of s, on clk.
func newCache(s *appjwttest.Server, clk *testkit.Clock) *Cache {
	return &Cache{API: s.Host(), Account: s.AccountID, Service: "sentinel", Now: clk.Now}
}

func TestCacheKeepsTheLastGoodHost(t *testing.T) {
	s := testkit.NewServer(t)
	clk := &testkit.Clock{}
	c := newCache(s, clk)
	ctx := s.Context(context.Background())
	host := func(step string) Answer {
		t.Helper()
		a, err := c.Host(ctx, testkit.FastRetry)
		if err != nil || a.Host != s.Host() {
			t.Fatalf("%s: Host = %+v, %v; want %q", step, a, err, s.Host())
		}
		return a
	}
	host("first")
	clk.Advance(TTL - time.Minute)
	host("within the TTL")
	if got := len(s.Requests(appjwttest.DomainAPI)); got != 1 {
		t.Errorf("Domain API got %d requests within the TTL, want 1", got)
	}
	s.SetFault(appjwttest.DomainAPI, appjwttest.Fault{Status: 503})
	clk.Advance(time.Minute)
	if a := host("past the TTL, the Domain API down"); a.RelookupErr == nil || a.RetryAt.Sub(clk.Now()) > RelookupPause || a.RetryAt.Sub(clk.Now()) < RelookupPause-time.Second {
		t.Errorf("failed re-lookup: %+v, want its error and the pause", a)
	}
	if a := host("within the pause"); a.RelookupErr != nil {
		t.Errorf("within the pause: %+v, want the last good host without a re-lookup", a)
	}
	s.ClearFault(appjwttest.DomainAPI)
	before := len(s.Requests(appjwttest.DomainAPI))
	clk.Advance(RelookupPause)
	host("after the pause")
	if got := len(s.Requests(appjwttest.DomainAPI)) - before; got != 1 {
		t.Errorf("Domain API got %d new requests after the pause, want 1", got)
	}
}

func TestRelookupIsBounded(t *testing.T) {
	tests := []struct {
		name  string
		fault appjwttest.Fault
	}{
		{"Domain API hangs", appjwttest.Fault{Hang: true}},
		{"Domain API answers 503", appjwttest.Fault{Status: 503}},
	}
	const fetchTimeout = 2 * time.Second
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testkit.NewServer(t)
			clk := &testkit.Clock{}
			c := newCache(s, clk)
			// Real pauses: the re-lookup's budget must bound them.
			p := lphttp.Default
			host := func() error {
				ctx, cancel := context.WithTimeout(s.Context(context.Background()), fetchTimeout)
				defer cancel()
				a, err := c.Host(ctx, p)
				if err == nil && a.Host != s.Host() {
					t.Errorf("Host = %q, want %q", a.Host, s.Host())
				}
				return err
			}
			if err := host(); err != nil {
				t.Fatal(err)
			}
			s.SetFault(appjwttest.DomainAPI, tt.fault)
			// Past the TTL, then twice within the pause after a failed re-lookup.
			for i, step := range []time.Duration{TTL, RelookupPause / 3, RelookupPause / 3} {
				clk.Advance(step)
				start := time.Now()
				if err := host(); err != nil {
					t.Fatalf("refresh %d: %v, want the last good host", i, err)
				}
				if d := time.Since(start); d > fetchTimeout/2 {
					t.Errorf("refresh %d took %v, want well within the fetch's %v", i, d, fetchTimeout)
				}
			}
			// One lookup, then one failed re-lookup (at most RelookupAttempts
			// requests); the calls after it do not ask again.
			if got := len(s.Requests(appjwttest.DomainAPI)); got < 2 || got > 1+RelookupAttempts {
				t.Errorf("Domain API got %d requests, want 2 to %d", got, 1+RelookupAttempts)
			}
			s.ClearFault(appjwttest.DomainAPI)
			before := len(s.Requests(appjwttest.DomainAPI))
			clk.Advance(RelookupPause)
			if err := host(); err != nil {
				t.Fatal(err)
			}
			if got := len(s.Requests(appjwttest.DomainAPI)) - before; got != 1 {
				t.Errorf("after the pause: %d Domain API requests, want 1", got)
			}
		})
	}
}

func TestConcurrentCallersShareOneLookup(t *testing.T) {
	s := testkit.NewServer(t)
	s.SetFault(appjwttest.DomainAPI, appjwttest.Fault{Delay: 50 * time.Millisecond})
	c := newCache(s, &testkit.Clock{})
	ctx := s.Context(context.Background())
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if a, err := c.Host(ctx, testkit.FastRetry); err != nil || a.Host != s.Host() {
				t.Errorf("Host = %+v, %v; want %q", a, err, s.Host())
			}
		})
	}
	wg.Wait()
	if got := len(s.Requests(appjwttest.DomainAPI)); got != 1 {
		t.Errorf("Domain API got %d requests from 50 callers, want 1", got)
	}
}

func TestFixedHostNeedsNoLookup(t *testing.T) {
	c := &Cache{Fixed: "va.sentinel.liveperson.net", API: "127.0.0.1:1", Account: "le1", Service: "sentinel"}
	if a, err := c.Host(context.Background(), testkit.FastRetry); err != nil || a.Host != c.Fixed {
		t.Errorf("Host = %+v, %v; want %q without a request", a, err, c.Fixed)
	}
}

// Until a host is known, a failed lookup is remembered for the backoff
// after it: callers get its error at once, without a request; the first
// good answer ends that.
func TestCacheRemembersAFailedFirstLookup(t *testing.T) {
	s := testkit.NewServer(t)
	s.SetFault(appjwttest.DomainAPI, appjwttest.Fault{Status: 404})
	clk := &testkit.Clock{}
	c := newCache(s, clk)
	ctx := s.Context(context.Background())
	var first error
	steps := []struct {
		name         string
		advance      time.Duration
		clear        bool
		wantRequests int
		wantErr      bool
	}{
		{"first lookup", 0, false, 1, true},
		{"at once", 0, false, 1, true},
		{"within the first backoff (0.5 to 1 s)", 400 * time.Millisecond, false, 1, true},
		{"past it", 600 * time.Millisecond, false, 2, true},
		{"within the second (1 to 2 s)", 900 * time.Millisecond, false, 2, true},
		{"past it, the Domain API back", 1100 * time.Millisecond, true, 3, false},
		{"host known", 0, false, 3, false},
	}
	for _, st := range steps {
		clk.Advance(st.advance)
		if st.clear {
			s.ClearFault(appjwttest.DomainAPI)
		}
		a, err := c.Host(ctx, testkit.FastRetry)
		if got := len(s.Requests(appjwttest.DomainAPI)); got != st.wantRequests || (err != nil) != st.wantErr {
			t.Fatalf("%s: %d requests, error %v; want %d, an error: %v", st.name, got, err, st.wantRequests, st.wantErr)
		}
		switch {
		case err == nil && a.Host != s.Host():
			t.Errorf("%s: host %q, want %q", st.name, a.Host, s.Host())
		case first == nil:
			first = err
		case st.name == "at once" && err != first:
			t.Errorf("%s: error %v, want the first lookup's: %v", st.name, err, first)
		}
	}
	if n := c.failures.N; n != 0 {
		t.Errorf("after a good answer: %d failures remembered, want 0", n)
	}
}
