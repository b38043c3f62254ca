// Package webhook verifies, decodes and de-duplicates the notifications
// that LivePerson's Connector API webhooks deliver to a connector: the
// agent's messages, chat states, receipts and conversation changes.
//
// LivePerson posts each notification to the endpoint that the app
// installation registered for its event type, with three headers:
//
//	X-Liveperson-Account-Id: le12345678
//	X-Liveperson-Client-Id: 75588e18-0213-4e33-8174-883acac7e3c4
//	X-Liveperson-Signature: sha1=12DcfY3NhieG0uMlGlNX/SHWBeQ=
//
// The signature is the connector's only proof that a notification comes
// from LivePerson. [Config] holds what it is checked against; its
// [Config.NewVerifier] returns a [Verifier], whose [Verifier.Handler] wraps
// an [http.Handler] and whose [Verifier.Verify] serves code that is not
// one. [Parse] decodes a verified body into a [Notification]; [Dedup]
// drops what LivePerson delivered twice.
//
// # Signatures
//
// The signature is an HMAC of the raw body bytes, exactly as they arrived,
// keyed with the bytes of the app installation's client secret: HMAC-SHA1,
// written "sha1=" and the base64 of the 20-byte MAC, as LivePerson sends by
// default; or HMAC-SHA256, "sha256=" and 32 bytes, which LivePerson
// configures for some accounts. Either MAC may be written in standard
// base64 with padding (28 or 44 characters) or in hexadecimal, either case
// (40 or 64 characters), as LivePerson's configuration chooses. The scheme
// name may be in either case. [Sign] computes the default. The MAC is
// compared in constant time.
//
// Sign over the raw bytes, never over JSON decoded and encoded again: a
// body re-serialized by another JSON library differs in escapes (an emoji
// as "\ud83d\ude00" or as four raw bytes), spacing or key order, and its
// MAC differs.
//
// The headers are not signed: the account and client ids only choose
// which secret must have signed the body. Each of the three headers must
// appear exactly once; a repeated header is rejected, even if every copy
// is valid. LivePerson documents no timestamp: a recorded notification
// verifies again if replayed, which [Dedup] limits to its window.
//
// # Bounds
//
//   - A body is read through a cap: [Config.MaxBodyBytes], by default
//     1 MiB. A request whose Content-Length is over
//     the cap is refused before any byte is read; otherwise at most
//     MaxBodyBytes+1 bytes are read, the extra byte telling a body at the
//     cap from a longer one. Over HTTP/1, a refused request's connection
//     is closed, so that net/http reads no more of its body either.
//   - Memory follows the bytes received, not Content-Length: the body's
//     buffer starts at 8 KiB at most and at most doubles as bytes come. A
//     request waiting for its body holds about 26 KiB in all, net/http's
//     share included (measured on linux/amd64, Go 1.26).
//   - A body that takes longer than [Config.ReadTimeout] (by default 5 s)
//     to come is refused. The Verifier never
//     lengthens a read deadline the server set (http.Server.ReadTimeout):
//     it sets none in the future, and cuts the read at its own time by
//     setting the deadline to that present moment.
//   - With [Config.Secrets], a Verifier keeps keyed hash states for at most
//     1,024 distinct secrets (up to 2 KiB each, while pooled); a
//     1,025th empties that cache.
//   - A [Dedup] remembers at most its maxEntries keys (by default
//     100,000, about 133 bytes each with a dialog ID of its own, 85
//     without) for at most its window (by default 10 minutes).
//
// # Answering in time
//
// LivePerson gives an endpoint 5 s to connect and 5 s to answer, counts
// anything but 200 or 201 as a failure, and "may disable" an app with an
// endpoint answering slower than 2.5 s for 2 minutes. It retries a failed
// delivery 0 to 5 times, 30 s apart (as the webhook's max_retries says),
// or, in its newer mode, for up to three days. Deliveries may be lost,
// duplicated, and reordered.
//
// So a handler should verify, decode, drop duplicates, put the work on a
// bounded queue and answer 200 at once, without waiting for the Send API,
// a database or any other network call; a full queue should answer 503 at
// once (after [Dedup.Forget]) so that LivePerson retries later, rather
// than block. The package example does that. An undecodable verified body
// is best answered 200 and logged: a retry would not decode either.
//
// # Answers and logging
//
// [Verifier.Handler] answers 401 "unauthorized" when a header is missing,
// repeated or wrong, or the signature does not match; 400 "body too large"
// over the cap, and 400 "body unreadable" when reading the body fails or
// times out; 500 "internal server error" when a handler in front of it
// already read the body (a middleware that logs or decodes it and does
// not put it back), which no retry mends. The texts are fixed: nothing the
// caller sent is quoted. Header names match in ASCII case only, as net/http
// canonicalizes them. With [Config.Logger] set, each refusal is logged at
// WARN, "webhook: notification rejected", with the keys status, error (a
// fixed text naming the check that failed, never the text of a reading
// error, which may quote the peer) and remote_addr (the peer's address);
// each verified notification at DEBUG, "webhook: notification verified",
// with account, client_id and body_bytes. No record carries the secret,
// the signature or the body.
package webhook

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lpconnect/appjwt/secret"
)

