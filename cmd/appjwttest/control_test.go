package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lpconnect/appjwt/appjwttest"
	"github.com/lpconnect/appjwt/webhook"
)

// lp talks to a stand-in as a connector in another language would: plain
// HTTP requests, the credentials the banner prints.
type lp struct {
	client                         *http.Client
	url, account, clientID, secret string
}

func lpOf(srv *appjwttest.Server) lp {
	return lp{srv.Client(), srv.URL(), srv.AccountID, srv.ClientID, string(srv.ClientSecret)}
}

// call sends a request and decodes its JSON answer into out, wanting
// status want.
func (c lp) call(t *testing.T, req *http.Request, want int, out any) {
	t.Helper()
	resp, err := c.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %s %s, want %d", req.Method, req.URL.Path, resp.Status, body, want)
	}
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatalf("%s %s: %v in %s", req.Method, req.URL.Path, err, body)
	}
}

// appJWT gets an AppJWT from Sentinel v1.
func (c lp) appJWT(t *testing.T) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.clientID}, "client_secret": {c.secret}}
	req, _ := http.NewRequest("POST", c.url+"/sentinel/api/account/"+c.account+"/app/token?v=1.0", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	c.call(t, req, http.StatusOK, &tok)
	return tok.AccessToken
}

// open opens a conversation for consumer, with a new AppJWT and
// ConsumerJWS, and returns its conversationId.
func (c lp) open(t *testing.T, consumer string) string {
	t.Helper()
	appJWT := c.appJWT(t)
	req, _ := http.NewRequest("POST", c.url+"/api/account/"+c.account+"/consumer?v=1.0", strings.NewReader(`{"ext_consumer_id":"`+consumer+`"}`))
	req.Header.Set("Authorization", appJWT)
	req.Header.Set("Content-Type", "application/json")
	var jws struct{ Token string }
	c.call(t, req, http.StatusCreated, &jws)

	body := `[{"kind":"req","id":"1,","type":"userprofile.SetUserProfile","body":{}},` +
		`{"kind":"req","id":"2,","type":"cm.ConsumerRequestConversation","body":{"brandId":"` + c.account + `","channelType":"MESSAGING"}}]`
	req, _ = http.NewRequest("POST", c.url+"/api/account/"+c.account+"/messaging/consumer/conversation?v=3", strings.NewReader(body))
	req.Header.Set("Authorization", appJWT)
	req.Header.Set("X-LP-ON-BEHALF", jws.Token)
	req.Header.Set("Content-Type", "application/json")
	var answers []struct {
		Body struct {
			ConversationID string `json:"conversationId"`
		} `json:"body"`
	}
	c.call(t, req, http.StatusOK, &answers)
	if len(answers) != 2 || answers[1].Body.ConversationID == "" {
		t.Fatalf("CONVERSATION answered %+v, want a conversationId", answers)
	}
	return answers[1].Body.ConversationID
}

const testToken = "control-token-for-tests"

// controlCall is one request to the control API and its answer.
type controlCall struct {
	name       string
	method     string
	path       string // with the query
	body       string
	wantStatus int
	wantBody   string // exact, after the trailing newline is trimmed; empty: not checked
}

// do sends the request of tt to h, with the test token, and checks the
// answer.
func (tt controlCall) do(t *testing.T, h http.Handler) string {
	t.Helper()
	return tt.doWith(t, h, "Bearer "+testToken)
}

