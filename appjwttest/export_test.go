package appjwttest

// Errors an Attempt may wrap, for the tests of package appjwttest_test.
var (
	ErrConnectTimeout = errConnectTimeout
	ErrReadTimeout    = errReadTimeout
)
