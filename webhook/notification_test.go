package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// LivePerson's documented examples of notifications (Connector API,
// Webhooks Examples), on one line as a delivery carries them, and two it
// documents no example of: a rich content event and a closed conversation.
const (
	conversationOpened = `{"kind":"notification","body":{"changes":[{"type":"UPSERT","result":{"convId":"5491244f-e462-4c63-bf4e-faf4b2d3e7b5","conversationDetails":{"participants":[{"id":"ade26082b1185839d17e0794924c1a0005cf5663e7c35e38f80dd8552a1a96e5","role":"CONSUMER"}],"brandId":"64467156","state":"OPEN","startTs":1528371161882,"metaDataLastUpdateTs":1528371161882,"ttr":{"ttrType":"PRIORITIZED","value":600}}}}]},"type":"cqm.ExConversationChangeNotification"}`
	consumerMessage    = `{"kind":"notification","body":{"changes":[{"sequence":0,"originatorId":"ade26082b1185839d17e0794924c1a0005cf5663e7c35e38f80dd8552a1a96e5","originatorMetadata":{"id":"ade26082b1185839d17e0794924c1a0005cf5663e7c35e38f80dd8552a1a96e5","role":"CONSUMER"},"serverTimestamp":1528371161893,"event":{"type":"ContentEvent","message":"Hello from Consumer","contentType":"text/plain"},"dialogId":"5491244f-e462-4c63-bf4e-faf4b2d3e7b5"}]},"type":"ms.MessagingEventNotification"}`
	agentRead          = `{"kind":"notification","body":{"changes":[{"sequence":1,"originatorId":"29c3019d-fe0b-5200-afe8-737abfeae4b4","originatorMetadata":{"id":"29c3019d-fe0b-5200-afe8-737abfeae4b4","role":"ASSIGNED_AGENT"},"serverTimestamp":1528371196009,"event":{"type":"AcceptStatusEvent","status":"READ","sequenceList":[0]},"dialogId":"5491244f-e462-4c63-bf4e-faf4b2d3e7b5"}]},"type":"ms.MessagingEventNotification"}`
	agentTyping        = `{"kind":"notification","body":{"changes":[{"originatorId":"29c3019d-fe0b-5200-afe8-737abfeae4b4","originatorMetadata":{"id":"29c3019d-fe0b-5200-afe8-737abfeae4b4","role":"ASSIGNED_AGENT"},"event":{"type":"ChatStateEvent","chatState":"COMPOSING"},"dialogId":"5491244f-e462-4c63-bf4e-faf4b2d3e7b5"}]},"type":"ms.MessagingEventNotification"}`
	agentCard          = `{"kind":"notification","body":{"changes":[{"sequence":5,"originatorId":"29c3019d-fe0b-5200-afe8-737abfeae4b4","originatorMetadata":{"id":"29c3019d-fe0b-5200-afe8-737abfeae4b4","role":"ASSIGNED_AGENT"},"serverTimestamp":1528371199990,"event":{"type":"RichContentEvent","content":{"type":"vertical","elements":[{"type":"text","text":"Your order"}]}},"dialogId":"5491244f-e462-4c63-bf4e-faf4b2d3e7b5"}]},"type":"ms.MessagingEventNotification"}`
	conversationClosed = `{"kind":"notification","body":{"changes":[{"type":"UPSERT","result":{"convId":"5491244f-e462-4c63-bf4e-faf4b2d3e7b5","effectiveTTR":1528371761882,"conversationDetails":{"participants":[{"id":"29c3019d-fe0b-5200-afe8-737abfeae4b4","role":"ASSIGNED_AGENT"},{"id":"ade26082","role":"CONSUMER"}],"brandId":"64467156","state":"CLOSE","stage":"CLOSE","closeReason":"AGENT","startTs":1528371161882,"endTs":1528372200000,"metaDataLastUpdateTs":1528372200000}}}]},"type":"cqm.ExConversationChangeNotification"}`
)

const (
	dialog   = "5491244f-e462-4c63-bf4e-faf4b2d3e7b5"
	agent    = "29c3019d-fe0b-5200-afe8-737abfeae4b4"
	consumer = "ade26082b1185839d17e0794924c1a0005cf5663e7c35e38f80dd8552a1a96e5"
)

