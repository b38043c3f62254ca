package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/lpconnect/appjwt/appjwttest"
)

// controlFlags are the flags of the control API and of the webhooks.
type controlFlags struct {
	addr       string
	webhooks   string // capabilities.webhooks, in JSON
	webhookCA  string // a PEM file
	retryPause time.Duration

	hooks map[string]appjwttest.Webhook // webhooks, decoded by check
	roots *x509.CertPool                // webhookCA's certificates, read by check
}

func (c *controlFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.addr, "control-addr", "127.0.0.1:0", "serve the control API on this loopback `host:port`")
	fs.StringVar(&c.webhooks, "webhooks", "", "register these webhooks: capabilities.webhooks of an app installation, as `JSON`, such as\n"+
		`'{"ms.MessagingEventNotification.ContentEvent":{"endpoint":"https://127.0.0.1:9443/lp","max_retries":3}}'`)
	fs.StringVar(&c.webhookCA, "webhook-ca", "", "deliver webhooks trusting only the CA certificates (PEM) in this `file`; empty: the system's")
	fs.DurationVar(&c.retryPause, "webhook-retry-pause", 0, "pause this long before a webhook retry; 0: LivePerson's 30s")
}

// usageError is an error in the flags that only the server's own checks
// find: the command exits with status 2 for it, as for other usage errors.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }

// check checks the flags that need no server, and reads -webhooks and
// -webhook-ca.
func (c *controlFlags) check() error {
	host, _, err := net.SplitHostPort(c.addr)
	if err != nil {
		return errors.New("appjwttest: -control-addr is not a host:port, such as 127.0.0.1:8444")
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return errors.New("appjwttest: -control-addr must be on loopback, such as 127.0.0.1:8444: whoever reaches it acts as the agent")
	}
	if c.webhooks != "" {
		if !decodeStrict(strings.NewReader(c.webhooks), &c.hooks) || c.hooks == nil {
			return errors.New(`appjwttest: -webhooks is not a JSON object such as {"ms.MessagingEventNotification.ContentEvent":{"endpoint":"https://127.0.0.1:9443/lp","max_retries":3}}`)
		}
	}
	if c.webhookCA != "" {
		pem, err := os.ReadFile(c.webhookCA)
		if err != nil {
			return fmt.Errorf("appjwttest: -webhook-ca: %w", err)
		}
		c.roots = x509.NewCertPool()
		if !c.roots.AppendCertsFromPEM(pem) {
			return errors.New("appjwttest: -webhook-ca: the file holds no PEM certificate")
		}
	}
	if c.retryPause < 0 {
		return errors.New("appjwttest: -webhook-retry-pause is negative")
	}
	return nil
}

// control is the control API's server.
type control struct {
	url        string
	token      string
	consoleURL string // logs a browser in to the console, once
	srv        *http.Server
	done       chan struct{} // closed when srv.Serve has returned
}

// configureWebhooks sets srv's webhook client and timing as c says: srv
// is not started yet.
func configureWebhooks(srv *appjwttest.Server, c *controlFlags) {
	if c.roots != nil {
		// No proxy: the receivers are on this machine.
		srv.WebhookClient = &http.Client{Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: c.roots},
			ForceAttemptHTTP2: true,
		}}
	}
	srv.WebhookTiming = appjwttest.WebhookTiming{RetryPause: c.retryPause}
}

// startControl registers srv's webhooks as c says, and serves the control
// API of srv on c.addr with tlsConfig's certificate.
func startControl(srv *appjwttest.Server, c *controlFlags, tlsConfig *tls.Config, stderr io.Writer) (*control, error) {
	if err := srv.SetWebhooks(c.hooks); err != nil {
		return nil, usageError{fmt.Errorf("appjwttest: -webhooks: %w", err)}
	}
	l, err := net.Listen("tcp", c.addr)
	if err != nil {
		return nil, fmt.Errorf("appjwttest: control API: %w", err)
	}
	// "localhost" may resolve to an address off loopback.
	if tcp, ok := l.Addr().(*net.TCPAddr); !ok || !tcp.IP.IsLoopback() {
		l.Close()
		return nil, errors.New("appjwttest: -control-addr must be on loopback, such as 127.0.0.1:8444: whoever reaches it acts as the agent")
	}
	token := newControlToken()
	con := newConsole(srv, token, l.Addr(), c.retryPause)
	mux := http.NewServeMux()
	mux.Handle(consolePath, con)
	mux.Handle("/", newControlHandler(srv, token))
	ctl := &control{
		url:        "https://" + l.Addr().String(),
		token:      token,
		consoleURL: con.loginURL("https://" + l.Addr().String()),
		srv: &http.Server{
			Handler:           mux,
			TLSConfig:         tlsConfig.Clone(),
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       30 * time.Second,
			IdleTimeout:       time.Minute,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          log.New(stderr, "appjwttest: control API: ", log.LstdFlags),
		},
		done: make(chan struct{}),
	}
	go func() {
		defer close(ctl.done)
		ctl.srv.ServeTLS(l, "", "")
	}()
	return ctl, nil
}

