// Package sentinel is the wire protocol of Sentinel, LivePerson's identity
// broker, as appjwt speaks it: the token request, the answer, the rules
// that give a token its expiry, and the error built from a failed answer,
// with nothing in it that echoes the client secret.
package sentinel

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/lpconnect/appjwt/internal/jwt"
	"github.com/lpconnect/appjwt/internal/lphttp"
	"github.com/lpconnect/appjwt/internal/redact"
	"golang.org/x/oauth2"
)

// DefaultLifetime is the AppJWT lifetime LivePerson documents, assumed
// when neither expires_in nor the JWT's claims give one.
const DefaultLifetime = time.Hour

// APIField is the Extra field of each token Fetch returns that names the
// token API that issued it, "v1" or "v2": the header style follows the
// token through any wrapper that hands it on, as x/oauth2's do.
const APIField = "appjwt_token_api"

// IsV2 reports whether tok says it came from Sentinel's v2 API.
func IsV2(tok *oauth2.Token) bool { return tok.Extra(APIField) == "v2" }

// Credentials identify an app installation to Sentinel.
type Credentials struct {
	AccountID, ClientID, ClientSecret string
	// InQuery sends grant_type and the credentials in the query string, as
	// LivePerson's older documentation of v1 shows, instead of the form
	// body.
	InQuery bool
	// V2 asks Sentinel's v2 API, which takes them in the form body only:
	// InQuery is then ignored.
	V2 bool
}

// Fetch asks Sentinel at host for a token, as often as p allows, and turns
// its answer into a token whose Expiry is set and in the future. It says
// how many requests it sent. A non-2xx answer, or one that carries an
// OAuth 2.0 error, is an [*oauth2.RetrieveError] under a one-line error;
// no text reachable from the error holds the secret, in any encoding
// [redact.Echoes] knows. The HTTP client comes from ctx (see
// [lphttp.Call.Do]).
func Fetch(ctx context.Context, host string, c Credentials, p lphttp.Policy) (*oauth2.Token, int, error) {
	fail := func(err error) error {
		return c.Withhold(fmt.Errorf("token request for account %q (client %q) to %s: %w", c.AccountID, c.ClientID, host, err))
	}
	rep, attempts, err := c.call(host).Do(ctx, p)
	if err != nil {
		return nil, attempts, fail(err)
	}
	if rep.Resp.StatusCode < 200 || rep.Resp.StatusCode > 299 {
		return nil, attempts, fail(c.retrieveError(rep, rep.Resp.Status))
	}
	tok, err := c.parse(rep.Body, rep.Resp.Header, rep.SentAt, p.Time())
	if errors.Is(err, errErrorAnswer) {
		return nil, attempts, fail(c.retrieveError(rep, rep.Resp.Status+" with an error"))
	}
	if err != nil {
		return nil, attempts, fail(err)
	}
	return tok, attempts, nil
}

// call is the token request: grant_type and the credentials in the form
// body, as RFC 6749 section 4.4.2 and LivePerson's OAuth 2.0 page send
// them, or in the query string if InQuery is set, as LivePerson's older
// page does for v1. Each parameter is sent once: a strict server refuses
// one that comes twice (RFC 6749 section 3.2).
func (c Credentials) call(host string) lphttp.Call {
	u := lphttp.Endpoint(host, "v=1.0", "sentinel", "api", "account", c.AccountID, "app", "token")
	if c.V2 {
		u = lphttp.Endpoint(host, "", "sentinel", "api", "v2", "account", c.AccountID, "app", "token")
	}
	safe := *u
	params := "grant_type=client_credentials&client_id=" + url.QueryEscape(c.ClientID) + "&client_secret="
	cl := lphttp.Call{Method: http.MethodPost, URL: u, Safe: &safe, Max: MaxBody}
	if c.InQuery && !c.V2 {
		u.RawQuery += "&" + params + url.QueryEscape(c.ClientSecret)
		safe.RawQuery += "&" + params + "REDACTED"
	} else {
		cl.Form = params + url.QueryEscape(c.ClientSecret)
	}
	return cl
}

