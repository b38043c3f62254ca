package sentinel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lpconnect/appjwt/appjwttest"
	"github.com/lpconnect/appjwt/internal/jwt"
	"github.com/lpconnect/appjwt/internal/lphttp"
	"github.com/lpconnect/appjwt/internal/redact"
	"github.com/lpconnect/appjwt/internal/testkit"
	"golang.org/x/oauth2"
)

// The tests below hold parse to Sentinel's answers and the expiry rules.

func TestParseExpiry(t *testing.T) {
	sent := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	now := sent.Add(time.Second)
	// A Sentinel clock three hours ahead: exp alone would be three hours off.
	skewedIat := sent.Add(3 * time.Hour).Unix()
	jwt := testkit.JWT
	tests := []struct {
		name string
		body string
		want time.Time
	}{
		{"expires_in number wins", fmt.Sprintf(`{"access_token":%q,"expires_in":600}`, jwt(fmt.Sprintf(`{"iat":%d,"exp":%d}`, skewedIat, skewedIat+3600))), sent.Add(10 * time.Minute)},
		{"expires_in string", `{"access_token":"opaque","expires_in":"1200"}`, sent.Add(20 * time.Minute)},
		{"exp - iat from the send time", fmt.Sprintf(`{"access_token":%q}`, jwt(fmt.Sprintf(`{"iat":%d,"exp":%d}`, skewedIat, skewedIat+1800))), sent.Add(30 * time.Minute)},
		{"fractional dates", fmt.Sprintf(`{"access_token":%q}`, jwt(fmt.Sprintf(`{"iat":%d.25,"exp":%d.25}`, skewedIat, skewedIat+1800))), sent.Add(30 * time.Minute)},
		{"exp alone", fmt.Sprintf(`{"access_token":%q}`, jwt(fmt.Sprintf(`{"exp":%d}`, sent.Add(45*time.Minute).Unix()))), sent.Add(45 * time.Minute)},
		{"no times: one hour", fmt.Sprintf(`{"access_token":%q}`, jwt(`{"aud":"le1"}`)), sent.Add(time.Hour)},
		{"not a JWT: one hour", `{"access_token":"opaque-token"}`, sent.Add(time.Hour)},
		{"token_type in lower case", `{"access_token":"t","token_type":"bearer"}`, sent.Add(time.Hour)},
		{"token_type in upper case", `{"access_token":"t","token_type":"BEARER"}`, sent.Add(time.Hour)},
		{"expires_in of a day", `{"access_token":"t","expires_in":86400}`, sent.Add(24 * time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := Credentials{}.parse([]byte(tt.body), http.Header{"Content-Type": {"application/json"}}, sent, now)
			if err != nil {
				t.Fatal(err)
			}
			if !tok.Expiry.Equal(tt.want) {
				t.Errorf("Expiry = %v, want %v", tok.Expiry, tt.want)
			}
			if got, want := tok.Type(), "Bearer"; got != want {
				t.Errorf("Type() = %q, want %q", got, want)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	sent := time.Now()
	past := sent.Add(-2 * time.Hour).Unix()
	jwt := testkit.JWT
	tests := []struct {
		name, body, wantErr string
	}{
		{"HTML page", "<html><body>Service Unavailable</body></html>", "not a token"},
		{"truncated JSON", `{"access_token":"eyJ`, "not a token"},
		{"no access_token", `{"token_type":"Bearer"}`, "no access_token"},
		{"empty object", `{}`, "no access_token"},
		{"JSON null", `null`, "no access_token"},
		{"token with spaces", `{"access_token":"a b"}`, "characters"},
		{"token with newline", `{"access_token":"a\r\nX-Evil: 1"}`, "characters"},
		{"expires_in zero", `{"access_token":"t","expires_in":0}`, "expired"},
		{"expires_in negative", `{"access_token":"t","expires_in":-5}`, "expires_in"},
		{"expires_in garbage", `{"access_token":"t","expires_in":"soon"}`, "expires_in"},
		{"expires_in huge", `{"access_token":"t","expires_in":99999999999999}`, "expires_in"},
		{"exp before iat", fmt.Sprintf(`{"access_token":%q}`, jwt(fmt.Sprintf(`{"iat":%d,"exp":%d}`, past+60, past))), "expired"},
		{"exp in the past", fmt.Sprintf(`{"access_token":%q}`, jwt(fmt.Sprintf(`{"exp":%d}`, past))), "expired"},
		{"malformed payload", `{"access_token":"a.~~~.c"}`, "base64"},
		{"payload not JSON", fmt.Sprintf(`{"access_token":%q}`, jwt(`nope`)), "JWT payload"},
		{"exp not a number", fmt.Sprintf(`{"access_token":%q}`, jwt(`{"exp":"tomorrow"}`)), "JWT time"},
		{"iat in 1970, exp in an hour", fmt.Sprintf(`{"access_token":%q}`, jwt(fmt.Sprintf(`{"iat":4,"exp":%d}`, sent.Add(time.Hour).Unix()))), "longer than 24h"},
		{"iat in 1970, exp in 1990", fmt.Sprintf(`{"access_token":%q}`, jwt(`{"iat":4,"exp":631152000}`)), "longer than 24h"},
		{"exp alone, two days ahead", fmt.Sprintf(`{"access_token":%q}`, jwt(fmt.Sprintf(`{"exp":%d}`, sent.Add(48*time.Hour).Unix()))), "longer than 24h"},
		{"expires_in over a day", `{"access_token":"t","expires_in":86401}`, "expires_in"},
		{"a lifetime under a second", fmt.Sprintf(`{"access_token":%q}`, jwt(fmt.Sprintf(`{"iat":%d,"exp":%d.5}`, sent.Unix(), sent.Unix()))), "shorter than 1s"},
		{"token_type basic", `{"access_token":"t","token_type":"basic"}`, "token_type"},
		{"token_type with CRLF", `{"access_token":"t","token_type":"Bearer\r\nX-Evil: 1"}`, "token_type"},
		{"token_type with a space", `{"access_token":"t","token_type":"Bearer x"}`, "token_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := Credentials{}.parse([]byte(tt.body), http.Header{"Content-Type": {"text/html; charset=utf-8"}}, sent, sent)
			if err == nil {
				t.Fatalf("got token %+v, want an error", tok)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not mention %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseDate(t *testing.T) {
	sent := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	now := sent.Add(time.Second)
	// Sentinel's clock, and its Date, three hours ahead of ours.
	date := sent.Add(3 * time.Hour)
	token := func(iat, exp time.Time) string {
		return fmt.Sprintf(`{"access_token":%q}`, testkit.JWT(fmt.Sprintf(`{"iat":%d,"exp":%d}`, iat.Unix(), exp.Unix())))
	}
	tests := []struct {
		name    string
		body    string
		date    string
		want    time.Time
		wantErr string
	}{
		// Date names a whole second, which may have been all but over.
		{"issued 50 minutes ago: 10 left, less a second", token(date.Add(-50*time.Minute), date.Add(10*time.Minute)), date.Format(http.TimeFormat), sent.Add(10*time.Minute - time.Second), ""},
		{"fresh: an hour, less a second", token(date, date.Add(time.Hour)), date.Format(http.TimeFormat), sent.Add(time.Hour - time.Second), ""},
		{"exp at Date", token(date.Add(-time.Hour), date), date.Format(http.TimeFormat), time.Time{}, "by Sentinel's own clock"},
		{"exp before Date", token(date.Add(-2*time.Hour), date.Add(-time.Hour)), date.Format(http.TimeFormat), time.Time{}, "by Sentinel's own clock"},
		{"exp a day and more past Date", token(date, date.Add(25*time.Hour)), date.Format(http.TimeFormat), time.Time{}, "longer than 24h"},
		{"expires_in wins", `{"access_token":"t","expires_in":120}`, date.Format(http.TimeFormat), sent.Add(2 * time.Minute), ""},
		{"no Date: exp - iat", token(date.Add(-50*time.Minute), date.Add(10*time.Minute)), "", sent.Add(time.Hour), ""},
		{"Date unparsable: exp - iat", token(date.Add(-50*time.Minute), date.Add(10*time.Minute)), "yesterday", sent.Add(time.Hour), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"Content-Type": {"application/json"}}
			if tt.date != "" {
				h.Set("Date", tt.date)
			}
			tok, err := Credentials{}.parse([]byte(tt.body), h, sent, now)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("got %v, %v; want an error containing %q", tok, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tok.Expiry.Equal(tt.want) {
				t.Errorf("Expiry = %v, want %v", tok.Expiry, tt.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	const secret = "fuzz-secret-do-not-show"
	f.Add([]byte(`{"access_token":"eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjQxMDI0NDQ4MDAsImlhdCI6NDEwMjQ0MTIwMH0.c2ln","token_type":"Bearer"}`))
	f.Add([]byte(`{"access_token":"x","expires_in":"3600"}`))
	f.Add([]byte(`{"access_token":"x","expires_in":3600,"error":""}`))
	f.Add([]byte(`{"error":"invalid_client","error_description":"` + secret + `"}`))
	f.Add([]byte(`<html>` + secret + `</html>`))
	f.Add([]byte(`{"access_token":"x","token_type":"` + secret[5:] + `"}`))
	f.Add([]byte(`{"access_token":"a.b.c"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		sent := time.Now()
		tok, err := Credentials{ClientSecret: secret}.parse(body, http.Header{"Content-Type": {"application/json"}}, sent, sent)
		if err != nil {
			if tok != nil {
				t.Errorf("got both a token and an error")
			}
			testkit.NoPiece(t, secret, 8, err.Error())
			return
		}
		if !lphttp.IsToken68(tok.AccessToken) || !tok.Expiry.After(sent) || tok.Expiry.After(sent.Add(jwt.MaxLifetime)) {
			t.Errorf("invalid token accepted: %+v", tok)
		}
	})
}

// The tests below send Fetch's request to the stand-in, faults and all.

func credentialsFor(s *appjwttest.Server) Credentials {
	return Credentials{AccountID: s.AccountID, ClientID: s.ClientID, ClientSecret: string(s.ClientSecret)}
}

// Each request goes to its API's path and carries each parameter once;
// v2 never puts the credentials in the URL, whatever InQuery says.
func TestCall(t *testing.T) {
	const params = "grant_type=client_credentials&client_id=id+1&client_secret="
	tests := []struct {
		name          string
		inQuery, v2   bool
		wantURL       string // as errors show it
		wantFormAfter string // the form, but for the escaped secret; "": no form
	}{
		{"v1", false, false, "https://h/sentinel/api/account/le%2F1/app/token?v=1.0", params},
		{"v1, InQuery", true, false, "https://h/sentinel/api/account/le%2F1/app/token?v=1.0&" + params + "REDACTED", ""},
		{"v2", false, true, "https://h/sentinel/api/v2/account/le%2F1/app/token", params},
		{"v2, InQuery", true, true, "https://h/sentinel/api/v2/account/le%2F1/app/token", params},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Credentials{AccountID: "le/1", ClientID: "id 1", ClientSecret: "s&3", InQuery: tt.inQuery, V2: tt.v2}
			cl := c.call("h")
			if got := cl.Safe.String(); got != tt.wantURL {
				t.Errorf("URL = %q, want %q", got, tt.wantURL)
			}
			wantForm := ""
			if tt.wantFormAfter != "" {
				wantForm = tt.wantFormAfter + url.QueryEscape(c.ClientSecret)
			}
			if cl.Form != wantForm {
				t.Errorf("form = %q, want %q", cl.Form, wantForm)
			}
			if sent := cl.URL.String(); tt.wantFormAfter != "" && sent != tt.wantURL {
				t.Errorf("URL sent = %q, want %q: no credentials in it", sent, tt.wantURL)
			}
			if cl.Method != http.MethodPost {
				t.Errorf("method = %s, want POST", cl.Method)
			}
		})
	}
}

// What reaches the stand-in: a POST of the form, the credentials in the
// form body or, for v1 when asked, in the query, each once.
func TestRequestOnTheWire(t *testing.T) {
	params := func(s *appjwttest.Server) map[string][]string {
		return map[string][]string{"grant_type": {"client_credentials"}, "client_id": {s.ClientID}, "client_secret": {string(s.ClientSecret)}}
	}
	none := func(*appjwttest.Server) map[string][]string { return map[string][]string{} }
	tests := []struct {
		name                string
		inQuery, v2         bool
		wantQuery, wantForm func(s *appjwttest.Server) map[string][]string
	}{
		{"v1: the form body", false, false, func(*appjwttest.Server) map[string][]string { return map[string][]string{"v": {"1.0"}} }, params},
		{"v1, InQuery: the query string", true, false, func(s *appjwttest.Server) map[string][]string {
			q := params(s)
			q["v"] = []string{"1.0"}
			return q
		}, none},
		{"v2: the form body, nothing in the URL", false, true, none, params},
		{"v2, InQuery: the form body still", true, true, none, params},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testkit.NewServer(t)
			c := credentialsFor(s)
			c.InQuery, c.V2 = tt.inQuery, tt.v2
			tok, _, err := Fetch(s.Context(context.Background()), s.Host(), c, testkit.FastRetry)
			if err != nil {
				t.Fatal(err)
			}
			endpoint, path := appjwttest.Sentinel, "/sentinel/api/account/"+s.AccountID+"/app/token"
			if tt.v2 {
				endpoint, path = appjwttest.SentinelV2Token, "/sentinel/api/v2/account/"+s.AccountID+"/app/token"
			}
			if _, err := s.Verify(endpoint, tok.AccessToken); err != nil {
				t.Errorf("issued token does not verify: %v", err)
			}
			reqs := s.Requests(endpoint)
			if len(reqs) != 1 {
				t.Fatalf("%v got %d requests, want 1", endpoint, len(reqs))
			}
			r := reqs[0]
			if got := []string{r.Method, r.Path, r.Header.Get("Content-Type")}; !slices.Equal(got, []string{"POST", path, "application/x-www-form-urlencoded"}) {
				t.Errorf("method, path, Content-Type = %q, want POST, %q, the form's", got, path)
			}
			if diff := cmp.Diff(tt.wantQuery(s), map[string][]string(r.Query)); diff != "" {
				t.Errorf("query mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantForm(s), map[string][]string(r.Form)); diff != "" {
				t.Errorf("form mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAccountCannotChangePath(t *testing.T) {
	for _, account := range []string{"a/../../x", "le1?x=y", "le1#frag", "%2e%2e", "a b", "../app/token"} {
		t.Run(account, func(t *testing.T) {
			s := testkit.NewServer(t)
			c := credentialsFor(s)
			c.AccountID = account
			Fetch(s.Context(context.Background()), s.Host(), c, testkit.FastRetry)
			reqs := s.Requests(appjwttest.Sentinel)
			if len(reqs) != 1 {
				t.Fatalf("Sentinel endpoint got %d requests, want 1 (the path was changed)", len(reqs))
			}
			got := reqs[0].Path
			if !strings.HasPrefix(got, "/sentinel/api/account/") || !strings.HasSuffix(got, "/app/token") || strings.Count(got, "/") != 6 {
				t.Errorf("path = %q, want one escaped account segment", got)
			}
		})
	}
}

// A strict OAuth 2.0 server, such as ory/fosite or Spring Authorization
// Server, reads the parameters of a token request from the form body
// only, and refuses one that comes twice, body and query together.
func TestStrictServerTakesTheRequest(t *testing.T) {
	const secret = "s3cret-value"
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		for _, p := range []string{"grant_type", "client_id", "client_secret"} {
			if len(r.Form[p]) != 1 || len(r.PostForm[p]) != 1 {
				http.Error(w, `{"error":"invalid_request","error_description":"`+p+` must be in the body, once"}`, http.StatusBadRequest)
				return
			}
		}
		if r.PostForm.Get("grant_type") != "client_credentials" || r.PostForm.Get("client_secret") != secret {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"opaque","token_type":"Bearer","expires_in":3600}`)
	}))
	defer ts.Close()
	c := Credentials{AccountID: "le1", ClientID: "id", ClientSecret: secret}
	if _, _, err := Fetch(testkit.Client(ts), ts.Listener.Addr().String(), c, testkit.FastRetry); err != nil {
		t.Errorf("Fetch from a strict server: %v", err)
	}
}

// fetchWithFault makes Sentinel always answer with f and returns the
// error of one Fetch, failing the test if there is none.
func fetchWithFault(t *testing.T, f appjwttest.Fault) (*appjwttest.Server, error) {
	t.Helper()
	s := testkit.NewServer(t)
	s.SetFault(appjwttest.Sentinel, f)
	_, _, err := Fetch(s.Context(context.Background()), s.Host(), credentialsFor(s), testkit.FastRetry)
	if err == nil {
		t.Fatal("Fetch succeeded, want an error")
	}
	return s, err
}

func TestFetchErrors(t *testing.T) {
	big := `{"access_token":"` + strings.Repeat("a", MaxBody) + `"}`
	tests := []struct {
		name         string
		fault        appjwttest.Fault
		wantStatus   int // of the *oauth2.RetrieveError; 0: none wanted
		wantCode     string
		wantErr      string
		wantRequests int
	}{
		{"401 not retried", appjwttest.Fault{Status: 401, Body: `{"error":"invalid_client"}`}, 401, "invalid_client", "401 Unauthorized", 1},
		{"400 not retried", appjwttest.Fault{Status: 400, Body: "bad request"}, 400, "", "400 Bad Request", 1},
		{"404 HTML not retried", appjwttest.Fault{Status: 404, Body: "<html>Not Found</html>"}, 404, "", "404 Not Found", 1},
		{"error field with 200", appjwttest.Fault{Body: `{"error":"unauthorized_client","error_description":"nope"}`}, 200, "unauthorized_client", "with an error", 1},
		{"HTML with 200", appjwttest.Fault{Body: "<html>maintenance</html>"}, 0, "", "not a token", 1},
		{"oversized answer", appjwttest.Fault{Body: big}, 0, "", "larger than", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := fetchWithFault(t, tt.fault)
			if !strings.HasPrefix(err.Error(), "token request for account") || !strings.Contains(err.Error(), s.Host()) {
				t.Errorf("error %q does not say what failed and where", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			var re *oauth2.RetrieveError
			switch {
			case tt.wantStatus == 0 && errors.As(err, &re):
				t.Errorf("error is a RetrieveError, want another error")
			case tt.wantStatus != 0 && !errors.As(err, &re):
				t.Errorf("error %v is not an *oauth2.RetrieveError", err)
			case tt.wantStatus != 0:
				if got := re.Response.StatusCode; got != tt.wantStatus {
					t.Errorf("RetrieveError status = %d, want %d", got, tt.wantStatus)
				}
				if got := re.ErrorCode; got != tt.wantCode {
					t.Errorf("RetrieveError.ErrorCode = %q, want %q", got, tt.wantCode)
				}
			}
			if got := len(s.Requests(appjwttest.Sentinel)); got != tt.wantRequests {
				t.Errorf("Sentinel got %d requests, want %d", got, tt.wantRequests)
			}
			testkit.NoEcho(t, string(s.ClientSecret), testkit.ErrorTexts(err)...)
		})
	}
}

func TestErrorsAreOneLine(t *testing.T) {
	for _, status := range []int{400, 401, 503} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			_, err := fetchWithFault(t, appjwttest.Fault{Status: status})
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is not one line", err)
			}
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) || re.Response.StatusCode != status {
				t.Errorf("error %v, want a RetrieveError with status %d", err, status)
			}
		})
	}
}

func TestRetriesInsideOneFetch(t *testing.T) {
	tests := []struct {
		name         string
		faults       []appjwttest.Fault
		wantErr      bool
		wantRequests int
	}{
		{"503 then success", []appjwttest.Fault{{Status: 503}}, false, 2},
		{"429 with Retry-After then success", []appjwttest.Fault{{Status: 429, RetryAfter: "1"}}, false, 2},
		{"reset then success", []appjwttest.Fault{{Reset: true}}, false, 2},
		{"three 5xx then success", []appjwttest.Fault{{Status: 500}, {Status: 502}, {Status: 504}}, false, 4},
		{"four 503: gives up", []appjwttest.Fault{{Status: 503}, {Status: 503}, {Status: 503}, {Status: 503}}, true, 4},
		{"400 is final", []appjwttest.Fault{{Status: 400}}, true, 1},
		{"403 is final", []appjwttest.Fault{{Status: 403}}, true, 1},
		{"429 then success", []appjwttest.Fault{{Status: 429}}, false, 2},
		{"429 always: gives up", slices.Repeat([]appjwttest.Fault{{Status: 429}}, 4), true, 4},
		{"500 always: gives up", slices.Repeat([]appjwttest.Fault{{Status: 500}}, 4), true, 4},
		{"reset always: gives up", slices.Repeat([]appjwttest.Fault{{Reset: true}}, 4), true, 4},
		{"malformed body is final", []appjwttest.Fault{{Body: `{"access_token":`}}, true, 1},
		{"slow answer", []appjwttest.Fault{{Delay: 100 * time.Millisecond}}, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testkit.NewServer(t)
			s.QueueFaults(appjwttest.Sentinel, tt.faults...)
			_, attempts, err := Fetch(s.Context(context.Background()), s.Host(), credentialsFor(s), testkit.FastRetry)
			if (err != nil) != tt.wantErr {
				t.Errorf("error = %v, want error: %v", err, tt.wantErr)
			}
			if got := len(s.Requests(appjwttest.Sentinel)); got != tt.wantRequests || attempts != got {
				t.Errorf("Sentinel got %d requests, Fetch says %d; want %d", got, attempts, tt.wantRequests)
			}
		})
	}
}

func TestRetryStopsAtDeadline(t *testing.T) {
	s := testkit.NewServer(t)
	s.QueueFaults(appjwttest.Sentinel, appjwttest.Fault{Status: 503, RetryAfter: "10"})
	ctx, cancel := context.WithTimeout(s.Context(context.Background()), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := Fetch(ctx, s.Host(), credentialsFor(s), lphttp.Default)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response.StatusCode != 503 {
		t.Errorf("error = %v, want the 503 answer", err)
	}
	if d := time.Since(start); d > 400*time.Millisecond {
		t.Errorf("took %v: waited for a retry that could not fit the deadline", d)
	}
}

func TestSecretNeverShowsInErrors(t *testing.T) {
	s := testkit.NewServer(t)
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	deadHost := closed.Addr().String()
	closed.Close()
	for _, api := range []struct{ inQuery, v2 bool }{{false, false}, {true, false}, {false, true}} {
		c := credentialsFor(s)
		c.InQuery, c.V2 = api.inQuery, api.v2
		endpoint := appjwttest.Sentinel
		if api.v2 {
			endpoint = appjwttest.SentinelV2Token
		}
		ctx := s.Context(context.Background())
		var errs []error
		for _, f := range []appjwttest.Fault{{Status: 401}, {Status: 500}, {Reset: true}, {Body: "{"}} {
			s.QueueFaults(endpoint, f, f, f, f)
			_, _, err := Fetch(ctx, s.Host(), c, testkit.FastRetry)
			errs = append(errs, err)
		}
		_, _, err := Fetch(ctx, deadHost, c, testkit.FastRetry)
		errs = append(errs, err)
		s.QueueFaults(endpoint, appjwttest.Fault{Hang: true})
		hung, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		_, _, err = Fetch(hung, s.Host(), c, testkit.FastRetry)
		cancel()
		errs = append(errs, err)

		for _, err := range errs {
			if err == nil {
				t.Fatal("got no error")
			}
			testkit.NoEcho(t, string(s.ClientSecret), testkit.ErrorTexts(err)...)
			var re *oauth2.RetrieveError
			if errors.As(err, &re) {
				testkit.NoEcho(t, string(s.ClientSecret), re.Response.Request.URL.String())
				if re.Response.Request.GetBody != nil || re.Response.Request.Body != nil {
					t.Error("RetrieveError.Response.Request keeps a body")
				}
			}
		}
	}
}

func TestRetrieveErrorBodyIsCappedAndScrubbed(t *testing.T) {
	s := testkit.NewServer(t)
	s.SetFault(appjwttest.Sentinel, appjwttest.Fault{Status: 401, Body: "bad secret " + string(s.ClientSecret) + strings.Repeat("x", 10000)})
	_, _, err := Fetch(s.Context(context.Background()), s.Host(), credentialsFor(s), testkit.FastRetry)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("error %v is not an *oauth2.RetrieveError", err)
	}
	if len(re.Body) > MaxErrorBody {
		t.Errorf("RetrieveError.Body has %d bytes, want at most %d", len(re.Body), MaxErrorBody)
	}
	testkit.NoEcho(t, string(s.ClientSecret), testkit.ErrorTexts(err)...)
}

// The tests below hold the promises a hostile or broken server tests:
// echoed secrets, odd status lines and bodies.

// fetchFrom returns the error of one Fetch with secret from ts, which
// stands for Sentinel.
func fetchFrom(t *testing.T, ts *httptest.Server, secret string, inQuery bool) error {
	t.Helper()
	c := Credentials{AccountID: "le1", ClientID: "id", ClientSecret: secret, InQuery: inQuery}
	ctx, cancel := context.WithTimeout(testkit.Client(ts), 2*time.Second)
	defer cancel()
	_, _, err := Fetch(ctx, ts.Listener.Addr().String(), c, testkit.FastRetry)
	if err == nil {
		t.Fatal("Fetch succeeded, want an error")
	}
	return err
}

func TestEchoedSecretIsWithheld(t *testing.T) {
	locations := []struct {
		name    string
		inQuery bool
		answer  func(echo string) (int, http.Header, string)
	}{
		{"error_description", false, func(e string) (int, http.Header, string) {
			return 401, nil, `{"error":"invalid_client","error_description":"unknown client_secret ` + e + `"}`
		}},
		{"error code", false, func(e string) (int, http.Header, string) { return 400, nil, `{"error":"` + e + `"}` }},
		{"error_uri", false, func(e string) (int, http.Header, string) {
			return 401, nil, `{"error":"invalid_client","error_uri":"https://x/?s=` + e + `"}`
		}},
		{"text body", false, func(e string) (int, http.Header, string) { return 400, nil, "bad secret " + e }},
		{"HTML body", false, func(e string) (int, http.Header, string) {
			return 403, nil, "<html><body>" + strings.Repeat("x", MaxErrorBody-20) + e + "</body></html>"
		}},
		{"error in a 200", false, func(e string) (int, http.Header, string) {
			return 200, nil, `{"error":"invalid_client","error_description":"` + e + `"}`
		}},
		{"header", false, func(e string) (int, http.Header, string) { return 401, http.Header{"X-Echo": {"secret=" + e}}, "" }},
		{"Location in query mode", true, func(e string) (int, http.Header, string) {
			return 302, http.Header{"Location": {"https://elsewhere.example/?client_secret=" + e}}, ""
		}},
	}
	for _, secret := range testkit.FixedSecrets {
		for _, loc := range locations {
			for form, echo := range testkit.EchoForms(secret) {
				t.Run(secret+"/"+loc.name+"/"+form, func(t *testing.T) {
					status, header, body := loc.answer(echo)
					err := fetchFrom(t, testkit.EchoServer(t, status, header, body), secret, loc.inQuery)
					var re *oauth2.RetrieveError
					// A 200 whose echo broke its JSON is no RetrieveError.
					if (status != 200 || json.Valid([]byte(body))) && (!errors.As(err, &re) || re.Response.StatusCode != status) {
						t.Errorf("error %v, want a RetrieveError with status %d", err, status)
					}
					testkit.NoEcho(t, secret, testkit.ErrorTexts(err)...)
				})
			}
		}
	}
}

func TestWithheldFieldsKeepTheRest(t *testing.T) {
	const secret = "Ab/Cd+Ef0="
	body := `{"error":"invalid_client","error_description":"unknown client_secret Ab\/Cd+Ef0="}`
	err := fetchFrom(t, testkit.EchoServer(t, 401, http.Header{"Www-Authenticate": {"Basic"}, "X-Echo": {secret}}, body), secret, false)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("error %v is not a RetrieveError", err)
	}
	got := []string{re.ErrorCode, re.ErrorDescription, string(re.Body), re.Response.Header.Get("WWW-Authenticate"), re.Response.Header.Get("X-Echo")}
	want := []string{"invalid_client", WithheldText, WithheldText, "Basic", ""}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("RetrieveError fields mismatch (-want +got):\n%s", diff)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q is not one line", err)
	}
}

// raw is a fixed answer for testkit.RawServer.
func raw(s string) func(*http.Request) string { return func(*http.Request) string { return s } }

func TestStatusLineIsRebuilt(t *testing.T) {
	const secret = "Ab/Cd+Ef0="
	tests := []struct {
		name, answer string
		wantStatus   int // of the RetrieveError; 0: none
	}{
		{"reason phrase", "HTTP/1.1 401 bad secret " + secret + "\r\nContent-Length: 0\r\n\r\n", 401},
		{"encoded reason phrase", "HTTP/1.1 400 bad secret " + url.QueryEscape(secret) + "\r\nContent-Length: 0\r\n\r\n", 400},
		{"malformed status line", "HTTP/1.1 4x1 " + secret + "\r\n\r\n", 0},
		{"malformed header", "HTTP/1.1 401 Unauthorized\r\nX-Echo " + secret + "\r\n\r\n", 0},
	}
	for _, tt := range tests {
		for _, inQuery := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/query=%v", tt.name, inQuery), func(t *testing.T) {
				ts, _ := testkit.RawServer(t, raw(tt.answer))
				err := fetchFrom(t, ts, secret, inQuery)
				var re *oauth2.RetrieveError
				got := errors.As(err, &re)
				if got != (tt.wantStatus != 0) || got && re.Response.StatusCode != tt.wantStatus {
					t.Errorf("error %v, want a RetrieveError: %v (status %d)", err, tt.wantStatus != 0, tt.wantStatus)
				}
				if got && re.Response.Status != lphttp.StatusLine(tt.wantStatus) {
					t.Errorf("Response.Status = %q, want %q", re.Response.Status, lphttp.StatusLine(tt.wantStatus))
				}
				testkit.NoEcho(t, secret, testkit.ErrorTexts(err)...)
			})
		}
	}
}

