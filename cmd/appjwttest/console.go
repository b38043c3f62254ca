package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lpconnect/appjwt/appjwttest"
	"github.com/lpconnect/appjwt/internal/redact"
)

// The agent console: a page on the control API's port, under /console/,
// that shows what the stand-in holds and acts as the agent, for a person
// developing a connector. docs/testing.md describes it.
//
// A browser cannot send the control token as a header when it follows a
// link, so the console takes a session cookie instead, got one of two
// ways: the banner's console URL, which carries a login code good for one
// use, or a form that takes the control token. The code is one-time
// because a URL lingers (in the browser's history, a shell's, a pasted
// chat); once used it opens nothing, and the page the login redirects to
// has no code in its URL. The cookie is HttpOnly (no script reads it),
// Secure, SameSite=Strict and named for the port, since browsers share
// cookies across the ports of a host.
//
// SameSite does not tell ports apart either, so every request that acts
// must also come from the console's own origin (http.CrossOriginProtection
// checks Sec-Fetch-Site and Origin) and carry JSON, which a cross-origin
// form cannot send. Every request must name a loopback host in its Host
// header, which a DNS-rebound name does not; such a name could not carry
// the cookie, nor pass TLS with the stand-in's certificate, either.

//go:embed console
var consoleFiles embed.FS

// consoleTemplates are the console's pages; html/template escapes all that
// the stand-in got, a consumer's message first.
var consoleTemplates = template.Must(template.New("").Funcs(template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
}).ParseFS(consoleFiles, "console/*.html"))

// console serves the agent console of srv.
type console struct {
	srv        *appjwttest.Server
	token      string // the control token, which the login form takes
	cookieName string
	retryPause time.Duration
	actions    map[string]http.Handler // the control API's, by path
	static     http.Handler
	cop        *http.CrossOriginProtection

	mu        sync.Mutex
	loginCode string          // "" once used
	sessions  map[string]bool // the session cookies' values
}

// consolePath is where the console is, on the control API's port.
const consolePath = "/console/"

// newConsole returns the console of srv on the control API at addr, whose
// token is token.
func newConsole(srv *appjwttest.Server, token string, addr net.Addr, retryPause time.Duration) *console {
	port := "0"
	if tcp, ok := addr.(*net.TCPAddr); ok {
		port = fmt.Sprint(tcp.Port)
	}
	c := &console{
		srv:        srv,
		token:      token,
		cookieName: "__Host-appjwttest-console-" + port,
		retryPause: retryPause,
		actions:    map[string]http.Handler{},
		cop:        http.NewCrossOriginProtection(),
		loginCode:  newControlToken(),
		sessions:   map[string]bool{},
	}
	static, _ := fs.Sub(consoleFiles, "console/static")
	c.static = http.StripPrefix(consolePath+"static/", http.FileServerFS(static))
	for _, r := range (controlHandler{srv}).routes() {
		if r.method != http.MethodGet {
			c.actions[r.path] = allow(r.method, r.h)
		}
	}
	return c
}

// loginURL is the URL the banner prints: it logs a browser in, once.
func (c *console) loginURL(base string) string {
	return base + consolePath + "login?code=" + c.loginCode
}

func (c *console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	if !loopbackHost(r.Host) {
		http.Error(w, "appjwttest: the console answers only to a loopback host, such as 127.0.0.1 or localhost", http.StatusMisdirectedRequest)
		return
	}
	path := strings.TrimPrefix(r.URL.Path, strings.TrimSuffix(consolePath, "/"))
	switch {
	case strings.HasPrefix(path, "/static/"):
		h.Del("Cache-Control")
		c.static.ServeHTTP(w, r)
	case path == "/login":
		c.login(w, r)
	case !c.session(r):
		c.loginPage(w, http.StatusUnauthorized, "")
	case path == "/" && r.Method == http.MethodGet:
		c.page(w, "page.html")
	case path == "/live" && r.Method == http.MethodGet:
		c.live(w, r)
	case strings.HasPrefix(path, "/api/") && c.actions[strings.TrimPrefix(path, "/api")] != nil:
		c.act(w, r, c.actions[strings.TrimPrefix(path, "/api")])
	default:
		http.Error(w, "appjwttest: the console has no such page", http.StatusNotFound)
	}
}

// loopbackHost reports whether hostport, a Host header, names loopback:
// localhost or a loopback address.
func loopbackHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return err == nil && ip.IsLoopback() && ip.Zone() == ""
}

