package consumerjws

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lpconnect/appjwt"
	"github.com/lpconnect/appjwt/appjwttest"
	"github.com/lpconnect/appjwt/internal/testkit"
	"golang.org/x/oauth2"
)

// The chained client recovers from a rejected ConsumerJWS, a rejected
// AppJWT, or both, with one resend.
func TestTransportRecovers(t *testing.T) {
	tests := []struct {
		name   string
		reject func(s *stand)
		want   counts // after the priming request and the one that recovers
	}{
		{"RevokeConsumer (40103)", func(s *stand) { s.srv.RevokeConsumer("a") },
			counts{DomainAPI: 1, Sentinel: 1, Consumer: 2, Conversation: 3}},
		{"40104 once", func(s *stand) {
			s.srv.QueueFaults(appjwttest.Conversation, appjwttest.Fault{Status: 401, Body: lpError(40104)})
		}, counts{DomainAPI: 1, Sentinel: 1, Consumer: 2, Conversation: 3}},
		{"RevokeTokens (40102)", func(s *stand) { s.srv.RevokeTokens() },
			counts{DomainAPI: 1, Sentinel: 2, Consumer: 1, Conversation: 3}},
		{"both", func(s *stand) { s.srv.RevokeTokens(); s.srv.RevokeConsumer("a") },
			counts{DomainAPI: 1, Sentinel: 2, Consumer: 2, Conversation: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStand(t)
			var logs bytes.Buffer
			c := s.cache(func(c *Config) {
				c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			})
			client := s.client(c, nil)
			if resp := s.conversation(t, client, "a"); resp.StatusCode != http.StatusOK {
				t.Fatalf("priming: %s", resp.Status)
			}
			jws, _ := c.Token(context.Background(), "a")
			app, _ := s.src.Token()
			tt.reject(s)
			if resp := s.conversation(t, client, "a"); resp.StatusCode != http.StatusOK {
				t.Errorf("after the rejection: %s, want 200 OK", resp.Status)
			}
			if diff := cmp.Diff(tt.want, s.counts()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			for _, secret := range []string{jws, app.AccessToken, `"a"`} {
				if strings.Contains(logs.String(), secret) {
					t.Errorf("logs show a token or the consumer:\n%s", logs.String())
				}
			}
		})
	}
}

// While the idp and the Send API reject every ConsumerJWS (40104), a
// request is resent at most once, never with the AppJWT dropped, and the
// 401 goes back; once they stop, the next request after the backoff that
// the failed fetch caused recovers.
func TestTransportRejectCode(t *testing.T) {
	s := newStand(t)
	c := s.cache(nil)
	clk := clockOf(c)
	client := s.client(c, nil)
	s.conversation(t, client, "a")
	s.srv.SetRejectCode(40104)
	if resp := s.conversation(t, client, "a"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("while rejected: %s, want 401", resp.Status)
	}
	want := counts{DomainAPI: 1, Sentinel: 1, Consumer: 2, Conversation: 2}
	if diff := cmp.Diff(want, s.counts()); diff != "" {
		t.Errorf("requests while rejected (-want +got):\n%s", diff)
	}
	s.srv.SetRejectCode(0)
	clk.Advance(time.Second)
	if resp := s.conversation(t, client, "a"); resp.StatusCode != http.StatusOK {
		t.Errorf("after: %s, want 200 OK", resp.Status)
	}
	want.Consumer, want.Conversation = 3, 3
	if diff := cmp.Diff(want, s.counts()); diff != "" {
		t.Errorf("requests after (-want +got):\n%s", diff)
	}
}

// recording is a base that notes what each request carried.
type recording struct {
	base http.RoundTripper
	mu   sync.Mutex
	reqs []*http.Request
	body []string
}

func (r *recording) RoundTrip(req *http.Request) (*http.Response, error) {
	var b []byte
	if req.Body != nil {
		b, _ = io.ReadAll(req.Body)
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.body = append(r.body, string(b))
	r.mu.Unlock()
	return r.base.RoundTrip(req)
}

func TestTransportResendsBodyWhole(t *testing.T) {
	s := newStand(t)
	c := s.cache(nil)
	rec := &recording{base: s.srv.Client().Transport}
	client := s.client(c, rec)
	s.conversation(t, client, "a")
	s.srv.RevokeConsumer("a")
	s.conversation(t, client, "a")
	body := conversationBody(s.srv.AccountID)
	if diff := cmp.Diff([]string{body, body, body}, rec.body); diff != "" {
		t.Errorf("bodies sent (-want +got):\n%s", diff)
	}
}

func TestTransportBodyNotResendable(t *testing.T) {
	s := newStand(t)
	c := s.cache(nil)
	client := s.client(c, nil)
	s.conversation(t, client, "a")
	s.srv.RevokeConsumer("a")
	req, _ := http.NewRequestWithContext(WithConsumer(context.Background(), "a"), http.MethodPost,
		s.srv.URL()+"/api/account/"+s.srv.AccountID+"/messaging/consumer/conversation?v=3",
		io.NopCloser(strings.NewReader(conversationBody(s.srv.AccountID)))) // no GetBody
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("not resendable: %s, want the 401 back", resp.Status)
	}
	if resp := s.conversation(t, client, "a"); resp.StatusCode != http.StatusOK {
		t.Errorf("next request: %s, want 200 OK with a new ConsumerJWS", resp.Status)
	}
	want := counts{DomainAPI: 1, Sentinel: 1, Consumer: 2, Conversation: 3}
	if diff := cmp.Diff(want, s.counts()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

// A request whose context names no consumer is a mistake that LivePerson
// would answer with a 401 (40104) and no hint: it fails before anything is
// sent, whether through the Transport alone or through the chain, and the
// error says what to do.
func TestTransportRefusesARequestWithoutConsumer(t *testing.T) {
	s := newStand(t)
	idp := &fakeIdP{}
	var sent atomic.Int32
	alone := &Transport{Cache: fakeCache(idp, 0), Base: testkit.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent.Add(1)
		return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
	})}
	chain := s.client(s.cache(nil), nil)
	tests := []struct {
		name string
		send func(*http.Request) (*http.Response, error)
	}{
		{"Transport", alone.RoundTrip},
		{"the chained client", chain.Do},
	}
	for _, tt := range tests {
		for name, ctx := range map[string]context.Context{"none": context.Background(), "empty": WithConsumer(context.Background(), "")} {
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				closed := 0
				body := closeCounter{Reader: strings.NewReader(conversationBody(s.srv.AccountID)), closed: &closed}
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.srv.URL()+"/api/account/"+s.srv.AccountID+"/messaging/consumer/conversation?v=3", body)
				resp, err := tt.send(req)
				if resp != nil {
					resp.Body.Close()
				}
				const want = "consumerjws: request has no consumer: name one in its context with consumerjws.WithConsumer"
				if err == nil || !strings.HasSuffix(err.Error(), want) {
					t.Errorf("error %v, want one ending %q", err, want)
				}
				if closed == 0 {
					t.Error("the request body was not closed")
				}
			})
		}
	}
	if n := sent.Load(); n != 0 {
		t.Errorf("Base got %d requests, want 0", n)
	}
	if n := idp.count(); n != 0 {
		t.Errorf("%d ConsumerJWS requests, want 0", n)
	}
	if diff := cmp.Diff(counts{}, s.counts()); diff != "" {
		t.Errorf("requests that reached the stand-in (-want +got):\n%s", diff)
	}
}