func TestFinalStatusWithBrokenBodyIsNotRetried(t *testing.T) {
	tests := []struct {
		name         string
		answer       string
		wantStatus   int
		wantRequests int32
	}{
		{"401 short body", "HTTP/1.1 401 Unauthorized\r\nContent-Length: 100\r\n\r\n{\"error\":\"invalid_cl", 401, 1},
		{"400 broken chunks", "HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", 400, 1},
		{"503 short body is retried", "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 100\r\n\r\nshort", 0, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, n := testkit.RawServer(t, raw(tt.answer))
			err := fetchFrom(t, ts, "s3cret", false)
			var re *oauth2.RetrieveError
			if got := errors.As(err, &re); got != (tt.wantStatus != 0) || got && re.Response.StatusCode != tt.wantStatus {
				t.Errorf("error %v, want a RetrieveError: %v (status %d)", err, tt.wantStatus != 0, tt.wantStatus)
			}
			if got := n.Load(); got != tt.wantRequests {
				t.Errorf("%d requests, want %d", got, tt.wantRequests)
			}
		})
	}
}

func TestEchoCutByTheBodyCap(t *testing.T) {
	const secret = "Ab/Cd+Ef0="
	enc := secret[:len(secret)-1] + "&#61" // "&#61" is "=", but "&#619;" is not
	body := strings.Repeat("x", MaxErrorBody-len(enc)) + enc + "9;" + strings.Repeat("y", 200)
	err := fetchFrom(t, testkit.EchoServer(t, 400, nil, body), secret, false)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatal(err)
	}
	if redact.Echoes(string(re.Body), secret) {
		t.Errorf("Body echoes the secret: ...%q", re.Body[len(re.Body)-20:])
	}
}

