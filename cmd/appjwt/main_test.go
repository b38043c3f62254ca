package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lpconnect/appjwt/appjwttest"
)

type result struct {
	code           int
	stdout, stderr string
}

func runCmd(t *testing.T, srv *appjwttest.Server, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx := context.Background()
	if srv != nil {
		ctx = srv.Context(ctx)
	}
	code := run(ctx, args, func(k string) string { return env[k] }, strings.NewReader(stdin), &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

func serverEnv(srv *appjwttest.Server) map[string]string {
	return map[string]string{
		"LP_ACCOUNT_ID":    srv.AccountID,
		"LP_CLIENT_ID":     srv.ClientID,
		"LP_CLIENT_SECRET": srv.ClientSecret,
		"LP_DOMAIN_API":    srv.Host(),
	}
}

func TestOutputFormats(t *testing.T) {
	srv := appjwttest.NewServer()
	defer srv.Close()
	tests := []struct {
		format string
		token  func(stdout string) string // extracts the token, "" if none
		check  func(t *testing.T, stdout string)
	}{
		{"raw", func(s string) string { return strings.TrimSuffix(s, "\n") }, nil},
		{"header", func(s string) string { return strings.TrimPrefix(strings.TrimSuffix(s, "\n"), "Authorization: ") }, nil},
		{"bearer", func(s string) string {
			return strings.TrimPrefix(strings.TrimSuffix(s, "\n"), "Authorization: Bearer ")
		}, nil},
		{"json", func(s string) string {
			var v struct {
				AccessToken string `json:"access_token"`
			}
			json.Unmarshal([]byte(s), &v)
			return v.AccessToken
		}, func(t *testing.T, s string) {
			var v struct {
				TokenType string    `json:"token_type"`
				Expiry    time.Time `json:"expiry"`
			}
			if err := json.Unmarshal([]byte(s), &v); err != nil || v.TokenType != "Bearer" || time.Until(v.Expiry) < 59*time.Minute {
				t.Errorf("json output %q: %v", s, err)
			}
		}},
		{"claims", nil, func(t *testing.T, s string) {
			for _, want := range []string{"aud    " + srv.AccountID, "azp    " + srv.ClientID, "iss    Sentinel", "scope  msg.consumer", "(in 1h0m0s"} {
				if !strings.Contains(s, want) {
					t.Errorf("claims output lacks %q:\n%s", want, s)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			r := runCmd(t, srv, serverEnv(srv), "", "-format", tt.format)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			if tt.token != nil {
				if err := srv.Verify(tt.token(r.stdout)); err != nil {
					t.Errorf("output %q: token does not verify: %v", r.stdout, err)
				}
			}
			if tt.check != nil {
				tt.check(t, r.stdout)
			}
		})
	}
}

func TestFlagsAndStdin(t *testing.T) {
	srv := appjwttest.NewServer()
	defer srv.Close()
	// Flags instead of the environment, the secret on standard input.
	r := runCmd(t, srv, nil, srv.ClientSecret+"\n", "-account", srv.AccountID, "-client-id", srv.ClientID, "-domain", srv.Host(), "-secret-stdin")
	if r.code != 0 || srv.Verify(strings.TrimSpace(r.stdout)) != nil {
		t.Errorf("exit %d, stdout %q, stderr %q; want a token", r.code, r.stdout, r.stderr)
	}
	if got := srv.Count(appjwttest.DomainAPI); got != 0 {
		t.Errorf("with -domain: %d Domain API requests, want 0", got)
	}
	r = runCmd(t, srv, map[string]string{"LP_ACCOUNT_ID": srv.AccountID, "LP_DOMAIN_API": srv.Host()}, "", "-domain-only")
	if r.code != 0 || r.stdout != srv.Host()+"\n" {
		t.Errorf("-domain-only: exit %d, stdout %q, stderr %q; want %q", r.code, r.stdout, r.stderr, srv.Host())
	}
}

func TestErrorsAndExitCodes(t *testing.T) {
	srv := appjwttest.NewServer()
	defer srv.Close()
	wrong := serverEnv(srv)
	wrong["LP_CLIENT_SECRET"] = "wrong-" + srv.ClientSecret
	noSecret := serverEnv(srv)
	delete(noSecret, "LP_CLIENT_SECRET")
	tests := []struct {
		name       string
		env        map[string]string
		stdin      string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{"wrong secret", wrong, "", nil, 1, "401 Unauthorized"},
		{"no secret", noSecret, "", nil, 2, "LP_CLIENT_SECRET"},
		{"empty stdin", noSecret, "", []string{"-secret-stdin"}, 1, "no secret"},
		{"secret as argument", noSecret, "", []string{srv.ClientSecret}, 2, "never a flag"},
		{"unknown flag", serverEnv(srv), "", []string{"-secret", "x"}, 2, "not defined"},
		{"unknown format", serverEnv(srv), "", []string{"-format", "yaml"}, 2, "unknown -format"},
		{"no account", map[string]string{}, "", nil, 2, "no account"},
		{"bad domain", serverEnv(srv), "", []string{"-domain", "https://x"}, 1, "Config.Domain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCmd(t, srv, tt.env, tt.stdin, tt.args...)
			if r.code != tt.wantCode {
				t.Errorf("exit %d, want %d (stderr %q)", r.code, tt.wantCode, r.stderr)
			}
			if !strings.Contains(r.stderr, tt.wantStderr) {
				t.Errorf("stderr %q does not contain %q", r.stderr, tt.wantStderr)
			}
			if tt.wantCode == 1 && strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("stderr %q is not one line", r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
			if strings.Contains(r.stderr, srv.ClientSecret) {
				t.Errorf("stderr shows the secret: %q", r.stderr)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	r := runCmd(t, nil, nil, "", "-h")
	if r.code != 0 || !strings.Contains(r.stderr, "Examples:") || !strings.Contains(r.stderr, "-secret-stdin") {
		t.Errorf("-h: exit %d, usage %q", r.code, r.stderr)
	}
}

func TestDemo(t *testing.T) {
	r := runCmd(t, nil, nil, "", "-demo")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	for _, want := range []string{"1. Domain API", "2. Sentinel", "3. Its claims", "iss    Sentinel", "201 Created", "ClientSecret:[REDACTED]"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, r.stdout)
		}
	}
}
