package fleet_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lpconnect/appjwt"
	"github.com/lpconnect/appjwt/consumerjws"
	"github.com/lpconnect/appjwt/internal/fleettest"
	"github.com/lpconnect/appjwt/internal/testkit"
	"github.com/lpconnect/appjwt/secret"
	"github.com/lpconnect/appjwt/store"
)

// newLivePerson returns LivePerson on a fake clock: Sentinel's 2 s, and
// the idp's 200 ms.
func newLivePerson() *fleettest.LivePerson {
	lp := fleettest.NewLivePerson()
	lp.IdpDelay = 200 * time.Millisecond
	return lp
}

// spy is a store.Store over another that keeps every key and value it was
// given, and counts its calls.
type spy struct {
	store.Store

	mu     sync.Mutex
	keys   map[string]bool
	values [][]byte
	calls  int
}

func newSpy(st store.Store) *spy { return &spy{Store: st, keys: map[string]bool{}} }

func (s *spy) note(key string, value []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	s.keys[key] = true
	if value != nil {
		s.values = append(s.values, value)
	}
}

func (s *spy) Get(ctx context.Context, key string) ([]byte, bool, error) {
	s.note(key, nil)
	return s.Store.Get(ctx, key)
}

func (s *spy) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	s.note(key, value)
	return s.Store.Set(ctx, key, value, ttl)
}

func (s *spy) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	s.note(key, value)
	return s.Store.Add(ctx, key, value, ttl)
}

func (s *spy) Delete(ctx context.Context, key string, value []byte) (bool, error) {
	s.note(key, value)
	return s.Store.Delete(ctx, key, value)
}

func (s *spy) callCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// broken is a store that fails every call at once, or, if hang, once its
// context ends.
type broken struct{ hang bool }

func (b broken) fail(ctx context.Context) error {
	if b.hang {
		<-ctx.Done()
		return ctx.Err()
	}
	return errors.New("store down")
}

func (b broken) Get(ctx context.Context, _ string) ([]byte, bool, error) {
	return nil, false, b.fail(ctx)
}
func (b broken) Set(ctx context.Context, _ string, _ []byte, _ time.Duration) error {
	return b.fail(ctx)
}
func (b broken) Add(ctx context.Context, _ string, _ []byte, _ time.Duration) (bool, error) {
	return false, b.fail(ctx)
}
func (b broken) Delete(ctx context.Context, _ string, _ []byte) (bool, error) {
	return false, b.fail(ctx)
}

func brandConfig(b int, st store.Store) appjwt.Config {
	return appjwt.Config{
		AccountID:    fmt.Sprint(90000000 + b),
		ClientID:     fmt.Sprintf("client-%d", b),
		ClientSecret: secret.String(fmt.Sprintf("secret-of-brand-%d", b)),
		Domain:       "sentinel.test",
		Store:        st,
	}
}

// runBrands runs replicas replicas of a connector for brands brands over
// 3 hours, each replica's source of each brand asked for a token every
// minute, and returns the Sentinel requests, the tokens served, and the
// errors.
func runBrands(t *testing.T, lp *fleettest.LivePerson, replicas, brands int, st store.Store) (requests int, served map[string]bool, errs []error) {
	ctx, cancel := context.WithCancel(lp.Context(context.Background()))
	defer cancel()
	srcs := make([]*appjwt.Source, 0, replicas*brands)
	for range replicas {
		for b := range brands {
			c := brandConfig(b, st)
			srcs = append(srcs, c.TokenSource(ctx))
		}
	}
	served = map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, src := range srcs {
		wg.Go(func() {
			for range 180 {
				tok, err := src.Token()
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					served[tok.AccessToken] = true
				}
				mu.Unlock()
				time.Sleep(time.Minute)
			}
		})
	}
	wg.Wait()
	return lp.Count("sentinel.test"), served, errs
}

// N replicas over one store cost Sentinel what one replica costs: one
// request per brand per refresh, whatever N; Token asks the store nothing.
func TestSentinelLoad(t *testing.T) {
	const brands = 100
	for _, replicas := range []int{1, 4, 16} {
		t.Run(fmt.Sprint(replicas), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				lp := newLivePerson()
				st := newSpy(store.NewMemory(0))
				requests, _, errs := runBrands(t, lp, replicas, brands, st)
				if len(errs) > 0 {
					t.Fatalf("%d Token calls failed, the first: %v", len(errs), errs[0])
				}
				// One-hour tokens refreshed after 49 to 55 minutes: 4
				// fetches per brand in 3 hours, at 0, ~50, ~100, ~150.
				if want := brands * 4; requests != want {
					t.Errorf("%d replicas x %d brands over 3 h: %d Sentinel requests, want %d, one replica's", replicas, brands, requests, want)
				}
				t.Logf("%d replicas x %d brands over 3 h: %d Sentinel requests (%.2f per brand per token lifetime), %d store calls", replicas, brands, requests, float64(requests)/brands/3, st.callCount())
			})
		})
	}
}

// A store that fails, or hangs until its context ends, leaves each
// replica on its own: no Token call fails, and Sentinel's load is at most
// what it is without a store.
func TestFailingStore(t *testing.T) {
	const replicas, brands = 4, 10
	var alone int
	synctest.Test(t, func(t *testing.T) {
		alone, _, _ = runBrands(t, newLivePerson(), replicas, brands, nil)
	})
	for name, st := range map[string]store.Store{"failing": broken{}, "hanging": broken{hang: true}} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				requests, _, errs := runBrands(t, newLivePerson(), replicas, brands, st)
				if len(errs) > 0 {
					t.Fatalf("%d Token calls failed, the first: %v", len(errs), errs[0])
				}
				if requests > alone {
					t.Errorf("%d Sentinel requests with a %s store, want at most %d, as without one", requests, name, alone)
				}
			})
		})
	}
}

