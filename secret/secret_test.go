package secret_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/lpconnect/appjwt/secret"
)

const value = "s3cr3t-V4lue/+="

// config holds a String as the Configs that use it do.
type config struct {
	ID     string
	Secret secret.String
	Ptr    *secret.String
}

func TestNeverShows(t *testing.T) {
	s := secret.String(value)
	c := config{ID: "id", Secret: s, Ptr: &s}
	var texts []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3s", "%-20v", "%T %v", "%#q", "%+q"} {
		texts = append(texts, fmt.Sprintf(verb, s), fmt.Sprintf(verb, c), fmt.Sprintf(verb, &c), fmt.Sprintf(verb, []any{c}), fmt.Sprintf(verb, map[string]secret.String{"k": s}))
	}
	texts = append(texts, fmt.Sprint(s), fmt.Sprintln(c))
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	texts = append(texts, string(b))
	for _, h := range []func(*bytes.Buffer) slog.Handler{
		func(w *bytes.Buffer) slog.Handler { return slog.NewTextHandler(w, nil) },
		func(w *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(w, nil) },
	} {
		var w bytes.Buffer
		slog.New(h(&w)).Info("m", "secret", s, "config", c, slog.Any("ptr", &c))
		texts = append(texts, w.String())
	}
	for _, text := range texts {
		if strings.Contains(text, value) || strings.Contains(text, fmt.Sprintf("%x", value)) || strings.Contains(text, "s3cr3t") {
			t.Errorf("shows the secret: %s", text)
		}
	}
}

func TestShows(t *testing.T) {
	tests := []struct {
		format string
		s      secret.String
		want   string
	}{
		{"%v", value, "[REDACTED]"},
		{"%q", value, `"[REDACTED]"`},
		{"%#v", value, `"[REDACTED]"`},
		{"%v", "", ""},
		{"%q", "", `""`},
	}
	for _, tt := range tests {
		if got := fmt.Sprintf(tt.format, tt.s); got != tt.want {
			t.Errorf("Sprintf(%q, %q) = %q, want %q", tt.format, string(tt.s), got, tt.want)
		}
	}
	var back config
	if err := json.Unmarshal([]byte(`{"Secret":"`+value+`"}`), &back); err != nil || string(back.Secret) != value {
		t.Errorf("from JSON: %q, %v; want the value as it was", string(back.Secret), err)
	}
	if err := json.Unmarshal([]byte(`{"Secret":"[REDACTED]"}`), &back); err != nil || !back.Secret.IsRedacted() {
		t.Errorf("a redacted String read back: IsRedacted false, %v", err)
	}
}
