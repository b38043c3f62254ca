package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/lpconnect/appjwt"
	"github.com/lpconnect/appjwt/appjwttest"
	"github.com/lpconnect/appjwt/consumerjws"
	"golang.org/x/oauth2"
)

// demo runs the whole flow against an in-process LivePerson stand-in and
// tells what happens, step by step.
func demo(ctx context.Context, w io.Writer) error {
	srv := appjwttest.NewServer()
	defer srv.Close()
	ctx = srv.Context(ctx)
	cfg := appjwt.Config{AccountID: srv.AccountID, ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, DomainAPI: srv.Host()}

	fmt.Fprintf(w, "appjwt demo against a LivePerson stand-in at %s\n", srv.URL())
	fmt.Fprintf(w, "config: %+v\n\n", cfg)

	// Step 1 is a call of its own, what appjwt -domain-only does, so that
	// the lookup shows apart from the token request; the token source
	// looks the host up again, once, as the README says every source does.
	fmt.Fprintf(w, "1. Domain API: GET https://%s/api/account/%s/service/sentinel/baseURI.json?version=1.0\n", srv.Host(), cfg.AccountID)
	fmt.Fprintln(w, "   appjwt.LookupDomain: a lookup of its own, uncached, as appjwt -domain-only makes")
	host, err := appjwt.LookupDomain(ctx, cfg.DomainAPI, cfg.AccountID, "sentinel")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "   Sentinel is at %s\n\n", host)

	fmt.Fprintf(w, "2. Sentinel: POST https://%s/sentinel/api/account/%s/app/token?v=1.0\n", host, cfg.AccountID)
	fmt.Fprintln(w, "   cfg.TokenSource looks the host up itself (one Domain API request, cached for an hour),")
	fmt.Fprintln(w, "   then sends grant_type, client_id and client_secret in the form body")
	src := cfg.TokenSource(ctx)
	tok, err := src.Token()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "   AppJWT %s... (%d bytes), expires in %s\n\n", tok.AccessToken[:24], len(tok.AccessToken), time.Until(tok.Expiry).Round(time.Second))

	fmt.Fprintln(w, "3. Its claims (decoded, not verified):")
	var claims strings.Builder
	if err := printClaims(&claims, tok); err != nil {
		return err
	}
	fmt.Fprint(w, indent(claims.String()))
	fmt.Fprintln(w)

	consumer := fmt.Sprintf("%s/api/account/%s/consumer?v=1.0", srv.URL(), cfg.AccountID)
	fmt.Fprintf(w, "4. Connector API: POST %s\n", consumer)
	fmt.Fprintln(w, "   through appjwt.Transport, which sends \"Authorization: <AppJWT>\"")
	client := &http.Client{Transport: &appjwt.Transport{Source: src, Base: srv.Client().Transport}}
	resp, err := client.Post(consumer, "application/json", strings.NewReader(`{"ext_consumer_id":"appjwt-demo"}`))
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("appjwt demo: the Connector API answered %s: %s", resp.Status, body)
	}
	fmt.Fprintf(w, "   %s: a ConsumerJWS for the conversation (%d bytes)\n\n", resp.Status, len(body))

	if err := demoConversation(ctx, w, srv, src); err != nil {
		return err
	}
	if err := demoV2(ctx, w, srv, cfg); err != nil {
		return err
	}

	fmt.Fprintf(w, "Requests the stand-in got: Domain API %d (step 1, the token source, the idp, the v2 client), Sentinel %d, ConsumerJWS %d, CONVERSATION %d, SEND %d, Sentinel v2 %d, v2 API %d.\n",
		len(srv.Requests(appjwttest.DomainAPI)), len(srv.Requests(appjwttest.Sentinel)), len(srv.Requests(appjwttest.Consumer)), len(srv.Requests(appjwttest.Conversation)), len(srv.Requests(appjwttest.Send)),
		len(srv.Requests(appjwttest.SentinelV2Token)), len(srv.Requests(appjwttest.V2API)))
	fmt.Fprintln(w, "Done: the token is cached and will be refreshed in the background before it expires.")
	return nil
}

