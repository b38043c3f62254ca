package appjwttest

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"
)

// The request types the Send API takes.
const (
	typeSetUserProfile = "userprofile.SetUserProfile"
	typeRequestConv    = "cm.ConsumerRequestConversation"
	typePublishEvent   = "ms.PublishEvent"
	typeUpdateField    = "cm.UpdateConversationField"
)

// profileSet is the body LivePerson answers a userprofile.SetUserProfile
// with.
var profileSet = map[string]string{"msg": "OK User Profile set successfully"}

// sendAPIRequest checks what CONVERSATION and SEND both check, the
// AppJWT, the ConsumerJWS and the Client-Properties header, and answers
// the request if it fails: the consumer, and the features it asks for.
func (s *Server) sendAPIRequest(e Endpoint, w http.ResponseWriter, r *http.Request) (consumer string, features []string, ok bool) {
	consumer, ok = s.authorize(w, r, "3", true)
	if !ok {
		return "", nil, false
	}
	features, err := s.clientProperties(e, r.Header)
	if err != nil {
		err.write(w)
		return "", nil, false
	}
	return consumer, features, true
}

func (s *Server) serveConversation(w http.ResponseWriter, r *http.Request) {
	consumer, features, ok := s.sendAPIRequest(Conversation, w, r)
	if !ok {
		return
	}
	var batch []json.RawMessage
	if err := readJSON(w, r, &batch); err != nil {
		batch = nil
	}
	profile, open, e := s.parseBatch(batch)
	if e != nil {
		e.write(w)
		return
	}
	c := &conversation{ConversationInfo: ConversationInfo{
		ID: newUUID(), Consumer: consumer, Profile: profile.Body, Request: open.Body, Features: features,
	}}
	if !s.open(c, requestTime(r)) {
		badParameter("the consumer has an open conversation already: close it first").write(w)
		return
	}
	writeJSON(w, http.StatusOK, []batchAnswer{
		{Code: "OK", Body: profileSet, ReqID: profile.reqID},
		{Code: "OK", Body: map[string]string{"conversationId": c.ID}, ReqID: open.reqID},
	})
}

// parseBatch checks the requests of a CONVERSATION: a profile, then a
// conversation request.
func (s *Server) parseBatch(batch []json.RawMessage) (profile, open lpRequest, e *lpError) {
	if len(batch) != 2 {
		return profile, open, badParameter(notTwoRequests)
	}
	if profile, e = parseRequest(batch[0], typeSetUserProfile); e == nil {
		e = checkProfile(profile.Body)
	}
	if e == nil {
		if open, e = parseRequest(batch[1], typeRequestConv); e == nil {
			e = s.checkConversationRequest(open.Body)
		}
	}
	return profile, open, e
}

// notTwoRequests is the error for a CONVERSATION body of the wrong shape.
const notTwoRequests = "the body must be a JSON array of two requests: userprofile.SetUserProfile, then cm.ConsumerRequestConversation"

func (s *Server) serveSend(w http.ResponseWriter, r *http.Request) {
	consumer, features, ok := s.sendAPIRequest(Send, w, r)
	if !ok {
		return
	}
	var raw json.RawMessage
	if err := readJSON(w, r, &raw); err != nil {
		badParameter("the body must be one JSON request").write(w)
		return
	}
	req, e := parseRequest(raw, "")
	if e != nil {
		e.write(w)
		return
	}
	var body any
	switch req.Type {
	case typePublishEvent:
		body, e = s.publish(consumer, req.Body, features, requestTime(r))
	case typeUpdateField:
		body, e = s.closeByConsumer(consumer, req.Body, requestTime(r))
	case typeSetUserProfile:
		body, e = s.setProfile(consumer, req.Body)
	default:
		e = badParameter("type must be ms.PublishEvent, cm.UpdateConversationField or userprofile.SetUserProfile")
	}
	if e != nil {
		e.write(w)
		return
	}
	writeJSON(w, http.StatusOK, sendAnswer{ReqID: req.reqID, Code: "OK", Body: body})
}

// batchAnswer is one entry of CONVERSATION's answer, its fields in the
// order of LivePerson's example.
type batchAnswer struct {
	Code  string `json:"code"`
	Body  any    `json:"body"`
	ReqID string `json:"reqId"`
}

// sendAnswer is SEND's answer, its fields in the order of LivePerson's
// example.
type sendAnswer struct {
	ReqID string `json:"reqId"`
	Code  string `json:"code"`
	Body  any    `json:"body"`
}

