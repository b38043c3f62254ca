package brands_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lpconnect/appjwt"
	"github.com/lpconnect/appjwt/appjwttest"
	"github.com/lpconnect/appjwt/brands"
	"github.com/lpconnect/appjwt/consumerjws"
	"github.com/lpconnect/appjwt/internal/testkit"
	"github.com/lpconnect/appjwt/secret"
	"github.com/lpconnect/appjwt/store"
	"github.com/lpconnect/appjwt/webhook"
	"golang.org/x/oauth2"
)

// standIns starts one stand-in per account, each with its own client id
// and secret, and returns them with a lookup that knows their
// installations and counts its calls.
func standIns(t *testing.T, accounts ...string) (map[string]*appjwttest.Server, *lookup) {
	t.Helper()
	srvs := map[string]*appjwttest.Server{}
	l := &lookup{inst: map[string]brands.Installation{}}
	for i, a := range accounts {
		srvs[a] = testkit.NewServer(t, func(s *appjwttest.Server) {
			s.AccountID, s.ClientID = a, fmt.Sprintf("client-%d", i)
		})
		s := srvs[a]
		l.inst[a] = brands.Installation{ClientID: s.ClientID, ClientSecret: s.ClientSecret, DomainAPI: s.Host()}
	}
	return srvs, l
}

// lookup is a Config.Lookup over a map, which counts its calls.
type lookup struct {
	mu    sync.Mutex
	inst  map[string]brands.Installation
	calls map[string]int
	total atomic.Int64
}

func (l *lookup) find(_ context.Context, account string) (brands.Installation, error) {
	l.total.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.calls == nil {
		l.calls = map[string]int{}
	}
	l.calls[account]++
	inst, ok := l.inst[account]
	if !ok {
		return brands.Installation{}, brands.ErrUnknownBrand
	}
	return inst, nil
}

func (l *lookup) set(account string, inst brands.Installation) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inst[account] = inst
}

