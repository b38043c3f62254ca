// Package testkit holds what the tests of appjwt's packages share: test
// doubles, clocks, servers that misbehave, and the checks that no secret
// shows in an error. Only tests import it.
package testkit

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lpconnect/appjwt/appjwttest"
	"github.com/lpconnect/appjwt/internal/lphttp"
	"golang.org/x/oauth2"
)

// FastRetry keeps the shape of lphttp.Default with pauses short enough for
// tests.
var FastRetry = lphttp.Policy{
	Attempts:      4,
	Pause:         lphttp.Backoff{Base: time.Millisecond, Max: 4 * time.Millisecond},
	RetryAfterMax: 20 * time.Millisecond,
	TooManyMin:    time.Millisecond,
}

// NewServer starts a LivePerson stand-in that the test closes, with its
// fields set by configure, if any, before it starts.
func NewServer(t testing.TB, configure ...func(*appjwttest.Server)) *appjwttest.Server {
	t.Helper()
	s := appjwttest.NewUnstartedServer()
	for _, f := range configure {
		f(s)
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// Clock is a settable offset from the real time.
type Clock struct{ off atomic.Int64 }

// Now is the real time plus the offset.
func (c *Clock) Now() time.Time { return time.Now().Add(time.Duration(c.off.Load())) }

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// Set sets the offset to d.
func (c *Clock) Set(d time.Duration) { c.off.Store(int64(d)) }

// RoundTripFunc is an http.RoundTripper made of a function.
type RoundTripFunc func(*http.Request) (*http.Response, error)

// RoundTrip calls f.
func (f RoundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TokenSourceFunc is an oauth2.TokenSource made of a function.
type TokenSourceFunc func() (*oauth2.Token, error)

// Token calls f.
func (f TokenSourceFunc) Token() (*oauth2.Token, error) { return f() }

// JWT builds an unsigned JWT with the given payload.
func JWT(payload string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc([]byte(payload)) + ".c2ln"
}

// CheckGoroutines fails the test if goroutines it started outlive it.
// Register it before anything whose cleanup stops goroutines.
func CheckGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<16)
			t.Errorf("%d goroutines left running after the test (before: %d):\n%s", n-before, before, buf[:runtime.Stack(buf, true)])
		}
	})
}

// Record is a log record a test saw.
type Record struct {
	Level slog.Level
	Msg   string
	Attrs map[string]string
}

// Keys returns the sorted keys of r's attributes.
func (r Record) Keys() []string { return slices.Sorted(maps.Keys(r.Attrs)) }

// Capture is a slog.Handler that keeps every record it is given.
type Capture struct {
	mu      sync.Mutex
	records []Record
}

func (h *Capture) Enabled(context.Context, slog.Level) bool { return true }
func (h *Capture) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *Capture) WithGroup(string) slog.Handler            { return h }

func (h *Capture) Handle(_ context.Context, r slog.Record) error {
	c := Record{Level: r.Level, Msg: r.Message, Attrs: map[string]string{}}
	r.Attrs(func(a slog.Attr) bool {
		c.Attrs[a.Key] = a.Value.String()
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, c)
	return nil
}

// Take returns the records kept so far, and forgets them.
func (h *Capture) Take() []Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.records
	h.records = nil
	return r
}

// FixedSecrets are secrets with the characters encodings treat specially:
// '/', '+', '=', '&', '<', '>', '"', '\', '%', a space, a leading '-'.
var FixedSecrets = []string{`Ab/Cd+Ef0=`, `-x&y<z>"q\w`, `p a+s%s`}