// Base gets a copy with X-LP-ON-BEHALF; the caller's request is untouched.
func TestTransportSendsACopy(t *testing.T) {
	var got *http.Request
	tr := &Transport{Cache: fakeCache(&fakeIdP{}, 0), Base: testkit.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
		got = r
		return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
	})}
	req, _ := http.NewRequestWithContext(WithConsumer(context.Background(), "a"), http.MethodGet, "https://example.invalid/x", nil)
	if _, err := tr.RoundTrip(req); err != nil {
		t.Fatal(err)
	}
	if got == req || got.Header.Get("X-LP-ON-BEHALF") == "" {
		t.Error("Base did not get a copy with X-LP-ON-BEHALF")
	}
	if h := req.Header.Get("X-LP-ON-BEHALF"); h != "" {
		t.Error("the caller's request was modified")
	}
}

func TestTransportErrors(t *testing.T) {
	closed := 0
	body := closeCounter{Reader: strings.NewReader("x"), closed: &closed}
	req, _ := http.NewRequestWithContext(WithConsumer(context.Background(), "a\xffb"), http.MethodPost, "https://example.invalid/x", body)
	if _, err := (&Transport{Cache: fakeCache(&fakeIdP{}, 0)}).RoundTrip(req); err == nil || err.Error() != "consumerjws: ext_consumer_id is not valid UTF-8" {
		t.Errorf("error %v, want the ext_consumer_id that is not UTF-8", err)
	}
	if _, err := (&Transport{}).RoundTrip(req); err == nil || err.Error() != "consumerjws: Transport.Cache is nil" {
		t.Errorf("error %v, want Transport.Cache is nil", err)
	}
	if closed != 2 {
		t.Errorf("body closed %d times, want 2: once per failed RoundTrip", closed)
	}
}

