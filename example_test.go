package appjwt_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/lpconnect/appjwt"
	"github.com/lpconnect/appjwt/appjwttest"
	"golang.org/x/oauth2"
)

// createConsumer asks LivePerson (here the stand-in) for a ConsumerJWS, a
// typical first call of a connector, and prints the answer's status.
func createConsumer(client *http.Client, srv *appjwttest.Server) {
	url := srv.URL() + "/api/account/" + srv.AccountID + "/consumer?v=1.0"
	resp, err := client.Post(url, "application/json", strings.NewReader(`{"ext_consumer_id":"john_doe_42"}`))
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	fmt.Println(resp.Status)
}

// Config.Client wraps a client you have, such as a company's tuned one with
// its own Timeout and transport chain, put in the context: every request
// gets "Authorization: <AppJWT>", raw, as LivePerson's Connector API wants,
// and recovers from a rejected token.
func ExampleConfig_Client() {
	srv := appjwttest.NewServer() // in production: no server, and DomainAPI left empty
	defer srv.Close()
	existing := &http.Client{
		Timeout:   10 * time.Second,
		Transport: loggingTransport{next: srv.Client().Transport}, // in production: your chain
	}

	cfg := appjwt.Config{
		AccountID:    srv.AccountID,
		ClientID:     srv.ClientID,
		ClientSecret: srv.ClientSecret,
		DomainAPI:    srv.Host(),
	}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, existing)
	client := cfg.Client(ctx) // the token requests go through existing too

	createConsumer(client, srv)
	// Output:
	// GET /api/account/le12345678/service/sentinel/baseURI.json (Authorization: raw token: false)
	// POST /sentinel/api/account/le12345678/app/token (Authorization: raw token: false)
	// POST /api/account/le12345678/consumer (Authorization: raw token: true)
	// 201 Created
}

// An API that takes a v1 AppJWT as a standard OAuth 2.0 bearer token gets
// "Authorization: Bearer <AppJWT>" from a Transport with BearerStyle, or
// from x/oauth2's own client over the same Source (which does not recover
// from a rejected token).
func ExampleTransport_bearer() {
	srv := appjwttest.NewServer()
	defer srv.Close()
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ey") {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer api.Close()
	cfg := appjwt.Config{AccountID: srv.AccountID, ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, DomainAPI: srv.Host()}
	ctx := srv.Context(context.Background())
	src := cfg.TokenSource(ctx)

	bearer := &http.Client{Transport: &appjwt.Transport{Source: src, Style: appjwt.BearerStyle, Base: api.Client().Transport}}
	for _, client := range []*http.Client{bearer, oauth2.NewClient(context.WithValue(ctx, oauth2.HTTPClient, api.Client()), src)} {
		resp, err := client.Get(api.URL)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		fmt.Println(resp.Status)
	}
	// Output:
	// 200 OK
	// 200 OK
}

// With Sentinel's v2 API, for LivePerson's APIs other than the Connector
// API, the client sends "Authorization: Bearer <token>", as they want it.
// Here the API is the stand-in's own v2 API.
func ExampleConfig_Client_v2() {
	srv := appjwttest.NewServer()
	defer srv.Close()

	cfg := appjwt.Config{
		AccountID:    srv.AccountID,
		ClientID:     srv.ClientID,
		ClientSecret: srv.ClientSecret,
		TokenAPI:     appjwt.SentinelV2,
		DomainAPI:    srv.Host(),
	}
	client := cfg.Client(srv.Context(context.Background()))

	resp, err := client.Get(srv.URL() + strings.Replace(appjwttest.V2APIPath, "{account}", srv.AccountID, 1))
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	scheme, _, _ := strings.Cut(srv.Requests(appjwttest.V2API)[0].Header.Get("Authorization"), " ")
	fmt.Println(resp.Status, "with", scheme)
	// Output: 200 OK with Bearer
}

// For code that sets the header itself: the source caches the token and
// refreshes it in the background, and a Rejecter takes word of a 401 so that
// the next call fetches a new token. (oauth2.NewClient would wrap the source
// in a cache of its own, which no rejection reaches: use Config.Client.)
func ExampleConfig_TokenSource() {
	srv := appjwttest.NewServer()
	defer srv.Close()
	cfg := appjwt.Config{AccountID: srv.AccountID, ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, DomainAPI: srv.Host()}
	src := cfg.TokenSource(srv.Context(context.Background()))

	createConsumer := func() string {
		tok, err := src.Token()
		if err != nil {
			log.Fatal(err)
		}
		req, err := http.NewRequest("POST", srv.URL()+"/api/account/"+srv.AccountID+"/consumer?v=1.0", strings.NewReader(`{"ext_consumer_id":"john_doe_42"}`))
		if err != nil {
			log.Fatal(err)
		}
		req.Header.Set("Authorization", tok.AccessToken)
		resp, err := srv.Client().Do(req)
		if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if err != nil {
			log.Fatal(err)
		}
		if resp.StatusCode == http.StatusUnauthorized && appjwt.ErrorCode(body) == 40102 {
			src.Reject(tok) // the next Token call fetches a new one
		}
		return resp.Status
	}

	fmt.Println(createConsumer())
	srv.RevokeTokens() // the token the source holds goes bad
	fmt.Println(createConsumer())
	fmt.Println(createConsumer())
	// Output:
	// 201 Created
	// 401 Unauthorized
	// 201 Created
}

