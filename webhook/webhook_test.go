package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/lpconnect/appjwt/secret"
)

// Signatures computed independently of this package, with OpenSSL, over
// agentMessage and the test secret:
//
//	printf '%s' "$body" | openssl dgst -sha1 -hmac THE_CLIENT_SECRET -binary | base64
//	printf '%s' "$body" | openssl dgst -sha1 -hmac THE_CLIENT_SECRET -hex
//
// and the same with -sha256. LivePerson's page gives two example values,
// sha1=12DcfY3NhieG0uMlGlNX/SHWBeQ= and
// sha256=xcF8VakxqTEyCxiQTwStupGCz3NC4FFTqXifBmmIRBM=, but neither the
// payload nor the secret they were computed from: TestDocumentedExamples
// checks only their form.
var opensslSignatures = []struct{ name, value string }{
	{"sha1 base64", "sha1=yVG54vzmXjnl7FGnR/eySVakOWU="},
	{"sha1 hex", "sha1=c951b9e2fce65e39e5ec51a747f7b24956a43965"},
	{"sha256 base64", "sha256=Mecqtm+T7U9wUxaCyLDqnir8a+fWul4G7++yC4QkuCE="},
	{"sha256 hex", "sha256=31e72ab66f93ed4f70531682c8b0ea9e2afc6be7d6ba5e06efefb20b8424b821"},
	{"sha1 hex, upper case", "sha1=C951B9E2FCE65E39E5EC51A747F7B24956A43965"},
	{"scheme in upper case", "SHA256=Mecqtm+T7U9wUxaCyLDqnir8a+fWul4G7++yC4QkuCE="},
}

func TestVerifyOpenSSLSignatures(t *testing.T) {
	v := newTestVerifier(t)
	for _, tt := range opensslSignatures {
		h := lpHeader(agentMessage, testSecret)
		h.Set(HeaderSignature, tt.value)
		if err := v.Verify(h, []byte(agentMessage)); err != nil {
			t.Errorf("%s: Verify: %v", tt.name, err)
		}
	}
}

// Sign and signWith agree with OpenSSL, and with LivePerson's Java example
// ("payload" keyed with "THE_CLIENT_SECRET").
func TestSign(t *testing.T) {
	tests := []struct {
		alg  algorithm
		enc  macEncoding
		body string
		want string
	}{
		{algSHA1, base64MAC, agentMessage, opensslSignatures[0].value},
		{algSHA1, hexMAC, agentMessage, opensslSignatures[1].value},
		{algSHA256, base64MAC, agentMessage, opensslSignatures[2].value},
		{algSHA256, hexMAC, agentMessage, opensslSignatures[3].value},
		{algSHA1, base64MAC, "payload", "sha1=6GKAMTT/rWDbn6723/FjsTZKRWQ="},
		{algSHA256, base64MAC, "payload", "sha256=fD2hdmLrH7o265jEFZwCgH3A4NYua8k6Jb2oDl7U/Pw="},
		{algSHA256, hexMAC, "payload", "sha256=7c3da17662eb1fba36eb98c4159c02807dc0e0d62e6bc93a25bda80e5ed4fcfc"},
	}
	for _, tt := range tests {
		if got := signWith(tt.alg, tt.enc, testSecret, []byte(tt.body)); got != tt.want {
			t.Errorf("signWith(%s, %d, %.20q...) = %s, want %s", tt.alg, tt.enc, tt.body, got, tt.want)
		}
	}
	if got, want := Sign(testSecret, []byte(agentMessage)), opensslSignatures[0].value; got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

// LivePerson's page shows a signature of each algorithm without what it
// signs: they parse as signatures of their algorithm, and verify nothing
// else.
func TestDocumentedExamples(t *testing.T) {
	for _, tt := range []struct {
		value string
		alg   algorithm
	}{
		{"sha1=12DcfY3NhieG0uMlGlNX/SHWBeQ=", algSHA1},
		{"sha256=xcF8VakxqTEyCxiQTwStupGCz3NC4FFTqXifBmmIRBM=", algSHA256},
	} {
		sig, ok := parseSignature(tt.value)
		if !ok || sig.alg != tt.alg {
			t.Errorf("parseSignature(%s) = %s, %t; want %s, true", tt.value, sig.alg, ok, tt.alg)
		}
		h := lpHeader(agentMessage, testSecret)
		h.Set(HeaderSignature, tt.value)
		if err := newTestVerifier(t).Verify(h, []byte(agentMessage)); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("Verify with %s over another body: %v, want ErrUnauthorized", tt.value, err)
		}
	}
}

