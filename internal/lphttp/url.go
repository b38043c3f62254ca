package lphttp

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// FieldError is a Config field of package Pkg that no request can fix.
// Its text reads "pkg: Config.Field Value Reason", without Value if it is
// empty: a field that holds a secret never sets it.
type FieldError struct {
	Pkg, Field string
	Value      string // the value, formatted to show, such as %q of a string
	Reason     string // what is wrong, without the value, such as "is empty"
}

func (e *FieldError) Error() string {
	s := e.Pkg + ": Config." + e.Field + " "
	if e.Value != "" {
		s += e.Value + " "
	}
	return s + e.Reason
}

// CheckConfig checks the Config fields of package pkg that a Domain API
// lookup uses: the account, and the hosts if set. Its errors are
// [*FieldError]s.
func CheckConfig(pkg, accountID, domain, domainAPI string) error {
	switch accountID {
	case "":
		return &FieldError{Pkg: pkg, Field: "AccountID", Reason: "is empty"}
	case ".", "..": // path escaping cannot neutralise these two segments
		return &FieldError{Pkg: pkg, Field: "AccountID", Value: fmt.Sprintf("%q", accountID), Reason: "is not an account ID"}
	}
	for _, f := range []struct{ name, host string }{{"Domain", domain}, {"DomainAPI", domainAPI}} {
		if f.host == "" {
			continue
		}
		if err := CheckHost(f.host); err != nil {
			fe := &FieldError{Pkg: pkg, Field: f.name, Reason: err.Error()}
			if !strings.ContainsAny(f.host, "@?#") { // else it may hold credentials
				fe.Value = fmt.Sprintf("%q", f.host)
			}
			return fe
		}
	}
	return nil
}

// CheckHost accepts a bare host or host:port and nothing else: no scheme,
// userinfo, path, query or fragment. It accepts exactly the hosts that the
// URL built by [Endpoint] keeps as they are and that net/http sends, so
// that a host that passes fails no later, inside a request. Its errors say
// what is wrong, without the host, which the caller names.
func CheckHost(h string) error {
	if strings.ContainsAny(h, "/?#@\\%") || strings.ContainsFunc(h, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return errors.New("is not a bare host[:port] (no scheme, path, query or userinfo)")
	}
	if strings.ContainsFunc(h, func(r rune) bool { return !strings.ContainsRune(hostChars, r) }) {
		return errors.New("has a character no host name has")
	}
	u, err := url.Parse("https://" + h)
	if err != nil || u.Host != h || u.Hostname() == "" {
		return errors.New("is not a bare host[:port]")
	}
	if strings.HasSuffix(h, ":") {
		return errors.New("has an empty port")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return errors.New("has an invalid port")
		}
	}
	return nil
}

// hostChars are the characters net/http accepts in a Host header.
const hostChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!$&'()*+,-.:;=[]_~"

// Endpoint builds an https URL from a checked host, path segments (each
// escaped, so that none can add a segment) and an already encoded query.
func Endpoint(host, rawQuery string, segments ...string) *url.URL {
	var path, raw strings.Builder
	for _, s := range segments {
		path.WriteString("/" + s)
		raw.WriteString("/" + url.PathEscape(s))
	}
	return &url.URL{Scheme: "https", Host: host, Path: path.String(), RawPath: raw.String(), RawQuery: rawQuery}
}

// IsToken68 reports whether s is an RFC 7235 token68, the form a token
// must have to be sent in an Authorization header.
func IsToken68(s string) bool {
	t := strings.TrimRight(s, "=")
	if t == "" {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~+/", c) >= 0) {
			return false
		}
	}
	return true
}
