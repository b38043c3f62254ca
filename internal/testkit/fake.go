package testkit

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// FakeLivePerson is LivePerson in memory, an http.RoundTripper for the
// client of the code under test: the Domain API at domain.test, Sentinel
// at sentinel.test, which answers after SentinelDelay, and an API at
// api.test that takes the tokens Sentinel issued, raw or Bearer, until
// they expire or are revoked. On testing/synctest's fake clock it runs
// hours of one-hour tokens in milliseconds.
type FakeLivePerson struct {
	// Set before the first request.
	SentinelDelay time.Duration // 2 s by NewFakeLivePerson
	Lifetime      time.Duration // of each token; an hour by NewFakeLivePerson

	mu          sync.Mutex
	down        func(now time.Time) bool // Sentinel answers 503
	hang        func(now time.Time) bool // Sentinel takes the request and answers nothing
	domainDown  bool
	revokeEvery bool                 // the API rejects every token
	issued      map[string]time.Time // token: its expiry
	revoked     map[string]bool
	counts      map[string]int // requests by host
}

// NewFakeLivePerson returns a LivePerson in memory that answers every
// request as it should.
func NewFakeLivePerson() *FakeLivePerson {
	never := func(time.Time) bool { return false }
	return &FakeLivePerson{
		SentinelDelay: 2 * time.Second,
		Lifetime:      time.Hour,
		down:          never,
		hang:          never,
		issued:        map[string]time.Time{},
		revoked:       map[string]bool{},
		counts:        map[string]int{},
	}
}

// SetDown makes Sentinel answer 503 whenever down says so.
func (f *FakeLivePerson) SetDown(down func(now time.Time) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

// SetHang makes Sentinel take a request and answer nothing whenever hang
// says so, until the request's context ends.
func (f *FakeLivePerson) SetHang(hang func(now time.Time) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hang = hang
}

// SetDomainDown makes the Domain API answer 503, or answer again.
func (f *FakeLivePerson) SetDomainDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.domainDown = down
}

// SetRevokeEvery makes the API reject every token, or stop doing so.
func (f *FakeLivePerson) SetRevokeEvery(revoke bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revokeEvery = revoke
}

// RevokeAll revokes every token issued so far.
func (f *FakeLivePerson) RevokeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for tok := range f.issued {
		f.revoked[tok] = true
	}
}

// Count returns how many requests host has received.
func (f *FakeLivePerson) Count(host string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[host]
}

// RoundTrip answers r as the host it names would.
func (f *FakeLivePerson) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	f.mu.Lock()
	f.counts[r.URL.Host]++
	domainDown, hang := f.domainDown, f.hang(time.Now())
	f.mu.Unlock()
	switch r.URL.Host {
	case "domain.test":
		if domainDown {
			return f.answer(r, http.StatusServiceUnavailable, "")
		}
		return f.answer(r, http.StatusOK, `{"baseURI":"sentinel.test"}`)
	case "sentinel.test":
		if hang {
			<-r.Context().Done()
			return nil, r.Context().Err()
		}
		select {
		case <-time.After(f.SentinelDelay):
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
		return f.token(r)
	case "api.test":
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		f.mu.Lock()
		exp, ok := f.issued[tok]
		ok = ok && !f.revokeEvery && !f.revoked[tok] && time.Now().Before(exp)
		f.mu.Unlock()
		if !ok {
			return f.answer(r, http.StatusUnauthorized, `{"kind":"resp","code":401,"body":{"errorCode":40102}}`)
		}
		return f.answer(r, http.StatusOK, "{}")
	}
	return nil, fmt.Errorf("FakeLivePerson: no host %s", r.URL.Host)
}

// token is Sentinel's answer: a JWT that lasts Lifetime, or a 503.
func (f *FakeLivePerson) token(r *http.Request) (*http.Response, error) {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down(now) {
		return f.answer(r, http.StatusServiceUnavailable, "")
	}
	exp := now.Add(f.Lifetime)
	tok := JWT(fmt.Sprintf(`{"iat":%d,"exp":%d,"jti":"%d"}`, now.Unix(), exp.Unix(), len(f.issued)))
	f.issued[tok] = exp
	return f.answer(r, http.StatusOK, `{"access_token":"`+tok+`","token_type":"Bearer"}`)
}

func (f *FakeLivePerson) answer(r *http.Request, status int, body string) (*http.Response, error) {
	h := http.Header{"Content-Type": {"application/json"}, "Date": {time.Now().UTC().Format(http.TimeFormat)}}
	return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
}
