// Command appjwt prints a LivePerson AppJWT, for curl and for debugging a 401.
//
// Usage:
//
//	LP_CLIENT_SECRET=... appjwt -account le12345678 -client-id 75588e18-...
//	appjwt -format claims          # what the token says, expiry in local time
//	appjwt -token-api v2           # a token for LivePerson's APIs other than the Connector API
//	appjwt -domain-only            # only resolve the Sentinel host
//	appjwt -demo                   # the whole flow against a built-in stand-in
//
// The account, client id, domain and token API come from flags or from
// LP_ACCOUNT_ID, LP_CLIENT_ID, LP_DOMAIN, LP_DOMAIN_API and LP_TOKEN_API. The secret comes only from
// LP_CLIENT_SECRET or, with -secret-stdin, from the first line of standard
// input: never from a flag, since flags show in ps.
//
// Errors go to standard error as one line, with exit status 1. Usage errors,
// a bad flag or a bad setting, exit with status 2; they name the flag and the
// environment variable, never quote what was typed (it may be the secret,
// pasted in the wrong place), and are followed by a hint to run appjwt -h.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/lpconnect/appjwt"
	"github.com/lpconnect/appjwt/internal/lphttp"
	"github.com/lpconnect/appjwt/secret"
	"golang.org/x/oauth2"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr))
}

const usageText = `Usage: appjwt [flags]

Prints a LivePerson AppJWT for an app installation. The secret is read from
LP_CLIENT_SECRET, or from standard input with -secret-stdin; never from a flag.

Examples:
  export LP_ACCOUNT_ID=le12345678 LP_CLIENT_ID=75588e18-0213-4e33-8174-883acac7e3c4
  read -rs LP_CLIENT_SECRET && export LP_CLIENT_SECRET
  curl -H "$(appjwt -format header)" https://.../api/account/le12345678/consumer?v=1.0
  appjwt -format claims
  appjwt -token-api v2 -format header    # Authorization: Bearer <token>, for LivePerson's other APIs
  pass show lp/secret | appjwt -secret-stdin -format json
  appjwt -domain-only
  appjwt -demo

Flags:
`

// options are the command's parsed flags and environment.
type options struct {
	conf        appjwt.Config
	format      string
	domainOnly  bool
	demo        bool
	secretStdin bool
}

// formats are the ways a token can be printed.
var formats = map[string]func(w io.Writer, tok *oauth2.Token) error{
	"raw": func(w io.Writer, tok *oauth2.Token) error { _, err := fmt.Fprintln(w, tok.AccessToken); return err },
	"header": func(w io.Writer, tok *oauth2.Token) error {
		_, err := fmt.Fprintln(w, "Authorization: "+tok.AccessToken)
		return err
	},
	"bearer": func(w io.Writer, tok *oauth2.Token) error {
		_, err := fmt.Fprintln(w, "Authorization: Bearer "+tok.AccessToken)
		return err
	},
	"json":   printJSON,
	"claims": printClaims,
}

// run is the whole command, with its world passed in so tests can run it.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	opts, err := parse(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err == nil {
		if opts.demo {
			err = demo(ctx, stdout)
		} else {
			err = fetch(ctx, opts, stdin, stdout)
		}
	}
	var usage usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &usage):
		fmt.Fprintln(stderr, "appjwt:", usage)
		fmt.Fprintln(stderr, "Run 'appjwt -h' for usage.")
		return 2
	}
	fmt.Fprintln(stderr, oneLine(err))
	return 1
}

// usageError is a mistake in the command line or the environment. Its text
// never holds what the user typed: a secret pasted in the wrong place would
// end up on the screen, in a terminal log or in CI output.
type usageError string

func (e usageError) Error() string { return string(e) }

func usageErrorf(format string, a ...any) error { return usageError(fmt.Sprintf(format, a...)) }