func newCache(t *testing.T, ctx context.Context, c brands.Config) *brands.Cache {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	k, err := c.NewCache(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// open opens a conversation for consumer on account's Send API, through
// client, as the README's connector does.
func open(ctx context.Context, client *http.Client, host, account, consumer string) error {
	body := `[{"kind":"req","id":"1,","type":"userprofile.SetUserProfile","body":{}},` +
		`{"kind":"req","id":"2,","type":"cm.ConsumerRequestConversation","body":{"brandId":"` + account + `","channelType":"MESSAGING"}}]`
	ctx = consumerjws.WithConsumer(ctx, consumer)
	req, err := http.NewRequestWithContext(ctx, "POST", "https://"+host+"/api/account/"+account+"/messaging/consumer/conversation?v=3", strings.NewReader(body))
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
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("send API: %s %s", resp.Status, b)
	}
	return nil
}

// Two brands with different credentials, through one client and one
// Verifier: each stand-in sees only its own brand's AppJWT and ConsumerJWS,
// each brand gets its own Send API host, and each webhook verifies only
// with its own brand's secret.
func TestBrandsNeverCross(t *testing.T) {
	srvs, l := standIns(t, "le1111", "le2222")
	ctx := srvs["le1111"].Context(context.Background()) // trusts both: httptest's certificate
	k := newCache(t, ctx, brands.Config{Lookup: l.find})
	client := k.Client()
	for i, account := range []string{"le1111", "le2222", "le1111"} {
		host, err := k.SendAPIHost(ctx, account)
		if err != nil {
			t.Fatal(err)
		}
		if want := srvs[account].Host(); host != want {
			t.Errorf("Send API host of %s: got %s, want %s", account, host, want)
		}
		if err := open(ctx, client, host, account, fmt.Sprint("consumer-", i)); err != nil {
			t.Fatalf("%s: %v", account, err)
		}
	}
	for account, s := range srvs {
		if got := len(s.Requests(appjwttest.Sentinel)); got != 1 {
			t.Errorf("%s: Sentinel got %d requests, want 1", account, got)
		}
		// Each stand-in checks that the AppJWT and the ConsumerJWS are of
		// its account and client: a crossed token is a 401.
		convs := s.Requests(appjwttest.Conversation)
		if got := len(s.Requests(appjwttest.Consumer)); got != len(convs) {
			t.Errorf("%s: %d ConsumerJWS requests, want %d, one per consumer", account, got, len(convs))
		}
		for _, r := range convs {
			cl, err := appjwt.ParseClaims(r.Header.Get("Authorization"))
			if err != nil {
				t.Fatal(err)
			}
			if cl.Audience != account || cl.AuthorizedParty != s.ClientID {
				t.Errorf("%s: the Send API got an AppJWT for %s, %s; want %s, %s", account, cl.Audience, cl.AuthorizedParty, account, s.ClientID)
			}
		}
		if want := map[string]int{"le1111": 2, "le2222": 1}[account]; len(convs) != want {
			t.Errorf("%s: %d conversations, want %d", account, len(convs), want)
		}
	}

	v, err := k.NewVerifier(webhook.Config{})
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"kind":"notification"}`)
	tests := []struct {
		name            string
		account, client string
		signedBy        secret.String
		ok              bool
	}{
		{"brand 1", "le1111", srvs["le1111"].ClientID, srvs["le1111"].ClientSecret, true},
		{"brand 2", "le2222", srvs["le2222"].ClientID, srvs["le2222"].ClientSecret, true},
		{"brand 1 signed with brand 2's secret", "le1111", srvs["le1111"].ClientID, srvs["le2222"].ClientSecret, false},
		{"brand 1 with brand 2's client id", "le1111", srvs["le2222"].ClientID, srvs["le2222"].ClientSecret, false},
	}
	for _, tt := range tests {
		h := http.Header{webhook.HeaderAccountID: {tt.account}, webhook.HeaderClientID: {tt.client}, webhook.HeaderSignature: {webhook.Sign(tt.signedBy, body)}}
		if err := v.Verify(h, body); (err == nil) != tt.ok {
			t.Errorf("%s: %v, want ok %t", tt.name, err, tt.ok)
		}
	}
	if got := l.total.Load(); got != 2 {
		t.Errorf("%d lookups, want 2, one per brand", got)
	}

	// De-duplication keys include the account.
	if k.Seen("le1111", "conv", 1) || !k.Seen("le1111", "conv", 1) || k.Seen("le2222", "conv", 1) {
		t.Error("Seen does not tell accounts apart")
	}
}

// 1,000 forged account ids, each sent 3 times as a webhook and as a
// request, cost one lookup each, and none when sent again within 5
// minutes; nothing is sent for them.
func TestForgedAccounts(t *testing.T) {
	l := &lookup{inst: map[string]brands.Installation{}}
	var sent atomic.Int64
	base := testkit.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent.Add(1)
		return nil, errors.New("sent")
	})
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: base})
	k := newCache(t, ctx, brands.Config{Lookup: l.find})
	v, err := k.NewVerifier(webhook.Config{})
	if err != nil {
		t.Fatal(err)
	}
	client := k.Client()
	body := []byte(`{}`)
	const forged = 1000
	for round := range 2 {
		var wg sync.WaitGroup
		for i := range forged {
			account := fmt.Sprint(90000000 + i)
			for range 3 {
				wg.Go(func() {
					h := http.Header{webhook.HeaderAccountID: {account}, webhook.HeaderClientID: {"app"}, webhook.HeaderSignature: {webhook.Sign("guess", body)}}
					if err := v.Verify(h, body); !errors.Is(err, webhook.ErrUnauthorized) {
						t.Errorf("webhook for forged account: %v, want ErrUnauthorized", err)
					}
					_, err := client.Get("https://example.invalid/api/account/" + account + "/messaging/consumer/conversation")
					if !errors.Is(err, brands.ErrUnknownBrand) {
						t.Errorf("request for forged account: %v, want ErrUnknownBrand", err)
					}
				})
			}
		}
		wg.Wait()
		if got := l.total.Load(); got != forged {
			t.Errorf("round %d: %d lookups for %d forged ids sent 6 times each, want %d", round, got, forged, forged)
		}
	}
	if n := sent.Load(); n != 0 {
		t.Errorf("%d requests sent for forged accounts, want 0", n)
	}
	if h := k.Health(); len(h) != 0 {
		t.Errorf("Health lists %d brands, want none: unknown accounts are not brands", len(h))
	}
	// A request that names no account, or two, fails before a lookup.
	req, _ := http.NewRequestWithContext(brands.WithAccount(context.Background(), "le1"), "GET", "https://example.invalid/api/account/le2/x", nil)
	if _, err := client.Do(req); err == nil || !strings.Contains(err.Error(), "different accounts") {
		t.Errorf("two accounts: %v, want an error that says so", err)
	}
	if _, err := client.Get("https://example.invalid/v1/x"); err == nil || !strings.Contains(err.Error(), "names no account") {
		t.Errorf("no account: %v, want an error that says so", err)
	}
	if got := l.total.Load(); got != forged {
		t.Errorf("%d lookups, want %d", got, forged)
	}
}

// While an installation's secret is rotated, webhooks signed with either
// secret verify; the token side moves to the secret Sentinel takes, either
// the installation's other one, or a new lookup's.
func TestRotation(t *testing.T) {
	srvs, l := standIns(t, "le1111", "le2222")
	ctx := srvs["le1111"].Context(context.Background())
	newSecret := srvs["le1111"].ClientSecret
	inst := l.inst["le1111"]
	inst.ClientSecret, inst.PreviousSecret = "old-secret", newSecret
	l.set("le1111", inst)
	inst2 := l.inst["le2222"]
	realSecret2 := inst2.ClientSecret
	inst2.ClientSecret = "stale-secret"
	l.set("le2222", inst2)
	k := newCache(t, ctx, brands.Config{Lookup: l.find})

	v, err := k.NewVerifier(webhook.Config{})
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{}`)
	for _, tt := range []struct {
		signedBy secret.String
		ok       bool
	}{{"old-secret", true}, {newSecret, true}, {"other", false}} {
		h := http.Header{webhook.HeaderAccountID: {"le1111"}, webhook.HeaderClientID: {inst.ClientID}, webhook.HeaderSignature: {webhook.Sign(tt.signedBy, body)}}
		if err := v.Verify(h, body); (err == nil) != tt.ok {
			t.Errorf("signed with the %v secret: %v, want ok %t", tt.signedBy == newSecret, err, tt.ok)
		}
	}

	// Brand 1: Sentinel refuses ClientSecret; the request goes through on
	// the previous secret.
	client := k.Client()
	host1 := srvs["le1111"].Host()
	if err := open(ctx, client, host1, "le1111", "c1"); err != nil {
		t.Fatalf("brand 1: %v", err)
	}
	if got := len(srvs["le1111"].Requests(appjwttest.Sentinel)); got != 2 {
		t.Errorf("brand 1: Sentinel got %d requests, want 2: the refused secret, the other", got)
	}

	// Brand 2: its one secret is refused; a new lookup finds the new one.
	inst2.ClientSecret = realSecret2
	req, _ := http.NewRequestWithContext(ctx, "POST", "https://"+srvs["le2222"].Host()+"/api/account/le2222/consumer?v=1.0", bytes.NewReader([]byte(`{"ext_consumer_id":"c2"}`)))
	req.Header.Set("Content-Type", "application/json")
	if _, err := k.SendAPIHost(ctx, "le2222"); err != nil { // the brand is held, with the stale secret
		t.Fatal(err)
	}
	l.set("le2222", inst2) // the secret manager has the new one
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("brand 2: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("brand 2: ConsumerJWS request answered %s, want 201", resp.Status)
	}
	if got := l.calls["le2222"]; got != 2 {
		t.Errorf("brand 2: %d lookups, want 2: the first, and one after invalid_client", got)
	}
}

