package appjwttest_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lpconnect/appjwt/appjwttest"
	"github.com/lpconnect/appjwt/internal/testkit"
	"github.com/lpconnect/appjwt/webhook"
)

// allWebhooks are the event types LivePerson delivers.
var allWebhooks = []string{
	appjwttest.WebhookContentEvent, appjwttest.WebhookRichContentEvent, appjwttest.WebhookAcceptStatusEvent,
	appjwttest.WebhookChatStateEvent, appjwttest.WebhookConversationChange,
}

// endpoint is a connector's webhook endpoint: it records what it
// receives, and answers each request with the next of its answers, or 200
// once they run out.
type endpoint struct {
	*httptest.Server
	quit chan struct{} // closed when the test ends: hanging answers return

	mu       sync.Mutex
	answers  []answer
	received []received
}

// answer answers a request to an endpoint.
type answer func(ep *endpoint, w http.ResponseWriter, r *http.Request)

// received is a request an endpoint received.
type received struct {
	header http.Header
	body   []byte
	at     time.Time
}

func newEndpoint(t *testing.T, answers ...answer) *endpoint {
	t.Helper()
	ep := &endpoint{quit: make(chan struct{}), answers: answers}
	ep.Server = httptest.NewUnstartedServer(http.HandlerFunc(ep.serve))
	// Quiet: the TLS handshake errors of a client that does not trust it
	// are what some tests want.
	ep.Config.ErrorLog = log.New(io.Discard, "", 0)
	ep.StartTLS()
	t.Cleanup(func() {
		close(ep.quit)
		ep.Close()
	})
	return ep
}

func (ep *endpoint) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	ep.mu.Lock()
	ep.received = append(ep.received, received{r.Header.Clone(), body, time.Now()})
	var a answer
	if len(ep.answers) > 0 {
		a, ep.answers = ep.answers[0], ep.answers[1:]
	}
	ep.mu.Unlock()
	if a != nil {
		a(ep, w, r)
	}
}

// got returns what ep received, oldest first.
func (ep *endpoint) got() []received {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return append([]received(nil), ep.received...)
}

// reply answers with code and a body.
func reply(code int, body string) answer {
	return func(_ *endpoint, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(code)
		io.WriteString(w, body)
	}
}

// hang answers nothing until the client gives up or the test ends.
func hang(ep *endpoint, _ http.ResponseWriter, r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-ep.quit:
	}
}

// stallBody sends 200 and its headers, then no body until the client
// gives up or the test ends.
func stallBody(ep *endpoint, w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusOK)
	http.NewResponseController(w).Flush()
	hang(ep, w, r)
}

// verified answers as a connector does with webhook's Verifier: 401 or
// 400 for what it refuses, 200 for the rest.
func verified(t *testing.T, s *appjwttest.Server) answer {
	t.Helper()
	v, err := webhook.Config{AccountID: s.AccountID, ClientID: s.ClientID, ClientSecret: s.ClientSecret}.NewVerifier()
	if err != nil {
		t.Fatal(err)
	}
	h := v.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	return func(_ *endpoint, w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }
}

// fastTiming is a WebhookTiming for tests: LivePerson's timeouts, a short
// pause.
var fastTiming = appjwttest.WebhookTiming{RetryPause: 10 * time.Millisecond}

// hook starts s, unstarted, trusting ep and, unless its WebhookTiming is
// set, retrying fast; closes it when the test ends; and registers ep as
// the webhook of each of types, with maxRetries.
func hook(t *testing.T, s *appjwttest.Server, ep *endpoint, maxRetries int, types ...string) {
	t.Helper()
	s.WebhookClient = ep.Client()
	if s.WebhookTiming == (appjwttest.WebhookTiming{}) {
		s.WebhookTiming = fastTiming
	}
	s.Start()
	t.Cleanup(s.Close)
	hooks := map[string]appjwttest.Webhook{}
	for _, typ := range types {
		hooks[typ] = appjwttest.Webhook{Endpoint: ep.URL + "/lp/events", MaxRetries: maxRetries}
	}
	if err := s.SetWebhooks(hooks); err != nil {
		t.Fatal(err)
	}
}

// wait waits until s has no delivery pending.
func wait(t *testing.T, s *appjwttest.Server) []appjwttest.Delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.WaitWebhooks(ctx); err != nil {
		t.Fatal(err)
	}
	return s.Deliveries()
}

// statuses returns the status of each of d's attempts.
func statuses(d appjwttest.Delivery) []int {
	var out []int
	for _, a := range d.Attempts {
		out = append(out, a.Status)
	}
	return out
}

// timestamps matches the times in a notification.
var timestamps = regexp.MustCompile(`"(serverTimestamp|startTs|endTs|metaDataLastUpdateTs)":\d+`)