func parse(args []string, getenv func(string) string, stderr io.Writer) (*options, error) {
	var o options
	fs := flag.NewFlagSet("appjwt", flag.ContinueOnError)
	// The flag package's own messages quote the argument they fail on, and
	// print the whole usage besides: parse reports errors in its own words.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&o.conf.AccountID, "account", getenv("LP_ACCOUNT_ID"), "LivePerson account (site) `ID` (env LP_ACCOUNT_ID)")
	fs.StringVar(&o.conf.ClientID, "client-id", getenv("LP_CLIENT_ID"), "app installation `ID` (env LP_CLIENT_ID)")
	fs.StringVar(&o.conf.Domain, "domain", getenv("LP_DOMAIN"), "Sentinel `host`; empty: looked up with the Domain API (env LP_DOMAIN)")
	fs.StringVar(&o.conf.DomainAPI, "domain-api", getenv("LP_DOMAIN_API"), "Domain API `host`; empty: api.liveperson.net (env LP_DOMAIN_API)")
	tokenAPI := appjwt.SentinelV1
	if v := getenv("LP_TOKEN_API"); v != "" && tokenAPI.UnmarshalText([]byte(v)) != nil {
		return nil, usageError("invalid value for LP_TOKEN_API: want v1 or v2")
	}
	fs.TextVar(&o.conf.TokenAPI, "token-api", tokenAPI, "Sentinel's token `API`: v1 for the Connector API, v2 for LivePerson's other APIs (env LP_TOKEN_API)")
	fs.BoolVar(&o.conf.CredentialsInQuery, "query", false, "send the credentials in the URL's query string instead of the form body (v1 only)")
	fs.DurationVar(&o.conf.FetchTimeout, "timeout", 30*time.Second, "give up after this `duration`, such as 10s (0: 30s)")
	fs.StringVar(&o.format, "format", "raw", "output `format`: raw, header (Authorization: <AppJWT>, or Bearer <AppJWT> with -token-api v2), bearer (Authorization: Bearer <AppJWT>), json or claims")
	fs.BoolVar(&o.domainOnly, "domain-only", false, "only resolve and print the Sentinel host")
	fs.BoolVar(&o.secretStdin, "secret-stdin", false, "read the secret from the first line of standard input instead of LP_CLIENT_SECRET")
	fs.BoolVar(&o.demo, "demo", false, "run the whole flow against a built-in LivePerson stand-in; needs no account")

	var rejected string // the flag whose value did not parse
	fs.VisitAll(func(f *flag.Flag) { f.Value = &checkedValue{f.Value, f.Name, &rejected} })
	err := fs.Parse(args)
	// PrintDefaults tells a flag's type and default from the type of its
	// Value: it must see the flag package's own.
	fs.VisitAll(func(f *flag.Flag) { f.Value = f.Value.(*checkedValue).Value })
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stderr)
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
		return nil, err
	case err != nil:
		return nil, flagError(fs, err, rejected)
	}

	switch n := fs.NArg(); {
	case n == 1:
		return nil, usageError("1 unexpected argument" + secretHint)
	case n > 1:
		return nil, usageErrorf("%d unexpected arguments%s", n, secretHint)
	}
	if _, ok := formats[o.format]; !ok {
		return nil, usageError("unknown -format value (want raw, header, bearer, json or claims)")
	}
	if o.conf.FetchTimeout < 0 {
		return nil, usageError("invalid value for -timeout: it is negative")
	}
	if o.conf.CredentialsInQuery && o.conf.TokenAPI == appjwt.SentinelV2 {
		return nil, usageError("-query is for -token-api v1: v2 takes the credentials in the form body only")
	}
	if o.demo {
		return &o, nil
	}
	if o.conf.AccountID == "" {
		return nil, usageError("no account: set -account or LP_ACCOUNT_ID")
	}
	if o.domainOnly {
		return &o, nil
	}
	if o.conf.ClientID == "" {
		return nil, usageError("no client id: set -client-id or LP_CLIENT_ID")
	}
	if !o.secretStdin {
		if o.conf.ClientSecret = secret.String(getenv("LP_CLIENT_SECRET")); o.conf.ClientSecret == "" {
			return nil, usageError("no secret: set LP_CLIENT_SECRET or use -secret-stdin")
		}
	}
	return &o, nil
}

// secretHint follows the errors about an argument that is not shown.
const secretHint = " (not shown: the secret is never a flag or argument; use LP_CLIENT_SECRET or -secret-stdin)"

// checkedValue records the name of its flag when its value does not parse,
// so that parse can name the flag without quoting the value.
type checkedValue struct {
	flag.Value
	name     string
	rejected *string
}

func (v *checkedValue) Set(s string) error {
	err := v.Value.Set(s)
	if err != nil {
		*v.rejected = v.name
	}
	return err
}

// IsBoolFlag keeps -query and the like usable without a value.
func (v *checkedValue) IsBoolFlag() bool { return isBool(v.Value) }