// Caps on what is read from Sentinel and kept in an error.
const (
	MaxBody       = 1 << 20 // an answer
	MaxErrorBody  = 1 << 10 // the Body of an oauth2.RetrieveError
	maxErrorField = 256     // its ErrorCode, ErrorDescription and ErrorURI, which its Error prints, and an answer an error quotes
)

// WithheldText replaces any text from a server that echoed the secret.
const WithheldText = "[withheld: it echoed the credentials]"

// retrieveError describes a failed answer. Every text in it comes from the
// server, which may echo the request: the whole answer is searched for the
// secret, a field is kept whole or withheld, never in part, the status
// line is rebuilt from the code, and only headers that do not echo are
// kept.
func (c Credentials) retrieveError(rep *lphttp.Reply, status string) error {
	r := c.redactor()
	re := &oauth2.RetrieveError{Response: r.Response(rep.Resp, rep.Resp.Request), Body: r.Body(rep.Body, MaxErrorBody)}
	var e struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
		ErrorURI         string `json:"error_uri"`
	}
	if json.Unmarshal(rep.Body, &e) == nil {
		re.ErrorCode = r.Field(e.Error, maxErrorField)
		re.ErrorDescription = r.Field(e.ErrorDescription, maxErrorField)
		re.ErrorURI = r.Field(e.ErrorURI, maxErrorField)
	}
	return &lphttp.RetrieveFailure{Msg: describeFailure(re, status, r.Quote(re.Body, len(rep.Body), maxErrorField)), RE: re}
}

// describeFailure says in one line what a failed answer was; quoted is
// the answer as [redact.Redactor.Quote] shows it.
func describeFailure(re *oauth2.RetrieveError, status, quoted string) string {
	switch {
	case re.ErrorCode != "":
		return status + ": " + re.Error() // quoted, so one line
	case len(re.Body) == 0:
		return status + ": empty answer"
	}
	return status + ": answer " + quoted
}

func (c Credentials) redactor() redact.Redactor { return redact.For(c.ClientSecret, WithheldText) }

// Withhold is the last line of defence for the texts a server can put in
// an error outside a RetrieveError, such as a malformed status line quoted
// by net/http or a Domain API answer: see [redact.Redactor.Withhold].
func (c Credentials) Withhold(err error) error {
	return c.redactor().Withhold(err, "request failed; error text withheld: it echoed the credentials")
}

// answer is Sentinel's answer.
type answer struct {
	AccessToken string   `json:"access_token"`
	TokenType   string   `json:"token_type"`
	ExpiresIn   *seconds `json:"expires_in"`
	Error       string   `json:"error"`
}

// errErrorAnswer is a 2xx answer that carries an OAuth 2.0 error instead of
// a token; Fetch turns it into an [oauth2.RetrieveError].
var errErrorAnswer = errors.New("answer carries an error")

