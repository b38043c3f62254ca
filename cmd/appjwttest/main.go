// Command appjwttest runs the LivePerson stand-in of package appjwttest
// outside a Go test: for curl, the appjwt command, or a connector written
// in another language.
//
// Usage:
//
//	appjwttest                         # on 127.0.0.1, at a port the system picks
//	appjwttest -addr 127.0.0.1:8443    # or [::1]:8443, localhost:8443
//	appjwttest -ca-file ./ca.pem       # where to write the CA certificate
//	appjwttest -domain-api-http 127.0.0.1:8080   # the Domain API over plain http too
//	appjwttest -webhook-ca receiver.pem -webhooks '{"ms.MessagingEventNotification.ContentEvent":{"endpoint":"https://127.0.0.1:9443/lp","max_retries":3}}'
//
// It serves the Domain API, Sentinel's v1 and v2 token APIs and its JWKS,
// the ConsumerJWS endpoint, the Send API and a v2 API as package appjwttest
// documents them, on -addr, until interrupted
// (Ctrl-C or SIGTERM). -addr must be a loopback address, or a name bound
// to one (the address the system bound is checked), with no zone: anyone
// who reaches the stand-in gets tokens for the credentials it prints. It prints its URL, the credentials to use (the
// account, the client id and a client secret made up for this run: they
// open nothing but this stand-in) and the path of its CA certificate, in
// PEM. The certificate is made for this run too, valid for 127.0.0.1, ::1,
// localhost and the host of -addr, and its key never leaves the process.
// Without -ca-file it goes to a temporary directory that is removed on
// exit. With -domain-api-http it serves the Domain API, and only it, over
// plain http on that address too, as LivePerson documents
// http://api.liveperson.net, for clients that ask it there; everything
// else is https only.
//
// It delivers webhooks to the endpoints of -webhooks, capabilities.webhooks
// of an app installation in JSON, over TLS only as LivePerson does, trusting
// the certificates of -webhook-ca (the system's roots without it). A control
// API, over TLS with the same certificate, on loopback only (-control-addr),
// lets a test in any language act as the agent, queue faults, register
// webhooks and read what the stand-in got and delivered, in JSON; it takes
// "Authorization: Bearer <control-token>", a token made up for each run and
// printed with the rest. docs/testing.md describes it, with curl.
//
// TLS handshake errors and the like, such as those of a client that does
// not trust the certificate, go to standard error. Usage errors exit with
// status 2, other errors with status 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/lpconnect/appjwt/appjwttest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

const usageText = `Usage: appjwttest [flags]

Runs a LivePerson stand-in (Domain API, Sentinel v1 and v2, ConsumerJWS,
Send API, a v2 API, webhooks) until interrupted, and prints its URL,
credentials and CA certificate, and the URL and token of its control API.

Flags:
`

// run is the whole command, with its world passed in so tests can run it.
// It serves until ctx is done.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("appjwttest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
	}
	addr := fs.String("addr", "127.0.0.1:0", "listen on this loopback `host:port`; port 0: one the system picks")
	caFile := fs.String("ca-file", "", "write the CA certificate (PEM) to this `file`; empty: a temporary file, removed on exit")
	domainHTTP := fs.String("domain-api-http", "", "also serve the Domain API over plain http on this `host:port`; empty: not at all")
	var ctl controlFlags
	ctl.register(fs)
	switch err := fs.Parse(args); {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		return 2 // the flag package has said what is wrong
	case fs.NArg() > 0:
		fmt.Fprintln(stderr, "appjwttest: no arguments are taken, only flags")
		return 2
	}
	host, err := checkAddr(*addr)
	if err == nil {
		err = ctl.check()
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	l, err := listen(*addr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitCode(err)
	}
	var plain net.Listener
	if *domainHTTP != "" {
		if plain, err = listen(*domainHTTP); err != nil {
			l.Close()
			fmt.Fprintln(stderr, strings.Replace(err.Error(), "-addr", "-domain-api-http", 1))
			return exitCode(err)
		}
	}
	if err := serve(ctx, l, plain, host, *caFile, &ctl, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, err)
		if errors.As(err, new(usageError)) {
			return 2
		}
		return 1
	}
	return 0
}

// errNotLoopback refuses an -addr beyond loopback: the stand-in issues
// tokens to anyone with the credentials it prints, and the Domain API
// answers the listener's address as every service's host, which an
// unspecified address such as 0.0.0.0 is not.
var errNotLoopback = errors.New("appjwttest: -addr must be a loopback address with no zone, such as 127.0.0.1:8443, [::1]:8443 or localhost:8443: the stand-in is for this machine only")

// checkAddr returns the host of addr, which must be a loopback address or
// a name, with no zone: a zone can hide the unspecified address from a
// check, as in [::%lo], which listens everywhere. A name may resolve to
// anything: [checkBound] checks what it was bound to.
func checkAddr(addr string) (string, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", errors.New("appjwttest: -addr is not a host:port, such as 127.0.0.1:8443")
	}
	if ip, err := netip.ParseAddr(host); host == "" || strings.Contains(host, "%") || err == nil && !ip.IsLoopback() {
		return "", errNotLoopback
	}
	return host, nil
}

