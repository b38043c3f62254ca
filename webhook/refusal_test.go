package webhook

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{c, l.n}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// A request refused on its headers has no more of its body read, by the
// Verifier or by net/http after the handler returns (which would read up
// to 256 KiB of it), than what came in with the headers.
func TestRefusedBodyIsNotReadPastTheCap(t *testing.T) {
	v := newTestVerifier(t, func(c *Config) { c.MaxBodyBytes = 1 << 10 })
	var read atomic.Int64
	ts := httptest.NewUnstartedServer(v.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	ts.Listener = countingListener{ts.Listener, &read}
	ts.Start()
	defer ts.Close()

	const bodyLen = 200 << 10
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	head := fmt.Sprintf("POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", bodyLen)
	go func() {
		io.WriteString(conn, head)
		io.Copy(conn, io.LimitReader(neverEnding('x'), bodyLen))
	}()
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	io.Copy(io.Discard, br) // until the server closes the connection: it reads nothing after

	got := read.Load() - int64(len(head))
	t.Logf("status %d, Close %v; server read %d body bytes (cap %d)", resp.StatusCode, resp.Close, got, 1<<10)
	// What net/http's 4 KiB read buffer took in with the headers, at most.
	if got > 4<<10 {
		t.Errorf("server read %d bytes of a refused body, want no more than its 4 KiB read buffer", got)
	}
}

type neverEnding byte

func (b neverEnding) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

// A body that never comes is refused once ReadTimeout passes: the headers
// it needs (account, client id, any well-formed signature) are not secret,
// and the peer must not hold a handler and its connection.
func TestStalledBodyIsRefused(t *testing.T) {
	v := newTestVerifier(t, func(c *Config) { c.ReadTimeout = 100 * time.Millisecond })
	ts := httptest.NewServer(v.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	defer ts.Close()
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\n%s: %s\r\n%s: %s\r\n%s: %s\r\nContent-Length: 1000\r\n\r\n{",
		HeaderAccountID, testAccount, HeaderClientID, testClient, HeaderSignature, Sign("guess", nil))
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer 3 s after the headers, with a ReadTimeout of 100 ms: %v", err)
	}
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status %d, want 400", resp.StatusCode)
	}
}

// lpHead is the head of a POST that passes the header checks without the
// secret, as anyone can send: the account, the client id and a
// well-formed signature, with the given framing headers.
func lpHead(framing string) string {
	return fmt.Sprintf("POST / HTTP/1.1\r\nHost: x\r\n%s: %s\r\n%s: %s\r\n%s: %s\r\n%s\r\n\r\n",
		HeaderAccountID, testAccount, HeaderClientID, testClient, HeaderSignature, Sign("guess", nil), framing)
}

// readingBody returns a handler that signals on reading once each
// request's body is first read, which the Verifier does after it has
// made its buffer, and then calls next.
func readingBody(reading chan<- struct{}, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = &firstRead{ReadCloser: r.Body, reading: reading}
		next.ServeHTTP(w, r)
	})
}

type firstRead struct {
	io.ReadCloser
	reading chan<- struct{}
	once    sync.Once
}

func (f *firstRead) Read(p []byte) (int, error) {
	f.once.Do(func() { f.reading <- struct{}{} })
	return f.ReadCloser.Read(p)
}

// waitFor waits for a signal on ch, and fails the test if none comes
// within 10 s.
func waitFor(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("no request read its body within 10 s")
	}
}

// heapInUse returns the live heap and the goroutine stacks, after a
// collection.
func heapInUse() (heap, stacks int64) {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc), int64(m.StackInuse)
}

