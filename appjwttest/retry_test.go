package appjwttest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeEndpoint is a webhook endpoint in memory, so that deliveries run on
// synctest's fake clock: each message fails with 500 as many times as
// fail says, then is answered 200, each answer after delay.
type fakeEndpoint struct {
	start time.Time
	delay time.Duration

	mu   sync.Mutex
	fail map[string]int
	got  []hit
}

// hit is an attempt the endpoint received: when, since the test's start,
// the message, and the status it answered.
type hit struct {
	At      time.Duration
	Message string
	Status  int
}

func (ep *fakeEndpoint) RoundTrip(r *http.Request) (*http.Response, error) {
	if trace := httptrace.ContextClientTrace(r.Context()); trace != nil && trace.GotConn != nil {
		trace.GotConn(httptrace.GotConnInfo{})
	}
	var n struct {
		Body struct {
			Changes []struct{ Event struct{ Message string } }
		}
	}
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, &n); err != nil || len(n.Body.Changes) != 1 {
		return nil, err
	}
	ep.mu.Lock()
	delay := ep.delay
	ep.mu.Unlock()
	select {
	case <-time.After(delay):
	case <-r.Context().Done():
		return nil, context.Cause(r.Context())
	}
	msg := n.Body.Changes[0].Event.Message
	ep.mu.Lock()
	status := http.StatusOK
	if ep.fail[msg] > 0 {
		ep.fail[msg]--
		status = http.StatusInternalServerError
	}
	ep.got = append(ep.got, hit{time.Since(ep.start).Round(time.Millisecond), msg, status})
	ep.mu.Unlock()
	return &http.Response{StatusCode: status, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
}

func (ep *fakeEndpoint) hits() []hit {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return append([]hit(nil), ep.got...)
}

// fakeApp is a server, not started, whose content event webhook is ep,
// with the policy set sets, and two open conversations, "a" and "b".
func fakeApp(t *testing.T, ep *fakeEndpoint, maxRetries int, set func(*Server)) *Server {
	t.Helper()
	s := NewUnstartedServer()
	s.WebhookClient = &http.Client{Transport: ep}
	set(s)
	if err := s.configureWebhooks(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if err := s.SetWebhooks(map[string]Webhook{WebhookContentEvent: {Endpoint: "https://connector.example/lp/events", MaxRetries: maxRetries}}); err != nil {
		t.Fatal(err)
	}
	ep.start = time.Now()
	for _, id := range []string{"a", "b"} {
		if !s.open(&conversation{ConversationInfo: ConversationInfo{ID: id, Consumer: "consumer-" + id}}, time.Now()) {
			t.Fatalf("conversation %s did not open", id)
		}
	}
	return s
}

// say has the agent publish each "conversation:message" in turn.
func say(t *testing.T, s *Server, messages ...string) {
	t.Helper()
	for _, m := range messages {
		conv, text, _ := strings.Cut(m, ":")
		if _, err := s.AgentMessage(conv, text); err != nil {
			t.Fatal(err)
		}
	}
}

// waitIdle waits, on the fake clock, until no delivery is pending.
func waitIdle(t *testing.T, s *Server) {
	t.Helper()
	if err := s.WaitWebhooks(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func checkHits(t *testing.T, ep *fakeEndpoint, want []hit) {
	t.Helper()
	if diff := cmp.Diff(want, ep.hits()); diff != "" {
		t.Errorf("attempts (-want +got):\n%s", diff)
	}
}

// Count-based: a failed delivery is tried again 30 s later, max_retries
// times at most, behind what came meanwhile: order is not kept.
func TestWebhookCountBasedRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ep := &fakeEndpoint{fail: map[string]int{"a1": 9}}
		s := fakeApp(t, ep, 3, func(*Server) {})
		say(t, s, "a:a1", "a:a2")
		waitIdle(t, s)
		checkHits(t, ep, []hit{
			{0, "a1", 500}, {0, "a2", 200},
			{30 * time.Second, "a1", 500}, {60 * time.Second, "a1", 500}, {90 * time.Second, "a1", 500},
		})
		if ds := s.Deliveries(); ds[0].Delivered() || !ds[1].Delivered() {
			t.Errorf("delivered: %t, %t; want a1 not, a2 yes", ds[0].Delivered(), ds[1].Delivered())
		}
	})
}

