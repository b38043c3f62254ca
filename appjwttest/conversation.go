package appjwttest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// ConversationInfo is what the server knows of a conversation that the
// Send API's CONVERSATION opened. [Server.Conversation] and
// [Server.Conversations] return copies, which later requests leave as
// they are.
type ConversationInfo struct {
	ID       string           // its conversationId, which SEND takes as dialogId
	Consumer string           // the ext_consumer_id of the ConsumerJWS that opened it
	State    string           // "OPEN", or "CLOSE" once closed, as LivePerson names them
	Profile  json.RawMessage  // the body of the consumer's last userprofile.SetUserProfile while it was open
	Request  json.RawMessage  // the body of its cm.ConsumerRequestConversation
	Features []string         // the features of its CONVERSATION's Client-Properties header; nil without one
	Events   []MessagingEvent // the events SEND published in it, oldest first
}

// Event is an event published in a conversation: by the consumer,
// through SEND, or by the agent ([Server.AgentPublish]).
type MessagingEvent struct {
	Type         string          // "ContentEvent", "ChatStateEvent", "AcceptStatusEvent" or, the agent's only, "RichContentEvent"
	Role         string          // who published it: "CONSUMER" or "ASSIGNED_AGENT"
	Sequence     int             // its number in the conversation, from 0; -1 for a ChatStateEvent, which gets none
	Message      string          // a ContentEvent's text
	ChatState    string          // a ChatStateEvent's state, such as "COMPOSING"
	Status       string          // an AcceptStatusEvent's status, such as "READ"
	SequenceList []int           // the sequences an AcceptStatusEvent is about
	Content      json.RawMessage // a RichContentEvent's content
	Features     []string        // the features of its SEND's Client-Properties header; nil without one
}

// The states of a conversation.
const (
	stateOpen  = "OPEN"
	stateClose = "CLOSE"
)

// Conversations returns the conversations opened so far, oldest first.
func (s *Server) Conversations() []ConversationInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ConversationInfo, len(s.convOrder))
	for i, c := range s.convOrder {
		out[i] = c.snapshot()
	}
	return out
}

// Conversation returns the conversation whose conversationId is id, and
// whether there is one.
func (s *Server) Conversation(id string) (ConversationInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.convs[id]
	if !ok {
		return ConversationInfo{}, false
	}
	return c.snapshot(), true
}

// CloseConversation closes the open conversation id, as its agent would,
// and reports whether it was open. SEND to it fails from then on, and its
// consumer can open another. The conversation change webhook gets the
// change, with closeReason AGENT.
func (s *Server) CloseConversation(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.convs[id]
	if !ok || c.State != stateOpen {
		return false
	}
	c.agentJoined = true
	s.closeLocked(c, closedByAgent, time.Now().Add(s.skew))
	return true
}

// AgentMessage publishes a text message of the agent in the open
// conversation id, as AgentPublish does, and returns its sequence.
func (s *Server) AgentMessage(id, message string) (sequence int, err error) {
	event, err := json.Marshal(map[string]string{"type": "ContentEvent", "contentType": "text/plain", "message": message})
	if err != nil {
		return 0, fmt.Errorf("appjwttest: AgentMessage: %w", err)
	}
	return s.AgentPublish(id, event)
}

// AgentChatState publishes the agent's chat state (ACTIVE, INACTIVE,
// GONE, COMPOSING or PAUSE) in the open conversation id, as AgentPublish
// does.
func (s *Server) AgentChatState(id, chatState string) error {
	event, err := json.Marshal(map[string]string{"type": "ChatStateEvent", "chatState": chatState})
	if err == nil {
		_, err = s.AgentPublish(id, event)
	}
	return err
}

// AgentPublish publishes an event of the conversation's agent in the open
// conversation id, as SEND's ms.PublishEvent would for the consumer, and
// returns its sequence (-1 for a chat state, which gets none). It takes
// the events SEND takes, and a RichContentEvent, {"type":
// "RichContentEvent","content":{...}} with an object for content, which
// only agents send here. The webhook of the event's type gets it, with
// originatorMetadata role ASSIGNED_AGENT; the agent joins the
// conversation's participants. It returns an error, and publishes
// nothing, for an event it does not take or a conversation that is not
// open.
func (s *Server) AgentPublish(id string, event json.RawMessage) (sequence int, err error) {
	ev, e := parseEvent(event, true)
	if e != nil {
		return 0, errors.New("appjwttest: AgentPublish: " + e.details)
	}
	ev.Role = roleAgent
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.convs[id]
	switch {
	case !ok:
		return 0, fmt.Errorf("appjwttest: AgentPublish: no conversation %s", id)
	case c.State != stateOpen:
		return 0, fmt.Errorf("appjwttest: AgentPublish: conversation %s is closed", id)
	}
	c.agentJoined = true
	return s.publishLocked(c, ev, time.Now().Add(s.skew)), nil
}

// The closeReason of a conversation its agent or its consumer closed.
const (
	closedByAgent    = "AGENT"
	closedByConsumer = "CONSUMER"
)

// conversation is the server's record of one conversation.
type conversation struct {
	ConversationInfo
	next        int    // the sequence of its next numbered event
	startTs     int64  // when it opened, in ms since the Unix epoch
	agentJoined bool   // its agent has published or closed it
	closeReason string // who closed it: AGENT or CONSUMER
}

// open records c, opened at now, as its consumer's open conversation,
// unless the consumer has one, and reports whether it did.
func (s *Server) open(c *conversation, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, busy := s.openConv[c.Consumer]; busy {
		return false
	}
	c.State, c.startTs = stateOpen, now.UnixMilli()
	s.convs[c.ID] = c
	s.convOrder = append(s.convOrder, c)
	s.openConv[c.Consumer] = c
	s.notifyConversationLocked(c, now)
	return true
}

// closeLocked closes c at now, for the reason given. The caller holds
// s.mu.
func (s *Server) closeLocked(c *conversation, reason string, now time.Time) {
	c.State, c.closeReason = stateClose, reason
	if s.openConv[c.Consumer] == c {
		delete(s.openConv, c.Consumer)
	}
	s.notifyConversationLocked(c, now)
}

// publishLocked adds e, published at now, to c, numbering it unless it is
// a chat state, and returns its sequence. The caller holds s.mu.
func (s *Server) publishLocked(c *conversation, e MessagingEvent, now time.Time) int {
	e.Sequence = -1
	if e.Type != "ChatStateEvent" {
		e.Sequence = c.next
		c.next++
	}
	c.Events = append(c.Events, e)
	s.notifyEventLocked(c, e, now)
	return e.Sequence
}

func (c *conversation) snapshot() ConversationInfo {
	out := c.ConversationInfo
	out.Profile = slices.Clone(c.Profile)
	out.Request = slices.Clone(c.Request)
	out.Features = slices.Clone(c.Features)
	out.Events = slices.Clone(c.Events)
	for i := range out.Events {
		out.Events[i].SequenceList = slices.Clone(out.Events[i].SequenceList)
		out.Events[i].Content = slices.Clone(out.Events[i].Content)
		out.Events[i].Features = slices.Clone(out.Events[i].Features)
	}
	return out
}
