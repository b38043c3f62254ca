package appjwttest_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/lpconnect/appjwt/appjwttest"
)

// newStrictServer starts a server that refuses what LivePerson's pages
// contradict each other on.
func newStrictServer(t *testing.T) *appjwttest.Server {
	s := appjwttest.NewUnstartedServer()
	s.Strict = true
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// rules returns the rules of notes.
func rules(notes []appjwttest.Note) []string {
	var out []string
	for _, n := range notes {
		out = append(out, n.Rule)
	}
	return out
}

// Each request LivePerson's published clients send, exactly as they send
// it, gets the answer LivePerson gives; where it departs from the form
// LivePerson documents, with a note, and, from a strict server, the
// documented 400.
func TestLivePersonClientsRequests(t *testing.T) {
	// Each request is sent by a newSender's consumer, so that the tokens
	// are in place; the CONVERSATION and SEND bodies are the clients'.
	tests := []struct {
		name string
		// request sends the client's request; body is its answer.
		request    func(c *sender) (*http.Response, string)
		wantStatus int
		check      func(t *testing.T, s *appjwttest.Server, body string) // the answer LivePerson gives
		wantRule   string                                                // the note it leaves; "": none
		strict     int                                                   // the strict server's status
	}{
		{
			name: "Domain API, all services (demo app, Functions client, agent SDK)",
			request: func(c *sender) (*http.Response, string) {
				return do(c.t, c.s, "GET", "/api/account/"+c.s.AccountID+"/service/baseURI.json?version=1.0", "", "", nil)
			},
			wantStatus: 200, check: checkBaseURIs, strict: 200,
		},
		{
			name: "Domain API, all services, without .json (botium)",
			request: func(c *sender) (*http.Response, string) {
				return do(c.t, c.s, "GET", "/api/account/"+c.s.AccountID+"/service/baseURI?version=1.0", "", "", nil)
			},
			wantStatus: 200, check: checkBaseURIs, wantRule: appjwttest.RuleDomainAPIJSON, strict: 400,
		},
		{
			name: "Domain API, one service, without .json",
			request: func(c *sender) (*http.Response, string) {
				return do(c.t, c.s, "GET", "/api/account/"+c.s.AccountID+"/service/idp/baseURI?version=1.0", "", "", nil)
			},
			wantStatus: 200,
			check: func(t *testing.T, s *appjwttest.Server, body string) {
				if want := `{"service":"idp","account":"` + s.AccountID + `","baseURI":"` + s.Host() + `"}`; strings.TrimSpace(body) != want {
					t.Errorf("answer %s, want %s", body, want)
				}
			},
			wantRule: appjwttest.RuleDomainAPIJSON, strict: 400,
		},
		{
			name: "token with ?v=2.0 (Functions client)",
			request: func(c *sender) (*http.Response, string) {
				body := "grant_type=client_credentials&scope=&client_id=" + url.QueryEscape(c.s.ClientID) + "&client_secret=" + url.QueryEscape(string(c.s.ClientSecret))
				return do(c.t, c.s, "POST", "/sentinel/api/account/"+c.s.AccountID+"/app/token?v=2.0", form, body, nil)
			},
			wantStatus: 200,
			check: func(t *testing.T, s *appjwttest.Server, body string) {
				var tok struct {
					AccessToken string `json:"access_token"`
					TokenType   string `json:"token_type"`
					ExpiresIn   string `json:"expires_in"`
				}
				if err := json.Unmarshal([]byte(body), &tok); err != nil {
					t.Fatalf("answer %s: %v", body, err)
				}
				if tok.TokenType != "Bearer" || tok.ExpiresIn != "3600" {
					t.Errorf("token_type %q, expires_in %q, want Bearer and 3600, as from the v2 API", tok.TokenType, tok.ExpiresIn)
				}
				if _, err := s.Verify(appjwttest.SentinelV2Token, tok.AccessToken); err != nil {
					t.Errorf("Verify(SentinelV2Token): %v, want a v2 token", err)
				}
			},
			strict: 200,
		},
		{
			name: "CONVERSATION, brandId only (botium)",
			request: func(c *sender) (*http.Response, string) {
				return c.post("conversation", batch(`{}`, `{"brandId":"{account}"}`), nil)
			},
			wantStatus: 200, check: checkOpened, wantRule: appjwttest.RuleConversationChannelType, strict: 400,
		},
		{
			name: "Client-Properties without the leading dot (botium)",
			request: func(c *sender) (*http.Response, string) {
				return c.post("conversation", minimalConversation, http.Header{"Client-Properties": {`{"type":"ClientProperties","features":["AUTO_MESSAGES"]}`}})
			},
			wantStatus: 200, check: checkOpened, wantRule: appjwttest.RuleClientPropertiesType, strict: 400,
		},
		{
			name: "campaignInfo with numbers (LivePerson's demo app)",
			request: func(c *sender) (*http.Response, string) {
				return c.post("conversation", batch(`{}`, `{"brandId":"{account}","channelType":"MESSAGING","campaignInfo":{"campaignId":99999,"engagementId":888888}}`), nil)
			},
			wantStatus: 200, check: checkOpened, wantRule: appjwttest.RuleCampaignInfoNumbers, strict: 400,
		},
		{
			name: "ConsumerJWS without v (botium)",
			request: func(c *sender) (*http.Response, string) {
				return do(c.t, c.s, "POST", "/api/account/"+c.s.AccountID+"/consumer", "application/json", `{"ext_consumer_id":"botium"}`, http.Header{"Authorization": {c.app}})
			},
			wantStatus: 201,
			check: func(t *testing.T, s *appjwttest.Server, body string) {
				var got struct{ Token string }
				json.Unmarshal([]byte(body), &got)
				if ext, err := s.Verify(appjwttest.Consumer, got.Token); err != nil || ext != "botium" {
					t.Errorf("Verify(Consumer) = %q, %v; want botium's ConsumerJWS", ext, err)
				}
			},
			wantRule: appjwttest.RuleConsumerVersion, strict: 400,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			resp, body := tt.request(newSender(t, s, "john"))
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tt.wantStatus)
			}
			tt.check(t, s, body)
			var want []string
			if tt.wantRule != "" {
				want = []string{tt.wantRule}
			}
			notes := s.Notes()
			if diff := cmp.Diff(want, rules(notes)); diff != "" {
				t.Errorf("notes %v (-want +got):\n%s", notes, diff)
			}
			for _, n := range notes {
				if n.Detail == "" || n.Endpoint == 0 {
					t.Errorf("note %+v: want an endpoint and a detail", n)
				}
			}

			t.Run("strict", func(t *testing.T) {
				s := newStrictServer(t)
				resp, body := tt.request(newSender(t, s, "john"))
				if resp.StatusCode != tt.strict {
					t.Errorf("status %d (%s), want %d", resp.StatusCode, body, tt.strict)
				}
				if resp.StatusCode == 400 && resp.Header.Get("Content-Type") != "application/json" {
					t.Errorf("Content-Type %q, want application/json", resp.Header.Get("Content-Type"))
				}
				if notes := s.Notes(); len(notes) != 0 {
					t.Errorf("a strict server noted %v, want nothing", notes)
				}
			})
		})
	}
}