// The headers LivePerson sends with each notification, in the canonical
// form net/http gives them.
const (
	HeaderAccountID = "X-Liveperson-Account-Id"
	HeaderClientID  = "X-Liveperson-Client-Id"
	HeaderSignature = "X-Liveperson-Signature"
)

// The defaults of [Config]'s zero values, which its documentation gives.
const (
	defaultMaxBodyBytes = 1 << 20
	defaultReadTimeout  = 5 * time.Second
)

// maxCachedSecrets bounds the secrets whose keyed hash states a Verifier
// keeps; the package documentation gives the number.
const maxCachedSecrets = 1024

// Errors that [Verifier.Verify] returns, or wraps: [errors.Is] tells which
// answer a refusal deserves.
var (
	// ErrUnauthorized means that the notification is not proven to come
	// from LivePerson for this app installation (401).
	ErrUnauthorized = errors.New("webhook: unauthorized")
	// ErrTooLarge means that the body is longer than Config.MaxBodyBytes
	// (400).
	ErrTooLarge = errors.New("webhook: body too large")
)

// Config describes the app installation whose notifications a [Verifier]
// accepts: either one (AccountID, ClientID, ClientSecret), or, for a
// connector serving several accounts or apps at one endpoint, any that
// Secrets knows.
//
// A Config is plain data: it is safe to copy, and [Config.NewVerifier]
// copies it. Formatted, logged or written as JSON, it shows its
// ClientSecret as "[REDACTED]", with the exceptions [secret.String] names,
// which go vet reports.
type Config struct {
	// AccountID is the LivePerson account (site) ID that
	// X-Liveperson-Account-Id must name. Required with ClientSecret; with
	// Secrets, empty lets Secrets decide.
	AccountID string

	// ClientID is the app installation ID that X-Liveperson-Client-Id must
	// name. Required with ClientSecret; with Secrets, empty lets Secrets
	// decide.
	ClientID string

	// ClientSecret is the app installation's secret, the key of its
	// signatures. Exactly one of ClientSecret and Secrets is required.
	ClientSecret secret.String

	// Secrets returns the client secret of the app installation a
	// notification names, and false for one the connector does not serve,
	// which is refused (401). It gets the X-Liveperson-Account-Id and
	// X-Liveperson-Client-Id values as sent, before the signature is
	// checked: untrusted input. It is called once per notification, from
	// the goroutine verifying it, so it must be safe for concurrent use, and
	// fast (an in-memory lookup): the notification waits for it.
	Secrets func(accountID, clientID string) (clientSecret secret.String, ok bool) `json:"-"`

	// PreviousSecrets, with Secrets, returns a second live secret of the
	// app installation a notification names, while its secret is rotated,
	// and false if it has none: a notification that the secret of Secrets
	// does not sign is checked against it, so that either verifies during
	// the overlap. It is called only then, and as Secrets is. Nil: one
	// secret per installation.
	PreviousSecrets func(accountID, clientID string) (clientSecret secret.String, ok bool) `json:"-"`

	// MaxBodyBytes caps the body. Zero: 1 MiB. LivePerson documents no
	// size; a notification is some hundred bytes to a few KiB (a rich
	// content card).
	MaxBodyBytes int64

	// ReadTimeout caps the time [Verifier.Handler] waits for a body that
	// does not come, so that a peer cannot hold a handler and its
	// connection: past it the request is refused (400). Zero: 5 s, the
	// time LivePerson itself gives an endpoint to answer.
	ReadTimeout time.Duration

	// Logger receives a WARN record for each refused notification and a
	// DEBUG record for each verified one; none carries the secret, the
	// signature or the body. Nil: nothing is logged.
	Logger *slog.Logger `json:"-"`
}