// A path that could name another account once normalised is refused
// before anything is sent; a prefix in another case is the account too,
// so that it cannot disagree with the context's (review).
func TestPathsThatCouldNameAnotherAccount(t *testing.T) {
	l := &lookup{inst: map[string]brands.Installation{"A1": {ClientID: "c", ClientSecret: "s"}}}
	var sent atomic.Int64
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: testkit.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent.Add(1)
		return nil, errors.New("sent")
	})})
	client := newCache(t, ctx, brands.Config{Lookup: l.find}).Client()
	tests := []struct {
		path, want string
	}{
		{"/api/account/A1/../B2/messaging/consumer/conversation", "could name another account"},
		{"/api/account/A1%2F..%2FB2/messaging", "could name another account"},
		{"/api/account/A1%5c..%5cB2/messaging", "could name another account"},
		{"/api/account/A1/api/account/B2/x", "could name another account"},
		{"/api/account/A1/./x", "could name another account"},
	}
	for _, tt := range tests {
		req, err := http.NewRequest("GET", "https://example.invalid"+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.Do(req); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error that it %s", tt.path, err, tt.want)
		}
	}
	req, _ := http.NewRequestWithContext(brands.WithAccount(context.Background(), "A1"), "GET", "https://example.invalid/API/ACCOUNT/B2/x", nil)
	if _, err := client.Do(req); err == nil || !strings.Contains(err.Error(), "different accounts") {
		t.Errorf("/API/ACCOUNT/B2 with A1 in the context: %v, want the two accounts refused", err)
	}
	if n := sent.Load(); n != 0 {
		t.Errorf("%d requests sent, want none", n)
	}
}

