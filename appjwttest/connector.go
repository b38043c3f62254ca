package appjwttest

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
)

// The errorCodes of LivePerson's Connector API. An errorCode's first three
// digits are the HTTP status it comes with, LivePerson says.
const (
	codeMissingParameter = 40001
	codeAppJWTInvalid    = 40102
	codeConsumerInvalid  = 40103
	codeConsumerMissing  = 40104
	codeAppJWTMissing    = 40105
)

// lpTexts are the title and details LivePerson documents for each
// errorCode, word for word. LivePerson says to rely on the errorCode, not
// on them.
var lpTexts = map[int]struct{ title, details string }{
	codeMissingParameter: {"Missing parameter", "Brand Id is missing"},
	codeAppJWTInvalid:    {"Invalid AppJWT", "AppJWT has expired or is invalid"},
	codeConsumerInvalid:  {"Invalid ConsumerJWS", "ConsumerJWS is invalid"},
	codeConsumerMissing:  {"ConsumerJWS is missing", "X_ON_BEHALF_HEADER is not present"},
	codeAppJWTMissing:    {"AppJWT is missing", "AUTHORIZATION header is not present"},
}

// v2Details tells a client that sent a token of Sentinel's v2 API, in any
// scheme, what is wrong with it: the Connector API takes v1 AppJWTs only.
const v2Details = "AppJWT has expired or is invalid: appjwttest takes AppJWTs of Sentinel's v1 token API here, as LivePerson documents the Connector API, not a token of its v2 API (appjwt.Config.TokenAPI)"

// isV2 reports whether tok is a valid token of the server's v2 API.
func (s *Server) isV2(tok string, r *http.Request) bool {
	return tok != "" && s.verifyIssued(&signingKeyV2().PublicKey, tok, requestTime(r)) == nil
}

// bearerDetails tells a client that sent "Authorization: Bearer <AppJWT>"
// why it got errorCode 40102: the token itself may be fine.
const bearerDetails = "AppJWT has expired or is invalid: appjwttest takes the raw \"Authorization: <AppJWT>\" that LivePerson documents, not a Bearer scheme (see Server.AcceptBearer)"

// lpError is an answer in the shape of LivePerson's Connector API errors.
type lpError struct {
	code    int    // the errorCode
	details string // "": the details LivePerson documents for code
}

// badParameter is a 40001 error with details of the server's own, for the
// requests whose rejection LivePerson does not document word for word.
func badParameter(details string) *lpError { return &lpError{codeMissingParameter, details} }

// status is the HTTP status of e: its errorCode's first three digits, or
// 401 for an errorCode that does not start with a 4xx status.
func (e *lpError) status() int {
	if s := e.code / 100; s >= 400 && s < 500 {
		return s
	}
	return http.StatusUnauthorized
}

// write answers the way LivePerson's Connector API does:
//
//	{"kind":"resp","code":401,"body":{"title":"...","details":"...","errorCode":40102},"type":".ReqBody$ErrorResp"}
func (e *lpError) write(w http.ResponseWriter) {
	status := e.status()
	texts, ok := lpTexts[e.code]
	if !ok {
		texts.title, texts.details = http.StatusText(status), http.StatusText(status)
	}
	if e.details != "" {
		texts.details = e.details
	}
	var answer struct {
		Kind string `json:"kind"`
		Code int    `json:"code"`
		Body struct {
			Title     string `json:"title"`
			Details   string `json:"details"`
			ErrorCode int    `json:"errorCode"`
		} `json:"body"`
		Type string `json:"type"`
	}
	answer.Kind, answer.Code, answer.Type = "resp", status, ".ReqBody$ErrorResp"
	answer.Body.Title, answer.Body.Details, answer.Body.ErrorCode = texts.title, texts.details, e.code
	writeJSON(w, status, answer)
}