// Every event of a conversation goes to the webhook of its type, in
// LivePerson's shape, with LivePerson's headers and signature: the
// consumer's own, echoed with role CONSUMER, the agent's, and the
// conversation's opening and closing.
func TestWebhookNotifications(t *testing.T) {
	s := appjwttest.NewUnstartedServer()
	ep := newEndpoint(t)
	hook(t, s, ep, 0, allWebhooks...)
	start := time.Now().UnixMilli()

	c := newSender(t, s, "john")
	conv := c.open()
	steps := []struct {
		name string
		act  func() error
	}{
		{"consumer's message", sent(t, c, publish(`{"type":"ContentEvent","contentType":"text/plain","message":"Où est ma commande? 😀 <b>&"}`))},
		{"consumer typing", sent(t, c, publish(`{"type":"ChatStateEvent","chatState":"COMPOSING"}`))},
		{"agent typing", func() error { return s.AgentChatState(conv, "COMPOSING") }},
		{"agent's message", func() error { _, err := s.AgentMessage(conv, "It left today."); return err }},
		{"agent read", func() error {
			_, err := s.AgentPublish(conv, []byte(`{"type":"AcceptStatusEvent","status":"READ","sequenceList":[0]}`))
			return err
		}},
		{"consumer read", sent(t, c, publish(`{"type":"AcceptStatusEvent","status":"READ","sequenceList":[1]}`))},
		{"agent's card", func() error {
			_, err := s.AgentPublish(conv, []byte(`{"type":"RichContentEvent","content":{"type":"vertical","elements":[{"type":"text","text":"Your order"}]}}`))
			return err
		}},
		{"consumer closes", sent(t, c, closeConversation)},
	}
	for _, st := range steps {
		if err := st.act(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
	}
	agentClosed := newSender(t, s, "jane")
	conv2 := agentClosed.open()
	if !s.CloseConversation(conv2) {
		t.Fatal("CloseConversation = false")
	}
	deliveries := wait(t, s)
	end := time.Now().UnixMilli()

	consumer := claims(t, c.jws)["lp_consumer_id"].(string)
	jane := claims(t, agentClosed.jws)["lp_consumer_id"].(string)
	var agent string
	for _, d := range deliveries {
		if m := regexp.MustCompile(`"originatorId":"([^"]+)","originatorMetadata":\{"id":"[^"]+","role":"ASSIGNED_AGENT"`).FindSubmatch(d.Body); m != nil {
			agent = string(m[1])
			break
		}
	}
	if !uuid.MatchString(agent) {
		t.Fatalf("agent's participant ID %q, want a UUID", agent)
	}
	const (
		messaging    = appjwttest.WebhookContentEvent
		ts           = `{ts}`
		consumerMeta = `"originatorId":"{consumer}","originatorMetadata":{"id":"{consumer}","role":"CONSUMER"}`
		agentMeta    = `"originatorId":"{agent}","originatorMetadata":{"id":"{agent}","role":"ASSIGNED_AGENT"}`
	)
	change := func(c string) string {
		return `{"kind":"notification","body":{"changes":[` + c + `]},"type":"ms.MessagingEventNotification"}`
	}
	convChange := func(c string) string {
		return `{"kind":"notification","body":{"changes":[{"type":"UPSERT","result":{"convId":"{conv}","conversationDetails":` + c + `}}]},"type":"cqm.ExConversationChangeNotification"}`
	}
	type note struct{ webhook, body string }
	want := []note{
		{appjwttest.WebhookConversationChange, convChange(`{"participants":[{"id":"{consumer}","role":"CONSUMER"}],"brandId":"{account}","state":"OPEN","stage":"OPEN","startTs":{ts},"metaDataLastUpdateTs":{ts}}`)},
		{messaging, change(`{"sequence":0,` + consumerMeta + `,"serverTimestamp":{ts},"event":{"type":"ContentEvent","message":"Où est ma commande? 😀 <b>&","contentType":"text/plain"},"dialogId":"{conv}","conversationId":"{conv}"}`)},
		{appjwttest.WebhookChatStateEvent, change(`{` + consumerMeta + `,"event":{"type":"ChatStateEvent","chatState":"COMPOSING"},"dialogId":"{conv}","conversationId":"{conv}"}`)},
		{appjwttest.WebhookChatStateEvent, change(`{` + agentMeta + `,"event":{"type":"ChatStateEvent","chatState":"COMPOSING"},"dialogId":"{conv}","conversationId":"{conv}"}`)},
		{messaging, change(`{"sequence":1,` + agentMeta + `,"serverTimestamp":{ts},"event":{"type":"ContentEvent","message":"It left today.","contentType":"text/plain"},"dialogId":"{conv}","conversationId":"{conv}"}`)},
		{appjwttest.WebhookAcceptStatusEvent, change(`{"sequence":2,` + agentMeta + `,"serverTimestamp":{ts},"event":{"type":"AcceptStatusEvent","status":"READ","sequenceList":[0]},"dialogId":"{conv}","conversationId":"{conv}"}`)},
		{appjwttest.WebhookAcceptStatusEvent, change(`{"sequence":3,` + consumerMeta + `,"serverTimestamp":{ts},"event":{"type":"AcceptStatusEvent","status":"READ","sequenceList":[1]},"dialogId":"{conv}","conversationId":"{conv}"}`)},
		{appjwttest.WebhookRichContentEvent, change(`{"sequence":4,` + agentMeta + `,"serverTimestamp":{ts},"event":{"type":"RichContentEvent","content":{"type":"vertical","elements":[{"type":"text","text":"Your order"}]}},"dialogId":"{conv}","conversationId":"{conv}"}`)},
		{appjwttest.WebhookConversationChange, convChange(`{"participants":[{"id":"{consumer}","role":"CONSUMER"},{"id":"{agent}","role":"ASSIGNED_AGENT"}],"brandId":"{account}","state":"CLOSE","stage":"CLOSE","closeReason":"CONSUMER","startTs":{ts},"endTs":{ts},"metaDataLastUpdateTs":{ts}}`)},
		{appjwttest.WebhookConversationChange, strings.ReplaceAll(convChange(`{"participants":[{"id":"{jane}","role":"CONSUMER"}],"brandId":"{account}","state":"OPEN","stage":"OPEN","startTs":{ts},"metaDataLastUpdateTs":{ts}}`), "{conv}", "{conv2}")},
		{appjwttest.WebhookConversationChange, strings.ReplaceAll(convChange(`{"participants":[{"id":"{jane}","role":"CONSUMER"},{"id":"{agent}","role":"ASSIGNED_AGENT"}],"brandId":"{account}","state":"CLOSE","stage":"CLOSE","closeReason":"AGENT","startTs":{ts},"endTs":{ts},"metaDataLastUpdateTs":{ts}}`), "{conv}", "{conv2}")},
	}
	fill := strings.NewReplacer("{conv2}", conv2, "{conv}", conv, "{consumer}", consumer, "{jane}", jane, "{agent}", agent, "{account}", s.AccountID)
	for i := range want {
		want[i].body = fill.Replace(want[i].body)
	}
	var got []note
	for _, d := range deliveries {
		got = append(got, note{d.Webhook, timestamps.ReplaceAllString(string(d.Body), `"$1":`+ts)})
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(note{})); diff != "" {
		t.Errorf("notifications (-want +got):\n%s", diff)
	}

	// Signed over the raw bytes, emoji and all, with the client secret;
	// decoded by package webhook, times from the server's clock.
	v, err := webhook.Config{AccountID: s.AccountID, ClientID: s.ClientID, ClientSecret: s.ClientSecret}.NewVerifier()
	if err != nil {
		t.Fatal(err)
	}
	reqs := ep.got()
	if len(reqs) != len(deliveries) {
		t.Fatalf("the endpoint received %d requests, want %d", len(reqs), len(deliveries))
	}
	for i, d := range deliveries {
		if !d.Delivered() || len(d.Attempts) != 1 || d.Endpoint != ep.URL+"/lp/events" {
			t.Errorf("delivery %d: to %s, attempts %v, want one answered 200", i, d.Endpoint, statuses(d))
		}
		if got, want := d.Header.Get("Content-Type"), "application/json"; got != want {
			t.Errorf("delivery %d: Content-Type %q, want %q", i, got, want)
		}
		if err := v.Verify(d.Header, d.Body); err != nil {
			t.Errorf("delivery %d: %v", i, err)
		}
		n, err := webhook.Parse(d.Body)
		if err != nil {
			t.Errorf("delivery %d: %v", i, err)
			continue
		}
		for _, e := range n.Events {
			if e.HasSequence && (e.ServerTimestamp < start || e.ServerTimestamp > end) {
				t.Errorf("delivery %d: serverTimestamp %d, want between %d and %d", i, e.ServerTimestamp, start, end)
			}
		}
		for _, ch := range n.Conversations {
			if dt := ch.Details; dt.StartTs < start || dt.MetaDataLastUpdateTs < dt.StartTs || dt.MetaDataLastUpdateTs > end {
				t.Errorf("delivery %d: startTs %d, metaDataLastUpdateTs %d, want between %d and %d", i, dt.StartTs, dt.MetaDataLastUpdateTs, start, end)
			}
		}
	}
	for i, r := range reqs {
		// One worker per webhook: across webhooks, the order of arrival
		// is the network's.
		if !anyBody(deliveries, r.body) {
			t.Errorf("the endpoint received %q, which no delivery sent", r.body)
		}
		if got := r.header.Get(webhook.HeaderAccountID) + " " + r.header.Get(webhook.HeaderClientID); got != s.AccountID+" "+s.ClientID {
			t.Errorf("request %d: account and client id %q", i, got)
		}
	}

	// The conversation tells who published what.
	info, _ := s.Conversation(conv)
	var roles []string
	for _, e := range info.Events {
		roles = append(roles, e.Type+" "+e.Role)
	}
	wantRoles := []string{"ContentEvent CONSUMER", "ChatStateEvent CONSUMER", "ChatStateEvent ASSIGNED_AGENT", "ContentEvent ASSIGNED_AGENT",
		"AcceptStatusEvent ASSIGNED_AGENT", "AcceptStatusEvent CONSUMER", "RichContentEvent ASSIGNED_AGENT"}
	if diff := cmp.Diff(wantRoles, roles); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// sent returns a step that SENDs body as c, which must be answered 200.
func sent(t *testing.T, c *sender, body string) func() error {
	return func() error {
		if status, answer := c.send(body); status != http.StatusOK {
			t.Errorf("SEND: %d %s", status, answer)
		}
		return nil
	}
}

func anyBody(ds []appjwttest.Delivery, body []byte) bool {
	for _, d := range ds {
		if bytes.Equal(d.Body, body) {
			return true
		}
	}
	return false
}

// Only the event types with a webhook are delivered, and only while it
// is registered.
func TestWebhookOnlyRegistered(t *testing.T) {
	s := appjwttest.NewUnstartedServer()
	ep := newEndpoint(t)
	hook(t, s, ep, 0, appjwttest.WebhookContentEvent)
	c := newSender(t, s, "john")
	conv := c.open() // no conversation change webhook
	s.AgentChatState(conv, "COMPOSING")
	s.AgentMessage(conv, "first")
	if err := s.SetWebhooks(nil); err != nil {
		t.Fatal(err)
	}
	s.AgentMessage(conv, "second")
	var got []string
	for _, d := range wait(t, s) {
		got = append(got, d.Webhook+" "+string(regexp.MustCompile(`"message":"[^"]*"`).Find(d.Body)))
	}
	if diff := cmp.Diff([]string{appjwttest.WebhookContentEvent + ` "message":"first"`}, got); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
	if n := len(ep.got()); n != 1 {
		t.Errorf("the endpoint received %d requests, want 1", n)
	}
}

func TestSetWebhooksRejects(t *testing.T) {
	s := newServer(t)
	good := appjwttest.Webhook{Endpoint: "https://127.0.0.1:1/lp", MaxRetries: 5} // refused at once
	if err := s.SetWebhooks(map[string]appjwttest.Webhook{appjwttest.WebhookContentEvent: good}); err != nil {
		t.Fatalf("SetWebhooks(%+v) = %v, want nil", good, err)
	}
	tests := []struct {
		name string
		typ  string
		hook appjwttest.Webhook
		want string
	}{
		{"http", appjwttest.WebhookContentEvent, appjwttest.Webhook{Endpoint: "http://connector.example/lp"},
			"appjwttest: webhook ms.MessagingEventNotification.ContentEvent: endpoint is not an https URL"},
		{"no host", appjwttest.WebhookContentEvent, appjwttest.Webhook{Endpoint: "https:///lp"},
			"appjwttest: webhook ms.MessagingEventNotification.ContentEvent: endpoint is not an https URL"},
		{"not a URL", appjwttest.WebhookContentEvent, appjwttest.Webhook{Endpoint: "https://connector example/%zz"},
			"appjwttest: webhook ms.MessagingEventNotification.ContentEvent: endpoint is not an https URL"},
		{"user information", appjwttest.WebhookContentEvent, appjwttest.Webhook{Endpoint: "https://user:secret-pw@connector.example/lp"},
			"appjwttest: webhook ms.MessagingEventNotification.ContentEvent: endpoint carries user information"},
		{"6 retries", appjwttest.WebhookChatStateEvent, appjwttest.Webhook{Endpoint: good.Endpoint, MaxRetries: 6},
			"appjwttest: webhook ms.MessagingEventNotification.ChatStateEvent: max_retries 6 is not between 0 and 5"},
		{"negative retries", appjwttest.WebhookChatStateEvent, appjwttest.Webhook{Endpoint: good.Endpoint, MaxRetries: -1},
			"appjwttest: webhook ms.MessagingEventNotification.ChatStateEvent: max_retries -1 is not between 0 and 5"},
		{"unknown type", "ms.MessagingEventNotification.CoBrowseEvent", good,
			`appjwttest: webhook "ms.MessagingEventNotification.CoBrowseEvent": not an event type LivePerson delivers`},
	}
	for _, tt := range tests {
		err := s.SetWebhooks(map[string]appjwttest.Webhook{appjwttest.WebhookConversationChange: good, tt.typ: tt.hook})
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s: SetWebhooks = %v, want %s", tt.name, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret-pw") {
			t.Errorf("%s: the error quotes the endpoint's password", tt.name)
		}
	}
	// The registration that was accepted still holds.
	c := newSender(t, s, "john")
	conv := c.open()
	s.AgentMessage(conv, "hello")
	ds := s.Deliveries()
	if len(ds) != 1 || ds[0].Webhook != appjwttest.WebhookContentEvent {
		t.Errorf("deliveries %+v, want one to the content event webhook", ds)
	}
}

// A delivery that fails is tried again after the pause, max_retries times
// at most, with the same bytes; 200 and 201 are success, and a redirect
// is not followed.
func TestWebhookRetries(t *testing.T) {
	tests := []struct {
		name          string
		maxRetries    int
		answers       []answer
		want          []int
		wantDelivered bool
	}{
		{"200", 3, nil, []int{200}, true},
		{"201", 3, []answer{reply(201, "")}, []int{201}, true},
		{"500, then 200", 3, []answer{reply(500, "")}, []int{500, 200}, true},
		{"400, 401, 404, then 200", 5, []answer{reply(400, ""), reply(401, ""), reply(404, "")}, []int{400, 401, 404, 200}, true},
		{"503 until the retries run out", 2, []answer{reply(503, ""), reply(503, ""), reply(503, ""), reply(503, "")}, []int{503, 503, 503}, false},
		{"no retry", 0, []answer{reply(500, "")}, []int{500}, false},
		{"204 is a failure", 1, []answer{reply(204, "")}, []int{204, 200}, true},
		{"a redirect is a failure, not followed", 1, []answer{func(_ *endpoint, w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}}, []int{302, 200}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := appjwttest.NewUnstartedServer()
			s.WebhookTiming = appjwttest.WebhookTiming{RetryPause: 20 * time.Millisecond}
			ep := newEndpoint(t, tt.answers...)
			hook(t, s, ep, tt.maxRetries, appjwttest.WebhookContentEvent)
			conv := newSender(t, s, "john").open()
			if _, err := s.AgentMessage(conv, "hello"); err != nil {
				t.Fatal(err)
			}
			ds := wait(t, s)
			if len(ds) != 1 {
				t.Fatalf("%d deliveries, want 1", len(ds))
			}
			if diff := cmp.Diff(tt.want, statuses(ds[0])); diff != "" {
				t.Errorf("attempts (-want +got):\n%s", diff)
			}
			if got := ds[0].Delivered(); got != tt.wantDelivered {
				t.Errorf("Delivered() = %t, want %t", got, tt.wantDelivered)
			}
			got := ep.got()
			if len(got) != len(tt.want) {
				t.Fatalf("the endpoint received %d requests, want %d", len(got), len(tt.want))
			}
			for i, r := range got {
				if !bytes.Equal(r.body, ds[0].Body) || r.header.Get(webhook.HeaderSignature) != ds[0].Header.Get(webhook.HeaderSignature) {
					t.Errorf("attempt %d sent other bytes than the first", i)
				}
				if i > 0 && r.at.Sub(got[i-1].at) < 20*time.Millisecond {
					t.Errorf("attempt %d came %v after the one before, want the 20ms pause at least", i, r.at.Sub(got[i-1].at))
				}
			}
		})
	}
}

