package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// The notification types whose changes Parse decodes.
const (
	typeMessaging    = "ms.MessagingEventNotification"
	typeConversation = "cqm.ExConversationChangeNotification"
)

// roleConsumer is the role of the consumer, in a MessagingEvent's
// Originator or a conversation's Participants.
const roleConsumer = "CONSUMER"

// Notification is one webhook delivery, as LivePerson documents it:
//
//	{"kind":"notification","body":{"changes":[...]},"type":"ms.MessagingEventNotification"}
//
// Fields LivePerson adds later, and notification or event types this
// package does not know, are kept in the Raw fields, never an error.
type Notification struct {
	Kind string // "notification"
	Type string // "ms.MessagingEventNotification", "cqm.ExConversationChangeNotification" or another

	// Events are the changes of an "ms.MessagingEventNotification", the
	// type of the webhooks ms.MessagingEventNotification.ContentEvent,
	// .RichContentEvent, .AcceptStatusEvent and .ChatStateEvent, in the
	// order delivered; nil for other types.
	Events []MessagingEvent

	// Conversations are the changes of a
	// "cqm.ExConversationChangeNotification", the type of the webhook of
	// that name, in the order delivered; nil for other types.
	Conversations []ConversationChange

	// Raw is the notification as received, every field in it.
	Raw json.RawMessage
}

// MessagingEvent is one change of an "ms.MessagingEventNotification":
// an event in a conversation's dialog, such as the agent's message.
type MessagingEvent struct {
	DialogID       string // the dialog; for the main dialog, the conversation ID
	ConversationID string // when LivePerson sends it

	// Sequence numbers the events of a conversation, from 0, when
	// HasSequence; chat states have none. (DialogID, Sequence) identifies
	// a delivered event: see [Dedup].
	Sequence    int64
	HasSequence bool

	OriginatorID string      // the participant whose event it is
	Originator   Participant // originatorMetadata: id and role

	// ServerTimestamp is when LivePerson received the event, in
	// milliseconds since the Unix epoch; 0 when absent.
	ServerTimestamp int64

	// Event is a *ContentEvent, *RichContentEvent, *AcceptStatusEvent,
	// *ChatStateEvent or, for a type this package does not know, an
	// *UnknownEvent; nil if the change has no event.
	Event Event

	// Raw is the change as received, every field in it.
	Raw json.RawMessage
}

// FromConsumer reports whether the consumer originated the event, by its
// originator's role. LivePerson delivers the consumer's own events, which
// a connector sent through the Send API, to the connector's webhooks too:
// a connector that forwards the agent's messages to the consumer skips
// these, or echoes the consumer's words back.
func (e *MessagingEvent) FromConsumer() bool {
	return equalFoldASCII(e.Originator.Role, roleConsumer)
}

// Event is the event of a [MessagingEvent]. A type switch tells which:
//
//	switch ev := e.Event.(type) {
//	case *webhook.ContentEvent:
//		fmt.Println(ev.Message)
//	case *webhook.UnknownEvent:
//		log.Printf("event type %s not handled", ev.Type)
//	}
type Event interface {
	// EventType is the event's "type", such as "ContentEvent".
	EventType() string
}

// The content types of a [ContentEvent] whose "message" is an object this
// package decodes.
const (
	contentTypeHostedFile     = "hosted/file"
	contentTypeFormInvitation = "forms/secure-invitation"
	contentTypeFormSubmission = "forms/secure-submission"
)

// ContentEvent is a message: a text, a shared file, a secure form, or
// another content type. Its "message" is a JSON string for a text and an
// object for the others; whatever it is, it never fails the notification:
// the fields of the content types LivePerson documents are typed, and
// MessageRaw keeps it as received for the rest.
type ContentEvent struct {
	// ContentType is the message's, as LivePerson documents them:
	// "text/plain", a text, in Message; "hosted/file", a shared file, in
	// File; "forms/secure-invitation", a secure form sent to the consumer,
	// and "forms/secure-submission", the consumer filled it in, in Form.
	// LivePerson may add others.
	ContentType string `json:"contentType"`

	// Message is "message" when it is a JSON string, as for a text; empty
	// when it is not a string.
	Message string `json:"message"`

	// File is the shared file of a "hosted/file" message; nil for
	// other content types, or if "message" is not an object of that form.
	// LivePerson's File Sharing pages publish it as an object; one client
	// was seen to carry the same object as JSON text in a string, which is
	// decoded too (and kept in Message).
	File *HostedFile `json:"-"`

	// Form is the secure form of a "forms/secure-invitation" or
	// "forms/secure-submission" message; nil for other content types, or
	// if "message" is not an object of that form.
	Form *SecureForm `json:"-"`

	// MessageRaw is "message" as received, whatever its JSON type; nil
	// when absent. The fields of undocumented forms are found here.
	MessageRaw json.RawMessage `json:"-"`

	Raw json.RawMessage `json:"-"` // the event as received
}

