// Package fleettest holds the fleet tests that run over more than one
// store.Store: webhook and internal/fleet run them over store.Memory,
// redisstore over a real Redis. Each is the whole test; the caller gives
// the store and what its clock needs. Only tests import it.
//
// It is apart from internal/testkit because it imports appjwt and
// consumerjws, whose own tests import testkit.
package fleettest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lpconnect/appjwt"
	"github.com/lpconnect/appjwt/appjwttest"
	"github.com/lpconnect/appjwt/consumerjws"
	"github.com/lpconnect/appjwt/internal/testkit"
	"github.com/lpconnect/appjwt/store"
	"github.com/lpconnect/appjwt/webhook"
	"golang.org/x/oauth2"
)

// WebhooksFromTheStandIn checks that three replicas over st, behind a load
// balancer, get the stand-in's deliveries, with duplicates, retries and
// reordering, and a replica that dies while processing: each of the
// agent's messages is processed exactly once, and every delivery is
// answered 200 in the end. It runs in real time, within 10 s.
func WebhooksFromTheStandIn(t *testing.T, st store.Store) {
	srv := appjwttest.NewUnstartedServer()
	defer srv.Close()
	// The claim ends well before the retry: 50 ms against 200 ms, as 1 s
	// against LivePerson's 2 s.
	rs := newReplicas(t, srv, 3, webhook.DedupConfig{Store: st, ClaimTime: 50 * time.Millisecond})
	srv.WebhookClient = &http.Client{Transport: rs}
	srv.WebhookTiming = appjwttest.WebhookTiming{RetryPause: 200 * time.Millisecond}
	srv.Start()
	if err := srv.SetWebhooks(map[string]appjwttest.Webhook{
		appjwttest.WebhookContentEvent: {Endpoint: "https://connector.example/lp/events", MaxRetries: 2},
	}); err != nil {
		t.Fatal(err)
	}
	conversation, err := ConsumerWrites(t.Context(), srv, "john_doe_42", "Hello") // its delivery: attempt 0, replica 0
	if err != nil {
		t.Fatal(err)
	}
	srv.QueueWebhookFaults(appjwttest.WebhookContentEvent,
		appjwttest.WebhookFault{Duplicate: true},                // 1 to replica 1, which dies; its copy to 2, dropped
		appjwttest.WebhookFault{Reorder: true},                  // 2 held back behind 3
		appjwttest.WebhookFault{},                               // 3
		appjwttest.WebhookFault{Duplicate: true, Reorder: true}, // 4 twice, behind 5
		appjwttest.WebhookFault{},                               // 5
	)
	rs.die[1].Store(true)
	messages := []string{"one", "two", "three", "four", "five", "six"}
	for _, m := range messages {
		if _, err := srv.AgentMessage(conversation, m); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := srv.WaitWebhooks(ctx); err != nil {
		t.Fatal(err)
	}

	want := map[string]int{}
	for _, m := range messages {
		want[m] = 1
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if diff := cmp.Diff(want, rs.processed); diff != "" {
		t.Errorf("times each message was processed (-want +got):\n%s", diff)
	}
	var attempts, retried int
	for _, d := range srv.Deliveries() {
		if !d.Delivered() {
			t.Errorf("a delivery was not delivered: %+v", d.Attempts)
		}
		attempts += len(d.Attempts)
		if len(d.Attempts) > 1 {
			retried++
		}
	}
	if retried != 1 || rs.die[1].Load() {
		t.Errorf("%d deliveries retried, want 1: the one whose replica died", retried)
	}
	t.Logf("%d deliveries, %d attempts", len(srv.Deliveries()), attempts)
}

// replicas is a fleet of connector replicas behind a load balancer, as
// the stand-in's webhook client: each attempt goes to the next replica in
// turn, which verifies it, drops its duplicates through a Dedup shared
// over one Store, and processes the rest. A replica told to die does so
// after its next claim, before Done and before answering: its attempt
// fails as a reset connection does.
type replicas struct {
	handlers []http.Handler
	next     atomic.Int64
	die      []atomic.Bool

	mu        sync.Mutex
	processed map[string]int // by message
}

var errReset = errors.New("connection reset by peer")

func newReplicas(t *testing.T, srv *appjwttest.Server, n int, conf webhook.DedupConfig) *replicas {
	verifier, err := webhook.Config{AccountID: srv.AccountID, ClientID: srv.ClientID, ClientSecret: srv.ClientSecret}.NewVerifier()
	if err != nil {
		t.Fatal(err)
	}
	rs := &replicas{die: make([]atomic.Bool, n), processed: map[string]int{}}
	for i := range n {
		dedup, err := conf.NewDedup()
		if err != nil {
			t.Fatal(err)
		}
		rs.handlers = append(rs.handlers, verifier.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				t.Error(err)
				return
			}
			n, err := webhook.Parse(body)
			if err != nil {
				t.Error(err)
				return
			}
			for _, e := range n.Events {
				if e.FromConsumer() || !e.HasSequence || dedup.Seen(e.DialogID, e.Sequence) {
					continue
				}
				if rs.die[i].CompareAndSwap(true, false) {
					panic(http.ErrAbortHandler)
				}
				rs.mu.Lock()
				rs.processed[e.Event.(*webhook.ContentEvent).Message]++
				rs.mu.Unlock()
				dedup.Done(e.DialogID, e.Sequence)
			}
		})))
	}
	return rs
}

