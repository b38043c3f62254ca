package consumerjws

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lpconnect/appjwt"
	"github.com/lpconnect/appjwt/appjwttest"
	"github.com/lpconnect/appjwt/internal/redact"
	"github.com/lpconnect/appjwt/internal/testkit"
	"golang.org/x/oauth2"
)

func TestFetchErrors(t *testing.T) {
	tests := []struct {
		name         string
		faults       func(app string) []appjwttest.Fault
		wantStatus   int // of the RetrieveError; 0: none wanted
		wantRequests int
		wantText     string // in the error
	}{
		{"400 final", func(string) []appjwttest.Fault { return []appjwttest.Fault{{Status: 400, Body: `{"error":"bad"}`}} },
			400, 1, `400 Bad Request: answer "{\"error\":\"bad\"}"`},
		{"401 with errorCode", func(string) []appjwttest.Fault { return []appjwttest.Fault{{Status: 403, Body: lpError(40001)}} },
			403, 1, "403 Forbidden (errorCode 40001)"},
		{"503 then success", func(string) []appjwttest.Fault { return []appjwttest.Fault{{Status: 503}, {Status: 503}} },
			0, 3, ""},
		{"429 with Retry-After then success", func(string) []appjwttest.Fault { return []appjwttest.Fault{{Status: 429, RetryAfter: "1"}} },
			0, 2, ""},
		{"503 four times", func(string) []appjwttest.Fault {
			return []appjwttest.Fault{{Status: 503}, {Status: 503}, {Status: 503}, {Status: 503}}
		},
			503, 4, "503 Service Unavailable: answer \"\""},
		{"reset then success", func(string) []appjwttest.Fault { return []appjwttest.Fault{{Reset: true}} },
			0, 2, ""},
		{"201 not JSON", func(string) []appjwttest.Fault { return []appjwttest.Fault{{Status: 201, Body: "<html>"}} },
			0, 1, "201 Created: answer is not a ConsumerJWS"},
		{"201 no token", func(string) []appjwttest.Fault { return []appjwttest.Fault{{Status: 201, Body: `{}`}} },
			0, 1, "201 Created: answer has no token"},
		{"201 token with a newline", func(string) []appjwttest.Fault { return []appjwttest.Fault{{Status: 201, Body: `{"token":"a\nb"}`}} },
			0, 1, "201 Created: token has characters a header cannot carry"},
		{"too large", func(string) []appjwttest.Fault {
			return []appjwttest.Fault{{Status: 201, Body: strings.Repeat(" ", maxBody+1)}}
		}, 0, 1, "answer (201 Created) is larger than 65536 bytes"},
		{"redirect", func(string) []appjwttest.Fault { return []appjwttest.Fault{{Status: 302}} },
			302, 1, "302 Found"},
		// A body, or a header, that echoes the AppJWT is withheld.
		{"echo plain", func(app string) []appjwttest.Fault {
			return []appjwttest.Fault{{Status: 400, Body: `{"you sent":"` + app + `"}`}}
		}, 400, 1, withheldText},
		{"echo percent-encoded", func(app string) []appjwttest.Fault {
			return []appjwttest.Fault{{Status: 400, Body: "auth=" + percentAll(app)}}
		}, 400, 1, withheldText},
		{"echo JSON-escaped", func(app string) []appjwttest.Fault {
			return []appjwttest.Fault{{Status: 400, Body: `{"auth":"` + unicodeAll(app) + `"}`}}
		}, 400, 1, withheldText},
		{"echo signature only", func(app string) []appjwttest.Fault {
			return []appjwttest.Fault{{Status: 400, Body: app[strings.LastIndexByte(app, '.')+1:]}}
		}, 400, 1, withheldText},
		{"echo across the body cap", func(app string) []appjwttest.Fault {
			sig := app[strings.LastIndexByte(app, '.')+1:]
			return []appjwttest.Fault{{Status: 400, Body: "<p>" + strings.Repeat("y", 21) + testkit.Stacked(sig) + " " + strings.Repeat("z", maxErrorBody)}}
		}, 400, 1, withheldText},
		// No error message quotes part of an answer.
		{"long answer counted", func(string) []appjwttest.Fault {
			return []appjwttest.Fault{{Status: 400, Body: strings.Repeat("x", maxQuoted+1)}}
		}, 400, 1, "400 Bad Request: answer of 257 bytes"},
		{"echo in a header", func(app string) []appjwttest.Fault {
			return []appjwttest.Fault{{Status: 400, RetryAfter: app}}
		}, 400, 1, "400 Bad Request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStand(t)
			c := s.cache(func(c *Config) { c.Domain = s.srv.Host() })
			app, err := s.src.Token()
			if err != nil {
				t.Fatal(err)
			}
			s.srv.QueueFaults(appjwttest.Consumer, tt.faults(app.AccessToken)...)
			jws, err := c.Token(context.Background(), "a")
			if got := len(s.srv.Requests(appjwttest.Consumer)); got != tt.wantRequests {
				t.Errorf("%d requests, want %d", got, tt.wantRequests)
			}
			if tt.wantText == "" {
				if err != nil {
					t.Fatalf("error %v, want none", err)
				}
				if _, err := s.srv.Verify(appjwttest.Consumer, jws); err != nil {
					t.Error(err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			checkError(t, err, app.AccessToken, s.srv.Host())
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q lacks %q", err, tt.wantText)
			}
			var re *oauth2.RetrieveError
			if got := errors.As(err, &re); got != (tt.wantStatus != 0) {
				t.Fatalf("errors.As RetrieveError: %v, want %v", got, tt.wantStatus != 0)
			}
			if re != nil && re.Response.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d", re.Response.StatusCode, tt.wantStatus)
			}
		})
	}
}