// When LivePerson rejects an AppJWT before its expiry (revoked, or a clock
// disagreement), Transport drops it from the source, which fetches a new
// one, and sends the request once more.
func ExampleTransport_recovery() {
	srv := appjwttest.NewServer()
	defer srv.Close()
	cfg := appjwt.Config{AccountID: srv.AccountID, ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, DomainAPI: srv.Host()}
	ctx := srv.Context(context.Background())
	client := &http.Client{Transport: &appjwt.Transport{Source: cfg.TokenSource(ctx), Base: srv.Client().Transport}}

	createConsumer(client, srv)
	srv.RevokeTokens() // the token the source holds goes bad
	createConsumer(client, srv)
	fmt.Println("AppJWTs fetched:", len(srv.Requests(appjwttest.Sentinel)))
	// Output:
	// 201 Created
	// 201 Created
	// AppJWTs fetched: 2
}

// loggingTransport stands for a connector's own transport: tracing,
// metrics, retries.
type loggingTransport struct{ next http.RoundTripper }

func (t loggingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	auth := r.Header.Get("Authorization")
	fmt.Printf("%s %s (Authorization: raw token: %v)\n", r.Method, r.URL.Path, strings.HasPrefix(auth, "eyJ"))
	return t.next.RoundTrip(r)
}

// Transport drops into a connector's own transport chain and sends the raw
// "Authorization: <AppJWT>" that LivePerson's Connector API documents.
func ExampleTransport() {
	srv := appjwttest.NewServer()
	defer srv.Close()
	cfg := appjwt.Config{AccountID: srv.AccountID, ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, DomainAPI: srv.Host()}
	ctx := srv.Context(context.Background())

	client := &http.Client{
		Transport: &appjwt.Transport{
			Source: cfg.TokenSource(ctx),
			Base:   loggingTransport{next: srv.Client().Transport},
		},
	}

	createConsumer(client, srv)
	// Output:
	// POST /api/account/le12345678/consumer (Authorization: raw token: true)
	// 201 Created
}

// Token fetches one AppJWT without caching, for a command-line tool or a
// one-off call; ParseClaims shows what it says.
func ExampleConfig_Token() {
	srv := appjwttest.NewServer()
	defer srv.Close()
	cfg := appjwt.Config{AccountID: srv.AccountID, ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, DomainAPI: srv.Host()}

	tok, err := cfg.Token(srv.Context(context.Background()))
	if err != nil {
		log.Fatal(err)
	}
	claims, err := appjwt.ParseClaims(tok.AccessToken)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.Type(), claims.Issuer, claims.Audience, claims.Scope, claims.ExpiresAt.Sub(claims.IssuedAt))
	// Output: Bearer Sentinel le12345678 msg.consumer 1h0m0s
}

