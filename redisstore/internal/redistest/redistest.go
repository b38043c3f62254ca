// Package redistest runs a real redis-server for tests: on a free loopback
// port, with nothing saved to disk, stopped when the test ends, and with
// the faults a fleet must live through at hand: the server killed and
// started again, paused (SIGSTOP) and resumed, and flushed.
//
// A test that calls [Start] is skipped when no redis-server is installed,
// unless the environment has CI=true: CI installs one (.ci/run), and there
// a missing server is a failure, not a skip.
package redistest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long Start waits for a server to answer PING.
const startTimeout = 10 * time.Second

// Server is one redis-server process that a test started. Its methods are
// for the goroutine of the test that started it.
type Server struct {
	// Addr is the server's address, 127.0.0.1:port; it keeps it across
	// Kill and Restart.
	Addr string

	tb      testing.TB
	bin     string
	port    int
	cluster bool
	cmd     *exec.Cmd     // nil while the server does not run
	done    chan struct{} // closed once cmd has exited
	out     *lockedBuffer
}

// Start starts a redis-server for tb and stops it when tb ends. It skips
// tb when there is no redis-server on PATH, or fails it if CI=true.
func Start(tb testing.TB) *Server {
	tb.Helper()
	return start(tb, false)
}

// StartCluster is Start for a Redis Cluster of one node, which serves
// every slot: enough for a cluster client to route by hash slot, run
// scripts on a key's node and follow its hash tags.
func StartCluster(tb testing.TB) *Server {
	tb.Helper()
	return start(tb, true)
}

func start(tb testing.TB, cluster bool) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatal("redistest: no redis-server on PATH, and CI=true: .ci/run installs Debian's redis-server")
		}
		tb.Skip("redistest: no redis-server on PATH (apt-get install redis-server); CI=true makes this a failure")
	}
	s := &Server{tb: tb, bin: bin, cluster: cluster}
	// A port free when asked may be taken before the server binds it:
	// another one is tried then.
	for try := 0; ; try++ {
		if s.port, err = freePort(); err == nil {
			s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
			if err = s.start(); err == nil {
				break
			}
		}
		if try == 2 {
			tb.Fatalf("redistest: starting redis-server: %v", err)
		}
	}
	tb.Cleanup(s.stop)
	return s
}

// Kill stops the server at once, as a crash would: SIGKILL. Restart
// starts it again, empty, on the same address.
func (s *Server) Kill() {
	s.tb.Helper()
	s.stop()
}

// Restart starts the server again on its address, after Kill.
func (s *Server) Restart() {
	s.tb.Helper()
	if s.cmd != nil {
		s.tb.Fatal("redistest: Restart of a server that runs")
	}
	if err := s.start(); err != nil {
		s.tb.Fatalf("redistest: restarting redis-server: %v", err)
	}
}

// Pause stops the server's process (SIGSTOP): its port still takes
// connections, which the kernel queues, and nothing answers, as with a
// server stalled or a network that drops packets.
func (s *Server) Pause() {
	s.tb.Helper()
	s.signal(syscall.SIGSTOP)
}

// Resume lets a paused server go on (SIGCONT).
func (s *Server) Resume() {
	s.tb.Helper()
	s.signal(syscall.SIGCONT)
}

// Flush deletes every key of the server: FLUSHALL.
func (s *Server) Flush() {
	s.tb.Helper()
	if reply, err := s.command("FLUSHALL"); err != nil || reply != "+OK" {
		s.tb.Fatalf("redistest: FLUSHALL: %q, %v", reply, err)
	}
}

func (s *Server) signal(sig syscall.Signal) {
	s.tb.Helper()
	if s.cmd == nil {
		s.tb.Fatalf("redistest: %v to a server that does not run", sig)
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.tb.Fatalf("redistest: %v: %v", sig, err)
	}
}

// start starts the server on s.port and waits until it answers PING.
func (s *Server) start() error {
	s.out = &lockedBuffer{}
	args := []string{"--save", "", "--appendonly", "no",
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--dir", s.tb.TempDir()}
	if s.cluster {
		args = append(args, "--cluster-enabled", "yes")
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(s.done)
	deadline := time.Now().Add(startTimeout)
	for {
		reply, err := s.command("PING")
		if err == nil && reply == "+PONG" {
			if !s.cluster {
				return nil
			}
			// A new node serves no slot: it is given all of them, and is
			// ready once the cluster's state is ok.
			if reply, err = s.command("CLUSTER INFO"); err == nil && !strings.Contains(reply, "cluster_state:ok") {
				_, err = s.command("CLUSTER ADDSLOTSRANGE 0 16383")
				err = errors.Join(err, errors.New("cluster_state not ok"))
			}
			if err == nil {
				return nil
			}
		}
		select {
		case <-s.done:
			s.cmd = nil
			return fmt.Errorf("redis-server exited: %s", s.out)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return fmt.Errorf("no PONG within %v: %v; output: %s", startTimeout, err, s.out)
		}
	}
}

// stop kills the server, if it runs, and waits for it to exit.
func (s *Server) stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// command sends one inline command and returns its reply: a simple one's
// line, or a bulk string's text. It needs no client, and gives up after a
// second.
func (s *Server) command(name string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	if _, err := conn.Write([]byte(name + "\r\n")); err != nil {
		return "", err
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	line = strings.TrimRight(line, "\r\n")
	n, isBulk := strings.CutPrefix(line, "$")
	if err != nil || !isBulk {
		return line, err
	}
	size, err := strconv.Atoi(n)
	if err != nil || size < 0 {
		return line, err
	}
	bulk := make([]byte, size)
	_, err = io.ReadFull(r, bulk)
	return string(bulk), err
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lockedBuffer is the server's output, written by os/exec's goroutine and
// read by the test's.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
