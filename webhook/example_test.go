package webhook_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lpconnect/appjwt/appjwttest"
	"github.com/lpconnect/appjwt/internal/fleettest"
	"github.com/lpconnect/appjwt/secret"
	"github.com/lpconnect/appjwt/webhook"
)

// A connector's webhook endpoint, tested against the LivePerson stand-in
// of package appjwttest: it verifies each notification, skips the
// consumer's own events and duplicates, puts the agent's messages on a
// bounded queue and answers 200 at once, long before a worker has sent
// them on. The stand-in delivers the consumer's message, echoed, the
// agent's answer twice, and a notification signed with another secret,
// as a forger's would be.
func Example() {
	srv := appjwttest.NewUnstartedServer() // started once the endpoint is
	defer srv.Close()

	// The app installation, as LivePerson issued it; in production, from
	// the environment or a secret store.
	verifier, err := webhook.Config{AccountID: srv.AccountID, ClientID: srv.ClientID, ClientSecret: srv.ClientSecret}.NewVerifier()
	if err != nil {
		log.Fatal(err)
	}
	dedup := webhook.NewDedup(0, 0) // 10 minutes, 100,000 keys

	// A bounded queue: when the worker falls 1,024 events behind, the
	// endpoint answers 503 and LivePerson delivers again 30 s later,
	// rather than memory growing or answers waiting.
	queue := make(chan webhook.MessagingEvent, 1024)
	workerMayStart := make(chan struct{})
	var forwarded []string
	var worker sync.WaitGroup
	worker.Go(func() {
		<-workerMayStart // a slow worker: the answers do not wait for it
		for e := range queue {
			if m, ok := e.Event.(*webhook.ContentEvent); ok {
				forwarded = append(forwarded, m.Message) // in production: to the consumer's channel
			}
		}
	})

	endpoint := httptest.NewTLSServer(verifier.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body) // verified, and within the cap
		if err != nil {
			http.Error(w, "body unreadable", http.StatusBadRequest)
			return
		}
		n, err := webhook.Parse(body)
		if err != nil {
			log.Print(err) // and answer 200: a retry would not decode either
			return
		}
		for _, e := range n.Events {
			switch {
			case e.FromConsumer():
				io.WriteString(w, "the connector's own") // LivePerson ignores the body: it is here for the example
			case !e.HasSequence || dedup.Seen(e.DialogID, e.Sequence):
				io.WriteString(w, "a chat state, or a duplicate")
			default:
				select {
				case queue <- e:
					io.WriteString(w, "queued")
				default:
					dedup.Forget(e.DialogID, e.Sequence) // so that the retry is not dropped
					http.Error(w, "busy", http.StatusServiceUnavailable)
					return
				}
			}
		}
		// 200, at once.
	})))
	defer endpoint.Close()

	// The stand-in trusts the endpoint's certificate, and retries after
	// 10 ms, not 30 s; then the app installation's capabilities.webhooks.
	srv.WebhookClient = endpoint.Client()
	srv.WebhookTiming = appjwttest.WebhookTiming{RetryPause: 10 * time.Millisecond}
	srv.Start()
	if err := srv.SetWebhooks(map[string]appjwttest.Webhook{
		appjwttest.WebhookContentEvent: {Endpoint: endpoint.URL + "/lp/events", MaxRetries: 1},
	}); err != nil {
		log.Fatal(err)
	}

	conversation := consumerWrites(srv, "john_doe_42", "Where is my order?")
	srv.QueueWebhookFaults(appjwttest.WebhookContentEvent,
		appjwttest.WebhookFault{Duplicate: true}, appjwttest.WebhookFault{BadSignature: true})
	srv.AgentMessage(conversation, "It left today.")
	srv.AgentMessage(conversation, "Send me your password.")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.WaitWebhooks(ctx); err != nil {
		log.Fatal(err)
	}
	inTime := true
	for _, d := range srv.Deliveries() {
		n, err := webhook.Parse(d.Body)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%q:", n.Events[0].Event.(*webhook.ContentEvent).Message)
		for _, a := range d.Attempts {
			fmt.Printf(" %d %s;", a.Status, strings.TrimSpace(string(a.Answer)))
			inTime = inTime && a.Err == nil && a.Duration < 2500*time.Millisecond
		}
		fmt.Println()
	}
	fmt.Println("every answer within 2.5 s:", inTime)

	close(workerMayStart)
	close(queue)
	worker.Wait()
	fmt.Printf("forwarded to the consumer: %q\n", forwarded)
	// Output:
	// "Where is my order?": 200 the connector's own;
	// "It left today.": 200 queued;
	// "It left today.": 200 a chat state, or a duplicate;
	// "Send me your password.": 401 unauthorized; 401 unauthorized;
	// every answer within 2.5 s: true
	// forwarded to the consumer: ["It left today."]
}

