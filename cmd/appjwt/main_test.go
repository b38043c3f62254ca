package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/lpconnect/appjwt"
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
		"LP_CLIENT_SECRET": string(srv.ClientSecret),
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
			for _, want := range []string{"aud    " + srv.AccountID, "azp    " + srv.ClientID, "iss    Sentinel", "scope  msg.consumer", "(in 59m59s"} {
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
				if _, err := srv.Verify(appjwttest.Sentinel, tt.token(r.stdout)); err != nil {
					t.Errorf("output %q: token does not verify: %v", r.stdout, err)
				}
			}
			if tt.check != nil {
				tt.check(t, r.stdout)
			}
		})
	}
}

// -token-api, or LP_TOKEN_API, chooses the token API, and -format header
// follows the token, as Config.Client does.
func TestTokenAPI(t *testing.T) {
	srv := appjwttest.NewServer()
	defer srv.Close()
	v2env := serverEnv(srv)
	v2env["LP_TOKEN_API"] = "v2"
	tests := []struct {
		name       string
		env        map[string]string
		args       []string
		wantPrefix string
		verify     appjwttest.Endpoint // the kind of token it prints
	}{
		{"default", serverEnv(srv), []string{"-format", "header"}, "Authorization: ey", appjwttest.Sentinel},
		{"-token-api v1", v2env, []string{"-token-api", "v1", "-format", "header"}, "Authorization: ey", appjwttest.Sentinel},
		{"-token-api v2", serverEnv(srv), []string{"-token-api", "v2", "-format", "header"}, "Authorization: Bearer ey", appjwttest.SentinelV2Token},
		{"LP_TOKEN_API v2", v2env, []string{"-format", "header"}, "Authorization: Bearer ey", appjwttest.SentinelV2Token},
		{"v2, raw", v2env, nil, "ey", appjwttest.SentinelV2Token},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCmd(t, srv, tt.env, "", tt.args...)
			if r.code != 0 || !strings.HasPrefix(r.stdout, tt.wantPrefix) {
				t.Fatalf("exit %d, stdout %.30q, stderr %q; want %q...", r.code, r.stdout, r.stderr, tt.wantPrefix)
			}
			fields := strings.Fields(r.stdout)
			if _, err := srv.Verify(tt.verify, fields[len(fields)-1]); err != nil {
				t.Errorf("token does not verify: %v", err)
			}
		})
	}
}

func TestFlagsAndStdin(t *testing.T) {
	srv := appjwttest.NewServer()
	defer srv.Close()
	// Flags instead of the environment, the secret on standard input.
	r := runCmd(t, srv, nil, string(srv.ClientSecret)+"\n", "-account", srv.AccountID, "-client-id", srv.ClientID, "-domain", srv.Host(), "-secret-stdin")
	if _, err := srv.Verify(appjwttest.Sentinel, strings.TrimSpace(r.stdout)); r.code != 0 || err != nil {
		t.Errorf("exit %d, stdout %q, stderr %q; want a token", r.code, r.stdout, r.stderr)
	}
	if got := len(srv.Requests(appjwttest.DomainAPI)); got != 0 {
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
	wrong["LP_CLIENT_SECRET"] = "wrong-" + string(srv.ClientSecret)
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
		{"secret as argument", noSecret, "", []string{"Ab/Cd+Ef0="}, 2, "never a flag"},
		{"unknown flag", serverEnv(srv), "", []string{"-secret", "x"}, 2, "unknown flag"},
		{"unknown format", serverEnv(srv), "", []string{"-format", "yaml"}, 2, "unknown -format"},
		{"no account", map[string]string{}, "", nil, 2, "no account"},
		{"bad domain", serverEnv(srv), "", []string{"-domain", "https://x"}, 2, "-domain / LP_DOMAIN: "},
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
			wantLines := 1
			if tt.wantCode == 2 {
				wantLines = 2 // and the hint to run appjwt -h
			}
			if got := strings.Count(r.stderr, "\n"); got != wantLines {
				t.Errorf("stderr %q has %d lines, want %d", r.stderr, got, wantLines)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
			if strings.Contains(r.stderr, string(srv.ClientSecret)) {
				t.Errorf("stderr shows the secret: %q", r.stderr)
			}
		})
	}
}

