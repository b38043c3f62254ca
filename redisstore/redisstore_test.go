package redisstore

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lpconnect/appjwt/redisstore/internal/redistest"
	"github.com/lpconnect/appjwt/store"
	"github.com/redis/go-redis/v9"
)

// newClient returns a client of srv, closed when t ends. contextTimeouts
// is the client's ContextTimeoutEnabled: go-redis's default, false, leaves
// the Store alone to keep its bound.
func newClient(t testing.TB, srv *redistest.Server, contextTimeouts bool) redis.UniversalClient {
	c := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{srv.Addr}, ContextTimeoutEnabled: contextTimeouts})
	t.Cleanup(func() { c.Close() })
	return c
}

// Store's contract, the steps of store's TestMemory, kept by Memory and by
// a Store on a real Redis alike, a single server and a Cluster.
func TestContract(t *testing.T) {
	srv := redistest.Start(t)
	cluster := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{redistest.StartCluster(t).Addr}, ContextTimeoutEnabled: true})
	t.Cleanup(func() { cluster.Close() })
	stores := []struct {
		name string
		s    store.Store
	}{
		{"memory", store.NewMemory(0)},
		{"redis", New(newClient(t, srv, true), Options{})},
		{"redis cluster", New(cluster, Options{})},
	}
	ctx := context.Background()
	const ttl = 5 * time.Millisecond // the step "expired" waits it out
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			m := st.s
			steps := []struct {
				name string
				do   func() (any, error)
				want any
			}{
				{"get nothing", func() (any, error) { _, ok, err := m.Get(ctx, "a"); return ok, err }, false},
				{"delete nothing", func() (any, error) { return m.Delete(ctx, "a", nil) }, false},
				{"add", func() (any, error) { return m.Add(ctx, "a", []byte("1"), time.Minute) }, true},
				{"add again", func() (any, error) { return m.Add(ctx, "a", []byte("2"), time.Minute) }, false},
				{"get", func() (any, error) { v, _, err := m.Get(ctx, "a"); return string(v), err }, "1"},
				{"delete another value", func() (any, error) { return m.Delete(ctx, "a", []byte("2")) }, false},
				{"delete an empty value", func() (any, error) { return m.Delete(ctx, "a", []byte{}) }, false},
				{"delete its value", func() (any, error) { return m.Delete(ctx, "a", []byte("1")) }, true},
				{"add after delete", func() (any, error) { return m.Add(ctx, "a", []byte("3"), time.Minute) }, true},
				{"set over it", func() (any, error) { return nil, m.Set(ctx, "a", []byte("4"), ttl) }, nil},
				{"get what was set", func() (any, error) { v, _, err := m.Get(ctx, "a"); return string(v), err }, "4"},
				{"expired", func() (any, error) {
					time.Sleep(2 * ttl)
					_, ok, err := m.Get(ctx, "a")
					return ok, err
				}, false},
				{"add once expired", func() (any, error) { return m.Add(ctx, "a", []byte("5"), time.Minute) }, true},
				{"delete whatever", func() (any, error) { return m.Delete(ctx, "a", nil) }, true},
				{"set bytes", func() (any, error) { return nil, m.Set(ctx, "{b}\x00", []byte("\x00\xff\r\n"), time.Minute) }, nil},
				{"get bytes", func() (any, error) { v, _, err := m.Get(ctx, "{b}\x00"); return string(v), err }, "\x00\xff\r\n"},
				{"delete bytes", func() (any, error) { return m.Delete(ctx, "{b}\x00", []byte("\x00\xff\r\n")) }, true},
			}
			for _, st := range steps {
				got, err := st.do()
				if err != nil || got != st.want {
					t.Fatalf("%s: %v, %v; want %v", st.name, got, err, st.want)
				}
			}
		})
	}
}