// The raw UTF-8 bytes are what is signed: the same notification decoded
// and encoded again, or folded to ASCII as .NET's Encoding.ASCII does,
// does not verify.
func TestVerifyEmoji(t *testing.T) {
	// OpenSSL, over the raw bytes: ic//roTHIL0yH8MlgSL3amJWh7o=
	raw := `{"kind":"notification","body":{"changes":[{"sequence":4,"originatorMetadata":{"id":"a1","role":"ASSIGNED_AGENT"},"event":{"type":"ContentEvent","message":"Grüße 👋","contentType":"text/plain"},"dialogId":"d1"}]},"type":"ms.MessagingEventNotification"}`
	escaped := strings.NewReplacer("ü", `\u00fc`, "ß", `\u00df`, "👋", `\ud83d\udc4b`).Replace(raw)
	ascii := strings.Map(func(r rune) rune {
		if r > 127 {
			return '?'
		}
		return r
	}, raw)
	reserialized := func(body string) string {
		var v any
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	v := newTestVerifier(t)
	tests := []struct {
		name         string
		signed, sent string
		ok           bool
	}{
		{"raw UTF-8, as sent", raw, raw, true},
		{"escaped, as sent", escaped, escaped, true},
		{"raw UTF-8, signature over the re-serialized body", reserialized(raw), raw, false},
		{"escaped, signature over the re-serialized body (raw UTF-8)", reserialized(escaped), escaped, false},
		{"raw UTF-8, signature over its ASCII bytes", ascii, raw, false},
		{"raw UTF-8, signature over the escaped form", escaped, raw, false},
	}
	for _, tt := range tests {
		h := lpHeader(tt.sent, testSecret)
		h.Set(HeaderSignature, Sign(testSecret, []byte(tt.signed)))
		err := v.Verify(h, []byte(tt.sent))
		if tt.ok && err != nil {
			t.Errorf("%s: %v, want nil", tt.name, err)
		}
		if !tt.ok && !errors.Is(err, ErrUnauthorized) {
			t.Errorf("%s: %v, want ErrUnauthorized", tt.name, err)
		}
	}
	if got, want := Sign(testSecret, []byte(raw)), "sha1=ic//roTHIL0yH8MlgSL3amJWh7o="; got != want {
		t.Errorf("Sign(raw) = %s, want %s (OpenSSL)", got, want)
	}
}

// Every tampering fails with 401, a fixed answer, next not called, and
// nothing the caller sent in the answer or the logs.
func TestHandlerRefusesTampering(t *testing.T) {
	sig := Sign(testSecret, []byte(agentMessage))
	mac := strings.TrimPrefix(sig, "sha1=")
	sha256Hex := signWith(algSHA256, hexMAC, testSecret, []byte(agentMessage))
	flipped := strings.Replace(agentMessage, "Hello", "Hellp", 1)
	tests := []struct {
		name   string
		body   string
		header func(h http.Header)
	}{
		{"one byte of the body", flipped, nil},
		{"a byte appended to the body", agentMessage + "\n", nil},
		{"body empty", "", nil},
		{"one character of the signature", agentMessage, func(h http.Header) { h.Set(HeaderSignature, "sha1=x"+mac[1:]) }},
		{"wrong secret", agentMessage, func(h http.Header) { h.Set(HeaderSignature, Sign(testSecret+"x", []byte(agentMessage))) }},
		{"secret empty", agentMessage, func(h http.Header) { h.Set(HeaderSignature, Sign("", []byte(agentMessage))) }},
		{"signature truncated by one", agentMessage, func(h http.Header) { h.Set(HeaderSignature, sig[:len(sig)-1]) }},
		{"signature truncated to a quantum", agentMessage, func(h http.Header) { h.Set(HeaderSignature, sig[:len(sig)-4]) }},
		{"signature without its MAC", agentMessage, func(h http.Header) { h.Set(HeaderSignature, "sha1=") }},
		{"signature with a byte more", agentMessage, func(h http.Header) { h.Set(HeaderSignature, sig+"A") }},
		{"hex truncated", agentMessage, func(h http.Header) { h.Set(HeaderSignature, sha256Hex[:len(sha256Hex)-2]) }},
		{"MAC without scheme", agentMessage, func(h http.Header) { h.Set(HeaderSignature, mac) }},
		{"scheme sha512", agentMessage, func(h http.Header) { h.Set(HeaderSignature, "sha512="+mac) }},
		{"scheme md5", agentMessage, func(h http.Header) { h.Set(HeaderSignature, "md5="+mac) }},
		{"scheme with a colon", agentMessage, func(h http.Header) { h.Set(HeaderSignature, "sha1:"+mac) }},
		{"scheme with a space", agentMessage, func(h http.Header) { h.Set(HeaderSignature, "sha1 ="+mac) }},
		{"sha256 scheme on a SHA-1 MAC", agentMessage, func(h http.Header) { h.Set(HeaderSignature, "sha256="+mac) }},
		{"sha1 scheme on a SHA-256 MAC", agentMessage, func(h http.Header) { h.Set(HeaderSignature, "sha1="+strings.TrimPrefix(sha256Hex, "sha256=")) }},
		{"base64 without padding", agentMessage, func(h http.Header) { h.Set(HeaderSignature, strings.TrimSuffix(sig, "=")) }},
		{"base64 URL alphabet", agentMessage, func(h http.Header) {
			h.Set(HeaderSignature, strings.NewReplacer("+", "-", "/", "_").Replace(opensslSignatures[2].value))
		}},
		{"signature repeated, both valid", agentMessage, func(h http.Header) { h.Add(HeaderSignature, sig) }},
		{"signature repeated under another case", agentMessage, func(h http.Header) { h["x-liveperson-signature"] = []string{sig} }},
		{"signature missing", agentMessage, func(h http.Header) { h.Del(HeaderSignature) }},
		{"signature empty", agentMessage, func(h http.Header) { h.Set(HeaderSignature, "") }},
		{"account repeated", agentMessage, func(h http.Header) { h.Add(HeaderAccountID, testAccount) }},
		{"account missing", agentMessage, func(h http.Header) { h.Del(HeaderAccountID) }},
		{"wrong account", agentMessage, func(h http.Header) { h.Set(HeaderAccountID, "le87654321") }},
		{"account in another case", agentMessage, func(h http.Header) { h.Set(HeaderAccountID, strings.ToUpper(testAccount)) }},
		{"client id repeated", agentMessage, func(h http.Header) { h.Add(HeaderClientID, testClient) }},
		{"client id missing", agentMessage, func(h http.Header) { h.Del(HeaderClientID) }},
		{"wrong client id", agentMessage, func(h http.Header) { h.Set(HeaderClientID, "f0000000-0213-4e33-8174-883acac7e3c4") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			v := newTestVerifier(t, logTo(&logs))
			h := lpHeader(agentMessage, testSecret)
			if tt.header != nil {
				tt.header(h)
			}
			// What the caller sent, long enough not to match a fixed text by
			// chance.
			sent := []string{testSecret, mac, tt.body, "Hello from the Agent", "le87654321", "f0000000"}
			for k, vs := range h {
				for _, v := range vs {
					if len(v) >= 8 && k != "Content-Type" {
						sent = append(sent, v)
					}
				}
			}
			s := serve(t, v, h, strings.NewReader(tt.body), int64(len(tt.body)))
			if s.status != http.StatusUnauthorized || s.answer != "unauthorized\n" {
				t.Errorf("answer %d %q, want 401 \"unauthorized\\n\"", s.status, s.answer)
			}
			if s.nextBody != nil {
				t.Error("next handler called")
			}
			var answer strings.Builder
			s.header.Write(&answer)
			answer.WriteString(s.answer)
			if echo, ok := echoes(answer.String(), sent...); ok {
				t.Errorf("answer echoes %q:\n%s", echo, answer.String())
			}
			if !strings.Contains(logs.String(), `level=WARN msg="webhook: notification rejected" status=401 error=`) {
				t.Errorf("logs, want a WARN for the refusal:\n%s", logs.String())
			}
			if echo, ok := echoes(logs.String(), sent...); ok {
				t.Errorf("logs echo %q:\n%s", echo, logs.String())
			}
			if err := v.Verify(h, []byte(tt.body)); !errors.Is(err, ErrUnauthorized) {
				t.Errorf("Verify: %v, want ErrUnauthorized", err)
			}
		})
	}
}

// A verified notification reaches next with its body, whatever the
// algorithm and encoding, and is logged without the secret or the body.
func TestHandlerPasses(t *testing.T) {
	for _, tt := range opensslSignatures {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			h := lpHeader(agentMessage, testSecret)
			h.Set(HeaderSignature, tt.value)
			s := serve(t, newTestVerifier(t, logTo(&logs)), h, strings.NewReader(agentMessage), int64(len(agentMessage)))
			if s.status != http.StatusOK || string(s.nextBody) != agentMessage {
				t.Errorf("answer %d, next got %q; want 200 and the body", s.status, s.nextBody)
			}
			want := fmt.Sprintf(`level=DEBUG msg="webhook: notification verified" account=%s client_id=%s body_bytes=%d`, testAccount, testClient, len(agentMessage))
			if !strings.Contains(logs.String(), want) {
				t.Errorf("logs:\n%s\nwant %s", logs.String(), want)
			}
			if echo, ok := echoes(logs.String(), testSecret, tt.value[strings.IndexByte(tt.value, '=')+1:], "Hello"); ok {
				t.Errorf("logs echo %q", echo)
			}
		})
	}
}

