package appjwttest

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
)

// The errorCodes of LivePerson's Connector API.
const (
	codeBadRequest      = 40001 // a parameter is missing or wrong
	codeAppJWTInvalid   = 40102
	codeConsumerInvalid = 40103
	codeConsumerMissing = 40104
	codeAppJWTMissing   = 40105
)

// lpTitles are the titles of LivePerson's error bodies. LivePerson says to
// rely on the errorCode, not on them.
var lpTitles = map[int]string{
	codeBadRequest:      "Bad request",
	codeAppJWTInvalid:   "AppJWT has expired or is invalid",
	codeConsumerInvalid: "ConsumerJWS is invalid",
	codeConsumerMissing: "ConsumerJWS is missing",
	codeAppJWTMissing:   "AppJWT is missing",
}

// authorize checks what every Connector API request needs: the API version
// in the query's v, and the AppJWT; and, if onBehalf, the ConsumerJWS in
// X-LP-ON-BEHALF, whose ext_consumer_id it returns. If the request falls
// short, it answers it as LivePerson does and returns false.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, version string, onBehalf bool) (string, bool) {
	s.mu.Lock()
	reject, acceptBearer := s.rejectCode, s.acceptBearer
	s.mu.Unlock()
	if reject != 0 {
		writeLPError(w, http.StatusUnauthorized, reject, "rejected by SetRejectCode")
		return "", false
	}
	if r.URL.Query().Get("v") != version {
		writeLPError(w, http.StatusBadRequest, codeBadRequest, "v="+version+" is required")
		return "", false
	}
	tok := r.Header.Get("Authorization")
	if scheme, rest, _ := strings.Cut(tok, " "); acceptBearer && strings.EqualFold(scheme, "Bearer") {
		tok = strings.TrimSpace(rest)
	}
	if tok == "" {
		writeLPError(w, http.StatusUnauthorized, codeAppJWTMissing, "the Authorization header is missing")
		return "", false
	}
	if r.PathValue("account") != s.AccountID || s.verifyAppJWT(tok, requestTime(r)) != nil {
		writeLPError(w, http.StatusUnauthorized, codeAppJWTInvalid, "the AppJWT is not valid for this account")
		return "", false
	}
	if !onBehalf {
		return "", true
	}
	jws := r.Header.Get("X-LP-ON-BEHALF")
	if jws == "" {
		writeLPError(w, http.StatusUnauthorized, codeConsumerMissing, "the X-LP-ON-BEHALF header is missing")
		return "", false
	}
	consumer, err := s.verifyConsumerJWS(jws, requestTime(r))
	if err != nil {
		writeLPError(w, http.StatusUnauthorized, codeConsumerInvalid, "the ConsumerJWS is not valid for this account")
		return "", false
	}
	return consumer, true
}

func (s *Server) serveConsumer(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, "1.0", false); !ok {
		return
	}
	var body struct {
		ExtConsumerID string `json:"ext_consumer_id"`
	}
	if json.NewDecoder(r.Body).Decode(&body) != nil || body.ExtConsumerID == "" {
		writeLPError(w, http.StatusBadRequest, codeBadRequest, "ext_consumer_id is required")
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
	lifetime := s.consumerLifetime
	s.mu.Unlock()
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

// lpRequest is a request of LivePerson's messaging protocol, as the Send
// API takes them.
type lpRequest struct {
	Kind string          `json:"kind"`
	ID   json.RawMessage `json:"id"`
	Type string          `json:"type"`
	Body json.RawMessage `json:"body"`
}

// lpResponse answers an lpRequest.
type lpResponse struct {
	Kind  string          `json:"kind"`
	ReqID json.RawMessage `json:"reqId,omitempty"`
	Code  int             `json:"code"`
	Body  any             `json:"body"`
	Type  string          `json:"type"`
}

const maxBody = 1 << 20

func (s *Server) serveConversation(w http.ResponseWriter, r *http.Request) {
	consumer, ok := s.authorize(w, r, "3", true)
	if !ok {
		return
	}
	var reqs []lpRequest
	if readJSON(w, r, &reqs) != nil || !slices.ContainsFunc(reqs, func(req lpRequest) bool { return req.Type == "cm.ConsumerRequestConversation" }) {
		writeLPError(w, http.StatusBadRequest, codeBadRequest, "the body must be a JSON array of requests, one of them a cm.ConsumerRequestConversation")
		return
	}
	resps := make([]lpResponse, len(reqs))
	for i, req := range reqs {
		resps[i] = s.answer(consumer, req)
	}
	writeJSON(w, http.StatusOK, resps)
}

func (s *Server) serveSend(w http.ResponseWriter, r *http.Request) {
	consumer, ok := s.authorize(w, r, "3", true)
	if !ok {
		return
	}
	var req lpRequest
	if readJSON(w, r, &req) != nil || req.Type == "" {
		writeLPError(w, http.StatusBadRequest, codeBadRequest, "the body must be a JSON request with a type")
		return
	}
	writeJSON(w, http.StatusOK, s.answer(consumer, req))
}

// answer answers req with a minimal success, as LivePerson would: a new
// conversationId for cm.ConsumerRequestConversation, which consumer has
// open from then on, the message's
// sequence number for ms.PublishEvent, and an empty object for the rest:
// LivePerson does not document what it answers there, and clients that
// look for a conversationId in every response, as some do, decode an
// object.
func (s *Server) answer(consumer string, req lpRequest) lpResponse {
	resp := lpResponse{Kind: "resp", ReqID: req.ID, Code: http.StatusOK, Body: struct{}{}, Type: "GenericResponse"}
	switch req.Type {
	case "cm.ConsumerRequestConversation":
		c := &conversation{ConversationInfo: ConversationInfo{ID: newUUID(), Consumer: consumer, Request: req.Body}}
		s.open(c)
		resp.Body = map[string]string{"conversationId": c.ID}
		resp.Type = "cm.RequestConversationResponse"
	case "ms.PublishEvent":
		s.mu.Lock()
		resp.Body = map[string]int{"sequence": s.sequence}
		s.sequence++
		s.mu.Unlock()
		resp.Type = "ms.PublishEventResponse"
	}
	return resp
}

// readJSON decodes r's body, all of it, into v.
func readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// writeLPError answers the way LivePerson's Connector API does, with the
// title LivePerson gives code.
func writeLPError(w http.ResponseWriter, status, code int, details string) {
	title, ok := lpTitles[code]
	if !ok {
		title = http.StatusText(status)
	}
	writeJSON(w, status, map[string]any{
		"kind": "resp",
		"code": status,
		"body": map[string]any{"title": title, "details": details, "errorCode": code},
		"type": ".ReqBody$ErrorResp",
	})
}