// NewVerifier checks c and returns a Verifier for it, or an error naming
// the field that is wrong.
func (c Config) NewVerifier() (*Verifier, error) {
	switch {
	case c.ClientSecret != "" && c.Secrets != nil:
		return nil, errors.New("webhook: Config.ClientSecret and Config.Secrets are both set; set one")
	case c.ClientSecret == "" && c.Secrets == nil:
		return nil, errors.New("webhook: Config.ClientSecret is empty and Config.Secrets is nil; set one")
	case c.PreviousSecrets != nil && c.Secrets == nil:
		return nil, errors.New("webhook: Config.PreviousSecrets is set without Config.Secrets")
	case c.ClientSecret.IsRedacted():
		return nil, errors.New("webhook: Config.ClientSecret is " + secret.Redacted + ": the Config was read back from redacted JSON or logs")
	case c.ClientSecret != "" && c.AccountID == "":
		return nil, errors.New("webhook: Config.AccountID is empty")
	case c.ClientSecret != "" && c.ClientID == "":
		return nil, errors.New("webhook: Config.ClientID is empty")
	case c.MaxBodyBytes < 0:
		return nil, fmt.Errorf("webhook: Config.MaxBodyBytes %d is negative", c.MaxBodyBytes)
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = defaultMaxBodyBytes
	}
	v := &Verifier{cfg: c}
	// Only the keyed MACs keep the secret: no field holds it for a printer
	// that bypasses Format, such as a debugger or a dump of unexported
	// fields.
	v.cfg.ClientSecret = ""
	if c.ClientSecret != "" {
		v.fixed = newKeyedMACs(c.ClientSecret)
	} else {
		v.bySecret = make(map[[sha256.Size]byte]*keyedMACs)
	}
	return v, nil
}

// Verifier checks that notifications come from LivePerson for the app
// installations of its [Config]. It is safe for concurrent use.
type Verifier struct {
	cfg   Config     // without its ClientSecret
	fixed *keyedMACs // for Config.ClientSecret

	mu       sync.RWMutex
	bySecret map[[sha256.Size]byte]*keyedMACs // for Config.Secrets, by the secret's hash; at most maxCachedSecrets
}

// LogValue implements [slog.LogValuer]: a Verifier logs as a summary, the
// account and the client id it accepts (empty: any that Config.Secrets
// knows) and whether it looks secrets up with Config.Secrets, never a
// secret.
func (v *Verifier) LogValue() slog.Value {
	s := v.summary()
	return slog.GroupValue(slog.String("account", s.Account), slog.String("client_id", s.ClientID), slog.Bool("secrets", s.Secrets))
}

// Format implements [fmt.Formatter]: every verb, %#v included, shows the
// summary of [Verifier.LogValue], such as
//
//	webhook.Verifier{account: "le12345678", client_id: "75588e18-...", secrets: false}
//
// (fmt prints %p of a *Verifier, its address, without calling Format.)
func (v *Verifier) Format(f fmt.State, _ rune) {
	if v == nil {
		io.WriteString(f, "<nil>")
		return
	}
	s := v.summary()
	fmt.Fprintf(f, "webhook.Verifier{account: %q, client_id: %q, secrets: %t}", s.Account, s.ClientID, s.Secrets)
}

