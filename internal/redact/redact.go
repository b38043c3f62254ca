package redact

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Redactor withholds what a server's answer echoes of the credentials a
// request carried, for the texts an error shows. A text that echoes them
// is withheld whole: better than a partial redaction that an odd encoding
// slips past.
type Redactor struct {
	// Leaks reports whether a text holds a credential, in any encoding
	// [Echoes] knows.
	Leaks func(string) bool
	// Window is how much longer an encoded credential can be than the
	// text it is cut from: [EchoWindow] of the longest credential.
	Window int
	// Withheld replaces a withheld text.
	Withheld string
}

// For returns a Redactor of the one credential secret.
func For(secret, withheld string) Redactor {
	return Redactor{Leaks: func(s string) bool { return Echoes(s, secret) }, Window: EchoWindow(secret), Withheld: withheld}
}

// Field is b cut to max bytes, or Withheld if b echoes a credential. Both
// the whole and the cut are checked: a cut can change what the end of an
// encoding decodes to ("&#61" is "=", "&#619;" is not).
func (r Redactor) Field(b []byte, max int) []byte {
	cut := b[:min(len(b), max)]
	if r.Leaks(string(b[:min(len(b), max+r.Window)])) || r.Leaks(string(cut)) {
		return []byte(r.Withheld)
	}
	return cut
}

// Response is the part of resp an error may show: the status code and
// line (which the caller has rebuilt from the code), the headers that echo
// no credential, and req, which must show none either.
func (r Redactor) Response(resp *http.Response, req *http.Request) *http.Response {
	h := make(http.Header, len(resp.Header))
	for k, vs := range resp.Header {
		// A header prints its values joined: a credential may be split among them.
		if r.Leaks(k) || slices.ContainsFunc(vs, r.Leaks) || r.Leaks(fmt.Sprint(vs)) || r.Leaks(strings.Join(vs, ", ")) {
			continue
		}
		h[k] = vs
	}
	if r.Leaks(fmt.Sprint(h)) {
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