// consumerWrites does what a connector does when a consumer writes first:
// it opens a conversation for the consumer and sends the message, through
// the Send API with the AppJWT and the consumer's ConsumerJWS, and returns
// the conversation's ID.
func consumerWrites(srv *appjwttest.Server, consumer, message string) string {
	id, err := fleettest.ConsumerWrites(context.Background(), srv, consumer, message)
	if err != nil {
		log.Fatal(err)
	}
	return id
}

// Events of one conversation, released in sequence order. LivePerson's
// order is best effort, and a sequence may never come: lost, or an event
// of a type the connector registered no webhook for. So an event after a
// gap waits until the gap fills, or at most hold; one that comes after
// that is released at once, late.
func Example_reorder() {
	r := reorderer{hold: 2 * time.Second, next: map[string]int64{}, held: map[string][]heldEvent{}}
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	event := func(seq int64) webhook.MessagingEvent {
		return webhook.MessagingEvent{DialogID: "d1", Sequence: seq, HasSequence: true}
	}
	show := func(what string, released []webhook.MessagingEvent) {
		var seqs []int64
		for _, e := range released {
			seqs = append(seqs, e.Sequence)
		}
		fmt.Printf("%-26s released %v\n", what, seqs)
	}
	show("0 arrives:", r.add(event(0), t0))
	show("2 arrives:", r.add(event(2), t0))
	show("3 arrives:", r.add(event(3), t0.Add(100*time.Millisecond)))
	show("1 arrives:", r.add(event(1), t0.Add(200*time.Millisecond)))
	show("5 arrives:", r.add(event(5), t0.Add(300*time.Millisecond)))
	show("1 s later:", r.flush(t0.Add(1300*time.Millisecond)))
	show("2 s later, 4 never came:", r.flush(t0.Add(2300*time.Millisecond)))
	show("4 arrives, late:", r.add(event(4), t0.Add(30*time.Second)))
	// Output:
	// 0 arrives:                 released [0]
	// 2 arrives:                 released []
	// 3 arrives:                 released []
	// 1 arrives:                 released [1 2 3]
	// 5 arrives:                 released []
	// 1 s later:                 released []
	// 2 s later, 4 never came:   released [5]
	// 4 arrives, late:           released [4]
}

// reorderer holds each dialog's events until those before them came, or
// for at most hold. Its memory is bounded by maxHeld events a dialog;
// forget a dialog once its conversation closes
// (webhook.ConversationChange.Closed).
type reorderer struct {
	hold time.Duration
	next map[string]int64       // by dialog: the sequence due next
	held map[string][]heldEvent // by dialog, in sequence order
}

type heldEvent struct {
	e  webhook.MessagingEvent
	at time.Time // when it arrived
}

// maxHeld is how many events a dialog holds at most: beyond, the gap is
// given up on.
const maxHeld = 64

// add takes an event that arrived at now, and returns those it releases,
// in order.
func (r *reorderer) add(e webhook.MessagingEvent, now time.Time) []webhook.MessagingEvent {
	d := e.DialogID
	if e.Sequence < r.next[d] {
		return []webhook.MessagingEvent{e} // late: its place has passed
	}
	held := r.held[d]
	i, dup := slices.BinarySearchFunc(held, e.Sequence, func(h heldEvent, seq int64) int {
		return cmp.Compare(h.e.Sequence, seq)
	})
	if !dup {
		r.held[d] = slices.Insert(held, i, heldEvent{e, now})
	}
	if len(r.held[d]) > maxHeld {
		r.next[d] = r.held[d][0].e.Sequence
	}
	return r.release(d)
}

// flush releases, in order, the events that have waited hold, and those
// before them.
func (r *reorderer) flush(now time.Time) []webhook.MessagingEvent {
	var out []webhook.MessagingEvent
	for d, held := range r.held {
		for _, h := range held {
			if now.Sub(h.at) >= r.hold {
				r.next[d] = max(r.next[d], h.e.Sequence) // give up on the gap before it
			}
		}
		out = append(out, r.release(d)...)
	}
	return out
}

// release returns the held events of dialog d up to the first gap.
func (r *reorderer) release(d string) []webhook.MessagingEvent {
	var out []webhook.MessagingEvent
	held := r.held[d]
	for len(held) > 0 && held[0].e.Sequence <= r.next[d] {
		out = append(out, held[0].e)
		r.next[d] = held[0].e.Sequence + 1
		held = held[1:]
	}
	r.held[d] = held
	return out
}