// publish carries out an ms.PublishEvent sent at now and returns the body
// of its answer.
func (s *Server) publish(consumer string, raw json.RawMessage, features []string, now time.Time) (any, *lpError) {
	var body struct {
		DialogID string          `json:"dialogId"`
		Event    json.RawMessage `json:"event"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil, malformed(typePublishEvent, err)
	}
	if body.DialogID == "" {
		return nil, badParameter("ms.PublishEvent: dialogId is missing")
	}
	ev, e := parseEvent(body.Event, false)
	if e != nil {
		return nil, e
	}
	ev.Role, ev.Features = roleConsumer, features
	s.mu.Lock()
	defer s.mu.Unlock()
	c, e := s.ownConversationLocked(consumer, body.DialogID)
	if e != nil {
		return nil, e
	}
	if seq := s.publishLocked(c, ev, now); seq >= 0 {
		return map[string]int{"sequence": seq}, nil
	}
	return struct{}{}, nil
}

// chatStates and acceptStatuses are the values LivePerson documents for a
// ChatStateEvent's chatState and an AcceptStatusEvent's status.
var (
	chatStates     = []string{"ACTIVE", "INACTIVE", "GONE", "COMPOSING", "PAUSE"}
	acceptStatuses = []string{"ACCEPT", "READ", "ACCESS", "NACK", "ACTION"}
)

// parseEvent checks the event of an ms.PublishEvent; an agent's may be a
// RichContentEvent too.
func parseEvent(raw json.RawMessage, agent bool) (MessagingEvent, *lpError) {
	var ev struct {
		Type         string          `json:"type"`
		ContentType  string          `json:"contentType"`
		Message      json.RawMessage `json:"message"`
		ChatState    string          `json:"chatState"`
		Status       string          `json:"status"`
		SequenceList []int           `json:"sequenceList"`
		Content      json.RawMessage `json:"content"`
	}
	if !isObject(raw) {
		return MessagingEvent{}, badParameter("ms.PublishEvent: event must be a JSON object")
	}
	if err := json.Unmarshal(raw, &ev); err != nil {
		return MessagingEvent{}, malformed("ms.PublishEvent event", err)
	}
	out := MessagingEvent{Type: ev.Type}
	switch ev.Type {
	case "ContentEvent":
		if ev.ContentType != "text/plain" {
			return MessagingEvent{}, badParameter("ContentEvent: contentType must be text/plain, the only one appjwttest takes")
		}
		if json.Unmarshal(ev.Message, &out.Message) != nil || out.Message == "" {
			return MessagingEvent{}, badParameter("ContentEvent: message must be a string of text")
		}
	case "ChatStateEvent":
		if !slices.Contains(chatStates, ev.ChatState) {
			return MessagingEvent{}, badParameter("ChatStateEvent: chatState must be ACTIVE, INACTIVE, GONE, COMPOSING or PAUSE")
		}
		out.ChatState = ev.ChatState
	case "AcceptStatusEvent":
		if !slices.Contains(acceptStatuses, ev.Status) {
			return MessagingEvent{}, badParameter("AcceptStatusEvent: status must be ACCEPT, READ, ACCESS, NACK or ACTION")
		}
		if len(ev.SequenceList) == 0 || slices.ContainsFunc(ev.SequenceList, func(n int) bool { return n < 0 }) {
			return MessagingEvent{}, badParameter("AcceptStatusEvent: sequenceList must be a non-empty array of sequences")
		}
		out.Status, out.SequenceList = ev.Status, ev.SequenceList
	case "RichContentEvent":
		if !agent {
			return MessagingEvent{}, badParameter(notAnEvent)
		}
		if !isObject(ev.Content) {
			return MessagingEvent{}, badParameter("RichContentEvent: content must be a JSON object")
		}
		out.Content = bytes.Clone(ev.Content)
	default:
		return MessagingEvent{}, badParameter(notAnEvent)
	}
	return out, nil
}

// notAnEvent is the error for an event of a type SEND does not take.
const notAnEvent = "ms.PublishEvent: event type must be ContentEvent, ChatStateEvent or AcceptStatusEvent"

// closeByConsumer carries out a cm.UpdateConversationField sent at now
// and returns the body of its answer.
func (s *Server) closeByConsumer(consumer string, raw json.RawMessage, now time.Time) (any, *lpError) {
	var body struct {
		ConversationID    string          `json:"conversationId"`
		ConversationField json.RawMessage `json:"conversationField"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil, malformed(typeUpdateField, err)
	}
	if body.ConversationID == "" {
		return nil, badParameter("cm.UpdateConversationField: conversationId is missing")
	}
	type field struct {
		Field             string `json:"field"`
		ConversationState string `json:"conversationState"`
	}
	var fields []field
	if isObject(body.ConversationField) {
		var one field
		if json.Unmarshal(body.ConversationField, &one) == nil {
			fields = []field{one}
		}
	} else {
		json.Unmarshal(body.ConversationField, &fields)
	}
	if len(fields) != 1 || fields[0] != (field{Field: "ConversationStateField", ConversationState: "CLOSE"}) {
		return nil, badParameter(`cm.UpdateConversationField: conversationField must be {"field":"ConversationStateField","conversationState":"CLOSE"}, the only one appjwttest takes`)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, e := s.ownConversationLocked(consumer, body.ConversationID)
	if e != nil {
		return nil, e
	}
	s.closeLocked(c, closedByConsumer, now)
	return struct{}{}, nil
}

// setProfile carries out a userprofile.SetUserProfile sent through SEND,
// and returns the body of its answer.
func (s *Server) setProfile(consumer string, raw json.RawMessage) (any, *lpError) {
	if e := checkProfile(raw); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.openConv[consumer]; ok {
		c.Profile = raw
	}
	return profileSet, nil
}

// ownConversationLocked returns conversation id, open and of consumer, or the
// error LivePerson's would be. The caller holds s.mu.
func (s *Server) ownConversationLocked(consumer, id string) (*conversation, *lpError) {
	c, ok := s.convs[id]
	switch {
	case !ok:
		return nil, badParameter("the conversation is unknown: open one with CONVERSATION")
	case c.Consumer != consumer:
		// LivePerson: a 40103 "can also mean the ConsumerJWS belongs to
		// another consumer than the conversation".
		return nil, &lpError{code: codeConsumerInvalid}
	case c.State != stateOpen:
		return nil, badParameter("the conversation is closed")
	}
	return c, nil
}

// checkProfile checks the body of a userprofile.SetUserProfile.
func checkProfile(raw json.RawMessage) *lpError {
	var body struct {
		AuthenticatedData *struct {
			SDEs []struct {
				Type     string          `json:"type"`
				Info     json.RawMessage `json:"info"`
				Personal json.RawMessage `json:"personal"`
			} `json:"lp_sdes"`
		} `json:"authenticatedData"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return malformed(typeSetUserProfile, err)
	}
	if body.AuthenticatedData == nil {
		return nil
	}
	for _, sde := range body.AuthenticatedData.SDEs {
		switch {
		case sde.Type == "ctmrinfo" && isObject(sde.Info), sde.Type == "personal" && isObject(sde.Personal):
		default:
			return badParameter(`userprofile.SetUserProfile: each lp_sdes entry must be {"type":"ctmrinfo","info":{...}} or {"type":"personal","personal":{...}}`)
		}
	}
	return nil
}

// ttrDefNames are the values LivePerson documents for ttrDefName, besides
// null.
var ttrDefNames = []string{"NORMAL", "URGENT", "PRIORITIZED"}

// checkConversationRequest checks the body of a
// cm.ConsumerRequestConversation.
func (s *Server) checkConversationRequest(raw json.RawMessage) *lpError {
	var body struct {
		BrandID      *string `json:"brandId"`
		ChannelType  *string `json:"channelType"`
		TTRDefName   *string `json:"ttrDefName"`
		SkillID      *string `json:"skillId"`
		CampaignInfo *struct {
			CampaignID   json.RawMessage `json:"campaignId"`
			EngagementID json.RawMessage `json:"engagementId"`
		} `json:"campaignInfo"`
		ConversationContext map[string]any `json:"conversationContext"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return malformed(typeRequestConv, err)
	}
	switch {
	case body.BrandID == nil || *body.BrandID == "":
		return &lpError{code: codeMissingParameter} // LivePerson's "Brand Id is missing"
	case *body.BrandID != s.AccountID:
		return badParameter("cm.ConsumerRequestConversation: brandId must be the account in the URL")
	case body.ChannelType == nil && !s.lenient(Conversation, RuleConversationChannelType,
		`no channelType: LivePerson's CONVERSATION page calls {"brandId"} alone the minimal payload, and its table channelType mandatory`):
		return badParameter("cm.ConsumerRequestConversation: channelType is missing")
	case body.ChannelType != nil && *body.ChannelType == "":
		return badParameter("cm.ConsumerRequestConversation: channelType is missing")
	case body.ChannelType != nil && *body.ChannelType != "MESSAGING":
		return badParameter("cm.ConsumerRequestConversation: channelType must be MESSAGING")
	case body.TTRDefName != nil && !slices.Contains(ttrDefNames, *body.TTRDefName):
		return badParameter("cm.ConsumerRequestConversation: ttrDefName must be NORMAL, URGENT, PRIORITIZED or null")
	}
	if c := body.CampaignInfo; c != nil {
		return s.checkCampaignIDs(c.CampaignID, c.EngagementID)
	}
	return nil
}

// checkCampaignIDs checks the campaignId and engagementId of a
// campaignInfo: strings, as LivePerson's pages show them, or numbers, as
// LivePerson's demo app sends them.
func (s *Server) checkCampaignIDs(ids ...json.RawMessage) *lpError {
	numbers := false
	for i, raw := range ids {
		var v any
		if len(raw) == 0 || json.Unmarshal(raw, &v) != nil {
			continue // absent
		}
		switch v.(type) {
		case string, nil:
		case float64:
			numbers = true
		default:
			return badParameter("cm.ConsumerRequestConversation: campaignInfo." + [...]string{"campaignId", "engagementId"}[i] + " has the wrong JSON type")
		}
	}
	if numbers && !s.lenient(Conversation, RuleCampaignInfoNumbers,
		"numeric campaignId or engagementId: LivePerson's pages show strings; LivePerson's demo app sends numbers") {
		return badParameter("cm.ConsumerRequestConversation: campaignInfo's campaignId and engagementId are strings")
	}
	return nil
}

// lpRequest is a request of LivePerson's messaging protocol, as the Send
// API takes them.
type lpRequest struct {
	Type  string
	Body  json.RawMessage
	reqID string // the id, as an answer's reqId gives it
}

// parseRequest checks the frame of one request: kind "req", an id, the
// type want (any type if want is ""), and an object for body.
func parseRequest(raw json.RawMessage, want string) (lpRequest, *lpError) {
	var req struct {
		Kind string          `json:"kind"`
		ID   json.RawMessage `json:"id"`
		Type string          `json:"type"`
		Body json.RawMessage `json:"body"`
	}
	if !isObject(raw) || json.Unmarshal(raw, &req) != nil {
		return lpRequest{}, badParameter(`each request must be a JSON object: {"kind":"req","id":...,"type":...,"body":{...}}`)
	}
	if req.Kind != "req" {
		return lpRequest{}, badParameter(`kind must be "req"`)
	}
	out := lpRequest{Type: req.Type, Body: req.Body}
	var id any
	json.Unmarshal(req.ID, &id)
	switch id := id.(type) {
	case string:
		out.reqID = id
	case float64:
		out.reqID = string(bytes.TrimSpace(req.ID))
	default:
		return lpRequest{}, badParameter("id must be a string or a number")
	}
	switch {
	case want != "" && req.Type != want:
		return lpRequest{}, badParameter(notTwoRequests)
	case req.Type == "":
		return lpRequest{}, badParameter("type is missing")
	case !isObject(req.Body):
		return lpRequest{}, badParameter(req.Type + ": body must be a JSON object")
	}
	return out, nil
}

// malformed is the error for a body of request type typ that does not
// decode: it names the field at fault, if json does, never its value.
func malformed(typ string, err error) *lpError {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return badParameter(typ + ": " + te.Field + " has the wrong JSON type")
	}
	return badParameter(typ + ": body is malformed")
}

