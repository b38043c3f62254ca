package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// banner is what the command printed about itself, by key ("url",
// "ca-cert", ...).
type banner map[string]string

// readBanner reads the "key: value" lines the command prints first, up to
// the blank line after them.
func readBanner(t *testing.T, r *bufio.Reader) banner {
	t.Helper()
	b := banner{}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the banner: %v (so far %v)", err, b)
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.Contains(k, " ") {
			b[k] = strings.TrimSpace(v)
		}
	}
	for _, k := range []string{"url", "account", "client-id", "client-secret", "ca-cert"} {
		if b[k] == "" {
			t.Fatalf("the banner has no %s: %v", k, b)
		}
	}
	return b
}

// token gets an AppJWT from the stand-in of b with plain net/http, as curl
// would: trusting only the CA certificate the command wrote, and sending
// the credentials it printed.
func (b banner) token(t *testing.T) map[string]any {
	t.Helper()
	caPEM, err := os.ReadFile(b["ca-cert"])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatalf("%s holds no PEM certificate", b["ca-cert"])
	}
	client := &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}},
		Timeout:   5 * time.Second,
	}
	defer client.CloseIdleConnections()
	resp, err := client.PostForm(b["url"]+"/sentinel/api/account/"+b["account"]+"/app/token?v=1.0&grant_type=client_credentials",
		url.Values{"client_id": {b["client-id"]}, "client_secret": {b["client-secret"]}})
	if err != nil {
		t.Fatalf("token request: %v", err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != 200 || tok.TokenType != "Bearer" {
		t.Fatalf("token answer: %s, %+v, %v", resp.Status, tok, err)
	}
	parts := strings.Split(tok.AccessToken, ".")
	if len(parts) != 3 {
		t.Fatalf("access_token has %d parts, want 3", len(parts))
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatalf("claims: %v", err)
	}
	if claims["iss"] != "Sentinel" || claims["aud"] != b["account"] || claims["azp"] != b["client-id"] {
		t.Errorf("claims %v, want iss Sentinel, aud %s, azp %s", claims, b["account"], b["client-id"])
	}
	return claims
}

// runInProcess runs the command with args until the returned stop is
// called, which returns its exit status and standard error.
func runInProcess(t *testing.T, args ...string) (banner, func() (int, string)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, outW := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		code := run(ctx, args, outW, &stderr)
		outW.Close()
		done <- code
	}()
	r := bufio.NewReader(out)
	b := readBanner(t, r)
	go io.Copy(io.Discard, r)
	stopped := false
	stop := func() (int, string) {
		stopped = true
		cancel()
		select {
		case code := <-done:
			return code, stderr.String()
		case <-time.After(10 * time.Second):
			t.Fatal("the command did not stop within 10 s of its context")
			return 0, ""
		}
	}
	t.Cleanup(func() {
		if !stopped {
			stop()
		}
	})
	return b, stop
}

