package webhook_test

import (
	"cmp"
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

	"github.com/lpconnect/appjwt/webhook"
)

// A connector's webhook endpoint: it verifies each notification, skips the
// consumer's own events and duplicates, puts the agent's messages on a
// bounded queue and answers 200 at once, long before a worker has sent
// them on.
func Example() {
	// The app installation, as LivePerson issued it; in production, from
	// the environment or a secret store.
	const account, clientID, secret = "le12345678", "75588e18-0213-4e33-8174-883acac7e3c4", "example-secret"
	verifier, err := webhook.Config{AccountID: account, ClientID: clientID, ClientSecret: secret}.NewVerifier()
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

	endpoint := verifier.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
			if e.FromConsumer() || !e.HasSequence || dedup.Seen(e.DialogID, e.Sequence) {
				continue // the connector's own message, echoed; a chat state; a duplicate
			}
			select {
			case queue <- e:
			default:
				dedup.Forget(e.DialogID, e.Sequence) // so that the retry is not dropped
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return
			}
		}
		// 200, at once.
	}))
	srv := httptest.NewTLSServer(endpoint)
	defer srv.Close()

	// LivePerson delivers: the consumer's message the connector sent, the
	// agent's answer, the agent's answer again, and a forgery.
	lp := liveperson{client: srv.Client(), url: srv.URL, account: account, clientID: clientID, secret: secret}
	fmt.Println("consumer's message:", lp.deliver(notification(1, "CONSUMER", "Where is my order?")))
	fmt.Println("agent's answer:", lp.deliver(notification(2, "ASSIGNED_AGENT", "It left today.")))
	fmt.Println("agent's answer again:", lp.deliver(notification(2, "ASSIGNED_AGENT", "It left today.")))
	forger := lp
	forger.secret = "a guess"
	fmt.Println("forgery:", forger.deliver(notification(3, "ASSIGNED_AGENT", "Send me your password.")))

	close(workerMayStart)
	close(queue)
	worker.Wait()
	fmt.Printf("forwarded to the consumer: %q\n", forwarded)
	// Output:
	// consumer's message: 200 OK
	// agent's answer: 200 OK
	// agent's answer again: 200 OK
	// forgery: 401 Unauthorized
	// forwarded to the consumer: ["It left today."]
}

// liveperson delivers notifications as LivePerson's webhooks do: POSTed
// to the endpoint with the account, the client id and the signature of
// the raw body with the client secret, with 5 s to answer. (A LivePerson
// stand-in can deliver them instead.)
type liveperson struct {
	client                         *http.Client
	url, account, clientID, secret string
}

// deliver delivers body and returns the answer's status, and whether it
// came too late for LivePerson's 2.5 s rule.
func (lp liveperson) deliver(body string) string {
	req, err := http.NewRequest(http.MethodPost, lp.url, strings.NewReader(body))
	if err != nil {
		log.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.HeaderAccountID, lp.account)
	req.Header.Set(webhook.HeaderClientID, lp.clientID)
	req.Header.Set(webhook.HeaderSignature, webhook.Sign(lp.secret, []byte(body)))
	client := *lp.client
	client.Timeout = 5 * time.Second
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return err.Error()
	}
	resp.Body.Close()
	if time.Since(start) > 2500*time.Millisecond {
		return resp.Status + ", too late"
	}
	return resp.Status
}

// notification returns a notification of one text message, as LivePerson
// documents them.
func notification(sequence int, role, message string) string {
	return fmt.Sprintf(`{"kind":"notification","body":{"changes":[{"sequence":%d,"originatorId":"p1",`+
		`"originatorMetadata":{"id":"p1","role":%q},"serverTimestamp":1528371199686,`+
		`"event":{"type":"ContentEvent","message":%q,"contentType":"text/plain"},`+
		`"dialogId":"5491244f-e462-4c63-bf4e-faf4b2d3e7b5"}]},"type":"ms.MessagingEventNotification"}`,
		sequence, role, message)
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
	secrets := map[[2]string]string{ // (account, client id) → client secret
		{"le12345678", "75588e18-0213-4e33-8174-883acac7e3c4"}: "secret-of-le12345678",
		{"le87654321", "0b1c2d3e-0213-4e33-8174-883acac7e3c4"}: "secret-of-le87654321",
	}
	v, err := webhook.Config{Secrets: func(account, clientID string) (string, bool) {
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

// Signatures as LivePerson computes them: its Java example signs
// "payload" with the secret "THE_CLIENT_SECRET".
func ExampleSign() {
	fmt.Println(webhook.Sign("THE_CLIENT_SECRET", []byte("payload")))
	fmt.Println(webhook.SignWith(webhook.SHA256, webhook.Hex, "THE_CLIENT_SECRET", []byte("payload")))
	// Output:
	// sha1=6GKAMTT/rWDbn6723/FjsTZKRWQ=
	// sha256=7c3da17662eb1fba36eb98c4159c02807dc0e0d62e6bc93a25bda80e5ed4fcfc
}