// MarshalJSON implements [json.Marshaler]: a Verifier written as JSON is
// the summary of [Verifier.LogValue], such as
// {"account":"le12345678","client_id":"75588e18-...","secrets":false}.
func (v *Verifier) MarshalJSON() ([]byte, error) {
	return json.Marshal(v.summary())
}

// summary is what a Verifier shows of itself.
type summary struct {
	Account  string `json:"account"`
	ClientID string `json:"client_id"`
	Secrets  bool   `json:"secrets"`
}

func (v *Verifier) summary() summary {
	if v == nil {
		return summary{}
	}
	return summary{Account: v.cfg.AccountID, ClientID: v.cfg.ClientID, Secrets: v.cfg.Secrets != nil}
}

// Verify checks a notification that is not served through
// [Verifier.Handler], such as one a serverless platform hands over: h its
// headers, body its raw bytes exactly as received. It returns nil if the
// three LivePerson headers appear once each, name the configured account
// and client, and the signature is the body's; else an error that wraps
// [ErrUnauthorized], or [ErrTooLarge] if body is longer than
// Config.MaxBodyBytes. The error text names the check that failed and
// quotes nothing from h or body.
//
// Header names are matched in any ASCII case, as net/http canonicalizes
// them, so h need not be canonical. Verify allocates nothing once the
// Verifier has served a few calls.
func (v *Verifier) Verify(h http.Header, body []byte) error {
	s, err := v.signed(h)
	if err != nil {
		return err
	}
	if int64(len(body)) > v.cfg.MaxBodyBytes {
		return ErrTooLarge
	}
	return s.check(body)
}

// Handler returns an [http.Handler] that verifies each request as
// [Verifier.Verify] does, reading the body through the cap, and only then
// calls next, with r.Body replaced by the verified body, which next may
// read, and keep, as its own. It refuses the rest with a fixed text, as
// the package documentation says, without calling next: 401 for an
// unauthorized request (the body is not read when a header is already
// wrong), 400 for a body over the cap or one whose reading fails or takes
// longer than ReadTimeout, 500 for a body that a handler before it already
// read. Over HTTP/1 a refusal closes the connection, so that net/http does
// not read the rest of the body either.
//
// The memory a request holds follows the bytes that arrived, not its
// Content-Length: the body's buffer starts at 8 KiB at most and grows as
// the body comes.
func (v *Verifier) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := v.signed(r.Header)
		if err != nil {
			v.refuse(w, r, http.StatusUnauthorized, err)
			return
		}
		body, err := v.readBody(w, r)
		if err != nil {
			status := http.StatusBadRequest
			if err == errBodyConsumed {
				status = http.StatusInternalServerError
			}
			v.refuse(w, r, status, err)
			return
		}
		if err := s.check(body); err != nil {
			v.refuse(w, r, http.StatusUnauthorized, err)
			return
		}
		if l := v.cfg.Logger; l != nil && l.Enabled(r.Context(), slog.LevelDebug) {
			l.LogAttrs(r.Context(), slog.LevelDebug, "webhook: notification verified",
				slog.String("account", s.hv.account),
				slog.String("client_id", s.hv.client),
				slog.Int("body_bytes", len(body)))
		}
		rb := new(restoredBody)
		rb.Reset(body)
		r.Body = rb
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r)
	})
}

