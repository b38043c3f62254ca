package redact

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Redactor withholds what a server's answer echoes of the credentials a
// request carried, for the texts an error shows. A text that echoes them
// is withheld whole: better than a partial redaction that an odd encoding
// slips past. A text is checked as fmt and encoding/json print it too
// (see [printed]): quoting can make a secret of what holds none, such as
// a newline before "Zr4" quoted as \nZr4.
type Redactor struct {
	// Secrets are what no text may echo, in any encoding [Echoes] knows.
	Secrets []string
	// Withheld replaces a withheld text.
	Withheld string
}

// For returns a Redactor of the one credential secret.
func For(secret, withheld string) Redactor {
	return Redactor{Secrets: []string{secret}, Withheld: withheld}
}

// Leaks reports whether any of texts, or any of their printed forms,
// echoes a secret, or a run of MinRun bytes of one: a server that quotes
// the request cut short echoes most of a secret, and a kept text must
// show none of it.
func (r Redactor) Leaks(texts ...string) bool {
	var all []string
	for _, t := range texts {
		all = append(all, printed(t)...)
	}
	return echoes(all, runs(r.Secrets))
}

// MinRun is the shortest run of a secret's bytes that a kept text may not
// hold: 8 bytes, too long to come by chance from a random secret, short
// enough that a secret echoed cut short is found.
const MinRun = 8

// runs are secrets and each run of MinRun bytes of them.
func runs(secrets []string) []string {
	all := slices.Clone(secrets)
	for _, s := range secrets {
		for i := 0; i+MinRun <= len(s); i++ {
			all = append(all, s[i:i+MinRun])
		}
	}
	return all
}

// printed are the forms text takes in what fmt, encoding/json and
// log/slog print: itself (%v, %s), Go-quoted (%q and %#v, %+q with \u
// escapes, %#q in backquotes) and JSON-escaped (with encoding/json's
// \u003c for '<', '>' and '&', and without, as log/slog writes it, \b and
// \f as \u0008 and \u000c).
func printed(text string) []string {
	var plain strings.Builder
	enc := json.NewEncoder(&plain)
	enc.SetEscapeHTML(false)
	enc.Encode(text) // a string always encodes
	escaped, _ := json.Marshal(text)
	forms := []string{text, strconv.Quote(text), strconv.QuoteToASCII(text), string(escaped), plain.String()}
	if strings.ContainsAny(text, "\b\f") {
		forms = append(forms, slogJSON(plain.String()))
	}
	if strconv.CanBackquote(text) {
		forms = append(forms, "`"+text+"`")
	}
	return forms
}

// slogJSON is j, a JSON string, with \b and \f as \u0008 and \u000c.
func slogJSON(j string) string {
	var b strings.Builder
	for i := 0; i < len(j); i++ {
		if j[i] != '\\' || i+1 == len(j) {
			b.WriteByte(j[i])
			continue
		}
		i++
		switch j[i] {
		case 'b':
			b.WriteString(`\u0008`)
		case 'f':
			b.WriteString(`\u000c`)
		default:
			b.WriteByte('\\')
			b.WriteByte(j[i])
		}
	}
	return b.String()
}

// Body is what an error keeps of an answer: the answer, if it is at most
// max bytes long; else its first max bytes, cut short after the last byte
// that no escape holds, no printed form escapes and no secret holds, so
// that no decoding of the answer, nor of a printed form of it, reaches
// across the cut. It is Withheld if the answer echoes a secret anywhere,
// or the part kept does as printed; a note if no byte of the first max can
// end such a cut. No secret is kept in part, however long its encoding
// makes it.
func (r Redactor) Body(answer []byte, max int) []byte {
	if len(answer) <= max {
		if r.Leaks(string(answer)) {
			return []byte(r.Withheld)
		}
		return answer
	}
	n := r.cleanCut(answer[:max])
	switch {
	case echoes([]string{string(answer)}, r.Secrets) || r.Leaks(string(answer[:n])):
		return []byte(r.Withheld)
	case n == 0:
		return fmt.Appendf(nil, "[withheld: %d bytes, and none of the first %d ends a clean cut]", len(answer), max)
	}
	return answer[:n]
}

// cleanCut is how much of b to keep: up to its last byte that cuts a text
// in pieces (see [echoes]) and that every printed form keeps as it is, a
// printable ASCII byte but '<' and '>'; 0 if there is none.
func (r Redactor) cleanCut(b []byte) int {
	cut := cutBytes(r.Secrets)
	for i := len(b) - 1; i >= 0; i-- {
		if c := b[i]; cut[c] && ' ' <= c && c < 0x7f && c != '<' && c != '>' {
			return i + 1
		}
	}
	return 0
}

// Field is text, a field of a server's answer, whole, if it is at most
// max bytes long and echoes no secret; else Withheld, or a note of its
// length. No field is kept in part.
func (r Redactor) Field(text string, max int) string {
	switch {
	case len(text) > max:
		return fmt.Sprintf("[withheld: %d bytes, more than %d]", len(text), max)
	case r.Leaks(text):
		return r.Withheld
	}
	return text
}

// Quote is how a one-line error shows an answer of size bytes of which
// kept is what [Redactor.Body] kept: Go-quoted if it is kept whole, or
// withheld, and at most max bytes long; else only its size.
func (r Redactor) Quote(kept []byte, size, max int) string {
	if string(kept) == r.Withheld || len(kept) == size && size <= max {
		return strconv.Quote(string(kept))
	}
	return "of " + strconv.Itoa(size) + " bytes"
}

// Response is the part of resp an error may show: the status code and
// line (which the caller has rebuilt from the code), the headers that echo
// no credential, and req, which must show none either.
func (r Redactor) Response(resp *http.Response, req *http.Request) *http.Response {
	h := make(http.Header, len(resp.Header))
	for k, vs := range resp.Header {
		// A header prints its values joined: a credential may be split among them.
		if r.Leaks(append([]string{k, fmt.Sprint(vs), strings.Join(vs, ", ")}, vs...)...) {
			continue
		}
		h[k] = vs
	}
	if r.Leaks(fmt.Sprint(h), fmt.Sprintf("%#v", h)) {
		h = http.Header{}
	}
	return &http.Response{
		Status:        resp.Status,
		StatusCode:    resp.StatusCode,
		Proto:         resp.Proto,
		ProtoMajor:    resp.ProtoMajor,
		ProtoMinor:    resp.ProtoMinor,
		Header:        h,
		Body:          http.NoBody,
		ContentLength: resp.ContentLength,
		Request:       req,
	}
}

// Withhold is the last line of defence for the texts a server can put in
// an error outside a RetrieveError, such as a malformed status line that
// net/http quotes: if err's text echoes a credential, err is replaced by
// msg, and only a context error in it stays reachable.
func (r Redactor) Withhold(err error, msg string) error {
	if err == nil || !r.Leaks(err.Error()) {
		return err
	}
	for _, ce := range []error{context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, ce) {
			return fmt.Errorf("%s: %w", msg, ce)
		}
	}
	return errors.New(msg)
}
