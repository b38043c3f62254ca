package lphttp

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"time"
)

// ErrorCodeWait bounds how long [PeekErrorCode] waits for a 401's body: a
// Connector API 401 comes whole with its headers, so a body that takes
// longer is not LivePerson's, and the caller should not wait for it.
const ErrorCodeWait = time.Second

// PeekErrorCode returns the errorCode of a Connector API error answer,
// such as 40102 in {"kind":"resp","code":401,"body":{"errorCode":40102}},
// or 0 if it has none. It reads at most MaxDrain of resp.Body, for at most
// wait and no longer than ctx allows, and puts back what it read: the body
// reads whole and closes as before, even if PeekErrorCode gave up (read is
// then false) while the read went on. A caller that gave up should hand
// resp back as it is, unread.
func PeekErrorCode(ctx context.Context, resp *http.Response, wait time.Duration) (code int, read bool) {
	if resp.Body == nil || resp.Body == http.NoBody {
		return 0, true
	}
	b := &peekedBody{done: make(chan struct{}), body: resp.Body}
	resp.Body = b
	go b.readHead()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-b.done:
		return ErrorCode(b.head), true
	case <-t.C:
	case <-ctx.Done():
	}
	return 0, false
}

// peekedBody is a body whose first MaxDrain bytes are read ahead: Read
// waits for that read to end, then gives its bytes, its error if any, and
// the rest of the body.
type peekedBody struct {
	done chan struct{} // closed once head and err are set
	head []byte
	err  error
	body io.ReadCloser

	once sync.Once
	rest io.Reader
}

func (b *peekedBody) readHead() {
	b.head, b.err = io.ReadAll(io.LimitReader(b.body, MaxDrain))
	close(b.done)
}

func (b *peekedBody) Read(p []byte) (int, error) {
	<-b.done
	b.once.Do(func() { b.rest = io.MultiReader(bytes.NewReader(b.head), readErr{b.err}, b.body) })
	return b.rest.Read(p)
}

// Close closes the body, which also ends a read ahead that is stuck.
func (b *peekedBody) Close() error { return b.body.Close() }

// readErr replays an error the read ahead met, or gives way to the next
// reader if there was none.
type readErr struct{ err error }

func (r readErr) Read([]byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	return 0, io.EOF
}