// readBody reads r's body through the cap, waiting for it at most
// ReadTimeout where the server lets a handler set a read deadline.
//
// It never sets a deadline in the future: the server may have set a
// stricter one (http.Server.ReadTimeout, counted from when the request's
// first byte came, which a handler cannot learn), and a later one would
// replace it. When ReadTimeout passes, a timer sets the deadline to the
// present, which fails the pending read at once and cannot be later than
// the server's. A body the timer cut is refused even if its last byte
// came at that instant: the connection's deadline is spent, and the
// refusal closes it.
func (v *Verifier) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	timeout := v.cfg.ReadTimeout
	if timeout <= 0 {
		timeout = defaultReadTimeout
	}
	c := &bodyCut{rc: *http.NewResponseController(w), done: make(chan struct{})}
	t := time.AfterFunc(timeout, c.cut)
	body, err := readCapped(r.Body, r.ContentLength, v.cfg.MaxBodyBytes)
	t.Stop()
	if !c.state.CompareAndSwap(readGoing, readDone) {
		// The timer won: its deadline call must end before the handler
		// does, as the ResponseWriter is the server's again after that
		// (HTTP/2 pools it, and a late call crashes the process).
		<-c.done
		return nil, errBodyTimeout
	}
	switch {
	case err != nil:
		return nil, err
	case r.ContentLength >= 0 && int64(len(body)) != r.ContentLength:
		// net/http's body ends early only with an error: a clean end
		// before Content-Length means that a handler before this one read
		// the body, or replaced it.
		return nil, errBodyConsumed
	}
	return body, nil
}

// bodyCut cuts the reading of a body short, once: its timer and the
// reader race to leave readGoing.
type bodyCut struct {
	state atomic.Int32 // readGoing, then readCut or readDone
	rc    http.ResponseController
	done  chan struct{} // closed once a cut has set the deadline
}

// The states of a bodyCut.
const (
	readGoing = iota
	readCut
	readDone
)

func (c *bodyCut) cut() {
	if c.state.CompareAndSwap(readGoing, readCut) {
		c.rc.SetReadDeadline(time.Now())
		close(c.done)
	}
}

// refuse answers a refused request with a fixed text and logs why. Over
// HTTP/1 it writes the answer on the connection itself and closes it:
// net/http would read what is left of the body after the handler returns,
// up to 256 KiB, to reuse the connection. (HTTP/2 resets the stream.)
func (v *Verifier) refuse(w http.ResponseWriter, r *http.Request, status int, err error) {
	var text string
	switch {
	case status == http.StatusInternalServerError:
		text = "internal server error"
	case status == http.StatusUnauthorized:
		text = "unauthorized"
	case errors.Is(err, ErrTooLarge):
		text = "body too large"
	default:
		text = "body unreadable"
	}
	// Logged first, so that the record is there once the peer has the
	// answer.
	if l := v.cfg.Logger; l != nil {
		l.LogAttrs(r.Context(), slog.LevelWarn, "webhook: notification rejected",
			slog.Int("status", status),
			slog.String("error", err.Error()),
			slog.String("remote_addr", r.RemoteAddr))
	}
	switch {
	case r.ProtoMajor >= 2:
		http.Error(w, text, status)
	case !answerAndClose(w, status, text):
		// A writer that cannot hand its connection over: ask to close
		// it, at least.
		w.Header().Set("Connection", "close")
		http.Error(w, text, status)
	}
}

// answerAndClose writes a plain-text answer straight to the connection of
// an HTTP/1 request and closes it, and reports whether it could.
func answerAndClose(w http.ResponseWriter, status int, text string) bool {
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return false
	}
	defer conn.Close()
	fmt.Fprintf(buf, "HTTP/1.1 %03d %s\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s\n",
		status, http.StatusText(status), len(text)+1, text)
	buf.Flush()
	return true
}

// signed checks the headers of a notification and returns its signature
// with the MACs of the secret that must have made it.
func (v *Verifier) signed(h http.Header) (signedBody, error) {
	hv, err := lpHeaders(h)
	if err != nil {
		return signedBody{}, err
	}
	if v.cfg.AccountID != "" && hv.account != v.cfg.AccountID {
		return signedBody{}, errWrongAccount
	}
	if v.cfg.ClientID != "" && hv.client != v.cfg.ClientID {
		return signedBody{}, errWrongClient
	}
	macs := v.fixed
	if macs == nil {
		s, ok := v.cfg.Secrets(hv.account, hv.client)
		if !ok || s == "" {
			return signedBody{}, errUnknownApp
		}
		macs = v.macsFor(s)
	}
	sig, ok := parseSignature(hv.signature)
	if !ok {
		return signedBody{}, errMalformedSignature
	}
	return signedBody{v: v, hv: hv, macs: macs, sig: sig}, nil
}