// Header names in any case, as a serverless platform may hand them over,
// are found.
func TestVerifyHeaderCase(t *testing.T) {
	h := http.Header{
		"x-liveperson-account-id": {testAccount},
		"X-LIVEPERSON-CLIENT-ID":  {testClient},
		"x-liveperson-signature":  {Sign(testSecret, []byte(agentMessage))},
	}
	if err := newTestVerifier(t).Verify(h, []byte(agentMessage)); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

// Header names and the signature's scheme fold ASCII case only, as
// net/http and HTTP do: "ſ" (U+017F), which Unicode folds to "s", names
// no LivePerson header and no scheme.
func TestVerifyFoldsASCIIOnly(t *testing.T) {
	sig := Sign(testSecret, []byte(agentMessage))
	tests := []struct {
		name   string
		header func(h http.Header)
		ok     bool
	}{
		{"signature under a name with ſ only", func(h http.Header) {
			h.Del(HeaderSignature)
			h["X-Liveperson-ſignature"] = []string{sig}
		}, false},
		{"a valid signature, and another under a name with ſ", func(h http.Header) {
			h["X-Liveperson-ſignature"] = []string{"sha1=forged"}
		}, true},
		{"account under a name with ſ only", func(h http.Header) {
			h.Del(HeaderAccountID)
			h["X-Liveperſon-Account-Id"] = []string{testAccount}
		}, false},
		{"scheme ſha1", func(h http.Header) { h.Set(HeaderSignature, "ſha1="+strings.TrimPrefix(sig, "sha1=")) }, false},
		{"scheme in upper case", func(h http.Header) { h.Set(HeaderSignature, "SHA1="+strings.TrimPrefix(sig, "sha1=")) }, true},
	}
	v := newTestVerifier(t)
	for _, tt := range tests {
		h := lpHeader(agentMessage, testSecret)
		tt.header(h)
		err := v.Verify(h, []byte(agentMessage))
		if tt.ok && err != nil {
			t.Errorf("%s: %v, want nil", tt.name, err)
		}
		if !tt.ok && !errors.Is(err, ErrUnauthorized) {
			t.Errorf("%s: %v, want ErrUnauthorized", tt.name, err)
		}
	}
}

// A body over the cap is refused with 400 without reading past the cap:
// at most one byte more, and nothing if Content-Length says so.
func TestHandlerBodyCap(t *testing.T) {
	const max = 1024
	capped := strings.Repeat("a", max)
	tests := []struct {
		name          string
		body          io.Reader
		contentLength int64
		signed        string // the body the signature is of
		wantStatus    int
		wantAnswer    string
		wantRead      int64 // at most
	}{
		{"endless, length unknown", endless{}, -1, "", 400, "body too large\n", max + 1},
		{"endless, length announced over the cap", endless{}, max + 1, "", 400, "body too large\n", 0},
		{"endless, length announced at the cap", endless{}, max, capped, 400, "body too large\n", max + 1},
		{"one byte over the cap, length unknown", strings.NewReader(capped + "a"), -1, capped + "a", 400, "body too large\n", max + 1},
		{"at the cap, length unknown", strings.NewReader(capped), -1, capped, 200, "", max},
		{"at the cap, length announced", strings.NewReader(capped), max, capped, 200, "", max},
		{"in one-byte reads", iotest.OneByteReader(strings.NewReader(capped[:700])), -1, capped[:700], 200, "", 700},
		{"breaking off", iotest.TimeoutReader(strings.NewReader(capped)), -1, capped, 400, "body unreadable\n", max},
		{"empty", strings.NewReader(""), 0, "", 200, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			v := newTestVerifier(t, logTo(&logs), func(c *Config) { c.MaxBodyBytes = max })
			body := &countingReader{r: tt.body}
			s := serve(t, v, lpHeader(tt.signed, testSecret), body, tt.contentLength)
			if s.status != tt.wantStatus || (tt.wantAnswer != "" && s.answer != tt.wantAnswer) {
				t.Errorf("answer %d %q, want %d %q", s.status, s.answer, tt.wantStatus, tt.wantAnswer)
			}
			if body.n > tt.wantRead {
				t.Errorf("read %d bytes, want at most %d", body.n, tt.wantRead)
			}
			if tt.wantStatus == 400 && (s.nextBody != nil || !strings.Contains(logs.String(), "status=400")) {
				t.Errorf("next called (%t) or no WARN logged:\n%s", s.nextBody != nil, logs.String())
			}
			if tt.wantAnswer == "body too large\n" && s.header.Get("Connection") != "close" {
				t.Errorf("Connection: %q, want close", s.header.Get("Connection"))
			}
		})
	}
	// The same bound in the function form.
	v := newTestVerifier(t, func(c *Config) { c.MaxBodyBytes = max })
	over := capped + "a"
	if err := v.Verify(lpHeader(over, testSecret), []byte(over)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Verify over the cap: %v, want ErrTooLarge", err)
	}
	if err := v.Verify(lpHeader(capped, testSecret), []byte(capped)); err != nil {
		t.Errorf("Verify at the cap: %v", err)
	}
}