// Requests that send their headers and no body, claiming a body at the
// cap, hold memory for what they sent, not for what they claimed: the
// headers they need are not secret.
func TestHeaderOnlyRequestsHoldLittleMemory(t *testing.T) {
	const (
		requests  = 100
		maxGrowth = 24 << 20
	)
	v := newTestVerifier(t) // the cap: defaultMaxBodyBytes
	reading := make(chan struct{})
	ts := httptest.NewServer(readingBody(reading, v.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))))
	defer ts.Close()
	head := lpHead(fmt.Sprintf("Content-Length: %d", defaultMaxBodyBytes))

	heap0, stacks0 := heapInUse()
	conns := make([]net.Conn, 0, requests)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range requests {
		c, err := net.Dial("tcp", ts.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if _, err := io.WriteString(c, head); err != nil {
			t.Fatal(err)
		}
	}
	for range requests {
		waitFor(t, reading)
	}
	heap1, stacks1 := heapInUse()

	heap, stacks := heap1-heap0, stacks1-stacks0
	t.Logf("%d requests waiting for their bodies: heap %+d KiB (%.1f KiB each), goroutine stacks %+d KiB (%.1f KiB each), client side included",
		requests, heap>>10, float64(heap)/requests/1024, stacks>>10, float64(stacks)/requests/1024)
	if heap > maxGrowth {
		t.Errorf("the heap grew by %d MiB for %d requests that sent no body, want less than %d MiB", heap>>20, requests, maxGrowth>>20)
	}
}

// A Content-Length claim, however large, allocates nothing in its measure
// and cannot overflow: under a cap that lets it through, the request
// waits for its body like any other, and is refused when the body ends
// short.
func TestHugeContentLengthClaims(t *testing.T) {
	tests := []struct {
		name          string
		max           int64
		contentLength int64
		wantAnswer    string
	}{
		{"1 TiB under a cap of 1 PiB", 1 << 50, 1 << 40, "body unreadable"},
		{"MaxInt64 under a cap of MaxInt64", math.MaxInt64, math.MaxInt64, "body unreadable"},
		{"MaxInt64 under a cap of 1 PiB", 1 << 50, math.MaxInt64, "body too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs logBuffer
			v := newTestVerifier(t, logTo(&logs), func(c *Config) { c.MaxBodyBytes = tt.max })
			reading := make(chan struct{}, 1)
			ts := httptest.NewServer(readingBody(reading, v.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
				t.Error("next handler called")
			}))))
			defer ts.Close()

			heap0, _ := heapInUse()
			conn, err := net.Dial("tcp", ts.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, lpHead(fmt.Sprintf("Content-Length: %d", tt.contentLength))+"{"); err != nil {
				t.Fatal(err)
			}
			if tt.wantAnswer == "body unreadable" {
				waitFor(t, reading)
				if heap1, _ := heapInUse(); heap1-heap0 > 1<<20 {
					t.Errorf("the heap grew by %d KiB for a claim with 1 byte sent, want less than 1 MiB", (heap1-heap0)>>10)
				}
				conn.(*net.TCPConn).CloseWrite()
			}
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			answer, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusBadRequest || string(answer) != tt.wantAnswer+"\n" {
				t.Errorf("answer %d %q, want 400 %q", resp.StatusCode, answer, tt.wantAnswer)
			}
		})
	}
}

// A body whose reading fails is logged with a fixed text: net/http's
// error for a malformed chunk trailer quotes the peer's line.
func TestBodyReadErrorsAreFixedTexts(t *testing.T) {
	const peerText = "Peer-Chosen-Text-In-A-Trailer"
	tests := []struct {
		name    string
		request string
		wantErr string
	}{
		{"malformed trailer", lpHead("Transfer-Encoding: chunked") + "1\r\n{\r\n0\r\n" + peerText + " without a colon\r\n\r\n", errBodyUnreadable.Error()},
		{"malformed chunk size", lpHead("Transfer-Encoding: chunked") + peerText + "\r\n{\r\n0\r\n\r\n", errBodyUnreadable.Error()},
		{"connection ends early", lpHead("Content-Length: 100") + `{"` + peerText, errBodyTruncated.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs logBuffer
			v := newTestVerifier(t, logTo(&logs))
			ts := httptest.NewServer(v.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
			defer ts.Close()
			conn, err := net.Dial("tcp", ts.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			io.WriteString(conn, tt.request)
			conn.(*net.TCPConn).CloseWrite()
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d, want 400", resp.StatusCode)
			}
			if strings.Contains(logs.String(), peerText) {
				t.Errorf("the log quotes the peer:\n%s", logs.String())
			}
			if want := fmt.Sprintf("error=%q", tt.wantErr); !strings.Contains(logs.String(), want) {
				t.Errorf("logs:\n%s\nwant %s", logs.String(), want)
			}
		})
	}
}