// EchoForms are the ways a server or proxy may encode secret when it
// echoes a request back.
func EchoForms(secret string) map[string]string {
	var uLower, uUpper, dec, hexRef, pctLower strings.Builder
	for _, r := range secret {
		fmt.Fprintf(&uLower, `\u%04x`, r)
		fmt.Fprintf(&uUpper, `\u%04X`, r)
		fmt.Fprintf(&dec, "&#%d;", r)
		fmt.Fprintf(&hexRef, "&#x%x;", r)
	}
	for i := 0; i < len(secret); i++ {
		fmt.Fprintf(&pctLower, "%%%02x", secret[i])
	}
	jsonText := JSONString(secret) // Go escapes <, > and & too
	return map[string]string{
		"plain":              secret,
		"JSON":               jsonText,
		`JSON \/`:            strings.ReplaceAll(jsonText, "/", `\/`),
		`JSON \u lower`:      uLower.String(),
		`JSON \u upper`:      uUpper.String(),
		"query escape":       url.QueryEscape(secret),
		"path escape":        url.PathEscape(secret),
		"percent lower":      pctLower.String(),
		"HTML escape":        html.EscapeString(secret),
		"HTML decimal":       dec.String(),
		"HTML hex":           hexRef.String(),
		"JSON of query":      JSONString(url.QueryEscape(secret)),
		"HTML of query":      html.EscapeString(url.QueryEscape(secret)),
		"query of JSON \\/":  url.QueryEscape(strings.ReplaceAll(jsonText, "/", `\/`)),
		"percent lower HTML": html.EscapeString(pctLower.String()),
	}
}

// JSONString is s as encoding/json writes it in a string, without quotes.
func JSONString(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b[1 : len(b)-1])
}

// ErrorTexts is every text a caller can reach from err: the ways it is
// commonly printed, and the fields of the RetrieveError inside, if any,
// as they are and as fmt and encoding/json print them.
func ErrorTexts(err error) []string {
	texts := []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err), fmt.Sprintf("%q", err), fmt.Sprintf("%+q", err)}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		fields := []string{string(re.Body), re.ErrorCode, re.ErrorDescription, re.ErrorURI}
		j, err := json.Marshal(fields)
		if err != nil {
			panic(err) // strings always encode
		}
		texts = append(texts, fields...)
		texts = append(texts, fmt.Sprintf("%#v", *re), fmt.Sprintf("%+v", *re), fmt.Sprintf("%q", re.Body), fmt.Sprintf("%+q", re.Body), string(j))
		if re.Response != nil {
			texts = append(texts, re.Response.Status, fmt.Sprint(re.Response.Header), fmt.Sprintf("%#v", re.Response.Header), fmt.Sprintf("%+q", re.Response.Header))
			if re.Response.Request != nil {
				texts = append(texts, fmt.Sprintf("%+v", *re.Response.Request), fmt.Sprintf("%#v", *re.Response.Request))
			}
			for k, vs := range re.Response.Header {
				texts = append(texts, k+": "+strings.Join(vs, ", "))
			}
		}
	}
	return texts
}

// NoEcho fails if secret shows, in any form of EchoForms, in any text.
func NoEcho(t testing.TB, secret string, texts ...string) {
	t.Helper()
	for form, enc := range EchoForms(secret) {
		for _, s := range texts {
			if strings.Contains(s, enc) {
				t.Errorf("secret (%s: %s) shows in %q", form, enc, s)
			}
		}
	}
}

// NoPiece fails if any min bytes of secret in a row show, plainly, in any
// text: what a server sent is shown whole or not at all, never cut.
func NoPiece(t testing.TB, secret string, min int, texts ...string) {
	t.Helper()
	for i := 0; i+min <= len(secret); i++ {
		for _, s := range texts {
			if strings.Contains(s, secret[i:i+min]) {
				t.Errorf("a piece of the secret, %q, shows in %q", secret[i:i+min], s)
				return
			}
		}
	}
}

// VerbsShowing are the fmt verbs, from '!' to '~', under which Sprintf
// shows secret, plainly or in hex, in what it prints of v, with any of a
// few flags, widths and precisions; sorted.
func VerbsShowing(secret string, v any) []string {
	var verbs []string
	for verb := '!'; verb <= '~'; verb++ {
		for _, flags := range []string{"", "#", "+", "-", " ", "0", "#+", "10", ".3", "+#-10.3"} {
			out := fmt.Sprintf("%"+flags+string(verb), v)
			if strings.Contains(out, secret) || strings.Contains(out, fmt.Sprintf("%x", secret)) || strings.Contains(out, fmt.Sprintf("%X", secret)) {
				verbs = append(verbs, string(verb))
				break
			}
		}
	}
	return verbs
}

// EchoServer answers every request with status, header and body.
func EchoServer(t testing.TB, status int, header http.Header, body string) *httptest.Server {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		maps.Copy(w.Header(), header)
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(ts.Close)
	return ts
}

