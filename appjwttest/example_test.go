package appjwttest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"strings"

	"github.com/lpconnect/appjwt"
	"github.com/lpconnect/appjwt/appjwttest"
	"golang.org/x/oauth2"
)

// A connector under test takes its credentials and the Domain API's host
// from the stand-in, and reaches it through the stand-in's client, which
// trusts its certificate. Here it creates a consumer and opens a
// conversation for it, as a connector does for a new end consumer.
func Example() {
	srv := appjwttest.NewServer()
	defer srv.Close()

	cfg := appjwt.Config{
		AccountID:    srv.AccountID,
		ClientID:     srv.ClientID,
		ClientSecret: srv.ClientSecret,
		DomainAPI:    srv.Host(), // in production: left empty
	}
	ctx := srv.Context(context.Background()) // in production: context.Background()
	client := &http.Client{
		Transport: &appjwt.Transport{Source: cfg.TokenSource(ctx), Base: srv.Client().Transport},
	}

	// A connector finds the hosts of these endpoints with the Domain API,
	// services "idp" and "asyncMessagingEnt": here they are all the stand-in.
	resp, err := client.Post(srv.URL()+"/api/account/"+srv.AccountID+"/consumer?v=1.0",
		"application/json", strings.NewReader(`{"ext_consumer_id":"john_doe_42"}`))
	if err != nil {
		log.Fatal(err)
	}
	var consumer struct{ Token string }
	json.NewDecoder(resp.Body).Decode(&consumer)
	resp.Body.Close()
	fmt.Println("ConsumerJWS:", resp.Status)

	req, err := http.NewRequest("POST", srv.URL()+"/api/account/"+srv.AccountID+"/messaging/consumer/conversation?v=3",
		strings.NewReader(`[
			{"kind":"req","id":"1","type":"userprofile.SetUserProfile","body":{}},
			{"kind":"req","id":"2","type":"cm.ConsumerRequestConversation","body":{"brandId":"`+srv.AccountID+`"}}
		]`))
	if err != nil {
		log.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-LP-ON-BEHALF", consumer.Token)
	resp, err = client.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	var opened []struct {
		ReqID string
		Body  struct{ ConversationID string }
	}
	json.NewDecoder(resp.Body).Decode(&opened)
	resp.Body.Close()
	fmt.Println("CONVERSATION:", resp.Status)
	for _, r := range opened {
		if r.Body.ConversationID != "" {
			fmt.Println("request", r.ReqID, "opened a conversation")
		}
	}

	fmt.Println("AppJWTs fetched:", srv.Count(appjwttest.Sentinel))
	// Output:
	// ConsumerJWS: 201 Created
	// CONVERSATION: 200 OK
	// request 2 opened a conversation
	// AppJWTs fetched: 1
}

// RevokeTokens makes the AppJWT that a client holds go bad before it
// expires, as when LivePerson revokes it, so that a test can check how the
// code under test recovers. A token fetched afterwards works.
func ExampleServer_RevokeTokens() {
	srv := appjwttest.NewServer()
	defer srv.Close()
	cfg := appjwt.Config{AccountID: srv.AccountID, ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, DomainAPI: srv.Host()}
	ctx := srv.Context(context.Background())

	createConsumer := func(src oauth2.TokenSource) {
		client := &http.Client{Transport: &appjwt.Transport{Source: src, Base: srv.Client().Transport}}
		resp, err := client.Post(srv.URL()+"/api/account/"+srv.AccountID+"/consumer?v=1.0",
			"application/json", strings.NewReader(`{"ext_consumer_id":"john_doe_42"}`))
		if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			var e struct{ Body struct{ ErrorCode int } }
			json.NewDecoder(resp.Body).Decode(&e)
			fmt.Println(resp.Status, "errorCode", e.Body.ErrorCode)
			return
		}
		fmt.Println(resp.Status)
	}

	src := cfg.TokenSource(ctx)
	createConsumer(src)
	held, err := src.Token()
	if err != nil {
		log.Fatal(err)
	}

	srv.RevokeTokens()
	createConsumer(oauth2.StaticTokenSource(held)) // a source that keeps the revoked token
	createConsumer(src)                            // appjwt's source and Transport recover
	// Output:
	// 201 Created
	// 401 Unauthorized errorCode 40102
	// 201 Created
}

// The Connector API wants the raw AppJWT, so by default the stand-in
// rejects the "Authorization: Bearer <AppJWT>" that Config.BearerClient,
// like every golang.org/x/oauth2 client, sends. SetAcceptBearer lets it
// through, for code aimed at APIs that take it.
func ExampleServer_SetAcceptBearer() {
	srv := appjwttest.NewServer()
	defer srv.Close()
	cfg := appjwt.Config{AccountID: srv.AccountID, ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, DomainAPI: srv.Host()}
	client := cfg.BearerClient(srv.Context(context.Background()))

	for _, accept := range []bool{false, true} {
		srv.SetAcceptBearer(accept)
		resp, err := client.Post(srv.URL()+"/api/account/"+srv.AccountID+"/consumer?v=1.0",
			"application/json", strings.NewReader(`{"ext_consumer_id":"john_doe_42"}`))
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		fmt.Printf("SetAcceptBearer(%v): %s\n", accept, resp.Status)
	}
	// Output:
	// SetAcceptBearer(false): 401 Unauthorized
	// SetAcceptBearer(true): 201 Created
}
