// Package appjwttest provides a LivePerson stand-in for tests, in the way
// net/http/httptest provides an HTTP server: a connector that passes
// against it should not fail against LivePerson for anything LivePerson
// documents.
//
// [NewServer] starts a TLS server on loopback that answers as LivePerson's
// Connector API pages say LivePerson does:
//
//   - the Domain API: GET /api/account/{account}/service/{service}/baseURI.json?version=1.0
//     for the services "sentinel", "asyncMessagingEnt" and "idp", all pointing
//     at the server itself, and GET /api/account/{account}/service/baseURI.json?version=1.0,
//     which lists them all, {"baseURIs":[{"service":...,"account":...,"baseURI":...},...]};
//     over plain http too, on a listener of its own, with
//     [Server.DomainAPIHTTPListener];
//   - Sentinel: POST /sentinel/api/account/{account}/app/token?v=1.0, which
//     takes grant_type=client_credentials and the credentials in the form
//     body or the query string, as LivePerson's pages show both, and issues
//     RS256-signed AppJWTs with Sentinel's claim set, plus a jti that makes
//     every token unique; with ?v=2.0 instead, as LivePerson's Functions
//     pages give it, it is a request of Sentinel's v2 API, answered as
//     below (a scope in the form body is taken);
//   - ConsumerJWS: POST /api/account/{account}/consumer?v=1.0, which takes
//     {"ext_consumer_id":"..."} and answers 201 with {"token":"<ConsumerJWS>"},
//     a token with the claims of LivePerson's sample (account_id,
//     ext_consumer_id, lp_consumer_id) plus a jti;
//   - the Send API's CONVERSATION: POST /api/account/{account}/messaging/consumer/conversation?v=3,
//     which sets the consumer's profile and opens a conversation;
//   - the Send API's SEND: POST /api/account/{account}/messaging/consumer/conversation/send?v=3,
//     which publishes one event in a conversation, or closes it;
//   - Sentinel's v2 token API: POST /sentinel/api/v2/account/{account}/app/token,
//     which takes grant_type=client_credentials and the credentials in the
//     form body only, refuses credentials in the URL, and answers
//     {"access_token":"...","token_type":"Bearer","expires_in":"3600"}: an
//     RS256 JWT with the claims of an AppJWT but scope, signed with a key of
//     its own, named by its kid;
//   - Sentinel's JWKS: GET /sentinel/well-known/jwks, that key as a JWK Set;
//   - a v2 API of the server's own, GET /appjwttest/v2/account/{account}/whoami
//     ([V2APIPath]), which takes only "Authorization: Bearer <token>" with
//     a token of the v2 token API, as LivePerson's APIs other than the
//     Connector API take them.
//
// It also delivers webhook notifications to the connector's endpoints
// ([Server.SetWebhooks]), as LivePerson's Connector API webhooks do.
//
// A test points appjwt at it with [Server.Context] and [Server.Host], counts
// and reads the requests each endpoint got ([Server.Requests]), reads the
// conversations ([Server.Conversations]), and injects failures with
// [Server.QueueFaults] and [Server.SetFault]. The command
// github.com/lpconnect/appjwt/cmd/appjwttest runs it outside a test, for
// curl or a connector written in another language.
//
// # Send API
//
// CONVERSATION takes, as LivePerson documents it, a JSON array of two
// requests in this order: userprofile.SetUserProfile, which LivePerson
// says is mandatory, then cm.ConsumerRequestConversation:
//
//	[{"kind":"req","id":"1,","type":"userprofile.SetUserProfile","body":{}},
//	 {"kind":"req","id":"2,","type":"cm.ConsumerRequestConversation","body":{"brandId":"le12345678","channelType":"MESSAGING"}}]
//
// The profile's body may be empty, or carry authenticatedData.lp_sdes, an
// array of "ctmrinfo" and "personal" SDEs, the two kinds LivePerson takes.
// The conversation request needs brandId, the account, and channelType
// MESSAGING (without channelType, it is taken with a [Note]: see
// Fidelity), and may carry ttrDefName (NORMAL, URGENT or PRIORITIZED),
// skillId, campaignInfo and conversationContext. A consumer
// has at most one open conversation. The answer is 200 with one entry per
// request:
//
//	[{"code":"OK","body":{"msg":"OK User Profile set successfully"},"reqId":"1,"},
//	 {"code":"OK","body":{"conversationId":"<UUID>"},"reqId":"2,"}]
//
// SEND takes one JSON request and answers 200 with
// {"reqId":"1","code":"OK","body":{...}}. reqId is the request's id, a
// string whether the id was a string or a number, as in LivePerson's
// examples. The requests:
//
//   - ms.PublishEvent, with dialogId the conversationId and an event: a
//     ContentEvent (contentType text/plain, a message), a ChatStateEvent
//     (chatState ACTIVE, INACTIVE, GONE, COMPOSING or PAUSE) or an
//     AcceptStatusEvent (status ACCEPT, READ, ACCESS, NACK or ACTION, and a
//     sequenceList of the sequences it is about). ContentEvents and
//     AcceptStatusEvents take the conversation's next sequence, from 0,
//     answered as "body":{"sequence":0}; a ChatStateEvent takes none, as in
//     LivePerson's notifications, and is answered "body":{}.
//   - cm.UpdateConversationField with conversationId and conversationField
//     {"field":"ConversationStateField","conversationState":"CLOSE"} (or a
//     one-element array of it, as the Messaging Window API sends it), which
//     closes the conversation, answered "body":{}.
//   - userprofile.SetUserProfile, which LivePerson's SEND page lists too,
//     answered as in CONVERSATION.
//
// Any other request or event is 400. For a conversation that is closed or
// that the server never opened, SEND answers 400 with errorCode 40001:
// LivePerson documents no answer for these. For a conversation of another
// consumer it answers 401 with errorCode 40103, as LivePerson warns it
// does.
//
// Both take a Client-Properties header, as LivePerson's samples send it on
// every request: {"type":".ClientProperties","features":["AUTO_MESSAGES"]},
// a JSON object whose type, if present, is ".ClientProperties" (or
// "ClientProperties", with a [Note]) and whose features, if present, are
// strings; otherwise they answer 400 with errorCode 40001. Bodies over 1 MiB are 400 too. [Server.Conversation]
// and [Server.Conversations] tell what each conversation holds: state,
// profile, features and events; the server keeps them, and the requests,
// for as long as it runs. [Server.CloseConversation] closes one as
// an agent would.
//
// # Webhooks
//
// [Server.SetWebhooks] registers, as an app installation's
// capabilities.webhooks does, one endpoint per event type with its
// max_retries (0 to 5):
//
//	srv := appjwttest.NewUnstartedServer()
//	srv.WebhookClient = endpoint.Client() // endpoint: an httptest.NewTLSServer
//	srv.Start()
//	srv.SetWebhooks(map[string]appjwttest.Webhook{
//		appjwttest.WebhookContentEvent:       {Endpoint: endpoint.URL + "/lp/events", MaxRetries: 3},
//		appjwttest.WebhookConversationChange: {Endpoint: endpoint.URL + "/lp/conversations", MaxRetries: 3},
//	})
//
// From then on each event of a conversation is delivered to the webhook
// of its type, if one is registered, as one notification in LivePerson's
// shape,
//
//	{"kind":"notification","body":{"changes":[{"sequence":1,"originatorId":"<id>",
//	 "originatorMetadata":{"id":"<id>","role":"ASSIGNED_AGENT"},"serverTimestamp":1528371199686,
//	 "event":{"type":"ContentEvent","message":"hello","contentType":"text/plain"},
//	 "dialogId":"<conversationId>","conversationId":"<conversationId>"}]},"type":"ms.MessagingEventNotification"}
//
// (LivePerson's Webhooks Examples page shows dialogId; the signed fixture
// of LivePerson's demo app carries conversationId too, which the demo app,
// botium and Microsoft's handoff sample route by),
//
// POSTed with Content-Type application/json and LivePerson's headers:
// X-Liveperson-Account-Id, X-Liveperson-Client-Id and
// X-Liveperson-Signature, "sha1=" and the base64 HMAC-SHA1 of the body's
// bytes keyed with the client secret ([webhook.Sign]). The events are
// the consumer's, which SEND published and which LivePerson echoes with
// role CONSUMER (ContentEvent, ChatStateEvent, AcceptStatusEvent); the
// agent's, which a test publishes with [Server.AgentMessage],
// [Server.AgentChatState] and [Server.AgentPublish], with role
// ASSIGNED_AGENT; and, to cqm.ExConversationChangeNotification, a
// conversation's opening (CONVERSATION) and closing (SEND's close, closeReason
// CONSUMER, or [Server.CloseConversation], closeReason AGENT), each an
// UPSERT of its conversationDetails. Chat states carry no sequence and no
// serverTimestamp; times are the server's clock, in ms.
//
// A delivery succeeds when an attempt is answered 200 or 201; anything
// else, a redirect, or no answer within the timeouts (5 s to connect,
// TLS included, then 5 s to read the answer) is a failure, tried again
// with the same bytes, under one of the two policies of LivePerson's
// webhooks retry policy page:
//
//   - count-based (deprecated by LivePerson, the default here): after a
//     pause of 30 s, max_retries times at most. Each webhook's deliveries
//     are attempted one at a time, in the order of the events; a retry is
//     queued behind what came meanwhile: order is not kept.
//   - TTL-based, with [Server.WebhookRetention] (the installation's
//     retention_time): after pauses of 2, 4, 8 s and so on, doubling up to
//     5 minutes, for as long as the delivery is younger than the
//     retention. A conversation's notifications keep their order: while
//     one is tried, the next wait behind it, and those older than the
//     retention by then are dropped unsent. When one that failed is done,
//     delivered or given up, the drain period starts: those held behind
//     it, and those that come while any of these is not done, are sent at
//     once, and one that fails is retried behind the others, as
//     LivePerson says order is not kept then. LivePerson does not say more
//     of the drain period: this is the server's model of it.
//
// [Server.WebhookTiming] shortens the pauses and timeouts for tests;
// on testing/synctest's fake clock they need no shortening.
// [Server.QueueWebhookFaults] makes the next notifications of a webhook
// duplicated, reordered, signed with another secret, or padded past a
// size cap.
//
// LivePerson says that "apps with at least one endpoint responding slower
// than 2.5 seconds over 2 minutes may be disabled ... without prior
// warning": the server does so when every attempt to one endpoint took
// longer than [WebhookTiming.SlowAnswer] (2.5 s) for
// [WebhookTiming.SlowWindow] (2 minutes); a faster answer starts the
// window again. From then on nothing is delivered, and
// [Server.WebhooksDisabled] tells why.
//
// [Server.Deliveries] tells what was delivered and every attempt's
// answer, status and body; [Server.WaitWebhooks] waits for the deliveries
// pending. The server keeps them for as long as it runs; Close ends every
// delivery, and waits for its goroutines.
//
// Endpoints are https URLs only, as LivePerson's. The deliveries' client
// trusts the system's roots by default, which an httptest server's
// certificate is not signed by: [Server.WebhookClient] is the client
// that trusts it.
//
// # Fidelity
//
// The server is as strict as LivePerson documents a rule, where nothing
// LivePerson publishes contradicts it: a connector that passes here should
// not fail against LivePerson for it, and one that breaks the rule should
// fail here. Where LivePerson's pages contradict each other, or its own
// published clients send something else, the server takes the request, as
// LivePerson does, and records a [Note] that a test can read with
// [Server.Notes], to demand the documented form all the same. With
// [Server.Strict] it answers those requests with the documented 400
// instead. The rules it is lenient with, and why (each a Rule of a Note):
//
//   - [RuleDomainAPIJSON]: the Domain API's path without ".json": LivePerson
//     documents baseURI.json; botium asks baseURI. Strict: 400.
//   - [RuleConversationChannelType]: a cm.ConsumerRequestConversation
//     without channelType: LivePerson's CONVERSATION page calls {"brandId"}
//     alone the minimal payload, while its table marks channelType
//     mandatory; botium sends none. Strict: 400, errorCode 40001.
//   - [RuleClientPropertiesType]: a Client-Properties header of type
//     "ClientProperties": LivePerson's pages show ".ClientProperties";
//     botium sends it without the dot, and LivePerson's clients send both.
//     Strict: 400, errorCode 40001.
//   - [RuleCampaignInfoNumbers]: a campaignInfo whose campaignId or
//     engagementId is a number: LivePerson's pages show strings; LivePerson's
//     demo app sends numbers. Strict: 400, errorCode 40001.
//   - [RuleConsumerVersion]: a ConsumerJWS request without v: LivePerson's
//     pages put v=1.0 in the URI; botium sends none, and what LivePerson
//     answers is not documented. Strict: 400, errorCode 40001.
//
// A note is recorded when the server takes the departure, even if the
// request then fails for another reason.
//
// The server takes, with no note, what LivePerson documents in more than
// one form: grant_type and the credentials in Sentinel's query or form
// body (the Get AppJWT page, the OAuth 2.0 page); a v2 token from the v1
// path with ?v=2.0 (the Functions external-invocation page); the Domain
// API over http (the Domain API page); and cm.UpdateConversationField's
// conversationField as a one-element array (the Messaging Window API). It
// is strict, as LivePerson documents them, on everything else: the
// v of CONVERSATION and SEND, the raw AppJWT (see [Server.AcceptBearer]: whether
// LivePerson takes "Bearer" is not documented), the ConsumerJWS, brandId,
// the batch of CONVERSATION and the requests and events of SEND. Where
// LivePerson documents no answer (an unknown service, a closed
// conversation, an event the server does not model), the answer is the
// server's own, and says so.
//
// # Errors
//
// The Connector API endpoints (ConsumerJWS, CONVERSATION and SEND) want the
// AppJWT raw, "Authorization: <AppJWT>", as LivePerson documents it; with
// [Server.AcceptBearer] they take "Authorization: Bearer <AppJWT>" too.
// They take AppJWTs of Sentinel's v1 API only, the one LivePerson
// documents for the Connector API: a token of the v2 API is invalid there.
// CONVERSATION and SEND also want, in X-LP-ON-BEHALF, a ConsumerJWS that
// the server issued. They check, in order, the API version in v, the
// AppJWT, the ConsumerJWS, the Client-Properties header and the body, and
// answer what falls short in LivePerson's shape,
//
//	{"kind":"resp","code":401,"body":{"title":"Invalid AppJWT","details":"AppJWT has expired or is invalid","errorCode":40102},"type":".ReqBody$ErrorResp"}
//
// with the HTTP status the errorCode starts with, and LivePerson's title and
// details for it:
//
//   - 40105, "AppJWT is missing", "AUTHORIZATION header is not present":
//     no AppJWT;
//   - 40102, "Invalid AppJWT", "AppJWT has expired or is invalid": the
//     AppJWT is invalid, expired, revoked, or for another account; for a
//     Bearer scheme the server does not take, the details say so after
//     LivePerson's words;
//   - 40001, "Missing parameter", "Brand Id is missing": an AppJWT whose iss
//     is not Sentinel, as LivePerson documents; no brandId;
//   - 40104, "ConsumerJWS is missing", "X_ON_BEHALF_HEADER is not present":
//     no ConsumerJWS;
//   - 40103, "Invalid ConsumerJWS", "ConsumerJWS is invalid": the ConsumerJWS
//     is invalid, expired or revoked, or belongs to another consumer than
//     the conversation.
//
// Every other 400, for a version, header or body LivePerson does not
// document an answer to, has errorCode 40001 and title "Missing parameter"
// too, with details of the server's own that say what is wrong, and never
// quote the request.
//
// [Server.SetRejectCode] makes them answer every request with a given
// errorCode instead, to test how the code under test tells them apart.
//
// # Tokens and the clock
//
// AppJWTs last an hour unless [Server.Lifetime] says otherwise;
// ConsumerJWS carry no exp, as LivePerson's, which "never expires", unless
// [Server.ConsumerJWSLifetime] gives them one. [Server.SetClockSkew]
// skews the server's clock, which dates the tokens and every answer, in its
// Date header, and decides when tokens expire.
//
// [Server.RevokeTokens] revokes every AppJWT issued so far, and
// [Server.RevokeConsumer] every ConsumerJWS of one consumer, so that a test
// can make a cached token go bad before it expires, without waiting.
// [Server.Verify] checks a token as the server does.
//
// # TLS and logging
//
// The server uses net/http/httptest's certificate, valid for 127.0.0.1,
// ::1 and example.com, unless its TLS field says otherwise
// ([NewUnstartedServer]); [Server.Client] trusts it. What net/http logs, such as the TLS handshake
// errors of a client that does not trust the certificate, goes to the
// Server.ErrorLog, and nowhere by default.
package appjwttest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lpconnect/appjwt/secret"
	"golang.org/x/oauth2"
)