// The answers are kept, up to 64 KiB each.
func TestWebhookAnswersKept(t *testing.T) {
	s := appjwttest.NewUnstartedServer()
	long := strings.Repeat("x", 70<<10)
	ep := newEndpoint(t, reply(503, "busy"), reply(200, long))
	hook(t, s, ep, 1, appjwttest.WebhookContentEvent)
	conv := newSender(t, s, "john").open()
	s.AgentMessage(conv, "hello")
	ds := wait(t, s)
	if len(ds) != 1 || len(ds[0].Attempts) != 2 {
		t.Fatalf("deliveries %+v, want one of two attempts", ds)
	}
	if got := string(ds[0].Attempts[0].Answer); got != "busy" {
		t.Errorf("first answer %q, want busy", got)
	}
	if got := string(ds[0].Attempts[1].Answer); got != long[:64<<10] {
		t.Errorf("second answer: %d bytes, want the first 64 KiB", len(got))
	}
	// What Deliveries returns is a copy.
	ds[0].Body[0], ds[0].Attempts[0].Answer[0] = 'X', 'X'
	ds[0].Header.Set(webhook.HeaderSignature, "changed")
	again := s.Deliveries()[0]
	if again.Body[0] != '{' || string(again.Attempts[0].Answer) != "busy" || again.Header.Get(webhook.HeaderSignature) == "changed" {
		t.Error("changing what Deliveries returned changed the server's record")
	}
}

