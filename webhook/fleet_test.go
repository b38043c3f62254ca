package webhook_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lpconnect/appjwt/appjwttest"
	"github.com/lpconnect/appjwt/store"
	"github.com/lpconnect/appjwt/webhook"
)

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

// Three replicas over one Store get the stand-in's deliveries, with
// duplicates, retries and reordering, and replicas that die while
// processing: each of the agent's messages is processed exactly once, and
// every delivery is answered 200 in the end.
func TestFleetProcessesEachEventOnce(t *testing.T) {
	srv := appjwttest.NewUnstartedServer()
	defer srv.Close()
	// The claim ends well before the retry: 50 ms against 200 ms, as 1 s
	// against LivePerson's 2 s.
	rs := newReplicas(t, srv, 3, webhook.DedupConfig{Store: store.NewMemory(0), ClaimTime: 50 * time.Millisecond})
	srv.WebhookClient = &http.Client{Transport: rs}
	srv.WebhookTiming = appjwttest.WebhookTiming{RetryPause: 200 * time.Millisecond}
	srv.Start()
	if err := srv.SetWebhooks(map[string]appjwttest.Webhook{
		appjwttest.WebhookContentEvent: {Endpoint: "https://connector.example/lp/events", MaxRetries: 2},
	}); err != nil {
		t.Fatal(err)
	}
	conversation := consumerWrites(srv, "john_doe_42", "Hello") // its delivery: attempt 0, replica 0
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
