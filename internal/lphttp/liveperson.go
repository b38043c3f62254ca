package lphttp

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"
)

// MaxHeaderBytes caps the response headers read by the transport that
// [NewTransport] makes: net/http's own default is 1 MiB.
const MaxHeaderBytes = 64 << 10

// NewTransport is http.DefaultTransport's settings with response headers
// capped at MaxHeaderBytes, for requests whose context carries no client.
func NewTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxResponseHeaderBytes = MaxHeaderBytes
	return t
}

// How the caches of appjwt and consumerjws trust the Domain API: an answer
// for DomainTTL (LivePerson documents no TTL; its own clients cache for 1
// minute to 3 hours); once a host is known, a re-lookup gets a small share
// of a fetch's time, which belongs to the request the host is for; after a
// failed re-lookup the last good host serves for RelookupPause before the
// Domain API is asked again.
const (
	DomainTTL      = time.Hour
	RelookupPause  = 5 * time.Minute
	relookupShare  = 4 // of the time left in the fetch
	relookupMaxDur = 5 * time.Second
)

// RelookupContext bounds ctx to a re-lookup's share of its time: at most
// 5 s, and at most a quarter of what is left before ctx's deadline.
func RelookupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	budget := relookupMaxDur
	if dl, ok := ctx.Deadline(); ok {
		budget = min(budget, time.Until(dl)/relookupShare)
	}
	return context.WithTimeout(ctx, budget)
}

// LivePerson's Connector API errorCodes that blame the ConsumerJWS, not
// the AppJWT.
const (
	CodeConsumerJWSInvalid = 40103
	CodeConsumerJWSMissing = 40104
)

// ErrorCode returns the errorCode of a Connector API error body, such as
// 40102 in {"kind":"resp","code":401,"body":{"errorCode":40102}}, a number
// or a string of digits; 0 if it has none.
func ErrorCode(body []byte) int {
	var answer struct {
		Body struct {
			ErrorCode json.Number `json:"errorCode"`
		} `json:"body"`
	}
	if json.Unmarshal(body, &answer) != nil {
		return 0
	}
	n, _ := strconv.Atoi(answer.Body.ErrorCode.String())
	return n
}

// MaxDrain caps what [Drain] reads of a body.
const MaxDrain = 64 << 10

// Drain reads what is left of resp's body, up to MaxDrain, and closes it,
// so that its connection can serve the next request.
func Drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, MaxDrain))
	resp.Body.Close()
}

// WithholdEcho is err, or an error that says msg instead if err's text
// echoes secret, as [Redactor.Error] decides: for the errors of a request
// that carried a token, which a server may echo into what net/http quotes.
func WithholdEcho(err error, secret, msg string) error {
	r := Redactor{Leaks: func(s string) bool { return Echoes(s, secret) }}
	return r.Error(err, msg)
}
