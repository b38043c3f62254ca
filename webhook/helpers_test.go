package webhook

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/lpconnect/appjwt/secret"
)

// The app installation of the tests. The secret is the placeholder of
// LivePerson's Java example.
const (
	testAccount = "le12345678"
	testClient  = "75588e18-0213-4e33-8174-883acac7e3c4"
	testSecret  = "THE_CLIENT_SECRET"
)

// agentMessage is LivePerson's documented example "Agent sent a text
// message", on one line as a delivery carries it.
const agentMessage = `{"kind":"notification","body":{"changes":[{"sequence":2,"originatorId":"29c3019d-fe0b-5200-afe8-737abfeae4b4","originatorMetadata":{"id":"29c3019d-fe0b-5200-afe8-737abfeae4b4","role":"ASSIGNED_AGENT"},"serverTimestamp":1528371199686,"event":{"type":"ContentEvent","message":"Hello from the Agent\n","contentType":"text/plain"},"dialogId":"5491244f-e462-4c63-bf4e-faf4b2d3e7b5"}]},"type":"ms.MessagingEventNotification"}`

// testConfig is the Config of the test installation, changed by each of
// opts.
func testConfig(opts ...func(*Config)) Config {
	c := Config{AccountID: testAccount, ClientID: testClient, ClientSecret: testSecret}
	for _, o := range opts {
		o(&c)
	}
	return c
}

func newTestVerifier(t testing.TB, opts ...func(*Config)) *Verifier {
	t.Helper()
	v, err := testConfig(opts...).NewVerifier()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// lpHeader returns the headers LivePerson sends with body, signed with
// clientSecret.
func lpHeader(body string, clientSecret secret.String) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(HeaderAccountID, testAccount)
	h.Set(HeaderClientID, testClient)
	h.Set(HeaderSignature, Sign(clientSecret, []byte(body)))
	return h
}

// served is what a handler chain made of one request.
type served struct {
	status   int
	header   http.Header
	answer   string
	nextBody []byte // what next read, nil if next was not called
}

// serve sends a request with h and body through v.Handler, to a next
// handler that reads the body and answers 200.
func serve(t *testing.T, v *Verifier, h http.Header, body io.Reader, contentLength int64) served {
	t.Helper()
	var s served
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("next handler reading the body: %v", err)
		}
		if r.ContentLength != int64(len(b)) {
			t.Errorf("next handler: ContentLength %d, body %d bytes", r.ContentLength, len(b))
		}
		s.nextBody = b
	})
	r := httptest.NewRequest(http.MethodPost, "https://connector.example/lp", body)
	r.Header = h
	r.ContentLength = contentLength
	w := httptest.NewRecorder()
	v.Handler(next).ServeHTTP(w, r)
	s.status, s.header, s.answer = w.Code, w.Result().Header, w.Body.String()
	return s
}

// logTo returns a Config option that logs, at DEBUG and up, into w.
func logTo(w io.Writer) func(*Config) {
	return func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
}

// logBuffer holds the records of a Verifier that serves on another
// goroutine: a test reads them once the peer has the answer, which the
// Verifier gives after logging.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// echoes returns the first of secrets found in text, and whether any was.
func echoes(text string, secrets ...string) (string, bool) {
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			return s, true
		}
	}
	return "", false
}

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// endless is an io.Reader of an endless body.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	return len(p), nil
}
