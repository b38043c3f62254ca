// Package appjwttest provides a LivePerson stand-in for tests, in the way
// net/http/httptest provides an HTTP server.
//
// [NewServer] starts a TLS server on loopback that answers as LivePerson
// does:
//
//   - the Domain API: GET /api/account/{account}/service/{service}/baseURI.json?version=1.0
//     for the services "sentinel", "asyncMessagingEnt" and "idp", all pointing
//     at the server itself;
//   - Sentinel: POST /sentinel/api/account/{account}/app/token?v=1.0&grant_type=client_credentials,
//     which checks the credentials (form body or query string) and issues
//     RS256-signed AppJWTs with Sentinel's claim set, plus a jti that makes
//     every token unique;
//   - ConsumerJWS: POST /api/account/{account}/consumer?v=1.0, which takes
//     {"ext_consumer_id":"..."} and answers 201 with {"token":"<ConsumerJWS>"},
//     a token with the claims of LivePerson's sample (account_id,
//     ext_consumer_id, lp_consumer_id) plus a jti;
//   - the Send API's CONVERSATION: POST /api/account/{account}/messaging/consumer/conversation?v=3,
//     which takes a JSON array of requests, one of them a
//     cm.ConsumerRequestConversation, and answers 200 with a response to each,
//     in order: a new conversationId for the cm.ConsumerRequestConversation;
//   - the Send API's SEND: POST /api/account/{account}/messaging/consumer/conversation/send?v=3,
//     which takes one JSON request, such as an ms.PublishEvent, and answers
//     200 with its response.
//
// A test points appjwt at it with [Server.Context] and [Server.Host], counts
// and reads the requests each endpoint got ([Server.Requests]), reads the
// conversations CONVERSATION opened ([Server.Conversations]), closes one as
// an agent would ([Server.CloseConversation]), and injects failures with
// [Server.QueueFaults] and [Server.SetFault].
//
// # Connector API
//
// The last three endpoints are LivePerson's Connector API. They want the
// AppJWT raw, "Authorization: <AppJWT>", as LivePerson documents it; with
// [Server.SetAcceptBearer] they take "Authorization: Bearer <AppJWT>" too.
// The Send API also wants, in X-LP-ON-BEHALF, a ConsumerJWS that the
// server issued. They check, in order, the API version in v (400 if it is
// missing or wrong), the AppJWT, the ConsumerJWS, and the body (400 if it
// is not what they take). They reject credentials with 401 and LivePerson's
// body,
//
//	{"kind":"resp","code":401,"body":{"title":"...","details":"...","errorCode":40102},"type":".ReqBody$ErrorResp"}
//
// whose errorCode says why:
//
//   - 40105: no AppJWT;
//   - 40102: the AppJWT is invalid, expired, revoked, or for another
//     account, or has a Bearer scheme the server does not accept;
//   - 40104: no ConsumerJWS (Send API);
//   - 40103: the ConsumerJWS is invalid, expired or revoked (Send API).
//
// [Server.SetRejectCode] makes them answer every request with a given
// errorCode instead, to test how the code under test tells them apart.
//
// # Tokens and the clock
//
// AppJWTs last an hour unless [Server.SetLifetime] says otherwise;
// ConsumerJWS carry no exp, as LivePerson's, unless
// [Server.SetConsumerJWSLifetime] gives them one. [Server.SetClockSkew]
// skews the server's clock, which dates the tokens and every answer, in its
// Date header, and decides when tokens expire.
//
// [Server.RevokeTokens] revokes every AppJWT issued so far, and
// [Server.RevokeConsumer] every ConsumerJWS of one consumer, so that a test
// can make a cached token go bad before it expires, without waiting.
// [Server.Verify] and [Server.VerifyConsumerJWS] check tokens as the
// server does.
//
// # TLS and logging
//
// The server uses net/http/httptest's certificate, valid for 127.0.0.1,
// ::1 and example.com, unless its TLS field says otherwise
// ([NewUnstartedServer]); [Server.Certificate] returns it and
// [Server.Client] trusts it. What net/http logs, such as the TLS handshake
// errors of a client that does not trust the certificate, goes to the
// logger [Server.SetErrorLog] sets, and nowhere by default.
package appjwttest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
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
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
)

// Endpoint names one of the server's endpoints.
type Endpoint int

