package appjwt_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"strings"

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

// The simplest use: an http.Client that sends "Authorization: Bearer <AppJWT>"
// on every request and refreshes the token as needed.
func ExampleConfig_Client() {
	srv := appjwttest.NewServer() // in production: no server, and DomainAPI left empty
	defer srv.Close()

	cfg := appjwt.Config{
		AccountID:    srv.AccountID,
		ClientID:     srv.ClientID,
		ClientSecret: srv.ClientSecret,
		DomainAPI:    srv.Host(),
	}
	ctx := srv.Context(context.Background()) // in production: context.Background()
	client := cfg.Client(ctx)

	createConsumer(client, srv)
	// Output: 201 Created
}

// Keeping an existing, tuned http.Client: oauth2.NewClient uses the client
// in the context under oauth2.HTTPClient both to reach Sentinel and as the
// base transport of the requests it authorizes.
func ExampleConfig_TokenSource() {
	srv := appjwttest.NewServer()
	defer srv.Close()
	cfg := appjwt.Config{AccountID: srv.AccountID, ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, DomainAPI: srv.Host()}

	existing := srv.Client() // the application's own client, with its timeouts and TLS settings
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, existing)
	client := oauth2.NewClient(ctx, cfg.TokenSource(ctx))

	createConsumer(client, srv)
	// Output: 201 Created
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
