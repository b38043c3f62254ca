package appjwttest

import "fmt"

// The rules the server is lenient with unless [Server.Strict] is set: the
// Rule of a [Note].
const (
	RuleDomainAPIJSON           = "domain-api-json"
	RuleConversationChannelType = "conversation-channel-type"
	RuleClientPropertiesType    = "client-properties-type"
	RuleCampaignInfoNumbers     = "campaign-info-numbers"
	RuleConsumerVersion         = "consumer-version"
)

// Note is a request the server took although it departs from the form
// LivePerson documents, because LivePerson's pages contradict each other
// on it or LivePerson's own clients send it so. A test that wants the code
// under test to send the documented form checks that [Server.Notes] is
// empty, or sets [Server.Strict].
type Note struct {
	Endpoint Endpoint // the endpoint that took the request
	Rule     string   // the rule it departs from: RuleConversationChannelType, ...
	Detail   string   // what the request did, and who sends it so
}

// String returns the note as one line.
func (n Note) String() string { return fmt.Sprintf("%v: %s: %s", n.Endpoint, n.Rule, n.Detail) }

// Notes returns the notes recorded so far, oldest first. The server keeps
// them for as long as it runs.
func (s *Server) Notes() []Note {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Note(nil), s.notes...)
}

// lenient decides a request that departs from the documented form by
// rule: without Strict it records a note and reports true; with Strict it
// reports false, and the caller answers the documented 400.
func (s *Server) lenient(e Endpoint, rule, detail string) bool {
	if s.Strict {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notes = append(s.notes, Note{Endpoint: e, Rule: rule, Detail: detail})
	return true
}
