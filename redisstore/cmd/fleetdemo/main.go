// Command fleetdemo runs a fleet of connector replicas in one process, over
// one Redis, against the LivePerson stand-in (appjwttest), and tells what
// LivePerson and each replica saw: one Sentinel request for the fleet, one
// idp request per consumer, each webhook processed once, a rejected token
// dropped by every replica, and each replica on its own while Redis is
// down. From a clone of the repository:
//
//	go run ./redisstore/cmd/fleetdemo
//
// It starts a redis-server of its own (Debian's package: apt-get install
// redis-server) on a free loopback port, with nothing saved, and stops it
// when done; -redis host:port uses a running one instead, whose keys the
// demo adds (each expires) and does not flush.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lpconnect/appjwt"
	"github.com/lpconnect/appjwt/appjwttest"
	"github.com/lpconnect/appjwt/consumerjws"
	"github.com/lpconnect/appjwt/redisstore"
	"github.com/lpconnect/appjwt/webhook"
	"github.com/redis/go-redis/v9"
)

func main() {
	addr := flag.String("redis", "", "`host:port` of a running Redis; empty: start redis-server on a free loopback port")
	replicas := flag.Int("replicas", 3, "how many replicas")
	flag.Parse()
	log.SetFlags(0)
	redis.SetLogger(quiet{}) // go-redis logs each failed dial while Redis is down
	if err := run(*addr, *replicas, os.Stdout); err != nil {
		log.Fatalf("fleetdemo: %v", err)
	}
}

// replica is one replica of the connector: its AppJWT source, its
// ConsumerJWS cache, its webhook handler and what the handler processed.
type replica struct {
	src       *appjwt.Source
	cache     *consumerjws.Cache
	client    *http.Client // the Connector API, AppJWT and ConsumerJWS on each request
	hook      http.Handler
	processed atomic.Int64
}

func run(addr string, n int, w io.Writer) error {
	if n < 1 {
		return errors.New("-replicas: want 1 or more")
	}
	var server *exec.Cmd
	if addr == "" {
		var err error
		if server, addr, err = startRedis(); err != nil {
			return err
		}
		defer func() { server.Process.Kill(); server.Wait() }()
		fmt.Fprintf(w, "redis-server started on %s\n", addr)
	}
	client := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	defer client.Close()
	if err := client.Ping(context.Background()).Err(); err != nil {
		return fmt.Errorf("redis at %s: %w", addr, err)
	}
	st := redisstore.New(client, redisstore.Options{Logger: slog.Default()} /* one line per change of state */)

	srv := appjwttest.NewUnstartedServer()
	defer srv.Close()
	var lb balancer
	srv.WebhookClient = &http.Client{Transport: &lb}
	srv.WebhookTiming = appjwttest.WebhookTiming{RetryPause: 300 * time.Millisecond}
	srv.Start()
	ctx, cancel := context.WithCancel(srv.Context(context.Background()))
	defer cancel()
	fmt.Fprintf(w, "%d replicas over one Redis (%s), against a LivePerson stand-in at %s\n\n", n, addr, srv.URL())

	app := appjwt.Config{AccountID: srv.AccountID, ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, DomainAPI: srv.Host(), Store: st}
	verifier, err := webhook.Config{AccountID: srv.AccountID, ClientID: srv.ClientID, ClientSecret: srv.ClientSecret}.NewVerifier()
	if err != nil {
		return err
	}
	reps := make([]*replica, n)
	for i := range reps {
		r := &replica{src: app.TokenSource(ctx)}
		jws := consumerjws.Config{AccountID: srv.AccountID, DomainAPI: srv.Host(), Source: r.src, Store: st, ClientSecret: srv.ClientSecret}
		r.cache = jws.NewCache(ctx)
		r.client = &http.Client{Transport: &consumerjws.Transport{Cache: r.cache, Base: &appjwt.Transport{Source: r.src, Base: srv.Client().Transport}}}
		dedup, err := webhook.DedupConfig{Store: st, ClaimTime: 100 * time.Millisecond}.NewDedup()
		if err != nil {
			return err
		}
		r.hook = verifier.Handler(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			body, _ := io.ReadAll(req.Body)
			note, err := webhook.Parse(body)
			if err != nil {
				http.Error(w, "bad notification", http.StatusBadRequest)
				return
			}
			for _, e := range note.Events {
				if e.HasSequence && !e.FromConsumer() && !dedup.Seen(e.DialogID, e.Sequence) {
					r.processed.Add(1)
					dedup.Done(e.DialogID, e.Sequence)
				}
			}
		}))
		reps[i] = r
		lb.handlers = append(lb.handlers, r.hook)
	}
	count := func(e appjwttest.Endpoint) int { return len(srv.Requests(e)) }
	// issued counts the ConsumerJWSs the idp issued: a request it refused
	// (an AppJWT revoked, 40102) is resent, and is not counted.
	issued := func() (n int) {
		for _, r := range srv.Requests(appjwttest.Consumer) {
			if r.Status == http.StatusCreated {
				n++
			}
		}
		return n
	}

	// Every replica asks for the same things at once.
	all := func(f func(i int, r *replica) error) error {
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i, r := range reps {
			wg.Go(func() { errs[i] = f(i, r) })
		}
		wg.Wait()
		return errors.Join(errs...)
	}
	consumers := func(first, last int) error {
		return all(func(_ int, r *replica) error {
			for c := first; c < last; c++ {
				if _, err := r.cache.Token(ctx, fmt.Sprintf("consumer-%d", c)); err != nil {
					return err
				}
			}
			return nil
		})
	}

	fmt.Fprintln(w, "1. Each replica asks its appjwt.Source for an AppJWT.")
	if err := all(func(_ int, r *replica) error { _, err := r.src.Token(); return err }); err != nil {
		return err
	}
	fmt.Fprintf(w, "   Sentinel requests: %d (one replica fetched under a lease; the others took its token from Redis)\n\n", count(appjwttest.Sentinel))

	fmt.Fprintln(w, "2. Each replica asks its consumerjws.Cache for the ConsumerJWS of the same 100 consumers.")
	if err := consumers(0, 100); err != nil {
		return err
	}
	fmt.Fprintf(w, "   ConsumerJWSs the idp issued: %d for %d lookups\n\n", issued(), 100*n)

	fmt.Fprintln(w, "3. A consumer opens a conversation; the agent writes 10 messages. The stand-in duplicates and reorders")
	fmt.Fprintln(w, "   deliveries, and the load balancer sends each attempt to the next replica.")
	if err := srv.SetWebhooks(map[string]appjwttest.Webhook{
		appjwttest.WebhookContentEvent: {Endpoint: "https://connector.example/lp/events", MaxRetries: 2},
	}); err != nil {
		return err
	}
	conversation, err := open(ctx, reps[0].client, srv, "john_doe_42")
	if err != nil {
		return err
	}
	for range 5 {
		srv.QueueWebhookFaults(appjwttest.WebhookContentEvent, appjwttest.WebhookFault{Duplicate: true}, appjwttest.WebhookFault{Reorder: true})
	}
	for i := range 10 {
		if _, err := srv.AgentMessage(conversation, fmt.Sprintf("answer %d", i+1)); err != nil {
			return err
		}
	}
	wait, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	if err := srv.WaitWebhooks(wait); err != nil {
		return err
	}
	var total int64
	var by []string
	for i, r := range reps {
		total += r.processed.Load()
		by = append(by, fmt.Sprintf("replica %d: %d", i, r.processed.Load()))
	}
	fmt.Fprintf(w, "   %d deliveries; messages processed: %d (%s)\n\n", len(srv.Deliveries()), total, strings.Join(by, ", "))

	fmt.Fprintln(w, "4. LivePerson revokes every AppJWT (the API answers 401, errorCode 40102).")
	srv.RevokeTokens()
	before := count(appjwttest.Sentinel)
	if err := consumers(100, 110); err != nil {
		return err
	}
	fmt.Fprintf(w, "   each replica fetched 10 new ConsumerJWSs: %d new Sentinel request(s), the token dropped by every replica\n\n", count(appjwttest.Sentinel)-before)

	if server == nil {
		return nil
	}
	fmt.Fprintln(w, "5. Redis is killed; each replica carries on alone, then shares again once it is back.")
	server.Process.Kill()
	server.Wait()
	before = issued()
	if err := consumers(200, 210); err != nil {
		return err
	}
	fmt.Fprintf(w, "   Redis down: 10 new consumers: %d ConsumerJWSs issued, no call failed\n", issued()-before)
	port := addr[strings.LastIndex(addr, ":")+1:]
	if server, err = startRedisOn(port); err != nil {
		return err
	}
	// After failed dials, go-redis's pool fails every dial at once and
	// tries one a second: until one succeeds, each replica stays alone.
	back := time.Now()
	for client.Ping(ctx).Err() != nil && time.Since(back) < 3*time.Second {
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Fprintf(w, "   Redis restarted: the client answers again after %v\n", time.Since(back).Round(time.Millisecond))
	before = issued()
	if err := consumers(300, 310); err != nil {
		return err
	}
	fmt.Fprintf(w, "   Redis back: 10 new consumers: %d ConsumerJWSs issued\n", issued()-before)
	return nil
}