// Every write sets a time to live, rounded up to Redis's millisecond; none
// of zero or less reaches Redis, which would keep the value for good.
func TestTTL(t *testing.T) {
	srv := redistest.Start(t)
	c := newClient(t, srv, true)
	s := New(c, Options{})
	ctx := context.Background()
	writes := []struct {
		name string
		ttl  time.Duration
		do   func(key string, ttl time.Duration) error
		want time.Duration // the key's PTTL at most; 0: no key
	}{
		{"set", time.Minute, func(k string, ttl time.Duration) error { return s.Set(ctx, k, []byte("v"), ttl) }, time.Minute},
		{"add", time.Hour, func(k string, ttl time.Duration) error { _, err := s.Add(ctx, k, []byte("v"), ttl); return err }, time.Hour},
		{"set 1.5 s", 1500 * time.Millisecond, func(k string, ttl time.Duration) error { return s.Set(ctx, k, []byte("v"), ttl) }, 1500 * time.Millisecond},
		{"set 0", 0, func(k string, ttl time.Duration) error { return s.Set(ctx, k, []byte("v"), ttl) }, 0},
		{"add -1 s", -time.Second, func(k string, ttl time.Duration) error { _, err := s.Add(ctx, k, []byte("v"), ttl); return err }, 0},
	}
	for _, w := range writes {
		key := "ttl " + w.name
		err := w.do(key, w.ttl)
		if w.want == 0 {
			if err == nil || !strings.HasPrefix(err.Error(), "redisstore: ") {
				t.Errorf("%s: error %v, want one prefixed redisstore: ", w.name, err)
			}
			if n, _ := c.Exists(ctx, key).Result(); n != 0 {
				t.Errorf("%s: the key was written", w.name)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		// PTTL is -1 for a key without expiry, -2 for none.
		got, err := c.PTTL(ctx, key).Result()
		if err != nil || got <= 0 || got > w.want {
			t.Errorf("%s: PTTL %v, %v; want in (0, %v]", w.name, got, err, w.want)
		}
	}
	if !s.Up() {
		t.Error("a refused time to live made the Store down")
	}
}

// Times to live go to Redis in whole milliseconds, rounded up: never 0,
// which Redis would refuse, nor shorter than asked.
func TestRoundTTL(t *testing.T) {
	tests := []struct {
		ttl, want time.Duration
	}{
		{time.Nanosecond, time.Millisecond},
		{time.Millisecond, time.Millisecond},
		{1500 * time.Microsecond, 2 * time.Millisecond},
		{72 * time.Hour, 72 * time.Hour},
	}
	for _, tt := range tests {
		if got, err := roundTTL("set", tt.ttl); got != tt.want || err != nil {
			t.Errorf("roundTTL(%v) = %v, %v; want %v", tt.ttl, got, err, tt.want)
		}
	}
}

// logRecords is a slog.Handler that keeps the records it is given.
type logRecords struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecords) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecords) WithGroup(string) slog.Handler            { return h }
func (h *logRecords) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r)
	return nil
}

// take returns the records kept since the last call, as "LEVEL message".
func (h *logRecords) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var got []string
	for _, r := range h.records {
		got = append(got, r.Level.String()+" "+r.Message)
	}
	h.records = nil
	return got
}

