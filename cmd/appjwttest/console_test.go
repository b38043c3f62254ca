package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/lpconnect/appjwt/appjwttest"
)

// consoleAddr is the control API's address in the console's tests.
var consoleAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8444}

const consoleOrigin = "https://127.0.0.1:8444"

// consoleTest is a console over a stand-in with one open conversation, in
// which the consumer said script.
type consoleTest struct {
	srv    *appjwttest.Server
	con    *console
	token  string // the control token
	conv   string
	appJWT string // the last AppJWT the connector got
	jws    string // the consumer's ConsumerJWS
}

const script = `<script>alert(1)</script>`

func newConsoleTest(t *testing.T) *consoleTest {
	t.Helper()
	srv := appjwttest.NewServer()
	t.Cleanup(srv.Close)
	c := lpOf(srv)
	token := newControlToken()
	ct := &consoleTest{srv: srv, con: newConsole(srv, token, consoleAddr, 0), token: token, conv: c.open(t, "<b>mallory</b>")}
	ct.appJWT = c.appJWT(t)
	req, _ := http.NewRequest("POST", c.url+"/api/account/"+c.account+"/consumer?v=1.0", strings.NewReader(`{"ext_consumer_id":"<b>mallory</b>"}`))
	req.Header.Set("Authorization", ct.appJWT)
	req.Header.Set("Content-Type", "application/json")
	var jws struct{ Token string }
	c.call(t, req, http.StatusCreated, &jws)
	ct.jws = jws.Token
	body := `{"kind":"req","id":"1","type":"ms.PublishEvent","body":{"dialogId":"` + ct.conv + `","event":{"type":"ContentEvent","contentType":"text/plain","message":"` + strings.ReplaceAll(script, "/", `\/`) + `"}}}`
	req, _ = http.NewRequest("POST", c.url+"/api/account/"+c.account+"/messaging/consumer/conversation/send?v=3", strings.NewReader(body))
	req.Header.Set("Authorization", ct.appJWT)
	req.Header.Set("X-LP-ON-BEHALF", ct.jws)
	req.Header.Set("Content-Type", "application/json")
	c.call(t, req, http.StatusOK, new(any))
	return ct
}

// do sends the console a request from a browser on its own page, with
// cookie if not nil; header adds to or, with "", removes its headers.
func (ct *consoleTest) do(method, target, body string, cookie *http.Cookie, header map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, consoleOrigin+target, strings.NewReader(body))
	r.Header.Set("Origin", consoleOrigin)
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		if k == "Host" {
			r.Host = v
		} else if v == "" {
			r.Header.Del(k)
		} else {
			r.Header.Set(k, v)
		}
	}
	if cookie != nil {
		r.AddCookie(cookie)
	}
	w := httptest.NewRecorder()
	ct.con.ServeHTTP(w, r)
	return w
}

// login logs in with the banner's code and returns the session cookie.
func (ct *consoleTest) login(t *testing.T) *http.Cookie {
	t.Helper()
	u, _ := url.Parse(ct.con.loginURL(consoleOrigin))
	w := ct.do("GET", u.RequestURI(), "", nil, map[string]string{"Origin": "", "Sec-Fetch-Site": "none"})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != consolePath {
		t.Fatalf("GET %s: %d to %q, want 303 to %s", u.Path, w.Code, w.Header().Get("Location"), consolePath)
	}
	cookies := w.Result().Cookies()
	if len(cookies) != 1 {
		t.Fatalf("login set %d cookies, want 1", len(cookies))
	}
	return cookies[0]
}

