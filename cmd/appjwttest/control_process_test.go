package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/lpconnect/appjwt/appjwttest"
	"github.com/lpconnect/appjwt/secret"
	"github.com/lpconnect/appjwt/webhook"
)

// The command, built and started as a process, delivers signed webhooks
// to a plain net/http receiver it was told to trust, for an agent driven
// through the control API, as a connector in another language would see
// it.
func TestProcessControl(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	dir := t.TempDir()
	// -p=1 and no symbols, as in TestProcess, to leave the machine to the
	// tests of other packages.
	build := exec.Command(goCmd, "build", "-p=1", "-ldflags=-s -w", "-o", dir, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	recv := newReceiver(t)
	caFile := filepath.Join(dir, "receiver-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: recv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	hooks := `{"` + appjwttest.WebhookContentEvent + `":{"endpoint":"` + recv.URL + `/lp/events","max_retries":2}}`
	cmd, r, stderr := startProcess(t, filepath.Join(dir, "appjwttest"), "-webhooks", hooks, "-webhook-ca", caFile, "-webhook-retry-pause", "50ms")
	b := readBanner(t, r)
	go io.Copy(io.Discard, r)

	caPEM, err := os.ReadFile(b["ca-cert"])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}, Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	control := func(method, path, body string, out any) {
		t.Helper()
		req, _ := http.NewRequest(method, b["control"]+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+b["control-token"])
		lp{client: client}.call(t, req, http.StatusOK, out)
	}

	c := lp{client, b["url"], b["account"], b["client-id"], b["client-secret"]}
	conv := c.open(t, "john_doe_42")
	var seq struct{ Sequence int }
	control("POST", "/agent/message", `{"conversationId":"`+conv+`","message":"hello from the agent"}`, &seq)
	if seq.Sequence != 0 {
		t.Errorf("POST /agent/message: sequence %d, want 0", seq.Sequence)
	}
	control("PUT", "/webhooks", `{"`+appjwttest.WebhookContentEvent+`":{"endpoint":"`+recv.URL+`/lp/events"},`+
		`"`+appjwttest.WebhookConversationChange+`":{"endpoint":"`+recv.URL+`/lp/conversations"}}`, &struct{}{})
	control("POST", "/agent/close", `{"conversationId":"`+conv+`"}`, &struct{}{})

	v, err := webhook.Config{AccountID: b["account"], ClientID: b["client-id"], ClientSecret: secret.String(b["client-secret"])}.NewVerifier()
	if err != nil {
		t.Fatal(err)
	}
	// Each webhook's queue is its own: the two may come in either order.
	got := map[string]webhook.Notification{}
	for range 2 {
		d := recv.next(t)
		if err := v.Verify(d.header, d.body); err != nil {
			t.Fatalf("delivery to %s: %v", d.path, err)
		}
		n, err := webhook.Parse(d.body)
		if err != nil {
			t.Fatalf("delivery to %s: %v", d.path, err)
		}
		got[d.path] = *n
	}
	checkDeliveries(t, got, conv)

	var ds []deliveryJSON
	control("GET", "/deliveries?wait=10s", "", &ds)
	if len(ds) != 2 || !ds[0].Delivered || !ds[1].Delivered || ds[1].Webhook != appjwttest.WebhookConversationChange {
		t.Errorf("GET /deliveries: %+v, want the two, delivered", ds)
	}
	var convs []conversationJSON
	control("GET", "/conversations", "", &convs)
	if len(convs) != 1 || convs[0].ConversationID != conv || convs[0].State != "CLOSE" || len(convs[0].Events) != 1 {
		t.Errorf("GET /conversations: %+v, want %s closed, with the agent's message", convs, conv)
	}
	var reqs []requestJSON
	control("GET", "/requests?endpoint=Sentinel", "", &reqs)
	if len(reqs) != 1 || reqs[0].Form.Get("client_secret") != withheld {
		t.Errorf("GET /requests?endpoint=Sentinel: %+v, want one, the secret withheld", reqs)
	}

	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		return // no os.Interrupt to send; cleanup kills it
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("after an interrupt: %v, want exit status 0 (stderr %q)", err, stderr.String())
	}
}

// checkDeliveries checks the two notifications of TestProcessControl, by
// path: the agent's message, and the conversation's closing by the agent.
func checkDeliveries(t *testing.T, got map[string]webhook.Notification, conv string) {
	t.Helper()
	events, convs := got["/lp/events"], got["/lp/conversations"]
	if len(events.Events) != 1 || len(convs.Conversations) != 1 {
		t.Fatalf("notifications %+v, want a message to /lp/events and a conversation change to /lp/conversations", got)
	}
	m := events.Events[0]
	if ce, ok := m.Event.(*webhook.ContentEvent); !ok || ce.Message != "hello from the agent" || m.DialogID != conv || m.FromConsumer() {
		t.Errorf("message notification %+v, want the agent's message in %s", m, conv)
	}
	if c := convs.Conversations[0]; !c.Closed() || c.Details.CloseReason != "AGENT" {
		t.Errorf("conversation change %+v, want closed by the agent", c)
	}
}