// checkBaseURIs checks the Domain API's answer for all services: every
// service the server serves, on the server.
func checkBaseURIs(t *testing.T, s *appjwttest.Server, body string) {
	t.Helper()
	var entries []string
	for _, svc := range []string{"sentinel", "asyncMessagingEnt", "idp"} {
		entries = append(entries, `{"service":"`+svc+`","account":"`+s.AccountID+`","baseURI":"`+s.Host()+`"}`)
	}
	if want := `{"baseURIs":[` + strings.Join(entries, ",") + `]}`; strings.TrimSpace(body) != want {
		t.Errorf("answer\n%s\nwant\n%s", body, want)
	}
}

// checkOpened checks a CONVERSATION's answer: a conversation opened.
func checkOpened(t *testing.T, _ *appjwttest.Server, body string) {
	t.Helper()
	checkAnswer(t, 200, body, 200, openedAnswer, lpErrorBody{})
}

// A strict server answers the documented 400s, in LivePerson's shape,
// with details that say what the documented form is.
func TestStrictAnswers(t *testing.T) {
	s := newStrictServer(t)
	c := newSender(t, s, "john")
	tests := []struct {
		name    string
		request func() (*http.Response, string)
		details string
	}{
		{"CONVERSATION, brandId only", func() (*http.Response, string) {
			return c.post("conversation", batch(`{}`, `{"brandId":"{account}"}`), nil)
		}, "cm.ConsumerRequestConversation: channelType is missing"},
		{"Client-Properties without the dot", func() (*http.Response, string) {
			return c.post("conversation", minimalConversation, http.Header{"Client-Properties": {`{"type":"ClientProperties"}`}})
		}, badProperties},
		{"campaignInfo with numbers", func() (*http.Response, string) {
			return c.post("conversation", batch(`{}`, `{"brandId":"{account}","channelType":"MESSAGING","campaignInfo":{"campaignId":"1","engagementId":2}}`), nil)
		}, "cm.ConsumerRequestConversation: campaignInfo's campaignId and engagementId are strings"},
		{"ConsumerJWS without v", func() (*http.Response, string) {
			return do(t, s, "POST", "/api/account/"+s.AccountID+"/consumer", "application/json", `{"ext_consumer_id":"john"}`, http.Header{"Authorization": {c.app}})
		}, "the query parameter v must be 1.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := tt.request()
			checkAnswer(t, resp.StatusCode, body, 400, "", missingParameter(tt.details))
		})
	}
}