// Endpoint names one of the server's endpoints.
type Endpoint int

// The server's endpoints.
const (
	DomainAPI       Endpoint = iota + 1 // the Domain API
	Sentinel                            // Sentinel's AppJWT endpoint
	Consumer                            // the ConsumerJWS endpoint, which checks the AppJWT
	Conversation                        // the Send API's CONVERSATION endpoint, which opens a conversation
	Send                                // the Send API's SEND endpoint, which publishes an event or closes a conversation
	SentinelV2Token                     // Sentinel's v2 token endpoint
	JWKS                                // Sentinel's JWKS, the key of the v2 tokens
	V2API                               // the v2 API, a stand-in for the APIs that take v2 tokens: see V2APIPath
)

// String returns the endpoint's name, as in the constants.
func (e Endpoint) String() string {
	switch e {
	case DomainAPI:
		return "DomainAPI"
	case Sentinel:
		return "Sentinel"
	case Consumer:
		return "Consumer"
	case Conversation:
		return "Conversation"
	case Send:
		return "Send"
	case SentinelV2Token:
		return "SentinelV2Token"
	case JWKS:
		return "JWKS"
	case V2API:
		return "V2API"
	}
	return fmt.Sprintf("Endpoint(%d)", int(e))
}

// Defaults of a new [Server].
const (
	defaultAccountID = "le12345678"
	defaultClientID  = "75588e18-0213-4e33-8174-883acac7e3c4"
	defaultLifetime  = time.Hour
)

