package lphttp

import (
	"context"
	"net/http"

	"github.com/lpconnect/appjwt/internal/redact"
)

// Kind names what a transport adds to the requests it sends: for its
// errors, and the header it goes in.
type Kind struct {
	Pkg    string // the package, such as "appjwt"
	Name   string // such as "AppJWT"
	A      string // Name with its article, such as "an AppJWT"
	Header string // such as "Authorization"
}

// Authority is what a transport does with its credential of type C, for
// [RoundTrip]: the round trip is the same for both transports, the
// credential and what they tell its source are theirs.
type Authority[C any] interface {
	// Credential returns the credential to send, waiting no longer than
	// ctx allows.
	Credential(ctx context.Context) (C, error)
	// Set puts c in r, the copy that is sent.
	Set(r *http.Request, c C)
	// Value is c's text, as the API sees it.
	Value(c C) string
	// Recovers reports whether a 401 is worth reading: whether the
	// transport can have a rejected credential dropped.
	Recovers() bool
	// Reject reports c as rejected by a 401 to req with LivePerson's
	// errorCode code (0 if none), if the code blames it: blamed says so,
	// and again that c came after an earlier drop of the same kind.
	Reject(req *http.Request, c C, code int) (blamed, again bool)
	// Accepted notes that the API took c on req.
	Accepted(req *http.Request, c C)
	// Logged logs a rejection: resent says whether req went once more.
	Logged(req *http.Request, c C, code int, resent, again bool)
}

// RoundTrip sends req through base with a's credential in k.Header, as
// both transports do. It refuses what [CheckRequest] refuses; sends a
// redirect hop that [MayCarry] refuses without the header; sends a deep
// copy of req, as a Base may write to the request it is given, and hands
// back the answer with the caller's req as its Request, so that no
// credential is reachable from it. After a 401 whose errorCode (read as
// [PeekErrorCode] reads it) blames the credential, it reports it, and
// sends req once more with a new one if [resend] can. Any error that
// echoes the credential is withheld. As the [http.RoundTripper] contract
// asks, it closes req.Body even when it sends nothing.
func RoundTrip[C any, A Authority[C]](k Kind, base http.RoundTripper, a A, req *http.Request) (*http.Response, error) {
	if err := CheckRequest(req, k.Pkg, k.A); err != nil {
		CloseBody(req)
		return nil, err
	}
	if !MayCarry(req) {
		r := req.Clone(req.Context())
		r.Header.Del(k.Header)
		return SendCopy(base, req, r)
	}
	c, err := a.Credential(req.Context())
	if err != nil {
		CloseBody(req)
		return nil, err
	}
	resp, err := send(k, base, a, req, req, c)
	if err != nil || resp == nil || resp.StatusCode != http.StatusUnauthorized || !a.Recovers() {
		return resp, err
	}
	code, read := PeekErrorCode(req.Context(), resp, ErrorCodeWait)
	if !read {
		return resp, nil
	}
	blamed, again := a.Reject(req, c, code)
	if !blamed {
		return resp, nil
	}
	next := c
	out, ok := resend(req, a.Value(c), func() (string, error) {
		n, err := a.Credential(req.Context())
		if err != nil {
			return "", err
		}
		next = n
		return a.Value(n), nil
	})
	a.Logged(req, c, code, ok, again)
	if !ok {
		return resp, nil
	}
	Drain(resp)
	return send(k, base, a, req, out, next)
}

// send sends a deep copy of out (req, or its copy to resend) that carries
// c, and tells a if the API took it. The answer's Request is req.
func send[C any, A Authority[C]](k Kind, base http.RoundTripper, a A, req, out *http.Request, c C) (*http.Response, error) {
	r := out.Clone(out.Context())
	a.Set(r, c)
	resp, err := SendCopy(base, req, r)
	if err != nil && resp != nil { // a base breaking the RoundTripper contract
		if resp.Body != nil {
			resp.Body.Close()
		}
		resp = nil
	}
	if err == nil && resp != nil && resp.StatusCode < 400 {
		a.Accepted(req, c)
	}
	if err != nil {
		// A server may echo the header into what net/http quotes, such as
		// a malformed status line.
		err = redact.For(a.Value(c), "").Withhold(err, k.Pkg+": request failed; error text withheld: it echoed the "+k.Name)
	}
	return resp, err
}

// resend returns a copy of req to send once more with a new credential,
// after the API rejected the one req carried. ok is false, and the first
// answer stands, if req cannot be sent again (see [canReplay]) or its
// GetBody fails, if its context is done, before or after renew, or if
// renew, which may wait for a new credential, has none other than
// rejected. GetBody is called before the caller lets go of the first
// answer, so that a failure leaves it intact.
func resend(req *http.Request, rejected string, renew func() (string, error)) (r *http.Request, ok bool) {
	if !canReplay(req) || req.Context().Err() != nil {
		return nil, false
	}
	cred, err := renew()
	if err != nil || cred == rejected || req.Context().Err() != nil {
		return nil, false
	}
	return Replay(req)
}

// Replay returns a copy of req to send again, its body made anew by
// GetBody, or false if req has a body it cannot make again.
func Replay(req *http.Request) (*http.Request, bool) {
	if !canReplay(req) {
		return nil, false
	}
	copied := *req
	if req.Body != nil && req.Body != http.NoBody {
		var err error
		if copied.Body, err = req.GetBody(); err != nil {
			return nil, false
		}
	}
	return &copied, true
}

// canReplay reports whether req can be sent again, as net/http's redirect
// logic decides: it has no body, or GetBody to make a new one.
func canReplay(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}