// login logs a browser in, with GET ?code=<the banner's code> or POST of
// the form's token=<the control token>, and sends it to the console.
func (c *console) login(w http.ResponseWriter, r *http.Request) {
	var ok bool
	switch r.Method {
	case http.MethodGet:
		ok = c.useLoginCode(r.URL.Query().Get("code"))
	case http.MethodPost:
		if c.cop.Check(r) != nil {
			http.Error(w, "appjwttest: the console takes a login from its own page only", http.StatusForbidden)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
		ok = r.ParseForm() == nil && subtle.ConstantTimeCompare([]byte(r.PostForm.Get("token")), []byte(c.token)) == 1
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "appjwttest: login takes GET or POST", http.StatusMethodNotAllowed)
		return
	}
	if !ok {
		c.loginPage(w, http.StatusForbidden, "That link was used already, or the token is not this run's. Paste the control-token the banner printed.")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: c.cookieName, Value: c.newSession(), Path: "/",
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
	// 303: a reload of the console does not post the form again.
	http.Redirect(w, r, consolePath, http.StatusSeeOther)
}

// useLoginCode reports whether code is the login code, not used yet, and
// uses it up.
func (c *console) useLoginCode(code string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loginCode == "" || subtle.ConstantTimeCompare([]byte(code), []byte(c.loginCode)) != 1 {
		return false
	}
	c.loginCode = ""
	return true
}

// newSession returns the value of a new session cookie.
func (c *console) newSession() string {
	s := newControlToken()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sessions[s] = true
	return s
}

// session reports whether r carries a session cookie.
func (c *console) session(r *http.Request) bool {
	ck, err := r.Cookie(c.cookieName)
	if err != nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sessions[ck.Value]
}

// loginPage answers the login form, with why, if not "".
func (c *console) loginPage(w http.ResponseWriter, status int, why string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	consoleTemplates.ExecuteTemplate(w, "login.html", why)
}

// page answers the console, as it is now.
func (c *console) page(w http.ResponseWriter, name string) {
	b, ok := render(w, name, c.view())
	if ok {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(b)
	}
}

// render renders template name with v, or answers 500.
func render(w http.ResponseWriter, name string, v any) ([]byte, bool) {
	var b bytes.Buffer
	if err := consoleTemplates.ExecuteTemplate(&b, name, v); err != nil {
		http.Error(w, "appjwttest: rendering the console failed", http.StatusInternalServerError)
		return nil, false
	}
	return b.Bytes(), true
}

// live answers the live part of the page, for the page's script to put in
// place; 304 if it has not changed since the version the script has.
func (c *console) live(w http.ResponseWriter, r *http.Request) {
	b, ok := render(w, "live", c.view())
	if !ok {
		return
	}
	sum := sha256.Sum256(b)
	etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
	w.Header().Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(b)
}

// act runs one of the control API's actions, for a request from the
// console's own page: the same code as the control API's, so that the
// connector gets what a test would get it to.
func (c *console) act(w http.ResponseWriter, r *http.Request, h http.Handler) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); c.cop.Check(r) != nil || mt != "application/json" {
		writeError(w, http.StatusForbidden, "appjwttest: the console takes actions from its own page only, in JSON")
		return
	}
	h.ServeHTTP(w, r)
}

// The console's view of the stand-in: what the templates render.
type (
	consoleView struct {
		Conversations []convView
		Endpoints     []endpointView // webhook endpoints, by first delivery
		Requests      []requestsView // per LivePerson endpoint
		Disabled      string         // why webhooks are disabled, if they are
		RetryPause    string
		FaultPresets  []preset // for the LivePerson endpoints
		HookPresets   []preset // for the webhooks
		EndpointNames []string
		WebhookNames  []string
	}
	convView struct {
		ID, Consumer, State string
		Events              []eventView
		Receipt             any // a READ receipt for the consumer's messages; nil if none
	}
	eventView struct {
		Role, Type string
		Sequence   int
		Text       string
	}
	endpointView struct {
		Endpoint   string
		Deliveries []deliveryView
	}
	deliveryView struct {
		Webhook, Signature, Fault string
		Delivered                 bool
		Attempts                  []attemptView
	}
	attemptView struct {
		Status     int
		Error      string
		DurationMs string
	}
	requestsView struct {
		Endpoint string
		Total    int
		Requests []requestView // the last maxRequestsShown
	}
	requestView struct {
		Method, Path, ErrorCode, Credential string
		Status                              int
	}
	preset struct {
		Label string
		Value any // the JSON of the faults
	}
)

// maxRequestsShown bounds the requests shown per endpoint: a connector
// under test may make thousands.
const maxRequestsShown = 50

// faultPresets are the faults the console's buttons queue on a LivePerson
// endpoint, as the control API's POST /faults takes them.
var faultPresets = []preset{
	{"503, Retry-After 1", []faultJSON{{Status: 503, RetryAfter: "1"}}},
	{"429, Retry-After 2", []faultJSON{{Status: 429, RetryAfter: "2"}}},
	{"500", []faultJSON{{Status: 500}}},
	{"a 3 s delay", []faultJSON{{DelayMs: 3000}}},
	{"a connection reset", []faultJSON{{Reset: true}}},
	{"a hang", []faultJSON{{Hang: true}}},
}

// hookPresets are the faults the console's buttons queue on a webhook.
var hookPresets = []preset{
	{"a duplicate", []webhookFaultJSON{{Duplicate: true}}},
	{"reordered", []webhookFaultJSON{{Reorder: true}}},
	{"a bad signature", []webhookFaultJSON{{BadSignature: true}}},
	{"oversized by 1 MiB", []webhookFaultJSON{{Oversize: 1 << 20}}},
}

