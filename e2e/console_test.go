package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"github.com/lpconnect/appjwt"
	"github.com/lpconnect/appjwt/appjwttest"
	"github.com/lpconnect/appjwt/consumerjws"
	"github.com/lpconnect/appjwt/secret"
	"github.com/lpconnect/appjwt/webhook"
)

// The agent console in a real browser: a connector opens a conversation
// with cmd/appjwttest, run as a process; the page shows it, the agent
// replies from the page, and the connector's webhook endpoint gets the
// reply signed.
func TestConsole(t *testing.T) {
	browser := findChromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	recv := newReceiver(t)
	b := startStandIn(t, recv)

	// The connector's side, with the library, as the README's connector:
	// an AppJWT, a ConsumerJWS, a conversation, the consumer's message.
	client := trusting(t, b["ca-cert"])
	conn := newConnector(t, b, client)
	const consumer, said = "john_doe_42", "<script>alert(1)</script> where is my order?"
	conv := conn.open(ctx, t, consumer)
	conn.send(ctx, t, consumer, conv, said)

	cert := caCertificate(t, b["ca-cert"])
	spki := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	opts := append(chromedp.DefaultExecAllocatorOptions[:0:0],
		chromedp.ExecPath(browser),
		chromedp.Headless,
		chromedp.NoSandbox, // as root in CI
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// Trust the stand-in's certificate, made for this run, and no other.
		chromedp.Flag("ignore-certificate-errors-spki-list", base64.StdEncoding.EncodeToString(spki[:])),
	)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	dialogs := make(chan string, 4)
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf), chromedp.WithListener(func(ev any) {
		if d, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			select {
			case dialogs <- d.Message:
			default:
			}
		}
	}))
	defer bcancel()

	start := time.Now()
	article := "#conv-" + conv
	if err := chromedp.Do(bctx,
		chromedp.Navigate(b["console"]),
		chromedp.WaitVisible(chromedp.CSS(article+" .event.consumer")),
	); err != nil {
		t.Fatalf("opening the console: %v", err)
	}
	if shown := run(t, bctx, chromedp.Text(chromedp.CSS(article+" .event.consumer .text"))); shown != said {
		t.Errorf("the consumer's message shows as %q, want %q", shown, said)
	}
	if location := run(t, bctx, chromedp.Location()); location != b["control"]+"/console/" {
		t.Errorf("after login the page is at %q, want %s/console/ (no login code)", location, b["control"])
	}

	const reply = "Hi, this is the agent: your order ships today."
	if err := chromedp.Do(bctx,
		chromedp.SendKeys(chromedp.CSS(article+` input[name="message"]`), reply),
		chromedp.Click(chromedp.CSS(article+` form[data-action="agent/message"] button`)),
	); err != nil {
		t.Fatalf("replying from the console: %v", err)
	}

	v, err := webhook.Config{AccountID: b["account"], ClientID: b["client-id"], ClientSecret: secret.String(b["client-secret"])}.NewVerifier()
	if err != nil {
		t.Fatal(err)
	}
	// The consumer's own message comes back first, as LivePerson sends it.
	for i := 0; ; i++ {
		d := recv.next(t)
		if err := v.Verify(d.header, d.body); err != nil {
			t.Fatalf("webhook %d: %v", i, err)
		}
		n, err := webhook.Parse(d.body)
		if err != nil || len(n.Events) != 1 {
			t.Fatalf("webhook %d: %v, %d events, want 1", i, err, len(n.Events))
		}
		e := n.Events[0]
		if e.FromConsumer() {
			continue
		}
		if ce, ok := e.Event.(*webhook.ContentEvent); !ok || ce.Message != reply || e.DialogID != conv {
			t.Errorf("the reply's webhook: %+v in %s, want the message %q in %s", e.Event, e.DialogID, reply, conv)
		}
		break
	}

	// The page shows the reply and its delivery, once it has polled.
	if err := chromedp.Do(bctx,
		chromedp.WaitVisible(chromedp.CSS(article+" .event.agent")),
		chromedp.WaitVisible(chromedp.CSS("#deliveries tr.ok")),
		chromedp.WaitVisible(chromedp.CSS("#requests table")),
	); err != nil {
		t.Fatalf("the reply on the page: %v", err)
	}
	if agentSaid := run(t, bctx, chromedp.Text(chromedp.CSS(article+" .event.agent .text"))); agentSaid != reply {
		t.Errorf("the agent's message shows as %q, want %q", agentSaid, reply)
	}
	png := run(t, bctx, chromedp.FullScreenshot(100))
	t.Logf("the browser part took %v", time.Since(start).Round(time.Millisecond))
	select {
	case m := <-dialogs:
		t.Errorf("the page opened a dialog %q: a consumer's script ran", m)
	default:
	}
	shot := filepath.Join(t.ArtifactDir(), "console.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (kept with go test -artifacts)", shot)
}

// run runs a, failing the test if it fails.
func run[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// findChromium returns the path of Chromium, or skips the test if there is
// none, unless under CI, where it fails.
func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const why = "no Chromium: install Debian's chromium package (apt-get install chromium), or set $CHROMIUM"
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
	return ""
}