// N replicas over 1,000 consumers cost the idp 1,000 requests, one per
// consumer.
func TestIdpLoad(t *testing.T) {
	const consumers = 1000
	for _, replicas := range []int{1, 4, 16} {
		t.Run(fmt.Sprint(replicas), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				lp := newLivePerson()
				st := store.NewMemory(0)
				ctx, cancel := context.WithCancel(lp.Context(context.Background()))
				defer cancel()
				var wg sync.WaitGroup
				var mu sync.Mutex
				var errs []error
				for r := range replicas {
					c := brandConfig(1, st)
					jws := consumerjws.Config{AccountID: c.AccountID, Domain: "idp.test", Source: c.TokenSource(ctx), Store: st, ClientSecret: c.ClientSecret}
					cache := jws.NewCache(ctx)
					wg.Go(func() {
						for i := range consumers {
							id := fmt.Sprintf("consumer-%d", (i+r*consumers/replicas)%consumers)
							if _, err := cache.Token(ctx, id); err != nil {
								mu.Lock()
								errs = append(errs, err)
								mu.Unlock()
							}
						}
					})
				}
				wg.Wait()
				if len(errs) > 0 {
					t.Fatalf("%d Token calls failed, the first: %v", len(errs), errs[0])
				}
				if requests, n := lp.IdpCount(); requests != consumers || n != consumers {
					t.Errorf("%d replicas over %d consumers: %d idp requests for %d consumers, want %d", replicas, consumers, requests, n, consumers)
				}
				if n := lp.Count("sentinel.test"); n != 1 {
					t.Errorf("%d Sentinel requests, want 1", n)
				}
			})
		})
	}
}

// A token the API rejects (40102) on one replica is dropped for all: the
// replica that got the 401 fetches one token, which the others, on their
// 401, and a replica started later take from the store.
func TestRejectionDropsForAll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fleettest.RejectionDropsForAll(t, newLivePerson(), brandConfig(1, store.NewMemory(0)), synctest.Wait)
	})
}

// Nothing in the store holds a token, a secret, an account, a client or
// a consumer id in clear, nor any 8 bytes of a token; the keys of one
// brand share one hash tag, and no two brands do.
func TestStoreHoldsNothingInClear(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lp := newLivePerson()
		st := newSpy(store.NewMemory(0))
		ctx, cancel := context.WithCancel(lp.Context(context.Background()))
		defer cancel()
		var secrets []string
		tags := map[string]string{} // hash tag: account
		for b := range 3 {
			c := brandConfig(b, st)
			src := c.TokenSource(ctx)
			cache := (&consumerjws.Config{AccountID: c.AccountID, Domain: "idp.test", Source: src, Store: st, ClientSecret: c.ClientSecret}).NewCache(ctx)
			st.mu.Lock()
			before := maps.Clone(st.keys)
			st.mu.Unlock()
			tok, err := src.Token()
			if err != nil {
				t.Fatal(err)
			}
			id := fmt.Sprintf("john.doe+%d@example.com", b)
			jws, err := cache.Token(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			src.Reject(tok)
			cache.Reject(id, jws)
			synctest.Wait()
			secrets = append(secrets, tok.AccessToken, jws, string(c.ClientSecret), c.AccountID, c.ClientID, id)
			st.mu.Lock()
			for key := range st.keys {
				if before[key] {
					continue
				}
				tag := regexp.MustCompile(`\{[^}]*\}`).FindString(key)
				if a, ok := tags[tag]; tag == "" || ok && a != c.AccountID {
					t.Errorf("key %q: hash tag %q, want one of brand %d's own", key, tag, b)
				}
				tags[tag] = c.AccountID
			}
			if len(st.keys) == len(before) {
				t.Errorf("brand %d stored nothing", b)
			}
			st.mu.Unlock()
		}
		if len(tags) != 3 {
			t.Errorf("%d hash tags for 3 brands, want 3", len(tags))
		}
		var texts []string
		for key := range st.keys {
			texts = append(texts, key)
		}
		for _, v := range st.values {
			texts = append(texts, string(v))
		}
		for _, s := range secrets {
			for _, text := range texts {
				if strings.Contains(text, s) {
					t.Errorf("the store holds %q in clear", s)
				}
			}
		}
		for _, s := range secrets[:2] {
			testkit.NoPiece(t, s, 8, texts...)
		}
	})
}

// Token serves from the source's snapshot: it asks the store nothing.
func TestTokenAsksTheStoreNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lp := newLivePerson()
		st := newSpy(store.NewMemory(0))
		ctx, cancel := context.WithCancel(lp.Context(context.Background()))
		defer cancel()
		c := brandConfig(1, st)
		src := c.TokenSource(ctx)
		if _, err := src.Token(); err != nil {
			t.Fatal(err)
		}
		before := st.callCount()
		for range 1000 {
			src.Token()
		}
		if n := st.callCount() - before; n != 0 {
			t.Errorf("1,000 Token calls: %d store calls, want 0", n)
		}
	})
}

// BenchmarkToken is Token with and without a store: the same.
func BenchmarkToken(b *testing.B) {
	lp := newLivePerson()
	lp.SentinelDelay = 0
	for name, st := range map[string]store.Store{"without a store": nil, "with a store": store.NewMemory(0)} {
		b.Run(name, func(b *testing.B) {
			c := brandConfig(1, st)
			src := c.TokenSource(lp.Context(context.Background()))
			if _, err := src.Token(); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				src.Token()
			}
		})
	}
}