// checkBound refuses a listener bound beyond loopback, whatever -addr
// said: what it names and what the system binds can differ.
func checkBound(a net.Addr) error {
	if t, ok := a.(*net.TCPAddr); !ok || !t.IP.IsLoopback() || t.Zone != "" {
		return errNotLoopback
	}
	return nil
}

// errListen is a listener that could not be had: the system's refusal,
// not the user's address.
type errListen struct{ err error }

func (e errListen) Error() string { return "appjwttest: " + e.err.Error() }

// listen listens on addr, which must name and bind loopback only.
func listen(addr string) (net.Listener, error) {
	if _, err := checkAddr(addr); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, errListen{err}
	}
	if err := checkBound(l.Addr()); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// exitCode is 2 for an address refused, as for any usage error, and 1 for
// a listener the system refused.
func exitCode(err error) int {
	if errors.As(err, new(errListen)) {
		return 1
	}
	return 2
}

// serve runs the stand-in on l, which serves host, and the Domain API over
// plain http on plain, if not nil, until ctx is done. It closes both.
func serve(ctx context.Context, l, plain net.Listener, host, caFile string, ctlFlags *controlFlags, stdout, stderr io.Writer) error {
	if plain != nil {
		defer plain.Close() // if the server never starts; else it closes it
	}
	cert, certPEM, err := newCertificate(host, l.Addr())
	if err != nil {
		l.Close()
		return err
	}
	if caFile == "" {
		dir, err := os.MkdirTemp("", "appjwttest-")
		if err != nil {
			l.Close()
			return fmt.Errorf("appjwttest: a directory for the CA certificate: %w", err)
		}
		defer os.RemoveAll(dir)
		caFile = filepath.Join(dir, "ca.pem")
	}
	if err := os.WriteFile(caFile, certPEM, 0o644); err != nil {
		l.Close()
		return fmt.Errorf("appjwttest: writing the CA certificate: %w", err)
	}
	if abs, err := filepath.Abs(caFile); err == nil {
		caFile = abs
	}

	srv := appjwttest.NewUnstartedServer()
	srv.Listener = l
	srv.TLS = cert
	srv.DomainAPIHTTPListener = plain
	srv.ErrorLog = log.New(stderr, "appjwttest: ", log.LstdFlags)
	configureWebhooks(srv, ctlFlags)
	srv.Start()
	defer srv.Close()
	ctl, err := startControl(srv, ctlFlags, cert, stderr)
	if err != nil {
		return err
	}
	defer ctl.close()
	printBanner(stdout, srv, caFile, ctl)

	<-ctx.Done()
	fmt.Fprintln(stderr, "appjwttest: interrupted; stopping")
	return nil
}

// printBanner tells where the stand-in is and how to reach it, first as
// "key: value" lines a program can read, then as commands to paste.
func printBanner(w io.Writer, srv *appjwttest.Server, caFile string, ctl *control) {
	fmt.Fprintf(w, "appjwttest: a LivePerson stand-in, serving until interrupted\n")
	fmt.Fprintf(w, "url:           %s\n", srv.URL())
	fmt.Fprintf(w, "account:       %s\n", srv.AccountID)
	fmt.Fprintf(w, "client-id:     %s\n", srv.ClientID)
	fmt.Fprintf(w, "client-secret: %s\n", string(srv.ClientSecret))
	fmt.Fprintf(w, "ca-cert:       %s\n", caFile)
	if l := srv.DomainAPIHTTPListener; l != nil {
		fmt.Fprintf(w, "domain-api-http: http://%s\n", l.Addr())
	}
	fmt.Fprintf(w, "control:       %s\n", ctl.url)
	fmt.Fprintf(w, "control-token: %s\n", ctl.token)
	fmt.Fprintf(w, "console:       %s\n", ctl.consoleURL)
	fmt.Fprintf(w, "\nFor the appjwt command and curl (the appjwt command reads SSL_CERT_FILE on Linux and the BSDs):\n")
	fmt.Fprintf(w, "  export LP_ACCOUNT_ID=%s LP_CLIENT_ID=%s LP_CLIENT_SECRET=%s LP_DOMAIN_API=%s SSL_CERT_FILE=%s\n",
		shellQuote(srv.AccountID), shellQuote(srv.ClientID), shellQuote(string(srv.ClientSecret)), shellQuote(srv.Host()), shellQuote(caFile))
	fmt.Fprintf(w, "  appjwt -format claims\n")
	fmt.Fprintf(w, "  curl --cacert \"$SSL_CERT_FILE\" -H \"$(appjwt -format header)\" -H 'Content-Type: application/json' \\\n")
	fmt.Fprintf(w, "    -d '{\"ext_consumer_id\":\"john_doe_42\"}' '%s/api/account/%s/consumer?v=1.0'\n", srv.URL(), srv.AccountID)
	fmt.Fprintf(w, "  curl --cacert \"$SSL_CERT_FILE\" -H \"$(appjwt -token-api v2 -format header)\" '%s%s'\n",
		srv.URL(), strings.Replace(appjwttest.V2APIPath, "{account}", srv.AccountID, 1))
	printControlHelp(w, ctl)
}

// shellQuote quotes s for a POSIX shell, if it needs quoting.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@%+=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
