package lphttp

import (
	"errors"
	"net/http"
	"testing"
)

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Whatever a base sets as the answer's Request (the copy that carried a
// credential, nothing, a request of its own), the caller gets its own
// request back; an error with no answer stays one.
func TestSendCopyHandsBackTheCallersRequest(t *testing.T) {
	req, _ := http.NewRequest(http.MethodGet, "https://api.test/x", nil)
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "app.jwt.sig")
	tests := []struct {
		name string
		set  func(sent *http.Request) *http.Request
	}{
		{"the copy sent", func(sent *http.Request) *http.Request { return sent }},
		{"nil", func(*http.Request) *http.Request { return nil }},
		{"a request of the base's own", func(sent *http.Request) *http.Request { return sent.Clone(sent.Context()) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *http.Request
			base := roundTripFunc(func(sent *http.Request) (*http.Response, error) {
				got = sent
				return &http.Response{StatusCode: 200, Body: http.NoBody, Request: tt.set(sent)}, nil
			})
			resp, err := SendCopy(base, req, r)
			if err != nil || resp.Request != req {
				t.Errorf("SendCopy = %v, %v; want the answer with the caller's request", resp, err)
			}
			if got != r {
				t.Error("base was not given the copy")
			}
		})
	}
	failing := roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, errors.New("refused") })
	if resp, err := SendCopy(failing, req, r); resp != nil || err == nil {
		t.Errorf("SendCopy over a failing base = %v, %v; want no answer and the error", resp, err)
	}
}