// banner is what cmd/appjwttest printed about itself, by key.
type banner map[string]string

// startStandIn builds and starts cmd/appjwttest, delivering ContentEvent
// webhooks to recv, and returns its banner. The process ends with the
// test.
func startStandIn(t *testing.T, recv *receiver) banner {
	t.Helper()
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", dir, "github.com/lpconnect/appjwt/cmd/appjwttest")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	caFile := filepath.Join(dir, "receiver-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: recv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	hooks := `{"` + appjwttest.WebhookContentEvent + `":{"endpoint":"` + recv.URL + `/lp/events","max_retries":2}}`
	cmd := exec.Command(filepath.Join(dir, "appjwttest"), "-webhooks", hooks, "-webhook-ca", caFile, "-webhook-retry-pause", "100ms")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("stderr of appjwttest:\n%s", stderr.String())
		}
	})
	r := bufio.NewReader(stdout)
	b := banner{}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the banner: %v", err)
		}
		if line = strings.TrimSpace(line); line == "" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			b[k] = strings.TrimSpace(v)
		}
	}
	go io.Copy(io.Discard, r)
	for _, k := range []string{"url", "account", "client-id", "client-secret", "ca-cert", "control", "console"} {
		if b[k] == "" {
			t.Fatalf("the banner has no %s", k)
		}
	}
	return b
}

func caCertificate(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s holds no PEM block", file)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// trusting returns a client that trusts the certificate in caFile only.
func trusting(t *testing.T, caFile string) *http.Client {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(caCertificate(t, caFile))
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}, Timeout: 10 * time.Second}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// connector is the outbound side of a connector, as the README's.
type connector struct {
	client  *http.Client
	sendAPI string
	account string
}

func newConnector(t *testing.T, b banner, base *http.Client) *connector {
	t.Helper()
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, base)
	app := appjwt.Config{AccountID: b["account"], ClientID: b["client-id"], ClientSecret: secret.String(b["client-secret"]), DomainAPI: strings.TrimPrefix(b["url"], "https://")}
	host, err := appjwt.LookupDomain(ctx, app.DomainAPI, app.AccountID, "asyncMessagingEnt")
	if err != nil {
		t.Fatal(err)
	}
	src := app.TokenSource(ctx)
	client := appjwt.NewClient(ctx, src)
	jws := consumerjws.Config{AccountID: app.AccountID, DomainAPI: app.DomainAPI, Source: src}
	client.Transport = &consumerjws.Transport{Cache: jws.NewCache(ctx), Base: client.Transport}
	return &connector{client, "https://" + host + "/api/account/" + app.AccountID + "/messaging/consumer/conversation", app.AccountID}
}

func (c *connector) open(ctx context.Context, t *testing.T, consumer string) string {
	t.Helper()
	var answer []struct {
		Body struct{ ConversationID string } `json:"body"`
	}
	c.post(ctx, t, consumer, "", []any{
		map[string]any{"kind": "req", "id": "1,", "type": "userprofile.SetUserProfile", "body": map[string]any{}},
		map[string]any{"kind": "req", "id": "2,", "type": "cm.ConsumerRequestConversation",
			"body": map[string]any{"brandId": c.account, "channelType": "MESSAGING"}},
	}, &answer)
	if len(answer) != 2 || answer[1].Body.ConversationID == "" {
		t.Fatalf("CONVERSATION answered %+v, want a conversationId", answer)
	}
	return answer[1].Body.ConversationID
}

func (c *connector) send(ctx context.Context, t *testing.T, consumer, conv, text string) {
	t.Helper()
	event := map[string]any{"type": "ContentEvent", "contentType": "text/plain", "message": text}
	c.post(ctx, t, consumer, "/send", map[string]any{"kind": "req", "id": "1", "type": "ms.PublishEvent",
		"body": map[string]any{"dialogId": conv, "event": event}}, nil)
}

func (c *connector) post(ctx context.Context, t *testing.T, consumer, path string, body, answer any) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(consumerjws.WithConsumer(ctx, consumer), "POST", c.sendAPI+path+"?v=3", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		t.Fatalf("send API%s: %v", path, err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("send API%s: %s %s", path, resp.Status, got)
	}
	if answer != nil {
		if err := json.Unmarshal(got, answer); err != nil {
			t.Fatalf("send API%s: %v in %s", path, err, got)
		}
	}
}

// receiver is the connector's webhook endpoint: https, answering 200 and
// keeping what it got.
type receiver struct {
	*httptest.Server
	got chan delivered
}

type delivered struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	r := &receiver{got: make(chan delivered, 16)}
	r.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(io.LimitReader(req.Body, 2<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case r.got <- delivered{req.Header.Clone(), body}:
		default:
		}
	}))
	t.Cleanup(r.Close)
	return r
}

// next returns the next delivery, within 15 s.
func (r *receiver) next(t *testing.T) delivered {
	t.Helper()
	select {
	case d := <-r.got:
		return d
	case <-time.After(15 * time.Second):
		t.Fatal("no webhook within 15 s")
		return delivered{}
	}
}
