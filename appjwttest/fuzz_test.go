package appjwttest

import (
	"strings"
	"testing"
	"time"
)

// marker stands for whatever a request carries that an answer must not
// quote.
const marker = "QUOTEDMARKER"

// The Send API's body parsers never panic, answer what they reject with a
// 400 and errorCode 40001, and never quote the body.
func FuzzSendAPIBody(f *testing.F) {
	for _, seed := range []string{
		`{"kind":"req","id":"1","type":"ms.PublishEvent","body":{"dialogId":"QUOTEDMARKER","event":{"type":"ContentEvent","contentType":"text/plain","message":"QUOTEDMARKER"}}}`,
		`{"kind":"req","id":1,"type":"cm.UpdateConversationField","body":{"conversationId":"c","conversationField":[{"field":"QUOTEDMARKER","conversationState":"CLOSE"}]}}`,
		`{"type":"AcceptStatusEvent","status":"READ","sequenceList":[1,"QUOTEDMARKER"]}`,
		`{"type":"ChatStateEvent","chatState":"QUOTEDMARKER"}`,
		`{"authenticatedData":{"lp_sdes":[{"type":"QUOTEDMARKER","QUOTEDMARKER":{}}]}}`,
		`{"brandId":"le1","channelType":"MESSAGING","campaignInfo":{"QUOTEDMARKER":1},"conversationContext":{"QUOTEDMARKER":[]}}`,
		`{"brandId":"QUOTEDMARKER","ttrDefName":"QUOTEDMARKER","skillId":7}`,
		`{"kind":"QUOTEDMARKER","id":{"QUOTEDMARKER":1}}`,
		`[1,2`, ``, `null`, `"QUOTEDMARKER"`,
	} {
		f.Add([]byte(seed))
	}
	s := NewUnstartedServer()
	s.AccountID = "le1"
	f.Fuzz(func(t *testing.T, raw []byte) {
		check := func(what string, e *lpError) {
			t.Helper()
			if e == nil {
				return
			}
			if e.status() != 400 || e.code != codeMissingParameter {
				t.Errorf("%s: status %d, errorCode %d; want 400, 40001", what, e.status(), e.code)
			}
			if strings.Contains(e.details, marker) {
				t.Errorf("%s: details %q quote the body", what, e.details)
			}
		}
		_, e := parseRequest(raw, "")
		check("parseRequest", e)
		_, e = parseRequest(raw, typeSetUserProfile)
		check("parseRequest(SetUserProfile)", e)
		_, e = parseEvent(raw, false)
		check("parseEvent", e)
		_, e = parseEvent(raw, true)
		check("parseEvent(agent)", e)
		check("checkProfile", checkProfile(raw))
		check("checkConversationRequest", s.checkConversationRequest(raw))
		_, e = s.publish("john", raw, nil, time.Now())
		check("publish", e)
		_, e = s.closeByConsumer("john", raw, time.Now())
		check("closeByConsumer", e)
	})
}

// The Client-Properties parser never panics, returns non-nil features for
// a header it takes, and never quotes the header.
func FuzzClientProperties(f *testing.F) {
	for _, seed := range []string{
		`{"type":".ClientProperties","features":["AUTO_MESSAGES"]}`,
		`{"type":"QUOTEDMARKER"}`, `{"features":"QUOTEDMARKER"}`, `{}`, `[]`, `QUOTEDMARKER`, ``,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		features, e := NewUnstartedServer().clientProperties(Send, map[string][]string{"Client-Properties": {header}})
		switch {
		case e == nil && features == nil:
			t.Errorf("header %q: nil features and no error", header)
		case e != nil && strings.Contains(e.details, marker):
			t.Errorf("header %q: details %q quote it", header, e.details)
		case e != nil && e.status() != 400:
			t.Errorf("header %q: status %d, want 400", header, e.status())
		}
	})
}
