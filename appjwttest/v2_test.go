package appjwttest_test

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lpconnect/appjwt/appjwttest"
)

func tokenPathV2(s *appjwttest.Server) string {
	return "/sentinel/api/v2/account/" + s.AccountID + "/app/token"
}

func v2API(s *appjwttest.Server) string {
	return strings.Replace(appjwttest.V2APIPath, "{account}", s.AccountID, 1)
}

// v2Answer is the v2 token endpoint's answer.
type v2Answer struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   string `json:"expires_in"`
}

func fetchTokenV2(t *testing.T, s *appjwttest.Server) v2Answer {
	t.Helper()
	resp, body := do(t, s, "POST", tokenPathV2(s), form, "grant_type=client_credentials&"+creds(s), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("v2 token request: %s %s", resp.Status, body)
	}
	var a v2Answer
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatalf("v2 token answer %q: %v", body, err)
	}
	return a
}

// header is the decoded JOSE header of a JWT.
func header(t *testing.T, tok string) map[string]any { return jwtPart(t, tok, 0) }

func TestSentinelV2IssuesToken(t *testing.T) {
	s := newServer(t, func(s *appjwttest.Server) { s.Lifetime = 10 * time.Minute })
	before := time.Now().Unix()
	a := fetchTokenV2(t, s)
	if a.TokenType != "Bearer" || a.ExpiresIn != "600" {
		t.Errorf("token_type %q, expires_in %q; want Bearer and 600", a.TokenType, a.ExpiresIn)
	}
	if _, err := s.Verify(appjwttest.SentinelV2Token, a.AccessToken); err != nil {
		t.Errorf("Verify(SentinelV2Token): %v", err)
	}
	if _, err := s.Verify(appjwttest.Sentinel, a.AccessToken); err == nil {
		t.Error("Verify(Sentinel), for v1 AppJWTs, accepted a v2 token")
	}
	if h := header(t, a.AccessToken); h["alg"] != "RS256" || h["kid"] == "" || h["kid"] == header(t, fetchToken(t, s))["kid"] {
		t.Errorf("header %v, want RS256 and a kid apart from v1's", h)
	}
	c := claims(t, a.AccessToken)
	iat, exp := int64(c["iat"].(float64)), int64(c["exp"].(float64))
	for _, k := range []string{"iat", "exp", "jti"} {
		delete(c, k)
	}
	want := map[string]any{"aud": s.AccountID, "azp": s.ClientID, "iss": "Sentinel"}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("claims mismatch (-want +got):\n%s", diff)
	}
	if iat < before || exp-iat != 600 {
		t.Errorf("iat %d, exp %d: want iat >= %d and a 600s lifetime", iat, exp, before)
	}
	s.RevokeTokens()
	if _, err := s.Verify(appjwttest.SentinelV2Token, a.AccessToken); err == nil {
		t.Error("Verify(SentinelV2Token) accepted a revoked token")
	}
}

func TestSentinelV2ChecksRequest(t *testing.T) {
	s := newServer(t)
	body := "grant_type=client_credentials&" + creds(s)
	wrong := url.Values{"grant_type": {"client_credentials"}, "client_id": {s.ClientID}, "client_secret": {"wrong"}}.Encode()
	tests := []struct {
		name, method, path, contentType, body string
		want                                  int
	}{
		{"form body", "POST", tokenPathV2(s), form, body, 200},
		{"credentials in the URL", "POST", tokenPathV2(s) + "?" + creds(s), form, "grant_type=client_credentials", 400},
		{"credentials in both", "POST", tokenPathV2(s) + "?" + creds(s), form, body, 400},
		{"grant_type in the URL only", "POST", tokenPathV2(s) + "?grant_type=client_credentials", form, creds(s), 400},
		{"no grant_type", "POST", tokenPathV2(s), form, creds(s), 400},
		{"another grant_type", "POST", tokenPathV2(s), form, "grant_type=password&" + creds(s), 400},
		{"wrong secret", "POST", tokenPathV2(s), form, wrong, 401},
		{"wrong account", "POST", strings.Replace(tokenPathV2(s), s.AccountID, "le0", 1), form, body, 401},
		{"JSON body", "POST", tokenPathV2(s), "application/json", `{}`, 400},
		{"GET", "GET", tokenPathV2(s), "", "", 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, got := do(t, s, tt.method, tt.path, tt.contentType, tt.body, nil)
			if resp.StatusCode != tt.want {
				t.Errorf("status %d (%s), want %d", resp.StatusCode, got, tt.want)
			}
		})
	}
	if got, want := len(s.Requests(appjwttest.SentinelV2Token)), len(tests)-1; got != want { // the mux answers the GET
		t.Errorf("requests to SentinelV2Token = %d, want %d", got, want)
	}
}