func (tt controlCall) doWith(t *testing.T, h http.Handler, authorization string) string {
	t.Helper()
	req := httptest.NewRequest(cmpOr(tt.method, "GET"), tt.path, strings.NewReader(tt.body))
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	got := strings.TrimSuffix(rec.Body.String(), "\n")
	if rec.Code != tt.wantStatus || tt.wantBody != "" && got != tt.wantBody {
		t.Errorf("%s %s %s: %d %s\nwant %d %s", tt.method, tt.path, tt.body, rec.Code, got, tt.wantStatus, tt.wantBody)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q, want application/json", tt.method, tt.path, ct)
	}
	return got
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// errorBody is the answer of a refusal with text.
func errorBody(text string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(map[string]string{"error": text})
	return strings.TrimSuffix(b.String(), "\n")
}

// newControlTest returns a started stand-in, with its fields set by
// configure, if any, and its control API, which takes testToken, and a
// conversation open in it, and one closed.
func newControlTest(t *testing.T, configure ...func(*appjwttest.Server)) (srv *appjwttest.Server, h http.Handler, open, closed string) {
	t.Helper()
	srv = appjwttest.NewUnstartedServer()
	for _, f := range configure {
		f(srv)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c := lpOf(srv)
	closed = c.open(t, "closed_consumer")
	if !srv.CloseConversation(closed) {
		t.Fatal("CloseConversation: false, want true")
	}
	return srv, newControlHandler(srv, testToken), c.open(t, "john_doe_42"), closed
}

// Every path refuses a request without the token, or with another, before
// it says anything else.
func TestControlUnauthorized(t *testing.T) {
	_, h, _, _ := newControlTest(t)
	paths := []string{"/agent/message", "/agent/chat-state", "/agent/publish", "/agent/close", "/conversations",
		"/faults", "/requests?endpoint=Sentinel", "/webhooks", "/webhook-faults", "/deliveries", "/revoke-tokens", "/", "/nowhere"}
	auths := []string{"", "Bearer", "Bearer ", "Bearer wrong", "Bearer " + testToken + "x", "Bearer " + testToken[1:],
		"Basic " + testToken, testToken, "Bearer  " + testToken}
	want := errorBody(textUnauthorized)
	for _, path := range paths {
		for _, auth := range auths {
			for _, method := range []string{"GET", "POST"} {
				rec := httptest.NewRecorder()
				req := httptest.NewRequest(method, path, strings.NewReader(`{}`))
				if auth != "" {
					req.Header.Set("Authorization", auth)
				}
				h.ServeHTTP(rec, req)
				if got := strings.TrimSpace(rec.Body.String()); rec.Code != 401 || got != want {
					t.Errorf("%s %s, Authorization %q: %d %s, want 401 %s", method, path, auth, rec.Code, got, want)
				}
				if got := rec.Header().Get("WWW-Authenticate"); got != `Bearer realm="appjwttest control"` {
					t.Errorf("%s %s: WWW-Authenticate %q, want the Bearer scheme", method, path, got)
				}
			}
		}
	}
	// The scheme's case does not matter (RFC 9110, 11.1).
	controlCall{path: "/conversations", wantStatus: 200}.doWith(t, h, "bearer "+testToken)
}

func TestControlMethods(t *testing.T) {
	_, h, _, _ := newControlTest(t)
	tests := []struct{ path, allow string }{
		{"/agent/message", "POST"}, {"/agent/chat-state", "POST"}, {"/agent/publish", "POST"}, {"/agent/close", "POST"},
		{"/conversations", "GET"}, {"/faults", "POST"}, {"/requests", "GET"}, {"/webhooks", "PUT"},
		{"/webhook-faults", "POST"}, {"/deliveries", "GET"}, {"/revoke-tokens", "POST"},
	}
	for _, tt := range tests {
		for _, method := range []string{"GET", "POST", "PUT", "DELETE", "PATCH"} {
			if method == tt.allow {
				continue
			}
			req := httptest.NewRequest(method, tt.path, strings.NewReader(`{}`))
			req.Header.Set("Authorization", "Bearer "+testToken)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			want := errorBody("appjwttest: this path takes " + tt.allow + " only")
			if got := strings.TrimSpace(rec.Body.String()); rec.Code != 405 || got != want || rec.Header().Get("Allow") != tt.allow {
				t.Errorf("%s %s: %d %s, Allow %q; want 405 %s, Allow %s", method, tt.path, rec.Code, got, rec.Header().Get("Allow"), want, tt.allow)
			}
		}
	}
	controlCall{path: "/agent", wantStatus: 404, wantBody: errorBody(textNotFound)}.do(t, h)
	controlCall{path: "/conversations/x", wantStatus: 404, wantBody: errorBody(textNotFound)}.do(t, h)
}

// The agent's paths, with what they refuse.
func TestControlAgent(t *testing.T) {
	srv, h, open, closed := newControlTest(t)
	const (
		wantMessage   = `{"error":"appjwttest: the body must be {\"conversationId\":\"<id>\",\"message\":\"<text>\"}"}`
		wantChatState = `{"error":"appjwttest: the body must be {\"conversationId\":\"<id>\",\"chatState\":\"COMPOSING\"}"}`
		wantPublish   = `{"error":"appjwttest: the body must be {\"conversationId\":\"<id>\",\"event\":{\"type\":\"...\",...}}"}`
		wantClose     = `{"error":"appjwttest: the body must be {\"conversationId\":\"<id>\"}"}`
	)
	noConv, closedConv := errorBody(textNoConv), errorBody(textClosedConv)
	tests := []controlCall{
		{"message", "POST", "/agent/message", `{"conversationId":"` + open + `","message":"hello"}`, 200, `{"sequence":0}`},
		{"second message", "POST", "/agent/message", `{"conversationId":"` + open + `","message":"again"}`, 200, `{"sequence":1}`},
		{"empty body", "POST", "/agent/message", ``, 400, wantMessage},
		{"not JSON", "POST", "/agent/message", `conversationId=x`, 400, wantMessage},
		{"an array", "POST", "/agent/message", `[]`, 400, wantMessage},
		{"unknown field", "POST", "/agent/message", `{"conversationId":"` + open + `","message":"hi","text":"hi"}`, 400, wantMessage},
		{"two values", "POST", "/agent/message", `{"conversationId":"` + open + `","message":"hi"}{}`, 400, wantMessage},
		{"number for text", "POST", "/agent/message", `{"conversationId":"` + open + `","message":1}`, 400, wantMessage},
		{"no conversationId", "POST", "/agent/message", `{"message":"hi"}`, 400, wantMessage},
		{"empty message", "POST", "/agent/message", `{"conversationId":"` + open + `","message":""}`, 400,
			`{"error":"appjwttest: AgentPublish: ContentEvent: message must be a string of text"}`},
		{"unknown conversation", "POST", "/agent/message", `{"conversationId":"nope","message":"hi"}`, 404, noConv},
		{"closed conversation", "POST", "/agent/message", `{"conversationId":"` + closed + `","message":"hi"}`, 409, closedConv},

		{"chat state", "POST", "/agent/chat-state", `{"conversationId":"` + open + `","chatState":"COMPOSING"}`, 200, `{}`},
		{"unknown chat state", "POST", "/agent/chat-state", `{"conversationId":"` + open + `","chatState":"TYPING"}`, 400,
			`{"error":"appjwttest: AgentPublish: ChatStateEvent: chatState must be ACTIVE, INACTIVE, GONE, COMPOSING or PAUSE"}`},
		{"chat state, bad body", "POST", "/agent/chat-state", `{"conversationId":"` + open + `","state":"COMPOSING"}`, 400, wantChatState},
		{"chat state, no conversationId", "POST", "/agent/chat-state", `{"chatState":"COMPOSING"}`, 400, wantChatState},
		{"chat state, unknown conversation", "POST", "/agent/chat-state", `{"conversationId":"nope","chatState":"COMPOSING"}`, 404, noConv},
		{"chat state, closed conversation", "POST", "/agent/chat-state", `{"conversationId":"` + closed + `","chatState":"COMPOSING"}`, 409, closedConv},

		{"publish", "POST", "/agent/publish", `{"conversationId":"` + open + `","event":{"type":"AcceptStatusEvent","status":"READ","sequenceList":[0]}}`, 200, `{"sequence":2}`},
		{"publish rich content", "POST", "/agent/publish", `{"conversationId":"` + open + `","event":{"type":"RichContentEvent","content":{"type":"vertical"}}}`, 200, `{"sequence":3}`},
		{"publish a bad event", "POST", "/agent/publish", `{"conversationId":"` + open + `","event":{"type":"Nope"}}`, 400,
			`{"error":"appjwttest: AgentPublish: ms.PublishEvent: event type must be ContentEvent, ChatStateEvent or AcceptStatusEvent"}`},
		{"publish no event", "POST", "/agent/publish", `{"conversationId":"` + open + `"}`, 400,
			`{"error":"appjwttest: AgentPublish: ms.PublishEvent: event must be a JSON object"}`},
		{"publish, bad body", "POST", "/agent/publish", `{"conversationId":"` + open + `","event":{},"x":1}`, 400, wantPublish},
		{"publish, unknown conversation", "POST", "/agent/publish", `{"conversationId":"nope","event":{}}`, 404, noConv},
		{"publish, closed conversation", "POST", "/agent/publish", `{"conversationId":"` + closed + `","event":{}}`, 409, closedConv},

		{"close, bad body", "POST", "/agent/close", `{"id":"` + open + `"}`, 400, wantClose},
		{"close, unknown conversation", "POST", "/agent/close", `{"conversationId":"nope"}`, 404, noConv},
		{"close, closed conversation", "POST", "/agent/close", `{"conversationId":"` + closed + `"}`, 409, closedConv},
		{"close", "POST", "/agent/close", `{"conversationId":"` + open + `"}`, 200, `{}`},
		{"close again", "POST", "/agent/close", `{"conversationId":"` + open + `"}`, 409, closedConv},
		{"message after close", "POST", "/agent/message", `{"conversationId":"` + open + `","message":"hi"}`, 409, closedConv},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.do(t, h) })
	}

	conv, _ := srv.Conversation(open)
	var got []appjwttest.MessagingEvent
	for _, e := range conv.Events {
		e.Content = nil
		got = append(got, e)
	}
	want := []appjwttest.MessagingEvent{
		{Type: "ContentEvent", Role: "ASSIGNED_AGENT", Sequence: 0, Message: "hello"},
		{Type: "ContentEvent", Role: "ASSIGNED_AGENT", Sequence: 1, Message: "again"},
		{Type: "ChatStateEvent", Role: "ASSIGNED_AGENT", Sequence: -1, ChatState: "COMPOSING"},
		{Type: "AcceptStatusEvent", Role: "ASSIGNED_AGENT", Sequence: 2, Status: "READ", SequenceList: []int{0}},
		{Type: "RichContentEvent", Role: "ASSIGNED_AGENT", Sequence: 3},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if conv.State != "CLOSE" {
		t.Errorf("state %s, want CLOSE", conv.State)
	}
}

func TestControlConversations(t *testing.T) {
	srv, h, open, closed := newControlTest(t)
	if _, err := srv.AgentMessage(open, "hello <b>&"); err != nil {
		t.Fatal(err)
	}
	body := controlCall{path: "/conversations", wantStatus: 200}.do(t, h)
	var got []map[string]any
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{
		{"conversationId": closed, "consumer": "closed_consumer", "state": "CLOSE", "profile": map[string]any{},
			"request": map[string]any{"brandId": srv.AccountID, "channelType": "MESSAGING"}, "features": []any{}, "events": []any{}},
		{"conversationId": open, "consumer": "john_doe_42", "state": "OPEN", "profile": map[string]any{},
			"request": map[string]any{"brandId": srv.AccountID, "channelType": "MESSAGING"}, "features": []any{},
			"events": []any{map[string]any{"type": "ContentEvent", "role": "ASSIGNED_AGENT", "sequence": 0.0, "message": "hello <b>&"}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GET /conversations (-want +got):\n%s", diff)
	}
	if !strings.Contains(body, "hello <b>&") {
		t.Errorf("GET /conversations escapes HTML: %s", body)
	}

	srv2 := appjwttest.NewServer()
	defer srv2.Close()
	controlCall{path: "/conversations", wantStatus: 200, wantBody: `[]`}.do(t, newControlHandler(srv2, testToken))
}

func TestControlFaults(t *testing.T) {
	srv, h, _, _ := newControlTest(t)
	want := errorBody(`appjwttest: the body must be {"endpoint":"Sentinel","faults":[{"status":503,"retryAfter":"1","body":"...","delayMs":0,"hang":false,"reset":false}]}, ` +
		`with endpoint one of DomainAPI, Sentinel, Consumer, Conversation, Send, SentinelV2Token, JWKS, V2API, status 0 or from 100 to 599 and delayMs not negative`)
	tests := []controlCall{
		{"unknown endpoint", "POST", "/faults", `{"endpoint":"Nope","faults":[{"status":503}]}`, 400, want},
		{"endpoint by number", "POST", "/faults", `{"endpoint":2,"faults":[{"status":503}]}`, 400, want},
		{"no faults", "POST", "/faults", `{"endpoint":"Sentinel","faults":[]}`, 400, want},
		{"status 99", "POST", "/faults", `{"endpoint":"Sentinel","faults":[{"status":99}]}`, 400, want},
		{"status 600", "POST", "/faults", `{"endpoint":"Sentinel","faults":[{"status":600}]}`, 400, want},
		{"negative delay", "POST", "/faults", `{"endpoint":"Sentinel","faults":[{"status":503,"delayMs":-1}]}`, 400, want},
		{"unknown field", "POST", "/faults", `{"endpoint":"Sentinel","faults":[{"code":503}]}`, 400, want},
		{"Sentinel 503 then 429", "POST", "/faults", `{"endpoint":"Sentinel","faults":[{"status":503,"body":"down"},{"status":429,"retryAfter":"7"}]}`, 200, `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.do(t, h) })
	}
	c := lpOf(srv)
	for _, want := range []struct {
		status     int
		retryAfter string
	}{{503, ""}, {429, "7"}, {200, ""}} {
		resp, err := c.client.PostForm(c.url+"/sentinel/api/account/"+c.account+"/app/token?v=1.0",
			url.Values{"grant_type": {"client_credentials"}, "client_id": {c.clientID}, "client_secret": {c.secret}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want.status || resp.Header.Get("Retry-After") != want.retryAfter {
			t.Errorf("Sentinel answered %s, Retry-After %q; want %d, %q", resp.Status, resp.Header.Get("Retry-After"), want.status, want.retryAfter)
		}
	}
}

// Every endpoint has a name in the control API: a new one must be added
// to endpoints and endpointNames.
func TestControlEndpointNames(t *testing.T) {
	var names []string
	for _, e := range endpoints {
		names = append(names, e.String())
	}
	if got := strings.Join(names, ", "); got != endpointNames {
		t.Errorf("endpointNames %q, want %q", endpointNames, got)
	}
	if next := (endpoints[len(endpoints)-1] + 1).String(); !strings.HasPrefix(next, "Endpoint(") {
		t.Errorf("endpoint %s has no name in the control API", next)
	}
}

// GET /requests shows what each endpoint got, but neither the client
// secret nor a token.
func TestControlRequests(t *testing.T) {
	srv, h, _, _ := newControlTest(t)
	want := errorBody("appjwttest: the query must be endpoint=<name>, with name one of " + endpointNames)
	for _, q := range []string{"", "?endpoint=", "?endpoint=sentinel", "?endpoint=Nope"} {
		controlCall{path: "/requests" + q, wantStatus: 400, wantBody: want}.do(t, h)
	}
	controlCall{path: "/requests?endpoint=V2API", wantStatus: 200, wantBody: `[]`}.do(t, h)

	// The secret in the query string too.
	c := lpOf(srv)
	resp, err := c.client.Post(c.url+"/sentinel/api/account/"+c.account+"/app/token?v=1.0&grant_type=client_credentials&client_id="+c.clientID+"&client_secret="+c.secret,
		"application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	body := controlCall{path: "/requests?endpoint=Sentinel", wantStatus: 200}.do(t, h)
	var got []requestJSON
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("GET /requests?endpoint=Sentinel: %d requests, want 3", len(got))
	}
	wantForm := url.Values{"grant_type": {"client_credentials"}, "client_id": {srv.ClientID}, "client_secret": {withheld}}
	if diff := cmp.Diff(wantForm, got[0].Form); diff != "" || got[0].Body != withheld || got[0].Method != "POST" || got[0].Status != 200 || got[0].ErrorCode != "" {
		t.Errorf("first token request: %s %s, status %d %q, body %q, form (-want +got):\n%s", got[0].Method, got[0].Path, got[0].Status, got[0].ErrorCode, got[0].Body, diff)
	}
	wantQuery := url.Values{"v": {"1.0"}, "grant_type": {"client_credentials"}, "client_id": {srv.ClientID}, "client_secret": {withheld}}
	if diff := cmp.Diff(wantQuery, got[2].Query); diff != "" || got[2].Body != "" {
		t.Errorf("token request with the secret in the query: body %q, query (-want +got):\n%s", got[2].Body, diff)
	}

	// A secret that is not the stand-in's, such as a connector's own sent
	// here by mistake, is withheld too, whole (review).
	resp, err = c.client.PostForm(c.url+"/sentinel/api/account/"+c.account+"/app/token?v=1.0", url.Values{"grant_type": {"client_credentials"}, "client_id": {"other"}, "client_secret": {"PRODsecretXYZ123456"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if body := (controlCall{path: "/requests?endpoint=Sentinel", wantStatus: 200}).do(t, h); strings.Contains(body, "PRODsecret") {
		t.Errorf("GET /requests shows a client secret that is not the stand-in's: %s", body)
	}

	convBody := controlCall{path: "/requests?endpoint=Conversation", wantStatus: 200}.do(t, h)
	var conv []requestJSON
	if err := json.Unmarshal([]byte(convBody), &conv); err != nil {
		t.Fatal(err)
	}
	if len(conv) != 2 || conv[0].Header["Authorization"][0] != withheld || conv[0].Header["X-Lp-On-Behalf"][0] != withheld {
		t.Errorf("CONVERSATION requests %+v, want two, their tokens withheld", conv)
	}
	for _, b := range []string{body, convBody} {
		if strings.Contains(b, string(srv.ClientSecret)) || strings.Contains(b, "eyJ") {
			t.Errorf("GET /requests shows the secret or a JWT:\n%s", b)
		}
	}
}

func TestControlRequestsBearer(t *testing.T) {
	got := newRequestJSON(appjwttest.Request{Header: http.Header{"Authorization": {"Bearer eyJ.x.y", "eyJ.x.y"}, "Accept": {"*/*"}}}, "0123456789abcdefghijkl")
	want := http.Header{"Authorization": {"Bearer " + withheld, withheld}, "Accept": {"*/*"}}
	if diff := cmp.Diff(want, got.Header); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
}

// receiver is a webhook endpoint that answers 200 and keeps what it got.
type receiver struct {
	*httptest.Server
	got chan delivered
}

// next returns the next delivery, within 10 s.
func (r *receiver) next(t *testing.T) delivered {
	t.Helper()
	select {
	case d := <-r.got:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery within 10 s")
		return delivered{}
	}
}

// testWriter writes to t's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

type delivered struct {
	path   string
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{got: make(chan delivered, 16)}
	r.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.got <- delivered{req.URL.Path, req.Header.Clone(), body}
	}))
	// Into the test's log: a connection the delivery client opens and
	// drops unused is a TLS handshake error here, and no failure.
	r.Config.ErrorLog = log.New(testWriter{t}, "receiver: ", 0)
	r.StartTLS()
	t.Cleanup(r.Close)
	return r
}

func TestControlWebhooks(t *testing.T) {
	recv := newReceiver(t)
	srv, h, open, _ := newControlTest(t, func(s *appjwttest.Server) { s.WebhookClient = recv.Client() })
	wantBody := errorBody(`appjwttest: the body must be capabilities.webhooks, such as {"ms.MessagingEventNotification.ContentEvent":{"endpoint":"https://127.0.0.1:9443/lp","max_retries":3}}`)
	content := `"` + appjwttest.WebhookContentEvent + `"`
	tests := []controlCall{
		{"not an object", "PUT", "/webhooks", `[]`, 400, wantBody},
		{"unknown field", "PUT", "/webhooks", `{` + content + `:{"endpoint":"` + recv.URL + `","retries":3}}`, 400, wantBody},
		{"http", "PUT", "/webhooks", `{` + content + `:{"endpoint":"http://127.0.0.1:1/lp"}}`, 400,
			errorBody("appjwttest: webhook ms.MessagingEventNotification.ContentEvent: endpoint is not an https URL")},
		{"unknown type", "PUT", "/webhooks", `{"ms.Nope":{"endpoint":"` + recv.URL + `"}}`, 400,
			errorBody(`appjwttest: webhook "ms.Nope": not an event type LivePerson delivers`)},
		{"too many retries", "PUT", "/webhooks", `{` + content + `:{"endpoint":"` + recv.URL + `","max_retries":6}}`, 400,
			errorBody("appjwttest: webhook ms.MessagingEventNotification.ContentEvent: max_retries 6 is not between 0 and 5")},
		{"register", "PUT", "/webhooks", `{` + content + `:{"endpoint":"` + recv.URL + `/lp","max_retries":1}}`, 200, `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.do(t, h) })
	}

	wantFaults := errorBody(`appjwttest: the body must be {"webhook":"<event type>","faults":[{"duplicate":false,"reorder":false,"badSignature":false,"oversize":0}]}, ` +
		`with webhook one of ` + webhookNames + ` and oversize not negative`)
	for _, tt := range []controlCall{
		{"fault, unknown type", "POST", "/webhook-faults", `{"webhook":"ms.Nope","faults":[{"duplicate":true}]}`, 400, wantFaults},
		{"fault, part of a type", "POST", "/webhook-faults", `{"webhook":"ContentEvent","faults":[{"duplicate":true}]}`, 400, wantFaults},
		{"fault, none", "POST", "/webhook-faults", `{"webhook":` + content + `,"faults":[]}`, 400, wantFaults},
		{"fault, negative oversize", "POST", "/webhook-faults", `{"webhook":` + content + `,"faults":[{"oversize":-1}]}`, 400, wantFaults},
		{"fault, unknown field", "POST", "/webhook-faults", `{"webhook":` + content + `,"faults":[{"forge":true}]}`, 400, wantFaults},
		{"fault", "POST", "/webhook-faults", `{"webhook":` + content + `,"faults":[{"badSignature":true}]}`, 200, `{}`},
	} {
		t.Run(tt.name, func(t *testing.T) { tt.do(t, h) })
	}

	for _, msg := range []string{"forged", "signed"} {
		controlCall{"message", "POST", "/agent/message", `{"conversationId":"` + open + `","message":"` + msg + `"}`, 200, ""}.do(t, h)
	}
	v, err := webhook.Config{AccountID: srv.AccountID, ClientID: srv.ClientID, ClientSecret: srv.ClientSecret}.NewVerifier()
	if err != nil {
		t.Fatal(err)
	}
	for i, wantOK := range []bool{false, true} {
		d := recv.next(t)
		if err := v.Verify(d.header, d.body); (err == nil) != wantOK {
			t.Errorf("delivery %d: Verify: %v, want ok %v", i, err, wantOK)
		}
	}

	body := controlCall{path: "/deliveries?wait=10s", wantStatus: 200}.do(t, h)
	var got []deliveryJSON
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	ds := srv.Deliveries()
	if len(got) != 2 || len(ds) != 2 {
		t.Fatalf("GET /deliveries: %d deliveries, the server %d; want 2", len(got), len(ds))
	}
	for i, d := range got {
		if d.Webhook != appjwttest.WebhookContentEvent || d.Endpoint != recv.URL+"/lp" || !d.Delivered ||
			len(d.Attempts) != 1 || d.Attempts[0].Status != 200 || d.Attempts[0].DurationMs <= 0 ||
			d.Body != string(ds[i].Body) || d.Header.Get(webhook.HeaderSignature) != ds[i].Header.Get(webhook.HeaderSignature) {
			t.Errorf("delivery %d: %+v, want the server's, delivered at the first attempt", i, d)
		}
		if d.Fault.BadSignature != (i == 0) {
			t.Errorf("delivery %d: fault %+v, want badSignature %v", i, d.Fault, i == 0)
		}
	}
	if err := v.Verify(got[1].Header, []byte(got[1].Body)); err != nil {
		t.Errorf("the signature GET /deliveries shows does not verify its body: %v", err)
	}

	controlCall{"remove all", "PUT", "/webhooks", `{}`, 200, `{}`}.do(t, h)
	controlCall{"message", "POST", "/agent/message", `{"conversationId":"` + open + `","message":"unheard"}`, 200, ""}.do(t, h)
	if n := len(srv.Deliveries()); n != 2 {
		t.Errorf("%d deliveries after the webhooks were removed, want 2", n)
	}
}

func TestControlRevokeTokens(t *testing.T) {
	srv, h, _, _ := newControlTest(t)
	c := lpOf(srv)
	tok := c.appJWT(t)
	if _, err := srv.Verify(appjwttest.Sentinel, tok); err != nil {
		t.Fatal(err)
	}
	controlCall{"revoke", "POST", "/revoke-tokens", ``, 200, `{}`}.do(t, h)
	if _, err := srv.Verify(appjwttest.Sentinel, tok); err == nil {
		t.Error("an AppJWT issued before POST /revoke-tokens still verifies")
	}
	if _, err := srv.Verify(appjwttest.Sentinel, c.appJWT(t)); err != nil {
		t.Errorf("an AppJWT issued after POST /revoke-tokens: %v", err)
	}
}

// The banner's control lines, and the curl line after them.
func TestControlBanner(t *testing.T) {
	b, _ := runInProcess(t)
	if !strings.HasPrefix(b["control"], "https://127.0.0.1:") || len(b["control-token"]) != 43 {
		t.Errorf("banner %v, want a control URL on loopback and a 256-bit token", b)
	}
	if b["control-token"] == b["client-secret"] {
		t.Error("the control token is the client secret")
	}
	if code, ok := strings.CutPrefix(b["console"], b["control"]+"/console/login?code="); !ok || len(code) != 43 || code == b["control-token"] {
		t.Errorf("banner's console %q, want the control URL's /console/login with a 256-bit code of its own", b["console"])
	}
}

func TestControlUsage(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args       []string
		wantStderr string
	}{
		{[]string{"-control-addr", "0.0.0.0:0"}, "appjwttest: -control-addr must be on loopback, such as 127.0.0.1:8444: whoever reaches it acts as the agent\n"},
		{[]string{"-control-addr", ":0"}, "-control-addr must be on loopback"},
		{[]string{"-control-addr", "192.0.2.1:0"}, "-control-addr must be on loopback"},
		{[]string{"-control-addr", "example.com:0"}, "-control-addr must be on loopback"},
		{[]string{"-control-addr", "127.0.0.1"}, "appjwttest: -control-addr is not a host:port, such as 127.0.0.1:8444\n"},
		{[]string{"-webhooks", "[]"}, `appjwttest: -webhooks is not a JSON object such as {"ms.MessagingEventNotification.ContentEvent":{"endpoint":"https://127.0.0.1:9443/lp","max_retries":3}}` + "\n"},
		{[]string{"-webhooks", "null"}, "appjwttest: -webhooks is not a JSON object"},
		{[]string{"-webhooks", `{"ms.MessagingEventNotification.ContentEvent":{"endpoint":"https://127.0.0.1:9/lp","retries":3}}`}, "appjwttest: -webhooks is not a JSON object"},
		{[]string{"-webhooks", `{} {}`}, "appjwttest: -webhooks is not a JSON object"},
		{[]string{"-webhooks", `{"ms.MessagingEventNotification.ContentEvent":{"endpoint":"http://127.0.0.1:9/lp"}}`},
			"appjwttest: -webhooks: appjwttest: webhook ms.MessagingEventNotification.ContentEvent: endpoint is not an https URL\n"},
		{[]string{"-webhook-ca", filepath.Join(dir, "none.pem")}, "appjwttest: -webhook-ca: open "},
		{[]string{"-webhook-ca", notPEM}, "appjwttest: -webhook-ca: the file holds no PEM certificate\n"},
		{[]string{"-webhook-retry-pause", "-1s"}, "appjwttest: -webhook-retry-pause is negative\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, &stdout, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr.String(), tt.wantStderr)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
		})
	}
}

