package brands

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lpconnect/appjwt"
	"github.com/lpconnect/appjwt/consumerjws"
	"github.com/lpconnect/appjwt/internal/domain"
	"github.com/lpconnect/appjwt/internal/lifecycle"
	"github.com/lpconnect/appjwt/internal/lphttp"
	"github.com/lpconnect/appjwt/secret"
	"golang.org/x/oauth2"
)

// relookupFloor is the least time between two lookups of a held brand
// that Sentinel's invalid_client asks for, and between a failed re-lookup
// and the next.
const relookupFloor = time.Minute

// sendAPIService is the Domain API's name for the Send API.
const sendAPIService = "asyncMessagingEnt"

// brand is one account's installation and everything made of it. Its
// context ends when it is dropped, which stops its token source, its
// ConsumerJWS fetches and its lookups.
type brand struct {
	account  string
	c        *Cache
	ctx      context.Context
	cancel   context.CancelFunc
	lastUsed atomic.Int64 // unix nanoseconds
	dueAt    atomic.Int64 // unix nanoseconds: the next re-lookup; max while one runs

	inst  atomic.Pointer[Installation] // the last good lookup
	cur   atomic.Pointer[creds]        // the token side
	hosts atomic.Pointer[domain.Cache] // the Send API host, for inst's DomainAPI

	mu         sync.Mutex
	lookedUpAt time.Time                   // of inst
	lookupErr  error                       // the last re-lookup's, nil after a good one
	retryAt    time.Time                   // no re-lookup before
	relookup   *lifecycle.Flight[struct{}] // running, or nil
	forcedAt   time.Time                   // when invalid_client last started one
	refused    map[secret.String]struct{}  // the secrets of inst Sentinel refused
}

// creds is the token side of a brand for one client secret: its AppJWT
// source, and a ConsumerJWS cache over it, whose failures, remembered per
// consumer, go with the secret that caused them.
type creds struct {
	secret   secret.String
	src      *appjwt.Source
	appJWT   http.RoundTripper // appjwt.Transport over src
	consumer http.RoundTripper // consumerjws.Transport over appJWT
	cancel   context.CancelFunc
}

// newBrand makes account's brand of inst, used at now. c.mu must be held.
func (c *Cache) newBrand(account string, inst Installation, now time.Time) *brand {
	ctx, cancel := context.WithCancel(c.fetchCtx)
	b := &brand{account: account, c: c, ctx: ctx, cancel: cancel, lookedUpAt: now}
	b.lastUsed.Store(now.UnixNano())
	b.dueAt.Store(now.Add(c.conf.LookupTTL).UnixNano())
	b.inst.Store(&inst)
	b.hosts.Store(b.hostCache(inst))
	b.cur.Store(b.creds(inst, inst.ClientSecret))
	return b
}

func (b *brand) hostCache(inst Installation) *domain.Cache {
	return &domain.Cache{API: inst.DomainAPI, Account: b.account, Service: sendAPIService}
}

// creds makes the token side of inst with secret s.
func (b *brand) creds(inst Installation, s secret.String) *creds {
	ctx, cancel := context.WithCancel(b.ctx)
	st := b.c.conf.Store
	conf := appjwt.Config{AccountID: b.account, ClientID: inst.ClientID, ClientSecret: s, DomainAPI: inst.DomainAPI, Logger: b.c.conf.Logger, Store: st}
	src := conf.TokenSource(ctx)
	jws := consumerjws.Config{AccountID: b.account, DomainAPI: inst.DomainAPI, Source: src, Logger: b.c.conf.Logger, Store: st, ClientSecret: s}
	t := &appjwt.Transport{Source: src, Base: b.c.base}
	return &creds{secret: s, src: src, appJWT: t, consumer: &consumerjws.Transport{Cache: jws.NewCache(ctx), Base: t}, cancel: cancel}
}

// used notes a use at now.
func (b *brand) used(now time.Time) {
	ns := now.UnixNano()
	b.lastUsed.Store(ns)
	if ns >= b.dueAt.Load() {
		b.lookUpAgain()
	}
}