// isObject reports whether raw is a JSON object, as far as its first
// byte tells.
func isObject(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{'
}

// clientProperties checks the Client-Properties header of a request, if
// it has one, and returns its features.
func (s *Server) clientProperties(e Endpoint, h http.Header) ([]string, *lpError) {
	values := h.Values("Client-Properties")
	if len(values) == 0 {
		return nil, nil
	}
	const bad = `the Client-Properties header must be one JSON object such as {"type":".ClientProperties","features":["AUTO_MESSAGES"]}`
	var p struct {
		Type     *string  `json:"type"`
		Features []string `json:"features"`
	}
	if len(values) > 1 || !isObject(json.RawMessage(values[0])) || json.Unmarshal([]byte(values[0]), &p) != nil {
		return nil, badParameter(bad)
	}
	// LivePerson's pages show ".ClientProperties"; botium sends
	// "ClientProperties", and LivePerson's clients send both.
	if p.Type != nil && *p.Type != ".ClientProperties" && (*p.Type != "ClientProperties" ||
		!s.lenient(e, RuleClientPropertiesType, `Client-Properties type "ClientProperties": LivePerson documents ".ClientProperties"; botium sends it without the dot`)) {
		return nil, badParameter(bad)
	}
	if p.Features == nil {
		p.Features = []string{}
	}
	return p.Features, nil
}