func isBool(v flag.Value) bool {
	b, ok := v.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// flagError turns an error of fs.Parse into one that names only flags
// defined in fs. rejected is the flag whose value did not parse, if any.
func flagError(fs *flag.FlagSet, err error, rejected string) error {
	if f := fs.Lookup(rejected); f != nil {
		switch {
		case f.Name == "timeout":
			return usageError("invalid value for -timeout: give a duration with a unit, such as 3s or 2m")
		case f.Name == "token-api":
			return usageError("invalid value for -token-api: want v1 or v2")
		case isBool(f.Value):
			return usageErrorf("invalid value for -%s: give -%[1]s alone, or -%[1]s=true or -%[1]s=false", f.Name)
		}
		return usageErrorf("invalid value for -%s", f.Name)
	}
	// The flag package has no error types; of its messages, only this one
	// names a flag that exists, and the name is only shown once fs.Lookup
	// has vouched for it.
	if name, ok := strings.CutPrefix(err.Error(), "flag needs an argument: -"); ok {
		if f := fs.Lookup(name); f != nil {
			return usageErrorf("-%s needs a value", f.Name)
		}
	}
	// An undefined flag or bad flag syntax ("---x", "-=x").
	return usageError("unknown flag" + secretHint)
}

// configSources names, for each Config field the command sets, where the
// user sets it.
var configSources = map[string]string{
	"AccountID":    "-account / LP_ACCOUNT_ID",
	"ClientID":     "-client-id / LP_CLIENT_ID",
	"ClientSecret": "LP_CLIENT_SECRET / -secret-stdin",
	"Domain":       "-domain / LP_DOMAIN",
	"DomainAPI":    "-domain-api / LP_DOMAIN_API",
	"FetchTimeout": "-timeout",
}

// configError turns the error of a Config field the command sets, an
// [appjwt.ConfigError], into a usage error that names the flag and
// environment variable instead, and never shows the value. Other errors
// are returned as they are.
func configError(err error) error {
	var field, reason string
	var ce *appjwt.ConfigError
	var fe *lphttp.FieldError // from -domain-only's own check
	switch {
	case errors.As(err, &ce):
		field, reason = ce.Field, ce.Reason
	case errors.As(err, &fe):
		field, reason = fe.Field, fe.Reason
	default:
		return err
	}
	source, ok := configSources[field]
	if !ok {
		return err
	}
	if reason == "is empty" {
		return usageError(source + " " + reason) // "-client-id / LP_CLIENT_ID is empty"
	}
	return usageError(source + ": the value " + reason)
}

func fetch(ctx context.Context, o *options, stdin io.Reader, stdout io.Writer) error {
	if o.domainOnly {
		host := o.conf.Domain
		err := lphttp.CheckConfig("appjwt", o.conf.AccountID, o.conf.Domain, o.conf.DomainAPI)
		if err == nil && host == "" {
			host, err = appjwt.LookupDomain(ctx, o.conf.DomainAPI, o.conf.AccountID, "sentinel")
		}
		if err != nil {
			return configError(err)
		}
		_, err = fmt.Fprintln(stdout, host)
		return err
	}
	if o.secretStdin {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("appjwt: reading the secret from standard input: %w", err)
		}
		if o.conf.ClientSecret = secret.String(strings.TrimRight(line, "\r\n")); o.conf.ClientSecret == "" {
			return errors.New("appjwt: standard input held no secret")
		}
	}
	tok, err := o.conf.Token(ctx)
	if err != nil {
		return configError(err)
	}
	format := o.format
	if format == "header" && o.conf.TokenAPI == appjwt.SentinelV2 {
		format = "bearer" // the header follows the token, as Config.Client sends it
	}
	return formats[format](stdout, tok)
}

func printJSON(w io.Writer, tok *oauth2.Token) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		AccessToken string    `json:"access_token"`
		TokenType   string    `json:"token_type"`
		Expiry      time.Time `json:"expiry"`
	}{tok.AccessToken, tok.Type(), tok.Expiry})
}

func printClaims(w io.Writer, tok *oauth2.Token) error {
	c, err := appjwt.ParseClaims(tok.AccessToken)
	if err != nil {
		return err
	}
	local := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Local().Format("2006-01-02 15:04:05 MST")
	}
	_, err = fmt.Fprintf(w, "aud    %s\nazp    %s\nscope  %s\niss    %s\niat    %s\nexp    %s\nexpiry %s (in %s, as this package counts it)\n",
		c.Audience, c.AuthorizedParty, c.Scope, c.Issuer, local(c.IssuedAt), local(c.ExpiresAt),
		local(tok.Expiry), time.Until(tok.Expiry).Round(time.Second))
	return err
}

// oneLine keeps an error on one line: oauth2's RetrieveError adds the
// answer's body on a line of its own.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