// A Redis killed or paused costs each operation an error within the
// Store's timeout, whatever the client's own timeouts: never a hang. The
// Store logs one WARN when Redis goes, one INFO when it is back, and works
// again then.
func TestFaults(t *testing.T) {
	const timeout = 100 * time.Millisecond
	// bound is what an operation may take: the timeout and the scheduling
	// of a loaded machine, far below go-redis's 5 s ReadTimeout, which
	// a client without context timeouts waits out otherwise.
	const bound = timeout + time.Second
	faults := []struct {
		name         string
		break_, heal func(*redistest.Server)
		ctxTimeouts  bool
		lost         bool // whether the server's keys are gone when healed
	}{
		{"killed", (*redistest.Server).Kill, (*redistest.Server).Restart, false, true},
		{"paused", (*redistest.Server).Pause, (*redistest.Server).Resume, false, false},
		{"paused, client with context timeouts", (*redistest.Server).Pause, (*redistest.Server).Resume, true, false},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			srv := redistest.Start(t)
			logs := &logRecords{}
			s := New(newClient(t, srv, f.ctxTimeouts), Options{Timeout: timeout, Logger: slog.New(logs)})
			ctx := context.Background()
			if err := s.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
				t.Fatal(err)
			}

			f.break_(srv)
			ops := map[string]func() error{
				"get":                 func() error { _, _, err := s.Get(ctx, "k"); return err },
				"set":                 func() error { return s.Set(ctx, "k", []byte("w"), time.Minute) },
				"add":                 func() error { _, err := s.Add(ctx, "n", []byte("w"), time.Minute); return err },
				"delete":              func() error { _, err := s.Delete(ctx, "k", nil); return err },
				"delete if its value": func() error { _, err := s.Delete(ctx, "k", []byte("v")); return err },
			}
			for range 2 {
				for name, op := range ops {
					start := time.Now()
					err := op()
					if took := time.Since(start); took > bound {
						t.Errorf("%s took %v, want at most %v", name, took, bound)
					}
					if err == nil || !strings.HasPrefix(err.Error(), "redisstore: ") {
						t.Errorf("%s: error %v, want one prefixed redisstore: ", name, err)
					}
				}
			}
			if s.Up() {
				t.Error("Up() = true while Redis is " + f.name)
			}
			if got := logs.take(); len(got) != 1 || got[0] != "WARN redisstore: redis unreachable" {
				t.Errorf("logged %q, want one WARN redisstore: redis unreachable", got)
			}

			f.heal(srv)
			healed := time.Now()
			var err error
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				if _, _, err = s.Get(ctx, "k"); err == nil {
					break
				}
			}
			if err != nil {
				t.Fatalf("Redis back, and still: %v", err)
			}
			t.Logf("back %v after Redis", time.Since(healed))
			if !s.Up() {
				t.Error("Up() = false with Redis back")
			}
			for name, op := range ops {
				if err := op(); err != nil {
					t.Errorf("%s with Redis back: %v", name, err)
				}
			}
			if got := logs.take(); len(got) != 1 || got[0] != "INFO redisstore: redis reachable again" {
				t.Errorf("logged %q, want one INFO redisstore: redis reachable again", got)
			}
		})
	}
}

// A flushed Redis is a Redis that forgot: no error, no state change, and a
// claim can be taken again.
func TestFlushed(t *testing.T) {
	srv := redistest.Start(t)
	logs := &logRecords{}
	s := New(newClient(t, srv, true), Options{Logger: slog.New(logs)})
	ctx := context.Background()
	if added, err := s.Add(ctx, "claim", []byte("r1"), time.Minute); !added || err != nil {
		t.Fatalf("Add: %v, %v; want true", added, err)
	}
	srv.Flush()
	if _, ok, err := s.Get(ctx, "claim"); ok || err != nil {
		t.Errorf("Get after FLUSHALL: %v, %v; want nothing", ok, err)
	}
	if deleted, err := s.Delete(ctx, "claim", []byte("r1")); deleted || err != nil {
		t.Errorf("Delete after FLUSHALL: %v, %v; want false", deleted, err)
	}
	if added, err := s.Add(ctx, "claim", []byte("r2"), time.Minute); !added || err != nil {
		t.Errorf("Add after FLUSHALL: %v, %v; want true", added, err)
	}
	if !s.Up() || len(logs.take()) != 0 {
		t.Error("a flush changed the Store's state")
	}
}

// A caller that gave up says nothing of Redis: an error, and no change of
// state.
func TestCallerGaveUp(t *testing.T) {
	srv := redistest.Start(t)
	logs := &logRecords{}
	s := New(newClient(t, srv, true), Options{Logger: slog.New(logs)})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.Get(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a canceled context: %v, want context.Canceled", err)
	}
	srv.Pause()
	defer srv.Resume()
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := s.Add(ctx, "k", []byte("v"), time.Minute); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Add past its context's deadline: %v, want context.DeadlineExceeded", err)
	}
	if !s.Up() || len(logs.take()) != 0 {
		t.Error("a caller that gave up changed the Store's state")
	}
}
