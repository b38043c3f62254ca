package lphttp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"golang.org/x/oauth2"
)

// Redactor withholds what a server's answer echoes of the credentials a
// request carried, for the texts an error shows. A field that echoes them
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

// Bytes is b cut to max bytes, or Withheld if b echoes a credential. Both
// the whole and the cut are checked: a cut can change what the end of an
// encoding decodes to ("&#61" is "=", "&#619;" is not).
func (r Redactor) Bytes(b []byte, max int) []byte {
	cut := b[:min(len(b), max)]
	if r.Leaks(string(b[:min(len(b), max+r.Window)])) || r.Leaks(string(cut)) {
		return []byte(r.Withheld)
	}
	return cut
}

// Response is the part of resp an error may show: the status code and
// line (which Read has rebuilt from the code), the headers that echo no
// credential, and req, which must show none either.
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

// Error is the last line of defence for the texts a server can put in an
// error outside a RetrieveError, such as a malformed status line that
// net/http quotes: if err's text echoes a credential, err is replaced by
// msg, and only a context error in it stays reachable.
func (r Redactor) Error(err error, msg string) error {
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

// RetrieveFailure carries an [oauth2.RetrieveError] under a message of one
// line: the RetrieveError's own text puts the body on a line of its own.
type RetrieveFailure struct {
	Msg string
	RE  *oauth2.RetrieveError
}

func (e *RetrieveFailure) Error() string { return e.Msg }
func (e *RetrieveFailure) Unwrap() error { return e.RE }