func (rs *replicas) RoundTrip(r *http.Request) (resp *http.Response, err error) {
	h := rs.handlers[int(rs.next.Add(1)-1)%len(rs.handlers)]
	rec := httptest.NewRecorder()
	defer func() {
		if recover() != nil {
			resp, err = nil, errReset
		}
	}()
	h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// ConsumerWrites does what a connector does when a consumer writes first:
// it opens a conversation on srv for consumer and sends message in it,
// through the Send API with the AppJWT and the consumer's ConsumerJWS,
// and returns the conversation's ID. Its token sources end with it.
func ConsumerWrites(ctx context.Context, srv *appjwttest.Server, consumer, message string) (string, error) {
	ctx, cancel := context.WithCancel(srv.Context(ctx))
	defer cancel()
	ctx = consumerjws.WithConsumer(ctx, consumer)
	app := appjwt.Config{AccountID: srv.AccountID, ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, DomainAPI: srv.Host()}
	appJWTs := app.TokenSource(ctx)
	consumers := consumerjws.Config{AccountID: srv.AccountID, DomainAPI: srv.Host(), Source: appJWTs}
	client := &http.Client{Transport: &consumerjws.Transport{
		Cache: consumers.NewCache(ctx),
		Base:  &appjwt.Transport{Source: appJWTs, Base: srv.Client().Transport},
	}}
	api := srv.URL() + "/api/account/" + srv.AccountID + "/messaging/consumer/conversation"
	post := func(url, body string, answer any) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("fleettest: %s: %s", url, resp.Status)
		}
		if err := json.NewDecoder(resp.Body).Decode(answer); err != nil {
			return fmt.Errorf("fleettest: %s: %w", url, err)
		}
		return nil
	}
	var opened []struct {
		Body struct{ ConversationID string }
	}
	if err := post(api+"?v=3", `[{"kind":"req","id":"1,","type":"userprofile.SetUserProfile","body":{}},`+
		`{"kind":"req","id":"2,","type":"cm.ConsumerRequestConversation","body":{"brandId":"`+srv.AccountID+`","channelType":"MESSAGING"}}]`, &opened); err != nil {
		return "", err
	}
	if len(opened) == 0 {
		return "", errors.New("fleettest: no answer to the conversation's request")
	}
	id := opened[len(opened)-1].Body.ConversationID
	event, err := json.Marshal(map[string]string{"type": "ContentEvent", "contentType": "text/plain", "message": message})
	if err != nil {
		return "", err
	}
	var sent any
	if err := post(api+"/send?v=3", `{"kind":"req","id":"3","type":"ms.PublishEvent","body":{"dialogId":"`+id+`","event":`+string(event)+`}}`, &sent); err != nil {
		return "", err
	}
	return id, nil
}