// readCapped reads at most the cap and one byte more, whatever the cap
// and the claimed length, and its buffer follows what was read.
func TestReadCappedBounds(t *testing.T) {
	for _, capBytes := range []int64{0, 1, 1000, 8 << 10, 20000, 100003} {
		for _, contentLength := range []int64{-1, 0, capBytes / 2, capBytes} {
			body := &countingReader{r: endless{}}
			_, err := readCapped(body, contentLength, capBytes)
			if !errors.Is(err, ErrTooLarge) || body.n > capBytes+1 {
				t.Errorf("cap %d, Content-Length %d, endless body: read %d bytes, %v; want at most %d, ErrTooLarge", capBytes, contentLength, body.n, err, capBytes+1)
			}
		}
		sent := strings.Repeat("a", int(capBytes))
		for _, contentLength := range []int64{-1, capBytes} {
			got, err := readCapped(iotest.HalfReader(strings.NewReader(sent)), contentLength, capBytes)
			if err != nil || string(got) != sent {
				t.Errorf("cap %d, Content-Length %d, a body at the cap in short reads: %d bytes, %v; want %d, nil", capBytes, contentLength, len(got), err, capBytes)
			}
			// No buffer of the next size just to see the body end.
			if limit := max(capBytes, min(capBytes, firstBuffer)); int64(cap(got)) > limit {
				t.Errorf("cap %d, Content-Length %d: buffer of %d bytes for %d received, want at most %d", capBytes, contentLength, cap(got), len(got), limit)
			}
		}
	}
}

