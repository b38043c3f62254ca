package redisstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lpconnect/appjwt"
	"github.com/lpconnect/appjwt/consumerjws"
	"github.com/lpconnect/appjwt/internal/fleettest"
	"github.com/lpconnect/appjwt/redisstore"
	"github.com/lpconnect/appjwt/redisstore/internal/redistest"
	"github.com/lpconnect/appjwt/secret"
	"github.com/lpconnect/appjwt/store"
	"github.com/lpconnect/appjwt/webhook"
	"github.com/redis/go-redis/v9"
)

// The fleet's guarantees (issue 29) on a real redis-server: the packages
// of the root module, wired as docs/fleet.md says, over one
// redisstore.Store. internal/fleet and webhook's fleet tests prove the
// same over store.Memory on a fake clock; these run in real time, with
// the server's faults, so their waits are short and bounded.

// newStore returns a Store over a client of srv, closed when t ends.
func newStore(t testing.TB, srv *redistest.Server, opts redisstore.Options) *redisstore.Store {
	c := redis.NewClient(&redis.Options{Addr: srv.Addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	return redisstore.New(c, opts)
}

// counting is a store.Store over another that counts its calls.
type counting struct {
	store.Store
	calls atomic.Int64
}

func (c *counting) Get(ctx context.Context, key string) ([]byte, bool, error) {
	c.calls.Add(1)
	return c.Store.Get(ctx, key)
}

func (c *counting) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	c.calls.Add(1)
	return c.Store.Set(ctx, key, value, ttl)
}

func (c *counting) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	c.calls.Add(1)
	return c.Store.Add(ctx, key, value, ttl)
}

func (c *counting) Delete(ctx context.Context, key string, value []byte) (bool, error) {
	c.calls.Add(1)
	return c.Store.Delete(ctx, key, value)
}

// --- webhooks ---

// Three replicas over one Redis get the stand-in's deliveries, with
// duplicates, retries and reordering, and a replica that dies while
// processing: each of the agent's messages is processed exactly once, and
// every delivery is answered 200 in the end.
func TestFleetWebhooksFromTheStandIn(t *testing.T) {
	fleettest.WebhooksFromTheStandIn(t, newStore(t, redistest.Start(t), redisstore.Options{}))
}

// Three replicas get every one of 1,000 events, all at once and each in
// its own order, and one of them dies after claiming every tenth of its
// copies (it never calls Done): each event is processed exactly once, the
// dead replica's once its claims end and LivePerson retries them.
func TestFleetWebhooksConcurrent(t *testing.T) {
	const replicas, events = 3, 1000
	// Long beside a Seen and its Done, even under -race on a busy machine:
	// a claim that ends between them would let a copy be processed twice.
	const claimTime = 300 * time.Millisecond
	st := newStore(t, redistest.Start(t), redisstore.Options{})
	var dedups []*webhook.Dedup
	for range replicas {
		d, err := webhook.DedupConfig{Store: st, ClaimTime: claimTime}.NewDedup()
		if err != nil {
			t.Fatal(err)
		}
		dedups = append(dedups, d)
	}
	processed := make([]atomic.Int32, events)
	var lost sync.Map // events the dead replica claimed
	dialog := func(e int) string { return fmt.Sprintf("conversation-%d", e%37) }
	deliver := func(r, e int) {
		d := dedups[r]
		if d.Seen(dialog(e), int64(e)) {
			return
		}
		if r == 0 && e%10 == 0 {
			lost.Store(e, true) // claimed, then the replica dies
			return
		}
		processed[e].Add(1)
		d.Done(dialog(e), int64(e))
	}
	var wg sync.WaitGroup
	for r := range replicas {
		order := rand.Perm(events)
		wg.Go(func() {
			for _, e := range order {
				deliver(r, e)
			}
		})
	}
	wg.Wait()
	var retries []int
	lost.Range(func(e, _ any) bool { retries = append(retries, e.(int)); return true })
	if len(retries) == 0 {
		t.Fatal("the dying replica claimed nothing: the test proves nothing")
	}
	// LivePerson's retry comes after the claim ended: ClaimTime is under
	// its first pause (docs of webhook.DedupConfig).
	time.Sleep(claimTime + 20*time.Millisecond)
	for _, e := range retries {
		for r := 1; r < replicas; r++ { // the retry and a duplicate of it
			deliver(r, e)
		}
	}
	for e := range events {
		if n := processed[e].Load(); n != 1 {
			t.Errorf("event %d processed %d times, want 1", e, n)
		}
	}
	t.Logf("%d events to %d replicas; %d claimed by the replica that died, each processed once after a retry", events, replicas, len(retries))
}