// LivePerson is testkit.FakeLivePerson with an idp at idp.test that
// issues a ConsumerJWS without exp, after IdpDelay, and counts its
// requests by consumer.
type LivePerson struct {
	*testkit.FakeLivePerson
	IdpDelay time.Duration // none by NewLivePerson; set before the first request

	mu        sync.Mutex
	consumers map[string]int
}

// NewLivePerson returns a LivePerson that answers every request as it
// should.
func NewLivePerson() *LivePerson {
	return &LivePerson{FakeLivePerson: testkit.NewFakeLivePerson(), consumers: map[string]int{}}
}

// RoundTrip answers r as LivePerson would.
func (l *LivePerson) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host != "idp.test" {
		return l.FakeLivePerson.RoundTrip(r)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	id := strings.TrimSuffix(strings.TrimPrefix(string(body), `{"ext_consumer_id":"`), `"}`)
	l.mu.Lock()
	l.consumers[id]++
	n := l.consumers[id]
	l.mu.Unlock()
	time.Sleep(l.IdpDelay)
	jws := testkit.JWT(fmt.Sprintf(`{"sub":%q,"n":%d}`, id, n))
	h := http.Header{"Content-Type": {"application/json"}}
	return &http.Response{StatusCode: http.StatusCreated, Header: h, Body: io.NopCloser(strings.NewReader(`{"token":"` + jws + `"}`)), Request: r}, nil
}

// IdpCount returns the idp's requests so far, and the consumers they were
// for.
func (l *LivePerson) IdpCount() (requests, consumers int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, n := range l.consumers {
		requests += n
	}
	return requests, len(l.consumers)
}

// Context returns parent with l as the client of oauth2's requests.
func (l *LivePerson) Context(parent context.Context) context.Context {
	return context.WithValue(parent, oauth2.HTTPClient, &http.Client{Transport: l})
}

// RejectionDropsForAll checks that a token the API rejects (40102) on one
// replica is dropped for all: of four replicas of brand c, each a
// c.Client over lp, the one that got the 401 fetches
// one token, which the others, on their 401, take from c.Store, and a
// replica started later takes that new one, never the rejected one.
// settle, if not nil, waits for what the replicas do in the background
// (synctest.Wait on a fake clock) before that later replica starts.
func RejectionDropsForAll(t *testing.T, lp *LivePerson, c appjwt.Config, settle func()) {
	ctx, cancel := context.WithCancel(lp.Context(t.Context()))
	defer cancel()
	get := func(client *http.Client) int {
		t.Helper()
		resp, err := client.Get("https://api.test/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	var clients []*http.Client
	for range 4 {
		clients = append(clients, c.Client(ctx))
		if status := get(clients[len(clients)-1]); status != http.StatusOK {
			t.Fatalf("status %d, want 200", status)
		}
	}
	if n := lp.Count("sentinel.test"); n != 1 {
		t.Fatalf("4 replicas started: %d Sentinel requests, want 1", n)
	}
	lp.RevokeAll()
	// Sentinel's iat is in seconds: the new token's is later than the
	// rejected one's, so the fleet-wide rejection floor keeps it.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	for i, client := range clients {
		if status := get(client); status != http.StatusOK {
			t.Errorf("replica %d after the revocation: status %d, want 200 after one resend", i, status)
		}
	}
	if n := lp.Count("sentinel.test"); n != 2 {
		t.Errorf("after a revocation seen by 4 replicas: %d Sentinel requests, want 2", n)
	}
	if settle != nil {
		settle()
	}
	// A replica started now takes the new token from the store: its first
	// request needs no resend.
	before := lp.Count("api.test")
	if status := get(c.Client(ctx)); status != http.StatusOK {
		t.Errorf("a replica started after the revocation: status %d, want 200", status)
	}
	if n := lp.Count("api.test") - before; n != 1 {
		t.Errorf("a replica started after the revocation sent %d API requests, want 1: it took the rejected token", n)
	}
	if n := lp.Count("sentinel.test"); n != 2 {
		t.Errorf("after a new replica: %d Sentinel requests, want 2", n)
	}
}