// The login code logs a browser in once, with a cookie no script reads,
// sent to this origin only, and leaves no code in the URL.
func TestConsoleLogin(t *testing.T) {
	ct := newConsoleTest(t)
	ck := ct.login(t)
	if ck.Name != "__Host-appjwttest-console-8444" || !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.Domain != "" || len(ck.Value) != 43 {
		t.Errorf("cookie %s, want __Host-appjwttest-console-8444, HttpOnly, Secure, SameSite=Strict, Path=/, no Domain, 256 bits", ck)
	}
	if w := ct.do("GET", consolePath, "", ck, nil); w.Code != http.StatusOK {
		t.Errorf("GET %s with the cookie: %d, want 200", consolePath, w.Code)
	}

	u, _ := url.Parse(ct.con.loginURL(consoleOrigin))
	token := url.Values{"token": {ct.token}}.Encode()
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	tests := []struct {
		name, method, target, body string
		header                     map[string]string
		want                       int
	}{
		{"the code again", "GET", u.RequestURI(), "", nil, http.StatusForbidden},
		{"another code", "GET", "/console/login?code=" + strings.Repeat("A", 43), "", nil, http.StatusForbidden},
		{"no code", "GET", "/console/login", "", nil, http.StatusForbidden},
		{"the control token", "POST", "/console/login", token, form, http.StatusSeeOther},
		{"the control token from another port", "POST", "/console/login", token,
			map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": "https://127.0.0.1:9999", "Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
		{"another token", "POST", "/console/login", "token=" + ct.token + "x", form, http.StatusForbidden},
		{"PUT", "PUT", "/console/login", token, form, http.StatusMethodNotAllowed},
		{"no cookie", "GET", consolePath, "", nil, http.StatusUnauthorized},
		{"no cookie, live", "GET", consolePath + "live", "", nil, http.StatusUnauthorized},
		{"the cookie's value as the code", "GET", "/console/login?code=" + ck.Value, "", nil, http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := ct.do(tt.method, tt.target, tt.body, nil, tt.header)
			if w.Code != tt.want {
				t.Fatalf("%s %s: %d, want %d", tt.method, tt.target, w.Code, tt.want)
			}
			if w.Code != http.StatusSeeOther && strings.Contains(w.Body.String(), "mallory") {
				t.Errorf("the login page shows the stand-in's conversations:\n%s", w.Body)
			}
		})
	}
}

// What the stand-in got shows as text: a consumer's <script> does not run.
func TestConsoleEscapes(t *testing.T) {
	ct := newConsoleTest(t)
	ck := ct.login(t)
	for _, path := range []string{consolePath, consolePath + "live"} {
		body := ct.do("GET", path, "", ck, nil).Body.String()
		if !strings.Contains(body, `&lt;script&gt;alert(1)&lt;/script&gt;`) || !strings.Contains(body, `&lt;b&gt;mallory&lt;/b&gt;`) {
			t.Errorf("GET %s: the consumer's message or name not shown as text:\n%s", path, body)
		}
		if strings.Contains(body, "<script>alert") || strings.Contains(body, "<b>mallory") {
			t.Errorf("GET %s: the consumer's HTML is in the page:\n%s", path, body)
		}
	}
	w := ct.do("GET", consolePath, "", ck, nil)
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q, want scripts from the console only", csp)
	}
}

// No page shows a credential whole: not the client secret, a token, the
// control token, the login code or the session.
func TestConsoleNoCredentials(t *testing.T) {
	ct := newConsoleTest(t)
	code := ct.con.loginCode
	ck := ct.login(t)
	ct.srv.QueueFaults(appjwttest.Sentinel, appjwttest.Fault{Status: 503})
	lpOf(ct.srv).client.PostForm(ct.srv.URL()+"/sentinel/api/account/"+ct.srv.AccountID+"/app/token?v=1.0&grant_type=client_credentials&client_secret="+string(ct.srv.ClientSecret),
		url.Values{"client_id": {ct.srv.ClientID}, "client_secret": {string(ct.srv.ClientSecret)}})
	page := ct.do("GET", consolePath, "", ck, nil).Body.String()
	for name, cred := range map[string]string{
		"client secret": string(ct.srv.ClientSecret), "AppJWT": ct.appJWT, "ConsumerJWS": ct.jws,
		"control token": ct.token, "login code": code, "session": ck.Value,
	} {
		if strings.Contains(page, cred[:credentialPrefix+1]) {
			t.Errorf("the console shows more than %d characters of the %s", credentialPrefix, name)
		}
	}
	for _, want := range []string{"client_secret=" + withheld, "Authorization: " + ct.appJWT[:credentialPrefix] + "…", "<td>503</td>"} {
		if !strings.Contains(page, want) {
			t.Errorf("the console does not show %q", want)
		}
	}
}