// TTL-based: the pauses are 2, 4, 8 s ..., doubling up to 5 minutes, for
// as long as the delivery is younger than the retention.
func TestWebhookTTLBasedPauses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ep := &fakeEndpoint{fail: map[string]int{"a1": 1000}}
		s := fakeApp(t, ep, 0, func(s *Server) { s.WebhookRetention = 20 * time.Minute })
		say(t, s, "a:a1")
		waitIdle(t, s)
		var want []hit
		at := time.Duration(0)
		for _, pause := range []int{0, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300} { // 1110 s; 300 more would pass 1200
			at += time.Duration(pause) * time.Second
			want = append(want, hit{at, "a1", 500})
		}
		checkHits(t, ep, want)
	})
}

// TTL-based: a conversation's notifications keep their order while one
// is retried; other conversations' go on meanwhile.
func TestWebhookTTLBasedOrder(t *testing.T) {
	tests := []struct {
		name      string
		retention time.Duration
		want      []hit
	}{
		{"TTL-based: a2 and a3 wait for a1", time.Hour, []hit{
			{0, "a1", 500}, {0, "b1", 200}, {2 * time.Second, "a1", 500}, {6 * time.Second, "a1", 200},
			{6 * time.Second, "a2", 200}, {6 * time.Second, "a3", 200},
		}},
		{"count-based: a1 comes last", 0, []hit{
			{0, "a1", 500}, {0, "a2", 200}, {0, "a3", 200}, {0, "b1", 200},
			{30 * time.Second, "a1", 500}, {60 * time.Second, "a1", 200},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ep := &fakeEndpoint{fail: map[string]int{"a1": 2}}
				s := fakeApp(t, ep, 5, func(s *Server) { s.WebhookRetention = tt.retention })
				say(t, s, "a:a1", "a:a2", "a:a3", "b:b1")
				waitIdle(t, s)
				checkHits(t, ep, tt.want)
			})
		})
	}
}

// TTL-based: once a failed delivery is done, what its conversation held
// behind it is sent at once, the drain period, in which a failed one is
// retried behind the others: order is not kept. Then order is kept again.
func TestWebhookTTLBasedDrain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ep := &fakeEndpoint{fail: map[string]int{"a1": 1, "a2": 1, "a5": 1}}
		s := fakeApp(t, ep, 0, func(s *Server) { s.WebhookRetention = time.Hour })
		say(t, s, "a:a1", "a:a2", "a:a3")
		time.Sleep(3 * time.Second) // a1 delivered at 2 s: the drain period, a2 retried at 4 s
		say(t, s, "a:a4")           // in the drain period: sent at once, before a2
		waitIdle(t, s)
		time.Sleep(time.Minute) // the drain period is over: order is kept again
		say(t, s, "a:a5", "a:a6")
		waitIdle(t, s)
		checkHits(t, ep, []hit{
			{0, "a1", 500}, {2 * time.Second, "a1", 200},
			{2 * time.Second, "a2", 500}, {2 * time.Second, "a3", 200},
			{3 * time.Second, "a4", 200}, {4 * time.Second, "a2", 200},
			{64 * time.Second, "a5", 500}, {66 * time.Second, "a5", 200}, {66 * time.Second, "a6", 200},
		})
	})
}

// TTL-based: a delivery is tried for as long as it is younger than the
// retention, and one its conversation held behind another until it was as
// old is dropped, never sent.
func TestWebhookTTLBasedExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Answers take 4 s: a1 fails at 4 s, and at 10 s, when the next
		// pause, 4 s, would make it older than 10 s; a2 is 10 s old then.
		ep := &fakeEndpoint{delay: 4 * time.Second, fail: map[string]int{"a1": 100}}
		s := fakeApp(t, ep, 0, func(s *Server) { s.WebhookRetention = 10 * time.Second })
		say(t, s, "a:a1", "a:a2")
		waitIdle(t, s)
		checkHits(t, ep, []hit{{4 * time.Second, "a1", 500}, {10 * time.Second, "a1", 500}})
		ds := s.Deliveries()
		if len(ds) != 2 || ds[0].Delivered() || len(ds[1].Attempts) != 0 {
			t.Errorf("deliveries %+v, want a1 failed and a2 dropped unsent", ds)
		}
	})
}

