package appjwttest_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lpconnect/appjwt/appjwttest"
)

// Bodies as LivePerson documents them; {account} and {conv} stand for the
// account and a conversationId.
const (
	// minimalConversation is LivePerson's minimal CONVERSATION body, with
	// the channelType its property table calls mandatory.
	minimalConversation = `[{"kind":"req","id":"1,","type":"userprofile.SetUserProfile","body":{}},` +
		`{"kind":"req","id":"2,","type":"cm.ConsumerRequestConversation","body":{"brandId":"{account}","channelType":"MESSAGING"}}]`
	// fullConversation is LivePerson's example with SDEs, a campaign and a
	// context.
	fullConversation = `[{"kind":"req","id":"1,","type":"userprofile.SetUserProfile",` +
		`"body":{"authenticatedData":{"lp_sdes":[{"type":"ctmrinfo","info":{"socialId":"1234567890","ctype":"vip"}},` +
		`{"type":"personal","personal":{"firstname":"John","lastname":"Doe","gender":"MALE"}}]}}},` +
		`{"kind":"req","id":"2,","type":"cm.ConsumerRequestConversation",` +
		`"body":{"ttrDefName":"NORMAL","campaignInfo":{"campaignId":"99999","engagementId":"888888"},` +
		`"conversationContext":{"visitorId":"A3ZTY3Zjk1MDExZTczYTU4","sessionId":"ys2wSqaSRSOJGki7VhEDKQ","interactionContextId":"2","type":"SharkContext","lang":"en-US"},` +
		`"channelType":"MESSAGING","brandId":"{account}","skillId":"-1"}}]`
	sendMessage       = `{"kind":"req","id":"1","type":"ms.PublishEvent","body":{"dialogId":"{conv}","event":{"type":"ContentEvent","contentType":"text/plain","message":"hello"}}}`
	closeConversation = `{"kind":"req","id":1,"type":"cm.UpdateConversationField","body":{"conversationId":"{conv}","conversationField":{"field":"ConversationStateField","conversationState":"CLOSE"}}}`

	// The answers LivePerson documents, with <id> for the conversationId.
	openedAnswer = `[{"code":"OK","body":{"msg":"OK User Profile set successfully"},"reqId":"1,"},{"code":"OK","body":{"conversationId":"<id>"},"reqId":"2,"}]`
	sentAnswer   = `{"reqId":"1","code":"OK","body":{"sequence":0}}`
	emptyAnswer  = `{"reqId":"1","code":"OK","body":{}}`
)

// batch is a CONVERSATION body with the given profile and conversation
// request bodies.
func batch(profile, request string) string {
	return `[{"kind":"req","id":"1,","type":"userprofile.SetUserProfile","body":` + profile + `},` +
		`{"kind":"req","id":"2,","type":"cm.ConsumerRequestConversation","body":` + request + `}]`
}

// publish is a SEND body that publishes event in {conv}.
func publish(event string) string {
	return `{"kind":"req","id":"1","type":"ms.PublishEvent","body":{"dialogId":"{conv}","event":` + event + `}}`
}

// closing is a SEND body that updates {conv} with field.
func closing(field string) string {
	return `{"kind":"req","id":"1","type":"cm.UpdateConversationField","body":{"conversationId":"{conv}","conversationField":` + field + `}}`
}

// sender sends Send API requests on behalf of one consumer, with valid
// tokens.
type sender struct {
	t        *testing.T
	s        *appjwttest.Server
	app, jws string
	conv     string // what {conv} stands for
}

func newSender(t *testing.T, s *appjwttest.Server, extConsumerID string) *sender {
	t.Helper()
	app := fetchToken(t, s)
	return &sender{t: t, s: s, app: app, jws: fetchConsumerJWS(t, s, app, extConsumerID)}
}

// post sends body, its placeholders filled in, to CONVERSATION (path
// "conversation") or SEND ("conversation/send"), with the headers of h
// besides the tokens.
func (c *sender) post(path, body string, h http.Header) (*http.Response, string) {
	c.t.Helper()
	header := http.Header{"Authorization": {c.app}, "X-LP-ON-BEHALF": {c.jws}}
	for k, v := range h {
		header[k] = v
	}
	body = strings.NewReplacer("{account}", c.s.AccountID, "{conv}", c.conv).Replace(body)
	return do(c.t, c.s, "POST", "/api/account/"+c.s.AccountID+"/messaging/consumer/"+path+"?v=3", "application/json", body, header)
}

// open opens a conversation and makes it what {conv} stands for.
func (c *sender) open() string {
	c.t.Helper()
	resp, body := c.post("conversation", minimalConversation, nil)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("CONVERSATION: %s %s", resp.Status, body)
	}
	c.conv = conversationID(c.t, body)
	return c.conv
}

