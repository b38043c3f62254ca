// Package jwt reads the claims of the JWTs LivePerson issues, AppJWTs and
// ConsumerJWS, without verifying them (that is for the API that receives
// them), and says when such a token expires, by one set of rules that
// appjwt and consumerjws share.
package jwt

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// MaxLifetime is the longest lifetime a token may claim: an answer that
// claims more is an error, since a token cached that long would outlive
// any revocation.
const MaxLifetime = 24 * time.Hour

// MinLifetime is the shortest lifetime a token may have, as counted: a
// shorter one is an error, which goes through the caches' backoff, since
// each token is refreshed after half its lifetime at the earliest, and an
// issuer handing out tokens that last milliseconds would otherwise be
// asked hundreds of times a second. With it, short tokens cause at most 2
// requests a second per cache (per consumer, in consumerjws).
const MinLifetime = time.Second

// ErrMalformed is wrapped by the errors of a token that is no JWT at all:
// not three dot-separated parts, or a payload that is not a base64url JSON
// object. A caller may take such a token as opaque.
var ErrMalformed = errors.New("malformed JWT")

// malformed is an error that [errors.Is] takes for ErrMalformed.
type malformed struct{ err error }

func (e malformed) Error() string        { return e.err.Error() }
func (e malformed) Unwrap() error        { return e.err }
func (e malformed) Is(target error) bool { return target == ErrMalformed }

// Claims are the claims of a JWT that appjwt and consumerjws read.
type Claims struct {
	Audience        string    // aud; several audiences are joined with spaces
	AuthorizedParty string    // azp
	Scope           string    // scope
	Issuer          string    // iss
	IssuedAt        time.Time // iat; zero if absent or not a date
	ExpiresAt       time.Time // exp; zero if absent
}

// Decode reads the claims of token. An exp that is there but is not a
// plausible date (see [plausibleSpan]) is an error, not a token that lasts
// for ever; an iat, aud, azp, scope or iss of another type than documented
// is read as absent, as it decides nothing.
func Decode(token string) (*Claims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, malformed{errors.New("token is not a JWT (want 3 dot-separated parts)")}
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, malformed{fmt.Errorf("JWT payload is not base64url: %w", err)}
	}
	var raw struct {
		Aud   json.RawMessage `json:"aud"`
		Azp   json.RawMessage `json:"azp"`
		Scope json.RawMessage `json:"scope"`
		Iss   json.RawMessage `json:"iss"`
		Iat   json.RawMessage `json:"iat"`
		Exp   json.RawMessage `json:"exp"`
	}
	if err := json.Unmarshal(payload, &raw); err != nil {
		return nil, malformed{fmt.Errorf("JWT payload: %w", err)}
	}
	c := &Claims{
		Audience:        audience(raw.Aud),
		AuthorizedParty: text(raw.Azp),
		Scope:           text(raw.Scope),
		Issuer:          text(raw.Iss),
	}
	c.IssuedAt, _ = date(raw.Iat)
	if c.ExpiresAt, err = date(raw.Exp); err != nil {
		return nil, fmt.Errorf("JWT payload: exp: %w", err)
	}
	return c, nil
}

// Answer is what a token's expiry is counted from: the answer it came in.
type Answer struct {
	Issuer string    // who issued it, for errors: "Sentinel", "the idp"
	Date   time.Time // the answer's Date header, the issuer's clock; zero if none
	SentAt time.Time // when the request was sent, by the local clock
	Now    time.Time // when the answer arrived
}

// Expiry says when a token with claims c expires by the local clock; ok is
// false if it has no exp. First match wins:
//   - exp - Date, from SentAt: the time left by the issuer's own clock, so
//     that a token issued a while ago counts as such; a token whose exp is
//     not after Date is an error. Date names the whole second the issuer's
//     clock was in, which may have been all but over: the time left is
//     counted from its end, a second less (for a whole-second exp, exp -
//     Date rounded down to the whole second below), so that no token is
//     served past the issuer's own expiry;
//   - exp - iat, from SentAt;
//   - exp itself.
//
// Counting from SentAt makes an issuer's clock that is off, with a Date off
// the same way, change nothing. A lifetime longer than MaxLifetime is an
// error, however it is counted.
func (c *Claims) Expiry(a Answer) (exp time.Time, ok bool, err error) {
	exp, iat := c.ExpiresAt, c.IssuedAt
	switch {
	case exp.IsZero():
		return time.Time{}, false, nil
	case !iat.IsZero() && exp.Sub(iat) > MaxLifetime:
		return time.Time{}, false, lifetimeError(exp.Sub(iat), "exp - iat")
	case !a.Date.IsZero() && !exp.After(a.Date):
		return time.Time{}, false, fmt.Errorf("token expired before it arrived: at %s by %s's own clock (its Date: %s)", utc(exp), a.Issuer, utc(a.Date))
	case !a.Date.IsZero():
		return bounded(a.SentAt, exp.Sub(a.Date.Add(time.Second)), "exp - Date")
	case !iat.IsZero():
		return a.SentAt.Add(exp.Sub(iat)), true, nil
	}
	if _, _, err := bounded(a.Now, exp.Sub(a.Now), "exp - now"); err != nil {
		return time.Time{}, false, err
	}
	return exp, true, nil
}

// bounded is from + lifetime, if lifetime is at most MaxLifetime.
func bounded(from time.Time, lifetime time.Duration, what string) (time.Time, bool, error) {
	if lifetime > MaxLifetime {
		return time.Time{}, false, lifetimeError(lifetime, what)
	}
	return from.Add(lifetime), true, nil
}

func lifetimeError(lifetime time.Duration, what string) error {
	return fmt.Errorf("token lifetime (%s) of %v is longer than %v", what, lifetime.Truncate(time.Second), MaxLifetime)
}

func utc(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// plausibleSpan bounds the dates Decode accepts: none is before 1970 or
// more than this far in the future.
const plausibleSpan = 10 * 365 * 24 * time.Hour

// date reads a JWT NumericDate: seconds since the epoch, maybe fractional;
// the zero time if raw is absent.
func date(raw json.RawMessage) (time.Time, error) {
	if raw == nil {
		return time.Time{}, nil
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	// No valid token is older than 1970 or dated plausibleSpan from now.
	if err != nil || !(f > 0) || f > float64(time.Now().Add(plausibleSpan).Unix()) {
		return time.Time{}, errors.New("JWT time is not a plausible date")
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}

// audience reads aud, a string or a list of strings.
func audience(raw json.RawMessage) string {
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return strings.Join(list, " ")
	}
	return text(raw)
}

// text reads a string claim.
func text(raw json.RawMessage) string {
	var s string
	json.Unmarshal(raw, &s)
	return s
}