// Fault is a failure an endpoint answers a request with instead of its
// normal answer. Delay combines with the other fields; Hang and Reset win
// over Status and Body.
type Fault struct {
	Status     int           // answer with this status; 0: 200 if Body is set, else the normal answer
	RetryAfter string        // the Retry-After header to send with Status
	Body       string        // the body to send instead of the normal one
	Delay      time.Duration // wait this long before answering
	Hang       bool          // never answer, until the client gives up or the server closes
	Reset      bool          // close the connection without an answer
}

// Request is what an endpoint received.
type Request struct {
	Method string
	Path   string     // as escaped on the wire
	Query  url.Values // the URL's query
	Header http.Header
	Form   url.Values // the form body, if any
	Body   []byte     // the body as sent, up to its first MiB; nil if empty

	// The answer: its status, 0 until it is sent or if none was (a fault
	// that hangs or resets); and the error it named, the errorCode of the
	// Connector API's error body (such as "40102") or the error of
	// Sentinel's (such as "invalid_client"), "" if none.
	Status    int
	ErrorCode string
}

// Server is a LivePerson stand-in. Its fields are its settings, fixed at
// Start, as net/http/httptest.Server's are: set them, if at all, between
// [NewUnstartedServer] and [Server.Start]. Its methods are safe for
// concurrent use.
type Server struct {
	// The credentials the server accepts: set them, if at all, before
	// Start. ClientSecret never shows, as [secret.String] says: its
	// value is string(srv.ClientSecret).
	AccountID    string
	ClientID     string
	ClientSecret secret.String

	// Listener, if set before Start, is what the server serves on, instead
	// of a listener on 127.0.0.1 at a port the system picks. The Domain API
	// answers its address as the host of every service.
	Listener net.Listener

	// TLS, if set before Start, is the server's TLS configuration. Without
	// a certificate in it, the server uses net/http/httptest's.
	TLS *tls.Config

	// Strict, if set before Start, makes the server refuse what it
	// otherwise takes with a [Note]: the requests that depart from the form
	// LivePerson documents, where LivePerson's pages contradict each other
	// or its own clients send something else, get the documented 400
	// instead.
	Strict bool

	// DomainAPIHTTPListener, if set before Start, is where the server also
	// serves the Domain API, and only it, over plain http, as LivePerson
	// documents http://api.liveperson.net beside https. Its answers name the
	// https host of every service, as LivePerson's do. The server closes
	// it.
	DomainAPIHTTPListener net.Listener

	// WebhookRetention, if set before Start, puts the app's webhooks under
	// LivePerson's TTL-based retry policy, the app installation's
	// retention_time, from 2 s to 72 h: a failed delivery is tried again
	// after pauses of 2, 4, 8 s and so on, at most 5 minutes each, for as
	// long as it is younger than WebhookRetention, and a conversation's
	// notifications keep their order but in the drain period (see Webhooks
	// in the package documentation); each Webhook's MaxRetries is then
	// unused. Zero, the default, is LivePerson's count-based policy. Start
	// panics for a value out of bounds.
	WebhookRetention time.Duration

	// WebhookTiming, if set before Start, paces webhook deliveries and
	// says when the server disables the app; its zero fields mean
	// LivePerson's values. A test shortens them: on testing/synctest's
	// fake clock they need no shortening.
	WebhookTiming WebhookTiming

	// WebhookClient, if set before Start, is the client that delivers
	// webhook notifications. nil, the default, trusts the system's roots,
	// as LivePerson trusts only certificates valid on the internet: a test
	// whose endpoint is an [httptest.Server] sets its Client, which trusts
	// its certificate. The server uses a copy of it that follows no
	// redirect (a 3xx is a failed attempt), bounded by WebhookTiming
	// besides its own Timeout, and closes its idle connections on Close.
	WebhookClient *http.Client

	// Lifetime, if set before Start, is the lifetime of the AppJWTs the
	// server issues, by either token API. Zero, the default, is an hour,
	// as LivePerson's; with a negative Lifetime they are issued expired.
	Lifetime time.Duration

	// ConsumerJWSLifetime, if set before Start, is the lifetime of the
	// ConsumerJWS the server issues. With zero, the default, they carry no
	// exp claim and never expire, as in LivePerson's sample; with a
	// negative ConsumerJWSLifetime they are issued expired.
	ConsumerJWSLifetime time.Duration

	// AcceptBearer, if set before Start, makes the Connector API endpoints
	// accept an AppJWT sent as "Authorization: Bearer <AppJWT>", as
	// golang.org/x/oauth2 clients send it. By default they accept only the
	// raw "Authorization: <AppJWT>" that LivePerson documents, and answer a
	// Bearer scheme as an invalid AppJWT (errorCode 40102, with details
	// that say why): LivePerson does not document that it takes one.
	// Accepting it suits code aimed at APIs that want it.
	AcceptBearer bool

	// ErrorLog, if set before Start, is where the server logs what
	// net/http logs: TLS handshake errors, such as those of a client that
	// does not trust the server's certificate, and the like. nil, the
	// default, logs nothing.
	ErrorLog *log.Logger

	ts       *httptest.Server
	domainTS *httptest.Server // over plain http, with DomainAPIHTTPListener
	closing  chan struct{}
	closed   sync.Once

	mu       sync.Mutex
	skew     time.Duration
	issuer   string // "Sentinel" but in the package's tests
	queued   map[Endpoint][]Fault
	sticky   map[Endpoint]Fault
	requests map[Endpoint][]Request
	notes    []Note

	rejectCode int

	// A token is valid while the generation it was issued in is current.
	appGen  int            // bumped by RevokeTokens
	appJWTs map[string]int // the jti of each AppJWT issued: appGen then

	consumerGen  map[string]int            // per ext_consumer_id, bumped by RevokeConsumer
	consumerJWSs map[string]issuedConsumer // per jti
	lpConsumers  map[string]string         // lp_consumer_id per ext_consumer_id

	convs     map[string]*conversation // per conversationId
	convOrder []*conversation          // oldest first
	openConv  map[string]*conversation // the open one per ext_consumer_id
	agentID   string                   // the participant ID of every conversation's agent

	hooks *webhooks // its own lock, taken under mu, never the other way
}