// parse turns a 2xx answer into a token whose Expiry is set and in the
// future, carrying the answer's fields as its Extra. sentAt is when the
// request was sent; header is the answer's.
func (c Credentials) parse(body []byte, header http.Header, sentAt, now time.Time) (*oauth2.Token, error) {
	var r answer
	if err := json.Unmarshal(body, &r); err != nil {
		mt, _, _ := strings.Cut(header.Get("Content-Type"), ";")
		var se *json.SyntaxError
		if errors.As(err, &se) { // its text quotes a character of the answer
			err = fmt.Errorf("not JSON at byte %d of %d", se.Offset, len(body))
		}
		return nil, fmt.Errorf("answer is not a token (Content-Type %s): %w", c.name(strings.TrimSpace(mt)), err)
	}
	if r.Error != "" {
		return nil, errErrorAnswer
	}
	if r.AccessToken == "" {
		return nil, errors.New("answer has no access_token")
	}
	if !lphttp.IsToken68(r.AccessToken) {
		return nil, errors.New("access_token has characters a token cannot have")
	}
	if !strings.EqualFold(cmp.Or(r.TokenType, "Bearer"), "Bearer") {
		return nil, fmt.Errorf("token_type %s is not Bearer, the only type Sentinel documents", c.name(r.TokenType))
	}
	date, _ := http.ParseTime(header.Get("Date"))
	exp, err := expiry(&r, jwt.Answer{Issuer: "Sentinel", Date: date, SentAt: sentAt, Now: now})
	if err != nil {
		return nil, err
	}
	if !exp.After(now) {
		return nil, fmt.Errorf("token expired at %s, before it arrived", exp.UTC().Format(time.RFC3339))
	}
	if life := exp.Sub(sentAt); life < jwt.MinLifetime {
		return nil, fmt.Errorf("token lifetime of %v is shorter than %v", life, jwt.MinLifetime)
	}
	var extra map[string]any
	json.Unmarshal(body, &extra) // it parsed as an answer: an object
	extra[APIField] = "v1"
	if c.V2 {
		extra[APIField] = "v2"
	}
	tok := &oauth2.Token{AccessToken: r.AccessToken, TokenType: "Bearer", Expiry: exp.Round(0)}
	return tok.WithExtra(extra), nil
}

// expiry picks the token's expiry, first match wins: expires_in, from
// SentAt; the JWT's claims, as [jwt.Claims.Expiry] counts them; the
// documented lifetime, from SentAt, for a token that is no JWT or has no
// exp.
func expiry(r *answer, a jwt.Answer) (time.Time, error) {
	if r.ExpiresIn != nil {
		return a.SentAt.Add(time.Duration(*r.ExpiresIn) * time.Second), nil
	}
	if strings.Count(r.AccessToken, ".") != 2 {
		return a.SentAt.Add(DefaultLifetime), nil
	}
	cl, err := jwt.Decode(r.AccessToken)
	if err != nil {
		return time.Time{}, err
	}
	exp, ok, err := cl.Expiry(a)
	if !ok && err == nil {
		return a.SentAt.Add(DefaultLifetime), nil
	}
	return exp, err
}

// name is how an error names s, a short text of the answer such as its
// media type or token_type: quoted whole if it is a token of at most 40
// bytes that does not echo the secret and has no 4 bytes in a row in
// common with it, in any case; else not at all. No error quotes part of
// what a server sent, nor a part of the secret that a server sent.
func (c Credentials) name(s string) string {
	if s == "" || len(s) <= 40 && !strings.ContainsFunc(s, notTokenChar) && !sharesRun(strings.ToLower(s), strings.ToLower(c.ClientSecret), 4) && !c.redactor().Leaks(s) {
		return strconv.Quote(s)
	}
	return "(not shown)"
}

// sharesRun reports whether b holds n bytes in a row of a, or all of a if
// it is shorter.
func sharesRun(a, b string, n int) bool {
	n = min(n, len(a))
	for i := 0; i+n <= len(a); i++ {
		if strings.Contains(b, a[i:i+n]) {
			return true
		}
	}
	return false
}

// notTokenChar reports whether r is not a character of an HTTP token
// (RFC 9110) or a '/'.
func notTokenChar(r rune) bool {
	return r > 0x7e || r <= ' ' || strings.ContainsRune(`"(),:;<=>?@[\]{}`, r)
}

// seconds is expires_in, which Sentinel sends as a number or a string.
type seconds int64

func (s *seconds) UnmarshalJSON(b []byte) error {
	v := string(bytes.Trim(b, `"`))
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || time.Duration(n) > jwt.MaxLifetime/time.Second {
		return fmt.Errorf("expires_in is not a number of seconds up to %d", int64(jwt.MaxLifetime/time.Second))
	}
	*s = seconds(n)
	return nil
}
