package brands_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/lpconnect/appjwt/appjwttest"
	"github.com/lpconnect/appjwt/brands"
	"github.com/lpconnect/appjwt/consumerjws"
	"github.com/lpconnect/appjwt/webhook"
)

// A connector serving two brands, each with its own stand-in: one client
// sends each brand's requests with that brand's AppJWT and ConsumerJWS,
// and one Verifier checks each brand's webhooks with its own secret.
func Example() {
	// Two brands, each with its own installation. In production, Lookup
	// reads them from the environment or a secret manager.
	installs := map[string]brands.Installation{}
	var ctx context.Context
	for _, account := range []string{"le1111", "le2222"} {
		srv := appjwttest.NewUnstartedServer()
		srv.AccountID, srv.ClientID = account, "app-"+account
		srv.Start()
		defer srv.Close()
		ctx = srv.Context(context.Background()) // a client that trusts the stand-ins
		installs[account] = brands.Installation{ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, DomainAPI: srv.Host()}
	}
	lookup := func(_ context.Context, account string) (brands.Installation, error) {
		inst, ok := installs[account]
		if !ok {
			return brands.Installation{}, brands.ErrUnknownBrand
		}
		return inst, nil
	}
	cache, err := brands.Config{Lookup: lookup}.NewCache(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	client := cache.Client()

	for _, account := range []string{"le1111", "le2222", "le9999"} {
		host, err := cache.SendAPIHost(ctx, account)
		if err != nil {
			fmt.Println(account+":", err)
			continue
		}
		body := `[{"kind":"req","id":"1,","type":"userprofile.SetUserProfile","body":{}},` +
			`{"kind":"req","id":"2,","type":"cm.ConsumerRequestConversation","body":{"brandId":"` + account + `","channelType":"MESSAGING"}}]`
		req, _ := http.NewRequestWithContext(consumerjws.WithConsumer(ctx, "john_doe_42"), "POST",
			"https://"+host+"/api/account/"+account+"/messaging/consumer/conversation?v=3", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			fmt.Println(account+":", err)
			continue
		}
		resp.Body.Close()
		fmt.Println(account+": conversation:", resp.Status)
	}

	verifier, err := cache.NewVerifier(webhook.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	notification := []byte(`{"kind":"notification","body":{"changes":[]}}`)
	for _, tt := range []struct{ account, signedWith string }{{"le1111", "le1111"}, {"le2222", "le2222"}, {"le2222", "le1111"}} {
		h := http.Header{
			webhook.HeaderAccountID: {tt.account},
			webhook.HeaderClientID:  {"app-" + tt.account},
			webhook.HeaderSignature: {webhook.Sign(installs[tt.signedWith].ClientSecret, notification)},
		}
		fmt.Printf("webhook for %s signed with %s's secret: %v\n", tt.account, tt.signedWith, verifier.Verify(h, notification))
	}
	// Output:
	// le1111: conversation: 200 OK
	// le2222: conversation: 200 OK
	// le9999: brands: account le9999 is no brand of this connector
	// webhook for le1111 signed with le1111's secret: <nil>
	// webhook for le2222 signed with le2222's secret: <nil>
	// webhook for le2222 signed with le1111's secret: webhook: X-Liveperson-Signature does not match the body
}
