package appjwttest

// Errors an Attempt may wrap, for the tests of package appjwttest_test.
var (
	ErrConnectTimeout = errConnectTimeout
	ErrReadTimeout    = errReadTimeout
)

// SetIssuer sets the iss claim of the AppJWTs issued from now on:
// "Sentinel" by default, "" for none. The tests check with it that Verify
// rejects an AppJWT whose iss is not Sentinel (in any case), and that the
// Connector API endpoints answer it with 400 and errorCode 40001, in
// LivePerson's words "Missing parameter" and "Brand Id is missing", as
// LivePerson documents for an AppJWT whose iss is missing or not Sentinel.
func (s *Server) SetIssuer(iss string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.issuer = iss
}
