package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/lpconnect/appjwt/appjwttest"
	"github.com/lpconnect/appjwt/internal/redact"
)

// The control API's JSON forms of appjwttest's types: lowerCamelCase
// names, as LivePerson's JSON has, durations in milliseconds, bodies as
// strings.

// faultJSON is an appjwttest.Fault.
type faultJSON struct {
	Status     int    `json:"status"`
	RetryAfter string `json:"retryAfter"`
	Body       string `json:"body"`
	DelayMs    int64  `json:"delayMs"`
	Hang       bool   `json:"hang"`
	Reset      bool   `json:"reset"`
}

// webhookFaultJSON is an appjwttest.WebhookFault.
type webhookFaultJSON struct {
	Duplicate    bool `json:"duplicate"`
	Reorder      bool `json:"reorder"`
	BadSignature bool `json:"badSignature"`
	Oversize     int  `json:"oversize"`
}

// conversationJSON is an appjwttest.ConversationInfo.
type conversationJSON struct {
	ConversationID string          `json:"conversationId"`
	Consumer       string          `json:"consumer"`
	State          string          `json:"state"`
	Profile        json.RawMessage `json:"profile,omitempty"`
	Request        json.RawMessage `json:"request,omitempty"`
	Features       []string        `json:"features"`
	Events         []eventJSON     `json:"events"`
}

// eventJSON is an appjwttest.Event; a field that does not apply to its
// type is left out.
type eventJSON struct {
	Type         string          `json:"type"`
	Role         string          `json:"role"`
	Sequence     int             `json:"sequence"`
	Message      string          `json:"message,omitempty"`
	ChatState    string          `json:"chatState,omitempty"`
	Status       string          `json:"status,omitempty"`
	SequenceList []int           `json:"sequenceList,omitempty"`
	Content      json.RawMessage `json:"content,omitempty"`
	Features     []string        `json:"features,omitempty"`
}

func newConversationJSON(c appjwttest.ConversationInfo) conversationJSON {
	out := conversationJSON{
		ConversationID: c.ID, Consumer: c.Consumer, State: c.State,
		Profile: c.Profile, Request: c.Request, Features: c.Features,
		Events: make([]eventJSON, len(c.Events)),
	}
	if out.Features == nil {
		out.Features = []string{}
	}
	for i, e := range c.Events {
		out.Events[i] = eventJSON{
			Type: e.Type, Role: e.Role, Sequence: e.Sequence, Message: e.Message,
			ChatState: e.ChatState, Status: e.Status, SequenceList: e.SequenceList,
			Content: e.Content, Features: e.Features,
		}
	}
	return out
}

// requestJSON is an appjwttest.Request, its credentials withheld.
type requestJSON struct {
	Method string      `json:"method"`
	Path   string      `json:"path"`
	Query  url.Values  `json:"query"`
	Header http.Header `json:"header"`
	Form   url.Values  `json:"form"`
	Body   string      `json:"body"`
	// The answer's status, 0 if none was sent, and the error it named.
	Status    int    `json:"status"`
	ErrorCode string `json:"errorCode"`
}

// withheld replaces what the control API does not show.
const withheld = "[REDACTED]"

// newRequestJSON returns r with its tokens and every text that holds the
// client secret withheld: the control API's answers end up in test logs,
// which must not show them. A test still sees which scheme an
// Authorization header used.
func newRequestJSON(r appjwttest.Request, secret string) requestJSON {
	red := redact.For(secret, withheld)
	text := func(s string) string {
		if red.Leaks(s) {
			return withheld
		}
		return s
	}
	values := func(v map[string][]string) map[string][]string {
		out := make(map[string][]string, len(v))
		for k, vs := range v {
			kept := make([]string, len(vs))
			for i, s := range vs {
				kept[i] = text(s)
			}
			out[text(k)] = kept
		}
		return out
	}
	h := values(r.Header)
	form, query := values(r.Form), values(r.Query)
	for _, v := range []map[string][]string{form, query} {
		for i := range v["client_secret"] { // whatever it is: a connector's own, misdirected, too
			v["client_secret"][i] = withheld
		}
	}
	for _, k := range []string{"Authorization", "X-Lp-On-Behalf"} {
		for i, v := range r.Header.Values(k) {
			if scheme, _, ok := strings.Cut(v, " "); ok {
				h[k][i] = scheme + " " + withheld
			} else {
				h[k][i] = withheld
			}
		}
	}
	return requestJSON{
		Method: r.Method,
		Path:   text(r.Path),
		Query:  query,
		Header: h,
		Form:   form,
		Body:   body(r, text),

		Status:    r.Status,
		ErrorCode: r.ErrorCode,
	}
}

// body is r's body as the control API shows it: withheld if it holds the
// stand-in's secret, or any client_secret, such as a connector's own.
func body(r appjwttest.Request, text func(string) string) string {
	if len(r.Body) > 0 && (len(r.Form["client_secret"]) > 0 || strings.Contains(string(r.Body), "client_secret")) {
		return withheld
	}
	return text(string(r.Body))
}

// deliveryJSON is an appjwttest.Delivery.
type deliveryJSON struct {
	Webhook   string           `json:"webhook"`
	Endpoint  string           `json:"endpoint"`
	Header    http.Header      `json:"header"`
	Body      string           `json:"body"`
	Fault     webhookFaultJSON `json:"fault"`
	Attempts  []attemptJSON    `json:"attempts"`
	Delivered bool             `json:"delivered"`
}

// attemptJSON is an appjwttest.Attempt.
type attemptJSON struct {
	Status     int     `json:"status"`
	Answer     string  `json:"answer"`
	Error      string  `json:"error,omitempty"`
	DurationMs float64 `json:"durationMs"`
}

func newDeliveryJSON(d appjwttest.Delivery) deliveryJSON {
	out := deliveryJSON{
		Webhook: d.Webhook, Endpoint: d.Endpoint, Header: d.Header, Body: string(d.Body),
		Fault:     webhookFaultJSON{d.Fault.Duplicate, d.Fault.Reorder, d.Fault.BadSignature, d.Fault.Oversize},
		Attempts:  make([]attemptJSON, len(d.Attempts)),
		Delivered: d.Delivered(),
	}
	for i, a := range d.Attempts {
		out.Attempts[i] = attemptJSON{Status: a.Status, Answer: string(a.Answer), DurationMs: float64(a.Duration) / float64(time.Millisecond)}
		if a.Err != nil {
			out.Attempts[i].Error = a.Err.Error()
		}
	}
	return out
}