// A header that is already wrong is refused before the body is read.
func TestHandlerReadsNoBodyForBadHeaders(t *testing.T) {
	h := lpHeader(agentMessage, testSecret)
	h.Set(HeaderAccountID, "le87654321")
	body := &countingReader{r: endless{}}
	s := serve(t, newTestVerifier(t), h, body, -1)
	if s.status != http.StatusUnauthorized || body.n != 0 {
		t.Errorf("answer %d after reading %d bytes, want 401 after none", s.status, body.n)
	}
}

// With Secrets, each account and client is checked against its own
// secret, Secrets gets the header values, and the cache of keyed states
// stays bounded.
func TestVerifierSecrets(t *testing.T) {
	secrets := map[[2]string]secret.String{
		{"le1", "app-a"}: "secret-1a",
		{"le2", "app-a"}: "secret-2a",
	}
	var asked [][2]string
	lookup := func(account, client string) (secret.String, bool) {
		asked = append(asked, [2]string{account, client})
		s, ok := secrets[[2]string{account, client}]
		return s, ok
	}
	v, err := Config{Secrets: lookup}.NewVerifier()
	if err != nil {
		t.Fatal(err)
	}
	header := func(account, client string, clientSecret secret.String) http.Header {
		return http.Header{
			HeaderAccountID: {account},
			HeaderClientID:  {client},
			HeaderSignature: {Sign(clientSecret, []byte(agentMessage))},
		}
	}
	tests := []struct {
		name            string
		account, client string
		secret          secret.String
		ok              bool
	}{
		{"account 1", "le1", "app-a", "secret-1a", true},
		{"account 2", "le2", "app-a", "secret-2a", true},
		{"account 1 signed with account 2's secret", "le1", "app-a", "secret-2a", false},
		{"unknown client", "le1", "app-b", "secret-1a", false},
		{"unknown account", "le3", "app-a", "secret-1a", false},
	}
	for _, tt := range tests {
		asked = nil
		err := v.Verify(header(tt.account, tt.client, tt.secret), []byte(agentMessage))
		if (err == nil) != tt.ok {
			t.Errorf("%s: %v, want ok %t", tt.name, err, tt.ok)
		}
		if len(asked) != 1 || asked[0] != [2]string{tt.account, tt.client} {
			t.Errorf("%s: Secrets asked %v, want once for (%s, %s)", tt.name, asked, tt.account, tt.client)
		}
	}

	// AccountID set alongside Secrets restricts the accounts.
	only1, err := Config{AccountID: "le1", Secrets: lookup}.NewVerifier()
	if err != nil {
		t.Fatal(err)
	}
	if err := only1.Verify(header("le2", "app-a", "secret-2a"), []byte(agentMessage)); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("AccountID le1, account le2: %v, want ErrUnauthorized", err)
	}

	// More secrets than the cache holds: each still verifies, and the cache
	// stays bounded.
	many, err := Config{Secrets: func(account, _ string) (secret.String, bool) { return secret.String("secret-" + account), true }}.NewVerifier()
	if err != nil {
		t.Fatal(err)
	}
	for i := range maxCachedSecrets + 10 {
		account := fmt.Sprint("le", i)
		if err := many.Verify(header(account, "app", secret.String("secret-"+account)), []byte(agentMessage)); err != nil {
			t.Fatalf("secret %d: %v", i, err)
		}
		if n := len(many.bySecret); n > maxCachedSecrets {
			t.Fatalf("after %d secrets, %d cached, want at most %d", i+1, n, maxCachedSecrets)
		}
	}
}