// HostedFile is a file shared in a conversation, kept in LivePerson's
// storage, as a "hosted/file" message describes it (LivePerson's
// Messaging History API and File Sharing pages).
type HostedFile struct {
	Caption string `json:"caption"`

	// RelativePath locates the file in LivePerson's storage; the Messaging
	// Window API's ms.GenerateURLForDownloadFile turns it into a
	// temporary download URL.
	RelativePath string `json:"relativePath"`

	FileType string `json:"fileType"` // such as "JPG", "PNG", "GIF", "TXT" or "PDF"

	// Preview is a thumbnail as a data URL, such as
	// "data:image/png;base64,...": up to some 30 KB.
	Preview string `json:"preview"`
}

// SecureForm is a secure (PCI) form, as a "forms/secure-invitation" or
// "forms/secure-submission" message names it (LivePerson's Messaging
// History API). What the consumer entered never comes in a notification.
type SecureForm struct {
	InvitationID string `json:"invitationId"` // ties a submission to its invitation
	Title        string `json:"title"`        // the invitation's; empty in a submission
}

// RichContentEvent is structured content: a card, an image, a survey.
type RichContentEvent struct {
	Content json.RawMessage `json:"content"` // LivePerson's structured content JSON
	Raw     json.RawMessage `json:"-"`       // the event as received
}

// AcceptStatusEvent is a receipt: events of the conversation, by
// sequence, were accepted, read, accessed, or acted on.
type AcceptStatusEvent struct {
	Status       string          `json:"status"` // ACCEPT, READ, ACCESS, NACK or ACTION
	SequenceList []int64         `json:"sequenceList"`
	Raw          json.RawMessage `json:"-"` // the event as received
}

// ChatStateEvent is a participant's chat state, such as typing.
type ChatStateEvent struct {
	ChatState string          `json:"chatState"` // ACTIVE, INACTIVE, GONE, COMPOSING or PAUSE
	Raw       json.RawMessage `json:"-"`         // the event as received
}

// UnknownEvent is an event of a type this package does not know.
type UnknownEvent struct {
	Type string          // its "type"
	Raw  json.RawMessage // the event as received
}

// EventType returns "ContentEvent".
func (*ContentEvent) EventType() string { return "ContentEvent" }

// EventType returns "RichContentEvent".
func (*RichContentEvent) EventType() string { return "RichContentEvent" }

// EventType returns "AcceptStatusEvent".
func (*AcceptStatusEvent) EventType() string { return "AcceptStatusEvent" }

// EventType returns "ChatStateEvent".
func (*ChatStateEvent) EventType() string { return "ChatStateEvent" }

// EventType returns the event's "type" as received.
func (e *UnknownEvent) EventType() string { return e.Type }

// ConversationChange is one change of a
// "cqm.ExConversationChangeNotification": a conversation was opened,
// assigned, transferred or closed, or one of its dialogs was.
type ConversationChange struct {
	Type           string              // "UPSERT" or "DELETE"
	ConversationID string              // result.convId
	Details        ConversationDetails // result.conversationDetails

	// Raw is the change as received, every field in it.
	Raw json.RawMessage
}

// Closed reports whether the conversation is closed as a whole, by its
// Details.Stage, or, in a notification without a stage, by its
// Details.State. This is the closed-ness a connector acts on: when the
// agent or the consumer closes the main dialog, a post-conversation survey
// may keep the conversation open (State "CLOSE", Stage "OPEN"), and its
// questions and the consumer's answers still flow, in the survey's
// dialog.
func (c *ConversationChange) Closed() bool {
	if c.Details.Stage != "" {
		return c.Details.Stage == "CLOSE"
	}
	return c.Details.State == "CLOSE"
}

