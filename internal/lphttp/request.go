package lphttp

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Call is one HTTP request to LivePerson, as often as it is sent: to a URL
// built by [Endpoint], never redirected, its answer read through a cap.
type Call struct {
	Method string
	URL    *url.URL
	Safe   *url.URL // URL as errors and Response.Request may show it
	Form   string   // form-encoded body, if any
	Max    int      // the longest answer read, in bytes
}

// Do sends c as often as p allows; see [Policy.Do]. The client comes from
// ctx under [oauth2.HTTPClient], as in golang.org/x/oauth2, or is the
// default: a 10 s timeout, response headers capped at maxHeaderBytes.
func (c Call) Do(ctx context.Context, p Policy) (*Reply, int, error) {
	client := clientFrom(ctx)
	return p.Do(ctx, func() (*Reply, error) { return c.send(ctx, client, p.Time) })
}

func (c Call) send(ctx context.Context, client *http.Client, now func() time.Time) (*Reply, error) {
	req, err := http.NewRequestWithContext(ctx, c.Method, c.Safe.String(), strings.NewReader(c.Form))
	if err != nil {
		return nil, Final{Err: err}
	}
	req.URL = c.URL
	req.Header.Set("Accept", "application/json")
	if c.Method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	sentAt := now()
	resp, err := client.Do(req)
	if err != nil {
		return nil, c.scrub(err)
	}
	resp.Request = &http.Request{Method: req.Method, URL: c.Safe, Host: req.Host, Header: req.Header.Clone()}
	rep, err := Read(resp, c.Max, sentAt)
	return rep, c.scrub(err)
}

// scrub keeps the request URL, which may hold a secret, out of err:
// net/http's *url.Error prints it whole.
func (c Call) scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = c.Safe.String()
	}
	return err
}

// clientFrom is the client from ctx, or the default, with redirects off: a
// server must not move the request, and what it carries, to another host
// or path.
func clientFrom(ctx context.Context) *http.Client {
	hc, _ := ctx.Value(oauth2.HTTPClient).(*http.Client)
	if hc == nil {
		hc = defaultClient
	}
	c := *hc
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// defaultClient is used when the context has none: never one without a
// timeout, nor one that reads unbounded headers.
var defaultClient = &http.Client{Timeout: 10 * time.Second, Transport: NewTransport()}

// maxHeaderBytes caps the response headers read by the transport that
// [NewTransport] makes: net/http's own default is 1 MiB.
const maxHeaderBytes = 64 << 10

// NewTransport is http.DefaultTransport's settings with response headers
// capped at maxHeaderBytes, for requests whose context carries no client.
func NewTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxResponseHeaderBytes = maxHeaderBytes
	return t
}