// The function form, for code that is not an http.Handler, such as a
// serverless function given the headers (names in any case) and the raw
// body.
func ExampleVerifier_Verify() {
	v, err := webhook.Config{AccountID: "le12345678", ClientID: "75588e18-0213-4e33-8174-883acac7e3c4", ClientSecret: "example-secret"}.NewVerifier()
	if err != nil {
		log.Fatal(err)
	}
	body := []byte(`{"kind":"notification","body":{"changes":[]},"type":"ms.MessagingEventNotification"}`)
	header := http.Header{
		"x-liveperson-account-id": {"le12345678"},
		"x-liveperson-client-id":  {"75588e18-0213-4e33-8174-883acac7e3c4"},
		"x-liveperson-signature":  {webhook.Sign("example-secret", body)},
	}
	fmt.Println(v.Verify(header, body))

	header["x-liveperson-signature"] = []string{webhook.Sign("a guess", body)}
	err = v.Verify(header, body)
	fmt.Println(errors.Is(err, webhook.ErrUnauthorized), err)
	// Output:
	// <nil>
	// true webhook: X-Liveperson-Signature does not match the body
}

// One endpoint for several accounts: each notification is checked with
// the secret of the app installation it names.
func ExampleConfig_secrets() {
	secrets := map[[2]string]secret.String{ // (account, client id) → client secret
		{"le12345678", "75588e18-0213-4e33-8174-883acac7e3c4"}: "secret-of-le12345678",
		{"le87654321", "0b1c2d3e-0213-4e33-8174-883acac7e3c4"}: "secret-of-le87654321",
	}
	v, err := webhook.Config{Secrets: func(account, clientID string) (secret.String, bool) {
		s, ok := secrets[[2]string{account, clientID}]
		return s, ok
	}}.NewVerifier()
	if err != nil {
		log.Fatal(err)
	}
	body := []byte(`{"kind":"notification","body":{"changes":[]},"type":"ms.MessagingEventNotification"}`)
	header := http.Header{}
	header.Set(webhook.HeaderAccountID, "le87654321")
	header.Set(webhook.HeaderClientID, "0b1c2d3e-0213-4e33-8174-883acac7e3c4")
	header.Set(webhook.HeaderSignature, webhook.Sign("secret-of-le87654321", body))
	fmt.Println(v.Verify(header, body))

	header.Set(webhook.HeaderSignature, webhook.Sign("secret-of-le12345678", body))
	fmt.Println(v.Verify(header, body))
	// Output:
	// <nil>
	// webhook: X-Liveperson-Signature does not match the body
}

func ExampleParse() {
	body := []byte(`{"kind":"notification","body":{"changes":[` +
		`{"sequence":2,"originatorMetadata":{"id":"a1","role":"ASSIGNED_AGENT"},"event":{"type":"ContentEvent","message":"Hello","contentType":"text/plain"},"dialogId":"d1"},` +
		`{"originatorMetadata":{"id":"a1","role":"ASSIGNED_AGENT"},"event":{"type":"ChatStateEvent","chatState":"COMPOSING"},"dialogId":"d1"},` +
		`{"sequence":3,"originatorMetadata":{"id":"c1","role":"CONSUMER"},"event":{"type":"AcceptStatusEvent","status":"READ","sequenceList":[2]},"dialogId":"d1"},` +
		`{"sequence":4,"event":{"type":"CoBrowseEvent","mode":"VIEW"},"dialogId":"d1"}` +
		`]},"type":"ms.MessagingEventNotification"}`)
	n, err := webhook.Parse(body)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range n.Events {
		switch ev := e.Event.(type) {
		case *webhook.ContentEvent:
			fmt.Printf("%d: %s says %q\n", e.Sequence, e.Originator.Role, ev.Message)
		case *webhook.ChatStateEvent:
			fmt.Printf("-: %s is %s\n", e.Originator.Role, ev.ChatState)
		case *webhook.AcceptStatusEvent:
			fmt.Printf("%d: %v %s by the consumer: %t\n", e.Sequence, ev.SequenceList, ev.Status, e.FromConsumer())
		case *webhook.UnknownEvent:
			fmt.Printf("%d: %s, not handled: %s\n", e.Sequence, ev.Type, ev.Raw)
		}
	}
	// Output:
	// 2: ASSIGNED_AGENT says "Hello"
	// -: ASSIGNED_AGENT is COMPOSING
	// 3: [2] READ by the consumer: true
	// 4: CoBrowseEvent, not handled: {"type":"CoBrowseEvent","mode":"VIEW"}
}

// A signature as LivePerson computes it: its Java example signs "payload"
// with the secret "THE_CLIENT_SECRET".
func ExampleSign() {
	fmt.Println(webhook.Sign("THE_CLIENT_SECRET", []byte("payload")))
	// Output:
	// sha1=6GKAMTT/rWDbn6723/FjsTZKRWQ=
}
