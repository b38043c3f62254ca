package lphttp

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/oauth2"
)

// Reply is a complete answer: its body read through a cap and closed.
type Reply struct {
	Resp   *http.Response
	Body   []byte
	SentAt time.Time
}

// Read reads resp's body, up to max bytes, and closes it. The status line
// is rebuilt from the code: the reason phrase is the server's free text,
// which may echo the request. An answer with a final status is final
// however its body ends: what arrived is kept. A longer body is a Final
// error.
func Read(resp *http.Response, max int, sentAt time.Time) (*Reply, error) {
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(max)+1))
	resp.Status = StatusLine(resp.StatusCode)
	if err != nil && !isFinalStatus(resp.StatusCode) {
		return nil, fmt.Errorf("reading answer (%s): %w", resp.Status, err)
	}
	if len(body) > max {
		return nil, Final{fmt.Errorf("answer (%s) is larger than %d bytes", resp.Status, max)}
	}
	return &Reply{Resp: resp, Body: body, SentAt: sentAt}, nil
}

// StatusLine is the status line net/http would write for code.
func StatusLine(code int) string {
	if t := http.StatusText(code); t != "" {
		return strconv.Itoa(code) + " " + t
	}
	return strconv.Itoa(code)
}

// isFinalStatus reports whether an answer with this status is never
// retried: any 4xx but 429.
func isFinalStatus(code int) bool {
	return code >= 400 && code < 500 && code != http.StatusTooManyRequests
}

// MaxDrain caps what [Drain] reads of a body.
const MaxDrain = 64 << 10

// Drain reads what is left of resp's body, up to MaxDrain, and closes it,
// so that its connection can serve the next request.
func Drain(resp *http.Response) {
	if resp.Body == nil {
		return
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, MaxDrain))
	resp.Body.Close()
}

// RetrieveFailure carries an [oauth2.RetrieveError] under a message of one
// line: the RetrieveError's own text puts the body on a line of its own.
type RetrieveFailure struct {
	Msg string
	RE  *oauth2.RetrieveError
}

func (e *RetrieveFailure) Error() string { return e.Msg }
func (e *RetrieveFailure) Unwrap() error { return e.RE }