// close stops the control API: its requests are short, so it does not
// wait for them to end.
func (c *control) close() {
	c.srv.Close()
	<-c.done
}

// newControlToken returns a token of 256 random bits.
func newControlToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// The fixed texts of the control API's refusals.
const (
	textUnauthorized = "appjwttest: the control API takes Authorization: Bearer <control-token>, the token the banner prints"
	textNotFound     = "appjwttest: the control API has no such path"
	textNoConv       = "appjwttest: no conversation has this conversationId"
	textClosedConv   = "appjwttest: the conversation is closed"
)

// newControlHandler returns the control API of srv, for requests that
// carry token.
func newControlHandler(srv *appjwttest.Server, token string) http.Handler {
	mux := http.NewServeMux()
	for _, r := range (controlHandler{srv}).routes() {
		mux.Handle(r.path, allow(r.method, r.h))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, textNotFound)
	})
	want := []byte(token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, got, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="appjwttest control"`)
			writeError(w, http.StatusUnauthorized, textUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// allow answers requests of any method but method 405.
func allow(method string, h http.HandlerFunc) http.Handler {
	text := "appjwttest: this path takes " + method + " only"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method {
			w.Header().Set("Allow", method)
			writeError(w, http.StatusMethodNotAllowed, text)
			return
		}
		h(w, r)
	})
}

// controlHandler serves the control API's paths.
type controlHandler struct{ srv *appjwttest.Server }

// route is a path of the control API, and the one method it takes.
type route struct {
	method, path string
	h            http.HandlerFunc
}

// routes are the control API's paths, as docs/testing.md lists them.
func (c controlHandler) routes() []route {
	return []route{
		{http.MethodPost, "/agent/message", c.agentMessage},
		{http.MethodPost, "/agent/chat-state", c.agentChatState},
		{http.MethodPost, "/agent/publish", c.agentPublish},
		{http.MethodPost, "/agent/close", c.agentClose},
		{http.MethodGet, "/conversations", c.conversations},
		{http.MethodPost, "/faults", c.faults},
		{http.MethodGet, "/requests", c.requests},
		{http.MethodPut, "/webhooks", c.webhooks},
		{http.MethodPost, "/webhook-faults", c.webhookFaults},
		{http.MethodGet, "/deliveries", c.deliveries},
		{http.MethodPost, "/revoke-tokens", c.revokeTokens},
	}
}

func (c controlHandler) agentMessage(w http.ResponseWriter, r *http.Request) {
	const want = `appjwttest: the body must be {"conversationId":"<id>","message":"<text>"}`
	var in struct {
		ConversationID string `json:"conversationId"`
		Message        string `json:"message"`
	}
	if !readBody(w, r, &in, want) || !c.openConversation(w, in.ConversationID, want) {
		return
	}
	seq, err := c.srv.AgentMessage(in.ConversationID, in.Message)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"sequence": seq})
}

func (c controlHandler) agentChatState(w http.ResponseWriter, r *http.Request) {
	const want = `appjwttest: the body must be {"conversationId":"<id>","chatState":"COMPOSING"}`
	var in struct {
		ConversationID string `json:"conversationId"`
		ChatState      string `json:"chatState"`
	}
	if !readBody(w, r, &in, want) || !c.openConversation(w, in.ConversationID, want) {
		return
	}
	if err := c.srv.AgentChatState(in.ConversationID, in.ChatState); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

func (c controlHandler) agentPublish(w http.ResponseWriter, r *http.Request) {
	const want = `appjwttest: the body must be {"conversationId":"<id>","event":{"type":"...",...}}`
	var in struct {
		ConversationID string          `json:"conversationId"`
		Event          json.RawMessage `json:"event"`
	}
	if !readBody(w, r, &in, want) || !c.openConversation(w, in.ConversationID, want) {
		return
	}
	seq, err := c.srv.AgentPublish(in.ConversationID, in.Event)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"sequence": seq})
}

func (c controlHandler) agentClose(w http.ResponseWriter, r *http.Request) {
	const want = `appjwttest: the body must be {"conversationId":"<id>"}`
	var in struct {
		ConversationID string `json:"conversationId"`
	}
	if !readBody(w, r, &in, want) || !c.openConversation(w, in.ConversationID, want) {
		return
	}
	if !c.srv.CloseConversation(in.ConversationID) {
		// Closed since openConversation looked.
		writeError(w, http.StatusConflict, textClosedConv)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// openConversation reports whether conversation id is open, and answers
// why not if it is not: want if id is empty, 404 if there is no such
// conversation, 409 if it is closed.
func (c controlHandler) openConversation(w http.ResponseWriter, id, want string) bool {
	if id == "" {
		writeError(w, http.StatusBadRequest, want)
		return false
	}
	info, ok := c.srv.Conversation(id)
	switch {
	case !ok:
		writeError(w, http.StatusNotFound, textNoConv)
	case info.State != "OPEN":
		writeError(w, http.StatusConflict, textClosedConv)
	}
	return ok && info.State == "OPEN"
}

func (c controlHandler) conversations(w http.ResponseWriter, r *http.Request) {
	convs := c.srv.Conversations()
	out := make([]conversationJSON, len(convs))
	for i, conv := range convs {
		out[i] = newConversationJSON(conv)
	}
	writeJSON(w, http.StatusOK, out)
}

func (c controlHandler) faults(w http.ResponseWriter, r *http.Request) {
	const want = `appjwttest: the body must be {"endpoint":"Sentinel","faults":[{"status":503,"retryAfter":"1","body":"...","delayMs":0,"hang":false,"reset":false}]}, ` +
		`with endpoint one of ` + endpointNames + `, status 0 or from 100 to 599 and delayMs not negative`
	var in struct {
		Endpoint string      `json:"endpoint"`
		Faults   []faultJSON `json:"faults"`
	}
	if !readBody(w, r, &in, want) {
		return
	}
	e, ok := endpointNamed(in.Endpoint)
	faults := make([]appjwttest.Fault, len(in.Faults))
	for i, f := range in.Faults {
		if f.Status != 0 && (f.Status < 100 || f.Status > 599) || f.DelayMs < 0 {
			ok = false
		}
		faults[i] = appjwttest.Fault{Status: f.Status, RetryAfter: f.RetryAfter, Body: f.Body,
			Delay: time.Duration(f.DelayMs) * time.Millisecond, Hang: f.Hang, Reset: f.Reset}
	}
	if !ok || len(faults) == 0 {
		writeError(w, http.StatusBadRequest, want)
		return
	}
	c.srv.QueueFaults(e, faults...)
	writeJSON(w, http.StatusOK, struct{}{})
}

func (c controlHandler) requests(w http.ResponseWriter, r *http.Request) {
	e, ok := endpointNamed(r.URL.Query().Get("endpoint"))
	if !ok {
		writeError(w, http.StatusBadRequest, "appjwttest: the query must be endpoint=<name>, with name one of "+endpointNames)
		return
	}
	reqs := c.srv.Requests(e)
	out := make([]requestJSON, len(reqs))
	for i, req := range reqs {
		out[i] = newRequestJSON(req, string(c.srv.ClientSecret))
	}
	writeJSON(w, http.StatusOK, out)
}

func (c controlHandler) webhooks(w http.ResponseWriter, r *http.Request) {
	const want = `appjwttest: the body must be capabilities.webhooks, such as {"ms.MessagingEventNotification.ContentEvent":{"endpoint":"https://127.0.0.1:9443/lp","max_retries":3}}`
	var hooks map[string]appjwttest.Webhook
	if !readBody(w, r, &hooks, want) {
		return
	}
	if err := c.srv.SetWebhooks(hooks); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

func (c controlHandler) webhookFaults(w http.ResponseWriter, r *http.Request) {
	const want = `appjwttest: the body must be {"webhook":"<event type>","faults":[{"duplicate":false,"reorder":false,"badSignature":false,"oversize":0}]}, ` +
		`with webhook one of ` + webhookNames + ` and oversize not negative`
	var in struct {
		Webhook string             `json:"webhook"`
		Faults  []webhookFaultJSON `json:"faults"`
	}
	if !readBody(w, r, &in, want) {
		return
	}
	ok := strings.Contains(", "+webhookNames+", ", ", "+in.Webhook+", ") && len(in.Faults) > 0
	faults := make([]appjwttest.WebhookFault, len(in.Faults))
	for i, f := range in.Faults {
		ok = ok && f.Oversize >= 0
		faults[i] = appjwttest.WebhookFault{Duplicate: f.Duplicate, Reorder: f.Reorder, BadSignature: f.BadSignature, Oversize: f.Oversize}
	}
	if !ok {
		writeError(w, http.StatusBadRequest, want)
		return
	}
	c.srv.QueueWebhookFaults(in.Webhook, faults...)
	writeJSON(w, http.StatusOK, struct{}{})
}

// maxWait bounds the wait of GET /deliveries?wait=.
const maxWait = time.Minute

// deliveries answers the deliveries; with wait=<duration>, once none is
// pending, or the duration has passed.
func (c controlHandler) deliveries(w http.ResponseWriter, r *http.Request) {
	if q := r.URL.Query(); q.Has("wait") {
		d, err := time.ParseDuration(q.Get("wait"))
		if err != nil || d < 0 || d > maxWait {
			writeError(w, http.StatusBadRequest, "appjwttest: wait must be a duration from 0s to 1m, such as wait=5s")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		// An error says the wait ran out: the answer shows what is pending.
		c.srv.WaitWebhooks(ctx)
	}
	ds := c.srv.Deliveries()
	out := make([]deliveryJSON, len(ds))
	for i, d := range ds {
		out[i] = newDeliveryJSON(d)
	}
	writeJSON(w, http.StatusOK, out)
}

// revokeTokens takes no body: there is nothing to say.
func (c controlHandler) revokeTokens(w http.ResponseWriter, r *http.Request) {
	c.srv.RevokeTokens()
	writeJSON(w, http.StatusOK, struct{}{})
}

// maxControlBody caps a control request's body: the largest, a list of
// faults, takes a few KiB.
const maxControlBody = 1 << 20

// readBody decodes r's body into v, as decodeStrict does, and reports
// whether it could; if not, it answers 400 with want.
func readBody(w http.ResponseWriter, r *http.Request, v any, want string) bool {
	if !decodeStrict(http.MaxBytesReader(w, r.Body, maxControlBody), v) {
		writeError(w, http.StatusBadRequest, want)
		return false
	}
	return true
}

// decodeStrict decodes one JSON value with only the fields of v (in any
// case, as encoding/json matches them) into v, and reports whether it
// could: a field misspelt is refused, not ignored.
func decodeStrict(r io.Reader, v any) bool {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	return dec.Decode(v) == nil && dec.Decode(new(json.RawMessage)) == io.EOF
}

// writeJSON answers v in JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// writeError answers {"error":text}.
func writeError(w http.ResponseWriter, status int, text string) {
	writeJSON(w, status, map[string]string{"error": text})
}

// The endpoints the control API names, by their names.
var endpoints = []appjwttest.Endpoint{
	appjwttest.DomainAPI, appjwttest.Sentinel, appjwttest.Consumer, appjwttest.Conversation,
	appjwttest.Send, appjwttest.SentinelV2Token, appjwttest.JWKS, appjwttest.V2API,
}

// endpointNames lists the names of endpoints, for the texts that ask for one.
const endpointNames = "DomainAPI, Sentinel, Consumer, Conversation, Send, SentinelV2Token, JWKS, V2API"

// endpointNamed returns the endpoint whose name is name.
func endpointNamed(name string) (appjwttest.Endpoint, bool) {
	for _, e := range endpoints {
		if e.String() == name {
			return e, true
		}
	}
	return 0, false
}

// webhookNames lists the event types a webhook is registered for.
const webhookNames = appjwttest.WebhookContentEvent + ", " + appjwttest.WebhookRichContentEvent + ", " +
	appjwttest.WebhookAcceptStatusEvent + ", " + appjwttest.WebhookChatStateEvent + ", " + appjwttest.WebhookConversationChange

// printControlHelp tells how to reach the control API with curl, and the
// console with a browser.
func printControlHelp(w io.Writer, ctl *control) {
	fmt.Fprintf(w, "\nFor the control API (paths in docs/testing.md), with SSL_CERT_FILE as above:\n")
	fmt.Fprintf(w, "  export APPJWTTEST_CONTROL=%s APPJWTTEST_CONTROL_TOKEN=%s\n", shellQuote(ctl.url), shellQuote(ctl.token))
	fmt.Fprintf(w, "  curl --cacert \"$SSL_CERT_FILE\" -H \"Authorization: Bearer $APPJWTTEST_CONTROL_TOKEN\" \"$APPJWTTEST_CONTROL/conversations\"\n")
	fmt.Fprintf(w, "\nThe agent console, in a browser on this machine (the link logs in once; then paste the control-token):\n")
	fmt.Fprintf(w, "  %s\n", ctl.consoleURL)
}
