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
	fmt.Fprintln(w, "   cfg.ResolveDomain: a lookup of its own, uncached, as appjwt -domain-only makes")
	host, err := cfg.ResolveDomain(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "   Sentinel is at %s\n\n", host)

	fmt.Fprintf(w, "2. Sentinel: POST https://%s/sentinel/api/account/%s/app/token?v=1.0&grant_type=client_credentials\n", host, cfg.AccountID)
	fmt.Fprintln(w, "   cfg.TokenSource looks the host up itself (one Domain API request, cached for an hour),")
	fmt.Fprintln(w, "   then sends client_id and client_secret in the form body")
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

	fmt.Fprintf(w, "Requests the stand-in got: Domain API %d (step 1, the token source, the idp), Sentinel %d, ConsumerJWS %d, CONVERSATION %d.\n",
		srv.Count(appjwttest.DomainAPI), srv.Count(appjwttest.Sentinel), srv.Count(appjwttest.Consumer), srv.Count(appjwttest.Conversation))
	fmt.Fprintln(w, "Done: the token is cached and will be refreshed in the background before it expires.")
	return nil
}

// demoConversation is step 5: a ConsumerJWS through consumerjws, and a
// conversation opened with the Send API through the chained client.
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
	api := fmt.Sprintf("%s/api/account/%s/messaging/consumer/conversation?v=3", srv.URL(), srv.AccountID)
	fmt.Fprintf(w, "   POST %s\n", api)
	fmt.Fprintln(w, "   through consumerjws.Transport over appjwt.Transport: \"X-LP-ON-BEHALF: <ConsumerJWS>\", \"Authorization: <AppJWT>\"")
	body := `[{"kind":"req","id":"1","type":"cm.ConsumerRequestConversation","body":{"brandId":"` + srv.AccountID + `"}}]`
	req, err := http.NewRequestWithContext(consumerjws.WithConsumer(ctx, consumer), http.MethodPost, api, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var opened []struct {
		Body struct{ ConversationID string }
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&opened) != nil || len(opened) == 0 || opened[0].Body.ConversationID == "" {
		return fmt.Errorf("appjwt demo: the Send API answered %s without a conversation", resp.Status)
	}
	fmt.Fprintf(w, "   %s: conversation %s opened\n\n", resp.Status, opened[0].Body.ConversationID)
	return nil
}

func indent(s string) string {
	return "   " + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n   ") + "\n"
}
