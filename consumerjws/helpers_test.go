package consumerjws

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/lpconnect/appjwt"
	"github.com/lpconnect/appjwt/appjwttest"
	"github.com/lpconnect/appjwt/internal/testkit"
	"golang.org/x/oauth2"
)

// clockOf gives c a clock that the test moves.
func clockOf(c *Cache) *testkit.Clock {
	clk := &testkit.Clock{}
	c.now = clk.Now
	return clk
}

// stand is an appjwttest server with an AppJWT source for it, whose
// Sentinel host is set so that Domain API counts are the idp's alone.
type stand struct {
	srv *appjwttest.Server
	ctx context.Context
	src oauth2.TokenSource
}

func newStand(t testing.TB, configure ...func(*appjwttest.Server)) *stand {
	t.Helper()
	srv := testkit.NewServer(t, configure...)
	ctx := srv.Context(context.Background())
	app := appjwt.Config{AccountID: srv.AccountID, ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, Domain: srv.Host()}
	return &stand{srv: srv, ctx: ctx, src: app.TokenSource(ctx)}
}

// cache returns a Cache for the stand, with the idp host from its Domain
// API and short retry pauses, after edit changes its Config.
func (s *stand) cache(edit func(*Config)) *Cache {
	cfg := Config{AccountID: s.srv.AccountID, DomainAPI: s.srv.Host(), Source: s.src}
	if edit != nil {
		edit(&cfg)
	}
	c := cfg.NewCache(s.ctx)
	c.retry = testkit.FastRetry
	return c
}

// client is the chained client: ConsumerJWS over AppJWT over the stand.
func (s *stand) client(c *Cache, base http.RoundTripper) *http.Client {
	if base == nil {
		base = s.srv.Client().Transport
	}
	return &http.Client{Transport: &Transport{Cache: c, Base: &appjwt.Transport{Source: s.src, Base: base}}}
}

// conversationBody opens a conversation, as the Send API's CONVERSATION takes it:
// the consumer's profile first, then the conversation request.
func conversationBody(account string) string {
	return `[{"kind":"req","id":"1,","type":"userprofile.SetUserProfile","body":{}},` +
		`{"kind":"req","id":"2,","type":"cm.ConsumerRequestConversation","body":{"brandId":"` + account + `","channelType":"MESSAGING"}}]`
}

// conversation sends CONVERSATION on behalf of consumer, with a body that
// can be sent again, and has the stand-in close the conversation it opens,
// so that the consumer, who may have one open at a time, can open another.
func (s *stand) conversation(t *testing.T, client *http.Client, consumer string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(WithConsumer(context.Background(), consumer), http.MethodPost,
		s.srv.URL()+"/api/account/"+s.srv.AccountID+"/messaging/consumer/conversation?v=3",
		strings.NewReader(conversationBody(s.srv.AccountID)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var opened []struct {
		Body struct{ ConversationID string }
	}
	json.NewDecoder(resp.Body).Decode(&opened)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	for _, o := range opened {
		s.srv.CloseConversation(o.Body.ConversationID)
	}
	return resp
}

// counts is what a test expects each endpoint to have received.
type counts struct{ DomainAPI, Sentinel, Consumer, Conversation, Send int }

func (s *stand) counts() counts {
	return counts{
		DomainAPI:    len(s.srv.Requests(appjwttest.DomainAPI)),
		Sentinel:     len(s.srv.Requests(appjwttest.Sentinel)),
		Consumer:     len(s.srv.Requests(appjwttest.Consumer)),
		Conversation: len(s.srv.Requests(appjwttest.Conversation)),
		Send:         len(s.srv.Requests(appjwttest.Send)),
	}
}

// lpError is LivePerson's 401 body with errorCode code.
func lpError(code int) string {
	return fmt.Sprintf(`{"kind":"resp","code":401,"body":{"title":"t","details":"d","errorCode":%d},"type":".ReqBody$ErrorResp"}`, code)
}

// settle waits for the running fetch of consumer id, if any.
func settle(c *Cache, id string) {
	c.mu.Lock()
	f := c.flights[id]
	c.mu.Unlock()
	if f != nil {
		<-f.Done()
	}
}

// fakeIdP answers every ConsumerJWS request at once, in memory, with a
// token of LivePerson's size (about 560 bytes, as appjwttest's) that
// names the consumer, and counts them.
type fakeIdP struct {
	mu       sync.Mutex
	requests int
	gate     func(body string) // called before answering, if set
}

var jwsPad = strings.Repeat("s", 520)

func (f *fakeIdP) RoundTrip(r *http.Request) (*http.Response, error) {
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if f.gate != nil {
		f.gate(string(b))
	}
	f.mu.Lock()
	f.requests++
	n := f.requests
	f.mu.Unlock()
	body := fmt.Sprintf(`{"token":"eyJhbGciOiJSUzI1NiJ9.%d.%s"}`, n, jwsPad)
	return &http.Response{
		StatusCode: http.StatusCreated, Status: "201 Created", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body)), Request: r,
	}, nil
}

func (f *fakeIdP) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

// fakeCache is a Cache whose requests go to idp, in memory.
func fakeCache(idp *fakeIdP, max int) *Cache {
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: idp})
	cfg := Config{AccountID: "le1", Domain: "idp.example", Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "app.jwt.signature-of-the-appjwt"}), MaxConsumers: max}
	c := cfg.NewCache(ctx)
	c.retry = testkit.FastRetry
	return c
}