// issuedConsumer is what the server remembers of a ConsumerJWS it issued.
type issuedConsumer struct {
	extConsumerID string
	gen           int // consumerGen[extConsumerID] when issued
}

// signingKey is the key all servers of the process sign with: generating an
// RSA key per server would make every test pay for it.
var signingKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic("appjwttest: generating the signing key: " + err.Error())
	}
	return k
})

// NewServer starts a server on 127.0.0.1 with the default account and
// client ID, a random client secret and one-hour AppJWTs. Close it when
// done.
func NewServer() *Server {
	s := NewUnstartedServer()
	s.Start()
	return s
}

// NewUnstartedServer returns a server as NewServer does, but not started,
// so that its fields can be set first. Start it with
// [Server.Start]; its other methods are for a started server.
func NewUnstartedServer() *Server {
	return &Server{
		AccountID:    defaultAccountID,
		ClientID:     defaultClientID,
		ClientSecret: secret.String(randomString()),
		closing:      make(chan struct{}),
		issuer:       "Sentinel",
		queued:       map[Endpoint][]Fault{},
		sticky:       map[Endpoint]Fault{},
		requests:     map[Endpoint][]Request{},
		appJWTs:      map[string]int{},
		consumerGen:  map[string]int{},
		consumerJWSs: map[string]issuedConsumer{},
		lpConsumers:  map[string]string{},
		convs:        map[string]*conversation{},
		openConv:     map[string]*conversation{},
		agentID:      newUUID(),
		hooks:        newWebhooks(),
	}
}

