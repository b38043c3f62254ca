package consumerjws

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/lpconnect/appjwt/internal/lifecycle"
	"github.com/lpconnect/appjwt/internal/lphttp"
)

type consumerKey struct{}

// errNoConsumer is the error of a request whose context names no consumer:
// sent without X-LP-ON-BEHALF, the API would only answer 401 (40104).
var errNoConsumer = errors.New("consumerjws: request has no consumer: name one in its context with consumerjws.WithConsumer")

// WithConsumer returns a copy of ctx that names the consumer, by
// ext_consumer_id, on whose behalf a request made with it is sent:
// [Transport] sets that consumer's ConsumerJWS, and refuses a request
// whose context names none, or an empty one.
func WithConsumer(ctx context.Context, extConsumerID string) context.Context {
	return context.WithValue(ctx, consumerKey{}, extConsumerID)
}

// ConsumerFromContext returns the consumer that [WithConsumer] put in ctx,
// if any, for a transport in front of [Transport] that decides whether a
// request goes through one.
func ConsumerFromContext(ctx context.Context) (extConsumerID string, ok bool) {
	extConsumerID, ok = ctx.Value(consumerKey{}).(string)
	return extConsumerID, ok
}

// Transport is an [http.RoundTripper] that sends each request with the
// ConsumerJWS, from Cache, of the consumer its context names
// ([WithConsumer]), in X-LP-ON-BEHALF, replacing any the request has. A
// request whose context names no consumer is an error, and nothing is
// sent: the API would answer it 401 (40104). Transport does not modify
// the caller's request, and the answer's Request is the caller's, so that
// no ConsumerJWS is reachable from the answer or, on a redirect, from the
// req.Response.Request that a CheckRedirect sees.
//
// The ConsumerJWS goes only where the AppJWT goes with [appjwt.Transport]:
// over https, and on a redirect hop only to the host the first request
// named; elsewhere the hop goes without X-LP-ON-BEHALF.
//
// When the API answers 401, Transport reads LivePerson's errorCode from the
// first 64 KiB of the body, for at most 1 s (and no longer than the
// request's context allows; past that, the 401 goes back unread, its body
// whole). With errorCode 40103 (ConsumerJWS invalid) or 40104 (ConsumerJWS
// missing), Transport reports the ConsumerJWS as rejected ([Cache.Reject])
// and, if the request can be sent again (it has no body, or a GetBody that
// works) and its context is not done, sends it once more with a new
// ConsumerJWS, after draining and closing the first answer's body. A
// second 401 goes back to the caller. If the request cannot be sent again,
// or no new ConsumerJWS comes (the Cache drops a consumer's ConsumerJWS at
// most once per 5 s, and less often while new ones are rejected too), the
// 401 goes back to the caller, its body intact, and later requests get the
// new ConsumerJWS. An answer below 400 tells the Cache that the API took
// the ConsumerJWS: its consumer's floor between drops is back to 5 s.
//
// The AppJWT is Base's business: with an [appjwt.Transport] as Base, which
// leaves these two errorCodes to Transport and recovers from the others,
// one client recovers from either token being rejected. Each resends at
// most once, so one request is sent at most 4 times, and only after 401s:
// AppJWT, ConsumerJWS, then AppJWT rejected again.
//
// Transport is safe for concurrent use if Base is.
type Transport struct {
	// Cache supplies the ConsumerJWS. Required.
	Cache *Cache

	// Base sends the request, such as an appjwt.Transport. Nil:
	// http.DefaultTransport.
	Base http.RoundTripper
}

// RoundTrip sends req, with the ConsumerJWS of the consumer its context
// names, once more after a 401 as [Transport] says. As the
// [http.RoundTripper] contract asks, it closes req.Body even when it
// returns an error before sending.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	id, ok := ConsumerFromContext(req.Context())
	switch {
	case t.Cache == nil:
		lphttp.CloseBody(req)
		return nil, errors.New("consumerjws: Transport.Cache is nil")
	case (!ok || id == "") && req.URL != nil && req.Header != nil:
		lphttp.CloseBody(req)
		return nil, errNoConsumer
	}
	return lphttp.RoundTrip(consumerJWS, t.base(), authority{t.Cache, id}, req)
}

var consumerJWS = lphttp.Kind{Pkg: "consumerjws", Name: "ConsumerJWS", A: "a ConsumerJWS", Header: "X-LP-ON-BEHALF"}

// authority is a [Transport]'s request on behalf of consumer id, as
// [lphttp.RoundTrip] sees it.
type authority struct {
	c  *Cache
	id string
}

func (a authority) Credential(ctx context.Context) (string, error) { return a.c.Token(ctx, a.id) }

func (a authority) Set(r *http.Request, jws string) { r.Header.Set("X-LP-ON-BEHALF", jws) }

func (a authority) Value(jws string) string { return jws }

func (a authority) Recovers() bool { return true }

// Reject drops the ConsumerJWS for the errorCodes that blame it.
func (a authority) Reject(_ *http.Request, jws string, code int) (blamed, again bool) {
	if code != lphttp.CodeConsumerJWSInvalid && code != lphttp.CodeConsumerJWSMissing {
		return false, false
	}
	return true, a.c.reject(a.id, jws)
}

func (a authority) Accepted(_ *http.Request, jws string) { a.c.accepted(a.id, jws) }

// Logged logs a rejection through the Cache's Logger, if it has one.
func (a authority) Logged(req *http.Request, _ string, code int, resent, again bool) {
	attrs := []slog.Attr{
		slog.String("host", req.URL.Host), slog.String("path", req.URL.Path),
		slog.Int("error_code", code), slog.Bool("resent", resent),
	}
	if again {
		attrs = append(attrs, slog.String("hint", "a ConsumerJWS fetched after a rejection was rejected too: check that the conversation is this consumer's"))
	}
	lifecycle.Write(req.Context(), a.c.conf.Logger, a.c.record(slog.LevelWarn, msgRejected, attrs...))
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}
