// Package redact keeps what a server echoes of a request's credentials out
// of the errors appjwt and its subpackages return: [Echoes] finds a secret
// under the encodings a server or proxy applies, and a [Redactor] withholds
// whole each text that holds one.
package redact

import (
	"html"
	"iter"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Echoes reports whether text holds secret, plainly or under the encodings
// a server or proxy may apply when it echoes a request back: JSON and Go
// string escapes, HTML character references, and percent-encoding (hex in
// either case, with or without '+' for space), up to maxEchoLayers of them
// on top of each other. The whole text is searched, however long: an
// encoding may make a secret as long as it likes ("&#00065;" is "A").
func Echoes(text, secret string) bool {
	return echoes([]string{text}, []string{secret})
}

// maxEchoLayers is how many encodings on top of each other echoes undoes.
const maxEchoLayers = 3

// echoes reports whether any of texts holds any of secrets, as [Echoes]
// says. No escape of these encodings holds a byte outside escapeBytes,
// and none is cut short by one, so the decodings of a text are those of
// its pieces, cut after each byte that is neither in escapeBytes nor in a
// secret, laid end to end; a secret, holding no such byte, lies within
// one piece. So only the pieces that hold an escape are decoded, each
// distinct piece once, and each only as far as its own escapes go.
func echoes(texts, secrets []string) bool {
	secrets = slices.DeleteFunc(slices.Clone(secrets), func(s string) bool { return s == "" })
	if len(secrets) == 0 {
		return false
	}
	cut := cutBytes(secrets)
	seen := map[string]bool{}
	var layer []string
	for _, t := range texts {
		if holds(t, secrets) {
			return true
		}
		for p := range pieces(t, cut) {
			if strings.ContainsAny(p, escapeStarts) && !seen[p] {
				seen[p] = true
				layer = append(layer, p)
			}
		}
	}
	decoders := echoDecoders
	if !slices.ContainsFunc(secrets, func(s string) bool { return strings.Contains(s, " ") }) {
		decoders = decoders[:len(decoders)-1]
	}
	for range maxEchoLayers {
		var next []string
		for _, s := range layer {
			for _, decode := range decoders {
				d := decode(s)
				if seen[d] {
					continue
				}
				if holds(d, secrets) {
					return true
				}
				seen[d] = true
				next = append(next, d)
			}
		}
		layer = next
	}
	return false
}

// holds reports whether text holds any of secrets as they are.
func holds(text string, secrets []string) bool {
	return slices.ContainsFunc(secrets, func(s string) bool { return strings.Contains(text, s) })
}

// escapeBytes are the bytes the escapes echoDecoders undo are made of;
// escapeStarts, those they start with.
const (
	escapeBytes  = `\"'/&#;%+0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ`
	escapeStarts = `\&%+`
)

// cutBytes marks the bytes a text may be cut after: those in no escape
// and in none of secrets.
func cutBytes(secrets []string) *[256]bool {
	var cut [256]bool
	for c := range cut {
		cut[c] = strings.IndexByte(escapeBytes, byte(c)) < 0
	}
	for _, s := range secrets {
		for i := range len(s) {
			cut[s[i]] = false
		}
	}
	return &cut
}

// minPiece is the least length of a piece but the last: shorter ones cost
// more to keep apart than to decode together.
const minPiece = 4096

// pieces are the pieces of text, each cut after a byte cut marks, at
// least minPiece long but the last.
func pieces(text string, cut *[256]bool) iter.Seq[string] {
	return func(yield func(string) bool) {
		start := 0
		for i := minPiece - 1; i < len(text); i++ {
			if cut[text[i]] {
				if !yield(text[start : i+1]) {
					return
				}
				start, i = i+1, i+minPiece-1
			}
		}
		if start < len(text) {
			yield(text[start:])
		}
	}
}

// echoDecoders each undo one layer of an encoding, leaving what is not
// validly encoded as it is. The last, which also takes '+' for a space,
// finds nothing the one before it does not unless a secret holds a space:
// '+' is part of no other escape, and a space of none.
var echoDecoders = []func(string) string{
	unescapeBackslashes,
	html.UnescapeString,
	func(s string) string { return unescapePercent(s, false) },
	func(s string) string { return unescapePercent(s, true) },
}

// unescapeBackslashes undoes the backslash escapes of a JSON string and of
// Go's strconv.Quote, which net/http uses to quote what it could not parse:
// \n, \", \/ and the like, \uXXXX (surrogate pairs too), \UXXXXXXXX, \xHH
// and octal \ooo. A backslash that starts none stays as it is.
func unescapeBackslashes(s string) string {
	i := strings.IndexByte(s, '\\')
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for ; i >= 0; i = strings.IndexByte(s, '\\') {
		b.WriteString(s[:i])
		s = s[i+unescapeAt(&b, s[i:]):]
	}
	b.WriteString(s)
	return b.String()
}

// unescapeAt writes what the backslash s starts with stands for, and
// returns how much of s it took: 1 if it starts no escape.
func unescapeAt(b *strings.Builder, s string) int {
	if len(s) < 2 {
		b.WriteByte('\\')
		return 1
	}
	if c := simpleEscapes[s[1]]; c != 0 {
		b.WriteByte(c)
		return 2
	}
	switch s[1] {
	case 'u':
		r, ok := hexAt(s, 2, 4)
		if !ok {
			break
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
		if r, ok := hexAt(s, 2, 8); ok {
			b.WriteRune(r)
			return 10
		}
	case 'x':
		if c, ok := hexAt(s, 2, 2); ok {
			b.WriteByte(byte(c))
			return 4
		}
	case '0', '1', '2', '3':
		if len(s) >= 4 && isOctal(s[2]) && isOctal(s[3]) {
			b.WriteByte((s[1]-'0')<<6 | (s[2]-'0')<<3 | (s[3] - '0'))
			return 4
		}
	}
	b.WriteByte('\\')
	return 1
}

// simpleEscapes maps the character after a backslash to what the pair
// stands for; 0: the pair is no simple escape.
var simpleEscapes = [256]byte{'"': '"', '\'': '\'', '\\': '\\', '/': '/', 'a': '\a', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t', 'v': '\v'}

// hexAt reads the n hex digits of s at i.
func hexAt(s string, i, n int) (rune, bool) {
	if len(s) < i+n {
		return 0, false
	}
	var v rune
	for _, c := range []byte(s[i : i+n]) {
		d := unhex[c]
		if d < 0 {
			return 0, false
		}
		v = v<<4 | rune(d)
	}
	return v, true
}

// unhex is the value of each hex digit; -1 for what is none.
var unhex = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i, c := range "0123456789abcdef" {
		t[c] = int8(i)
	}
	for i, c := range "ABCDEF" {
		t[c] = int8(10 + i)
	}
	return t
}()

func isOctal(c byte) bool { return '0' <= c && c <= '7' }

// unescapePercent undoes percent-encoding; '+' for space too if plus is
// set, and then a text without a '+' is left as it is, since undoing the
// percent-encoding alone gives the same text.
func unescapePercent(s string, plus bool) string {
	i := nextPercent(s, plus)
	if i < 0 || plus && !strings.Contains(s, "+") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for ; i >= 0; i = nextPercent(s, plus) {
		b.WriteString(s[:i])
		switch {
		case s[i] == '+':
			b.WriteByte(' ')
			s = s[i+1:]
		case i+2 < len(s) && unhex[s[i+1]] >= 0 && unhex[s[i+2]] >= 0:
			b.WriteByte(byte(unhex[s[i+1]])<<4 | byte(unhex[s[i+2]]))
			s = s[i+3:]
		default:
			b.WriteByte('%')
			s = s[i+1:]
		}
	}
	b.WriteString(s)
	return b.String()
}

// nextPercent is the index of the first '%' in s, or of the first '+' if
// plus is set and that comes first; -1 if there is none.
func nextPercent(s string, plus bool) int {
	i := strings.IndexByte(s, '%')
	if !plus {
		return i
	}
	if i < 0 {
		return strings.IndexByte(s, '+')
	}
	if j := strings.IndexByte(s[:i], '+'); j >= 0 {
		return j
	}
	return i
}