// --- LivePerson's load ---

// newLivePerson returns LivePerson fast enough for real time.
func newLivePerson() *fleettest.LivePerson {
	lp := fleettest.NewLivePerson()
	lp.SentinelDelay = 5 * time.Millisecond
	return lp
}

func brand(st store.Store) appjwt.Config {
	return appjwt.Config{
		AccountID:    "90000001",
		ClientID:     "client-1",
		ClientSecret: secret.String("secret-of-brand-1"),
		Domain:       "sentinel.test",
		Store:        st,
	}
}

// replica is one replica's token sources: its AppJWT and ConsumerJWSs.
type replica struct {
	src   *appjwt.Source
	cache *consumerjws.Cache
}

func newReplica(ctx context.Context, st store.Store) replica {
	c := brand(st)
	src := c.TokenSource(ctx)
	jws := consumerjws.Config{AccountID: c.AccountID, Domain: "idp.test", Source: src, Store: st, ClientSecret: c.ClientSecret}
	return replica{src: src, cache: jws.NewCache(ctx)}
}

// N replicas over 1,000 consumers cost the idp 1,000 requests, one per
// consumer, and Sentinel one.
func TestFleetIdpLoad(t *testing.T) {
	const consumers = 1000
	srv := redistest.Start(t)
	for _, replicas := range []int{1, 4, 16} {
		t.Run(fmt.Sprint(replicas), func(t *testing.T) {
			srv.Flush()
			st := newStore(t, srv, redisstore.Options{})
			lp := newLivePerson()
			ctx, cancel := context.WithCancel(lp.Context(t.Context()))
			defer cancel()
			var wg sync.WaitGroup
			var failed atomic.Int64
			start := time.Now()
			for r := range replicas {
				rep := newReplica(ctx, st)
				wg.Go(func() {
					for i := range consumers {
						id := fmt.Sprintf("consumer-%d", (i+r*consumers/replicas)%consumers)
						if _, err := rep.cache.Token(ctx, id); err != nil && failed.Add(1) == 1 {
							t.Errorf("Token: %v", err)
						}
					}
				})
			}
			wg.Wait()
			if n := failed.Load(); n > 0 {
				t.Fatalf("%d Token calls failed", n)
			}
			if requests, n := lp.IdpCount(); requests != consumers || n != consumers {
				t.Errorf("%d replicas over %d consumers: %d idp requests for %d consumers, want %d", replicas, consumers, requests, n, consumers)
			}
			if n := lp.Count("sentinel.test"); n != 1 {
				t.Errorf("%d replicas: %d Sentinel requests, want 1", replicas, n)
			}
			requests, _ := lp.IdpCount()
			t.Logf("%d replicas x %d consumers on Redis: %d idp requests, in %v", replicas, consumers, requests, time.Since(start).Round(time.Millisecond))
		})
	}
}

// A token the API rejects (40102) on one replica is dropped for all: the
// replica that got the 401 fetches one token, which the others, on their
// 401, take from Redis, and a replica started later takes that new one,
// never the rejected one.
func TestFleetRejectionDropsForAll(t *testing.T) {
	fleettest.RejectionDropsForAll(t, newLivePerson(), brand(newStore(t, redistest.Start(t), redisstore.Options{})), nil)
}

