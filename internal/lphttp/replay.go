package lphttp

import "net/http"

// Resend returns a copy of req to send once more with a new credential,
// after the API rejected the one req carried, and that credential. ok is
// false, and the first answer stands, if req cannot be sent again (see
// [canReplay]) or its GetBody fails, if its context is done, before or
// after renew, or if renew, which may wait for a new credential, has none
// other than rejected. GetBody is called before the caller lets go of the
// first answer, so that a failure leaves it intact.
func Resend(req *http.Request, rejected string, renew func() (string, error)) (r *http.Request, cred string, ok bool) {
	if !canReplay(req) || req.Context().Err() != nil {
		return nil, "", false
	}
	cred, err := renew()
	if err != nil || cred == rejected || req.Context().Err() != nil {
		return nil, "", false
	}
	copied := *req
	if req.Body != nil && req.Body != http.NoBody {
		if copied.Body, err = req.GetBody(); err != nil {
			return nil, "", false
		}
	}
	return &copied, cred, true
}

// canReplay reports whether req can be sent again, as net/http's redirect
// logic decides: it has no body, or GetBody to make a new one.
func canReplay(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}