// The lenient server still refuses what nobody documents or sends: the
// notes cover one departure each, not its neighbours.
func TestLenienceIsNarrow(t *testing.T) {
	s := newServer(t)
	c := newSender(t, s, "john")
	tests := []struct {
		name    string
		request func() (*http.Response, string)
		details string
	}{
		{"Client-Properties of another type", func() (*http.Response, string) {
			return c.post("conversation", minimalConversation, http.Header{"Client-Properties": {`{"type":"clientproperties"}`}})
		}, badProperties},
		{"campaignId an object", func() (*http.Response, string) {
			return c.post("conversation", batch(`{}`, `{"brandId":"{account}","channelType":"MESSAGING","campaignInfo":{"campaignId":{}}}`), nil)
		}, "cm.ConsumerRequestConversation: campaignInfo.campaignId has the wrong JSON type"},
		{"channelType other than MESSAGING", func() (*http.Response, string) {
			return c.post("conversation", batch(`{}`, `{"brandId":"{account}","channelType":"CHAT"}`), nil)
		}, "cm.ConsumerRequestConversation: channelType must be MESSAGING"},
		{"ConsumerJWS with an empty v", func() (*http.Response, string) {
			return do(t, s, "POST", "/api/account/"+s.AccountID+"/consumer?v=", "application/json", `{"ext_consumer_id":"john"}`, http.Header{"Authorization": {c.app}})
		}, "the query parameter v must be 1.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := tt.request()
			checkAnswer(t, resp.StatusCode, body, 400, "", missingParameter(tt.details))
		})
	}
	if notes := s.Notes(); len(notes) != 0 {
		t.Errorf("notes %v, want none", notes)
	}
}

// With DomainAPIHTTPListener, the Domain API answers over plain http too,
// as LivePerson documents http://api.liveperson.net, naming the https
// host of every service; nothing else is served there.
func TestDomainAPIOverHTTP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := appjwttest.NewUnstartedServer()
	s.DomainAPIHTTPListener = l
	s.Start()
	t.Cleanup(s.Close)
	base := "http://" + l.Addr().String()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	status, body := get("/api/account/" + s.AccountID + "/service/baseURI.json?version=1.0")
	if status != 200 {
		t.Fatalf("status %d (%s), want 200", status, body)
	}
	checkBaseURIs(t, s, body)
	if status, body := get("/api/account/" + s.AccountID + "/service/sentinel/baseURI.json?version=1.0"); status != 200 || !strings.Contains(body, `"baseURI":"`+s.Host()+`"`) {
		t.Errorf("one service: %d %s, want 200 naming %s", status, body, s.Host())
	}
	if status, _ := get(tokenPath(s)); status != http.StatusNotFound {
		t.Errorf("Sentinel over http: status %d, want 404: only the Domain API is served there", status)
	}
	if got := len(s.Requests(appjwttest.DomainAPI)); got != 2 {
		t.Errorf("requests to DomainAPI = %d, want 2", got)
	}
}

// Webhook changes carry conversationId beside dialogId, as the signed
// fixture of LivePerson's demo app does, and as LivePerson's demo app,
// botium and Microsoft's handoff sample route by.
func TestWebhookChangesCarryConversationID(t *testing.T) {
	s := appjwttest.NewUnstartedServer()
	ep := newEndpoint(t)
	hook(t, s, ep, 0, appjwttest.WebhookContentEvent)
	conv := newSender(t, s, "john").open()
	if _, err := s.AgentMessage(conv, "hello"); err != nil {
		t.Fatal(err)
	}
	ds := wait(t, s)
	if len(ds) != 1 {
		t.Fatalf("%d deliveries, want 1", len(ds))
	}
	var n struct {
		Body struct {
			Changes []struct{ DialogID, ConversationID string }
		}
	}
	if err := json.Unmarshal(ds[0].Body, &n); err != nil || len(n.Body.Changes) != 1 {
		t.Fatalf("notification %s: %v", ds[0].Body, err)
	}
	if ch := n.Body.Changes[0]; ch.DialogID != conv || ch.ConversationID != conv {
		t.Errorf("dialogId %q, conversationId %q, want both %q", ch.DialogID, ch.ConversationID, conv)
	}
}