// --- Redis's faults ---

// Three replicas run through Redis killed, paused (SIGSTOP) and flushed,
// each fault while they fetch ConsumerJWSs for new consumers, serve
// AppJWTs and de-duplicate deliveries: no call fails, the idp gets at most
// what three replicas on their own would cost it, and once Redis answers
// again the fleet shares again: one idp request per new consumer, each
// delivery processed once.
func TestFleetRedisFaults(t *testing.T) {
	const replicas, perPhase = 3, 10
	srv := redistest.Start(t)
	// A short timeout keeps the paused phase short; the default, 200 ms,
	// behaves alike.
	client := redis.NewClient(&redis.Options{Addr: srv.Addr, ContextTimeoutEnabled: true})
	defer client.Close()
	st := redisstore.New(client, redisstore.Options{Timeout: 50 * time.Millisecond})
	lp := newLivePerson()
	ctx, cancel := context.WithCancel(lp.Context(t.Context()))
	defer cancel()
	var reps []replica
	var dedups []*webhook.Dedup
	for range replicas {
		reps = append(reps, newReplica(ctx, st))
		d, err := webhook.DedupConfig{Store: st}.NewDedup()
		if err != nil {
			t.Fatal(err)
		}
		dedups = append(dedups, d)
	}

	// run has every replica, at once, serve an AppJWT, fetch the
	// ConsumerJWS of perPhase consumers new to the fleet, and get a copy
	// of perPhase deliveries new to it; it returns the idp requests and
	// the times each delivery was processed.
	next := 0
	run := func(phase string) (idp int, processed []int32) {
		t.Helper()
		before, _ := lp.IdpCount()
		first := next
		next += perPhase
		counts := make([]atomic.Int32, perPhase)
		var wg sync.WaitGroup
		for r, rep := range reps {
			wg.Go(func() {
				if _, err := rep.src.Token(); err != nil {
					t.Errorf("%s: replica %d: Token: %v", phase, r, err)
				}
			})
			for i := range perPhase {
				wg.Go(func() {
					id := fmt.Sprintf("consumer-%d", first+i)
					if _, err := rep.cache.Token(ctx, id); err != nil {
						t.Errorf("%s: replica %d: ConsumerJWS: %v", phase, r, err)
					}
					dialog, seq := fmt.Sprintf("dialog-%d", first+i), int64(i)
					if !dedups[r].Seen(dialog, seq) {
						counts[i].Add(1)
						dedups[r].Done(dialog, seq)
					}
				})
			}
		}
		wg.Wait()
		after, _ := lp.IdpCount()
		for i := range counts {
			processed = append(processed, counts[i].Load())
		}
		return after - before, processed
	}
	once := make([]int32, perPhase)
	for i := range once {
		once[i] = 1
	}
	shared := func(phase string) {
		t.Helper()
		idp, processed := run(phase)
		if idp != perPhase {
			t.Errorf("%s: %d idp requests for %d new consumers, want %d: one per consumer", phase, idp, perPhase, perPhase)
		}
		if diff := cmp.Diff(once, processed); diff != "" {
			t.Errorf("%s: times each delivery was processed (-want +got):\n%s", phase, diff)
		}
	}
	alone := func(phase string) {
		t.Helper()
		start := time.Now()
		idp, processed := run(phase)
		if idp > replicas*perPhase {
			t.Errorf("%s: %d idp requests for %d new consumers, want at most %d, the replicas' on their own", phase, idp, perPhase, replicas*perPhase)
		}
		for i, n := range processed {
			if n < 1 || n > replicas {
				t.Errorf("%s: delivery %d processed %d times, want 1 to %d", phase, i, n, replicas)
			}
		}
		t.Logf("%s: %d idp requests for %d new consumers, in %v", phase, idp, perPhase, time.Since(start).Round(time.Millisecond))
	}

	// answering waits until the client answers again: after failed dials
	// (PoolSize of them in a row), go-redis fails every dial at once and
	// tries one a second, so the replicas stay alone up to a second after
	// Redis is back.
	answering := func(phase string) {
		t.Helper()
		start := time.Now()
		for client.Ping(ctx).Err() != nil {
			if time.Since(start) > 3*time.Second {
				t.Fatalf("%s: the client does not answer after 3 s", phase)
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Logf("%s: the client answers after %v", phase, time.Since(start).Round(time.Millisecond))
	}

	shared("redis up")
	srv.Kill()
	alone("redis killed")
	srv.Restart()
	answering("redis restarted")
	shared("redis restarted")
	srv.Pause()
	alone("redis paused")
	srv.Resume()
	answering("redis resumed")
	shared("redis resumed")
	srv.Flush()
	shared("redis flushed")
	if !st.Up() {
		t.Error("Store.Up() = false at the end, want true")
	}
	// One token lifetime: every replica's AppJWT came from one fetch, or
	// at most one each while Redis was down.
	if n := lp.Count("sentinel.test"); n < 1 || n > replicas {
		t.Errorf("%d Sentinel requests, want 1 to %d", n, replicas)
	}
}

// --- benchmarks ---

// BenchmarkFleetToken is Token with no Store, with store.Memory, and with
// Redis: the same, and no call of the Store (store-calls/op) on Token's
// path.
func BenchmarkFleetToken(b *testing.B) {
	srv := redistest.Start(b)
	lp := newLivePerson()
	lp.SentinelDelay = 0
	for _, bench := range []struct {
		name string
		st   store.Store
	}{
		{"no store", nil},
		{"memory", store.NewMemory(0)},
		{"redis", newStore(b, srv, redisstore.Options{})},
	} {
		b.Run(bench.name, func(b *testing.B) {
			var st *counting
			c := brand(nil)
			if bench.st != nil {
				st = &counting{Store: bench.st}
				c.Store = st
			}
			ctx, cancel := context.WithCancel(lp.Context(context.Background()))
			defer cancel()
			src := c.TokenSource(ctx)
			if _, err := src.Token(); err != nil {
				b.Fatal(err)
			}
			var before int64
			if st != nil {
				before = st.calls.Load()
			}
			b.ReportAllocs()
			for b.Loop() {
				src.Token()
			}
			if st != nil {
				b.ReportMetric(float64(st.calls.Load()-before)/float64(b.N), "store-calls/op")
			}
		})
	}
}

// BenchmarkFleetDedup is what de-duplication costs a delivery, Seen then
// Done, over store.Memory and over a loopback Redis, one caller at a time:
// its median and 99th percentile (p50-ns, p99-ns).
func BenchmarkFleetDedup(b *testing.B) {
	srv := redistest.Start(b)
	for _, bench := range []struct {
		name string
		st   store.Store
	}{
		{"memory", store.NewMemory(0)},
		{"redis", newStore(b, srv, redisstore.Options{})},
	} {
		b.Run(bench.name, func(b *testing.B) {
			d, err := webhook.DedupConfig{Store: bench.st}.NewDedup()
			if err != nil {
				b.Fatal(err)
			}
			// A dialog of its own per run: the Store remembers the last
			// run's for the retention.
			dialog := fmt.Sprintf("7f0e3c56-3c47-4b0c-9c1e-%012x", rand.Uint64()>>16)
			b.ReportAllocs()
			var took []time.Duration
			for i := int64(0); b.Loop(); i++ {
				start := time.Now()
				if d.Seen(dialog, i) {
					b.Fatalf("sequence %d seen before", i)
				}
				d.Done(dialog, i)
				took = append(took, time.Since(start))
			}
			if s := d.State(); s.Failures > 0 {
				b.Fatalf("the Store failed: %v", s.LastError)
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2]), "p50-ns")
			b.ReportMetric(float64(took[len(took)*99/100]), "p99-ns")
		})
	}
}