// open opens a conversation for consumer through the Send API, as a
// connector does when a consumer writes first, and returns its ID.
func open(ctx context.Context, client *http.Client, srv *appjwttest.Server, consumer string) (string, error) {
	body := `[{"kind":"req","id":"1,","type":"userprofile.SetUserProfile","body":{}},` +
		`{"kind":"req","id":"2,","type":"cm.ConsumerRequestConversation","body":{"brandId":"` + srv.AccountID + `","channelType":"MESSAGING"}}]`
	req, err := http.NewRequestWithContext(consumerjws.WithConsumer(ctx, consumer), http.MethodPost,
		srv.URL()+"/api/account/"+srv.AccountID+"/messaging/consumer/conversation?v=3", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var opened []struct {
		Body struct{ ConversationID string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&opened); err != nil || len(opened) != 2 {
		return "", fmt.Errorf("opening a conversation: %s", resp.Status)
	}
	return opened[1].Body.ConversationID, nil
}

// balancer hands each webhook attempt to the next replica in turn, as a
// load balancer in front of the fleet does.
type balancer struct {
	handlers []http.Handler
	next     atomic.Int64
}

func (b *balancer) RoundTrip(r *http.Request) (*http.Response, error) {
	h := b.handlers[int(b.next.Add(1)-1)%len(b.handlers)]
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// startRedis starts redis-server on a free loopback port.
func startRedis() (*exec.Cmd, string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	cmd, err := startRedisOn(port)
	return cmd, net.JoinHostPort("127.0.0.1", port), err
}

// startRedisOn starts redis-server on a loopback port, saving nothing, and
// waits until it takes connections.
func startRedisOn(port string) (*exec.Cmd, error) {
	cmd := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting redis-server (apt-get install redis-server, or give -redis host:port): %w", err)
	}
	for range 100 {
		if c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", port)); err == nil {
			c.Close()
			return cmd, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	return nil, errors.New("redis-server took no connection within 2 s")
}

// quiet drops go-redis's own log lines.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}