// ConversationDetails is the state of a conversation. Its other fields
// (skillId, ttr...) and result's (effectiveTTR...) are in the change's
// Raw.
//
// LivePerson's conversation is a container of dialogs: its main dialog,
// between the consumer and the agent, whose ID is the conversation's; and,
// once that closes, possibly a post-conversation survey's (dialogType
// "POST_SURVEY"), with an ID of its own, in which a survey bot asks and
// the consumer answers. Stage is the container's status, State the main
// dialog's:
//
//	the conversation                       State  Stage
//	open                                   OPEN   OPEN
//	main dialog closed, survey going on    CLOSE  OPEN
//	closed (survey over, or none)          CLOSE  CLOSE
type ConversationDetails struct {
	// State is the main dialog's status, "OPEN" or "CLOSE". (It was the
	// conversation's before LivePerson added surveys and Stage.)
	State string `json:"state"`

	// Stage is the conversation's status as a whole, "OPEN" or "CLOSE";
	// empty in a notification that does not carry it, where State tells.
	Stage string `json:"stage"`

	CloseReason  string        `json:"closeReason"` // such as "AGENT" or "CONSUMER"
	BrandID      string        `json:"brandId"`
	Participants []Participant `json:"participants"`

	// Dialogs are the conversation's dialogs, when LivePerson lists them:
	// the events of a survey come with its DialogID, not the
	// conversation's.
	Dialogs []Dialog `json:"dialogs"`

	// Times in milliseconds since the Unix epoch; 0 when absent.
	StartTs              int64 `json:"startTs"`
	EndTs                int64 `json:"endTs"`
	MetaDataLastUpdateTs int64 `json:"metaDataLastUpdateTs"`
}

// Dialog is one dialog of a conversation. Its other fields
// (participantsDetails, metaData...) are in the change's Raw.
type Dialog struct {
	DialogID    string `json:"dialogId"`
	DialogType  string `json:"dialogType"`  // "MAIN" or "POST_SURVEY"
	ChannelType string `json:"channelType"` // such as "MESSAGING"
	State       string `json:"state"`       // "OPEN" or "CLOSE"
	ClosedBy    string `json:"closedBy"`    // such as "CONSUMER", once closed
}

// Participant is a participant of a conversation: in its Participants,
// or the Originator of an event.
type Participant struct {
	ID   string `json:"id"`
	Role string `json:"role"` // such as "CONSUMER" or "ASSIGNED_AGENT"
}

// Parse decodes a notification's body, which should be verified first.
// It fails only on what is not JSON, or on a known field of another JSON
// type than LivePerson documents (a sequence that is a string, say); the
// error names the change and never quotes a value. Added fields and
// unknown types are no error: they are kept in the Raw fields. A
// notification of more than 10,000 changes is an error too: Parse
// allocates about 0.5 KB per change beside the body.
func Parse(body []byte) (*Notification, error) {
	var n Notification
	if err := n.UnmarshalJSON(body); err != nil {
		return nil, err
	}
	return &n, nil
}

// maxChanges bounds the changes of one notification, and so what Parse
// allocates for them, about 0.5 KB each beside the body: LivePerson sends
// a handful; a body of the 1 MiB cap made of empty changes would hold
// 350,000 and cost some 200 MiB.
const maxChanges = 10000