func TestSecretSplitAcrossHeaderValues(t *testing.T) {
	const secret = "p a+s%s"
	err := fetchFrom(t, testkit.EchoServer(t, 401, http.Header{"X-Echo": {"p", "a+s%s"}, "X-Kept": {"1"}}, ""), secret, false)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatal(err)
	}
	testkit.NoEcho(t, secret, fmt.Sprintf("%v", re.Response.Header), fmt.Sprintf("%+v", *re.Response))
	if got := re.Response.Header.Get("X-Kept"); got != "1" {
		t.Errorf("X-Kept = %q, want the header that did not echo kept", got)
	}
}

func TestGoQuotedEchoIsWithheld(t *testing.T) {
	for _, secret := range []string{"Ab\x7fCd", "Ab\vCd", "Ab\U000E0041Cd", "Ab\xffCd"} {
		t.Run(fmt.Sprintf("%q", secret), func(t *testing.T) {
			ts, _ := testkit.RawServer(t, raw("HTTP/1.1 "+secret+" x\r\n\r\n"))
			err := fetchFrom(t, ts, secret, false)
			quoted := strings.Trim(fmt.Sprintf("%q", secret), `"`)
			for _, s := range testkit.ErrorTexts(err) {
				if strings.Contains(s, quoted) || strings.Contains(s, secret) {
					t.Errorf("Go-quoted secret in %q", s)
				}
			}
		})
	}
}

