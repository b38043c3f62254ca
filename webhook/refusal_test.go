package webhook

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
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

// fmt of a *Verifier, as a debug log or a %+v of a server struct holding
// one prints it, shows no secret, with Config.Secrets too.
func TestVerifierFormatShowsNoSecret(t *testing.T) {
	v := newTestVerifier(t)
	multi := newTestVerifier(t, func(c *Config) {
		c.ClientSecret = ""
		c.Secrets = func(a, cl string) (string, bool) { return testSecret, true }
	})
	multi.Verify(lpHeader(agentMessage, testSecret), []byte(agentMessage))
	type server struct{ V *Verifier }
	for name, x := range map[string]any{"*Verifier": v, "*Verifier with Secrets": multi, "struct{V *Verifier}": server{v}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			if out := fmt.Sprintf(verb, x); strings.Contains(out, testSecret) {
				t.Errorf("%s %s shows the secret: %s", name, verb, out)
			}
		}
	}
}