// demoConversation is steps 5 and 6: a ConsumerJWS through consumerjws, a
// conversation opened with the Send API's CONVERSATION through the chained
// client, a message sent in it and the conversation closed with SEND.
func demoConversation(ctx context.Context, w io.Writer, srv *appjwttest.Server, src oauth2.TokenSource) error {
	const consumer = "appjwt-demo"
	fmt.Fprintln(w, "5. Send API on behalf of a consumer, through consumerjws:")
	cache := (&consumerjws.Config{AccountID: srv.AccountID, DomainAPI: srv.Host(), Source: src}).NewCache(ctx)
	jws, err := cache.Token(ctx, consumer)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "   cache.Token: the idp host from the Domain API (service \"idp\"), then a ConsumerJWS (%d bytes), cached\n", len(jws))
	client := &http.Client{Transport: &consumerjws.Transport{
		Cache: cache,
		Base:  &appjwt.Transport{Source: src, Base: srv.Client().Transport},
	}}
	api := fmt.Sprintf("%s/api/account/%s/messaging/consumer/conversation", srv.URL(), srv.AccountID)
	fmt.Fprintf(w, "   CONVERSATION: POST %s?v=3\n", api)
	fmt.Fprintln(w, "   through consumerjws.Transport over appjwt.Transport: \"X-LP-ON-BEHALF: <ConsumerJWS>\", \"Authorization: <AppJWT>\"")
	fmt.Fprintln(w, "   two requests, in this order: the consumer's profile (mandatory), then the conversation")
	body := `[{"kind":"req","id":"1,","type":"userprofile.SetUserProfile",` +
		`"body":{"authenticatedData":{"lp_sdes":[{"type":"personal","personal":{"firstname":"Demo"}}]}}},` +
		`{"kind":"req","id":"2,","type":"cm.ConsumerRequestConversation","body":{"brandId":"` + srv.AccountID + `","channelType":"MESSAGING"}}]`
	var opened []struct {
		ReqID string
		Code  string
		Body  struct{ Msg, ConversationID string }
	}
	status, err := demoPost(ctx, client, consumer, api+"?v=3", body, &opened)
	if err != nil {
		return err
	}
	if len(opened) != 2 || opened[1].Body.ConversationID == "" {
		return fmt.Errorf("appjwt demo: the Send API answered %s without a conversation", status)
	}
	id := opened[1].Body.ConversationID
	fmt.Fprintf(w, "   %s:\n", status)
	fmt.Fprintf(w, "     %s userprofile.SetUserProfile: code %q, %q\n", opened[0].ReqID, opened[0].Code, opened[0].Body.Msg)
	fmt.Fprintf(w, "     %s cm.ConsumerRequestConversation: code %q, conversation %s opened\n\n", opened[1].ReqID, opened[1].Code, id)

	fmt.Fprintf(w, "6. SEND: POST %s/send?v=3, one request at a time\n", api)
	var sent struct {
		Code string
		Body struct{ Sequence int }
	}
	message := `{"kind":"req","id":"3","type":"ms.PublishEvent","body":{"dialogId":"` + id +
		`","event":{"type":"ContentEvent","contentType":"text/plain","message":"hello from the appjwt demo"}}}`
	if status, err = demoPost(ctx, client, consumer, api+"/send?v=3", message, &sent); err != nil {
		return err
	}
	fmt.Fprintf(w, "   ms.PublishEvent, a ContentEvent: %s, code %q, sequence %d in the conversation\n", status, sent.Code, sent.Body.Sequence)
	closing := `{"kind":"req","id":"4","type":"cm.UpdateConversationField","body":{"conversationId":"` + id +
		`","conversationField":{"field":"ConversationStateField","conversationState":"CLOSE"}}}`
	if status, err = demoPost(ctx, client, consumer, api+"/send?v=3", closing, &sent); err != nil {
		return err
	}
	conv, _ := srv.Conversation(id)
	fmt.Fprintf(w, "   cm.UpdateConversationField, ConversationStateField CLOSE: %s, code %q; the stand-in has it %s\n\n", status, sent.Code, conv.State)
	return nil
}

// demoV2 is step 7: a token of Sentinel's v2 API, for LivePerson's APIs
// other than the Connector API, through Config.Client, which sends it as
// Bearer, to the stand-in's v2 API.
func demoV2(ctx context.Context, w io.Writer, srv *appjwttest.Server, cfg appjwt.Config) error {
	cfg.TokenAPI = appjwt.SentinelV2
	api := srv.URL() + strings.Replace(appjwttest.V2APIPath, "{account}", srv.AccountID, 1)
	fmt.Fprintf(w, "7. Sentinel's v2 API, for LivePerson's other APIs: POST https://%s/sentinel/api/v2/account/%s/app/token\n", srv.Host(), cfg.AccountID)
	fmt.Fprintln(w, "   cfg.TokenAPI = appjwt.SentinelV2: cfg.Client sends \"Authorization: Bearer <token>\"")
	resp, err := cfg.Client(ctx).Get(api)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("appjwt demo: the v2 API answered %s", resp.Status)
	}
	fmt.Fprintf(w, "   GET %s, the stand-in's v2 API: %s\n\n", api, resp.Status)
	return nil
}

// demoPost posts body on behalf of consumer and decodes a 200's answer
// into answer; it returns the status, or an error for any other.
func demoPost(ctx context.Context, client *http.Client, consumer, url, body string, answer any) (string, error) {
	req, err := http.NewRequestWithContext(consumerjws.WithConsumer(ctx, consumer), http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, answer) != nil {
		return "", fmt.Errorf("appjwt demo: the Send API answered %s: %s", resp.Status, b)
	}
	return resp.Status, nil
}

func indent(s string) string {
	return "   " + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n   ") + "\n"
}