// BenchmarkFailedAnswer is the cost of the error of a failed answer of
// 1 KiB and of 1 MiB (MaxBody) that echoes no secret: the whole answer
// searched under up to three layers of encoding, and what is kept of it
// as fmt and encoding/json print it. Each kind of answer takes all three
// layers: an error_description that echoes the request (without the
// secret) with each byte percent-encoded, then each character as an HTML
// reference, then as a JSON \u escape, which leaves no byte to cut the
// answer at; an HTML page with entities, percent-encoded links and
// backslashes on every line; and escapes crafted to make every order of
// decoding give another text, the worst found.
func BenchmarkFailedAnswer(b *testing.B) {
	c := Credentials{AccountID: "le1", ClientID: "id", ClientSecret: "Kq7ZrAbCdEfGhIjKlMnOpQrStUvWxYz0"}
	answers := map[string]func(i int) string{
		"stacked": func(i int) string {
			return testkit.Stacked(fmt.Sprintf("client_id=%d&grant_type=client_credentials ", i))
		},
		"HTML": func(i int) string {
			return fmt.Sprintf(`<p class="e%d">Error &#8212; see <a href="/help?q=%d%%20x+y&amp;s=1">help</a> C:\dir\%d</p>`+"\n", i, i, i)
		},
		"crafted": func(i int) string {
			return fmt.Sprintf(`a%%255C%%2526%%2525%%5Cu0026\u0025\u005c&#37;&#92;&amp;amp;%%26amp;\\u0025%x`, i)
		},
	}
	for _, kind := range []string{"stacked", "HTML", "crafted"} {
		for _, size := range []int{1 << 10, MaxBody} {
			var body strings.Builder
			for i := 0; body.Len() < size; i++ {
				body.WriteString(answers[kind](i))
			}
			text := body.String()[:size]
			if kind == "stacked" {
				text = `{"error_description":"` + text[:size-25] + `"}`
			}
			rep := &lphttp.Reply{Resp: &http.Response{StatusCode: 400, Status: "400 Bad Request", Header: http.Header{}}, Body: []byte(text)}
			b.Run(fmt.Sprintf("%s/%dKiB", kind, size>>10), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					var re *oauth2.RetrieveError
					if err := c.retrieveError(rep, rep.Resp.Status); !errors.As(err, &re) || string(re.Body) == WithheldText {
						b.Fatalf("got %v, want a RetrieveError that withholds nothing", err)
					}
				}
			})
		}
	}
}