// State is all a readiness check needs: with no other traffic, its first
// call starts the source's first fetch, and the source keeps a token ready
// (or keeps retrying) while it is called. Here the check is probed as
// Kubernetes would, until it turns ready; on failure it says why.
func ExampleSource_State() {
	srv := appjwttest.NewServer()
	defer srv.Close()
	cfg := appjwt.Config{AccountID: srv.AccountID, ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, DomainAPI: srv.Host()}
	src := cfg.TokenSource(srv.Context(context.Background()))

	ready := func(w http.ResponseWriter, _ *http.Request) {
		st := src.State()
		if !st.Valid {
			var re *oauth2.RetrieveError
			if errors.As(st.LastError, &re) {
				http.Error(w, fmt.Sprintf("no AppJWT: Sentinel answered %d, %d failures", re.Response.StatusCode, st.Failures), http.StatusServiceUnavailable)
				return
			}
			http.Error(w, "no AppJWT yet", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	}
	for last := ""; last != "200 ready\n"; time.Sleep(100 * time.Millisecond) { // a probe's period
		rec := httptest.NewRecorder()
		ready(rec, httptest.NewRequest("GET", "/ready", nil))
		if got := fmt.Sprint(rec.Code, " ", rec.Body.String()); got != last {
			fmt.Print(got) // each change of the answer
			last = got
		}
	}
	// Output:
	// 503 no AppJWT yet
	// 200 ready
}

// ParseClaims reads what an AppJWT says, here the sample from LivePerson's
// documentation, without verifying it.
func ExampleParseClaims() {
	const sample = "eyJraWQiOiJhcHBqd3QtMTMtMDUtMTciLCJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJsZTgxODIzMTE4IiwiYXpwIjoiNzU1ODhlMTgtMDIxMy00ZTMzLTgxNzQtODgzYWNhYzdlM2M0Iiwic2NvcGUiOiJtc2cuY29uc3VtZXIiLCJpc3MiOiJTZW50aW5lbCIsImV4cCI6MTUyNDY0NjI3MCwiaWF0IjoxNTI0NjQyNjcwfQ.aC1EbVQDIKJkrMgfoqhDqo5KZVMILTGP5UnK_4lUJQIfpFcrymvQKU9E6zt_WDhWmM2SOOcr1sz4u5xVZ9rMWZciDW_9KofEM2NDgVw1EVBxAIgGYeO0sbE9o--HKjk9DHZvukJkQFhYaHMDnj6ay4BNUqTJpDn6y3XQY7eh7rM"
	c, err := appjwt.ParseClaims(sample)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.Issuer, c.Audience, c.AuthorizedParty, c.Scope)
	fmt.Println(c.IssuedAt.UTC(), c.ExpiresAt.UTC())
	// Output:
	// Sentinel le81823118 75588e18-0213-4e33-8174-883acac7e3c4 msg.consumer
	// 2018-04-25 07:51:10 +0000 UTC 2018-04-25 08:51:10 +0000 UTC
}

// A TokenAPI reads and writes as text, as in a Config read from JSON or a
// flag set with flag.TextVar; no text but "v1" and "v2" reads.
func ExampleTokenAPI() {
	for _, api := range []appjwt.TokenAPI{appjwt.SentinelV1, appjwt.SentinelV2} {
		text, _ := api.MarshalText()
		read := appjwt.TokenAPI(7)
		err := read.UnmarshalText(text)
		fmt.Println(string(text), read == api, err)
	}
	for _, text := range []string{"", "V2", "2", "v3"} {
		var read appjwt.TokenAPI
		fmt.Printf("%q: %v\n", text, read.UnmarshalText([]byte(text)))
	}
	fmt.Println(appjwt.SentinelV2 + 1)
	// Output:
	// v1 true <nil>
	// v2 true <nil>
	// "": appjwt: a TokenAPI is "v1" or "v2"
	// "V2": appjwt: a TokenAPI is "v1" or "v2"
	// "2": appjwt: a TokenAPI is "v1" or "v2"
	// "v3": appjwt: a TokenAPI is "v1" or "v2"
	// TokenAPI(2)
}

// A Config formats and marshals with its secret redacted, so that it can
// be logged or shown whole; it reads back from JSON with the secret.
func ExampleConfig_redacted() {
	c := appjwt.Config{AccountID: "le1", ClientID: "id", ClientSecret: "s3cret-value", TokenAPI: appjwt.SentinelV2, EarlyExpiry: time.Minute}
	b, err := json.Marshal(c)
	fmt.Println(string(b), err)
	fmt.Printf("%+v\n%#v\n", c, c)

	var read appjwt.Config
	err = json.Unmarshal([]byte(`{"AccountID":"le1","ClientID":"id","ClientSecret":"s3cret-value","TokenAPI":"v2","EarlyExpiry":60000000000}`), &read)
	fmt.Println(read == c, err)
	// Output:
	// {"AccountID":"le1","ClientID":"id","ClientSecret":"[REDACTED]","TokenAPI":"v2","Domain":"","DomainAPI":"","EarlyExpiry":60000000000,"FetchTimeout":0,"CredentialsInQuery":false} <nil>
	// {AccountID:le1 ClientID:id ClientSecret:[REDACTED] TokenAPI:v2 Domain: DomainAPI: EarlyExpiry:1m0s FetchTimeout:0s CredentialsInQuery:false Logger:<nil> Store:<nil>}
	// appjwt.Config{AccountID:"le1", ClientID:"id", ClientSecret:"[REDACTED]", TokenAPI:1, Domain:"", DomainAPI:"", EarlyExpiry:60000000000, FetchTimeout:0, CredentialsInQuery:false, Logger:(*slog.Logger)(nil), Store:store.Store(nil)}
	// true <nil>
}