// UnmarshalJSON decodes a notification as [Parse] does.
func (n *Notification) UnmarshalJSON(b []byte) error {
	var w struct {
		Kind string `json:"kind"`
		Type string `json:"type"`
		Body struct {
			Changes []json.RawMessage `json:"changes"`
		} `json:"body"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("webhook: notification: %w", valueless(err))
	}
	if len(w.Body.Changes) > maxChanges {
		return fmt.Errorf("webhook: notification: %d changes, more than the %d Parse takes", len(w.Body.Changes), maxChanges)
	}
	d := Notification{Kind: w.Kind, Type: w.Type, Raw: bytes.Clone(b)}
	switch w.Type {
	case typeMessaging:
		d.Events = make([]MessagingEvent, len(w.Body.Changes))
		for i, c := range w.Body.Changes {
			if err := d.Events[i].decode(c); err != nil {
				return fmt.Errorf("webhook: notification: change %d: %w", i, err)
			}
		}
	case typeConversation:
		d.Conversations = make([]ConversationChange, len(w.Body.Changes))
		for i, c := range w.Body.Changes {
			if err := d.Conversations[i].decode(c); err != nil {
				return fmt.Errorf("webhook: notification: change %d: %w", i, err)
			}
		}
	}
	*n = d
	return nil
}

// MarshalJSON writes Raw, the notification as received, so that a
// Notification put on a queue as JSON decodes to the same. (encoding/json
// compacts what it writes, and escapes <, > and & unless told not to: the
// same JSON, not always the same bytes. Verify signatures over the body
// as received.)
func (n Notification) MarshalJSON() ([]byte, error) {
	if n.Raw == nil {
		return []byte("null"), nil
	}
	return n.Raw, nil
}

// decode decodes a change, which it keeps as Raw.
func (e *MessagingEvent) decode(raw json.RawMessage) error {
	var w struct {
		DialogID        string          `json:"dialogId"`
		ConversationID  string          `json:"conversationId"`
		Sequence        *int64          `json:"sequence"`
		OriginatorID    string          `json:"originatorId"`
		Originator      Participant     `json:"originatorMetadata"`
		ServerTimestamp int64           `json:"serverTimestamp"`
		Event           json.RawMessage `json:"event"`
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return valueless(err)
	}
	ev, err := decodeEvent(w.Event)
	if err != nil {
		return fmt.Errorf("event: %w", err)
	}
	*e = MessagingEvent{
		DialogID:        w.DialogID,
		ConversationID:  w.ConversationID,
		HasSequence:     w.Sequence != nil,
		OriginatorID:    w.OriginatorID,
		Originator:      w.Originator,
		ServerTimestamp: w.ServerTimestamp,
		Event:           ev,
		Raw:             raw,
	}
	if w.Sequence != nil {
		e.Sequence = *w.Sequence
	}
	return nil
}

// decodeEvent decodes an event by its type, and keeps it as Raw.
func decodeEvent(raw json.RawMessage) (Event, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, valueless(err)
	}
	var ev Event
	switch head.Type {
	case "ContentEvent":
		e := new(ContentEvent)
		if err := e.decode(raw); err != nil {
			return nil, err
		}
		return e, nil
	case "RichContentEvent":
		ev = &RichContentEvent{Raw: raw}
	case "AcceptStatusEvent":
		ev = &AcceptStatusEvent{Raw: raw}
	case "ChatStateEvent":
		ev = &ChatStateEvent{Raw: raw}
	default:
		return &UnknownEvent{Type: head.Type, Raw: raw}, nil
	}
	if err := json.Unmarshal(raw, ev); err != nil {
		return nil, valueless(err)
	}
	return ev, nil
}

// decode decodes a ContentEvent, which it keeps as Raw. Its "message"
// never fails it: only a contentType of another JSON type than a string
// does.
func (e *ContentEvent) decode(raw json.RawMessage) error {
	var w struct {
		ContentType string          `json:"contentType"`
		Message     json.RawMessage `json:"message"`
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return valueless(err)
	}
	*e = ContentEvent{ContentType: w.ContentType, MessageRaw: w.Message, Raw: raw}
	object := w.Message
	if len(w.Message) > 0 && w.Message[0] == '"' && json.Unmarshal(w.Message, &e.Message) == nil {
		object = []byte(e.Message)
	}
	switch w.ContentType {
	case contentTypeHostedFile:
		e.File = decodeObject[HostedFile](object)
	case contentTypeFormInvitation, contentTypeFormSubmission:
		e.Form = decodeObject[SecureForm](object)
	}
	return nil
}

// decodeObject decodes b into a T if it is a JSON object that fits one,
// and returns nil otherwise.
func decodeObject[T any](b []byte) *T {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 || b[0] != '{' {
		return nil
	}
	v := new(T)
	if json.Unmarshal(b, v) != nil {
		return nil
	}
	return v
}

// decode decodes a change, which it keeps as Raw.
func (c *ConversationChange) decode(raw json.RawMessage) error {
	var w struct {
		Type   string `json:"type"`
		Result struct {
			ConvID              string              `json:"convId"`
			ConversationDetails ConversationDetails `json:"conversationDetails"`
		} `json:"result"`
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return valueless(err)
	}
	*c = ConversationChange{
		Type:           w.Type,
		ConversationID: w.Result.ConvID,
		Details:        w.Result.ConversationDetails,
		Raw:            raw,
	}
	return nil
}

// valueless returns a decoding error whose text quotes nothing of the
// body (encoding/json's quote a character, or a number), wrapping err for
// [errors.As].
func valueless(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return &decodeError{fmt.Sprintf("not JSON (at byte %d)", syntax.Offset), err}
	case errors.As(err, &typ):
		kind, _, _ := strings.Cut(typ.Value, " ") // "number 1.5": keep "number"
		msg := fmt.Sprintf("got a JSON %s, want %s", kind, jsonKind(typ.Type))
		if typ.Field != "" {
			msg = typ.Field + ": " + msg
		}
		return &decodeError{msg, err}
	}
	return err
}

// jsonKind names the JSON value that decodes into t.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return t.String()
}

// decodeError is a decoding error with a text of its own.
type decodeError struct {
	msg string
	err error
}

func (e *decodeError) Error() string { return e.msg }
func (e *decodeError) Unwrap() error { return e.err }
