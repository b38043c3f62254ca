package brands_test

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/lpconnect/appjwt"
	"github.com/lpconnect/appjwt/brands"
	"github.com/lpconnect/appjwt/internal/testkit"
	"github.com/lpconnect/appjwt/secret"
	"github.com/lpconnect/appjwt/webhook"
	"golang.org/x/oauth2"
)

// static is LivePerson at no cost and with no memory of its own: the
// Domain API and Sentinel answer the same, Sentinel a token that lasts an
// hour from when static was made, and any other host 204.
func static() http.RoundTripper {
	now := time.Now()
	tok := testkit.JWT(fmt.Sprintf(`{"iat":%d,"exp":%d}`, now.Unix(), now.Add(time.Hour).Unix()))
	return testkit.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
		switch r.URL.Host {
		case "domain.test":
			return answer(r, http.StatusOK, `{"baseURI":"sentinel.test"}`)
		case "sentinel.test":
			return answer(r, http.StatusOK, `{"access_token":"`+tok+`","token_type":"Bearer"}`)
		}
		return &http.Response{StatusCode: http.StatusNoContent, Body: http.NoBody, Request: r}, nil
	})
}

// BenchmarkRouting is the cost of taking a request's brand from its URL,
// beside appjwt.Transport alone over the same token source and base: the
// setting of BenchmarkTransportOverhead, with 10,000 brands held.
func BenchmarkRouting(b *testing.B) {
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: static()})
	k, err := brands.Config{Lookup: fleetLookup}.NewCache(ctx)
	if err != nil {
		b.Fatal(err)
	}
	const n = 10000
	client := k.Client()
	for i := range n {
		if _, err := client.Get(fmt.Sprintf("https://api.test/api/account/%d/x", 10000+i)); err != nil {
			b.Fatal(err)
		}
	}
	conf := appjwt.Config{AccountID: "10000", ClientID: "c", ClientSecret: "s", DomainAPI: "domain.test"}
	src := conf.TokenSource(ctx)
	if _, err := src.Token(); err != nil {
		b.Fatal(err)
	}
	for _, tr := range []struct {
		name string
		rt   http.RoundTripper
	}{
		{"appjwt.Transport", &appjwt.Transport{Source: src, Base: static()}},
		{"brands", client.Transport},
	} {
		b.Run(tr.name, func(b *testing.B) {
			req, _ := http.NewRequest("GET", "https://api.test/api/account/15000/messaging/consumer/conversation/send", nil)
			req.Header.Set("Content-Type", "application/json")
			b.ReportAllocs()
			for b.Loop() {
				tr.rt.RoundTrip(req)
			}
		})
	}
}

// BenchmarkBrandMemory reports the heap a brand holds, with 10,000 held:
// idle, looked up and never used for a request; and active, with an
// AppJWT, its Send API host and one request sent.
func BenchmarkBrandMemory(b *testing.B) {
	for _, active := range []bool{false, true} {
		b.Run(map[bool]string{false: "idle", true: "active"}[active], func(b *testing.B) {
			const n = 10000
			var perBrand float64
			for b.Loop() {
				ctx, cancel := context.WithCancel(context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: static()}))
				lookup := func(_ context.Context, account string) (brands.Installation, error) {
					return brands.Installation{ClientID: "client", ClientSecret: secret.String("secret"), DomainAPI: "domain.test"}, nil
				}
				before := heap()
				k, err := brands.Config{Lookup: lookup}.NewCache(ctx)
				if err != nil {
					b.Fatal(err)
				}
				client := k.Client()
				for i := range n {
					account := fmt.Sprint(10000 + i)
					if _, err := k.SendAPIHost(ctx, account); err != nil && !active {
						b.Fatal(err)
					}
					if !active {
						continue
					}
					resp, err := client.Get("https://api.test/api/account/" + account + "/x")
					if err != nil {
						b.Fatal(err)
					}
					resp.Body.Close()
				}
				perBrand = float64(heap()-before) / n
				runtime.KeepAlive(k)
				cancel()
			}
			b.ReportMetric(perBrand, "B/brand")
		})
	}
}

// heap is the live heap, once the cleanups of what is unreachable have
// run (a token source's holds its cache until then).
func heap() int64 {
	for range 3 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// BenchmarkVerify is a webhook's verification for a brand the Cache
// holds: webhook.Verify's cost and no more, nothing allocated.
func BenchmarkVerify(b *testing.B) {
	k, err := brands.Config{Lookup: fleetLookup}.NewCache(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	v, err := k.NewVerifier(webhook.Config{})
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"kind":"notification"}`)
	h := http.Header{webhook.HeaderAccountID: {"le1111"}, webhook.HeaderClientID: {"client-le1111"}, webhook.HeaderSignature: {webhook.Sign("secret-le1111", body)}}
	if err := v.Verify(h, body); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		v.Verify(h, body)
	}
}
