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
// trusts its certificate. Here it does what a connector does for a new end
// consumer: it gets the consumer's ConsumerJWS, sets the consumer's profile
// and opens a conversation (CONVERSATION), sends a message and closes the
// conversation (SEND). The stand-in then tells what the conversation holds.
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

	api := srv.URL() + "/api/account/" + srv.AccountID + "/messaging/consumer/conversation"
	post := func(url, body string, answer any) string {
		req, err := http.NewRequest("POST", url, strings.NewReader(body))
		if err != nil {
			log.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-LP-ON-BEHALF", consumer.Token)
		resp, err := client.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		json.NewDecoder(resp.Body).Decode(answer)
		return resp.Status
	}

	var opened []struct {
		ReqID string
		Code  string
		Body  struct{ Msg, ConversationID string }
	}
	status := post(api+"?v=3", `[
		{"kind":"req","id":"1,","type":"userprofile.SetUserProfile","body":{}},
		{"kind":"req","id":"2,","type":"cm.ConsumerRequestConversation","body":{"brandId":"`+srv.AccountID+`","channelType":"MESSAGING"}}
	]`, &opened)
	fmt.Println("CONVERSATION:", status)
	if len(opened) != 2 {
		log.Fatal("no conversation")
	}
	fmt.Printf("  %s %s: %s\n", opened[0].ReqID, opened[0].Code, opened[0].Body.Msg)
	fmt.Printf("  %s %s: a conversationId\n", opened[1].ReqID, opened[1].Code)
	id := opened[1].Body.ConversationID

	var sent struct {
		Code string
		Body struct{ Sequence int }
	}
	status = post(api+"/send?v=3", `{"kind":"req","id":"3","type":"ms.PublishEvent",`+
		`"body":{"dialogId":"`+id+`","event":{"type":"ContentEvent","contentType":"text/plain","message":"hello"}}}`, &sent)
	fmt.Println("SEND a message:", status, sent.Code, "sequence", sent.Body.Sequence)
	status = post(api+"/send?v=3", `{"kind":"req","id":4,"type":"cm.UpdateConversationField",`+
		`"body":{"conversationId":"`+id+`","conversationField":{"field":"ConversationStateField","conversationState":"CLOSE"}}}`, &sent)
	fmt.Println("SEND a close:", status, sent.Code)

	conv, _ := srv.Conversation(id)
	fmt.Printf("the conversation: %s, %d event: %q\n", conv.State, len(conv.Events), conv.Events[0].Message)
	fmt.Println("AppJWTs fetched:", len(srv.Requests(appjwttest.Sentinel)))
	// Output:
	// ConsumerJWS: 201 Created
	// CONVERSATION: 200 OK
	//   1, OK: OK User Profile set successfully
	//   2, OK: a conversationId
	// SEND a message: 200 OK OK sequence 0
	// SEND a close: 200 OK OK
	// the conversation: CLOSE, 1 event: "hello"
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
// rejects the "Authorization: Bearer <AppJWT>" that a golang.org/x/oauth2
// client sends. AcceptBearer lets it through, for code aimed at APIs that
// take it.
func ExampleServer_acceptBearer() {
	for _, accept := range []bool{false, true} {
		srv := appjwttest.NewUnstartedServer()
		srv.AcceptBearer = accept
		srv.Start()
		cfg := appjwt.Config{AccountID: srv.AccountID, ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, DomainAPI: srv.Host()}
		ctx := srv.Context(context.Background())
		client := oauth2.NewClient(ctx, cfg.TokenSource(ctx))
		resp, err := client.Post(srv.URL()+"/api/account/"+srv.AccountID+"/consumer?v=1.0",
			"application/json", strings.NewReader(`{"ext_consumer_id":"john_doe_42"}`))
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		srv.Close()
		fmt.Printf("AcceptBearer %v: %s\n", accept, resp.Status)
	}
	// Output:
	// AcceptBearer false: 401 Unauthorized
	// AcceptBearer true: 201 Created
}
