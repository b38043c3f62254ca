package lphttp

import (
	"testing"
)

func TestGoodHosts(t *testing.T) {
	for _, h := range []string{"va.sentinel.liveperson.net", "127.0.0.1:8443", "[::1]:443", "[::1]", "localhost"} {
		if err := CheckHost(h); err != nil {
			t.Errorf("CheckHost(%q) = %v, want nil", h, err)
		}
	}
}

func TestBadHosts(t *testing.T) {
	for _, h := range []string{"host:+80", "[a]", "[a]:443", "a{b}", "a|b", "a`b", "a^b", "host:", "host:0", ":443", "a%41b", `a"b`, "a<b>", "https://x", "x/y", "u@x", "x?y", "x#y", "a b", "x:99999", "http://x"} {
		if err := CheckHost(h); err == nil {
			t.Errorf("CheckHost(%q) = nil, want an error", h)
		}
	}
}

func TestCheckConfig(t *testing.T) {
	tests := []struct {
		account, domain, api string
		want                 string // "": no error
	}{
		{"le1", "", "", ""},
		{"le1", "va.sentinel.liveperson.net", "api.liveperson.net:443", ""},
		{"", "", "", "pkg: Config.AccountID is empty"},
		{"..", "", "", `pkg: Config.AccountID ".." is not an account ID`},
		{".", "", "", `pkg: Config.AccountID "." is not an account ID`},
		{"le1", "https://x", "", `pkg: Config.Domain "https://x" is not a bare host[:port] (no scheme, path, query or userinfo)`},
		{"le1", "", "x/y", `pkg: Config.DomainAPI "x/y" is not a bare host[:port] (no scheme, path, query or userinfo)`},
		// A value that may hold credentials is not shown (review).
		{"le1", "", "id:s3cret@api.liveperson.net", `pkg: Config.DomainAPI is not a bare host[:port] (no scheme, path, query or userinfo)`},
		{"le1", "api.liveperson.net/?secret=s3cret", "", `pkg: Config.Domain is not a bare host[:port] (no scheme, path, query or userinfo)`},
		{"le1", "x#s3cret", "", `pkg: Config.Domain is not a bare host[:port] (no scheme, path, query or userinfo)`},
	}
	for _, tt := range tests {
		got := ""
		if err := CheckConfig("pkg", tt.account, tt.domain, tt.api); err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("CheckConfig(%q, %q, %q) = %q, want %q", tt.account, tt.domain, tt.api, got, tt.want)
		}
	}
}
