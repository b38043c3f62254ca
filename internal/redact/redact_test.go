package redact

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

const secret = "Kq7ZrWx2Lm9PbT4vNc8HsY3jFd6QgA1e"

func TestBody(t *testing.T) {
	r := For(secret, "[withheld]")
	pad := func(n int) string { return strings.Repeat("y", n) }
	tests := []struct {
		name, answer, want string
	}{
		{"short, kept whole", "bad request", "bad request"},
		{"short, echoing", "bad " + secret, "[withheld]"},
		{"cut after the last clean byte", pad(20) + " " + pad(30) + ", " + pad(100), pad(20) + " " + pad(30) + ", "},
		{"no clean byte: withheld", pad(200), "[withheld: 200 bytes, and none of the first 64 ends a clean cut]"},
		{"echo far past the cut", pad(10) + " " + pad(200) + " " + stacked(secret), "[withheld]"},
		{"echo across the cut", pad(10) + " " + stacked(secret), "[withheld]"},
		// '<' is no clean end: encoding/json makes \u003c of it.
		{"cut before '<'", pad(10) + " " + pad(10) + "<" + pad(100), pad(10) + " "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(r.Body([]byte(tt.answer), 64)); got != tt.want {
				t.Errorf("Body = %q, want %q", got, tt.want)
			}
		})
	}
}

// A secret with a backslash sequence, echoed with the sequence decoded: a
// field that holds none as it is makes one as fmt or encoding/json print
// it.
func TestLeaksAsPrinted(t *testing.T) {
	tests := []struct{ secret, text string }{
		{`Kq7\nZr4`, "Kq7\nZr4"},
		{`Kq7\u00e9Zr4`, "Kq7éZr4"},
		{`Kq7\u003cZr4`, "Kq7<Zr4"},
		{`Kq7\"Zr4`, `Kq7"Zr4`},
		{`Kq7\x00Zr4`, "Kq7\x00Zr4"},
		{`Kq7\u0000Zr4`, "Kq7\x00Zr4"},
		{`Kq7\ufffdZr4`, "Kq7\xffZr4"},
	}
	for _, tt := range tests {
		r := For(tt.secret, "[withheld]")
		if !r.Leaks(tt.text) {
			t.Errorf("For(%q).Leaks(%q) = false, want true", tt.secret, tt.text)
		}
		if got := r.Field(tt.text, 64); got != "[withheld]" {
			t.Errorf("For(%q).Field(%q) = %q, want it withheld", tt.secret, tt.text, got)
		}
	}
}

func TestField(t *testing.T) {
	r := For(secret, "[withheld]")
	for _, tt := range []struct{ text, want string }{
		{"invalid_client", "invalid_client"},
		{strings.Repeat("x", 65), "[withheld: 65 bytes, more than 64]"},
		{"unknown " + secret, "[withheld]"},
	} {
		if got := r.Field(tt.text, 64); got != tt.want {
			t.Errorf("Field(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}

// FuzzLeaks holds printed to what fmt, encoding/json and log/slog print:
// a text that does not leak shows no secret however it is printed.
func FuzzLeaks(f *testing.F) {
	f.Add(`Kq7\nZr4`, "a Kq7\nZr4 b")
	f.Add(`\u003c`, "<")
	f.Add(`"x`, `y"x`)
	f.Add(`\xff`, "\xff")
	f.Fuzz(func(t *testing.T, secret, text string) {
		if secret == "" || len(secret) > 100 || len(text) > 1000 {
			return
		}
		if For(secret, "").Leaks(text) {
			return
		}
		var logged bytes.Buffer
		onlyText := func(_ []string, a slog.Attr) slog.Attr {
			if a.Key != "text" {
				return slog.Attr{}
			}
			return a
		}
		slog.New(slog.NewJSONHandler(&logged, &slog.HandlerOptions{ReplaceAttr: onlyText})).Info("", "text", text)
		marshalled, _ := json.Marshal(text)
		for _, s := range []string{
			fmt.Sprint(text), fmt.Sprintf("%q", text), fmt.Sprintf("%+q", text), fmt.Sprintf("%#q", text), fmt.Sprintf("%#v", text),
			string(marshalled), strings.TrimSuffix(strings.TrimPrefix(logged.String(), `{"text":`), "}\n"),
		} {
			if strings.Contains(s, secret) {
				t.Errorf("Leaks(%q) = false, but the secret %q shows in %q", text, secret, s)
			}
		}
	})
}

// Every run of MinRun bytes of a secret is a leak, its first and its
// last included: a server quoting the request cut short may show either
// end.
func TestEveryRunLeaks(t *testing.T) {
	const secret = "Kq7Zr4mXw9PbT2vL"
	r := For(secret, "")
	for i := 0; i+MinRun <= len(secret); i++ {
		if run := secret[i : i+MinRun]; !r.Leaks("echo: " + run) {
			t.Errorf("the run at byte %d (of %d) is no leak", i, len(secret))
		}
	}
	if r.Leaks("echo: " + secret[len(secret)-MinRun+1:]) {
		t.Errorf("a run of %d bytes is a leak, want only runs of %d", MinRun-1, MinRun)
	}
}
