package appjwttest

import (
	"bytes"
	"encoding/json"
	"time"
)

// The roles of a conversation's participants, as LivePerson names them.
const (
	roleConsumer = "CONSUMER"
	roleAgent    = "ASSIGNED_AGENT"
)

// notification is a webhook notification, its fields in the order of
// LivePerson's examples:
//
//	{"kind":"notification","body":{"changes":[...]},"type":"ms.MessagingEventNotification"}
type notification struct {
	Kind string `json:"kind"`
	Body struct {
		Changes []any `json:"changes"`
	} `json:"body"`
	Type string `json:"type"`
}

// messagingChange is a change of an ms.MessagingEventNotification. Chat
// states have no sequence and no serverTimestamp, as in LivePerson's
// example.
type messagingChange struct {
	Sequence           *int         `json:"sequence,omitempty"`
	OriginatorID       string       `json:"originatorId"`
	OriginatorMetadata participant  `json:"originatorMetadata"`
	ServerTimestamp    int64        `json:"serverTimestamp,omitempty"`
	Event              eventPayload `json:"event"`
	DialogID           string       `json:"dialogId"`
	ConversationID     string       `json:"conversationId"` // the same, as LivePerson's demo app's signed fixture carries it
}

type participant struct {
	ID   string `json:"id"`
	Role string `json:"role"`
}

// eventPayload is an event as a notification carries it.
type eventPayload struct {
	Type         string          `json:"type"`
	Message      string          `json:"message,omitempty"`
	ContentType  string          `json:"contentType,omitempty"`
	ChatState    string          `json:"chatState,omitempty"`
	Status       string          `json:"status,omitempty"`
	SequenceList []int           `json:"sequenceList,omitempty"`
	Content      json.RawMessage `json:"content,omitempty"`
}

// conversationChange is a change of a cqm.ExConversationChangeNotification.
type conversationChange struct {
	Type   string `json:"type"`
	Result struct {
		ConvID              string              `json:"convId"`
		ConversationDetails conversationDetails `json:"conversationDetails"`
	} `json:"result"`
}

type conversationDetails struct {
	Participants         []participant `json:"participants"`
	BrandID              string        `json:"brandId"`
	State                string        `json:"state"`
	Stage                string        `json:"stage"`
	CloseReason          string        `json:"closeReason,omitempty"`
	StartTs              int64         `json:"startTs"`
	EndTs                int64         `json:"endTs,omitempty"`
	MetaDataLastUpdateTs int64         `json:"metaDataLastUpdateTs"`
}

// notifyEventLocked delivers e, published in c at now, to the webhook of
// its type. The caller holds s.mu.
func (s *Server) notifyEventLocked(c *conversation, e MessagingEvent, now time.Time) {
	ch := messagingChange{
		OriginatorMetadata: s.participantLocked(c, e.Role),
		Event: eventPayload{
			Type: e.Type, Message: e.Message, ChatState: e.ChatState,
			Status: e.Status, SequenceList: e.SequenceList, Content: e.Content,
		},
		DialogID:       c.ID,
		ConversationID: c.ID,
	}
	ch.OriginatorID = ch.OriginatorMetadata.ID
	if e.Type == "ContentEvent" {
		ch.Event.ContentType = "text/plain"
	}
	if e.Sequence >= 0 {
		seq := e.Sequence
		ch.Sequence, ch.ServerTimestamp = &seq, now.UnixMilli()
	}
	s.notifyLocked(c, "ms.MessagingEventNotification."+e.Type, "ms.MessagingEventNotification", ch)
}

// notifyConversationLocked delivers c's state at now to the conversation
// change webhook. The caller holds s.mu.
func (s *Server) notifyConversationLocked(c *conversation, now time.Time) {
	var ch conversationChange
	ch.Type = "UPSERT"
	ch.Result.ConvID = c.ID
	d := conversationDetails{
		Participants:         []participant{s.participantLocked(c, roleConsumer)},
		BrandID:              s.AccountID,
		State:                c.State,
		Stage:                c.State, // the conversation's, as the main dialog's: no survey here
		StartTs:              c.startTs,
		MetaDataLastUpdateTs: now.UnixMilli(),
	}
	if c.agentJoined {
		d.Participants = append(d.Participants, s.participantLocked(c, roleAgent))
	}
	if c.State == stateClose {
		d.CloseReason, d.EndTs = c.closeReason, now.UnixMilli()
	}
	ch.Result.ConversationDetails = d
	s.notifyLocked(c, WebhookConversationChange, WebhookConversationChange, ch)
}

// participantLocked returns the consumer of c, or its agent. The caller
// holds s.mu.
func (s *Server) participantLocked(c *conversation, role string) participant {
	if role == roleAgent {
		return participant{ID: s.agentID, Role: roleAgent}
	}
	return participant{ID: s.lpConsumers[c.Consumer], Role: roleConsumer}
}

// notifyLocked delivers a notification of one change of c to the webhook
// of event type hook. Delivering while s.mu is held queues notifications
// in the order of the events. The caller holds s.mu.
func (s *Server) notifyLocked(c *conversation, hook, typ string, change any) {
	n := notification{Kind: "notification", Type: typ}
	n.Body.Changes = []any{change}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // as LivePerson writes JSON
	if err := enc.Encode(n); err != nil {
		panic("appjwttest: encoding a notification: " + err.Error())
	}
	s.hooks.deliver(hook, c.ID, bytes.TrimSuffix(b.Bytes(), []byte("\n")), s.AccountID, s.ClientID, s.ClientSecret)
}