// With PreviousSecrets, a notification signed with either live secret
// verifies, and the previous one is asked for only when the secret of
// Secrets does not sign it.
func TestVerifierPreviousSecrets(t *testing.T) {
	var asked int
	v, err := Config{
		Secrets: func(account, _ string) (secret.String, bool) {
			return secret.String("new-" + account), account != "le3"
		},
		PreviousSecrets: func(account, _ string) (secret.String, bool) {
			asked++
			return secret.String("old-" + account), account == "le1"
		},
	}.NewVerifier()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		account   string
		signedBy  secret.String
		ok        bool
		wantAsked int
	}{
		{"new secret", "le1", "new-le1", true, 0},
		{"previous secret", "le1", "old-le1", true, 1},
		{"another account's previous secret", "le1", "old-le2", false, 1},
		{"no previous secret", "le2", "old-le2", false, 1},
		{"unknown account", "le3", "old-le3", false, 0},
	}
	for _, tt := range tests {
		asked = 0
		err := v.Verify(lpHeaderFor(tt.account, agentMessage, tt.signedBy), []byte(agentMessage))
		if (err == nil) != tt.ok {
			t.Errorf("%s: %v, want ok %t", tt.name, err, tt.ok)
		}
		if asked != tt.wantAsked {
			t.Errorf("%s: PreviousSecrets asked %d times, want %d", tt.name, asked, tt.wantAsked)
		}
	}
}