// The tests below hold the rule that an error shows a server's text whole
// or not at all: no part of an echoed secret, however it is encoded,
// wherever the answer is cut, and however the error is printed.

// longSecret is 32 bytes, as long as the secrets an attack review used.
const longSecret = "Kq7ZrWx2Lm9PbT4vNc8HsY3jFd6QgA1e"

func TestNoServerTextInPart(t *testing.T) {
	long := strings.Repeat("x", maxErrorField+44)
	tests := []struct {
		name    string
		status  int
		header  http.Header
		body    string
		want    string // in the error's text
		wantOut string // not in it
	}{
		{"token_type that is the secret", 200, nil, `{"access_token":"t","token_type":"` + longSecret + `"}`, "token_type (not shown) is not Bearer", ""},
		{"token_type that is a piece of the secret", 200, nil, `{"access_token":"t","token_type":"` + longSecret[:20] + `"}`, "token_type (not shown) is not Bearer", ""},
		{"token_type that is a piece of the secret in capitals", 200, nil, `{"access_token":"t","token_type":"` + strings.ToUpper(longSecret[3:15]) + `"}`, "token_type (not shown) is not Bearer", ""},
		{"token_type that holds a piece of the secret", 200, nil, `{"access_token":"t","token_type":"mac-` + longSecret[10:18] + `"}`, "token_type (not shown) is not Bearer", ""},
		{"token_type that is long", 200, nil, `{"access_token":"t","token_type":"` + strings.Repeat("a", 41) + `"}`, "token_type (not shown) is not Bearer", ""},
		{"token_type of its own", 200, nil, `{"access_token":"t","token_type":"mac"}`, `token_type "mac" is not Bearer`, ""},
		{"Content-Type that is the secret", 200, http.Header{"Content-Type": {"text/" + longSecret}}, "<html>", "(Content-Type (not shown)): not JSON at byte 1 of 6", ""},
		{"long answer", 400, nil, long, "400 Bad Request: answer of 300 bytes", "xxx"},
		{"long error_description", 400, nil, `{"error":"invalid_request","error_description":"` + long + `"}`, `oauth2: "invalid_request" "[withheld: 300 bytes, more than 256]"`, "xxx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := fetchFrom(t, testkit.EchoServer(t, tt.status, tt.header, tt.body), longSecret, false)
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if tt.wantOut != "" && strings.Contains(err.Error(), tt.wantOut) {
				t.Errorf("error %q quotes part of the answer", err)
			}
			testkit.NoPiece(t, longSecret, 8, testkit.ErrorTexts(err)...)
		})
	}
}

