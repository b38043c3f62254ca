package appjwttest_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/lpconnect/appjwt/appjwttest"
)

// The agent publishes what a consumer may, and rich content, in its open
// conversations only, numbered with the consumer's events.
func TestAgentPublish(t *testing.T) {
	s := newServer(t)
	c := newSender(t, s, "john")
	conv := c.open()
	c.send(sendMessage)
	if seq, err := s.AgentMessage(conv, "It left today."); seq != 1 || err != nil {
		t.Errorf("AgentMessage = %d, %v; want 1, nil", seq, err)
	}
	if err := s.AgentChatState(conv, "PAUSE"); err != nil {
		t.Errorf("AgentChatState = %v", err)
	}
	card := `{"type":"vertical","elements":[{"type":"text","text":"Your order"}]}`
	if seq, err := s.AgentPublish(conv, []byte(`{"type":"RichContentEvent","content":`+card+`}`)); seq != 2 || err != nil {
		t.Errorf("AgentPublish(RichContentEvent) = %d, %v; want 2, nil", seq, err)
	}

	tests := []struct {
		name, conv, event, want string
	}{
		{"unknown conversation", "8602832d-dce1-446b-8445-0d51f5926a42", `{"type":"ChatStateEvent","chatState":"ACTIVE"}`,
			"appjwttest: AgentPublish: no conversation 8602832d-dce1-446b-8445-0d51f5926a42"},
		{"chatState TYPING", conv, `{"type":"ChatStateEvent","chatState":"TYPING"}`,
			"appjwttest: AgentPublish: ChatStateEvent: chatState must be ACTIVE, INACTIVE, GONE, COMPOSING or PAUSE"},
		{"content not an object", conv, `{"type":"RichContentEvent","content":"card"}`,
			"appjwttest: AgentPublish: RichContentEvent: content must be a JSON object"},
		{"no type", conv, `{"message":"hi"}`,
			"appjwttest: AgentPublish: ms.PublishEvent: event type must be ContentEvent, ChatStateEvent or AcceptStatusEvent"},
		{"not an object", conv, `"hi"`, "appjwttest: AgentPublish: ms.PublishEvent: event must be a JSON object"},
	}
	for _, tt := range tests {
		if _, err := s.AgentPublish(tt.conv, []byte(tt.event)); err == nil || err.Error() != tt.want {
			t.Errorf("%s: AgentPublish = %v, want %s", tt.name, err, tt.want)
		}
	}
	if _, err := s.AgentMessage(conv, ""); err == nil {
		t.Error("AgentMessage of an empty message: no error")
	}
	if !s.CloseConversation(conv) {
		t.Fatal("CloseConversation = false")
	}
	if err := s.AgentChatState(conv, "ACTIVE"); err == nil || err.Error() != "appjwttest: AgentPublish: conversation "+conv+" is closed" {
		t.Errorf("AgentChatState in a closed conversation = %v", err)
	}

	got, _ := s.Conversation(conv)
	want := []appjwttest.MessagingEvent{
		{Type: "ContentEvent", Role: "CONSUMER", Sequence: 0, Message: "hello"},
		{Type: "ContentEvent", Role: "ASSIGNED_AGENT", Sequence: 1, Message: "It left today."},
		{Type: "ChatStateEvent", Role: "ASSIGNED_AGENT", Sequence: -1, ChatState: "PAUSE"},
		{Type: "RichContentEvent", Role: "ASSIGNED_AGENT", Sequence: 2, Content: []byte(card)},
	}
	if diff := cmp.Diff(want, got.Events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}