// Start starts a server from [NewUnstartedServer]. It panics if the server
// has been started already.
func (s *Server) Start() {
	if s.ts != nil {
		panic("appjwttest: Server started twice")
	}
	if err := s.configureWebhooks(); err != nil {
		panic(err.Error())
	}
	mux := http.NewServeMux()
	s.handleDomain(mux)
	mux.HandleFunc("POST /sentinel/api/account/{account}/app/token", s.handle(Sentinel, s.serveToken))
	mux.HandleFunc("POST /api/account/{account}/consumer", s.handle(Consumer, s.serveConsumer))
	mux.HandleFunc("POST /api/account/{account}/messaging/consumer/conversation", s.handle(Conversation, s.serveConversation))
	mux.HandleFunc("POST /api/account/{account}/messaging/consumer/conversation/send", s.handle(Send, s.serveSend))
	s.handleV2(mux)
	if s.Listener != nil {
		s.ts = &httptest.Server{Listener: s.Listener, Config: &http.Server{Handler: s.dated(mux)}}
	} else {
		s.ts = httptest.NewUnstartedServer(s.dated(mux))
	}
	// Without a logger of its own, net/http logs to the standard logger.
	s.ts.Config.ErrorLog = cmp.Or(s.ErrorLog, log.New(io.Discard, "", 0))
	s.ts.TLS = s.TLS
	s.ts.StartTLS()
	if s.DomainAPIHTTPListener != nil {
		plain := http.NewServeMux()
		s.handleDomain(plain)
		s.domainTS = &httptest.Server{Listener: s.DomainAPIHTTPListener, Config: &http.Server{Handler: s.dated(plain)}}
		s.domainTS.Config.ErrorLog = s.ts.Config.ErrorLog
		s.domainTS.Start()
	}
}

