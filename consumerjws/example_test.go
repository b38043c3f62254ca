package consumerjws_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"strings"

	"github.com/lpconnect/appjwt"
	"github.com/lpconnect/appjwt/appjwttest"
	"github.com/lpconnect/appjwt/consumerjws"
)

// A connector sends a message for each of two consumers through one
// client: it opens a conversation (CONVERSATION), then publishes a message
// in it (SEND). The client gets each consumer's ConsumerJWS once, and the
// AppJWT once for all.
func Example() {
	srv := appjwttest.NewServer()
	defer srv.Close()
	ctx := srv.Context(context.Background()) // in production: context.Background()

	app := appjwt.Config{
		AccountID:    srv.AccountID,
		ClientID:     srv.ClientID,
		ClientSecret: srv.ClientSecret,
		DomainAPI:    srv.Host(), // in production: left empty
	}
	appJWTs := app.TokenSource(ctx)
	cfg := consumerjws.Config{AccountID: srv.AccountID, DomainAPI: srv.Host(), Source: appJWTs}
	client := &http.Client{Transport: &consumerjws.Transport{
		Cache: cfg.NewCache(ctx),
		Base:  &appjwt.Transport{Source: appJWTs, Base: srv.Client().Transport}, // Base: nil in production
	}}

	// The Send API's host comes from the Domain API, service
	// "asyncMessagingEnt": here it is the stand-in.
	api := srv.URL() + "/api/account/" + srv.AccountID + "/messaging/consumer/conversation"
	post := func(consumer, url, body string, answer any) {
		req, err := http.NewRequestWithContext(consumerjws.WithConsumer(ctx, consumer), "POST", url, strings.NewReader(body))
		if err != nil {
			log.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			log.Fatal(resp.Status)
		}
		json.NewDecoder(resp.Body).Decode(answer)
	}

	for _, consumer := range []string{"john_doe_42", "jane_roe_7"} {
		var opened []struct {
			Body struct{ ConversationID string }
		}
		post(consumer, api+"?v=3", `[{"kind":"req","id":"1,","type":"userprofile.SetUserProfile","body":{}},`+
			`{"kind":"req","id":"2,","type":"cm.ConsumerRequestConversation","body":{"brandId":"`+srv.AccountID+`","channelType":"MESSAGING"}}]`, &opened)
		var sent any
		post(consumer, api+"/send?v=3", `{"kind":"req","id":"3","type":"ms.PublishEvent","body":{"dialogId":"`+opened[len(opened)-1].Body.ConversationID+`","event":{"type":"ContentEvent","contentType":"text/plain","message":"hello"}}}`, &sent)
		fmt.Println(consumer + ": sent")
	}
	fmt.Println("AppJWTs:", len(srv.Requests(appjwttest.Sentinel)), "ConsumerJWS:", len(srv.Requests(appjwttest.Consumer)))
	// Output:
	// john_doe_42: sent
	// jane_roe_7: sent
	// AppJWTs: 1 ConsumerJWS: 2
}
