package redact

import (
	"encoding/json"
	"fmt"
	"html"
	"net/url"
	"strconv"
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

// echoEncoders are the encodings Echoes must see through, one layer each;
// the first is none.
var echoEncoders = []func(string) string{
	func(s string) string { return s },
	jsonString,
	url.QueryEscape,
	url.PathEscape,
	html.EscapeString,
	func(s string) string { // JSON, every character escaped
		var b strings.Builder
		for _, u := range utf16.Encode([]rune(s)) {
			fmt.Fprintf(&b, `\u%04X`, u)
		}
		return b.String()
	},
	func(s string) string { // HTML, every character a reference
		var b strings.Builder
		for _, r := range s {
			fmt.Fprintf(&b, "&#%d;", r)
		}
		return b.String()
	},
	func(s string) string { // every byte percent-encoded
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			fmt.Fprintf(&b, "%%%02x", s[i])
		}
		return b.String()
	},
	func(s string) string { return unquoted(strconv.Quote(s)) },        // %q, %#v
	func(s string) string { return unquoted(strconv.QuoteToASCII(s)) }, // %+q
}

func unquoted(q string) string { return q[1 : len(q)-1] }

// Indexes in echoEncoders of the three that escape every character.
const (
	everyU       = 5
	everyRef     = 6
	everyPercent = 7
)

func FuzzEchoes(f *testing.F) {
	for _, s := range seedSecrets {
		f.Add(s, "unknown client_secret", "!", uint8(1), uint8(2), uint8(0))
		f.Add(s, "x", "y", uint8(everyPercent), uint8(everyRef), uint8(everyU)) // stacked
		f.Add(s, "", "", uint8(8), uint8(0), uint8(0))
		f.Add(s, "a", "b", uint8(9), uint8(everyRef), uint8(8))
	}
	f.Add("\U0001F600 x", `{"a":"\\`, "&amp", uint8(5), uint8(3), uint8(9))
	f.Add("Kq7\\nZr4", "", "", uint8(everyPercent), uint8(everyRef), uint8(everyU))
	f.Fuzz(func(t *testing.T, secret, before, after string, first, second, third uint8) {
		// HTML maps some control characters to others: no secret has them.
		// Nor is one longer than 100 bytes: three layers of escapes make a
		// text of 100 KiB of that, which slows the fuzzer down for nothing.
		if secret == "" || len(secret) > 100 || !utf8.ValidString(secret) || strings.ContainsFunc(secret, func(r rune) bool { return !unicode.IsGraphic(r) }) {
			return
		}
		enc := secret
		for _, n := range []uint8{first, second, third} {
			enc = echoEncoders[int(n)%len(echoEncoders)](enc)
		}
		// Spaces keep the surrounding text from running into an escape.
		if text := before + " " + enc + " " + after; !Echoes(text, secret) {
			t.Errorf("Echoes(%q, %q) = false, want true", text, secret)
		}
	})
}

// stacked is s under the three encodings that escape every character,
// on top of each other: 90 times as long as s.
func stacked(s string) string {
	return echoEncoders[everyU](echoEncoders[everyRef](echoEncoders[everyPercent](s)))
}

// BenchmarkEchoes looks for a secret that is not there in texts of 1 KiB
// and 1 MiB that take all three layers of decoding, no two lines alike:
// an echo of a request, every character escaped by three encodings on top
// of each other, which leaves no byte to cut the text at; an HTML page
// with entities, percent-encoded links and backslashes on every line; and
// escapes crafted to make every order of decoding give another text.
func BenchmarkEchoes(b *testing.B) {
	lines := map[string]func(i int) string{
		"stacked": func(i int) string { return stacked(fmt.Sprintf("client_id=%d&grant_type=client_credentials ", i)) },
		"HTML": func(i int) string {
			return fmt.Sprintf(`<p class="e%d">Error &#8212; see <a href="/help?q=%d%%20x+y&amp;s=1">help</a> C:\dir\%d</p>`+"\n", i, i, i)
		},
		"crafted": func(i int) string {
			return fmt.Sprintf(`a%%255C%%2526%%2525%%5Cu0026\u0025\u005c&#37;&#92;&amp;amp;%%26amp;\\u0025%x`, i)
		},
	}
	for _, kind := range []string{"stacked", "HTML", "crafted"} {
		for _, size := range []int{1 << 10, 1 << 20} {
			var text strings.Builder
			for i := 0; text.Len() < size; i++ {
				text.WriteString(lines[kind](i))
			}
			b.Run(fmt.Sprintf("%s/%dKiB", kind, size>>10), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if Echoes(text.String()[:size], "Kq7ZrAbCdEfGhIjKlMnOpQrStUvWxYz0") {
						b.Fatal("Echoes found a secret that is not there")
					}
				}
			})
		}
	}
}