// Close shuts the server down, ending hanging requests and webhook
// deliveries first, and waits for all requests and deliveries to finish:
// no goroutine of the server outlives it.
func (s *Server) Close() {
	s.closed.Do(func() { close(s.closing) })
	s.hooks.close()
	if s.ts == nil {
		for _, l := range []net.Listener{s.Listener, s.DomainAPIHTTPListener} {
			if l != nil {
				l.Close()
			}
		}
		return
	}
	if s.domainTS != nil {
		s.domainTS.Close()
	}
	s.ts.Close()
}

// Host returns the server's host:port, for appjwt.Config's Domain or DomainAPI.
func (s *Server) Host() string { return s.ts.Listener.Addr().String() }

// URL returns the server's base URL, "https://127.0.0.1:port".
func (s *Server) URL() string { return s.ts.URL }

// Client returns an HTTP client that trusts the server's certificate. It
// carries no token.
func (s *Server) Client() *http.Client { return s.ts.Client() }

// Context returns a child of parent that carries [Server.Client] under
// [oauth2.HTTPClient], so that appjwt reaches the server through it.
func (s *Server) Context(parent context.Context) context.Context {
	return context.WithValue(parent, oauth2.HTTPClient, s.Client())
}

// SetClockSkew makes the server's clock run d ahead of the real one (behind
// if d is negative). The clock dates every answer, in its Date header, and
// the tokens the server issues, and decides when they expire.
func (s *Server) SetClockSkew(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.skew = d
}