// docs/testing.md's table lists every path, with its method, and its curl
// examples use those only, as the table says.
func TestControlDocs(t *testing.T) {
	md, err := os.ReadFile(filepath.Join("..", "..", "docs", "testing.md"))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, r := range (controlHandler{}).routes() {
		want = append(want, r.method+" "+r.path)
	}
	var table []string
	for _, m := range regexp.MustCompile("(?m)^\\| `(GET|POST|PUT|DELETE) (/[a-z/-]+)").FindAllStringSubmatch(string(md), -1) {
		table = append(table, m[1]+" "+m[2])
	}
	if diff := cmp.Diff(want, table); diff != "" {
		t.Errorf("docs/testing.md's table of the control API (-routes +table):\n%s", diff)
	}
	curls := regexp.MustCompile(`ctl (-X (PUT|POST) )?(-d '[^']*' )?(\\\n *)?"\$APPJWTTEST_CONTROL(/[a-z/-]+)`).FindAllStringSubmatch(string(md), -1)
	if len(curls) < len(want) {
		t.Errorf("docs/testing.md has %d curl examples of the control API, want one per path at least", len(curls))
	}
	for _, m := range curls {
		method := "GET"
		if m[2] != "" {
			method = m[2]
		} else if m[3] != "" {
			method = "POST" // curl -d
		}
		if !slices.Contains(want, method+" "+m[5]) {
			t.Errorf("docs/testing.md: %s is %s %s, which the control API does not serve", m[0], method, m[5])
		}
	}
}