type closeCounter struct {
	io.Reader
	closed *int
}

func (c closeCounter) Close() error { *c.closed++; return nil }

// Sentinel hangs on a cold start: a request through the chained client
// gives up when its deadline passes, whether it waits for the ConsumerJWS
// (whose fetch waits for an AppJWT) or, with a ConsumerJWS at hand, for
// the AppJWT itself.
func TestChainHonoursTheDeadline(t *testing.T) {
	s := newStand(t)
	s.srv.SetFault(appjwttest.Sentinel, appjwttest.Fault{Hang: true})
	ctx, cancel := context.WithCancel(s.ctx)
	t.Cleanup(cancel) // ends the hanging fetches
	app := appjwt.Config{AccountID: s.srv.AccountID, ClientID: s.srv.ClientID, ClientSecret: s.srv.ClientSecret, Domain: s.srv.Host()}
	s.src = app.TokenSource(ctx)
	tests := []struct {
		name  string
		cache *Cache
	}{
		{"the ConsumerJWS", s.cache(nil)},
		{"the AppJWT", fakeCache(&fakeIdP{}, 0)},
	}
	for _, tt := range tests {
		client := s.client(tt.cache, nil)
		rctx, stop := context.WithTimeout(WithConsumer(context.Background(), "a"), 200*time.Millisecond)
		req, _ := http.NewRequestWithContext(rctx, http.MethodPost, s.srv.URL()+"/api/account/"+s.srv.AccountID+"/messaging/consumer/conversation?v=3", nil)
		start := time.Now()
		_, err := client.Do(req)
		stop()
		if d := time.Since(start); d > 1500*time.Millisecond || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("waiting for %s: error %v after %v, want a deadline error within 1.5 s", tt.name, err, d)
		}
	}
}

func TestRoundTripEdgeCases(t *testing.T) {
	testkit.RoundTripEdgeCases(t, func() context.Context { return WithConsumer(context.Background(), "a") }, lpError(40103),
		func(base http.RoundTripper) http.RoundTripper {
			return &Transport{Cache: fakeCache(&fakeIdP{}, 10), Base: base}
		})
}

// The rule is lphttp.MayCarry's, shared with appjwt's Transport.
func TestRedirects(t *testing.T) {
	testkit.Redirects(t, "X-LP-ON-BEHALF", func() context.Context { return WithConsumer(context.Background(), "a") },
		map[string]func(http.RoundTripper) http.RoundTripper{"Transport": func(base http.RoundTripper) http.RoundTripper {
			return &Transport{Cache: fakeCache(&fakeIdP{}, 10), Base: base}
		}})
}

// rejecting is an AppJWT source that the Transport can tell of a
// rejection, as appjwt's own: then it hands out a new token.
type rejecting struct {
	mu sync.Mutex
	n  int
}

func (s *rejecting) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &oauth2.Token{AccessToken: fmt.Sprintf("app.jwt.%d", s.n)}, nil
}

func (s *rejecting) Reject(tok *oauth2.Token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tok.AccessToken == fmt.Sprintf("app.jwt.%d", s.n) {
		s.n++
	}
}