// Notifications for forged accounts, which anyone can send, take only
// half the lookup queue: a request's brand is still looked up, and its
// token fetched, while they wait (review: they locked it out).
func TestForgedNotificationsLeaveRoomForRequests(t *testing.T) {
	release, started := make(chan struct{}), make(chan struct{}, 2000)
	srvs, l := standIns(t, "real1")
	slow := func(ctx context.Context, account string) (brands.Installation, error) {
		if strings.HasPrefix(account, "forged") {
			started <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return l.find(ctx, account)
	}
	k := newCache(t, srvs["real1"].Context(context.Background()), brands.Config{Lookup: slow})
	v, err := k.NewVerifier(webhook.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 2000 {
		wg.Go(func() {
			h := http.Header{webhook.HeaderAccountID: {fmt.Sprintf("forged%d", i)}, webhook.HeaderClientID: {"app"}, webhook.HeaderSignature: {"sha1=AAAA"}}
			v.Verify(h, []byte(`{}`))
		})
	}
	for range 32 { // half of the 64 lookup slots: all the notifications may take
		<-started
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // the lookup's own timeout is 30 s
	defer cancel()
	host, err := k.SendAPIHost(ctx, "real1")
	if err != nil || host != srvs["real1"].Host() {
		t.Errorf("SendAPIHost(real1) with 2,000 forged notifications waiting: %q, %v; want the stand-in's host", host, err)
	}
	close(release)
	wg.Wait()
}

// With a Store, two replicas' Caches share what they saw, per account: a
// copy at the other replica is dropped while the first holds its claim
// and once it is Done; another account's event is another event.
func TestSeenAcrossReplicas(t *testing.T) {
	ctx := t.Context()
	s := store.NewMemory(0)
	lookup := func(context.Context, string) (brands.Installation, error) {
		return brands.Installation{}, brands.ErrUnknownBrand
	}
	a := newCache(t, ctx, brands.Config{Lookup: lookup, Store: s})
	b := newCache(t, ctx, brands.Config{Lookup: lookup, Store: s})
	for _, st := range []struct {
		name string
		k    *brands.Cache
		acct string
		want bool
	}{
		{"a claims", a, "le1111", false},
		{"b, while a holds the claim", b, "le1111", true},
		{"b, another account", b, "le2222", false},
	} {
		if got := st.k.Seen(st.acct, "conv", 1); got != st.want {
			t.Errorf("%s: Seen = %t, want %t", st.name, got, st.want)
		}
	}
	a.Done("le1111", "conv", 1)
	b.Forget("le1111", "conv", 1) // not b's claim: nothing happens
	if !b.Seen("le1111", "conv", 1) {
		t.Error("b: Seen after a's Done = false")
	}
	b.Forget("le2222", "conv", 1)
	if a.Seen("le2222", "conv", 1) {
		t.Error("a: Seen after b gave its claim back = true")
	}
}
