package lphttp

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// CheckConfig checks the Config fields of package pkg that a Domain API
// lookup uses: the account, and the hosts if set. Its errors start with
// pkg and the field at fault, as in "appjwt: Config.AccountID is empty".
func CheckConfig(pkg, accountID, domain, domainAPI string) error {
	switch accountID {
	case "":
		return fmt.Errorf("%s: Config.AccountID is empty", pkg)
	case ".", "..": // path escaping cannot neutralise these two segments
		return fmt.Errorf("%s: Config.AccountID %q is not an account ID", pkg, accountID)
	}
	for _, f := range []struct{ name, host string }{{"Domain", domain}, {"DomainAPI", domainAPI}} {
		if f.host == "" {
			continue
		}
		if err := CheckHost(f.host); err != nil {
			return fmt.Errorf("%s: Config.%s: %w", pkg, f.name, err)
		}
	}
	return nil
}

// CheckHost accepts a bare host or host:port and nothing else: no scheme,
// userinfo, path, query or fragment. It accepts exactly the hosts that the
// URL built by [Endpoint] keeps as they are and that net/http sends, so
// that a host that passes fails no later, inside a request.
func CheckHost(h string) error {
	if strings.ContainsAny(h, "/?#@\\%") || strings.ContainsFunc(h, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return fmt.Errorf("%q is not a bare host[:port] (no scheme, path, query or userinfo)", h)
	}
	if strings.ContainsFunc(h, func(r rune) bool { return !strings.ContainsRune(hostChars, r) }) {
		return fmt.Errorf("%q has a character no host name has", h)
	}
	u, err := url.Parse("https://" + h)
	if err != nil || u.Host != h || u.Hostname() == "" {
		return fmt.Errorf("%q is not a bare host[:port]", h)
	}
	if strings.HasSuffix(h, ":") {
		return fmt.Errorf("%q has an empty port", h)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q has an invalid port", h)
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
