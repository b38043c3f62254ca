package webhook_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/lpconnect/appjwt/internal/testkit"
	"github.com/lpconnect/appjwt/secret"
	"github.com/lpconnect/appjwt/webhook"
)

// verbSecret is a client secret no output may show.
const verbSecret = "s3cret-of-the-app"

// Every fmt verb, with any flags, shows a Config with its secret redacted,
// but the exceptions secret.String names, for which fmt calls no method
// and prints the value raw: %p of a value that is no pointer, map, slice,
// channel or func, and %w of anything but an error.
func TestConfigEveryVerb(t *testing.T) {
	cfg := webhook.Config{AccountID: "le1", ClientID: "client-1", ClientSecret: verbSecret}
	tests := []struct {
		name string
		v    any
		want []string
	}{
		{"Config", cfg, []string{"p", "w"}},
		{"*Config", &cfg, []string{"w"}},
		{"struct holding one", struct{ C webhook.Config }{cfg}, []string{"p", "w"}},
		{"array of one", [1]webhook.Config{cfg}, []string{"p", "w"}},
		{"slice of one", []webhook.Config{cfg}, []string{"w"}},
		{"map to one", map[string]webhook.Config{"a": cfg}, []string{"w"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, testkit.VerbsShowing(verbSecret, tt.v)); diff != "" {
			t.Errorf("%s: verbs that show the secret (-want +got):\n%s", tt.name, diff)
		}
	}
	// A *Config in a struct: the verbs fmt takes for a pointer print its
	// address; any other fmt rejects, and shows the struct raw.
	for _, verb := range []string{"%v", "%+v", "%#v", "%d", "%x", "%X", "%o", "%b", "%p"} {
		if got := fmt.Sprintf(verb, struct{ C *webhook.Config }{&cfg}); strings.Contains(got, verbSecret) {
			t.Errorf("%s of a struct holding a *Config shows the secret: %s", verb, got)
		}
	}
	if got, want := fmt.Sprintf("%+v", cfg), "ClientSecret:[REDACTED]"; !strings.Contains(got, want) {
		t.Errorf("%%+v = %s, want it to hold %s", got, want)
	}
}

// A Config logged or written as JSON shows its secret redacted, and one
// read back from that JSON makes no Verifier.
func TestConfigJSON(t *testing.T) {
	cfg := webhook.Config{AccountID: "le1", ClientID: "client-1", ClientSecret: verbSecret, MaxBodyBytes: 4096}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("start", "cfg", cfg)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("start", "cfg", cfg)
	texts := []string{logs.String()}
	for _, v := range []any{cfg, &cfg, struct{ C webhook.Config }{cfg}, []webhook.Config{cfg}} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, string(b))
	}
	testkit.NoEcho(t, verbSecret, texts...)
	if want := `{"AccountID":"le1","ClientID":"client-1","ClientSecret":"[REDACTED]","MaxBodyBytes":4096,"ReadTimeout":0}`; texts[1] != want {
		t.Errorf("json.Marshal(cfg) = %s, want %s", texts[1], want)
	}
	var back webhook.Config
	if err := json.Unmarshal([]byte(texts[1]), &back); err != nil {
		t.Fatal(err)
	}
	if _, err := back.NewVerifier(); err == nil {
		t.Error("a Config read back from its JSON makes a Verifier")
	}
}

// A *Verifier shows a summary, never a secret, under every fmt verb, in a
// struct too, logged or written as JSON; with Config.Secrets too, once a
// secret it returned is cached.
func TestVerifierShowsNoSecret(t *testing.T) {
	fixed, err := webhook.Config{AccountID: "le1", ClientID: "client-1", ClientSecret: verbSecret}.NewVerifier()
	if err != nil {
		t.Fatal(err)
	}
	multi, err := webhook.Config{Secrets: func(string, string) (secret.String, bool) { return verbSecret, true }}.NewVerifier()
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{}`)
	h := http.Header{webhook.HeaderAccountID: {"le1"}, webhook.HeaderClientID: {"client-1"}, webhook.HeaderSignature: {webhook.Sign(verbSecret, body)}}
	if err := multi.Verify(h, body); err != nil {
		t.Fatal(err)
	}
	type server struct{ V *webhook.Verifier }
	for name, v := range map[string]*webhook.Verifier{"fixed": fixed, "Secrets": multi} {
		for what, x := range map[string]any{"*Verifier": v, "struct holding one": server{v}} {
			if got := testkit.VerbsShowing(verbSecret, x); got != nil {
				t.Errorf("%s, %s: verbs that show the secret: %v", name, what, got)
			}
		}
		var logs bytes.Buffer
		slog.New(slog.NewJSONHandler(&logs, nil)).Info("start", "v", v)
		slog.New(slog.NewTextHandler(&logs, nil)).Info("start", "v", v)
		js, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		testkit.NoEcho(t, verbSecret, logs.String(), string(js), fmt.Sprintf("%#v", server{v}))
	}

	tests := []struct{ got, want string }{
		{fmt.Sprintf("%v", fixed), `webhook.Verifier{account: "le1", client_id: "client-1", secrets: false}`},
		{fmt.Sprintf("%#v", multi), `webhook.Verifier{account: "", client_id: "", secrets: true}`},
		{fmt.Sprintf("%v", (*webhook.Verifier)(nil)), `<nil>`},
		{string(must(json.Marshal(fixed))), `{"account":"le1","client_id":"client-1","secrets":false}`},
		{slog.AnyValue(fixed).Resolve().String(), `[account=le1 client_id=client-1 secrets=false]`},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %s, want %s", tt.got, tt.want)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
