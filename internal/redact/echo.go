// Package redact keeps what a server echoes of a request's credentials out
// of the errors appjwt and its subpackages return: [Echoes] finds a secret
// under the encodings a server or proxy applies, and a [Redactor] withholds
// whole each text that holds one.
package redact

import (
	"html"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Echoes reports whether text holds secret, plainly or under the encodings
// a server or proxy may apply when it echoes a request back: JSON and Go
// string escapes, HTML character references, and percent-encoding (hex in either
// case, with or without '+' for space), up to maxEchoLayers of them on top
// of each other.
func Echoes(text, secret string) bool {
	if secret == "" {
		return false
	}
	layer, seen := []string{text}, map[string]bool{text: true}
	for depth := 0; len(layer) > 0; depth++ {
		var next []string
		for _, s := range layer {
			if strings.Contains(s, secret) {
				return true
			}
			if depth == maxEchoLayers {
				continue
			}
			for _, decode := range echoDecoders {
				if d := decode(s); !seen[d] {
					seen[d] = true
					next = append(next, d)
				}
			}
		}
		layer = next
	}
	return false
}

// maxEchoLayers is how many encodings on top of each other echoes undoes.
const maxEchoLayers = 3

// EchoWindow is how much longer than itself an encoded secret can be: a
// body is checked this far past the part of it an error keeps, so that a
// secret cut in two by the cap is found too.
func EchoWindow(secret string) int { return 16*len(secret) + 16 }

// echoDecoders each undo one layer of an encoding, leaving what is not
// validly encoded as it is.
var echoDecoders = []func(string) string{
	unescapeBackslashes,
	html.UnescapeString,
	func(s string) string { return unescapePercent(s, false) },
	func(s string) string { return unescapePercent(s, true) },
}

// unescapeBackslashes undoes the backslash escapes of a JSON string and of
// Go's strconv.Quote, which net/http uses to quote what it could not parse:
// \n, \", \/ and the like, \uXXXX (surrogate pairs too), \UXXXXXXXX, \xHH
// and octal \ooo.
func unescapeBackslashes(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		if c, ok := simpleEscapes[s[i+1]]; ok {
			b.WriteByte(c)
			i++
			continue
		}
		n := unescapeCode(&b, s[i:])
		if n == 0 {
			b.WriteByte(s[i])
			continue
		}
		i += n - 1
	}
	return b.String()
}

var simpleEscapes = map[byte]byte{'"': '"', '\'': '\'', '\\': '\\', '/': '/', 'a': '\a', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t', 'v': '\v'}

// unescapeCode writes what the numeric escape s starts with stands for, and
// returns its length: 0 if s starts with none.
func unescapeCode(b *strings.Builder, s string) int {
	switch s[1] {
	case 'u':
		r, ok := hexAt(s, 2, 4)
		if !ok {
			return 0
		}
		if utf16.IsSurrogate(r) && len(s) >= 12 && s[6] == '\\' && s[7] == 'u' {
			if r2, ok := hexAt(s, 8, 4); ok {
				if p := utf16.DecodeRune(r, r2); p != utf8.RuneError {
					b.WriteRune(p)
					return 12
				}
			}
		}
		b.WriteRune(r)
		return 6
	case 'U':
		r, ok := hexAt(s, 2, 8)
		if !ok {
			return 0
		}
		b.WriteRune(r)
		return 10
	case 'x':
		c, ok := hexAt(s, 2, 2)
		if !ok {
			return 0
		}
		b.WriteByte(byte(c))
		return 4
	case '0', '1', '2', '3':
		if len(s) < 4 {
			return 0
		}
		n, err := strconv.ParseUint(s[1:4], 8, 8)
		if err != nil {
			return 0
		}
		b.WriteByte(byte(n))
		return 4
	}
	return 0
}

// hexAt reads the n hex digits of s at i.
func hexAt(s string, i, n int) (rune, bool) {
	if len(s) < i+n {
		return 0, false
	}
	v, err := strconv.ParseUint(s[i:i+n], 16, 32)
	return rune(v), err == nil
}

// unescapePercent undoes percent-encoding, and '+' for space if plus is set.
func unescapePercent(s string, plus bool) string {
	if !strings.Contains(s, "%") && (!plus || !strings.Contains(s, "+")) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '+' && plus:
			b.WriteByte(' ')
		case s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			n, _ := strconv.ParseUint(s[i+1:i+3], 16, 8)
			b.WriteByte(byte(n))
			i += 2
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