const hint = "Run 'appjwt -h' for usage.\n"

// A secret pasted on the command line, wherever it lands, is never shown:
// the whole of standard error is compared, not searched for the secret,
// which could be "x" and so in any text.
func TestPastedSecretNotShown(t *testing.T) {
	const (
		unknownFlag = "unknown flag (not shown: the secret is never a flag or argument; use LP_CLIENT_SECRET or -secret-stdin)"
		oneArg      = "1 unexpected argument (not shown: the secret is never a flag or argument; use LP_CLIENT_SECRET or -secret-stdin)"
		threeArgs   = "3 unexpected arguments (not shown: the secret is never a flag or argument; use LP_CLIENT_SECRET or -secret-stdin)"
		badFormat   = "unknown -format value (want raw, header, bearer, json or claims)"
		badTimeout  = "invalid value for -timeout: give a duration with a unit, such as 3s or 2m"
		badQuery    = "invalid value for -query: give -query alone, or -query=true or -query=false"
		badTokenAPI = "invalid value for -token-api: want v1 or v2"
	)
	positions := []struct {
		name string
		args func(secret string) []string
		// what the command says when the secret does and does not start with "-"
		wantDash, wantPlain string
	}{
		{"alone", func(s string) []string { return []string{s} }, unknownFlag, oneArg},
		{"after flags", func(s string) []string { return []string{"-format", "raw", s} }, unknownFlag, oneArg},
		{"before flags", func(s string) []string { return []string{s, "-format", "raw"} }, unknownFlag, threeArgs},
		{"after --", func(s string) []string { return []string{"--", s} }, oneArg, oneArg},
		{"as -format", func(s string) []string { return []string{"-format", s} }, badFormat, badFormat},
		{"as -format=", func(s string) []string { return []string{"-format=" + s} }, badFormat, badFormat},
		{"as -timeout", func(s string) []string { return []string{"-timeout", s} }, badTimeout, badTimeout},
		{"as -query=", func(s string) []string { return []string{"-query=" + s} }, badQuery, badQuery},
		{"as -token-api", func(s string) []string { return []string{"-token-api", s} }, badTokenAPI, badTokenAPI},
	}
	// The first two are what a base64 secret may look like; "--x" and
	// "-=Ab" are the flag package's two other ways of reading a dash.
	for _, secret := range []string{"-Ab/Cd+Ef0=", "Ab/Cd+Ef0=", "--x", "-=Ab"} {
		for _, p := range positions {
			args := p.args(secret)
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				want := p.wantPlain
				if strings.HasPrefix(secret, "-") {
					want = p.wantDash
				}
				r := runCmd(t, nil, nil, "", args...)
				if got, want := r.stderr, "appjwt: "+want+"\n"+hint; got != want {
					t.Errorf("stderr:\n%s\nwant:\n%s", got, want)
				}
				if r.code != 2 || r.stdout != "" {
					t.Errorf("exit %d, stdout %q; want 2 and nothing", r.code, r.stdout)
				}
			})
		}
	}
}