// checkError checks that err is one line that says what failed and where,
// and that no text reachable from it holds the AppJWT's signature.
func checkError(t *testing.T, err error, app, host string) {
	t.Helper()
	sig := app[strings.LastIndexByte(app, '.')+1:]
	if want := "consumerjws: ConsumerJWS request for account \"" + "le12345678" + "\" to " + host + ": "; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q does not start with %q", err, want)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q is more than one line", err)
	}
	texts := []string{}
	for e := err; e != nil; e = errors.Unwrap(e) {
		texts = append(texts, e.Error(), fmt.Sprintf("%+v", e), fmt.Sprintf("%#v", e))
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		texts = append(texts, string(re.Body), fmt.Sprintf("%#v", re.Response.Header), fmt.Sprintf("%#v", re.Response.Request.Header), re.Response.Status)
	}
	for _, text := range texts {
		if redact.Echoes(text, sig) {
			t.Errorf("error text shows the AppJWT: %q", text)
		}
	}
}

func percentAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, "%%%02x", s[i])
	}
	return url.PathEscape(b.String()) // and once more
}

func unicodeAll(s string) string {
	var b strings.Builder
	for _, r := range s {
		fmt.Fprintf(&b, `\u%04X`, r)
	}
	return b.String()
}

// rawTLS answers every request with the raw status line line(r), which
// net/http's server never sends, such as one that echoes a header.
func rawTLS(t *testing.T, line func(r *http.Request) string) *httptest.Server {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		rw.WriteString(line(r) + "\r\nContent-Length: 0\r\n\r\n")
		rw.Flush()
	}))
	t.Cleanup(ts.Close)
	return ts
}

func TestConsumerIDEchoedIsWithheld(t *testing.T) {
	const id = "+15551234567"
	echo := appjwttest.Fault{Status: 400, Body: `{"error":"unknown ext_consumer_id ` + id + `"}`}
	s := newStand(t, func(s *appjwttest.Server) { s.ConsumerJWSLifetime = 100 * time.Second })
	var logs bytes.Buffer
	c := s.cache(func(c *Config) {
		c.Domain = s.srv.Host()
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	k := clockOf(c)
	s.srv.QueueFaults(appjwttest.Consumer, echo)
	_, err := c.Token(context.Background(), id)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response.StatusCode != 400 || strings.Contains(err.Error(), id) || strings.Contains(string(re.Body), id) {
		t.Errorf("error %v, want a RetrieveError with status 400 that does not show the ext_consumer_id", err)
	}
	k.Set(time.Second) // past the backoff after the failure
	if _, err := c.Token(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	k.Set(92 * time.Second) // a background refresh is due, and fails
	s.srv.QueueFaults(appjwttest.Consumer, echo)
	c.Token(context.Background(), id)
	settle(c, id)
	if !strings.Contains(logs.String(), msgRefreshFailed) || strings.Contains(logs.String(), id) {
		t.Errorf("log, want the failed refresh without the ext_consumer_id:\n%s", logs.String())
	}

	const digits = "15551234567"
	ts := rawTLS(t, func(*http.Request) string { return "HTTP/1.1 " + digits + " x" })
	cfg := Config{AccountID: "le1", Domain: ts.Listener.Addr().String(), Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "app.jwt.signature-of-the-appjwt"})}
	raw := cfg.NewCache(context.WithValue(context.Background(), oauth2.HTTPClient, ts.Client()))
	raw.retry = testkit.FastRetry
	if _, err := raw.Token(context.Background(), digits); err == nil || strings.Contains(err.Error(), digits) {
		t.Errorf("status line echoing the id: error %v, want one that does not show it", err)
	}
}

func TestTransportErrorsDoNotEchoTokens(t *testing.T) {
	for _, hdr := range []string{"X-Lp-On-Behalf", "Authorization"} {
		t.Run(hdr, func(t *testing.T) {
			ts := rawTLS(t, func(r *http.Request) string { return "HTTP/1.1 " + r.Header.Get(hdr) + " x" })
			c := fakeCache(&fakeIdP{}, 10)
			const app = "app.jwt.signature-of-the-appjwt"
			client := &http.Client{Transport: &Transport{Cache: c, Base: &appjwt.Transport{
				Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: app}), Base: ts.Client().Transport}}}
			req, _ := http.NewRequestWithContext(WithConsumer(context.Background(), "a"), "GET", ts.URL, nil)
			_, err := client.Do(req)
			if err == nil {
				t.Fatal("got no error")
			}
			jws, _ := c.Token(context.Background(), "a")
			for _, token := range []string{jws, "signature-of-the-appjwt"} {
				if strings.Contains(err.Error(), token) {
					t.Errorf("error shows a token: %.200s...", err)
				}
			}
		})
	}
}
