package lphttp

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// MayCarry reports whether req may carry a token that its sender adds:
// over https only, and on a redirect hop only to the host, port included,
// that the first request named. net/http drops an Authorization the caller
// set when a redirect leaves the host's domain; a transport that sets the
// header itself must apply the rule, and a stricter one.
//
// A hop whose chain back to the first request breaks (a Response without
// its Request) may not carry it either: a transport keeps the chain whole
// with [SendCopy].
func MayCarry(req *http.Request) bool {
	first := req
	for first.Response != nil {
		if first.Response.Request == nil {
			return false
		}
		first = first.Response.Request
	}
	return req.URL.Scheme == "https" && first.URL.Scheme == "https" && strings.EqualFold(first.URL.Host, req.URL.Host)
}

// SendCopy sends r, a copy of req, through base, and hands back the answer
// with its Request set to req, as net/http's own transport sets it,
// whatever base set. Then the chain of redirect hops that [MayCarry] walks
// is made of the requests the client made, which no base can cut or
// restart, and resp.Request shows no header the transport added to r.
func SendCopy(base http.RoundTripper, req, r *http.Request) (*http.Response, error) {
	resp, err := base.RoundTrip(r)
	if resp != nil {
		resp.Request = req
	}
	return resp, err
}

// CheckRequest refuses what no request that a transport of package pkg
// authorizes with a credential (what) may be: one without a URL or a
// Header (net/http's own transport refuses them too), and a first request
// over plain http.
func CheckRequest(req *http.Request, pkg, what string) error {
	switch {
	case req.URL == nil:
		return errors.New(pkg + ": request has no URL")
	case req.Header == nil:
		return errors.New(pkg + ": request has a nil Header")
	case req.Response == nil && req.URL.Scheme != "https":
		return fmt.Errorf("%s: refusing to send %s to %s over %s: https only", pkg, what, req.URL.Host, req.URL.Scheme)
	}
	return nil
}

// CloseBody closes req's body, if it has one, as a RoundTrip that sends
// nothing must.
func CloseBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