// RawServer answers every request with answer(r), written straight to the
// connection: what net/http's server never sends, such as a reason phrase
// of its own or a body shorter than its Content-Length. It counts the
// requests.
func RawServer(t testing.TB, answer func(r *http.Request) string) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		io.Copy(io.Discard, r.Body)
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		buf.WriteString(answer(r))
		buf.Flush()
	}))
	t.Cleanup(ts.Close)
	return ts, &n
}

// Client is a context whose client is ts's, as golang.org/x/oauth2 takes it.
func Client(ts *httptest.Server) context.Context {
	return context.WithValue(context.Background(), oauth2.HTTPClient, ts.Client())
}

// Stacked is s under three encodings that escape every character, on top
// of each other: each byte percent-encoded, then each character as an
// HTML decimal reference, then each as a JSON \u escape. It is 90 times
// as long as s.
func Stacked(s string) string {
	var pct, ref, u strings.Builder
	for i := range len(s) {
		fmt.Fprintf(&pct, "%%%02X", s[i])
	}
	for _, r := range pct.String() {
		fmt.Fprintf(&ref, "&#%d;", r)
	}
	for _, r := range ref.String() {
		fmt.Fprintf(&u, `\u%04x`, r)
	}
	return u.String()
}

// RoundTripEdgeCases sends the requests and answers that bend the rules
// through the transport newRT makes over each case's base, on synctest's
// fake clock: a nil Header and a first request over plain http (errors,
// not panics), a 401 with a nil Body (handed back), a GetBody that fails
// on the resend (the first 401 comes back whole: body401, a 401 body that
// makes the transport resend), and a 401 whose body stalls (handed back
// unread within lphttp.ErrorCodeWait + 100 ms). ctx is each request's
// context.
func RoundTripEdgeCases(t *testing.T, ctx func() context.Context, body401 string, newRT func(base http.RoundTripper) http.RoundTripper) {
	request := func(method, url string, body io.Reader) *http.Request {
		r, err := http.NewRequestWithContext(ctx(), method, url, body)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	get := func() *http.Request { return request("GET", "https://api.test/x", nil) }
	tests := []struct {
		name    string
		req     func() *http.Request
		base    RoundTripFunc
		within  time.Duration // 0: no bound checked; on the fake clock
		wantErr string        // "": the 401; "nil": nil, nil, as the base answered
		want401 string        // the body of the 401 that goes back, if it is read
	}{
		{"a base that answers nil, nil", get,
			func(*http.Request) (*http.Response, error) { return nil, nil }, 0, "nil", ""},
		{"a base that answers a response and an error", get, func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("x")), Request: r}, errors.New("broken base")
		}, 0, "broken base", ""},
		{"nil Header", func() *http.Request {
			r := get()
			r.Header = nil
			return r
		}, nil, 0, "nil Header", ""},
		{"plain http", func() *http.Request { return request("GET", "http://api.test/x", nil) }, nil, 0, "https only", ""},
		{"401 with a nil Body", get,
			func(r *http.Request) (*http.Response, error) { return &http.Response{StatusCode: 401, Request: r}, nil }, 0, "", ""},
		{"GetBody fails on the resend", func() *http.Request {
			r := request("POST", "https://api.test/x", strings.NewReader("{}"))
			r.GetBody = func() (io.ReadCloser, error) { return nil, errors.New("body gone") }
			return r
		}, func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 401, Body: io.NopCloser(strings.NewReader(body401)), Request: r}, nil
		}, 0, "", body401},
		{"401 whose body stalls", get, func(r *http.Request) (*http.Response, error) {
			pr, _ := io.Pipe() // a body that never comes
			return &http.Response{StatusCode: 401, Body: pr, Request: r}, nil
		}, lphttp.ErrorCodeWait + 100*time.Millisecond, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				resp, err := newRT(tt.base).RoundTrip(tt.req())
				if d := time.Since(start); tt.within != 0 && d > tt.within {
					t.Errorf("returned after %v, want within %v", d, tt.within)
				}
				if tt.wantErr == "nil" { // for http.Client to report, as without the transport
					if resp != nil || err != nil {
						t.Errorf("RoundTrip = %v, %v; want nil, nil", resp, err)
					}
					return
				}
				if tt.wantErr != "" {
					if resp != nil {
						t.Errorf("RoundTrip answered %v beside its error", resp.Status)
					}
					if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
						t.Errorf("error %v, want one about %q", err, tt.wantErr)
					}
					return
				}
				if err != nil || resp.StatusCode != 401 {
					t.Fatalf("RoundTrip = %v, %v; want the 401", resp, err)
				}
				if tt.want401 != "" {
					if b, err := io.ReadAll(resp.Body); err != nil || string(b) != tt.want401 {
						t.Errorf("the 401's body: %q, %v; want it whole: %q", b, err, tt.want401)
					}
				}
				if resp.Body != nil {
					resp.Body.Close()
				}
			})
		})
	}
}

