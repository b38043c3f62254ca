package jwt

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lpconnect/appjwt/internal/testkit"
)

func TestDecode(t *testing.T) {
	jwt := testkit.JWT
	tests := []struct {
		name          string
		token         string
		want          *Claims
		wantMalformed bool // an error that is ErrMalformed
		wantErr       string
	}{
		{"aud list", jwt(`{"aud":["a","b"]}`), &Claims{Audience: "a b"}, false, ""},
		{"iat a string: read as absent", jwt(`{"iat":"1524642670","exp":1524646270}`), &Claims{ExpiresAt: time.Unix(1524646270, 0)}, false, ""},
		{"aud a number: read as absent", jwt(`{"aud":5,"iss":"Sentinel"}`), &Claims{Issuer: "Sentinel"}, false, ""},
		{"padded payload", "a." + strings.Split(jwt(`{"iss":"x"}`), ".")[1] + "==.c", &Claims{Issuer: "x"}, false, ""},
		{"two parts", "a.b", nil, true, "not a JWT"},
		{"four parts", "a.b.c.d", nil, true, "not a JWT"},
		{"payload not base64url", "a.~~~.c", nil, true, "base64url"},
		{"payload not JSON", jwt(`nope`), nil, true, "JWT payload"},
		{"payload a list", jwt(`[1]`), nil, true, "JWT payload"},
		{"exp a string", jwt(`{"exp":"tomorrow"}`), nil, false, "JWT time"},
		{"exp null", jwt(`{"exp":null}`), nil, false, "JWT time"},
		{"exp negative", jwt(`{"exp":-1}`), nil, false, "JWT time"},
		{"exp in 30 years", jwt(fmt.Sprintf(`{"exp":%d}`, time.Now().AddDate(30, 0, 0).Unix())), nil, false, "JWT time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(tt.token)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("Decode mismatch (-want +got):\n%s", diff)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Decode = %+v, %v; want an error containing %q", got, err, tt.wantErr)
			}
			if got := errors.Is(err, ErrMalformed); got != tt.wantMalformed {
				t.Errorf("errors.Is(%v, ErrMalformed) = %v, want %v", err, got, tt.wantMalformed)
			}
		})
	}
}

func TestExpiry(t *testing.T) {
	sent := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	now := sent.Add(time.Second)
	date := sent.Add(3 * time.Hour) // the issuer's clock, three hours ahead
	tests := []struct {
		name    string
		c       Claims
		date    time.Time
		want    time.Time
		wantOK  bool
		wantErr string
	}{
		{"no exp", Claims{IssuedAt: date}, date, time.Time{}, false, ""},
		{"exp - Date first, less the second Date names", Claims{IssuedAt: date.Add(-50 * time.Minute), ExpiresAt: date.Add(10 * time.Minute)}, date, sent.Add(10*time.Minute - time.Second), true, ""},
		{"exp a second after Date: no time left", Claims{ExpiresAt: date.Add(time.Second)}, date, sent, true, ""},
		{"exp at Date", Claims{ExpiresAt: date}, date, time.Time{}, false, "expired before it arrived: at 2026-11-27T13:00:00Z by Sentinel's own clock"},
		{"exp - iat without a Date", Claims{IssuedAt: date.Add(-50 * time.Minute), ExpiresAt: date.Add(10 * time.Minute)}, time.Time{}, sent.Add(time.Hour), true, ""},
		{"exp alone", Claims{ExpiresAt: sent.Add(time.Minute)}, time.Time{}, sent.Add(time.Minute), true, ""},
		{"exp - iat over a day", Claims{IssuedAt: date, ExpiresAt: date.Add(25 * time.Hour)}, time.Time{}, time.Time{}, false, "(exp - iat) of 25h0m0s is longer than 24h"},
		{"exp - Date over a day", Claims{ExpiresAt: date.Add(25 * time.Hour)}, date, time.Time{}, false, "(exp - Date) of 24h59m59s"},
		{"exp - now over a day", Claims{ExpiresAt: now.Add(25 * time.Hour)}, time.Time{}, time.Time{}, false, "(exp - now) of 25h0m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := tt.c.Expiry(Answer{Issuer: "Sentinel", Date: tt.date, SentAt: sent, Now: now})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Expiry = %v, %v, %v; want an error containing %q", got, ok, err, tt.wantErr)
				}
				return
			}
			if err != nil || ok != tt.wantOK || !got.Equal(tt.want) {
				t.Errorf("Expiry = %v, %v, %v; want %v, %v, nil", got, ok, err, tt.want, tt.wantOK)
			}
		})
	}
}

// Date has a resolution of one second: the issuer's clock may have been
// anywhere in the second it names when it answered. However far into that
// second, the token is not served past its exp by the issuer's clock.
func TestExpiryNeverPastTheIssuers(t *testing.T) {
	sent := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	issuer := sent.Add(3 * time.Hour) // its clock when the request was sent, and when it answered
	for _, into := range []time.Duration{0, time.Nanosecond, 500 * time.Millisecond, time.Second - time.Nanosecond} {
		for _, exp := range []time.Duration{10 * time.Second, 10*time.Second + 500*time.Millisecond, time.Hour} {
			t.Run(fmt.Sprintf("%v into the second, exp in %v", into, exp), func(t *testing.T) {
				answered := issuer.Truncate(time.Second).Add(into)
				c := Claims{ExpiresAt: answered.Truncate(time.Second).Add(exp)}
				got, ok, err := c.Expiry(Answer{Issuer: "Sentinel", Date: answered.Truncate(time.Second), SentAt: sent, Now: sent})
				if err != nil || !ok {
					t.Fatalf("Expiry = %v, %v, %v", got, ok, err)
				}
				// The issuer's exp, by the local clock, with no time on the wire.
				if last := sent.Add(c.ExpiresAt.Sub(answered)); got.After(last) {
					t.Errorf("Expiry %v is %v past the issuer's own expiry", got, got.Sub(last))
				}
				if least := sent.Add(c.ExpiresAt.Sub(answered) - time.Second); got.Before(least) {
					t.Errorf("Expiry %v is more than a second before the issuer's own", got)
				}
			})
		}
	}
}

func FuzzDecode(f *testing.F) {
	jwt := testkit.JWT
	f.Add(jwt(`{"aud":"le1","azp":"id","scope":"msg.consumer","iss":"Sentinel","exp":1524646270,"iat":1524642670}`))
	f.Add(jwt(`{"aud":["a","b"],"exp":1.5e9}`))
	f.Add(jwt(`{"exp":1e300}`))
	f.Add("a.b.c")
	f.Add("..")
	f.Add(jwt(`{"exp":-1}`))
	f.Fuzz(func(t *testing.T, token string) {
		c, err := Decode(token)
		if err != nil {
			if c != nil {
				t.Errorf("got both claims and an error")
			}
			return
		}
		for _, d := range []time.Time{c.IssuedAt, c.ExpiresAt} {
			if !d.IsZero() && (d.Unix() <= 0 || d.After(time.Now().Add(plausibleSpan))) {
				t.Errorf("implausible date %v accepted from %q", d, token)
			}
		}
	})
}
