package consumerjws

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/lpconnect/appjwt"
	"github.com/lpconnect/appjwt/internal/lphttp"
	"golang.org/x/oauth2"
)

// Caps on what is read from a server and kept in an error.
const (
	maxBody      = 64 << 10 // an answer
	maxErrorBody = 1 << 10  // the Body of a RetrieveError
)

// newClient is the client of a Cache's requests: the AppJWT goes on through
// an appjwt.Transport, over a base that notes each token it sees sent, so
// that errors can withhold what echoes it. Redirects are answers, never
// followed: no server may move the AppJWT elsewhere.
func newClient(ctx context.Context, src oauth2.TokenSource) *http.Client {
	var base http.RoundTripper
	var timeout time.Duration
	if hc, ok := ctx.Value(oauth2.HTTPClient).(*http.Client); ok && hc != nil {
		base, timeout = hc.Transport, hc.Timeout
	}
	if base == nil {
		base = lphttp.NewTransport()
	}
	return &http.Client{
		Transport:     &appjwt.Transport{Source: src, Base: recorder{base}},
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// sentKey keys the *sentLog of a fetch in its requests' contexts.
type sentKey struct{}

// sentLog holds what a fetch's requests carried that no error may show:
// the AppJWTs, and the ext_consumer_id. Its requests are sent one after
// another, so it needs no lock.
type sentLog struct {
	tokens []string
	id     string
}

// recorder notes the Authorization of each request it sends.
type recorder struct{ base http.RoundTripper }

func (r recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if l, ok := req.Context().Value(sentKey{}).(*sentLog); ok {
		l.tokens = append(l.tokens, req.Header.Get("Authorization"))
	}
	return r.base.RoundTrip(req)
}

// fetched is a new ConsumerJWS and its schedule.
type fetched struct {
	jws                   string
	host                  string
	refreshAt, serveUntil time.Time // zero: no exp
	took                  time.Duration
}

func (f *fetched) log(c *Cache) {
	attrs := []slog.Attr{slog.String("host", f.host), slog.Duration("took", f.took)}
	if !f.serveUntil.IsZero() {
		attrs = append(attrs, slog.Time("refresh_at", f.refreshAt))
	}
	c.logAttrs(slog.LevelDebug, msgFetched, attrs...)
}

// fetch asks the idp for a new ConsumerJWS of consumer id.
func (c *Cache) fetch(id string) (*fetched, error) {
	ctx, cancel := context.WithTimeout(c.ctx, c.timeout)
	defer cancel()
	start := c.now()
	host, err := c.domain.resolve(ctx, c)
	if err != nil {
		return nil, err
	}
	fail := func(err error) error {
		return fmt.Errorf("consumerjws: ConsumerJWS request for account %q to %s: %w", c.conf.AccountID, host, err)
	}
	body, _ := json.Marshal(struct {
		ID string `json:"ext_consumer_id"`
	}{id})
	u := lphttp.Endpoint(host, "v=1.0", "api", "account", c.conf.AccountID, "consumer")
	sent := &sentLog{id: id}
	rep, _, err := c.retry.Do(ctx, func() (*lphttp.Reply, error) { return c.send(ctx, u, body, sent) })
	if err != nil {
		return nil, fail(sent.withhold(err))
	}
	if rep.Resp.StatusCode < 200 || rep.Resp.StatusCode > 299 {
		return nil, fail(sent.retrieveError(rep))
	}
	got, err := c.parse(rep)
	if err != nil {
		return nil, fail(err)
	}
	got.host, got.took = host, c.now().Sub(start)
	return got, nil
}

// send sends the request once, or more if appjwt.Transport resends it
// after the AppJWT was rejected.
func (c *Cache) send(ctx context.Context, u *url.URL, body []byte, sent *sentLog) (*lphttp.Reply, error) {
	req, err := http.NewRequestWithContext(context.WithValue(ctx, sentKey{}, sent), http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, lphttp.Final{Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	before, sentAt := len(sent.tokens), c.now()
	resp, err := c.client.Do(req)
	if err != nil {
		if len(sent.tokens) == before {
			// Nothing went out: the AppJWT source failed, and it has
			// retries and backoff of its own.
			return nil, lphttp.Final{Err: err}
		}
		return nil, err
	}
	// No headers: Authorization holds the AppJWT.
	resp.Request = &http.Request{Method: http.MethodPost, URL: u, Host: u.Host, Header: http.Header{}}
	return lphttp.Read(resp, maxBody, sentAt)
}

// parse reads a 2xx answer: {"token":"..."}, and schedules the token's
// refresh if it has an exp claim.
func (c *Cache) parse(rep *lphttp.Reply) (*fetched, error) {
	var a struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(rep.Body, &a); err != nil {
		return nil, fmt.Errorf("%s: answer is not a ConsumerJWS: %w", rep.Resp.Status, err)
	}
	if a.Token == "" {
		return nil, fmt.Errorf("%s: answer has no token", rep.Resp.Status)
	}
	if len(a.Token) > MaxConsumerJWSLen {
		return nil, fmt.Errorf("%s: token is %d bytes long, more than %d", rep.Resp.Status, len(a.Token), MaxConsumerJWSLen)
	}
	if !lphttp.IsToken68(a.Token) {
		return nil, fmt.Errorf("%s: token has characters a header cannot carry", rep.Resp.Status)
	}
	life, ok, err := lifetime(a.Token, rep.Resp.Header, c.now())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rep.Resp.Status, err)
	}
	got := &fetched{jws: a.Token}
	if !ok {
		return got, nil
	}
	if life <= 0 {
		return nil, fmt.Errorf("%s: ConsumerJWS expired before it arrived", rep.Resp.Status)
	}
	got.refreshAt = rep.SentAt.Add(life / 10 * refreshTenths)
	got.serveUntil = rep.SentAt.Add(life - min(maxServeMargin, life/serveMarginShare))
	return got, nil
}

// A ConsumerJWS with an exp is refreshed once refreshTenths tenths of its
// lifetime L have passed, and served until min(maxServeMargin,
// L/serveMarginShare) before it expires.
const (
	refreshTenths    = 9
	serveMarginShare = 20
	maxServeMargin   = 10 * time.Second
)

// lifetime is how long the token lasts, if it is a JWS with an exp, first
// match wins: exp - the answer's Date (the idp's clock: a token issued a
// while ago counts as such), else exp - iat, else exp - now. An exp that is
// there but no date is an error: such a token must not be kept for ever.
func lifetime(token string, header http.Header, now time.Time) (time.Duration, bool, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return 0, false, nil
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return 0, false, nil
	}
	var cl map[string]json.RawMessage
	if json.Unmarshal(payload, &cl) != nil || cl["exp"] == nil {
		return 0, false, nil
	}
	exp, ok := claimTime(cl["exp"])
	if !ok {
		return 0, false, errors.New("ConsumerJWS has an exp that is no date")
	}
	if date, err := http.ParseTime(header.Get("Date")); err == nil {
		return exp.Sub(date), true, nil
	}
	if iat, ok := claimTime(cl["iat"]); ok {
		return exp.Sub(iat), true, nil
	}
	return exp.Sub(now), true, nil
}

// claimTime reads a JWT date: seconds since 1970, after 1970 and before
// maxDate.
func claimTime(raw json.RawMessage) (time.Time, bool) {
	var f float64
	// Beyond maxDate, a float converts to no defined int64.
	if raw == nil || json.Unmarshal(raw, &f) != nil || !(f > 0 && f < maxDate) {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}

// maxDate bounds the JWT dates read: seconds since 1970, some 35,000 years.
const maxDate = 1 << 40
