package appjwttest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"math/big"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// V2APIPath is the path of the server's v2 API, with {account} for the
// account: a stand-in of its own for LivePerson's APIs that take tokens
// from Sentinel's v2 API, not one of LivePerson's endpoints. A GET with
// "Authorization: Bearer <token>", a token from the server's v2 token
// endpoint, is answered 200 with {"account":"...","client_id":"..."}.
// Anything else is 401 with a WWW-Authenticate: Bearer header and an
// OAuth 2.0 error (RFC 6750): "invalid_request" for no token or a token
// without the Bearer scheme, "invalid_token" for a token that is not a
// valid v2 token of the server: a v1 AppJWT, or one invalid, expired or
// revoked. A token for another account than the path's is 403,
// "insufficient_scope".
const V2APIPath = "/appjwttest/v2/account/{account}/whoami"

// v2KeyID is the kid of the tokens of Sentinel's v2 API, and of their key
// in the JWKS.
const v2KeyID = "appjwttest-v2"

// signingKeyV2 signs the tokens of Sentinel's v2 API. LivePerson signs
// them with keys it publishes as a JWKS, apart from v1's static key:
// a key of their own keeps the Connector API endpoints from taking them.
var signingKeyV2 = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic("appjwttest: generating the v2 signing key: " + err.Error())
	}
	return k
})

// handleV2 registers the endpoints of Sentinel's v2 API and the v2 API.
func (s *Server) handleV2(mux *http.ServeMux) {
	mux.HandleFunc("POST /sentinel/api/v2/account/{account}/app/token", s.handle(SentinelV2Token, s.serveTokenV2))
	mux.HandleFunc("GET /sentinel/well-known/jwks", s.handle(JWKS, s.serveJWKS))
	mux.HandleFunc("GET "+V2APIPath, s.handle(V2API, s.serveV2API))
}

// serveTokenV2 is Sentinel's v2 token endpoint. It takes grant_type and
// the credentials in the form body only, as LivePerson documents it, and
// refuses credentials in the URL, which end up in logs.
func (s *Server) serveTokenV2(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	switch mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); {
	case q.Has("client_id") || q.Has("client_secret"):
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "client_id and client_secret go in the form body, never in the URL"})
		return
	case mt != "application/x-www-form-urlencoded":
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "Content-Type must be application/x-www-form-urlencoded"})
		return
	case !r.PostForm.Has("grant_type"):
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "grant_type is required in the form body"})
		return
	case r.PostForm.Get("grant_type") != "client_credentials":
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type", "error_description": "grant_type must be client_credentials"})
		return
	}
	if r.PathValue("account") != s.AccountID || r.PostForm.Get("client_id") != s.ClientID || r.PostForm.Get("client_secret") != string(s.ClientSecret) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client", "error_description": "client authentication failed"})
		return
	}
	claims, lifetime := s.appClaims(r)
	// A string, as LivePerson's own clients of the v2 API read it.
	expiresIn := strconv.FormatInt(max(int64(lifetime/time.Second), 0), 10)
	writeJSON(w, http.StatusOK, map[string]string{"access_token": signWith(signingKeyV2(), v2KeyID, claims), "token_type": "Bearer", "expires_in": expiresIn})
}

// serveJWKS publishes the key of the v2 tokens as a JWK Set (RFC 7517).
func (s *Server) serveJWKS(w http.ResponseWriter, r *http.Request) {
	pub := &signingKeyV2().PublicKey
	enc := base64.RawURLEncoding.EncodeToString
	writeJSON(w, http.StatusOK, map[string]any{"keys": []map[string]string{{
		"kty": "RSA",
		"use": "sig",
		"alg": "RS256",
		"kid": v2KeyID,
		"n":   enc(pub.N.Bytes()),
		"e":   enc(big.NewInt(int64(pub.E)).Bytes()),
	}}})
}

// serveV2API answers the v2 API: see [V2APIPath].
func (s *Server) serveV2API(w http.ResponseWriter, r *http.Request) {
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	tok = strings.TrimSpace(tok)
	switch {
	case !strings.EqualFold(scheme, "Bearer") || tok == "":
		w.Header().Set("WWW-Authenticate", `Bearer realm="appjwttest"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_request", "error_description": `the v2 API takes "Authorization: Bearer <token>", a token from Sentinel's v2 API`})
	case s.verifyIssued(&signingKeyV2().PublicKey, tok, requestTime(r)) != nil:
		w.Header().Set("WWW-Authenticate", `Bearer realm="appjwttest", error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token", "error_description": "the token is not a valid token of Sentinel's v2 API: from v1, invalid, expired or revoked"})
	case r.PathValue("account") != s.AccountID:
		w.Header().Set("WWW-Authenticate", `Bearer realm="appjwttest", error="insufficient_scope"`)
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "insufficient_scope", "error_description": "the token is for another account"})
	default:
		writeJSON(w, http.StatusOK, map[string]string{"account": s.AccountID, "client_id": s.ClientID})
	}
}