// macsFor returns the keyed MACs of a secret that Config.Secrets returned,
// from the bounded cache.
func (v *Verifier) macsFor(s secret.String) *keyedMACs {
	key := sha256.Sum256([]byte(s)) // the cache's keys hold no secret in the clear
	v.mu.RLock()
	m := v.bySecret[key]
	v.mu.RUnlock()
	if m != nil {
		return m
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if m := v.bySecret[key]; m != nil {
		return m
	}
	if len(v.bySecret) >= maxCachedSecrets {
		clear(v.bySecret)
	}
	m = newKeyedMACs(s)
	v.bySecret[key] = m
	return m
}

// signedBody is what a notification's headers say its body must be
// signed with.
type signedBody struct {
	v    *Verifier
	hv   lpHeaderValues
	macs *keyedMACs
	sig  signature
}

// check reports whether body carries the signature: of the secret, or
// else of the previous one, if Config.PreviousSecrets has one.
func (s signedBody) check(body []byte) error {
	if s.signs(s.macs, body) {
		return nil
	}
	if prev := s.v.cfg.PreviousSecrets; prev != nil {
		if p, ok := prev(s.hv.account, s.hv.client); ok && p != "" && s.signs(s.v.macsFor(p), body) {
			return nil
		}
	}
	return errBadSignature
}

// signs reports whether macs make the signature of body.
func (s signedBody) signs(macs *keyedMACs, body []byte) bool {
	m := macs.get(s.sig.alg)
	defer macs.put(s.sig.alg, m)
	return hmac.Equal(m.sum(body), s.sig.mac())
}

// lpHeaderValues are the values of LivePerson's three headers.
type lpHeaderValues struct{ account, client, signature string }

// lpHeaders returns the value of each of LivePerson's headers, found in
// any ASCII case, as net/http canonicalizes names; each must be there
// exactly once, non-empty.
func lpHeaders(h http.Header) (lpHeaderValues, error) {
	var hv lpHeaderValues
	var nAccount, nClient, nSignature int
	for k, vs := range h {
		var dst *string
		var n *int
		switch {
		case equalFoldASCII(k, HeaderSignature):
			dst, n = &hv.signature, &nSignature
		case equalFoldASCII(k, HeaderAccountID):
			dst, n = &hv.account, &nAccount
		case equalFoldASCII(k, HeaderClientID):
			dst, n = &hv.client, &nClient
		default:
			continue
		}
		*n += len(vs)
		if len(vs) > 0 {
			*dst = vs[0]
		}
	}
	switch {
	case nSignature != 1 || hv.signature == "":
		return hv, errSignatureHeader
	case nAccount != 1 || hv.account == "":
		return hv, errAccountHeader
	case nClient != 1 || hv.client == "":
		return hv, errClientHeader
	}
	return hv, nil
}

// equalFoldASCII reports whether s and t are equal under ASCII case
// folding, as net/http compares header names and as HTTP defines them.
// (strings.EqualFold folds Unicode too: "ſ" matches "s".)
func equalFoldASCII(s, t string) bool {
	if len(s) != len(t) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if lowerASCII(s[i]) != lowerASCII(t[i]) {
			return false
		}
	}
	return true
}

func lowerASCII(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + ('a' - 'A')
	}
	return b
}

// verifyError is a refusal with a fixed text, of a class that [errors.Is]
// finds: ErrUnauthorized.
type verifyError struct {
	msg   string
	class error
}

func (e *verifyError) Error() string { return e.msg }
func (e *verifyError) Unwrap() error { return e.class }