// An answer that does not come within the read timeout, or whose body
// does not, is a failure that is retried.
func TestWebhookReadTimeout(t *testing.T) {
	for _, slow := range []struct {
		name       string
		answer     answer
		wantStatus int
	}{
		{"no answer", hang, 0},
		{"no body", stallBody, 200},
	} {
		t.Run(slow.name, func(t *testing.T) {
			s := appjwttest.NewUnstartedServer()
			s.WebhookTiming = appjwttest.WebhookTiming{RetryPause: time.Millisecond, ReadTimeout: 100 * time.Millisecond}
			ep := newEndpoint(t, slow.answer)
			hook(t, s, ep, 1, appjwttest.WebhookContentEvent)
			conv := newSender(t, s, "john").open()
			s.AgentMessage(conv, "hello")
			ds := wait(t, s)
			if len(ds) != 1 || len(ds[0].Attempts) != 2 {
				t.Fatalf("deliveries %+v, want one of two attempts", ds)
			}
			first, second := ds[0].Attempts[0], ds[0].Attempts[1]
			if !errors.Is(first.Err, appjwttest.ErrReadTimeout) || first.Status != slow.wantStatus {
				t.Errorf("first attempt: %d, %v; want %d and ErrReadTimeout", first.Status, first.Err, slow.wantStatus)
			}
			if first.Duration < 100*time.Millisecond {
				t.Errorf("first attempt gave up after %v, before the read timeout", first.Duration)
			}
			if second.Err != nil || second.Status != 200 || !ds[0].Delivered() {
				t.Errorf("second attempt: %d, %v; want 200", second.Status, second.Err)
			}
		})
	}
}