// The Verifier's ReadTimeout never lengthens a stricter one of the
// server's: the server's cuts the body off first.
func TestServerReadTimeoutHolds(t *testing.T) {
	const serverTimeout = 200 * time.Millisecond
	var logs logBuffer
	v := newTestVerifier(t, logTo(&logs), func(c *Config) { c.ReadTimeout = time.Minute })
	ts := httptest.NewUnstartedServer(v.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	ts.Config.ReadTimeout = serverTimeout
	ts.Start()
	defer ts.Close()
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	io.WriteString(conn, lpHead("Content-Length: 1000")+"{")
	// Far below the Verifier's minute, far above the server's 200 ms.
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer %v after the headers, with the server's ReadTimeout of %v: %v", time.Since(start), serverTimeout, err)
	}
	resp.Body.Close()
	t.Logf("answered %d after %v", resp.StatusCode, time.Since(start))
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status %d, want 400", resp.StatusCode)
	}
	if want := fmt.Sprintf("error=%q", errBodyTimeout.Error()); !strings.Contains(logs.String(), want) {
		t.Errorf("logs:\n%s\nwant %s", logs.String(), want)
	}
}

// deadlineWriter calls set for each read deadline set through it, as a
// server's ResponseWriter does when a handler sets one.
type deadlineWriter struct {
	http.ResponseWriter
	set func()
}

func (w deadlineWriter) SetReadDeadline(time.Time) error { w.set(); return nil }

// When the read timeout cuts a body, the deadline call ends before the
// handler returns: after that the ResponseWriter is the server's again,
// and HTTP/2 pools it, so that a late call crashed the process (attack
// review). Here the call is slow, and the body ends as the timer fires.
func TestTheCutEndsBeforeTheHandler(t *testing.T) {
	const body = `{"kind":"notification"}`
	v := newTestVerifier(t, func(c *Config) { c.ReadTimeout = time.Millisecond })
	pr, pw := io.Pipe()
	var returned, late atomic.Bool
	setDone := make(chan struct{})
	w := deadlineWriter{httptest.NewRecorder(), func() {
		defer close(setDone)
		pw.Close() // the read ends, and the handler goes on
		time.Sleep(20 * time.Millisecond)
		late.Store(returned.Load())
	}}
	r := httptest.NewRequest(http.MethodPost, "/", pr)
	r.Header = lpHeader(body, testSecret)
	r.ContentLength = -1
	v.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).ServeHTTP(w, r)
	returned.Store(true)
	<-setDone
	if late.Load() {
		t.Error("the handler returned while the timer was still setting the read deadline")
	}
}

// A body that a handler in front of the Verifier read is refused as that,
// 500, not as a wrong signature: it is the server's mistake, not the
// peer's.
func TestBodyReadBeforeTheVerifier(t *testing.T) {
	tests := []struct {
		name       string
		before     func(r *http.Request)
		wantStatus int
	}{
		{"read, not restored", func(r *http.Request) { io.ReadAll(r.Body) }, 500},
		{"read in part", func(r *http.Request) { io.ReadFull(r.Body, make([]byte, 10)) }, 500},
		{"read and closed", func(r *http.Request) { io.ReadAll(r.Body); r.Body.Close() }, 500},
		{"closed", func(r *http.Request) { r.Body.Close() }, 500},
		{"replaced by http.NoBody", func(r *http.Request) { r.Body = http.NoBody }, 500},
		{"read and restored", func(r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(b))
		}, 200},
		{"untouched", func(*http.Request) {}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs logBuffer
			v := newTestVerifier(t, logTo(&logs))
			verified := v.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				tt.before(r)
				verified.ServeHTTP(w, r)
			}))
			defer ts.Close()
			req, err := http.NewRequest(http.MethodPost, ts.URL, strings.NewReader(agentMessage))
			if err != nil {
				t.Fatal(err)
			}
			req.Header = lpHeader(agentMessage, testSecret)
			resp, err := ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			answer, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("answer %d %q, want %d", resp.StatusCode, answer, tt.wantStatus)
			}
			if tt.wantStatus != 500 {
				return
			}
			if string(answer) != "internal server error\n" {
				t.Errorf("answer %q, want \"internal server error\\n\"", answer)
			}
			if want := fmt.Sprintf("status=500 error=%q", errBodyConsumed.Error()); !strings.Contains(logs.String(), want) {
				t.Errorf("logs:\n%s\nwant %s", logs.String(), want)
			}
		})
	}
}