// The refusals. Their texts name a check, never a value.
var (
	errSignatureHeader    = &verifyError{"webhook: " + HeaderSignature + " is missing, empty or repeated", ErrUnauthorized}
	errAccountHeader      = &verifyError{"webhook: " + HeaderAccountID + " is missing, empty or repeated", ErrUnauthorized}
	errClientHeader       = &verifyError{"webhook: " + HeaderClientID + " is missing, empty or repeated", ErrUnauthorized}
	errWrongAccount       = &verifyError{"webhook: " + HeaderAccountID + " is not the configured account", ErrUnauthorized}
	errWrongClient        = &verifyError{"webhook: " + HeaderClientID + " is not the configured client id", ErrUnauthorized}
	errUnknownApp         = &verifyError{"webhook: Config.Secrets has no secret for the account and client id", ErrUnauthorized}
	errMalformedSignature = &verifyError{"webhook: " + HeaderSignature + " is not sha1= or sha256= and a MAC in base64 or hex", ErrUnauthorized}
	errBadSignature       = &verifyError{"webhook: " + HeaderSignature + " does not match the body", ErrUnauthorized}
)

// The failures of reading a body, with fixed texts: a reading error may
// quote the peer (net/http's for a malformed chunk trailer quotes the
// line).
var (
	errBodyTimeout    = errors.New("webhook: the body did not come within the read timeout")
	errBodyTruncated  = errors.New("webhook: the connection ended before the body did")
	errBodyUnreadable = errors.New("webhook: the body is not valid HTTP framing, or its connection failed")
	errBodyConsumed   = errors.New("webhook: the body was read before the Verifier: a handler in front of it consumed or replaced r.Body")
)

// readOne reads one byte of r; more says whether there was one, and err
// is r's error otherwise (io.EOF at a clean end).
func readOne(r io.Reader) (b byte, more bool, err error) {
	var one [1]byte
	for {
		n, err := r.Read(one[:])
		if n == 1 {
			return one[0], true, nil // an error with it comes again on the next read
		}
		if err != nil {
			return 0, false, err
		}
	}
}

// firstBuffer is the most readCapped allocates before bytes arrive.
const firstBuffer = 8 << 10

// readCapped reads r to its end, at most max bytes of it. A
// contentLength over max (-1 for unknown) fails before reading. Its buffer
// starts at firstBuffer at most and at most doubles as bytes arrive, never
// past contentLength (or max): memory follows what was sent, not what was
// claimed. Once the buffer holds all the body said it has, or all max lets
// in, one byte read on its own tells whether the body ends there, so that
// no buffer of the next size is made for it.
func readCapped(r io.Reader, contentLength, max int64) ([]byte, error) {
	if contentLength > max {
		return nil, ErrTooLarge
	}
	if r == nil || r == http.NoBody {
		return []byte{}, nil
	}
	want := max // the size the body says it will reach
	if contentLength >= 0 {
		want = contentLength
	}
	buf := make([]byte, 0, min(want, firstBuffer))
	for {
		if len(buf) == cap(buf) && int64(len(buf)) >= want {
			b, more, err := readOne(r)
			switch {
			case more && int64(len(buf)) >= max:
				return nil, ErrTooLarge
			case more: // longer than Content-Length said, which net/http never lets through
				buf, want = append(buf, b), max
				buf = buf[:len(buf):int(min(int64(cap(buf)), want))]
				continue
			case err == io.EOF:
				return buf, nil
			default:
				return nil, bodyError(err)
			}
		}
		if len(buf) == cap(buf) {
			grown := min(2*int64(cap(buf)), want, math.MaxInt)
			buf = slices.Grow(buf, int(grown)-len(buf))
			if int64(cap(buf)) > want { // Grow rounds up to a size class
				buf = buf[:len(buf):int(want)]
			}
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, bodyError(err)
		}
	}
}

// bodyError returns the fixed error for a failure to read a body.
func bodyError(err error) error {
	var tooLarge *http.MaxBytesError
	var netErr net.Error
	switch {
	case errors.As(err, &tooLarge):
		return ErrTooLarge
	case errors.Is(err, http.ErrBodyReadAfterClose):
		return errBodyConsumed
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return errBodyTimeout
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errBodyTruncated
	}
	return errBodyUnreadable
}

// restoredBody gives the verified body to the next handler.
type restoredBody struct{ bytes.Reader }

func (*restoredBody) Close() error { return nil }