func TestServesUntilInterrupted(t *testing.T) {
	b, stop := runInProcess(t)
	if !strings.HasPrefix(b["url"], "https://127.0.0.1:") || b["account"] != "le12345678" {
		t.Errorf("banner %v, want a loopback URL and the default account", b)
	}
	b.token(t)

	caPEM, _ := os.ReadFile(b["ca-cert"])
	block, _ := pem.Decode(caPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	var ips []string
	for _, ip := range cert.IPAddresses {
		ips = append(ips, ip.String())
	}
	if !cert.IsCA || !slices.Contains(cert.DNSNames, "localhost") || !slices.Contains(ips, "127.0.0.1") || !slices.Contains(ips, "::1") {
		t.Errorf("certificate: CA %v, names %v, addresses %v; want a CA for localhost, 127.0.0.1 and ::1", cert.IsCA, cert.DNSNames, ips)
	}
	if cert.NotAfter.Sub(cert.NotBefore) > 31*24*time.Hour {
		t.Errorf("certificate valid from %v to %v, want at most a month", cert.NotBefore, cert.NotAfter)
	}

	code, stderr := stop()
	if code != 0 || !strings.Contains(stderr, "interrupted") {
		t.Errorf("exit %d, stderr %q; want 0 and a word about the interruption", code, stderr)
	}
	if _, err := os.Stat(b["ca-cert"]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the temporary CA certificate is still there after exit: %v", err)
	}
}

// Each run makes its own key and certificate.
func TestCertificatePerRun(t *testing.T) {
	b1, _ := runInProcess(t)
	b2, _ := runInProcess(t)
	pem1, _ := os.ReadFile(b1["ca-cert"])
	pem2, _ := os.ReadFile(b2["ca-cert"])
	if bytes.Equal(pem1, pem2) {
		t.Error("two runs wrote the same certificate")
	}
}

func TestCAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ca.pem")
	b, stop := runInProcess(t, "-ca-file", path, "-addr", "localhost:0")
	if b["ca-cert"] != path {
		t.Errorf("ca-cert %q, want %q", b["ca-cert"], path)
	}
	b.token(t)
	if code, _ := stop(); code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the CA certificate given with -ca-file is gone after exit: %v", err)
	}
}

func TestUsage(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tests := []struct {
		args       []string
		wantCode   int
		wantStderr string
	}{
		{[]string{"-h"}, 0, "Usage: appjwttest"},
		{[]string{"-addr", "0.0.0.0:8443"}, 2, "appjwttest: -addr must be a loopback address with no zone, such as 127.0.0.1:8443, [::1]:8443 or localhost:8443: the stand-in is for this machine only\n"},
		{[]string{"-addr", "[::]:0"}, 2, "-addr must be a loopback address"},
		{[]string{"-addr", ":8443"}, 2, "-addr must be a loopback address"},
		{[]string{"-addr", "[::%lo]:0"}, 2, "-addr must be a loopback address"}, // [::] with a zone listens everywhere
		{[]string{"-addr", "[::1%lo]:0"}, 2, "-addr must be a loopback address"},
		{[]string{"-addr", "[fe80::1%lo]:0"}, 2, "-addr must be a loopback address"},
		{[]string{"-addr", "192.0.2.1:8443"}, 2, "-addr must be a loopback address"},
		{[]string{"-addr", "[2001:db8::1]:8443"}, 2, "-addr must be a loopback address"},
		{[]string{"-addr", "127.0.0.1"}, 2, "appjwttest: -addr is not a host:port, such as 127.0.0.1:8443\n"},
		{[]string{"-bogus"}, 2, "flag provided but not defined: -bogus"},
		{[]string{"extra"}, 2, "appjwttest: no arguments are taken, only flags\n"},
		{[]string{"-addr", l.Addr().String()}, 1, "appjwttest: listen tcp "},
		{[]string{"-ca-file", filepath.Join(t.TempDir(), "no", "such", "dir", "ca.pem")}, 1, "appjwttest: writing the CA certificate: "},
	}
	// Done already: a run that should have been refused stops at once.
	done, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(done, tt.args, &stdout, &stderr)
			if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr.String(), tt.wantCode, tt.wantStderr)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout has %d bytes, want nothing (not shown: it may hold the client secret)", stdout.Len())
			}
		})
	}
}

// What the system bound is checked, whatever -addr named: a name may
// resolve anywhere.
func TestCheckBound(t *testing.T) {
	tests := []struct {
		addr net.Addr
		ok   bool
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8443}, true},
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 8443}, true},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 8443}, true},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 8443, Zone: "lo"}, false},
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 8443}, false},
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 8443, Zone: "lo"}, false},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 8443}, false},
		{&net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 8443}, false},
		{&net.UnixAddr{Name: "/tmp/s", Net: "unix"}, false},
	}
	for _, tt := range tests {
		if err := checkBound(tt.addr); (err == nil) != tt.ok {
			t.Errorf("checkBound(%v) = %v, want ok %v", tt.addr, err, tt.ok)
		}
	}
}

