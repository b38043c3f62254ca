package appjwttest

import (
	"encoding/json"
	"slices"
)

// ConversationInfo is what the server knows of a conversation that the
// Send API's CONVERSATION opened. [Server.Conversation] and
// [Server.Conversations] return copies, which later requests leave as
// they are.
type ConversationInfo struct {
	ID       string          // its conversationId, which SEND takes as dialogId
	Consumer string          // the ext_consumer_id of the ConsumerJWS that opened it
	State    string          // "OPEN", or "CLOSE" once closed, as LivePerson names them
	Profile  json.RawMessage // the body of the consumer's last userprofile.SetUserProfile while it was open
	Request  json.RawMessage // the body of its cm.ConsumerRequestConversation
	Features []string        // the features of its CONVERSATION's Client-Properties header; nil without one
	Events   []Event         // the events SEND published in it, oldest first
}

// Event is an event that SEND published in a conversation.
type Event struct {
	Type         string   // "ContentEvent", "ChatStateEvent" or "AcceptStatusEvent"
	Sequence     int      // its number in the conversation, from 0; -1 for a ChatStateEvent, which gets none
	Message      string   // a ContentEvent's text
	ChatState    string   // a ChatStateEvent's state, such as "COMPOSING"
	Status       string   // an AcceptStatusEvent's status, such as "READ"
	SequenceList []int    // the sequences an AcceptStatusEvent is about
	Features     []string // the features of its SEND's Client-Properties header; nil without one
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

// CloseConversation closes the open conversation id, as an agent would,
// and reports whether it was open. SEND to it fails from then on, and its
// consumer can open another.
func (s *Server) CloseConversation(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.convs[id]
	if !ok || c.State != stateOpen {
		return false
	}
	s.closeLocked(c)
	return true
}

// conversation is the server's record of one conversation.
type conversation struct {
	ConversationInfo
	next int // the sequence of its next numbered event
}

// open records c as its consumer's open conversation, unless the consumer
// has one, and reports whether it did.
func (s *Server) open(c *conversation) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, busy := s.openConv[c.Consumer]; busy {
		return false
	}
	c.State = stateOpen
	s.convs[c.ID] = c
	s.convOrder = append(s.convOrder, c)
	s.openConv[c.Consumer] = c
	return true
}

// closeLocked closes c. The caller holds s.mu.
func (s *Server) closeLocked(c *conversation) {
	c.State = stateClose
	if s.openConv[c.Consumer] == c {
		delete(s.openConv, c.Consumer)
	}
}

// publishLocked adds e to c, numbering it unless it is a chat state, and
// returns its sequence. The caller holds s.mu.
func (c *conversation) publishLocked(e Event) int {
	e.Sequence = -1
	if e.Type != "ChatStateEvent" {
		e.Sequence = c.next
		c.next++
	}
	c.Events = append(c.Events, e)
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
		out.Events[i].Features = slices.Clone(out.Events[i].Features)
	}
	return out
}