// SetRejectCode makes the Connector API endpoints answer every request,
// whatever it carries, with LivePerson's error body with the given
// errorCode, such as 40102 (AppJWT invalid) or 40103 (ConsumerJWS
// invalid), and LivePerson's texts for it; 0 ends it. The HTTP status is
// the errorCode's first three digits, 400 for 40001, or 401 for an
// errorCode that does not start with a 4xx status. Faults win over it.
func (s *Server) SetRejectCode(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejectCode = code
}

// QueueFaults makes the next len(faults) requests to e fail, one fault each,
// in order.
func (s *Server) QueueFaults(e Endpoint, faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queued[e] = append(s.queued[e], faults...)
}

// SetFault makes every request to e that finds no queued fault fail with f,
// until ClearFault.
func (s *Server) SetFault(e Endpoint, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sticky[e] = f
}

// ClearFault ends what SetFault started.
func (s *Server) ClearFault(e Endpoint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sticky, e)
}

// Requests returns the requests e has received, oldest first.
func (s *Server) Requests(e Endpoint) []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests[e]...)
}

// now reads the server's clock.
func (s *Server) now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Now().Add(s.skew)
}

type nowKey struct{}

// dated reads the server's clock once per request, so that an answer's Date
// header and the iat of the token in it agree to the second, and lets h
// find the reading with requestTime.
func (s *Server) dated(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := s.now()
		// net/http dates an answer only if the handler has not.
		w.Header().Set("Date", now.UTC().Format(http.TimeFormat))
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), nowKey{}, now)))
	})
}

// requestTime returns the server's time at which r arrived.
func requestTime(r *http.Request) time.Time {
	if t, ok := r.Context().Value(nowKey{}).(time.Time); ok {
		return t
	}
	return time.Now()
}

// handle records each request to e and answers it with a fault, if one is
// due, or else with h.
func (s *Server) handle(e Endpoint, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rec := &answerRecorder{ResponseWriter: w}
		i, f, ok := s.record(e, r)
		if !ok || !s.inject(rec, r, f) {
			h(rec, r)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.requests[e][i].Status, s.requests[e][i].ErrorCode = rec.status, rec.errorCode()
	}
}

// answerRecorder notes the status of an answer, and the start of its body
// if it is an error, for [Request].
type answerRecorder struct {
	http.ResponseWriter
	status int
	body   []byte // up to maxErrorPrefix bytes of an error's body
}

// maxErrorPrefix is as much of an error's body as errorCode reads: the
// stand-in's error bodies are shorter.
const maxErrorPrefix = 4 << 10

func (a *answerRecorder) WriteHeader(status int) {
	if a.status == 0 {
		a.status = status
	}
	a.ResponseWriter.WriteHeader(status)
}

func (a *answerRecorder) Write(b []byte) (int, error) {
	if a.status == 0 {
		a.status = http.StatusOK
	}
	if a.status >= 400 {
		a.body = append(a.body, b[:min(len(b), maxErrorPrefix-len(a.body))]...)
	}
	return a.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection, to hang up.
func (a *answerRecorder) Unwrap() http.ResponseWriter { return a.ResponseWriter }

// errorCode returns the error an error answer named, as [Request] says.
func (a *answerRecorder) errorCode() string {
	var body struct {
		Body struct {
			ErrorCode json.Number `json:"errorCode"`
		} `json:"body"`
		Error string `json:"error"`
	}
	if a.status < 400 || json.Unmarshal(a.body, &body) != nil {
		return ""
	}
	return cmp.Or(body.Body.ErrorCode.String(), body.Error)
}

// record notes r, returns its index in s.requests[e], and pops the fault
// it should get, if any.
func (s *Server) record(e Endpoint, r *http.Request) (int, Fault, bool) {
	// A body over the cap is cut one byte past it, so that the handlers'
	// own cap still rejects it; ParseForm reads a copy, so that a JSON body
	// sent as a form, as curl -d sends it, still reaches them whole.
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ParseForm()
	r.Body = io.NopCloser(bytes.NewReader(body))
	req := Request{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.Query(), Header: r.Header.Clone(), Form: r.PostForm}
	if len(body) > 0 {
		req.Body = body[:min(len(body), maxBody)]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests[e] = append(s.requests[e], req)
	i := len(s.requests[e]) - 1
	if q := s.queued[e]; len(q) > 0 {
		s.queued[e] = q[1:]
		return i, q[0], true
	}
	f, ok := s.sticky[e]
	return i, f, ok
}

// inject carries out f, reporting whether it answered the request.
func (s *Server) inject(w http.ResponseWriter, r *http.Request, f Fault) bool {
	if f.Delay > 0 && !s.sleep(r, f.Delay) {
		hangUp(w)
		return true
	}
	switch {
	case f.Hang:
		select {
		case <-r.Context().Done():
		case <-s.closing:
		}
		hangUp(w)
		return true
	case f.Reset:
		hangUp(w)
		return true
	case f.Status == 0 && f.Body == "":
		return false
	}
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	w.WriteHeader(cmp.Or(f.Status, http.StatusOK))
	w.Write([]byte(f.Body))
	return true
}

// hangUp closes the connection without an answer: had the handler just
// returned, net/http would write an empty 200, which a client still
// reading takes for one.
func hangUp(w http.ResponseWriter) {
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		conn.Close()
	}
}

// sleep waits d, or less if the request ends or the server closes first.
func (s *Server) sleep(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
	case <-s.closing:
	}
	return false
}