// Loopback addresses other than 127.0.0.1 serve: [::1] (where the system
// has it) and any 127/8.
func TestLoopbackAddresses(t *testing.T) {
	for _, addr := range []string{"[::1]:0", "127.0.0.2:0"} {
		t.Run(addr, func(t *testing.T) {
			if l, err := net.Listen("tcp", addr); err != nil {
				t.Skipf("this system cannot listen on %s: %v", addr, err)
			} else {
				l.Close()
			}
			b, stop := runInProcess(t, "-addr", addr)
			b.token(t)
			if code, _ := stop(); code != 0 {
				t.Errorf("exit %d, want 0", code)
			}
		})
	}
}

func TestShellQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"le12345678", "le12345678"},
		{"127.0.0.1:8443", "127.0.0.1:8443"},
		{"/tmp/appjwttest-1/ca.pem", "/tmp/appjwttest-1/ca.pem"},
		{"/tmp/my dir/ca.pem", "'/tmp/my dir/ca.pem'"},
		{"it's", `'it'\''s'`},
		{"$HOME", "'$HOME'"},
		{"", "''"},
	}
	for _, tt := range tests {
		if got := shellQuote(tt.in); got != tt.want {
			t.Errorf("shellQuote(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// startProcess starts the command at path with args, and returns it, its
// standard output, and its standard error as it comes. It is killed 30 s
// on, and at the test's end, however it ends.
func startProcess(t *testing.T, path string, args ...string) (*exec.Cmd, *bufio.Reader, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(path, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := new(bytes.Buffer)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killer := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	t.Cleanup(func() {
		killer.Stop()
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("stderr of %s:\n%s", filepath.Base(path), stderr)
		}
	})
	return cmd, bufio.NewReader(stdout), stderr
}

// The command, built and started as a process, serves a client that
// trusts only the certificate it wrote, and stops on an interrupt; the
// appjwt command, given the environment it prints, gets a token from it.
func TestProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the commands")
	}
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("no os.Interrupt to send")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	dir := t.TempDir()
	// On one core and without symbols, the build leaves more of the machine
	// to the tests of other packages, some with tight deadlines, that go
	// test runs alongside: 1.5 s instead of 2.2 s on a 2-core VM.
	build := exec.Command(goCmd, "build", "-p=1", "-ldflags=-s -w", "-o", dir, ".", "../appjwt")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	cmd, r, stderr := startProcess(t, filepath.Join(dir, "appjwttest"), "-addr", "127.0.0.1:0")
	b := readBanner(t, r)
	rest := make(chan string, 1)
	go func() { s, _ := io.ReadAll(r); rest <- string(s) }()
	b.token(t)

	// As README shows it: the environment line, then appjwt.
	switch runtime.GOOS {
	case "darwin", "ios", "android":
		t.Log("skipping the appjwt command: Go reads SSL_CERT_FILE only on Linux and the BSDs")
	default:
		appjwt := exec.Command(filepath.Join(dir, "appjwt"), "-format", "claims")
		host := strings.TrimPrefix(b["url"], "https://")
		appjwt.Env = append(os.Environ(), "LP_ACCOUNT_ID="+b["account"], "LP_CLIENT_ID="+b["client-id"],
			"LP_CLIENT_SECRET="+b["client-secret"], "LP_DOMAIN_API="+host, "SSL_CERT_FILE="+b["ca-cert"])
		out, err := appjwt.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "iss    Sentinel") {
			t.Errorf("appjwt -format claims: %v\n%s", err, out)
		}
	}

	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("after an interrupt: %v, want exit status 0 (stderr %q)", err, stderr.String())
	}
	if tail := <-rest; !strings.Contains(tail, "export LP_ACCOUNT_ID="+b["account"]) || !strings.Contains(tail, "SSL_CERT_FILE="+b["ca-cert"]) {
		t.Errorf("the rest of the output lacks the environment to export:\n%s", tail)
	}
	if _, err := os.Stat(b["ca-cert"]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the temporary CA certificate is still there after exit: %v", err)
	}
}
