package consumerjws

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/lpconnect/appjwt"
	"github.com/lpconnect/appjwt/internal/jwt"
	"github.com/lpconnect/appjwt/internal/lifecycle"
	"github.com/lpconnect/appjwt/internal/lphttp"
	"github.com/lpconnect/appjwt/internal/sentinel"
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
	jws    string
	host   string
	sched  lifecycle.Schedule // zero: no exp
	expiry time.Time          // zero: no exp
	life   time.Duration      // its lifetime when it came, if it has an exp
	sealed []byte             // jws as the Store holds it, if it does
	took   time.Duration
}

// record describes f, without the ConsumerJWS.
func (f *fetched) record(c *Cache) []lifecycle.Record {
	attrs := []slog.Attr{slog.String("host", f.host), slog.Duration("took", f.took)}
	if !f.sched.RefreshAt.IsZero() {
		attrs = append(attrs, slog.Time("refresh_at", f.sched.RefreshAt))
	}
	return c.record(slog.LevelDebug, msgFetched, attrs...)
}

// fetch asks the idp for a new ConsumerJWS of consumer id, in fetch f,
// and says how far it reached and what to log about the idp host it found,
// if anything.
func (c *Cache) fetch(id string, f *flight) (*fetched, reach, []lifecycle.Record, error) {
	ctx, cancel := context.WithTimeout(c.ctx, c.timeout)
	defer cancel()
	start := c.now()
	if err := c.checkAppJWT(ctx); err != nil {
		return nil, unreached, nil, err
	}
	a, err := c.domain.Host(ctx, c.retry)
	var records []lifecycle.Record
	if a.RelookupErr != nil {
		records = c.record(slog.LevelWarn, msgRelookupFailed, slog.String("host", a.Host), slog.String("error", a.RelookupErr.Error()))
	}
	if err != nil {
		return nil, unreached, records, fmt.Errorf("consumerjws: %w", err)
	}
	got, reached, err := c.request(ctx, a.Host, id, f)
	if err != nil {
		return nil, reached, records, err
	}
	got.took = c.now().Sub(start)
	return got, reached, records, nil
}

// checkAppJWT refuses a Source whose tokens are for Sentinel's v2 API,
// which each token of appjwt names, however its source is wrapped: the
// idp and the Send API would refuse them, and the error says why. Its
// AppJWT errors are the request's.
func (c *Cache) checkAppJWT(ctx context.Context) error {
	var tok *oauth2.Token
	var err error
	if src, ok := c.conf.Source.(interface {
		TokenContext(context.Context) (*oauth2.Token, error)
	}); ok {
		tok, err = src.TokenContext(ctx)
	} else {
		tok, err = c.conf.Source.Token()
	}
	if err == nil && sentinel.IsV2(tok) {
		return errors.New("consumerjws: Config.Source gives tokens of Sentinel's v2 API: the idp and the Send API take v1 AppJWTs (appjwt.SentinelV1)")
	}
	return nil
}

// request sends the ConsumerJWS request for consumer id to host, noting
// each attempt that fails as a host fails in the idp's health.
func (c *Cache) request(ctx context.Context, host, id string, f *flight) (*fetched, reach, error) {
	fail := func(err error) error {
		return fmt.Errorf("consumerjws: ConsumerJWS request for account %q to %s: %w", c.conf.AccountID, host, err)
	}
	body, _ := json.Marshal(struct {
		ID string `json:"ext_consumer_id"`
	}{id})
	u := lphttp.Endpoint(host, "v=1.0", "api", "account", c.conf.AccountID, "consumer")
	sent := &sentLog{id: id}
	describe := func(rep *lphttp.Reply, err error) error {
		if err != nil {
			return fail(sent.withhold(err))
		}
		return fail(sent.retrieveError(rep))
	}
	rep, _, err := c.retry.Do(ctx, func() (*lphttp.Reply, error) {
		rep, err := c.send(ctx, u, body, sent)
		if hostFailure(rep, err) {
			c.failedRequest(f, describe(rep, err))
		}
		return rep, err
	})
	switch {
	case err != nil && hostFailure(nil, err):
		return nil, hostFailed, describe(nil, err)
	case err != nil:
		return nil, unreached, describe(nil, err)
	case hostFailure(rep, nil):
		return nil, hostFailed, describe(rep, nil)
	case rep.Resp.StatusCode < 200 || rep.Resp.StatusCode > 299:
		return nil, answered, describe(rep, nil)
	}
	got, err := c.parse(rep)
	if err != nil {
		return nil, answered, fail(err)
	}
	got.host = host
	return got, answered, nil
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
	if len(a.Token) > maxConsumerJWSLen {
		return nil, fmt.Errorf("%s: token is %d bytes long, more than %d", rep.Resp.Status, len(a.Token), maxConsumerJWSLen)
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
	if life < jwt.MinLifetime {
		return nil, fmt.Errorf("%s: ConsumerJWS lifetime of %v is shorter than %v", rep.Resp.Status, life, jwt.MinLifetime)
	}
	got.expiry, got.life = rep.SentAt.Add(life), life
	got.sched = schedule(rep.SentAt, got.expiry)
	return got, nil
}

// schedule is the schedule of a ConsumerJWS with an exp that arrived at
// now.
func schedule(now, expiry time.Time) lifecycle.Schedule {
	life := expiry.Sub(now)
	return lifecycle.Plan{Early: life / 10, MaxMargin: maxServeMargin, MarginShare: serveMarginShare}.Schedule(now, expiry)
}

// A ConsumerJWS with an exp is refreshed once 90% of its lifetime L has
// passed, and served until min(maxServeMargin, L/serveMarginShare) before
// it expires.
const (
	serveMarginShare = 20
	maxServeMargin   = 10 * time.Second
)

// lifetime is how long the token lasts from now, if it is a JWS with an
// exp, by the rules of [jwt.Claims.Expiry]: the idp's Date first, so that
// one issued a while ago counts as such. A token that is no JWS is opaque:
// kept until it is rejected. An exp that is there but no date is an error:
// such a token must not be kept for ever.
func lifetime(token string, header http.Header, now time.Time) (time.Duration, bool, error) {
	cl, err := jwt.Decode(token)
	if errors.Is(err, jwt.ErrMalformed) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	date, _ := http.ParseTime(header.Get("Date"))
	exp, ok, err := cl.Expiry(jwt.Answer{Issuer: "the idp", Date: date, SentAt: now, Now: now})
	if !ok || err != nil {
		return 0, false, err
	}
	return exp.Sub(now), true, nil
}