// domainServices are the services of the Domain API, all of them served
// by the server.
var domainServices = []string{"sentinel", "asyncMessagingEnt", "idp"}

// handleDomain registers the Domain API: one service, or all of them,
// with .json as LivePerson documents it, and without, as botium asks it.
func (s *Server) handleDomain(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/account/{account}/service/{service}/baseURI.json", s.handle(DomainAPI, s.serveDomain))
	mux.HandleFunc("GET /api/account/{account}/service/{service}/baseURI", s.handle(DomainAPI, s.serveDomain))
	mux.HandleFunc("GET /api/account/{account}/service/baseURI.json", s.handle(DomainAPI, s.serveDomain))
	mux.HandleFunc("GET /api/account/{account}/service/baseURI", s.handle(DomainAPI, s.serveDomain))
}

// domainBaseURI is one service's answer of the Domain API.
type domainBaseURI struct {
	Service string `json:"service"`
	Account string `json:"account"`
	BaseURI string `json:"baseURI"`
}

func (s *Server) serveDomain(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, ".json") && !s.lenient(DomainAPI, RuleDomainAPIJSON,
		"a path without .json: LivePerson documents baseURI.json; botium asks baseURI") {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "the path ends in baseURI.json"})
		return
	}
	if r.URL.Query().Get("version") != "1.0" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "version=1.0 is required"})
		return
	}
	if r.PathValue("account") != s.AccountID {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid site"})
		return
	}
	svc := r.PathValue("service")
	if svc == "" {
		all := make([]domainBaseURI, len(domainServices))
		for i, svc := range domainServices {
			all[i] = domainBaseURI{svc, s.AccountID, s.Host()}
		}
		writeJSON(w, http.StatusOK, map[string][]domainBaseURI{"baseURIs": all})
		return
	}
	if !slices.Contains(domainServices, svc) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown service " + svc})
		return
	}
	writeJSON(w, http.StatusOK, domainBaseURI{svc, s.AccountID, s.Host()})
}

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	// LivePerson's Functions external-invocation page asks a v2 token here.
	if q.Get("v") == "2.0" {
		s.serveTokenV2(w, r)
		return
	}
	// LivePerson's pages put grant_type in the query (Get AppJWT) or in the
	// form body (OAuth 2.0 Client Credentials).
	if q.Get("v") != "1.0" || cmp.Or(r.PostForm.Get("grant_type"), q.Get("grant_type")) != "client_credentials" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "v=1.0 (or 2.0) and grant_type=client_credentials are required"})
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "Content-Type must be application/x-www-form-urlencoded"})
		return
	}
	creds := r.PostForm
	if creds.Get("client_id") == "" {
		creds = q
	}
	if r.PathValue("account") != s.AccountID || creds.Get("client_id") != s.ClientID || creds.Get("client_secret") != string(s.ClientSecret) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client", "error_description": "client authentication failed"})
		return
	}
	claims, _ := s.appClaims(r)
	claims["scope"] = "msg.consumer"
	tok := sign(claims)
	writeJSON(w, http.StatusOK, map[string]string{"access_token": tok, "token_type": "Bearer"})
}

// appClaims are the claims of a new AppJWT, recorded as issued now (the
// request's time) so that RevokeTokens reaches it, and its lifetime.
func (s *Server) appClaims(r *http.Request) (map[string]any, time.Duration) {
	now, jti := requestTime(r), nextJTI()
	s.mu.Lock()
	issuer := s.issuer
	s.appJWTs[jti] = s.appGen
	s.mu.Unlock()
	lifetime := cmp.Or(s.Lifetime, defaultLifetime)
	claims := map[string]any{
		"aud": s.AccountID,
		"azp": s.ClientID,
		"iat": now.Unix(),
		"exp": now.Add(lifetime).Unix(),
		"jti": jti,
	}
	if issuer != "" {
		claims["iss"] = issuer
	}
	return claims, lifetime
}

// writeJSON answers v in JSON, with <, > and & as they are, as LivePerson
// writes them.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

func randomString() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
