package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// With -domain-api-http, the Domain API answers over plain http too, as
// LivePerson's demo app and Functions client ask it, naming the https host
// of every service.
func TestDomainAPIOverHTTP(t *testing.T) {
	b, stop := runInProcess(t, "-domain-api-http", "127.0.0.1:0")
	base := b["domain-api-http"]
	if !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Fatalf("banner domain-api-http %q, want an http URL on 127.0.0.1", base)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	resp, err := client.Get(base + "/api/account/" + b["account"] + "/service/baseURI.json?version=1.0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		BaseURIs []struct{ Service, Account, BaseURI string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("status %s, decoding: %v", resp.Status, err)
	}
	u, _ := url.Parse(b["url"])
	for _, s := range got.BaseURIs {
		if s.Account != b["account"] || s.BaseURI != u.Host {
			t.Errorf("service %+v, want account %s and the https host %s", s, b["account"], u.Host)
		}
	}
	if len(got.BaseURIs) != 3 {
		t.Errorf("%d services, want 3: sentinel, asyncMessagingEnt and idp", len(got.BaseURIs))
	}
	if code, _ := stop(); code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
}

// Without -domain-api-http, nothing is served over http, and the banner
// says nothing of it.
func TestNoDomainAPIOverHTTPByDefault(t *testing.T) {
	b, _ := runInProcess(t)
	if v, ok := b["domain-api-http"]; ok {
		t.Errorf("banner domain-api-http %q, want none", v)
	}
}

// -domain-api-http is held to -addr's rule: loopback only, as a usage error.
func TestDomainAPIOverHTTPBadAddress(t *testing.T) {
	for _, addr := range []string{"nowhere", "0.0.0.0:0", "[::%lo]:0"} {
		var stderr strings.Builder
		if code := run(t.Context(), []string{"-domain-api-http", addr}, &strings.Builder{}, &stderr); code != 2 || !strings.Contains(stderr.String(), "-domain-api-http") {
			t.Errorf("-domain-api-http %s: exit %d, stderr %q; want 2 and the flag named", addr, code, stderr.String())
		}
	}
}
