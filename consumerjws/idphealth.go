package consumerjws

import (
	"errors"
	"net/http"
	"time"

	"github.com/lpconnect/appjwt/internal/lifecycle"
	"github.com/lpconnect/appjwt/internal/lphttp"
)

// idpHealth is how the idp host fared in a Cache's fetches. Once a request
// fails as a host fails (a network error, a timeout, 429 or 5xx), the
// fetch that sent it is the probe: no other fetch starts until it ends. If
// it fails, none starts within the backoff after it; then the next fetch
// is the probe. Any answer the idp gives that no retry changes (a
// ConsumerJWS, or another 4xx) ends that. Fetches running when the first
// failure came go on with their own retries. Guarded by Cache.mu.
type idpHealth struct {
	failures lifecycle.Failures // the probes that failed in a row
	probe    *flight            // the fetch that tries the idp meanwhile, or nil
	last     error              // the probe's latest failed request, or nil
}

// admit says whether a fetch may start at now, and whether it is the
// probe; if not, the error to return instead.
func (h *idpHealth) admit(now time.Time) (probe bool, err error) {
	switch {
	case h.probe != nil:
		last := h.last
		if last == nil {
			last = h.failures.Err
		}
		return false, &lifecycle.BackoffError{Prefix: errPrefix, Err: last}
	case h.failures.BackingOff(now):
		return false, h.failures.BackoffError(errPrefix)
	}
	return h.failures.N > 0, nil
}

// failed notes that a request of fetch f failed as a host fails, with
// err: the first such failure makes f the probe.
func (h *idpHealth) failed(f *flight, err error) {
	if h.probe == nil && h.failures.N == 0 {
		h.probe = f
	}
	if h.probe == f {
		h.last = err
	}
}

// settle notes how fetch f, which ended at now with err, found the idp.
func (h *idpHealth) settle(f *flight, r reach, err error, now time.Time, b lphttp.Backoff) {
	probe := h.probe == f
	if probe {
		h.probe, h.last = nil, nil
	}
	switch {
	case r == answered:
		h.failures = lifecycle.Failures{}
	case r == hostFailed && probe:
		h.failures.Add(err, now, b)
	}
}

// reach is what a fetch found out about the idp.
type reach int

const (
	unreached  reach = iota // it failed before asking the idp: the Domain API, the AppJWT
	answered                // the idp answered, as no retry changes: a ConsumerJWS, or another 4xx
	hostFailed              // the idp failed as a host fails
)

// hostFailure reports whether a request failed as a host fails: a network
// error or a timeout once it went out, or 429 or 5xx.
func hostFailure(rep *lphttp.Reply, err error) bool {
	if err != nil {
		return !errors.As(err, new(lphttp.Final))
	}
	return rep.Resp.StatusCode == http.StatusTooManyRequests || rep.Resp.StatusCode >= 500
}

// failedRequest notes a request of fetch f that failed as a host fails.
func (c *Cache) failedRequest(f *flight, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.idp.failed(f, err)
}
