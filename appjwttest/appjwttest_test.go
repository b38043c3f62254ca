package appjwttest_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lpconnect/appjwt/appjwttest"
	"golang.org/x/oauth2"
)

// newServer starts a server that the test closes, with its fields set by
// configure, if any.
func newServer(t *testing.T, configure ...func(*appjwttest.Server)) *appjwttest.Server {
	s := appjwttest.NewUnstartedServer()
	for _, f := range configure {
		f(s)
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func do(t *testing.T, s *appjwttest.Server, method, path, contentType, body string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

const form = "application/x-www-form-urlencoded"

func tokenPath(s *appjwttest.Server) string {
	return "/sentinel/api/account/" + s.AccountID + "/app/token?v=1.0&grant_type=client_credentials"
}

func creds(s *appjwttest.Server) string {
	return url.Values{"client_id": {s.ClientID}, "client_secret": {string(s.ClientSecret)}}.Encode()
}

func fetchToken(t *testing.T, s *appjwttest.Server) string {
	t.Helper()
	resp, body := do(t, s, "POST", tokenPath(s), form, creds(s), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("token request: %s %s", resp.Status, body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := json.Unmarshal([]byte(body), &tok); err != nil || tok.TokenType != "Bearer" {
		t.Fatalf("token answer %q: %v", body, err)
	}
	return tok.AccessToken
}

// claims are the decoded claims of a JWT.
func claims(t *testing.T, tok string) map[string]any { return jwtPart(t, tok, 1) }

// jwtPart is the i-th part of a JWT, decoded: 0 the JOSE header, 1 the
// claims.
func jwtPart(t *testing.T, tok string, i int) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDomainAPI(t *testing.T) {
	s := newServer(t)
	tests := []struct {
		path       string
		wantStatus int
		wantBase   string
	}{
		{"/api/account/" + s.AccountID + "/service/sentinel/baseURI.json?version=1.0", 200, s.Host()},
		{"/api/account/" + s.AccountID + "/service/asyncMessagingEnt/baseURI.json?version=1.0", 200, s.Host()},
		{"/api/account/" + s.AccountID + "/service/Sentinel/baseURI.json?version=1.0", 404, ""},
		{"/api/account/other/service/sentinel/baseURI.json?version=1.0", 401, ""},
		{"/api/account/" + s.AccountID + "/service/sentinel/baseURI.json", 400, ""},
	}
	for _, tt := range tests {
		resp, body := do(t, s, "GET", tt.path, "", "", nil)
		if resp.StatusCode != tt.wantStatus {
			t.Errorf("GET %s: status %d, want %d", tt.path, resp.StatusCode, tt.wantStatus)
			continue
		}
		var got struct{ BaseURI string }
		json.Unmarshal([]byte(body), &got)
		if got.BaseURI != tt.wantBase {
			t.Errorf("GET %s: baseURI %q, want %q", tt.path, got.BaseURI, tt.wantBase)
		}
	}
	if got := len(s.Requests(appjwttest.DomainAPI)); got != len(tests) {
		t.Errorf("requests to DomainAPI = %d, want %d", got, len(tests))
	}
}

func TestSentinelIssuesAppJWT(t *testing.T) {
	s := newServer(t, func(s *appjwttest.Server) { s.Lifetime = 10 * time.Minute })
	before := time.Now().Unix()
	tok := fetchToken(t, s)
	if _, err := s.Verify(appjwttest.Sentinel, tok); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	c := claims(t, tok)
	iat, exp := int64(c["iat"].(float64)), int64(c["exp"].(float64))
	if jti, _ := c["jti"].(string); jti == "" {
		t.Errorf("jti = %v, want a string", c["jti"])
	}
	delete(c, "iat")
	delete(c, "exp")
	delete(c, "jti")
	want := map[string]any{"aud": s.AccountID, "azp": s.ClientID, "scope": "msg.consumer", "iss": "Sentinel"}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("claims mismatch (-want +got):\n%s", diff)
	}
	if iat < before || exp-iat != 600 {
		t.Errorf("iat %d, exp %d: want iat >= %d and a 600s lifetime", iat, exp, before)
	}
	// Tampering breaks the signature.
	parts := strings.Split(tok, ".")
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"aud":"`+s.AccountID+`","azp":"`+s.ClientID+`","exp":9999999999}`)) + "." + parts[2]
	if _, err := s.Verify(appjwttest.Sentinel, forged); err == nil {
		t.Error("Verify accepted a forged token")
	}
}

func TestSentinelChecksRequest(t *testing.T) {
	s := newServer(t)
	query := tokenPath(s) + "&" + creds(s)
	wrong := url.Values{"client_id": {s.ClientID}, "client_secret": {"wrong"}}.Encode()
	tests := []struct {
		name, method, path, contentType, body string
		want                                  int
	}{
		{"body credentials", "POST", tokenPath(s), form, creds(s), 200},
		{"query credentials", "POST", query, form, "", 200},
		{"wrong secret", "POST", tokenPath(s), form, wrong, 401},
		{"no credentials", "POST", tokenPath(s), form, "", 401},
		{"wrong account", "POST", strings.Replace(tokenPath(s), s.AccountID, "le0", 1), form, creds(s), 401},
		{"no grant_type", "POST", "/sentinel/api/account/" + s.AccountID + "/app/token?v=1.0", form, creds(s), 400},
		{"grant_type in the body", "POST", "/sentinel/api/account/" + s.AccountID + "/app/token?v=1.0", form, "grant_type=client_credentials&" + creds(s), 200},
		{"another grant_type in the body", "POST", "/sentinel/api/account/" + s.AccountID + "/app/token?v=1.0", form, "grant_type=password&" + creds(s), 400},
		{"JSON body", "POST", tokenPath(s), "application/json", `{}`, 400},
		{"GET", "GET", tokenPath(s), "", "", 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, s, tt.method, tt.path, tt.contentType, tt.body, nil)
			if resp.StatusCode != tt.want {
				t.Errorf("status %d (%s), want %d", resp.StatusCode, body, tt.want)
			}
		})
	}
}

func TestFaults(t *testing.T) {
	s := newServer(t)
	s.QueueFaults(appjwttest.Sentinel,
		appjwttest.Fault{Status: 503, RetryAfter: "7"},
		appjwttest.Fault{Body: "<html>"},
		appjwttest.Fault{Delay: 50 * time.Millisecond},
	)
	resp, _ := do(t, s, "POST", tokenPath(s), form, creds(s), nil)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "7" {
		t.Errorf("first fault: %s, Retry-After %q; want 503 and 7", resp.Status, resp.Header.Get("Retry-After"))
	}
	if resp, body := do(t, s, "POST", tokenPath(s), form, creds(s), nil); resp.StatusCode != 200 || body != "<html>" {
		t.Errorf("second fault: %s %q, want 200 <html>", resp.Status, body)
	}
	start := time.Now()
	if resp, _ := do(t, s, "POST", tokenPath(s), form, creds(s), nil); resp.StatusCode != 200 || time.Since(start) < 50*time.Millisecond {
		t.Errorf("delay fault: %s after %v, want 200 after 50ms", resp.Status, time.Since(start))
	}
	s.SetFault(appjwttest.Sentinel, appjwttest.Fault{Status: 500})
	for range 3 {
		if resp, _ := do(t, s, "POST", tokenPath(s), form, creds(s), nil); resp.StatusCode != 500 {
			t.Errorf("sticky fault: %s, want 500", resp.Status)
		}
	}
	s.ClearFault(appjwttest.Sentinel)
	fetchToken(t, s)
	if got := len(s.Requests(appjwttest.Sentinel)); got != 7 {
		t.Errorf("requests to Sentinel = %d, want 7", got)
	}

	s.QueueFaults(appjwttest.Sentinel, appjwttest.Fault{Reset: true})
	req, _ := http.NewRequest("POST", s.URL()+tokenPath(s), strings.NewReader(creds(s)))
	req.Header.Set("Content-Type", form)
	if _, err := s.Client().Do(req); err == nil {
		t.Error("reset fault: got an answer, want a connection error")
	}
}

func TestHangEndsWithClientOrServer(t *testing.T) {
	s := appjwttest.NewServer()
	s.SetFault(appjwttest.Sentinel, appjwttest.Fault{Hang: true})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", s.URL()+tokenPath(s), strings.NewReader(creds(s)))
	req.Header.Set("Content-Type", form)
	if _, err := s.Client().Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hang: error %v, want the client's deadline", err)
	}
	// Under load the deadline may pass before the request reaches the
	// server: count from what it got.
	n := len(s.Requests(appjwttest.Sentinel))
	go func() {
		req, _ := http.NewRequest("POST", s.URL()+tokenPath(s), strings.NewReader(creds(s)))
		req.Header.Set("Content-Type", form)
		s.Client().Do(req)
	}()
	for len(s.Requests(appjwttest.Sentinel)) <= n {
		time.Sleep(time.Millisecond)
	}
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end a hanging request")
	}
}

func TestConsumerChecksAppJWT(t *testing.T) {
	s := newServer(t)
	bearer := newServer(t, func(s *appjwttest.Server) { s.AcceptBearer = true })
	toks := map[*appjwttest.Server]string{s: fetchToken(t, s), bearer: fetchToken(t, bearer)}
	path := "/api/account/" + s.AccountID + "/consumer?v=1.0"
	body := `{"ext_consumer_id":"c1"}`
	tests := []struct {
		name, path, auth string // TOKEN in auth: an AppJWT of the server
		acceptBearer     bool
		want, wantCode   int
	}{
		{"raw token", path, "TOKEN", false, 201, 0},
		{"bearer token", path, "Bearer TOKEN", false, 401, 40102},
		{"missing", path, "", false, 401, 40105},
		{"garbage", path, "nope", false, 401, 40102},
		{"no version: taken, with a note (see TestFidelity)", "/api/account/" + s.AccountID + "/consumer", "TOKEN", false, 201, 0},
		{"other version", "/api/account/" + s.AccountID + "/consumer?v=2", "TOKEN", false, 400, 40001},
		{"other account", "/api/account/le0/consumer?v=1.0", "TOKEN", false, 401, 40102},
		{"raw token, Bearer accepted", path, "TOKEN", true, 201, 0},
		{"bearer token, Bearer accepted", path, "Bearer TOKEN", true, 201, 0},
		{"lower-case scheme, Bearer accepted", path, "bearer TOKEN", true, 201, 0},
		{"bearer nothing, Bearer accepted", path, "Bearer ", true, 401, 40105},
		{"bearer garbage, Bearer accepted", path, "Bearer nope", true, 401, 40102},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := s
			if tt.acceptBearer {
				s = bearer
			}
			tok := toks[s]
			h := http.Header{}
			if tt.auth != "" {
				h.Set("Authorization", strings.ReplaceAll(tt.auth, "TOKEN", tok))
			}
			resp, got := do(t, s, "POST", tt.path, "application/json", body, h)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, got, tt.want)
			}
			if code := lpError(got); code != tt.wantCode {
				t.Errorf("errorCode %d, want %d", code, tt.wantCode)
			}
			if strings.Contains(got, tok) && tt.want != 201 {
				t.Errorf("the error body %q holds the token", got)
			}
		})
	}
	s = newServer(t, func(s *appjwttest.Server) { s.Lifetime = -time.Minute })
	expired := fetchToken(t, s)
	h := http.Header{"Authorization": {expired}}
	if resp, got := do(t, s, "POST", path, "application/json", body, h); resp.StatusCode != 401 || lpError(got) != 40102 {
		t.Errorf("expired token: status %d, errorCode %d; want 401, 40102", resp.StatusCode, lpError(got))
	}
}

func TestConsumerChecksBody(t *testing.T) {
	s := newServer(t)
	h := http.Header{"Authorization": {fetchToken(t, s)}}
	path := "/api/account/" + s.AccountID + "/consumer?v=1.0"
	for _, body := range []string{"", "{", `{"ext_consumer_id":""}`, `["c1"]`} {
		if resp, got := do(t, s, "POST", path, "application/json", body, h); resp.StatusCode != 400 {
			t.Errorf("body %q: status %d (%s), want 400", body, resp.StatusCode, got)
		}
	}
}

func TestSetRejectCode(t *testing.T) {
	s := newServer(t)
	h := http.Header{"Authorization": {fetchToken(t, s)}}
	path := "/api/account/" + s.AccountID + "/consumer?v=1.0"
	body := `{"ext_consumer_id":"c1"}`
	tests := []struct {
		code int
		want lpErrorBody
	}{
		{40103, lpErrorBody{Code: 401, Title: "Invalid ConsumerJWS", Details: "ConsumerJWS is invalid"}},
		{40102, lpErrorBody{Code: 401, Title: "Invalid AppJWT", Details: "AppJWT has expired or is invalid"}},
		{40001, lpErrorBody{Code: 400, Title: "Missing parameter", Details: "Brand Id is missing"}},
		{40399, lpErrorBody{Code: 403, Title: "Forbidden", Details: "Forbidden"}},
		{12345, lpErrorBody{Code: 401, Title: "Unauthorized", Details: "Unauthorized"}},
	}
	for _, tt := range tests {
		s.SetRejectCode(tt.code)
		resp, got := do(t, s, "POST", path, "application/json", body, h)
		tt.want.Kind, tt.want.Type, tt.want.ErrorCode = "resp", ".ReqBody$ErrorResp", tt.code
		if diff := cmp.Diff(tt.want, decodeLPError(got)); resp.StatusCode != tt.want.Code || diff != "" {
			t.Errorf("SetRejectCode(%d): status %d, body mismatch (-want +got):\n%s", tt.code, resp.StatusCode, diff)
		}
	}
	// A fault wins.
	s.QueueFaults(appjwttest.Consumer, appjwttest.Fault{Status: 503})
	if resp, _ := do(t, s, "POST", path, "application/json", body, h); resp.StatusCode != 503 {
		t.Errorf("fault with SetRejectCode: status %d, want 503", resp.StatusCode)
	}
	s.SetRejectCode(0)
	if resp, got := do(t, s, "POST", path, "application/json", body, h); resp.StatusCode != 201 {
		t.Errorf("after SetRejectCode(0): status %d (%s), want 201", resp.StatusCode, got)
	}
	// Sentinel is not a Connector API endpoint.
	s.SetRejectCode(40102)
	fetchToken(t, s)
}

func TestContextCarriesClient(t *testing.T) {
	s := newServer(t)
	ctx := s.Context(context.Background())
	if hc, _ := ctx.Value(oauth2.HTTPClient).(*http.Client); hc != s.Client() {
		t.Errorf("Context carries %v, want the server's client", hc)
	}
}

func TestDateHeaderFollowsServerClock(t *testing.T) {
	for _, skew := range []time.Duration{0, 2 * time.Hour, -90 * time.Minute} {
		t.Run(skew.String(), func(t *testing.T) {
			s := newServer(t)
			s.SetClockSkew(skew)
			before := time.Now().Add(skew).Truncate(time.Second)
			resp, body := do(t, s, "POST", tokenPath(s), form, creds(s), nil)
			after := time.Now().Add(skew)
			date, err := http.ParseTime(resp.Header.Get("Date"))
			if err != nil {
				t.Fatalf("Date %q: %v", resp.Header.Get("Date"), err)
			}
			if date.Before(before) || date.After(after) {
				t.Errorf("Date = %v, want between %v and %v", date, before, after)
			}
			var tok struct {
				AccessToken string `json:"access_token"`
			}
			json.Unmarshal([]byte(body), &tok)
			if got, want := int64(claims(t, tok.AccessToken)["iat"].(float64)), date.Unix(); got != want {
				t.Errorf("iat = %d, want the Date header's %d", got, want)
			}
			// Answers the handlers do not write, and faults, carry it too.
			s.QueueFaults(appjwttest.Sentinel, appjwttest.Fault{Status: 503})
			for _, path := range []string{tokenPath(s), "/nowhere"} {
				resp, _ := do(t, s, "POST", path, form, creds(s), nil)
				date, err := http.ParseTime(resp.Header.Get("Date"))
				if err != nil || date.Before(before) || date.After(time.Now().Add(skew)) {
					t.Errorf("POST %s: %s, Date %q (%v); want the server's time", path, resp.Status, resp.Header.Get("Date"), err)
				}
			}
		})
	}
}

// lpError decodes the errorCode of a LivePerson error body, 0 if there is
// none.
func lpError(body string) int { return decodeLPError(body).ErrorCode }

// lpErrorBody is what a LivePerson error body says.
type lpErrorBody struct {
	Kind, Type     string
	Code           int // the HTTP status it repeats
	Title, Details string
	ErrorCode      int
}

func decodeLPError(body string) lpErrorBody {
	var e struct {
		Kind, Type string
		Code       int
		Body       struct {
			Title, Details string
			ErrorCode      int
		}
	}
	if json.Unmarshal([]byte(body), &e) != nil || e.Kind != "resp" || e.Type != ".ReqBody$ErrorResp" {
		return lpErrorBody{}
	}
	return lpErrorBody{Kind: e.Kind, Type: e.Type, Code: e.Code, Title: e.Body.Title, Details: e.Body.Details, ErrorCode: e.Body.ErrorCode}
}

func TestRevokeTokens(t *testing.T) {
	s := newServer(t)
	path := "/api/account/" + s.AccountID + "/consumer?v=1.0"
	body := `{"ext_consumer_id":"c1"}`
	createConsumer := func(tok string) (int, int) {
		resp, got := do(t, s, "POST", path, "application/json", body, http.Header{"Authorization": {tok}})
		return resp.StatusCode, lpError(got)
	}
	old := fetchToken(t, s)
	// Fetched in the same second as old, most likely, and with the same
	// claims but for jti.
	old2 := fetchToken(t, s)
	if old == old2 {
		t.Fatal("two tokens fetched in a row are identical")
	}
	s.RevokeTokens()
	for _, tok := range []string{old, old2} {
		if _, err := s.Verify(appjwttest.Sentinel, tok); err == nil || strings.Contains(err.Error(), tok) {
			t.Errorf("Verify(revoked) = %v, want an error without the token", err)
		}
		if status, code := createConsumer(tok); status != 401 || code != 40102 {
			t.Errorf("revoked token: status %d, errorCode %d; want 401, 40102", status, code)
		}
	}
	fresh := fetchToken(t, s)
	if fresh == old || fresh == old2 {
		t.Fatal("the token fetched after RevokeTokens is a revoked one")
	}
	if _, err := s.Verify(appjwttest.Sentinel, fresh); err != nil {
		t.Errorf("Verify(fresh) = %v, want nil", err)
	}
	if status, _ := createConsumer(fresh); status != 201 {
		t.Errorf("fresh token: status %d, want 201", status)
	}
}

func TestVerifyRejectsAnotherServersToken(t *testing.T) {
	s, other := newServer(t), newServer(t)
	if _, err := s.Verify(appjwttest.Sentinel, fetchToken(t, other)); err == nil {
		t.Error("Verify accepted a token of another server with the same account and client")
	}
}

func fetchConsumerJWS(t *testing.T, s *appjwttest.Server, appJWT, extConsumerID string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"ext_consumer_id": extConsumerID})
	resp, got := do(t, s, "POST", "/api/account/"+s.AccountID+"/consumer?v=1.0", "application/json", string(body), http.Header{"Authorization": {appJWT}})
	if resp.StatusCode != 201 {
		t.Fatalf("ConsumerJWS request: %s %s", resp.Status, got)
	}
	var tok struct{ Token string }
	if err := json.Unmarshal([]byte(got), &tok); err != nil || tok.Token == "" {
		t.Fatalf("ConsumerJWS answer %q: %v", got, err)
	}
	return tok.Token
}

func TestConsumerJWS(t *testing.T) {
	s := newServer(t)
	app := fetchToken(t, s)
	john := fetchConsumerJWS(t, s, app, "john")
	c := claims(t, john)
	lp, _ := c["lp_consumer_id"].(string)
	if jti, _ := c["jti"].(string); lp == "" || jti == "" {
		t.Errorf("lp_consumer_id %v, jti %v: want strings", c["lp_consumer_id"], c["jti"])
	}
	delete(c, "lp_consumer_id")
	delete(c, "jti")
	want := map[string]any{"account_id": s.AccountID, "ext_consumer_id": "john"}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("claims mismatch (-want +got):\n%s", diff)
	}
	if got, err := s.Verify(appjwttest.Consumer, john); got != "john" || err != nil {
		t.Errorf("Verify(Consumer) = %q, %v; want john, nil", got, err)
	}

	again := fetchConsumerJWS(t, s, app, "john")
	if again == john {
		t.Error("two ConsumerJWS for one consumer are identical")
	}
	if got := claims(t, again)["lp_consumer_id"]; got != lp {
		t.Errorf("second ConsumerJWS: lp_consumer_id %v, want %v as in the first", got, lp)
	}
	if got := claims(t, fetchConsumerJWS(t, s, app, "jane"))["lp_consumer_id"]; got == lp {
		t.Errorf("another consumer has john's lp_consumer_id %v", got)
	}

	// Neither kind of token passes for the other.
	if _, err := s.Verify(appjwttest.Consumer, app); err == nil {
		t.Error("Verify(Consumer) accepted an AppJWT")
	}
	if _, err := s.Verify(appjwttest.Sentinel, john); err == nil {
		t.Error("Verify accepted a ConsumerJWS")
	}
	// Revoking AppJWTs leaves ConsumerJWS alone.
	s.RevokeTokens()
	if _, err := s.Verify(appjwttest.Consumer, john); err != nil {
		t.Errorf("Verify(Consumer) after RevokeTokens: %v", err)
	}
}

func TestConsumerJWSLifetime(t *testing.T) {
	tests := []struct {
		lifetime  time.Duration
		wantExp   bool
		wantValid bool
	}{
		{0, false, true},
		{time.Hour, true, true},
		{-time.Minute, true, false},
	}
	for _, tt := range tests {
		s := newServer(t, func(s *appjwttest.Server) { s.ConsumerJWSLifetime = tt.lifetime })
		tok := fetchConsumerJWS(t, s, fetchToken(t, s), "john")
		c := claims(t, tok)
		exp, hasExp := c["exp"].(float64)
		iat, _ := c["iat"].(float64)
		if hasExp != tt.wantExp || hasExp && time.Duration(exp-iat)*time.Second != tt.lifetime {
			t.Errorf("ConsumerJWSLifetime %v: iat %v, exp %v; want exp = iat + lifetime: %v", tt.lifetime, c["iat"], c["exp"], tt.wantExp)
		}
		if _, err := s.Verify(appjwttest.Consumer, tok); (err == nil) != tt.wantValid {
			t.Errorf("ConsumerJWSLifetime %v: Verify(Consumer) error %v, want valid %v", tt.lifetime, err, tt.wantValid)
		}
	}
}

func TestRevokeConsumer(t *testing.T) {
	s := newServer(t)
	app := fetchToken(t, s)
	john, jane := fetchConsumerJWS(t, s, app, "john"), fetchConsumerJWS(t, s, app, "jane")
	s.RevokeConsumer("john")
	if _, err := s.Verify(appjwttest.Consumer, john); err == nil || strings.Contains(err.Error(), john) {
		t.Errorf("Verify(appjwttest.Consumer, revoked) = %v, want an error without the token", err)
	}
	if _, err := s.Verify(appjwttest.Consumer, jane); err != nil {
		t.Errorf("Verify(appjwttest.Consumer, another consumer's) = %v, want nil", err)
	}
	fresh := fetchConsumerJWS(t, s, app, "john")
	if fresh == john {
		t.Fatal("the ConsumerJWS fetched after RevokeConsumer is the revoked one")
	}
	if _, err := s.Verify(appjwttest.Consumer, fresh); err != nil {
		t.Errorf("Verify(appjwttest.Consumer, fresh) = %v, want nil", err)
	}
}

func TestEndpointString(t *testing.T) {
	tests := []struct {
		e    appjwttest.Endpoint
		want string
	}{
		{appjwttest.DomainAPI, "DomainAPI"},
		{appjwttest.Sentinel, "Sentinel"},
		{appjwttest.Consumer, "Consumer"},
		{appjwttest.Conversation, "Conversation"},
		{appjwttest.Send, "Send"},
		{appjwttest.SentinelV2Token, "SentinelV2Token"},
		{appjwttest.JWKS, "JWKS"},
		{appjwttest.V2API, "V2API"},
		{0, "Endpoint(0)"},
		{appjwttest.V2API + 1, "Endpoint(9)"},
	}
	for _, tt := range tests {
		if got := tt.e.String(); got != tt.want {
			t.Errorf("Endpoint(%d).String() = %q, want %q", int(tt.e), got, tt.want)
		}
	}
}

// What net/http logs, such as a TLS handshake error, goes to the logger
// ErrorLog names, and nowhere without one.
func TestErrorLog(t *testing.T) {
	var std bytes.Buffer
	defer log.SetOutput(log.Writer())
	log.SetOutput(&std) // where net/http logs when the server has no logger
	lines := make(chan string, 10)
	logger := log.New(writerFunc(func(p []byte) (int, error) { lines <- string(p); return len(p), nil }), "stand-in: ", 0)
	tests := []struct {
		name   string
		set    func(s *appjwttest.Server)
		logged bool
	}{
		{"no logger", func(*appjwttest.Server) {}, false},
		{"a logger", func(s *appjwttest.Server) { s.ErrorLog = logger }, true},
	}
	for _, tt := range tests {
		// A server of its own, closed before the check: Close waits for
		// the handshakes, and so for what they log, which may come after
		// the client has given up.
		s := appjwttest.NewUnstartedServer()
		tt.set(s)
		s.Start()
		if _, err := http.Get(s.URL()); err == nil { // a client that does not trust the server
			t.Fatalf("%s: a client without the certificate got an answer", tt.name)
		}
		s.Close()
		if got := len(lines) > 0; got != tt.logged {
			t.Errorf("%s: logged: %v, want %v", tt.name, got, tt.logged)
		}
		for len(lines) > 0 {
			if line := <-lines; !strings.HasPrefix(line, "stand-in: http: TLS handshake error from 127.0.0.1:") {
				t.Errorf("%s: logged %q, want a TLS handshake error", tt.name, line)
			}
		}
	}
	if std.Len() != 0 {
		t.Errorf("the standard logger got %q, want nothing", std.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// A server from NewUnstartedServer takes its credentials, listener and
// certificate before Start.
func TestNewUnstartedServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cert := selfSigned(t)
	s := appjwttest.NewUnstartedServer()
	s.AccountID, s.ClientID, s.ClientSecret = "le1", "client-1", "secret-1"
	s.Listener = l
	s.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.Start()
	t.Cleanup(s.Close)
	if got, want := s.Host(), l.Addr().String(); got != want {
		t.Errorf("Host() = %q, want the listener's %q", got, want)
	}
	resp, body := do(t, s, "POST", "/sentinel/api/account/le1/app/token?v=1.0&grant_type=client_credentials", form, "client_id=client-1&client_secret=secret-1", nil)
	if resp.TLS == nil || !bytes.Equal(resp.TLS.PeerCertificates[0].Raw, cert.Certificate[0]) {
		t.Error("the server does not present the certificate of TLS")
	}
	if resp.StatusCode != 200 {
		t.Errorf("token with the credentials set: %s %s", resp.Status, body)
	}
	defer func() {
		if recover() == nil {
			t.Error("a second Start did not panic")
		}
	}()
	s.Start()
}

func TestCloseUnstarted(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := appjwttest.NewUnstartedServer()
	s.Listener = l
	s.Close()
	if _, err := l.Accept(); err == nil {
		t.Error("the listener of an unstarted server is open after Close")
	}
}

// selfSigned is a certificate for 127.0.0.1 that signs itself.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// A JSON body reaches the endpoints whole whatever its Content-Type says,
// as curl -d sends it; one over 1 MiB is rejected, and kept up to 1 MiB.
func TestBodiesAsCurlSendsThem(t *testing.T) {
	s := newServer(t)
	h := http.Header{"Authorization": {fetchToken(t, s)}}
	if resp, got := do(t, s, "POST", "/api/account/"+s.AccountID+"/consumer?v=1.0", form, `{"ext_consumer_id":"john"}`, h); resp.StatusCode != 201 {
		t.Errorf("JSON sent as a form: %s %s, want 201", resp.Status, got)
	}
	big := `{"ext_consumer_id":"` + strings.Repeat("x", 1<<20) + `"}`
	if resp, got := do(t, s, "POST", "/api/account/"+s.AccountID+"/consumer?v=1.0", "application/json", big, h); resp.StatusCode != 400 {
		t.Errorf("a body over 1 MiB: %s %.100s, want 400", resp.Status, got)
	}
	if reqs := s.Requests(appjwttest.Consumer); len(reqs) != 2 || string(reqs[0].Body) != `{"ext_consumer_id":"john"}` || len(reqs[1].Body) != 1<<20 {
		t.Errorf("Requests(Consumer) kept bodies of %d and %d bytes, want 26 and 1 MiB", len(reqs[0].Body), len(reqs[len(reqs)-1].Body))
	}
}

// Each request records its answer's status and the error it named, for
// the agent console and the control API's GET /requests.
func TestRequestAnswer(t *testing.T) {
	s := newServer(t)
	consumerPath := "/api/account/" + s.AccountID + "/consumer?v=1.0"
	tests := []struct {
		name          string
		fault         *appjwttest.Fault
		method, path  string
		ctype, body   string
		header        http.Header
		wantStatus    int
		wantErrorCode string
	}{
		{"token", nil, "POST", tokenPath(s), form, creds(s), nil, 200, ""},
		{"bad secret", nil, "POST", tokenPath(s), form, "client_id=" + s.ClientID + "&client_secret=no", nil, 401, "invalid_client"},
		{"no AppJWT", nil, "POST", consumerPath, "application/json", `{"ext_consumer_id":"c"}`, nil, 401, "40105"},
		{"a fault's status", &appjwttest.Fault{Status: 503, Body: `{"error":"down"}`}, "POST", tokenPath(s), form, creds(s), nil, 503, "down"},
		{"a fault's body that is no error", &appjwttest.Fault{Status: 500, Body: "<html>"}, "POST", tokenPath(s), form, creds(s), nil, 500, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := appjwttest.Sentinel
			if tt.path == consumerPath {
				e = appjwttest.Consumer
			}
			if tt.fault != nil {
				s.QueueFaults(e, *tt.fault)
			}
			do(t, s, tt.method, tt.path, tt.ctype, tt.body, tt.header)
			reqs := s.Requests(e)
			got := reqs[len(reqs)-1]
			if got.Status != tt.wantStatus || got.ErrorCode != tt.wantErrorCode {
				t.Errorf("Status, ErrorCode = %d, %q; want %d, %q", got.Status, got.ErrorCode, tt.wantStatus, tt.wantErrorCode)
			}
		})
	}

	// A request reset without an answer has none.
	s.QueueFaults(appjwttest.Sentinel, appjwttest.Fault{Reset: true})
	req, _ := http.NewRequest("POST", s.URL()+tokenPath(s), strings.NewReader(creds(s)))
	req.Header.Set("Content-Type", form)
	if resp, err := s.Client().Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("a reset: got an answer, want an error")
	}
	reqs := s.Requests(appjwttest.Sentinel)
	if got := reqs[len(reqs)-1]; got.Status != 0 || got.ErrorCode != "" {
		t.Errorf("a reset: Status, ErrorCode = %d, %q; want 0, \"\"", got.Status, got.ErrorCode)
	}
}