// The console answers only to a Host on loopback, which a DNS-rebound
// name is not.
func TestConsoleHost(t *testing.T) {
	ct := newConsoleTest(t)
	ck := ct.login(t)
	tests := []struct {
		host string
		want int
	}{
		{"127.0.0.1:8444", http.StatusOK},
		{"localhost:8444", http.StatusOK},
		{"LOCALHOST:8444", http.StatusOK},
		{"[::1]:8444", http.StatusOK},
		{"127.0.0.2:8444", http.StatusOK},
		{"evil.example:8444", http.StatusMisdirectedRequest},
		{"localhost.evil.example:8444", http.StatusMisdirectedRequest},
		{"10.0.0.1:8444", http.StatusMisdirectedRequest},
		{"[fe80::1%lo]:8444", http.StatusMisdirectedRequest},
		{"", http.StatusMisdirectedRequest},
	}
	for _, tt := range tests {
		for _, path := range []string{consolePath, consolePath + "login?code=x", consolePath + "static/console.js"} {
			w := ct.do("GET", path, "", ck, map[string]string{"Host": tt.host})
			if misdirected := http.StatusMisdirectedRequest; (w.Code == misdirected) != (tt.want == misdirected) {
				t.Errorf("GET %s with Host %q: %d, want %d", path, tt.host, w.Code, tt.want)
			}
		}
	}
}

// The console's actions are the control API's, for a request from its
// own page only.
func TestConsoleActs(t *testing.T) {
	ct := newConsoleTest(t)
	ck := ct.login(t)
	msg := `{"conversationId":"` + ct.conv + `","message":"hello from the console"}`
	tests := []struct {
		name   string
		cookie *http.Cookie
		header map[string]string
		want   int
	}{
		{"no cookie", nil, nil, http.StatusUnauthorized},
		{"another page's request", ck, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, http.StatusForbidden},
		{"another port's request", ck, map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "https://127.0.0.1:9999"}, http.StatusForbidden},
		{"another port's, Origin only", ck, map[string]string{"Sec-Fetch-Site": "", "Origin": "https://127.0.0.1:9999"}, http.StatusForbidden},
		{"a form's Content-Type", ck, map[string]string{"Content-Type": "text/plain"}, http.StatusForbidden},
		{"the console's own", ck, nil, http.StatusOK},
	}
	for _, tt := range tests {
		w := ct.do("POST", consolePath+"api/agent/message", msg, tt.cookie, tt.header)
		if w.Code != tt.want {
			t.Errorf("%s: %d %s, want %d", tt.name, w.Code, w.Body, tt.want)
		}
	}
	info, _ := ct.srv.Conversation(ct.conv)
	if n := len(info.Events); n != 2 || info.Events[1].Message != "hello from the console" {
		t.Errorf("events %+v, want the consumer's message, then the console's", info.Events)
	}

	for _, tt := range []struct {
		method, path, body string
		want               int
	}{
		{"GET", "api/agent/message", "", http.StatusMethodNotAllowed},
		{"GET", "api/conversations", "", http.StatusNotFound}, // the page shows them
		{"POST", "api/revoke-tokens", "{}", http.StatusOK},
		{"POST", "api/faults", `{"endpoint":"Sentinel","faults":[{"status":503}]}`, http.StatusOK},
		{"POST", "api/agent/close", `{"conversationId":"` + ct.conv + `"}`, http.StatusOK},
		{"POST", "api/agent/close", `{"conversationId":"` + ct.conv + `"}`, http.StatusConflict},
		{"POST", "nowhere", "{}", http.StatusNotFound},
	} {
		w := ct.do(tt.method, consolePath+tt.path, tt.body, ck, map[string]string{"Content-Type": "application/json"})
		if w.Code != tt.want {
			t.Errorf("%s %s: %d %s, want %d", tt.method, tt.path, w.Code, w.Body, tt.want)
		}
	}
}

// The page's forms name actions the console takes and presets the control
// API accepts.
func TestConsolePresets(t *testing.T) {
	ct := newConsoleTest(t)
	ck := ct.login(t)
	for _, p := range faultPresets {
		body := `{"endpoint":"Sentinel","faults":` + mustJSON(t, p.Value) + `}`
		if w := ct.do("POST", consolePath+"api/faults", body, ck, nil); w.Code != http.StatusOK {
			t.Errorf("fault preset %q: %d %s", p.Label, w.Code, w.Body)
		}
	}
	for _, p := range hookPresets {
		body := `{"webhook":"` + appjwttest.WebhookContentEvent + `","faults":` + mustJSON(t, p.Value) + `}`
		if w := ct.do("POST", consolePath+"api/webhook-faults", body, ck, nil); w.Code != http.StatusOK {
			t.Errorf("webhook fault preset %q: %d %s", p.Label, w.Code, w.Body)
		}
	}
	page := ct.do("GET", consolePath, "", ck, nil).Body.String()
	for _, m := range strings.Split(page, `data-action="`)[1:] {
		action, _, _ := strings.Cut(m, `"`)
		if ct.con.actions["/"+action] == nil {
			t.Errorf("the page has a form for %q, which the console does not take", action)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