// The server's endpoints.
const (
	DomainAPI    Endpoint = iota + 1 // the Domain API
	Sentinel                         // Sentinel's AppJWT endpoint
	Consumer                         // the ConsumerJWS endpoint, which checks the AppJWT
	Conversation                     // the Send API's CONVERSATION endpoint, which opens a conversation
	Send                             // the Send API's SEND endpoint, which sends one message or a close
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
	}
	return fmt.Sprintf("Endpoint(%d)", int(e))
}

// Defaults of a new [Server].
const (
	DefaultAccountID = "le12345678"
	DefaultClientID  = "75588e18-0213-4e33-8174-883acac7e3c4"
	DefaultLifetime  = time.Hour
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
}

// Server is a LivePerson stand-in. Its methods are safe for concurrent use.
type Server struct {
	// The credentials the server accepts: set them, if at all, before
	// Start.
	AccountID    string
	ClientID     string
	ClientSecret string

	// Listener, if set before Start, is what the server serves on, instead
	// of a listener on 127.0.0.1 at a port the system picks. The Domain API
	// answers its address as the host of every service.
	Listener net.Listener

	// TLS, if set before Start, is the server's TLS configuration. Without
	// a certificate in it, the server uses net/http/httptest's.
	TLS *tls.Config

	ts       *httptest.Server
	closing  chan struct{}
	closed   sync.Once
	errorLog atomic.Pointer[log.Logger]

	mu       sync.Mutex
	lifetime time.Duration
	skew     time.Duration
	queued   map[Endpoint][]Fault
	sticky   map[Endpoint]Fault
	requests map[Endpoint][]Request

	acceptBearer bool
	rejectCode   int

	// A token is valid while the generation it was issued in is current.
	appGen  int            // bumped by RevokeTokens
	appJWTs map[string]int // the jti of each AppJWT issued: appGen then

	consumerLifetime time.Duration
	consumerGen      map[string]int            // per ext_consumer_id, bumped by RevokeConsumer
	consumerJWSs     map[string]issuedConsumer // per jti
	lpConsumers      map[string]string         // lp_consumer_id per ext_consumer_id
	sequence         int                       // of the next message sent

	convs     map[string]*conversation // per conversationId
	convOrder []*conversation          // oldest first
	openConv  map[string]*conversation // the open one per ext_consumer_id
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
// so that its credentials, Listener or TLS can be set first. Start it with
// [Server.Start]; its other methods are for a started server.
func NewUnstartedServer() *Server {
	return &Server{
		AccountID:    DefaultAccountID,
		ClientID:     DefaultClientID,
		ClientSecret: randomString(),
		closing:      make(chan struct{}),
		lifetime:     DefaultLifetime,
		queued:       map[Endpoint][]Fault{},
		sticky:       map[Endpoint]Fault{},
		requests:     map[Endpoint][]Request{},
		appJWTs:      map[string]int{},
		consumerGen:  map[string]int{},
		consumerJWSs: map[string]issuedConsumer{},
		lpConsumers:  map[string]string{},
		convs:        map[string]*conversation{},
		openConv:     map[string]*conversation{},
	}
}

// Start starts a server from [NewUnstartedServer]. It panics if the server
// has been started already.
func (s *Server) Start() {
	if s.ts != nil {
		panic("appjwttest: Server started twice")
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/account/{account}/service/{service}/baseURI.json", s.handle(DomainAPI, s.serveDomain))
	mux.HandleFunc("POST /sentinel/api/account/{account}/app/token", s.handle(Sentinel, s.serveToken))
	mux.HandleFunc("POST /api/account/{account}/consumer", s.handle(Consumer, s.serveConsumer))
	mux.HandleFunc("POST /api/account/{account}/messaging/consumer/conversation", s.handle(Conversation, s.serveConversation))
	mux.HandleFunc("POST /api/account/{account}/messaging/consumer/conversation/send", s.handle(Send, s.serveSend))
	if s.Listener != nil {
		s.ts = &httptest.Server{Listener: s.Listener, Config: &http.Server{Handler: s.dated(mux)}}
	} else {
		s.ts = httptest.NewUnstartedServer(s.dated(mux))
	}
	s.ts.Config.ErrorLog = log.New(errorLogWriter{s}, "", 0)
	s.ts.TLS = s.TLS
	s.ts.StartTLS()
}

// Close shuts the server down, ending hanging requests first, and waits
// for all requests to finish.
func (s *Server) Close() {
	s.closed.Do(func() { close(s.closing) })
	if s.ts == nil {
		if s.Listener != nil {
			s.Listener.Close()
		}
		return
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

// Certificate returns the server's certificate, which [Server.Client]
// trusts, as [httptest.Server.Certificate] does.
func (s *Server) Certificate() *x509.Certificate { return s.ts.Certificate() }

// SetErrorLog sets where the server logs what net/http logs: TLS
// handshake errors, such as those of a client that does not trust the
// server's certificate, and the like. nil, the default, logs nothing.
func (s *Server) SetErrorLog(l *log.Logger) { s.errorLog.Store(l) }

// errorLogWriter passes each line net/http logs to the logger of
// SetErrorLog, if any, without a lock.
type errorLogWriter struct{ s *Server }

func (w errorLogWriter) Write(p []byte) (int, error) {
	if l := w.s.errorLog.Load(); l != nil {
		l.Print(string(p))
	}
	return len(p), nil
}

// Context returns a child of parent that carries [Server.Client] under
// [oauth2.HTTPClient], so that appjwt reaches the server through it.
func (s *Server) Context(parent context.Context) context.Context {
	return context.WithValue(parent, oauth2.HTTPClient, s.Client())
}

// SetLifetime sets the lifetime of the AppJWTs issued from now on. With a
// negative d they are issued expired.
func (s *Server) SetLifetime(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lifetime = d
}

// SetConsumerJWSLifetime sets the lifetime of the ConsumerJWS issued from
// now on. With 0, the default, they carry no exp claim and never expire, as
// in LivePerson's sample; with a negative d they are issued expired.
func (s *Server) SetConsumerJWSLifetime(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.consumerLifetime = d
}

// SetClockSkew makes the server's clock run d ahead of the real one (behind
// if d is negative). The clock dates every answer, in its Date header, and
// the tokens the server issues, and decides when they expire.
func (s *Server) SetClockSkew(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.skew = d
}

// SetAcceptBearer sets whether the Connector API endpoints accept an AppJWT
// sent as "Authorization: Bearer <AppJWT>", as golang.org/x/oauth2 clients
// send it. By default they accept only the raw "Authorization: <AppJWT>"
// that LivePerson documents, and answer a Bearer scheme as an invalid
// AppJWT (errorCode 40102): LivePerson does not document that it takes one.
// Accepting it suits code aimed at APIs that want it.
func (s *Server) SetAcceptBearer(accept bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acceptBearer = accept
}

// SetRejectCode makes the Connector API endpoints answer every request,
// whatever it carries, with LivePerson's 401 body with the given errorCode,
// such as 40102 (AppJWT invalid) or 40103 (ConsumerJWS invalid); 0 ends it.
// Faults win over it.
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

// Count returns how many requests e has received.
func (s *Server) Count(e Endpoint) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests[e])
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
		if f, ok := s.record(e, r); ok && s.inject(w, r, f) {
			return
		}
		h(w, r)
	}
}

// record notes r and pops the fault it should get, if any.
func (s *Server) record(e Endpoint, r *http.Request) (Fault, bool) {
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
	if q := s.queued[e]; len(q) > 0 {
		s.queued[e] = q[1:]
		return q[0], true
	}
	f, ok := s.sticky[e]
	return f, ok
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

func (s *Server) serveDomain(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("version") != "1.0" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "version=1.0 is required"})
		return
	}
	if r.PathValue("account") != s.AccountID {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid site"})
		return
	}
	switch svc := r.PathValue("service"); svc {
	case "sentinel", "asyncMessagingEnt", "idp":
		writeJSON(w, http.StatusOK, map[string]string{"service": svc, "account": s.AccountID, "baseURI": s.Host()})
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown service " + svc})
	}
}

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("v") != "1.0" || q.Get("grant_type") != "client_credentials" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "v=1.0 and grant_type=client_credentials are required"})
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
	if r.PathValue("account") != s.AccountID || creds.Get("client_id") != s.ClientID || creds.Get("client_secret") != s.ClientSecret {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client", "error_description": "client authentication failed"})
		return
	}
	now, jti := requestTime(r), nextJTI()
	s.mu.Lock()
	lifetime := s.lifetime
	s.appJWTs[jti] = s.appGen
	s.mu.Unlock()
	tok := sign(map[string]any{
		"aud":   s.AccountID,
		"azp":   s.ClientID,
		"scope": "msg.consumer",
		"iss":   "Sentinel",
		"iat":   now.Unix(),
		"exp":   now.Add(lifetime).Unix(),
		"jti":   jti,
	})
	writeJSON(w, http.StatusOK, map[string]string{"access_token": tok, "token_type": "Bearer"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func randomString() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