func (c *console) view() consoleView {
	v := consoleView{
		RetryPause:    "30s, LivePerson's",
		FaultPresets:  faultPresets,
		HookPresets:   hookPresets,
		EndpointNames: strings.Split(endpointNames, ", "),
		WebhookNames:  strings.Split(webhookNames, ", "),
	}
	if c.retryPause > 0 {
		v.RetryPause = c.retryPause.String()
	}
	if err := c.srv.WebhooksDisabled(); err != nil {
		v.Disabled = err.Error()
	}
	for _, conv := range c.srv.Conversations() {
		cv := convView{ID: conv.ID, Consumer: conv.Consumer, State: conv.State}
		var read []int
		for _, e := range conv.Events {
			cv.Events = append(cv.Events, eventView{Role: e.Role, Type: e.Type, Sequence: e.Sequence, Text: eventText(e)})
			if e.Role == "CONSUMER" && e.Type == "ContentEvent" {
				read = append(read, e.Sequence)
			}
		}
		if read != nil {
			cv.Receipt = map[string]any{"type": "AcceptStatusEvent", "status": "READ", "sequenceList": read}
		}
		v.Conversations = append(v.Conversations, cv)
	}
	for _, d := range c.srv.Deliveries() {
		i := slices.IndexFunc(v.Endpoints, func(e endpointView) bool { return e.Endpoint == d.Endpoint })
		if i < 0 {
			i = len(v.Endpoints)
			v.Endpoints = append(v.Endpoints, endpointView{Endpoint: d.Endpoint})
		}
		v.Endpoints[i].Deliveries = append(v.Endpoints[i].Deliveries, newDeliveryView(d))
	}
	red := redact.For(string(c.srv.ClientSecret), withheld)
	for _, e := range endpoints {
		reqs := c.srv.Requests(e)
		rv := requestsView{Endpoint: e.String(), Total: len(reqs)}
		for _, r := range reqs[max(0, len(reqs)-maxRequestsShown):] {
			rv.Requests = append(rv.Requests, newRequestView(r, red))
		}
		v.Requests = append(v.Requests, rv)
	}
	return v
}

// eventText is what the console shows of e.
func eventText(e appjwttest.MessagingEvent) string {
	switch {
	case e.Type == "ContentEvent":
		return e.Message
	case e.Type == "ChatStateEvent":
		return e.ChatState
	case e.Type == "AcceptStatusEvent":
		return fmt.Sprintf("%s %v", e.Status, e.SequenceList)
	default:
		return string(e.Content)
	}
}

func newDeliveryView(d appjwttest.Delivery) deliveryView {
	v := deliveryView{Webhook: d.Webhook, Signature: d.Header.Get("X-Liveperson-Signature"), Delivered: d.Delivered()}
	var faults []string
	f := d.Fault
	for _, on := range []struct {
		ok   bool
		name string
	}{{f.Duplicate, "duplicate"}, {f.Reorder, "reordered"}, {f.BadSignature, "bad signature"}, {f.Oversize > 0, fmt.Sprintf("oversized by %d B", f.Oversize)}} {
		if on.ok {
			faults = append(faults, on.name)
		}
	}
	v.Fault = strings.Join(faults, ", ")
	for _, a := range d.Attempts {
		av := attemptView{Status: a.Status, DurationMs: fmt.Sprintf("%.1f", float64(a.Duration)/float64(time.Millisecond))}
		if a.Err != nil {
			av.Error = a.Err.Error()
		}
		v.Attempts = append(v.Attempts, av)
	}
	return v
}

// credentialPrefix is how much of a token the console shows: enough to
// tell its kind, not enough to use it. A secret shows none.
const credentialPrefix = 6

// short returns the first credentialPrefix bytes of a credential and an
// ellipsis.
func short(s string) string {
	if len(s) <= credentialPrefix {
		return "…"
	}
	return s[:credentialPrefix] + "…"
}

// newRequestView returns what the console shows of r: its tokens as short
// prefixes, any client secret and a path that holds the secret withheld.
func newRequestView(r appjwttest.Request, red redact.Redactor) requestView {
	v := requestView{Method: r.Method, Path: r.Path, Status: r.Status, ErrorCode: r.ErrorCode}
	if red.Leaks(v.Path) {
		v.Path = withheld
	}
	var creds []string
	for _, k := range []string{"Authorization", "X-Lp-On-Behalf"} {
		for _, val := range r.Header.Values(k) {
			if scheme, tok, ok := strings.Cut(val, " "); ok {
				creds = append(creds, k+": "+scheme+" "+short(tok))
			} else {
				creds = append(creds, k+": "+short(val))
			}
		}
	}
	for _, vals := range []map[string][]string{r.Form, r.Query} {
		if len(vals["client_secret"]) > 0 { // a secret is never shown in part
			creds = append(creds, "client_secret="+withheld)
		}
	}
	v.Credential = strings.Join(creds, "; ")
	return v
}