// Redirects holds each transport that wirings make over a base to the
// rule of lphttp.MayCarry: the credential in header follows a redirect
// only to the host, port included, that the first request named, and only
// over https; a first request over plain http is refused. That holds
// whatever the base does, since the chain of hops is the client's: each
// wiring runs over net/http's transport, over a base that drops the
// answer's Request (a cache or recorder that builds its own Response), and
// over one that rebuilds the request it sends (a retry middleware). ctx is
// each request's context.
func Redirects(t *testing.T, header string, ctx func() context.Context, wirings map[string]func(base http.RoundTripper) http.RoundTripper) {
	var mu sync.Mutex
	sent := map[string]string{} // where the redirect led: the header that arrived
	record := func(where string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			sent[where] = r.Header.Get(header)
		}
	}
	otherMux := http.NewServeMux()
	otherMux.Handle("/final", record("cross-host https"))
	otherMux.Handle("/hop", http.RedirectHandler("/final", http.StatusFound))
	other := httptest.NewTLSServer(otherMux)
	t.Cleanup(other.Close)
	plain := httptest.NewServer(record("http"))
	t.Cleanup(plain.Close)
	mux := http.NewServeMux()
	api := httptest.NewTLSServer(mux)
	t.Cleanup(api.Close)
	_, otherPort, _ := net.SplitHostPort(other.Listener.Addr().String())
	mux.Handle("/final", record("same host https"))
	mux.Handle("/same", http.RedirectHandler("/final", http.StatusFound))
	mux.Handle("/cross", http.RedirectHandler("https://example.com:"+otherPort+"/hop", http.StatusFound))
	mux.Handle("/http", http.RedirectHandler(plain.URL+"/final", http.StatusFound))
	// example.com, which the test certificate names, is the other server.
	base := api.Client().Transport.(*http.Transport).Clone()
	base.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if strings.HasPrefix(addr, "example.com:") {
			addr = other.Listener.Addr().String()
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	bases := map[string]http.RoundTripper{
		"": base,
		", a Base that drops the Request": RoundTripFunc(func(r *http.Request) (*http.Response, error) {
			resp, err := base.RoundTrip(r)
			if resp != nil {
				resp.Request = nil
			}
			return resp, err
		}),
		", a Base that rebuilds requests": RoundTripFunc(func(r *http.Request) (*http.Response, error) {
			nr, err := http.NewRequestWithContext(r.Context(), r.Method, r.URL.String(), nil)
			if err != nil {
				return nil, err
			}
			nr.Header = r.Header.Clone()
			return base.RoundTrip(nr)
		}),
	}
	get := func(hc *http.Client, url string) error {
		req, err := http.NewRequestWithContext(ctx(), "GET", url, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	for name, wiring := range wirings {
		for baseName, b := range bases {
			t.Run(name+baseName, func(t *testing.T) {
				hc := &http.Client{Transport: wiring(b)}
				for path, where := range map[string]string{"/same": "same host https", "/cross": "cross-host https", "/http": "http"} {
					if err := get(hc, api.URL+path); err != nil {
						t.Fatalf("%s: %v", path, err)
					}
					mu.Lock()
					got, ok := sent[where]
					delete(sent, where)
					mu.Unlock()
					if want := where == "same host https"; !ok || (got != "") != want {
						t.Errorf("redirect to %s: %s %.12q (arrived: %v), want one: %v", where, header, got, ok, want)
					}
				}
				if err := get(hc, plain.URL+"/final"); err == nil || !strings.Contains(err.Error(), "https only") {
					t.Errorf("a first request over http: %v, want it refused", err)
				}
				mu.Lock()
				defer mu.Unlock()
				if got, ok := sent["http"]; ok {
					t.Errorf("a first request over http reached the server, %s %.12q", header, got)
				}
			})
		}
	}
}