func lpHeaderFor(account, body string, clientSecret secret.String) http.Header {
	return http.Header{
		HeaderAccountID: {account},
		HeaderClientID:  {"app"},
		HeaderSignature: {Sign(clientSecret, []byte(body))},
	}
}

func TestNewVerifierErrors(t *testing.T) {
	lookup := func(string, string) (secret.String, bool) { return "", false }
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"nothing", Config{}, "webhook: Config.ClientSecret is empty and Config.Secrets is nil; set one"},
		{"both", testConfig(func(c *Config) { c.Secrets = lookup }), "webhook: Config.ClientSecret and Config.Secrets are both set; set one"},
		{"no account", testConfig(func(c *Config) { c.AccountID = "" }), "webhook: Config.AccountID is empty"},
		{"no client", testConfig(func(c *Config) { c.ClientID = "" }), "webhook: Config.ClientID is empty"},
		{"redacted secret", testConfig(func(c *Config) { c.ClientSecret = "[REDACTED]" }), "webhook: Config.ClientSecret is [REDACTED]: the Config was read back from redacted JSON or logs"},
		{"previous without secrets", testConfig(func(c *Config) { c.PreviousSecrets = lookup }), "webhook: Config.PreviousSecrets is set without Config.Secrets"},
		{"negative cap", testConfig(func(c *Config) { c.MaxBodyBytes = -1 }), "webhook: Config.MaxBodyBytes -1 is negative"},
	}
	for _, tt := range tests {
		_, err := tt.cfg.NewVerifier()
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s: %v, want %s", tt.name, err, tt.want)
		}
	}
	if _, err := (Config{Secrets: lookup}).NewVerifier(); err != nil {
		t.Errorf("Secrets alone: %v", err)
	}
}