func TestUsageErrors(t *testing.T) {
	env := map[string]string{
		"LP_ACCOUNT_ID":    "le12345678",
		"LP_CLIENT_ID":     "75588e18-0213-4e33-8174-883acac7e3c4",
		"LP_CLIENT_SECRET": "Ab/Cd+Ef0=",
		"LP_DOMAIN_API":    "127.0.0.1:1", // loopback, should a check let a request through
	}
	with := func(k, v string) map[string]string {
		e := maps.Clone(env)
		e[k] = v
		return e
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string // the first line of standard error
	}{
		{"-timeout without a unit", env, []string{"-timeout", "3"}, "invalid value for -timeout: give a duration with a unit, such as 3s or 2m"},
		{"negative -timeout", env, []string{"-timeout", "-1s"}, "invalid value for -timeout: it is negative"},
		{"-demo with a value", env, []string{"-demo=maybe"}, "invalid value for -demo: give -demo alone, or -demo=true or -demo=false"},
		{"-format without a value", env, []string{"-format"}, "-format needs a value"},
		{"--account without a value", env, []string{"--account"}, "-account needs a value"},
		{"unknown flag, then a known one without a value", env, []string{"-bogus", "-timeout"}, "unknown flag (not shown: the secret is never a flag or argument; use LP_CLIENT_SECRET or -secret-stdin)"},
		{"-domain", env, []string{"-domain", "https://x"}, "-domain / LP_DOMAIN: the value is not a bare host[:port] (no scheme, path, query or userinfo)"},
		{"LP_DOMAIN", with("LP_DOMAIN", "https://x"), nil, "-domain / LP_DOMAIN: the value is not a bare host[:port] (no scheme, path, query or userinfo)"},
		{"-domain with -domain-only", env, []string{"-domain", "x/y", "-domain-only"}, "-domain / LP_DOMAIN: the value is not a bare host[:port] (no scheme, path, query or userinfo)"},
		{"-domain-api", env, []string{"-domain-api", "https://x"}, "-domain-api / LP_DOMAIN_API: the value is not a bare host[:port] (no scheme, path, query or userinfo)"},
		{"LP_DOMAIN_API", with("LP_DOMAIN_API", "https://x"), []string{"-domain-only"}, "-domain-api / LP_DOMAIN_API: the value is not a bare host[:port] (no scheme, path, query or userinfo)"},
		{"-account", env, []string{"-account", ".."}, "-account / LP_ACCOUNT_ID: the value is not an account ID"},
		{"LP_ACCOUNT_ID", with("LP_ACCOUNT_ID", "."), []string{"-domain-only"}, "-account / LP_ACCOUNT_ID: the value is not an account ID"},
		{"-token-api", env, []string{"-token-api", "v3"}, "invalid value for -token-api: want v1 or v2"},
		{"LP_TOKEN_API", with("LP_TOKEN_API", "2"), nil, "invalid value for LP_TOKEN_API: want v1 or v2"},
		{"-query with v2", with("LP_TOKEN_API", "v2"), []string{"-query"}, "-query is for -token-api v1: v2 takes the credentials in the form body only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCmd(t, nil, tt.env, "", tt.args...)
			if got, want := r.stderr, "appjwt: "+tt.want+"\n"+hint; got != want {
				t.Errorf("stderr:\n%s\nwant:\n%s", got, want)
			}
			if r.code != 2 || r.stdout != "" {
				t.Errorf("exit %d, stdout %q; want 2 and nothing", r.code, r.stdout)
			}
		})
	}
}

