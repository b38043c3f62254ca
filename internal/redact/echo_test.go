package redact

import (
	"encoding/json"
	"fmt"
	"html"
	"net/url"
	"strings"
	"testing"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// The secrets FuzzEchoes starts from: the characters encodings treat
// specially, '/', '+', '=', '&', '<', '>', '"', '\', '%', a space, a
// leading '-'.
var seedSecrets = []string{`Ab/Cd+Ef0=`, `-x&y<z>"q\w`, `p a+s%s`}

// jsonString is s as encoding/json writes it in a string, without quotes.
func jsonString(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b[1 : len(b)-1])
}

// echoEncoders are the encodings Echoes must see through, one layer each.
var echoEncoders = []func(string) string{
	func(s string) string { return s },
	jsonString,
	url.QueryEscape,
	url.PathEscape,
	html.EscapeString,
	func(s string) string {
		var b strings.Builder
		for _, u := range utf16.Encode([]rune(s)) {
			fmt.Fprintf(&b, `\u%04X`, u)
		}
		return b.String()
	},
	func(s string) string {
		var b strings.Builder
		for _, r := range s {
			fmt.Fprintf(&b, "&#%d;", r)
		}
		return b.String()
	},
	func(s string) string {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			fmt.Fprintf(&b, "%%%02x", s[i])
		}
		return b.String()
	},
}

func FuzzEchoes(f *testing.F) {
	for _, s := range seedSecrets {
		f.Add(s, "unknown client_secret", "!", uint8(1), uint8(2))
	}
	f.Add("\U0001F600 x", `{"a":"\\`, "&amp", uint8(5), uint8(3))
	f.Fuzz(func(t *testing.T, secret, before, after string, first, second uint8) {
		// HTML maps some control characters to others: no secret has them.
		if secret == "" || !utf8.ValidString(secret) || strings.ContainsFunc(secret, func(r rune) bool { return !unicode.IsGraphic(r) }) {
			return
		}
		// Spaces keep the surrounding text from running into an escape.
		enc := echoEncoders[int(second)%len(echoEncoders)](echoEncoders[int(first)%len(echoEncoders)](secret))
		if text := before + " " + enc + " " + after; !Echoes(text, secret) {
			t.Errorf("Echoes(%q, %q) = false, want true", text, secret)
		}
	})
}