// GET /deliveries?wait= answers once no delivery is pending, or when the
// wait runs out.
func TestControlDeliveriesWait(t *testing.T) {
	release := make(chan struct{})
	recv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done(): // the test failed before it released it
		}
	}))
	defer recv.Close()
	srv, h, open, _ := newControlTest(t, func(s *appjwttest.Server) { s.WebhookClient = recv.Client() })
	if err := srv.SetWebhooks(map[string]appjwttest.Webhook{appjwttest.WebhookContentEvent: {Endpoint: recv.URL}}); err != nil {
		t.Fatal(err)
	}
	want := errorBody("appjwttest: wait must be a duration from 0s to 1m, such as wait=5s")
	for _, q := range []string{"wait", "wait=", "wait=5", "wait=-1s", "wait=61s", "wait=forever"} {
		controlCall{path: "/deliveries?" + q, wantStatus: 400, wantBody: want}.do(t, h)
	}
	controlCall{path: "/deliveries?wait=10s", wantStatus: 200, wantBody: "[]"}.do(t, h)

	if _, err := srv.AgentMessage(open, "hello"); err != nil {
		t.Fatal(err)
	}
	var got []deliveryJSON
	json.Unmarshal([]byte(controlCall{path: "/deliveries?wait=20ms", wantStatus: 200}.do(t, h)), &got)
	if len(got) != 1 || got[0].Delivered || len(got[0].Attempts) != 0 {
		t.Errorf("while the endpoint holds the delivery: %+v, want one, pending", got)
	}
	close(release)
	json.Unmarshal([]byte(controlCall{path: "/deliveries?wait=10s", wantStatus: 200}.do(t, h)), &got)
	if len(got) != 1 || !got[0].Delivered {
		t.Errorf("once the endpoint answered: %+v, want one, delivered", got)
	}
}
