package lphttp

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/oauth2"
)

// callTo is a GET of ts's path /x, through ts's client or hc if not nil.
func callTo(ts *httptest.Server, hc *http.Client) (context.Context, Call) {
	if hc == nil {
		hc = ts.Client()
	}
	u := Endpoint(ts.Listener.Addr().String(), "", "x")
	return context.WithValue(context.Background(), oauth2.HTTPClient, hc), Call{Method: http.MethodGet, URL: u, Safe: u, Max: 1 << 10}
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	var followed atomic.Bool
	evil := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { followed.Store(true) }))
	defer evil.Close()
	redirect := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, evil.URL+"/steal", http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	ctx, c := callTo(redirect, nil)
	rep, _, err := c.Do(ctx, Default)
	if err != nil || rep.Resp.StatusCode != http.StatusTemporaryRedirect {
		t.Errorf("Do = %v, %v; want the 307 answer", rep, err)
	}
	if followed.Load() {
		t.Error("the redirect was followed")
	}
}

func TestHeadersAreCappedOnTheDefaultTransport(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Big", strings.Repeat("x", 2*maxHeaderBytes))
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer ts.Close()
	tr := NewTransport()
	tr.TLSClientConfig = ts.Client().Transport.(*http.Transport).TLSClientConfig
	ctx, c := callTo(ts, &http.Client{Transport: tr})
	_, _, err := c.Do(ctx, Policy{Attempts: 1})
	if err == nil || !strings.Contains(err.Error(), "exceeded") {
		t.Errorf("error %v, want the headers refused", err)
	}
}

func TestURLWithASecretIsScrubbed(t *testing.T) {
	u := Endpoint("127.0.0.1:1", "client_secret=s3cret", "x")
	safe := *u
	safe.RawQuery = "client_secret=REDACTED"
	_, _, err := Call{Method: http.MethodGet, URL: u, Safe: &safe, Max: 1}.Do(context.Background(), Policy{Attempts: 1})
	if err == nil || strings.Contains(err.Error(), "s3cret") || !errors.As(err, new(*url.Error)) {
		t.Errorf("error %v, want a *url.Error without the secret", err)
	}
}