// configError is tested on its own for the errors the library cannot be
// made to return through the command today, such as one about ClientID,
// which the command checks for emptiness first. It reads the fields of the
// typed error, not its text, and never shows the value.
func TestConfigError(t *testing.T) {
	tests := []struct {
		config appjwt.Config
		want   string
		usage  bool // whether it is a usage error
	}{
		{appjwt.Config{AccountID: "le1", ClientSecret: "s"}, "-client-id / LP_CLIENT_ID is empty", true},
		{appjwt.Config{AccountID: "..", ClientID: "id", ClientSecret: "s"}, "-account / LP_ACCOUNT_ID: the value is not an account ID", true},
		{appjwt.Config{AccountID: "le1", ClientID: "id"}, "LP_CLIENT_SECRET / -secret-stdin is empty", true},
		{appjwt.Config{AccountID: "le1", ClientID: "id", ClientSecret: "[REDACTED]"}, "LP_CLIENT_SECRET / -secret-stdin: the value is [REDACTED]: the Config was read back from redacted JSON or logs", true},
		{appjwt.Config{AccountID: "le1", ClientID: "id", ClientSecret: "s", Domain: "a:b:c"}, "-domain / LP_DOMAIN: the value is not a bare host[:port]", true},
		{appjwt.Config{AccountID: "le1", ClientID: "id", ClientSecret: "s", DomainAPI: "https://x"}, "-domain-api / LP_DOMAIN_API: the value is not a bare host[:port] (no scheme, path, query or userinfo)", true},
		{appjwt.Config{AccountID: "le1", ClientID: "id", ClientSecret: "s", DomainAPI: "x:99999"}, "-domain-api / LP_DOMAIN_API: the value has an invalid port", true},
		{appjwt.Config{AccountID: "le1", ClientID: "id", ClientSecret: "s", FetchTimeout: -time.Second}, "-timeout: the value is negative", true},
		// Not about a field the command sets: as it is.
		{appjwt.Config{AccountID: "le1", ClientID: "id", ClientSecret: "s", EarlyExpiry: -time.Second}, "appjwt: Config.EarlyExpiry -1s is negative", false},
	}
	for _, tt := range tests {
		_, err := tt.config.Token(context.Background())
		err = configError(err)
		if got := err.Error(); got != tt.want {
			t.Errorf("configError = %q, want %q", got, tt.want)
		}
		var u usageError
		if got := errors.As(err, &u); got != tt.usage {
			t.Errorf("%q is a usage error: %v, want %v", err, got, tt.usage)
		}
	}
	other := errors.New(`appjwt: token request for account "x.y": 401 Unauthorized`)
	if got := configError(other); got != other {
		t.Errorf("configError(%v) = %v, want it as it is", other, got)
	}
}

func TestHelp(t *testing.T) {
	for _, arg := range []string{"-h", "-help", "--help"} {
		r := runCmd(t, nil, nil, "", arg)
		if r.code != 0 || r.stdout != "" {
			t.Errorf("%s: exit %d, stdout %q; want 0 and nothing", arg, r.code, r.stdout)
		}
		// The flags' types and defaults show as the flag package tells them.
		for _, want := range []string{"Examples:", "\n  -secret-stdin\n", "\n  -timeout duration\n", "(default 30s)", "\n  -format format\n", `(default "raw")`, "\n  -token-api API\n", "(default v1)"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("%s: usage lacks %q:\n%s", arg, want, r.stderr)
			}
		}
		if strings.Contains(r.stderr, "default false") {
			t.Errorf("%s: usage shows the default of a boolean flag:\n%s", arg, r.stderr)
		}
	}
}

func TestDemo(t *testing.T) {
	r := runCmd(t, nil, nil, "", "-demo")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	for _, want := range []string{"1. Domain API", "2. Sentinel", "3. Its claims", "iss    Sentinel", "201 Created", "ClientSecret:[REDACTED]",
		"5. Send API on behalf of a consumer, through consumerjws",
		"the consumer's profile (mandatory), then the conversation",
		`1, userprofile.SetUserProfile: code "OK", "OK User Profile set successfully"`,
		`2, cm.ConsumerRequestConversation: code "OK", conversation `,
		"6. SEND: ", `a ContentEvent: 200 OK, code "OK", sequence 0 in the conversation`,
		`ConversationStateField CLOSE: 200 OK, code "OK"; the stand-in has it CLOSE`,
		"7. Sentinel's v2 API", "the stand-in's v2 API: 200 OK",
		"Domain API 4 (step 1, the token source, the idp, the v2 client), Sentinel 1, ConsumerJWS 2, CONVERSATION 1, SEND 2, Sentinel v2 1, v2 API 1."} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, r.stdout)
		}
	}
}
