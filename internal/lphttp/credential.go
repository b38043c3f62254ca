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
func MayCarry(req *http.Request) bool {
	first := req
	for first.Response != nil && first.Response.Request != nil {
		first = first.Response.Request
	}
	return req.URL.Scheme == "https" && first.URL.Scheme == "https" && strings.EqualFold(first.URL.Host, req.URL.Host)
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