// Start refuses a retention LivePerson does not take.
func TestWebhookRetentionBounds(t *testing.T) {
	for _, d := range []time.Duration{time.Second, 259201 * time.Second, -time.Second} {
		s := NewUnstartedServer()
		s.WebhookRetention = d
		if err := s.configureWebhooks(); err == nil {
			t.Errorf("WebhookRetention %v: no error, want one", d)
		}
	}
	for _, d := range []time.Duration{0, 2 * time.Second, 259200 * time.Second} {
		s := NewUnstartedServer()
		s.WebhookRetention = d
		if err := s.configureWebhooks(); err != nil {
			t.Errorf("WebhookRetention %v: %v", d, err)
		}
	}
}

// An endpoint slower than the threshold for the window gets the app
// disabled: the deliveries pending are dropped, no new one is queued, and
// WebhooksDisabled says why. A fast answer starts the window again.
func TestWebhookDisableRule(t *testing.T) {
	tests := []struct {
		name         string
		set          func(*Server)
		delay        time.Duration
		messages     int
		wantAttempts int // before the app is disabled; -1: never
	}{
		{"LivePerson's: 2.5 s for 2 minutes", func(*Server) {}, 3 * time.Second, 60, 40},
		{"2.5 s is not slower than 2.5 s", func(*Server) {}, 2500 * time.Millisecond, 60, -1},
		{"settable: 1 s for 10 s", func(s *Server) {
			s.WebhookTiming = WebhookTiming{SlowAnswer: time.Second, SlowWindow: 10 * time.Second}
		}, 2 * time.Second, 20, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ep := &fakeEndpoint{delay: tt.delay}
				s := fakeApp(t, ep, 0, tt.set)
				for i := range tt.messages {
					say(t, s, "a:"+string(rune('A'+i%26))+string(rune('a'+i/26)))
				}
				waitIdle(t, s)
				err := s.WebhooksDisabled()
				if tt.wantAttempts < 0 {
					if err != nil || len(ep.hits()) != tt.messages {
						t.Errorf("WebhooksDisabled() = %v after %d attempts; want nil after %d", err, len(ep.hits()), tt.messages)
					}
					return
				}
				if err == nil || !strings.Contains(err.Error(), WebhookContentEvent) {
					t.Fatalf("WebhooksDisabled() = %v, want why, naming the webhook", err)
				}
				if got := len(ep.hits()); got != tt.wantAttempts {
					t.Errorf("%d attempts, want %d, then none", got, tt.wantAttempts)
				}
				say(t, s, "b:late")
				waitIdle(t, s)
				if got := len(s.Deliveries()); got != tt.messages {
					t.Errorf("%d deliveries, want %d: none queued once disabled", got, tt.messages)
				}
				if got := len(ep.hits()); got != tt.wantAttempts {
					t.Errorf("%d attempts after disabling, want %d", got, tt.wantAttempts)
				}
			})
		})
	}
	t.Run("a fast answer starts the window again", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ep := &fakeEndpoint{delay: 3 * time.Second, fail: map[string]int{}}
			s := fakeApp(t, ep, 0, func(*Server) {})
			for i := range 30 { // 90 s of slow answers
				say(t, s, "a:slow"+string(rune('a'+i)))
			}
			waitIdle(t, s)
			ep.mu.Lock()
			ep.delay = 0
			ep.mu.Unlock()
			say(t, s, "a:fast")
			waitIdle(t, s)
			ep.mu.Lock()
			ep.delay = 3 * time.Second
			ep.mu.Unlock()
			for i := range 30 { // 90 s more
				say(t, s, "a:again"+string(rune('a'+i)))
			}
			waitIdle(t, s)
			if err := s.WebhooksDisabled(); err != nil {
				t.Errorf("WebhooksDisabled() = %v, want nil: no 2 minutes of slow answers in a row", err)
			}
		})
	})
}