// The JWKS verifies the v2 tokens, as a client of LivePerson's APIs would
// check them, with crypto/rsa alone; and only them.
func TestJWKSVerifiesV2Tokens(t *testing.T) {
	s := newServer(t)
	resp, body := do(t, s, "GET", "/sentinel/well-known/jwks", "", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("JWKS: %s %s", resp.Status, body)
	}
	var set struct {
		Keys []struct{ Kty, Use, Alg, Kid, N, E string }
	}
	if err := json.Unmarshal([]byte(body), &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("JWKS %s: %v, want one key", body, err)
	}
	jwk := set.Keys[0]
	if jwk.Kty != "RSA" || jwk.Use != "sig" || jwk.Alg != "RS256" {
		t.Errorf("key %+v, want an RSA signing key for RS256", jwk)
	}
	n, errN := base64.RawURLEncoding.DecodeString(jwk.N)
	e, errE := base64.RawURLEncoding.DecodeString(jwk.E)
	if errN != nil || errE != nil {
		t.Fatalf("n, e not base64url: %v, %v", errN, errE)
	}
	key := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	verify := func(tok string) error {
		parts := strings.Split(tok, ".")
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil {
			return err
		}
		digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
		return rsa.VerifyPKCS1v15(key, crypto.SHA256, digest[:], sig)
	}
	v2 := fetchTokenV2(t, s).AccessToken
	if err := verify(v2); err != nil {
		t.Errorf("the JWKS key does not verify a v2 token: %v", err)
	}
	if got := header(t, v2)["kid"]; got != jwk.Kid {
		t.Errorf("v2 token's kid %q, want the JWKS key's %q", got, jwk.Kid)
	}
	if verify(fetchToken(t, s)) == nil {
		t.Error("the JWKS key verifies a v1 AppJWT, which has a static key of its own")
	}
}

func TestV2API(t *testing.T) {
	s := newServer(t)
	v2 := fetchTokenV2(t, s).AccessToken
	v1 := fetchToken(t, s)
	other := newServer(t)
	foreign := fetchTokenV2(t, other).AccessToken
	tests := []struct {
		name, path, auth string
		want             int
		wantError        string // the OAuth 2.0 error, "" for none
	}{
		{"Bearer v2 token", v2API(s), "Bearer " + v2, 200, ""},
		{"bearer in lower case", v2API(s), "bearer " + v2, 200, ""},
		{"raw v2 token", v2API(s), v2, 401, "invalid_request"},
		{"no token", v2API(s), "", 401, "invalid_request"},
		{"Bearer alone", v2API(s), "Bearer ", 401, "invalid_request"},
		{"Bearer v1 AppJWT", v2API(s), "Bearer " + v1, 401, "invalid_token"},
		{"another server's v2 token", v2API(s), "Bearer " + foreign, 401, "invalid_token"},
		{"another account", strings.Replace(v2API(s), s.AccountID, "le0", 1), "Bearer " + v2, 403, "insufficient_scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.auth != "" {
				h.Set("Authorization", tt.auth)
			}
			resp, body := do(t, s, "GET", tt.path, "", "", h)
			var answer map[string]string
			json.Unmarshal([]byte(body), &answer)
			if resp.StatusCode != tt.want || answer["error"] != tt.wantError {
				t.Errorf("status %d, error %q; want %d, %q", resp.StatusCode, answer["error"], tt.want, tt.wantError)
			}
			if www := resp.Header.Get("WWW-Authenticate"); tt.want != 200 && !strings.HasPrefix(www, "Bearer ") {
				t.Errorf("WWW-Authenticate %q, want a Bearer challenge", www)
			}
			if tt.want == 200 && (answer["account"] != s.AccountID || answer["client_id"] != s.ClientID) {
				t.Errorf("answer %s, want the account and the client", body)
			}
		})
	}
	s.RevokeTokens()
	resp, _ := do(t, s, "GET", v2API(s), "", "", http.Header{"Authorization": {"Bearer " + v2}})
	if resp.StatusCode != 401 {
		t.Errorf("revoked token: status %d, want 401", resp.StatusCode)
	}
}

// LivePerson documents v1 tokens only for the Connector API: a v2 token is
// an invalid AppJWT there, raw or, where Bearer is taken, as Bearer.
func TestConnectorAPIRefusesV2Tokens(t *testing.T) {
	s := newServer(t, func(s *appjwttest.Server) { s.AcceptBearer = true })
	v2 := fetchTokenV2(t, s).AccessToken
	for _, auth := range []string{v2, "Bearer " + v2} {
		resp, body := do(t, s, "POST", "/api/account/"+s.AccountID+"/consumer?v=1.0", "application/json",
			`{"ext_consumer_id":"c1"}`, http.Header{"Authorization": {auth}})
		if resp.StatusCode != 401 || !strings.Contains(body, `"errorCode":40102`) || !strings.Contains(body, "not a token of its v2 API") {
			t.Errorf("Authorization %.10q...: %s %s, want 401 with errorCode 40102, saying it is a v2 token", auth, resp.Status, body)
		}
	}
}