// An echo the body cap cuts in two, under encodings far longer than the
// secret, is found: the whole answer is searched.
func TestEchoStraddlingTheCut(t *testing.T) {
	zeros := func(s string) string { // HTML references padded with zeros: as long as one likes
		var b strings.Builder
		for _, r := range s {
			fmt.Fprintf(&b, "&#%050d;", r)
		}
		return b.String()
	}
	for name, enc := range map[string]string{"stacked": testkit.Stacked(longSecret), "zero-padded": zeros(longSecret)} {
		t.Run(name, func(t *testing.T) {
			// The echo starts 24 bytes in and runs well past the cap.
			body := "<p>" + strings.Repeat("y", 21) + enc + " " + strings.Repeat("z", MaxErrorBody)
			err := fetchFrom(t, testkit.EchoServer(t, 400, nil, body), longSecret, false)
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) {
				t.Fatalf("error %v is not a RetrieveError", err)
			}
			for n := 8; n <= len(longSecret); n++ {
				if redact.Echoes(string(re.Body), longSecret[:n]) {
					t.Fatalf("Body holds the first %d bytes of the secret, encoded", n)
				}
			}
			testkit.NoEcho(t, longSecret, testkit.ErrorTexts(err)...)
		})
	}
}

// A secret that holds a backslash sequence, echoed with that sequence
// decoded (a JSON \n for a newline), must not come back as fmt or
// encoding/json quote the field it is in.
func TestQuotingMakesNoSecret(t *testing.T) {
	tests := []struct{ secret, echo string }{
		{`Kq7\nZr4`, `Kq7\nZr4`},         // a newline, as fmt quotes it
		{`Kq7\u00e9Zr4`, `Kq7\u00e9Zr4`}, // an é, as %+q quotes it
		{`Kq7\u003cZr4`, `Kq7<Zr4`},      // a '<', as encoding/json escapes it
		{`Kq7\"Zr4`, `Kq7\"Zr4`},         // a quote
		{`Kq7\x00Zr4`, `Kq7\u0000Zr4`},   // a NUL, as fmt quotes it
	}
	for _, tt := range tests {
		for _, withCode := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/code=%v", tt.secret, withCode), func(t *testing.T) {
				body := `{"error_description":"` + tt.echo + `"}`
				if withCode {
					body = `{"error":"invalid_client","error_uri":"` + tt.echo + `"}`
				}
				err := fetchFrom(t, testkit.EchoServer(t, 400, nil, body), tt.secret, false)
				for _, s := range testkit.ErrorTexts(err) {
					if strings.Contains(s, tt.secret) {
						t.Errorf("the secret shows in %q", s)
					}
				}
			})
		}
	}
}

