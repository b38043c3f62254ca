package consumerjws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/oauth2"
)

// withheldText replaces a text from a server that echoed the AppJWT.
const withheldText = "[withheld: it echoed the AppJWT]"

// retrieveFailure carries an [oauth2.RetrieveError] under a message of one
// line: the RetrieveError's own text puts the body on a line of its own.
type retrieveFailure struct {
	msg string
	re  *oauth2.RetrieveError
}

func (e *retrieveFailure) Error() string { return e.msg }
func (e *retrieveFailure) Unwrap() error { return e.re }

// retrieveError describes a non-2xx answer with nothing in it that echoes
// an AppJWT the fetch sent: such a body or header is withheld, the status
// line is rebuilt from the code, and the request is a headerless copy.
func (l *sentLog) retrieveError(rep *reply, u *url.URL) error {
	body := rep.body
	if l.echoed(string(body)) {
		body = []byte(withheldText)
	} else if len(body) > maxErrorBody {
		body = body[:maxErrorBody]
	}
	re := &oauth2.RetrieveError{Response: l.safeResponse(rep.resp, u), Body: body}
	var lp struct {
		Body struct {
			ErrorCode json.Number `json:"errorCode"`
		} `json:"body"`
	}
	if json.Unmarshal(rep.body, &lp) == nil {
		if n, err := strconv.Atoi(lp.Body.ErrorCode.String()); err == nil {
			re.ErrorCode = strconv.Itoa(n)
		}
	}
	msg := fmt.Sprintf("%s: answer %.120q", rep.resp.Status, body)
	if re.ErrorCode != "" {
		msg = fmt.Sprintf("%s (errorCode %s): answer %.120q", rep.resp.Status, re.ErrorCode, body)
	}
	return &retrieveFailure{msg: msg, re: re}
}

// safeResponse is the part of resp an error may show.
func (l *sentLog) safeResponse(resp *http.Response, u *url.URL) *http.Response {
	h := make(http.Header, len(resp.Header))
	for k, vs := range resp.Header {
		if l.echoed(k) || slices.ContainsFunc(vs, l.echoed) {
			continue
		}
		h[k] = vs
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
		// No headers: Authorization holds the AppJWT.
		Request: &http.Request{Method: http.MethodPost, URL: u, Host: u.Host, Header: http.Header{}},
	}
}

// withhold replaces an error whose text echoes an AppJWT the fetch sent,
// such as net/http quoting a malformed status line; only a context error
// in it stays reachable.
func (l *sentLog) withhold(err error) error {
	if !l.echoed(err.Error()) {
		return err
	}
	const msg = "request failed; error text withheld: it echoed the AppJWT"
	for _, ce := range []error{context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, ce) {
			return fmt.Errorf("%s: %w", msg, ce)
		}
	}
	return errors.New(msg)
}

// echoed reports whether text holds an AppJWT the fetch sent: its
// signature, without which the rest of a JWT is no credential, or the whole
// token if it is no JWT.
func (l *sentLog) echoed(text string) bool {
	for _, t := range l.tokens {
		t = strings.TrimPrefix(t, "Bearer ")
		if i := strings.LastIndexByte(t, '.'); i >= 0 && len(t)-i-1 >= minSignature {
			t = t[i+1:]
		}
		if echoes(text, t) {
			return true
		}
	}
	return false
}

// minSignature is the shortest JWT signature looked for alone: shorter
// ones would match by chance.
const minSignature = 16

// echoes reports whether text holds secret, plainly or under up to
// maxEchoLayers of the encodings a server may apply when it echoes a
// request: JSON string escapes, HTML character references,
// percent-encoding.
func echoes(text, secret string) bool {
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
			for _, decode := range []func(string) string{unescapeJSON, html.UnescapeString, unescapePercent} {
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

const maxEchoLayers = 2

// unescapeJSON undoes \uXXXX and the one-letter escapes of a JSON string.
// Surrogate pairs need no care: a token is ASCII.
func unescapeJSON(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] != '\\' || i+1 == len(s):
			b.WriteByte(s[i])
		case s[i+1] == 'u' && i+6 <= len(s):
			if n, err := strconv.ParseUint(s[i+2:i+6], 16, 16); err == nil {
				b.WriteRune(rune(n))
				i += 5
			} else {
				b.WriteByte(s[i])
			}
		default:
			b.WriteByte(s[i+1]) // \/ \\ \" and, harmlessly, \n as n
			i++
		}
	}
	return b.String()
}

// unescapePercent undoes percent-encoding, hex in either case.
func unescapePercent(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(n))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