func TestParse(t *testing.T) {
	agentMeta := Participant{ID: agent, Role: "ASSIGNED_AGENT"}
	tests := []struct {
		name string
		body string
		want *Notification
	}{
		{"conversation opened", conversationOpened, &Notification{Kind: "notification", Type: typeConversation,
			Conversations: []ConversationChange{{Type: "UPSERT", ConversationID: dialog, Details: ConversationDetails{
				State: "OPEN", BrandID: "64467156", Participants: []Participant{{ID: consumer, Role: "CONSUMER"}},
				StartTs: 1528371161882, MetaDataLastUpdateTs: 1528371161882,
			}}}}},
		{"consumer's message", consumerMessage, &Notification{Kind: "notification", Type: typeMessaging,
			Events: []MessagingEvent{{DialogID: dialog, Sequence: 0, HasSequence: true, OriginatorID: consumer,
				Originator: Participant{ID: consumer, Role: "CONSUMER"}, ServerTimestamp: 1528371161893,
				Event: &ContentEvent{ContentType: "text/plain", Message: "Hello from Consumer"}}}}},
		{"agent read", agentRead, &Notification{Kind: "notification", Type: typeMessaging,
			Events: []MessagingEvent{{DialogID: dialog, Sequence: 1, HasSequence: true, OriginatorID: agent,
				Originator: agentMeta, ServerTimestamp: 1528371196009,
				Event: &AcceptStatusEvent{Status: "READ", SequenceList: []int64{0}}}}}},
		{"agent typing, no sequence", agentTyping, &Notification{Kind: "notification", Type: typeMessaging,
			Events: []MessagingEvent{{DialogID: dialog, OriginatorID: agent, Originator: agentMeta,
				Event: &ChatStateEvent{ChatState: "COMPOSING"}}}}},
		{"agent's message", agentMessage, &Notification{Kind: "notification", Type: typeMessaging,
			Events: []MessagingEvent{{DialogID: dialog, Sequence: 2, HasSequence: true, OriginatorID: agent,
				Originator: agentMeta, ServerTimestamp: 1528371199686,
				Event: &ContentEvent{ContentType: "text/plain", Message: "Hello from the Agent\n"}}}}},
		{"agent's card", agentCard, &Notification{Kind: "notification", Type: typeMessaging,
			Events: []MessagingEvent{{DialogID: dialog, Sequence: 5, HasSequence: true, OriginatorID: agent,
				Originator: agentMeta, ServerTimestamp: 1528371199990,
				Event: &RichContentEvent{Content: json.RawMessage(`{"type":"vertical","elements":[{"type":"text","text":"Your order"}]}`)}}}}},
		{"conversation closed", conversationClosed, &Notification{Kind: "notification", Type: typeConversation,
			Conversations: []ConversationChange{{Type: "UPSERT", ConversationID: dialog,
				Details: ConversationDetails{State: "CLOSE", Stage: "CLOSE", CloseReason: "AGENT", BrandID: "64467156",
					Participants: []Participant{{ID: agent, Role: "ASSIGNED_AGENT"}, {ID: "ade26082", Role: "CONSUMER"}},
					StartTs:      1528371161882, EndTs: 1528372200000, MetaDataLastUpdateTs: 1528372200000}}}}},
	}
	for _, tt := range tests {
		n, err := Parse([]byte(tt.body))
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if string(n.Raw) != tt.body {
			t.Errorf("%s: Raw is not the body", tt.name)
		}
		if diff := cmp.Diff(tt.want, withoutRaw(n)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestFromConsumerAndClosed(t *testing.T) {
	for _, tt := range []struct {
		body         string
		fromConsumer bool
	}{{consumerMessage, true}, {agentMessage, false}, {agentTyping, false}} {
		n, err := Parse([]byte(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		if got := n.Events[0].FromConsumer(); got != tt.fromConsumer {
			t.Errorf("FromConsumer of %.60q... = %t, want %t", tt.body, got, tt.fromConsumer)
		}
	}
	for _, tt := range []struct {
		body   string
		closed bool
	}{{conversationOpened, false}, {conversationClosed, true}} {
		n, err := Parse([]byte(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		if got := n.Conversations[0].Closed(); got != tt.closed {
			t.Errorf("Closed of %.60q... = %t, want %t", tt.body, got, tt.closed)
		}
	}
}

// LivePerson's Post Conversation Survey tutorial: once the consumer
// closes the main dialog, the conversation (its stage) stays open while
// the survey's dialog is; the events of the survey come with the survey
// dialog's ID. One line, as a delivery carries it.
const surveyStarted = `{"kind":"notification","body":{"subscriptionId":"1e25cbe8-de08-4bb2-a100-f72a172a6e04","changes":[{"type":"UPSERT","result":{"convId":"__YOUR_CONVERSATION_ID__","effectiveTTR":-1,"conversationDetails":{"participants":[{"id":"29c3019d-fe0b-5200-afe8-737abfeae4b4","role":"ASSIGNED_AGENT"},{"id":"29c3019d-fe0b-5200-afe8-737abfeae4b4","role":"READER"},{"id":"5e9ee96c-226e-44b6-ac51-b1dfe494ba10","role":"CONSUMER"},{"id":"2fa9ac85-d8a9-5bd6-8384-8c32dabae97f","role":"AGENT"},{"id":"22815dea-5b5c-5c8f-a4bf-2e52a0f6820a","role":"CONTROLLER"}],"dialogs":[{"dialogId":"__YOUR_CONVERSATION_ID__","participantsDetails":[{"id":"5e9ee96c-226e-44b6-ac51-b1dfe494ba10","role":"CONSUMER"},{"id":"22815dea-5b5c-5c8f-a4bf-2e52a0f6820a","role":"CONTROLLER"},{"id":"29c3019d-fe0b-5200-afe8-737abfeae4b4","role":"ASSIGNED_AGENT"}],"dialogType":"MAIN","channelType":"MESSAGING","state":"CLOSE","creationTs":1538486163083,"endTs":1538499226753,"metaDataLastUpdateTs":1538499226753,"closedBy":"CONSUMER"},{"dialogId":"__YOUR_POST_SURVEY_DIALOG_ID__","participantsDetails":[{"id":"5e9ee96c-226e-44b6-ac51-b1dfe494ba10","role":"CONSUMER"},{"id":"2fa9ac85-d8a9-5bd6-8384-8c32dabae97f","role":"AGENT"},{"id":"29c3019d-fe0b-5200-afe8-737abfeae4b4","role":"READER"}],"dialogType":"POST_SURVEY","channelType":"MESSAGING","metaData":{"appInstallId":"756e7363-4472-4ae1-b1ae-b3b0b52107a0"},"state":"OPEN","creationTs":1538499226752,"metaDataLastUpdateTs":1538499227108}],"brandId":"64467156","state":"CLOSE","stage":"OPEN","closeReason":"CONSUMER","startTs":1538486163083,"metaDataLastUpdateTs":1538499227108,"ttr":{"ttrType":"PRIORITIZED","value":600}}}}]},"type":"cqm.ExConversationChangeNotification"}`

// The main dialog's state and the conversation's stage are LivePerson's:
// a survey going on (state CLOSE, stage OPEN) is not a closed
// conversation, whose events a connector would drop.
func TestSurveyKeepsTheConversationOpen(t *testing.T) {
	n, err := Parse([]byte(surveyStarted))
	if err != nil {
		t.Fatal(err)
	}
	c := n.Conversations[0]
	if c.Details.State != "CLOSE" || c.Details.Stage != "OPEN" || c.Closed() {
		t.Errorf("State %q, Stage %q, Closed %t; want CLOSE, OPEN, false", c.Details.State, c.Details.Stage, c.Closed())
	}
	want := []Dialog{
		{DialogID: "__YOUR_CONVERSATION_ID__", DialogType: "MAIN", ChannelType: "MESSAGING", State: "CLOSE", ClosedBy: "CONSUMER"},
		{DialogID: "__YOUR_POST_SURVEY_DIALOG_ID__", DialogType: "POST_SURVEY", ChannelType: "MESSAGING", State: "OPEN"},
	}
	if diff := cmp.Diff(want, c.Details.Dialogs); diff != "" {
		t.Errorf("dialogs (-want +got):\n%s", diff)
	}

	for _, tt := range []struct {
		name         string
		state, stage string
		closed       bool
	}{
		{"open", "OPEN", "OPEN", false},
		{"survey going on", "CLOSE", "OPEN", false},
		{"closed", "CLOSE", "CLOSE", true},
		{"open, no stage", "OPEN", "", false},
		{"closed, no stage", "CLOSE", "", true},
	} {
		c := ConversationChange{Details: ConversationDetails{State: tt.state, Stage: tt.stage}}
		if got := c.Closed(); got != tt.closed {
			t.Errorf("%s: Closed = %t, want %t", tt.name, got, tt.closed)
		}
	}
}

// A ContentEvent's message is parsed in each form LivePerson documents
// (File Sharing: a hosted file; Messaging History API: files and secure
// forms), typed, and in any other, kept as received, without failing the
// notification.
func TestParseContentShapes(t *testing.T) {
	const preview = "data:image/png;base64,iVBORw0KGgo="
	tests := []struct {
		name    string
		event   string
		want    ContentEvent
		wantRaw string // MessageRaw
	}{
		{"text", `{"type":"ContentEvent","message":"Hello","contentType":"text/plain"}`,
			ContentEvent{ContentType: "text/plain", Message: "Hello"}, `"Hello"`},
		{"hosted file, File Sharing page", `{"type":"ContentEvent","message":{"caption":"LivePerson logo","relativePath":"/v1/AUTH_async-images/le79144597/f.PNG","fileType":"PNG","preview":"` + preview + `"},"contentType":"hosted/file"}`,
			ContentEvent{ContentType: contentTypeHostedFile, File: &HostedFile{Caption: "LivePerson logo", RelativePath: "/v1/AUTH_async-images/le79144597/f.PNG", FileType: "PNG", Preview: preview}},
			`{"caption":"LivePerson logo","relativePath":"/v1/AUTH_async-images/le79144597/f.PNG","fileType":"PNG","preview":"` + preview + `"}`},
		{"hosted file, Messaging History API, empty caption", `{"type":"ContentEvent","contentType":"hosted/file","message":{"caption":"","relativePath":"/v1/x.JPG","fileType":"JPG","preview":"data:image/jpeg;base64,/9j/"}}`,
			ContentEvent{ContentType: contentTypeHostedFile, File: &HostedFile{RelativePath: "/v1/x.JPG", FileType: "JPG", Preview: "data:image/jpeg;base64,/9j/"}},
			`{"caption":"","relativePath":"/v1/x.JPG","fileType":"JPG","preview":"data:image/jpeg;base64,/9j/"}`},
		{"hosted file as JSON text in a string", `{"type":"ContentEvent","contentType":"hosted/file","message":"{\"relativePath\":\"/v1/x.PDF\",\"fileType\":\"PDF\"}"}`,
			ContentEvent{ContentType: contentTypeHostedFile, Message: `{"relativePath":"/v1/x.PDF","fileType":"PDF"}`, File: &HostedFile{RelativePath: "/v1/x.PDF", FileType: "PDF"}},
			`"{\"relativePath\":\"/v1/x.PDF\",\"fileType\":\"PDF\"}"`},
		{"secure form invitation", `{"type":"ContentEvent","contentType":"forms/secure-invitation","message":{"invitationId":"a557-1","title":"Credit card form"}}`,
			ContentEvent{ContentType: contentTypeFormInvitation, Form: &SecureForm{InvitationID: "a557-1", Title: "Credit card form"}},
			`{"invitationId":"a557-1","title":"Credit card form"}`},
		{"secure form submission, with an undocumented field", `{"type":"ContentEvent","contentType":"forms/secure-submission","message":{"invitationId":"a557-1","submissionId":"s-9"}}`,
			ContentEvent{ContentType: contentTypeFormSubmission, Form: &SecureForm{InvitationID: "a557-1"}},
			`{"invitationId":"a557-1","submissionId":"s-9"}`},
		{"hosted file with a caption of another type", `{"type":"ContentEvent","contentType":"hosted/file","message":{"caption":12,"relativePath":"/v1/x.JPG"}}`,
			ContentEvent{ContentType: contentTypeHostedFile}, `{"caption":12,"relativePath":"/v1/x.JPG"}`},
		{"hosted file, message null", `{"type":"ContentEvent","contentType":"hosted/file","message":null}`,
			ContentEvent{ContentType: contentTypeHostedFile}, `null`},
		{"an undocumented content type", `{"type":"ContentEvent","contentType":"video/call","message":{"room":"r1"}}`,
			ContentEvent{ContentType: "video/call"}, `{"room":"r1"}`},
		{"a text that is an object", `{"type":"ContentEvent","contentType":"text/plain","message":{"text":"hi"}}`,
			ContentEvent{ContentType: "text/plain"}, `{"text":"hi"}`},
		{"a number", `{"type":"ContentEvent","contentType":"text/plain","message":12345}`,
			ContentEvent{ContentType: "text/plain"}, `12345`},
		{"an array", `{"type":"ContentEvent","contentType":"text/plain","message":["a"]}`,
			ContentEvent{ContentType: "text/plain"}, `["a"]`},
		{"no message", `{"type":"ContentEvent","contentType":"text/plain"}`,
			ContentEvent{ContentType: "text/plain"}, ``},
	}
	for _, tt := range tests {
		body := `{"kind":"notification","body":{"changes":[{"sequence":6,"originatorMetadata":{"id":"c1","role":"CONSUMER"},"event":` + tt.event + `,"dialogId":"d1"}]},"type":"ms.MessagingEventNotification"}`
		n, err := Parse([]byte(body))
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		got, ok := n.Events[0].Event.(*ContentEvent)
		if !ok {
			t.Errorf("%s: event %T, want *ContentEvent", tt.name, n.Events[0].Event)
			continue
		}
		if string(got.MessageRaw) != tt.wantRaw || string(got.Raw) != tt.event {
			t.Errorf("%s: MessageRaw %s, Raw %s; want %s, %s", tt.name, got.MessageRaw, got.Raw, tt.wantRaw, tt.event)
		}
		if diff := cmp.Diff(tt.want, *got, cmpopts.IgnoreFields(ContentEvent{}, "MessageRaw", "Raw")); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

// Fields LivePerson may add, and types this package does not know, are no
// error, and stay reachable in Raw.
func TestParseKeepsTheUnknown(t *testing.T) {
	added := `{"kind":"notification","sentTs":1,"body":{"sentTs":2,"changes":[` +
		`{"sequence":7,"dialogId":"d","metadata":[{"type":"BotResponse"}],"originatorMetadata":{"id":"a","role":"ASSIGNED_AGENT","clientProperties":{"x":1}},` +
		`"event":{"type":"ContentEvent","message":"hi","contentType":"text/plain","quickReplies":{"type":"quickReplies"}}},` +
		`{"sequence":8,"dialogId":"d","event":{"type":"VideoCallEvent","room":"r1"}}]},"type":"ms.MessagingEventNotification"}`
	n, err := Parse([]byte(added))
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Events) != 2 {
		t.Fatalf("%d events, want 2", len(n.Events))
	}
	if ev, ok := n.Events[0].Event.(*ContentEvent); !ok || ev.Message != "hi" || !bytes.Contains(ev.Raw, []byte(`"quickReplies"`)) {
		t.Errorf("event 0: %#v, want the ContentEvent with its quickReplies in Raw", n.Events[0].Event)
	}
	if !bytes.Contains(n.Events[0].Raw, []byte(`"metadata":[{"type":"BotResponse"}]`)) {
		t.Errorf("change 0's Raw lacks its metadata: %s", n.Events[0].Raw)
	}
	unknown, ok := n.Events[1].Event.(*UnknownEvent)
	if !ok || unknown.Type != "VideoCallEvent" || unknown.EventType() != "VideoCallEvent" || string(unknown.Raw) != `{"type":"VideoCallEvent","room":"r1"}` {
		t.Errorf("event 1: %#v, want an UnknownEvent with its Raw", n.Events[1].Event)
	}

	other := `{"kind":"notification","body":{"changes":[{"anything":true}]},"type":"routing.RoutingTaskNotification"}`
	n, err = Parse([]byte(other))
	if err != nil {
		t.Fatal(err)
	}
	if n.Type != "routing.RoutingTaskNotification" || n.Events != nil || n.Conversations != nil || string(n.Raw) != other {
		t.Errorf("unknown notification type: %+v", n)
	}

	noEvent := `{"kind":"notification","body":{"changes":[{"sequence":1,"dialogId":"d","event":null},{"sequence":2,"dialogId":"d"}]},"type":"ms.MessagingEventNotification"}`
	n, err = Parse([]byte(noEvent))
	if err != nil {
		t.Fatal(err)
	}
	if n.Events[0].Event != nil || n.Events[1].Event != nil {
		t.Errorf("changes without event: %#v, %#v; want nil events", n.Events[0].Event, n.Events[1].Event)
	}
}

// Parse's errors say what is wrong where, without quoting the body.
func TestParseErrors(t *testing.T) {
	msg := func(change string) string {
		return `{"kind":"notification","body":{"changes":[{"sequence":1,"dialogId":"d"},` + change + `]},"type":"ms.MessagingEventNotification"}`
	}
	tests := []struct {
		name, body, want, secret string
	}{
		{"not JSON", `<html>secret-page</html>`, "webhook: notification: not JSON (at byte 1)", "html"},
		{"truncated", agentMessage[:100], "webhook: notification: not JSON (at byte 100)", "29c3019d"},
		{"an array", `["secret-item"]`, "webhook: notification: got a JSON array, want an object", "secret-item"},
		{"changes not an array", `{"body":{"changes":{"secret-key":1}},"type":"ms.MessagingEventNotification"}`, "webhook: notification: body.changes: got a JSON object, want an array", "secret-key"},
		{"sequence a string", msg(`{"sequence":"secret-seq","dialogId":"d"}`), "webhook: notification: change 1: sequence: got a JSON string, want an integer", "secret-seq"},
		{"sequence a fraction", msg(`{"sequence":1.25,"dialogId":"d"}`), "webhook: notification: change 1: sequence: got a JSON number, want an integer", "1.25"},
		{"event a string", msg(`{"sequence":2,"event":"secret-event"}`), "webhook: notification: change 1: event: got a JSON string, want an object", "secret-event"},
		{"contentType a number", msg(`{"sequence":2,"event":{"type":"ContentEvent","contentType":12345}}`), "webhook: notification: change 1: event: contentType: got a JSON number, want a string", "12345"},
		{"participants an object", `{"body":{"changes":[{"result":{"conversationDetails":{"participants":{"secret-p":1}}}}]},"type":"cqm.ExConversationChangeNotification"}`, "webhook: notification: change 0: result.conversationDetails.participants: got a JSON object, want an array", "secret-p"},
		{"change a string", `{"body":{"changes":["secret-change"]},"type":"cqm.ExConversationChangeNotification"}`, "webhook: notification: change 0: got a JSON string, want an object", "secret-change"},
	}
	for _, tt := range tests {
		n, err := Parse([]byte(tt.body))
		if err == nil {
			t.Errorf("%s: Parse = %+v, want an error", tt.name, n)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("%s: error\n%s\nwant\n%s", tt.name, err, tt.want)
		}
		if strings.Contains(err.Error(), tt.secret) {
			t.Errorf("%s: error quotes %q", tt.name, tt.secret)
		}
		var syntax *json.SyntaxError
		var typ *json.UnmarshalTypeError
		if !errors.As(err, &syntax) && !errors.As(err, &typ) {
			t.Errorf("%s: errors.As finds no encoding/json error in %v", tt.name, err)
		}
	}
}

// A Notification written as JSON is the notification as received, so it
// decodes to the same.
func TestNotificationJSONRoundTrip(t *testing.T) {
	n, err := Parse([]byte(agentMessage))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(struct{ N *Notification }{n})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"N":` + agentMessage + `}`; string(b) != want {
		t.Errorf("json.Marshal = %s, want %s", b, want)
	}
	var back struct{ N *Notification }
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(n, back.N); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

// FuzzParse checks that Parse never panics, and that what it accepts keeps
// the body whole in Raw, valid JSON in every Raw, and decodes again, from
// its JSON, to the same fields.
func FuzzParse(f *testing.F) {
	// The seed corpus is in testdata/fuzz/FuzzParse.
	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := Parse(body)
		if err != nil {
			return
		}
		if !bytes.Equal(n.Raw, body) {
			t.Fatalf("Raw %q, want the body %q", n.Raw, body)
		}
		for i, e := range n.Events {
			if !json.Valid(e.Raw) {
				t.Fatalf("event %d: Raw %q is not JSON", i, e.Raw)
			}
			if e.Event != nil && !json.Valid(eventRaw(e.Event)) {
				t.Fatalf("event %d: the event's Raw %q is not JSON", i, eventRaw(e.Event))
			}
		}
		for i, c := range n.Conversations {
			if !json.Valid(c.Raw) {
				t.Fatalf("conversation change %d: Raw %q is not JSON", i, c.Raw)
			}
		}
		b, err := json.Marshal(n)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Parse(b)
		if err != nil {
			t.Fatalf("Parse of its own JSON: %v", err)
		}
		// encoding/json compacts and HTML-escapes what MarshalJSON writes:
		// the same JSON, not always the same bytes.
		if diff := cmp.Diff(n, again, sameJSON); diff != "" {
			t.Fatalf("Parse of its own JSON (-first +again):\n%s", diff)
		}
	})
}

// sameJSON compares JSON texts by the values they hold.
var sameJSON = cmp.Comparer(func(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var va, vb any
	return json.Unmarshal(a, &va) == nil && json.Unmarshal(b, &vb) == nil && cmp.Equal(va, vb)
})

func eventRaw(e Event) json.RawMessage {
	switch e := e.(type) {
	case *ContentEvent:
		return e.Raw
	case *RichContentEvent:
		return e.Raw
	case *AcceptStatusEvent:
		return e.Raw
	case *ChatStateEvent:
		return e.Raw
	case *UnknownEvent:
		return e.Raw
	}
	return nil
}

// withoutRaw returns n with every Raw field (and MessageRaw) cleared, for
// comparing what was decoded.
func withoutRaw(n *Notification) *Notification {
	c := *n
	c.Raw = nil
	c.Events = append([]MessagingEvent(nil), n.Events...)
	for i := range c.Events {
		e := &c.Events[i]
		e.Raw = nil
		switch ev := e.Event.(type) {
		case *ContentEvent:
			v := *ev
			v.Raw, v.MessageRaw, e.Event = nil, nil, &v
		case *RichContentEvent:
			v := *ev
			v.Raw, e.Event = nil, &v
		case *AcceptStatusEvent:
			v := *ev
			v.Raw, e.Event = nil, &v
		case *ChatStateEvent:
			v := *ev
			v.Raw, e.Event = nil, &v
		case *UnknownEvent:
			v := *ev
			v.Raw, e.Event = nil, &v
		}
	}
	c.Conversations = append([]ConversationChange(nil), n.Conversations...)
	for i := range c.Conversations {
		c.Conversations[i].Raw = nil
	}
	return &c
}

// A body of empty changes, which only a holder of the secret can send, is
// refused past maxChanges instead of costing some 200 times its size.
func TestParseBoundsTheChanges(t *testing.T) {
	body := func(n int) []byte {
		return []byte(`{"kind":"notification","type":"ms.MessagingEventNotification","body":{"changes":[` + strings.TrimSuffix(strings.Repeat("{},", n), ",") + `]}}`)
	}
	if _, err := Parse(body(maxChanges)); err != nil {
		t.Errorf("%d changes: %v, want them parsed", maxChanges, err)
	}
	_, err := Parse(body(maxChanges + 1))
	if want := "webhook: notification: 10001 changes, more than the 10000 Parse takes"; err == nil || err.Error() != want {
		t.Errorf("%d changes: %v, want %q", maxChanges+1, err, want)
	}
}
