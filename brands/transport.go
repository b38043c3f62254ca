package brands

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/lpconnect/appjwt/consumerjws"
	"github.com/lpconnect/appjwt/internal/lphttp"
)

type accountKey struct{}

// WithAccount returns a copy of ctx that names the account a request made
// with it is for, for a URL that has no /api/account/{account}/ in its
// path. A request whose URL names another account fails.
func WithAccount(ctx context.Context, account string) context.Context {
	return context.WithValue(ctx, accountKey{}, account)
}

// Client returns an HTTP client that sends each request as the one-brand
// wiring of appjwt and consumerjws does, with the brand's tokens: the
// AppJWT of the account its URL's path names after /api/account/ (or
// [WithAccount], if the path names none), and, if its context names a
// consumer ([consumerjws.WithConsumer]), that consumer's ConsumerJWS of
// that account. It recovers from a rejected token as [appjwt.Transport]
// and [consumerjws.Transport] do; when Sentinel refuses the brand's secret
// with invalid_client, it moves to the installation's other live secret,
// or a new lookup's, and sends the request once more if it can be sent
// again (it has no body, or a GetBody).
//
// A request that names no account, an account the lookup does not know,
// or two different accounts fails before anything is sent. Like
// [appjwt.NewClient], it takes the client in the Cache's context under
// [oauth2.HTTPClient], if any: its transport, Timeout, Jar and
// CheckRedirect. Its Transport may go in a transport chain of your own.
func (c *Cache) Client() *http.Client {
	hc := *c.client
	return &hc
}

// SendAPIHost returns the Send API host of account (the Domain API's
// asyncMessagingEnt), looked up once and cached as the appjwt package
// caches the Sentinel host, looking the brand up first if need be.
func (c *Cache) SendAPIHost(ctx context.Context, account string) (string, error) {
	b, err := c.get(ctx, account)
	if err != nil {
		return "", err
	}
	return b.sendAPIHost(ctx)
}

// router is the Transport of [Cache.Client].
type router struct{ c *Cache }

func (r *router) RoundTrip(req *http.Request) (*http.Response, error) {
	account, err := accountOf(req)
	if err != nil {
		lphttp.CloseBody(req)
		return nil, err
	}
	b, err := r.c.get(req.Context(), account)
	if err != nil {
		lphttp.CloseBody(req)
		return nil, err
	}
	cr := b.cur.Load()
	resp, err := cr.roundTrip(req)
	if err == nil || !invalidClient(err) || !b.rotate(req.Context(), cr) {
		return resp, err
	}
	again, ok := lphttp.Replay(req)
	if !ok {
		return nil, err
	}
	return b.cur.Load().roundTrip(again)
}

func (cr *creds) roundTrip(req *http.Request) (*http.Response, error) {
	if _, ok := consumerjws.ConsumerFromContext(req.Context()); ok {
		return cr.consumer.RoundTrip(req)
	}
	return cr.appJWT.RoundTrip(req)
}

var (
	errNoAccount     = errors.New("brands: request names no account: its URL has no /api/account/{account}/ and its context none from brands.WithAccount")
	errTwoAccounts   = errors.New("brands: request's URL and context name different accounts")
	errAmbiguousPath = errors.New("brands: request's path could name another account once normalised: a . or .. segment, an escaped slash, or /api/account/ twice")
)

// accountOf returns the account req is for: the one its URL's path names
// after /api/account/, in any case, or its context's. A path that could
// name another account once a server or a proxy normalises it (a . or ..
// segment, an escaped slash or backslash, /api/account/ twice) is refused:
// the account read here must be the one the request reaches.
func accountOf(req *http.Request) (string, error) {
	fromCtx, _ := req.Context().Value(accountKey{}).(string)
	var fromURL string
	if req.URL != nil {
		const prefix = "/api/account/"
		path := req.URL.Path
		lower := strings.ToLower(path)
		escaped := strings.ToLower(req.URL.EscapedPath())
		switch {
		case strings.Count(lower, prefix) > 1, strings.Contains(escaped, "%2f"), strings.Contains(escaped, "%5c"), strings.Contains(path, `\`), hasDotSegment(path):
			return "", errAmbiguousPath
		}
		if i := strings.Index(lower, prefix); i >= 0 {
			fromURL = path[i+len(prefix):]
			if j := strings.IndexByte(fromURL, '/'); j >= 0 {
				fromURL = fromURL[:j]
			}
		}
	}
	switch {
	case fromURL != "" && fromCtx != "" && fromURL != fromCtx:
		return "", errTwoAccounts
	case fromURL != "":
		return fromURL, nil
	case fromCtx != "":
		return fromCtx, nil
	}
	return "", errNoAccount
}

// hasDotSegment reports whether path has a . or .. segment.
func hasDotSegment(path string) bool {
	for seg := range strings.SplitSeq(path, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}