// authorize checks what every Connector API request needs: the API version
// in the query's v, and the AppJWT; and, if onBehalf, the ConsumerJWS in
// X-LP-ON-BEHALF, whose ext_consumer_id it returns. If the request falls
// short, it answers it as LivePerson does and returns false.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, version string, onBehalf bool) (string, bool) {
	consumer, e := s.check(r, version, onBehalf)
	if e != nil {
		e.write(w)
		return "", false
	}
	return consumer, true
}

// check is authorize's verdict: the consumer, and nil if r may pass.
func (s *Server) check(r *http.Request, version string, onBehalf bool) (string, *lpError) {
	s.mu.Lock()
	reject := s.rejectCode
	s.mu.Unlock()
	if reject != 0 {
		return "", &lpError{code: reject}
	}
	if r.URL.Query().Get("v") != version {
		return "", badParameter("the query parameter v must be " + version)
	}
	tok := r.Header.Get("Authorization")
	// net/http trims "Bearer " to "Bearer": a scheme without a token.
	if scheme, rest, _ := strings.Cut(tok, " "); strings.EqualFold(scheme, "Bearer") {
		if s.isV2(strings.TrimSpace(rest), r) {
			return "", &lpError{codeAppJWTInvalid, v2Details}
		}
		if !s.AcceptBearer {
			return "", &lpError{codeAppJWTInvalid, bearerDetails}
		}
		tok = strings.TrimSpace(rest)
	}
	if tok == "" {
		return "", &lpError{code: codeAppJWTMissing}
	}
	if r.PathValue("account") != s.AccountID {
		return "", &lpError{code: codeAppJWTInvalid}
	}
	switch err := s.verifyAppJWT(tok, requestTime(r)); {
	case errors.Is(err, errIssuer):
		return "", &lpError{code: codeMissingParameter} // LivePerson's answer for missing or wrong claims
	case err != nil && s.isV2(tok, r):
		return "", &lpError{codeAppJWTInvalid, v2Details}
	case err != nil:
		return "", &lpError{code: codeAppJWTInvalid}
	}
	if !onBehalf {
		return "", nil
	}
	jws := r.Header.Get("X-LP-ON-BEHALF")
	if jws == "" {
		return "", &lpError{code: codeConsumerMissing}
	}
	consumer, err := s.verifyConsumerJWS(jws, requestTime(r))
	if err != nil {
		return "", &lpError{code: codeConsumerInvalid}
	}
	return consumer, nil
}

func (s *Server) serveConsumer(w http.ResponseWriter, r *http.Request) {
	// botium asks without v; LivePerson's pages put v=1.0 in the URI, and
	// what LivePerson answers without it is unknown.
	version, lax := "1.0", !r.URL.Query().Has("v") && !s.Strict
	if lax {
		version = ""
	}
	if _, ok := s.authorize(w, r, version, false); !ok {
		return
	}
	if lax {
		s.lenient(Consumer, RuleConsumerVersion, "no v in the query: LivePerson documents v=1.0; botium sends none")
	}
	var body struct {
		ExtConsumerID string `json:"ext_consumer_id"`
	}
	if json.NewDecoder(r.Body).Decode(&body) != nil || body.ExtConsumerID == "" {
		badParameter("ext_consumer_id is missing").write(w)
		return
	}
	ext, now, jti := body.ExtConsumerID, requestTime(r), nextJTI()
	s.mu.Lock()
	lp, ok := s.lpConsumers[ext]
	if !ok {
		lp = newUUID()
		s.lpConsumers[ext] = lp
	}
	s.consumerJWSs[jti] = issuedConsumer{extConsumerID: ext, gen: s.consumerGen[ext]}
	s.mu.Unlock()
	lifetime := s.ConsumerJWSLifetime
	claims := map[string]any{
		"account_id":      s.AccountID,
		"ext_consumer_id": ext,
		"lp_consumer_id":  lp,
		"jti":             jti,
	}
	if lifetime != 0 {
		claims["iat"] = now.Unix()
		claims["exp"] = now.Add(lifetime).Unix()
	}
	writeJSON(w, http.StatusCreated, map[string]string{"token": sign(claims)})
}

const maxBody = 1 << 20

// readJSON decodes r's body, all of it, into v.
func readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