// send sends a SEND body and returns the status and the answer, trimmed.
func (c *sender) send(body string) (int, string) {
	c.t.Helper()
	resp, got := c.post("conversation/send", body, nil)
	return resp.StatusCode, strings.TrimSpace(got)
}

// conversationID returns the conversationId of CONVERSATION's answer.
func conversationID(t *testing.T, answer string) string {
	t.Helper()
	var entries []struct {
		Body struct{ ConversationID string }
	}
	if err := json.Unmarshal([]byte(answer), &entries); err != nil || len(entries) != 2 || len(entries[1].Body.ConversationID) != 36 {
		t.Fatalf("CONVERSATION answered %s (%v), want two entries, the second with a UUID", answer, err)
	}
	return entries[1].Body.ConversationID
}

var uuid = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}`)

// checkAnswer checks a Send API answer: status, and the whole body if
// want is set (with <id> for any UUID), or else LivePerson's error body
// with errorCode, title and details.
func checkAnswer(t *testing.T, status int, body string, wantStatus int, want string, wantErr lpErrorBody) {
	t.Helper()
	if status != wantStatus {
		t.Errorf("status %d (%s), want %d", status, body, wantStatus)
	}
	if wantStatus == http.StatusOK {
		if got := uuid.ReplaceAllString(strings.TrimSpace(body), "<id>"); got != want {
			t.Errorf("answer\n%s\nwant\n%s", got, want)
		}
		return
	}
	wantErr.Kind, wantErr.Type, wantErr.Code = "resp", ".ReqBody$ErrorResp", wantStatus
	if diff := cmp.Diff(wantErr, decodeLPError(body)); diff != "" {
		t.Errorf("error body %s mismatch (-want +got):\n%s", body, diff)
	}
}

// missingParameter is a 40001 error with the given details.
func missingParameter(details string) lpErrorBody {
	return lpErrorBody{Title: "Missing parameter", Details: details, ErrorCode: 40001}
}

const (
	notTwoRequests = "the body must be a JSON array of two requests: userprofile.SetUserProfile, then cm.ConsumerRequestConversation"
	badSDE         = `userprofile.SetUserProfile: each lp_sdes entry must be {"type":"ctmrinfo","info":{...}} or {"type":"personal","personal":{...}}`
	badProperties  = `the Client-Properties header must be one JSON object such as {"type":".ClientProperties","features":["AUTO_MESSAGES"]}`
	notOneRequest  = `each request must be a JSON object: {"kind":"req","id":...,"type":...,"body":{...}}`
)

func TestConversationBodies(t *testing.T) {
	s := newServer(t)
	const request = `{"brandId":"{account}","channelType":"MESSAGING"}`
	tests := []struct {
		name       string
		body       string
		properties string // the Client-Properties header, if any
		wantStatus int
		want       string      // the answer, for a 200
		wantErr    lpErrorBody // the error, otherwise
	}{
		{name: "LivePerson's minimal body, with channelType", body: minimalConversation, wantStatus: 200, want: openedAnswer},
		{name: "LivePerson's example with SDEs, campaign and context", body: fullConversation, wantStatus: 200, want: openedAnswer},
		{name: "ids swapped, as in LivePerson's examples", wantStatus: 200,
			body: `[{"kind":"req","id":"2,","type":"userprofile.SetUserProfile","body":{}},{"kind":"req","id":"1,","type":"cm.ConsumerRequestConversation","body":` + request + `}]`,
			want: `[{"code":"OK","body":{"msg":"OK User Profile set successfully"},"reqId":"2,"},{"code":"OK","body":{"conversationId":"<id>"},"reqId":"1,"}]`},
		{name: "numeric ids", wantStatus: 200,
			body: `[{"kind":"req","id":1,"type":"userprofile.SetUserProfile","body":{}},{"kind":"req","id":2,"type":"cm.ConsumerRequestConversation","body":` + request + `}]`,
			want: `[{"code":"OK","body":{"msg":"OK User Profile set successfully"},"reqId":"1"},{"code":"OK","body":{"conversationId":"<id>"},"reqId":"2"}]`},
		{name: "ttrDefName null", body: batch(`{}`, `{"brandId":"{account}","channelType":"MESSAGING","ttrDefName":null}`), wantStatus: 200, want: openedAnswer},
		{name: "Client-Properties", body: minimalConversation, properties: `{"type":".ClientProperties","features":["AUTO_MESSAGES"]}`, wantStatus: 200, want: openedAnswer},

		{name: "not JSON", body: `<html>`, wantStatus: 400, wantErr: missingParameter(notTwoRequests)},
		{name: "one request", body: `{"kind":"req","id":"1","type":"cm.ConsumerRequestConversation","body":` + request + `}`, wantStatus: 400, wantErr: missingParameter(notTwoRequests)},
		{name: "no profile, as the README sent it", body: `[{"kind":"req","id":"1","type":"cm.ConsumerRequestConversation","body":{"brandId":"{account}"}}]`, wantStatus: 400, wantErr: missingParameter(notTwoRequests)},
		{name: "empty array", body: `[]`, wantStatus: 400, wantErr: missingParameter(notTwoRequests)},
		{name: "profile second", wantStatus: 400, wantErr: missingParameter(notTwoRequests),
			body: `[{"kind":"req","id":"2,","type":"cm.ConsumerRequestConversation","body":` + request + `},{"kind":"req","id":"1,","type":"userprofile.SetUserProfile","body":{}}]`},
		{name: "three requests", wantStatus: 400, wantErr: missingParameter(notTwoRequests),
			body: strings.TrimSuffix(minimalConversation, "]") + `,{"kind":"req","id":"3,","type":"userprofile.SetUserProfile","body":{}}]`},
		{name: "a request that is no object", body: `["x",{}]`, wantStatus: 400, wantErr: missingParameter(notOneRequest)},
		{name: "kind other than req", body: strings.Replace(minimalConversation, `"kind":"req"`, `"kind":"request"`, 1), wantStatus: 400, wantErr: missingParameter(`kind must be "req"`)},
		{name: "no id", body: strings.Replace(minimalConversation, `"id":"1,",`, ``, 1), wantStatus: 400, wantErr: missingParameter("id must be a string or a number")},
		{name: "id an object", body: strings.Replace(minimalConversation, `"id":"1,"`, `"id":{}`, 1), wantStatus: 400, wantErr: missingParameter("id must be a string or a number")},
		{name: "profile body an array", body: batch(`[]`, request), wantStatus: 400, wantErr: missingParameter("userprofile.SetUserProfile: body must be a JSON object")},
		{name: "no profile body", body: strings.Replace(minimalConversation, `"body":{}`, `"x":{}`, 1), wantStatus: 400, wantErr: missingParameter("userprofile.SetUserProfile: body must be a JSON object")},
		{name: "an SDE of another type", body: batch(`{"authenticatedData":{"lp_sdes":[{"type":"purchase","purchase":{}}]}}`, request), wantStatus: 400, wantErr: missingParameter(badSDE)},
		{name: "a personal SDE without personal", body: batch(`{"authenticatedData":{"lp_sdes":[{"type":"personal","info":{}}]}}`, request), wantStatus: 400, wantErr: missingParameter(badSDE)},
		{name: "lp_sdes an object", body: batch(`{"authenticatedData":{"lp_sdes":{}}}`, request), wantStatus: 400,
			wantErr: missingParameter("userprofile.SetUserProfile: authenticatedData.lp_sdes has the wrong JSON type")},
		{name: "no brandId", body: batch(`{}`, `{"channelType":"MESSAGING"}`), wantStatus: 400, wantErr: missingParameter("Brand Id is missing")},
		{name: "empty brandId", body: batch(`{}`, `{"brandId":"","channelType":"MESSAGING"}`), wantStatus: 400, wantErr: missingParameter("Brand Id is missing")},
		{name: "brandId null", body: batch(`{}`, `{"brandId":null,"channelType":"MESSAGING"}`), wantStatus: 400, wantErr: missingParameter("Brand Id is missing")},
		{name: "brandId of another account", body: batch(`{}`, `{"brandId":"le0","channelType":"MESSAGING"}`), wantStatus: 400,
			wantErr: missingParameter("cm.ConsumerRequestConversation: brandId must be the account in the URL")},
		{name: "brandId a number", body: batch(`{}`, `{"brandId":12345678,"channelType":"MESSAGING"}`), wantStatus: 400,
			wantErr: missingParameter("cm.ConsumerRequestConversation: brandId has the wrong JSON type")},
		{name: "channelType empty", body: batch(`{}`, `{"brandId":"{account}","channelType":""}`), wantStatus: 400, wantErr: missingParameter("cm.ConsumerRequestConversation: channelType is missing")},
		{name: "channelType CHAT", body: batch(`{}`, `{"brandId":"{account}","channelType":"CHAT"}`), wantStatus: 400, wantErr: missingParameter("cm.ConsumerRequestConversation: channelType must be MESSAGING")},
		{name: "ttrDefName SLOW", body: batch(`{}`, `{"brandId":"{account}","channelType":"MESSAGING","ttrDefName":"SLOW"}`), wantStatus: 400,
			wantErr: missingParameter("cm.ConsumerRequestConversation: ttrDefName must be NORMAL, URGENT, PRIORITIZED or null")},
		{name: "campaignInfo a string", body: batch(`{}`, `{"brandId":"{account}","channelType":"MESSAGING","campaignInfo":"99999"}`), wantStatus: 400,
			wantErr: missingParameter("cm.ConsumerRequestConversation: campaignInfo has the wrong JSON type")},
		{name: "Client-Properties not JSON", body: minimalConversation, properties: `AUTO_MESSAGES`, wantStatus: 400, wantErr: missingParameter(badProperties)},
		{name: "Client-Properties an array", body: minimalConversation, properties: `["AUTO_MESSAGES"]`, wantStatus: 400, wantErr: missingParameter(badProperties)},
		{name: "Client-Properties of another type", body: minimalConversation, properties: `{"type":".Other","features":[]}`, wantStatus: 400, wantErr: missingParameter(badProperties)},
		{name: "Client-Properties features not strings", body: minimalConversation, properties: `{"features":[1]}`, wantStatus: 400, wantErr: missingParameter(badProperties)},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newSender(t, s, "consumer"+string(rune('A'+i)))
			var h http.Header
			if tt.properties != "" {
				h = http.Header{"Client-Properties": {tt.properties}}
			}
			resp, body := c.post("conversation", tt.body, h)
			checkAnswer(t, resp.StatusCode, body, tt.wantStatus, tt.want, tt.wantErr)
			if resp.StatusCode == http.StatusOK && resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type %q, want application/json", resp.Header.Get("Content-Type"))
			}
		})
	}
	if got, want := len(s.Conversations()), 6; got != want {
		t.Errorf("%d conversations opened, want %d: one per valid body", got, want)
	}
}

func TestSendBodies(t *testing.T) {
	s := newServer(t)
	const (
		badEvent       = "ms.PublishEvent: event type must be ContentEvent, ChatStateEvent or AcceptStatusEvent"
		badContentType = "ContentEvent: contentType must be text/plain, the only one appjwttest takes"
		badMessage     = "ContentEvent: message must be a string of text"
		badChatState   = "ChatStateEvent: chatState must be ACTIVE, INACTIVE, GONE, COMPOSING or PAUSE"
		badStatus      = "AcceptStatusEvent: status must be ACCEPT, READ, ACCESS, NACK or ACTION"
		badSequences   = "AcceptStatusEvent: sequenceList must be a non-empty array of sequences"
		badField       = `cm.UpdateConversationField: conversationField must be {"field":"ConversationStateField","conversationState":"CLOSE"}, the only one appjwttest takes`
		badType        = "type must be ms.PublishEvent, cm.UpdateConversationField or userprofile.SetUserProfile"
		closeField     = `{"field":"ConversationStateField","conversationState":"CLOSE"}`
	)
	type bodyCase struct {
		name       string
		body       string
		wantStatus int
		want       string      // the answer, for a 200
		wantErr    lpErrorBody // the error, otherwise
	}
	tests := []bodyCase{
		{"a message", sendMessage, 200, sentAnswer, lpErrorBody{}},
		{"numeric id", strings.Replace(sendMessage, `"id":"1"`, `"id":7`, 1), 200, `{"reqId":"7","code":"OK","body":{"sequence":0}}`, lpErrorBody{}},
		{"extra fields, as LivePerson's tutorial sends them", strings.Replace(sendMessage, `"dialogId"`, `"conversationId":"{conv}","dialogId"`, 1), 200, sentAnswer, lpErrorBody{}},
		{"close", closeConversation, 200, emptyAnswer, lpErrorBody{}},
		{"close, conversationField an array as the Messaging Window API sends it", closing(`[` + closeField + `]`), 200, emptyAnswer, lpErrorBody{}},
		{"profile", `{"kind":"req","id":"1","type":"userprofile.SetUserProfile","body":{"authenticatedData":{"lp_sdes":[{"type":"personal","personal":{"firstname":"Jane"}}]}}}`,
			200, `{"reqId":"1","code":"OK","body":{"msg":"OK User Profile set successfully"}}`, lpErrorBody{}},

		{"not JSON", `<html>`, 400, "", missingParameter("the body must be one JSON request")},
		{"a CONVERSATION body", minimalConversation, 400, "", missingParameter(notOneRequest)},
		{"cm.ConsumerRequestConversation", `{"kind":"req","id":"1","type":"cm.ConsumerRequestConversation","body":{"brandId":"{account}","channelType":"MESSAGING"}}`, 400, "", missingParameter(badType)},
		{"ms.GenerateURLForUploadFile", `{"kind":"req","id":3,"body":{"fileSize":"1000","fileType":"PNG"},"type":"ms.GenerateURLForUploadFile"}`, 400, "", missingParameter(badType)},
		{"no type", `{"kind":"req","id":"1","body":{}}`, 400, "", missingParameter("type is missing")},
		{"no kind", strings.Replace(sendMessage, `"kind":"req",`, ``, 1), 400, "", missingParameter(`kind must be "req"`)},
		{"body a string", `{"kind":"req","id":"1","type":"ms.PublishEvent","body":"hello"}`, 400, "", missingParameter("ms.PublishEvent: body must be a JSON object")},
		{"no dialogId", `{"kind":"req","id":"1","type":"ms.PublishEvent","body":{"event":{"type":"ContentEvent","contentType":"text/plain","message":"hi"}}}`, 400, "",
			missingParameter("ms.PublishEvent: dialogId is missing")},
		{"unknown dialogId", strings.Replace(sendMessage, "{conv}", "8602832d-dce1-446b-8445-0d51f5926a42", 1), 400, "", missingParameter("the conversation is unknown: open one with CONVERSATION")},
		{"no event", `{"kind":"req","id":"1","type":"ms.PublishEvent","body":{"dialogId":"{conv}"}}`, 400, "", missingParameter("ms.PublishEvent: event must be a JSON object")},
		{"a file", publish(`{"type":"ContentEvent","contentType":"hosted/file","message":{"caption":"logo","relativePath":"/x","fileType":"PNG"}}`), 400, "", missingParameter(badContentType)},
		{"no contentType", publish(`{"type":"ContentEvent","message":"hi"}`), 400, "", missingParameter(badContentType)},
		{"empty message", publish(`{"type":"ContentEvent","contentType":"text/plain","message":""}`), 400, "", missingParameter(badMessage)},
		{"message an object", publish(`{"type":"ContentEvent","contentType":"text/plain","message":{"text":"hi"}}`), 400, "", missingParameter(badMessage)},
		{"RichContentEvent", publish(`{"type":"RichContentEvent","content":{"type":"vertical","elements":[]}}`), 400, "", missingParameter(badEvent)},
		{"no event type", publish(`{"message":"hi"}`), 400, "", missingParameter(badEvent)},
		{"chatState TYPING", publish(`{"type":"ChatStateEvent","chatState":"TYPING"}`), 400, "", missingParameter(badChatState)},
		{"chatState in lower case", publish(`{"type":"ChatStateEvent","chatState":"composing"}`), 400, "", missingParameter(badChatState)},
		{"status DELIVERED", publish(`{"type":"AcceptStatusEvent","status":"DELIVERED","sequenceList":[0]}`), 400, "", missingParameter(badStatus)},
		{"no sequenceList", publish(`{"type":"AcceptStatusEvent","status":"READ"}`), 400, "", missingParameter(badSequences)},
		{"empty sequenceList", publish(`{"type":"AcceptStatusEvent","status":"READ","sequenceList":[]}`), 400, "", missingParameter(badSequences)},
		{"negative sequence", publish(`{"type":"AcceptStatusEvent","status":"READ","sequenceList":[-1]}`), 400, "", missingParameter(badSequences)},
		{"sequences as strings", publish(`{"type":"AcceptStatusEvent","status":"READ","sequenceList":["1"]}`), 400, "",
			missingParameter("ms.PublishEvent event: sequenceList has the wrong JSON type")},
		{"close without conversationId", `{"kind":"req","id":1,"type":"cm.UpdateConversationField","body":{"conversationField":` + closeField + `}}`, 400, "",
			missingParameter("cm.UpdateConversationField: conversationId is missing")},
		{"close, another field", closing(`{"field":"Stage","conversationState":"CLOSE"}`), 400, "", missingParameter(badField)},
		{"close, another state", closing(`{"field":"ConversationStateField","conversationState":"OPEN"}`), 400, "", missingParameter(badField)},
		{"close, two fields", closing(`[` + closeField + `,` + closeField + `]`), 400, "", missingParameter(badField)},
		{"close, no field", closing(`null`), 400, "", missingParameter(badField)},
		{"profile with a bad SDE", `{"kind":"req","id":"1","type":"userprofile.SetUserProfile","body":{"authenticatedData":{"lp_sdes":[{"type":"x"}]}}}`, 400, "", missingParameter(badSDE)},
	}
	for _, state := range []string{"ACTIVE", "INACTIVE", "GONE", "COMPOSING", "PAUSE"} {
		tests = append(tests, bodyCase{"chat state " + state, publish(`{"type":"ChatStateEvent","chatState":"` + state + `"}`), 200, emptyAnswer, lpErrorBody{}})
	}
	for _, status := range []string{"ACCEPT", "READ", "ACCESS", "NACK", "ACTION"} {
		tests = append(tests, bodyCase{"accept status " + status, publish(`{"type":"AcceptStatusEvent","status":"` + status + `","sequenceList":[1,2]}`), 200, sentAnswer, lpErrorBody{}})
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newSender(t, s, "consumer"+string(rune('A'+i)))
			c.open()
			status, body := c.send(tt.body)
			checkAnswer(t, status, body, tt.wantStatus, tt.want, tt.wantErr)
		})
	}
}

func TestSendMisplacedClientProperties(t *testing.T) {
	s := newServer(t)
	c := newSender(t, s, "john")
	c.open()
	for _, header := range [][]string{{"AUTO_MESSAGES"}, {`{"features":"AUTO_MESSAGES"}`}, {`{}`, `{}`}} {
		resp, body := c.post("conversation/send", sendMessage, http.Header{"Client-Properties": header})
		checkAnswer(t, resp.StatusCode, body, 400, "", missingParameter(badProperties))
	}
	if conv, _ := s.Conversation(c.conv); len(conv.Events) != 0 {
		t.Errorf("events %v, want none: every SEND was rejected", conv.Events)
	}
}

// Each conversation numbers its own events from 0, and chat states get no
// number.
func TestSequencesPerConversation(t *testing.T) {
	s := newServer(t)
	john, jane := newSender(t, s, "john"), newSender(t, s, "jane")
	john.open()
	jane.open()
	steps := []struct {
		who  *sender
		body string
		want string
	}{
		{john, sendMessage, `{"reqId":"1","code":"OK","body":{"sequence":0}}`},
		{john, publish(`{"type":"ChatStateEvent","chatState":"COMPOSING"}`), emptyAnswer},
		{john, sendMessage, `{"reqId":"1","code":"OK","body":{"sequence":1}}`},
		{jane, sendMessage, `{"reqId":"1","code":"OK","body":{"sequence":0}}`},
		{john, publish(`{"type":"AcceptStatusEvent","status":"READ","sequenceList":[0,1]}`), `{"reqId":"1","code":"OK","body":{"sequence":2}}`},
		{jane, publish(`{"type":"ChatStateEvent","chatState":"PAUSE"}`), emptyAnswer},
		{jane, sendMessage, `{"reqId":"1","code":"OK","body":{"sequence":1}}`},
	}
	for i, st := range steps {
		if status, got := st.who.send(st.body); status != 200 || got != st.want {
			t.Errorf("step %d: %d %s, want 200 %s", i, status, got, st.want)
		}
	}
	conv, ok := s.Conversation(john.conv)
	if !ok {
		t.Fatal("Conversation(john's) found nothing")
	}
	want := []appjwttest.MessagingEvent{
		{Type: "ContentEvent", Role: "CONSUMER", Sequence: 0, Message: "hello"},
		{Type: "ChatStateEvent", Role: "CONSUMER", Sequence: -1, ChatState: "COMPOSING"},
		{Type: "ContentEvent", Role: "CONSUMER", Sequence: 1, Message: "hello"},
		{Type: "AcceptStatusEvent", Role: "CONSUMER", Sequence: 2, Status: "READ", SequenceList: []int{0, 1}},
	}
	if diff := cmp.Diff(want, conv.Events); diff != "" {
		t.Errorf("john's events (-want +got):\n%s", diff)
	}
}

// A closed conversation takes no more events, whoever closed it, and its
// consumer can open another.
func TestClosedConversation(t *testing.T) {
	s := newServer(t)
	c := newSender(t, s, "john")
	first := c.open()
	if resp, body := c.post("conversation", minimalConversation, nil); resp.StatusCode != 400 {
		t.Errorf("a second open conversation: %s %s, want 400", resp.Status, body)
	} else {
		checkAnswer(t, resp.StatusCode, body, 400, "", missingParameter("the consumer has an open conversation already: close it first"))
	}
	if status, got := c.send(closeConversation); status != 200 || got != emptyAnswer {
		t.Fatalf("close: %d %s, want 200 %s", status, got, emptyAnswer)
	}
	closed := missingParameter("the conversation is closed")
	for _, body := range []string{sendMessage, publish(`{"type":"ChatStateEvent","chatState":"GONE"}`), closeConversation} {
		status, got := c.send(body)
		checkAnswer(t, status, got, 400, "", closed)
	}
	second := c.open()
	if second == first {
		t.Fatal("the new conversation has the closed one's ID")
	}
	if status, got := c.send(sendMessage); status != 200 || got != sentAnswer {
		t.Errorf("a message in the new conversation: %d %s, want 200 %s, its first sequence", status, got, sentAnswer)
	}

	// An agent closes it.
	if !s.CloseConversation(second) {
		t.Error("CloseConversation(open) = false, want true")
	}
	if s.CloseConversation(second) || s.CloseConversation(first) || s.CloseConversation("nope") {
		t.Error("CloseConversation of a closed or unknown conversation = true, want false")
	}
	status, got := c.send(sendMessage)
	checkAnswer(t, status, got, 400, "", closed)
	c.open()

	var states []string
	for _, conv := range s.Conversations() {
		states = append(states, conv.State)
	}
	if diff := cmp.Diff([]string{"CLOSE", "CLOSE", "OPEN"}, states); diff != "" {
		t.Errorf("states, oldest first (-want +got):\n%s", diff)
	}
}

// A consumer cannot reach another's conversation: LivePerson answers that
// with 40103.
func TestAnotherConsumersConversation(t *testing.T) {
	s := newServer(t)
	john, jane := newSender(t, s, "john"), newSender(t, s, "jane")
	jane.conv = john.open()
	for _, body := range []string{sendMessage, closeConversation} {
		status, got := jane.send(body)
		checkAnswer(t, status, got, 401, "", lpErrorBody{Title: "Invalid ConsumerJWS", Details: "ConsumerJWS is invalid", ErrorCode: 40103})
	}
	if conv, _ := s.Conversation(john.conv); conv.State != "OPEN" || len(conv.Events) != 0 {
		t.Errorf("john's conversation: %s with %d events, want OPEN and none", conv.State, len(conv.Events))
	}
}

func TestConversationState(t *testing.T) {
	s := newServer(t)
	c := newSender(t, s, "john")
	resp, body := c.post("conversation", fullConversation, http.Header{"Client-Properties": {`{"type":".ClientProperties","features":["AUTO_MESSAGES","RICH_CONTENT"]}`}})
	if resp.StatusCode != 200 {
		t.Fatalf("CONVERSATION: %s %s", resp.Status, body)
	}
	c.conv = conversationID(t, body)
	if resp, body := c.post("conversation/send", sendMessage, http.Header{"Client-Properties": {`{"type":".ClientProperties"}`}}); resp.StatusCode != 200 {
		t.Fatalf("SEND: %s %s", resp.Status, body)
	}
	c.send(publish(`{"type":"ChatStateEvent","chatState":"ACTIVE"}`))
	profile := `{"authenticatedData":{"lp_sdes":[{"type":"personal","personal":{"firstname":"Johnny"}}]}}`
	c.send(`{"kind":"req","id":"1","type":"userprofile.SetUserProfile","body":` + profile + `}`)

	got, ok := s.Conversation(c.conv)
	if !ok {
		t.Fatal("Conversation found nothing")
	}
	var full []struct{ Body json.RawMessage }
	json.Unmarshal([]byte(strings.ReplaceAll(fullConversation, "{account}", s.AccountID)), &full)
	want := appjwttest.ConversationInfo{
		ID:       c.conv,
		Consumer: "john",
		State:    "OPEN",
		Profile:  json.RawMessage(profile),
		Request:  full[1].Body,
		Features: []string{"AUTO_MESSAGES", "RICH_CONTENT"},
		Events: []appjwttest.MessagingEvent{
			{Type: "ContentEvent", Role: "CONSUMER", Sequence: 0, Message: "hello", Features: []string{}},
			{Type: "ChatStateEvent", Role: "CONSUMER", Sequence: -1, ChatState: "ACTIVE"},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Conversation (-want +got):\n%s", diff)
	}
	if all := s.Conversations(); len(all) != 1 || all[0].ID != c.conv {
		t.Errorf("Conversations() = %+v, want john's alone", all)
	}

	// What it returns is a copy.
	got.Events[0].Message = "changed"
	got.Features[0] = "changed"
	got.Profile[0] = 'x'
	if again, _ := s.Conversation(c.conv); !cmp.Equal(want, again) {
		t.Error("changing what Conversation returned changed the server's record")
	}
	if _, ok := s.Conversation("nope"); ok {
		t.Error("Conversation(unknown) found one")
	}
}

func TestSendAPIRequestsKeepBodies(t *testing.T) {
	s := newServer(t)
	c := newSender(t, s, "john")
	c.open()
	c.send(sendMessage)
	want := strings.ReplaceAll(sendMessage, "{conv}", c.conv)
	if reqs := s.Requests(appjwttest.Send); len(reqs) != 1 || string(reqs[0].Body) != want {
		t.Errorf("Requests(Send) = %+v, want one with body %s", reqs, want)
	}
	if reqs := s.Requests(appjwttest.Conversation); len(reqs) != 1 || !strings.Contains(string(reqs[0].Body), "userprofile.SetUserProfile") {
		t.Errorf("Requests(Conversation) = %+v, want one with the CONVERSATION body", reqs)
	}
	if reqs := s.Requests(appjwttest.DomainAPI); len(reqs) != 0 {
		t.Errorf("Requests(DomainAPI) = %+v, want none", reqs)
	}
}

// Concurrent SENDs to one conversation get every sequence once.
func TestConcurrentSends(t *testing.T) {
	s := newServer(t)
	c := newSender(t, s, "john")
	c.open()
	const n = 20
	seqs := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, got := c.send(sendMessage)
			var answer struct{ Body struct{ Sequence int } }
			json.Unmarshal([]byte(got), &answer)
			seqs[i] = answer.Body.Sequence
		})
	}
	wg.Wait()
	slices.Sort(seqs)
	for i, seq := range seqs {
		if seq != i {
			t.Fatalf("sequences %v, want 0 to %d once each", seqs, n-1)
		}
	}
}

// Every error body has LivePerson's title and details for its errorCode,
// word for word, but where the server says more.
func TestErrorsVerbatim(t *testing.T) {
	s := newServer(t)
	app := fetchToken(t, s)
	jws := fetchConsumerJWS(t, s, app, "john")
	s.SetClockSkew(-2 * time.Hour) // issued two hours ago: expired an hour ago
	expired := fetchToken(t, s)
	s.SetClockSkew(0)
	s.SetIssuer("")
	noIssuer := fetchToken(t, s)
	s.SetIssuer("Other")
	otherIssuer := fetchToken(t, s)
	s.SetIssuer("sentinel")
	lowerIssuer := fetchToken(t, s)
	s.SetIssuer("Sentinel")

	tests := []struct {
		name, auth, jws string
		wantStatus      int
		want            lpErrorBody
	}{
		{"no AppJWT", "", jws, 401, lpErrorBody{Title: "AppJWT is missing", Details: "AUTHORIZATION header is not present", ErrorCode: 40105}},
		{"expired AppJWT", expired, jws, 401, lpErrorBody{Title: "Invalid AppJWT", Details: "AppJWT has expired or is invalid", ErrorCode: 40102}},
		{"Bearer AppJWT", "Bearer " + app, jws, 401, lpErrorBody{Title: "Invalid AppJWT", ErrorCode: 40102,
			Details: `AppJWT has expired or is invalid: appjwttest takes the raw "Authorization: <AppJWT>" that LivePerson documents, not a Bearer scheme (see Server.AcceptBearer)`}},
		{"AppJWT without iss", noIssuer, jws, 400, lpErrorBody{Title: "Missing parameter", Details: "Brand Id is missing", ErrorCode: 40001}},
		{"AppJWT of another iss", otherIssuer, jws, 400, lpErrorBody{Title: "Missing parameter", Details: "Brand Id is missing", ErrorCode: 40001}},
		{"no ConsumerJWS", app, "", 401, lpErrorBody{Title: "ConsumerJWS is missing", Details: "X_ON_BEHALF_HEADER is not present", ErrorCode: 40104}},
		{"invalid ConsumerJWS", app, "nope", 401, lpErrorBody{Title: "Invalid ConsumerJWS", Details: "ConsumerJWS is invalid", ErrorCode: 40103}},
		{"iss in lower case", lowerIssuer, jws, 200, lpErrorBody{}},
	}
	body := strings.ReplaceAll(minimalConversation, "{account}", s.AccountID)
	// LivePerson's example, byte for byte.
	const noAppJWT = `{"kind":"resp","code":401,"body":{"title":"AppJWT is missing","details":"AUTHORIZATION header is not present","errorCode":40105},"type":".ReqBody$ErrorResp"}`
	if _, got := do(t, s, "POST", "/api/account/"+s.AccountID+"/messaging/consumer/conversation?v=3", "application/json", body, nil); strings.TrimSpace(got) != noAppJWT {
		t.Errorf("no AppJWT: %s, want %s", got, noAppJWT)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.auth != "" {
				h.Set("Authorization", tt.auth)
			}
			if tt.jws != "" {
				h.Set("X-LP-ON-BEHALF", tt.jws)
			}
			resp, got := do(t, s, "POST", "/api/account/"+s.AccountID+"/messaging/consumer/conversation?v=3", "application/json", body, h)
			checkAnswer(t, resp.StatusCode, got, tt.wantStatus, openedAnswer, tt.want)
		})
	}
	if _, err := s.Verify(appjwttest.Sentinel, noIssuer); err == nil {
		t.Error("Verify accepted an AppJWT without iss")
	}
	if _, err := s.Verify(appjwttest.Sentinel, lowerIssuer); err != nil {
		t.Errorf("Verify(iss sentinel) = %v, want nil", err)
	}
}