// No credential is reachable from what a client hands back, in either
// order of the two transports, whichever token the API rejected first:
// not in resp.Request, nor in any request of the chain of redirect hops
// that leads back from it, nor in the req.Response.Request that a
// CheckRedirect sees on each hop. The API redirects twice within its
// host, so each hop carries both tokens.
func TestNoCredentialInAResponse(t *testing.T) {
	chains := []struct {
		name          string
		resendsAppJWT bool // after a 401 that rejects the AppJWT
		client        func(ctx context.Context, c *Cache, src oauth2.TokenSource) *http.Client
	}{
		{"README: consumerjws.Transport over appjwt.NewClient", true, func(ctx context.Context, c *Cache, src oauth2.TokenSource) *http.Client {
			client := appjwt.NewClient(ctx, src)
			client.Transport = &Transport{Cache: c, Base: client.Transport}
			return client
		}},
		{"consumerjws.Transport over appjwt.Transport", true, func(ctx context.Context, c *Cache, src oauth2.TokenSource) *http.Client {
			base := ctx.Value(oauth2.HTTPClient).(*http.Client).Transport
			return &http.Client{Transport: &Transport{Cache: c, Base: &appjwt.Transport{Source: src, Base: base}}}
		}},
		{"appjwt.Transport over consumerjws.Transport", true, func(ctx context.Context, c *Cache, src oauth2.TokenSource) *http.Client {
			base := ctx.Value(oauth2.HTTPClient).(*http.Client).Transport
			return &http.Client{Transport: &appjwt.Transport{Source: src, Base: &Transport{Cache: c, Base: base}}}
		}},
		{"consumerjws.Transport over oauth2.NewClient", false, func(ctx context.Context, c *Cache, src oauth2.TokenSource) *http.Client {
			client := oauth2.NewClient(ctx, src)
			client.Transport = &Transport{Cache: c, Base: client.Transport}
			return client
		}},
		{"consumerjws.Transport alone", false, func(ctx context.Context, c *Cache, _ oauth2.TokenSource) *http.Client {
			return &http.Client{Transport: &Transport{Cache: c, Base: ctx.Value(oauth2.HTTPClient).(*http.Client).Transport}}
		}},
	}
	for _, reject := range []int{0, 40103, 40102} {
		for _, chain := range chains {
			if reject == 40102 && !chain.resendsAppJWT {
				continue
			}
			t.Run(fmt.Sprintf("%s, first answer at the end %d", chain.name, reject), func(t *testing.T) {
				var rejected atomic.Bool
				var carried atomic.Int32 // hops that arrived with X-LP-ON-BEHALF
				api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Header.Get("X-LP-ON-BEHALF") != "" {
						carried.Add(1)
					}
					switch r.URL.Path {
					case "/start":
						http.Redirect(w, r, "/hop", http.StatusTemporaryRedirect)
					case "/hop":
						http.Redirect(w, r, "/end", http.StatusFound)
					default:
						if reject != 0 && !rejected.Swap(true) {
							w.WriteHeader(http.StatusUnauthorized)
							io.WriteString(w, lpError(reject))
						}
					}
				}))
				defer api.Close()
				ctx := context.WithValue(context.Background(), oauth2.HTTPClient, api.Client())
				client := chain.client(ctx, fakeCache(&fakeIdP{}, 0), &rejecting{})
				var seen []*http.Request // what CheckRedirect was given to see
				client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
					seen = append(seen, req.Response.Request)
					seen = append(seen, via...)
					return nil
				}
				req, _ := http.NewRequestWithContext(WithConsumer(context.Background(), "a"), http.MethodGet, api.URL+"/start", nil)
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/end" {
					t.Fatalf("answer %s from %s, want 200 OK from /end", resp.Status, resp.Request.URL.Path)
				}
				if n := carried.Load(); n < 3 {
					t.Fatalf("%d requests carried X-LP-ON-BEHALF, want every hop's (3 or more)", n)
				}
				for r := resp.Request; r != nil; r = r.Response.Request {
					seen = append(seen, r)
					if r.Response == nil {
						break
					}
				}
				for _, r := range seen {
					for _, h := range []string{"Authorization", "X-LP-ON-BEHALF"} {
						if r.Header.Get(h) != "" {
							t.Errorf("the request to %s that a caller can reach carries %s", r.URL.Path, h)
						}
					}
				}
			})
		}
	}
}