// An endpoint that accepts connections but never completes a TLS
// handshake fails within the connect timeout.
func TestWebhookConnectTimeout(t *testing.T) {
	s := newServer(t, func(s *appjwttest.Server) {
		s.WebhookTiming = appjwttest.WebhookTiming{RetryPause: time.Millisecond, ConnectTimeout: 50 * time.Millisecond}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close() // never accepted: the kernel completes the TCP handshake, nobody the TLS one
	if err := s.SetWebhooks(map[string]appjwttest.Webhook{
		appjwttest.WebhookContentEvent: {Endpoint: "https://" + ln.Addr().String() + "/lp", MaxRetries: 1},
	}); err != nil {
		t.Fatal(err)
	}
	conv := newSender(t, s, "john").open()
	s.AgentMessage(conv, "hello")
	ds := wait(t, s)
	if len(ds) != 1 || len(ds[0].Attempts) != 2 {
		t.Fatalf("deliveries %+v, want one of two attempts", ds)
	}
	for i, a := range ds[0].Attempts {
		if !errors.Is(a.Err, appjwttest.ErrConnectTimeout) || a.Status != 0 {
			t.Errorf("attempt %d: %d, %v; want ErrConnectTimeout", i, a.Status, a.Err)
		}
	}
}

// By default the server trusts the system's roots, as LivePerson trusts
// only valid certificates: an httptest server's needs WebhookClient.
func TestWebhookDefaultClient(t *testing.T) {
	ep := newEndpoint(t)
	untrusting := newServer(t)
	if err := untrusting.SetWebhooks(map[string]appjwttest.Webhook{appjwttest.WebhookContentEvent: {Endpoint: ep.URL + "/lp/events"}}); err != nil {
		t.Fatal(err)
	}
	untrusting.AgentMessage(newSender(t, untrusting, "john").open(), "untrusted")
	s := appjwttest.NewUnstartedServer()
	hook(t, s, ep, 0, appjwttest.WebhookContentEvent)
	s.AgentMessage(newSender(t, s, "john").open(), "trusted")
	ds := append(wait(t, untrusting), wait(t, s)...)
	if len(ds) != 2 {
		t.Fatalf("%d deliveries, want 2", len(ds))
	}
	var certErr *tls.CertificateVerificationError
	if a := ds[0].Attempts[0]; !errors.As(a.Err, &certErr) {
		t.Errorf("with the default client: %d, %v; want a certificate verification error", a.Status, a.Err)
	}
	if !ds[1].Delivered() {
		t.Errorf("with the endpoint's client: %v, want delivered", ds[1].Attempts)
	}
	if n := len(ep.got()); n != 1 {
		t.Errorf("the endpoint received %d requests, want 1", n)
	}
}

// Each fault of a delivery, as the connector sees it.
func TestWebhookFaults(t *testing.T) {
	t.Run("duplicate", func(t *testing.T) {
		s := appjwttest.NewUnstartedServer()
		ep := newEndpoint(t)
		hook(t, s, ep, 0, appjwttest.WebhookContentEvent)
		conv := newSender(t, s, "john").open()
		s.QueueWebhookFaults(appjwttest.WebhookContentEvent, appjwttest.WebhookFault{Duplicate: true})
		s.AgentMessage(conv, "twice")
		s.AgentMessage(conv, "once")
		ds := wait(t, s)
		if got := messages(ep.got()); !cmp.Equal(got, []string{"twice", "twice", "once"}) {
			t.Errorf("the endpoint received %q, want twice, twice, once", got)
		}
		if len(ds) != 3 || !bytes.Equal(ds[0].Body, ds[1].Body) || !cmp.Equal(ds[0].Header, ds[1].Header) {
			t.Fatalf("deliveries %+v, want the first two alike", ds)
		}
		dedup := webhook.NewDedup(0, 0)
		var dropped []bool
		for _, r := range ep.got() {
			n, _ := webhook.Parse(r.body)
			e := n.Events[0]
			dropped = append(dropped, dedup.Seen(e.DialogID, e.Sequence))
		}
		if !cmp.Equal(dropped, []bool{false, true, false}) {
			t.Errorf("Dedup.Seen: %v, want the second dropped", dropped)
		}
	})

	t.Run("reorder", func(t *testing.T) {
		s := appjwttest.NewUnstartedServer()
		ep := newEndpoint(t)
		hook(t, s, ep, 0, appjwttest.WebhookContentEvent)
		conv := newSender(t, s, "john").open()
		s.QueueWebhookFaults(appjwttest.WebhookContentEvent, appjwttest.WebhookFault{Reorder: true}, appjwttest.WebhookFault{Reorder: true})
		for _, m := range []string{"first", "second", "third", "fourth"} {
			s.AgentMessage(conv, m)
		}
		wait(t, s)
		if got := messages(ep.got()); !cmp.Equal(got, []string{"third", "first", "second", "fourth"}) {
			t.Errorf("the endpoint received %q, want third, first, second, fourth", got)
		}
	})

	t.Run("reorder with nothing after", func(t *testing.T) {
		s := appjwttest.NewUnstartedServer()
		s.WebhookTiming = appjwttest.WebhookTiming{RetryPause: 50 * time.Millisecond}
		ep := newEndpoint(t)
		hook(t, s, ep, 0, appjwttest.WebhookContentEvent)
		conv := newSender(t, s, "john").open()
		s.QueueWebhookFaults(appjwttest.WebhookContentEvent, appjwttest.WebhookFault{Reorder: true})
		start := time.Now()
		s.AgentMessage(conv, "alone")
		wait(t, s)
		got := ep.got()
		if len(got) != 1 {
			t.Fatalf("the endpoint received %d requests, want 1", len(got))
		}
		if held := got[0].at.Sub(start); held < 50*time.Millisecond {
			t.Errorf("received after %v, want after the 50ms pause", held)
		}
	})

	t.Run("bad signature", func(t *testing.T) {
		s := appjwttest.NewUnstartedServer()
		ep := newEndpoint(t, verified(t, s), verified(t, s), verified(t, s))
		hook(t, s, ep, 1, appjwttest.WebhookContentEvent)
		conv := newSender(t, s, "john").open()
		s.QueueWebhookFaults(appjwttest.WebhookContentEvent, appjwttest.WebhookFault{BadSignature: true})
		s.AgentMessage(conv, "forged")
		s.AgentMessage(conv, "genuine")
		ds := wait(t, s)
		if len(ds) != 2 {
			t.Fatalf("%d deliveries, want 2", len(ds))
		}
		if got := statuses(ds[0]); !cmp.Equal(got, []int{401, 401}) || ds[0].Delivered() {
			t.Errorf("forged: attempts %v, want 401 twice", got)
		}
		if got := string(ds[0].Attempts[0].Answer); got != "unauthorized\n" {
			t.Errorf("forged: answer %q, want webhook's fixed text", got)
		}
		if got := statuses(ds[1]); !cmp.Equal(got, []int{200}) {
			t.Errorf("genuine: attempts %v, want 200", got)
		}
		if sig := ds[0].Header.Get(webhook.HeaderSignature); sig == webhook.Sign(s.ClientSecret, ds[0].Body) || !strings.HasPrefix(sig, "sha1=") {
			t.Errorf("forged: signature %q, want sha1= and not the client secret's", sig)
		}
	})

	t.Run("oversize", func(t *testing.T) {
		s := appjwttest.NewUnstartedServer()
		ep := newEndpoint(t, verified(t, s), verified(t, s))
		hook(t, s, ep, 0, appjwttest.WebhookContentEvent)
		conv := newSender(t, s, "john").open()
		const size = 1<<20 + 1 // one byte over the Verifier's default cap
		s.QueueWebhookFaults(appjwttest.WebhookContentEvent, appjwttest.WebhookFault{Oversize: size})
		s.AgentMessage(conv, "padded")
		s.AgentMessage(conv, "normal")
		ds := wait(t, s)
		if len(ds) != 2 {
			t.Fatalf("%d deliveries, want 2", len(ds))
		}
		big := ds[0]
		if len(big.Body) != size || big.Header.Get(webhook.HeaderSignature) != webhook.Sign(s.ClientSecret, big.Body) {
			t.Errorf("padded: %d bytes, signature %s; want %d bytes, signed", len(big.Body), big.Header.Get(webhook.HeaderSignature), size)
		}
		if n, err := webhook.Parse(big.Body); err != nil || n.Events[0].Event.(*webhook.ContentEvent).Message != "padded" {
			t.Errorf("padded: Parse: %v, want the message", err)
		}
		if a := big.Attempts[0]; a.Status != http.StatusBadRequest || string(a.Answer) != "body too large\n" {
			t.Errorf("padded: %d %q (%v), want 400 body too large", a.Status, a.Answer, a.Err)
		}
		if !ds[1].Delivered() {
			t.Errorf("normal: %v, want delivered", statuses(ds[1]))
		}
	})
}

// messages returns the text of each message in what an endpoint received.
func messages(rs []received) []string {
	var out []string
	for _, r := range rs {
		n, err := webhook.Parse(r.body)
		if err != nil || len(n.Events) != 1 {
			out = append(out, "?")
			continue
		}
		if m, ok := n.Events[0].Event.(*webhook.ContentEvent); ok {
			out = append(out, m.Message)
		}
	}
	return out
}

// A fault that lasts the whole of a delivery: every attempt is refused,
// until max_retries.
func TestWebhookBadSignatureEveryAttempt(t *testing.T) {
	s := appjwttest.NewUnstartedServer()
	ep := newEndpoint(t, verified(t, s), verified(t, s), verified(t, s), verified(t, s))
	hook(t, s, ep, 3, appjwttest.WebhookChatStateEvent)
	conv := newSender(t, s, "john").open()
	s.QueueWebhookFaults(appjwttest.WebhookChatStateEvent, appjwttest.WebhookFault{BadSignature: true})
	s.AgentChatState(conv, "COMPOSING")
	ds := wait(t, s)
	if len(ds) != 1 || !cmp.Equal(statuses(ds[0]), []int{401, 401, 401, 401}) {
		t.Errorf("deliveries %+v, want one of four 401s", ds)
	}
}

// Each webhook's deliveries come in the order of the events, even when
// consumers send at once.
func TestWebhookOrderUnderLoad(t *testing.T) {
	s := appjwttest.NewUnstartedServer()
	ep := newEndpoint(t)
	hook(t, s, ep, 0, appjwttest.WebhookContentEvent)
	const consumers, each = 4, 10
	var wg sync.WaitGroup
	for i := range consumers {
		c := newSender(t, s, "consumer"+string(rune('A'+i)))
		c.open()
		wg.Go(func() {
			for range each {
				c.send(sendMessage)
			}
		})
	}
	wg.Wait()
	wait(t, s)
	next := map[string]int64{}
	got := ep.got()
	if len(got) != consumers*each {
		t.Fatalf("the endpoint received %d requests, want %d", len(got), consumers*each)
	}
	for _, r := range got {
		n, err := webhook.Parse(r.body)
		if err != nil {
			t.Fatal(err)
		}
		e := n.Events[0]
		if e.Sequence != next[e.DialogID] {
			t.Errorf("dialog %s: sequence %d, want %d", e.DialogID, e.Sequence, next[e.DialogID])
		}
		next[e.DialogID] = e.Sequence + 1
	}
}

func TestWaitWebhooksContext(t *testing.T) {
	s := appjwttest.NewUnstartedServer()
	s.WebhookTiming = appjwttest.WebhookTiming{RetryPause: time.Hour}
	ep := newEndpoint(t, reply(500, ""))
	hook(t, s, ep, 1, appjwttest.WebhookContentEvent)
	conv := newSender(t, s, "john").open()
	s.AgentMessage(conv, "hello")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.WaitWebhooks(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitWebhooks = %v, want the context's deadline", err)
	}
	s.Close()
	if err := s.WaitWebhooks(context.Background()); err != nil {
		t.Errorf("WaitWebhooks after Close = %v, want nil", err)
	}
}

// Close ends every delivery, whether it waits for an answer, for its
// retry or for the notification it is held behind, and no goroutine of
// the server outlives it.
func TestWebhookClose(t *testing.T) {
	testkit.CheckGoroutines(t)
	hanging := newEndpoint(t, hang)
	failing := newEndpoint(t, reply(500, ""))
	s := appjwttest.NewUnstartedServer()
	// Both endpoints' clients trust the same httptest certificate.
	s.WebhookClient = hanging.Client()
	s.WebhookTiming = appjwttest.WebhookTiming{RetryPause: time.Hour}
	s.Start()
	defer s.Close()
	if err := s.SetWebhooks(map[string]appjwttest.Webhook{
		appjwttest.WebhookContentEvent:       {Endpoint: hanging.URL, MaxRetries: 5},
		appjwttest.WebhookChatStateEvent:     {Endpoint: failing.URL, MaxRetries: 5},
		appjwttest.WebhookConversationChange: {Endpoint: failing.URL, MaxRetries: 5},
	}); err != nil {
		t.Fatal(err)
	}
	s.QueueWebhookFaults(appjwttest.WebhookConversationChange, appjwttest.WebhookFault{Reorder: true})
	conv := newSender(t, s, "john").open() // held behind a next change that never comes
	s.AgentMessage(conv, "hangs")
	s.AgentChatState(conv, "COMPOSING") // fails, waits an hour for its retry
	started := func() bool {
		ds := s.Deliveries()
		return len(hanging.got()) == 1 && len(ds) == 3 && len(ds[2].Attempts) == 1
	}
	for deadline := time.Now().Add(10 * time.Second); !started(); {
		if time.Now().After(deadline) {
			t.Fatal("the deliveries did not start")
		}
		time.Sleep(time.Millisecond)
	}

	s.Close()
	if stacks := serverGoroutines(); stacks != "" {
		t.Errorf("goroutines of the server after Close:\n%s", stacks)
	}
	ds := s.Deliveries()
	if len(ds) != 3 {
		t.Fatalf("%d deliveries, want 3", len(ds))
	}
	if len(ds[0].Attempts) != 0 {
		t.Errorf("the held change: %d attempts, want none", len(ds[0].Attempts))
	}
	if a := ds[1].Attempts; len(a) != 1 || a[0].Err == nil || a[0].Err.Error() != "appjwttest: webhook delivery: server closed" {
		t.Errorf("the hanging delivery: %+v, want one attempt ended by Close", a)
	}
	if got := statuses(ds[2]); !cmp.Equal(got, []int{500}) {
		t.Errorf("the failing delivery: %v, want one 500 and no retry", got)
	}
	s.AgentMessage(conv, "after Close")
	if n := len(s.Deliveries()); n != 3 {
		t.Errorf("%d deliveries after Close, want none queued", n-3)
	}
}

// serverGoroutines returns the stacks of the goroutines running the
// server's code.
func serverGoroutines() string {
	buf := make([]byte, 1<<20)
	var out []string
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "appjwt/appjwttest.(*") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}