// A server that quotes the request cut short, as a proxy or a parser's
// error may: no run of redact.MinRun bytes of the secret shows.
func TestTruncatedEchoIsWithheld(t *testing.T) {
	const secret = "Kq7ZrT9vW2xY4bN6mP8sD1fG3hJ5kL0a" // 32 bytes, as LivePerson's
	for _, where := range []string{"error_description", "body"} {
		t.Run(where, func(t *testing.T) {
			ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				// The form up to the secret's last 3 bytes: 29 of its 32.
				i := strings.Index(string(b), "client_secret=") + len("client_secret=") + len(secret) - 3
				echo := string(b[:i])
				w.WriteHeader(http.StatusBadRequest)
				if where == "body" {
					io.WriteString(w, "bad request: "+echo)
					return
				}
				json.NewEncoder(w).Encode(map[string]string{"error": "invalid_request", "error_description": "cannot parse " + echo})
			}))
			t.Cleanup(ts.Close)
			err := fetchFrom(t, ts, secret, false)
			for _, text := range testkit.ErrorTexts(err) {
				for i := 0; i+redact.MinRun <= len(secret); i++ {
					if strings.Contains(text, secret[i:i+redact.MinRun]) {
						t.Fatalf("%q of the secret shows in %q", secret[i:i+redact.MinRun], text)
					}
				}
			}
		})
	}
}