// stop stops everything the brand started.
func (b *brand) stop() { b.cancel() }

// lookUpAgain starts a lookup of the held brand, unless one runs, and
// returns it.
func (b *brand) lookUpAgain() *lifecycle.Flight[struct{}] {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.relookup != nil {
		return b.relookup
	}
	return b.startRelookupLocked()
}

// startRelookupLocked starts a lookup of the held brand; none runs, and
// b.mu is held.
func (b *brand) startRelookupLocked() *lifecycle.Flight[struct{}] {
	f := lifecycle.NewFlight[struct{}]()
	b.relookup = f
	b.dueAt.Store(math.MaxInt64)
	go b.runRelookup(f)
	return f
}

func (b *brand) runRelookup(f *lifecycle.Flight[struct{}]) {
	inst, err := b.c.find(b.ctx, b.account, false)
	now := time.Now()
	if errors.Is(err, ErrUnknownBrand) {
		b.c.drop(b, err)
	}
	b.mu.Lock()
	b.relookup = nil
	b.lookupErr = err
	if err != nil {
		b.retryAt = now.Add(relookupFloor)
		b.dueAt.Store(b.retryAt.UnixNano())
	} else {
		b.lookedUpAt, b.retryAt = now, time.Time{}
		b.dueAt.Store(now.Add(b.c.conf.LookupTTL).UnixNano())
		b.update(inst)
	}
	b.mu.Unlock()
	f.End(struct{}{}, err)
}

// update takes a new lookup's installation: if its credentials changed,
// the token side moves to them. b.mu must be held.
func (b *brand) update(inst Installation) {
	old := b.inst.Swap(&inst)
	if old.DomainAPI != inst.DomainAPI {
		b.hosts.Store(b.hostCache(inst))
	}
	if *old == inst {
		return
	}
	b.refused = nil
	cur := b.cur.Load()
	if cur.secret == inst.ClientSecret && old.ClientID == inst.ClientID && old.DomainAPI == inst.DomainAPI {
		return
	}
	b.cur.Store(b.creds(inst, inst.ClientSecret))
	cur.cancel()
}

// rotate moves the token side away from cr, whose secret Sentinel refused
// with invalid_client: to the installation's other live secret, if
// Sentinel has not refused it too, or else to what a new lookup finds,
// at most once per relookupFloor. It reports whether the token side is
// no longer cr.
func (b *brand) rotate(ctx context.Context, cr *creds) bool {
	b.mu.Lock()
	if b.cur.Load() != cr {
		b.mu.Unlock()
		return true
	}
	if b.refused == nil {
		b.refused = map[secret.String]struct{}{}
	}
	b.refused[cr.secret] = struct{}{}
	inst := b.inst.Load()
	for _, s := range []secret.String{inst.ClientSecret, inst.PreviousSecret} {
		if _, no := b.refused[s]; !no && s != "" {
			b.cur.Store(b.creds(*inst, s))
			b.mu.Unlock()
			cr.cancel()
			return true
		}
	}
	f := b.relookup
	if now := time.Now(); f == nil && now.Sub(b.forcedAt) >= relookupFloor && !now.Before(b.retryAt) {
		b.forcedAt = now
		f = b.startRelookupLocked()
	}
	b.mu.Unlock()
	if f == nil {
		return false
	}
	f.Wait(ctx, "")
	return b.cur.Load() != cr
}

// invalidClient reports whether err is Sentinel's refusal of the client
// credentials.
func invalidClient(err error) bool {
	var re *oauth2.RetrieveError
	return errors.As(err, &re) && re.ErrorCode == "invalid_client"
}

// sendAPIHost returns the brand's Send API host.
func (b *brand) sendAPIHost(ctx context.Context) (string, error) {
	a, err := b.hosts.Load().Host(context.WithValue(ctx, oauth2.HTTPClient, b.c.fetchClient), lphttp.Default)
	if err != nil {
		return "", fmt.Errorf("brands: Send API host of account %s: %w", b.account, err)
	}
	return a.Host, nil
}
