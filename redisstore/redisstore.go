// Package redisstore is a [store.Store] on Redis, for a fleet of replicas
// of a connector: webhook de-duplication, the AppJWT source, the
// ConsumerJWS cache and the brands of a connector share it through their
// Config's Store field, so that the fleet processes each webhook once and
// costs LivePerson the load of one replica. docs/fleet.md of the
// repository says when a fleet needs it and how to wire it.
//
// It is a module of its own, so that github.com/lpconnect/appjwt needs no
// Redis client. [New] takes a [redis.UniversalClient]: a single server
// ([redis.NewClient]), Sentinel-managed Redis ([redis.NewFailoverClient])
// and Redis Cluster ([redis.NewClusterClient]) all work, as does whatever
// [redis.NewUniversalClient] returns. Keys are used as they are given: the
// packages of this module put the keys of one brand under one hash tag
// ({...}), so that Cluster keeps them on one slot.
//
// # What Redis holds
//
// Nothing usable by someone who can read Redis alone: the packages of this
// module put in it values encrypted with an AEAD under a key derived from
// the installation's secret, under keys named by a keyed hash (no consumer
// id, account or token in clear), and each entry expires with what it
// holds. Every write sets a time to live: nothing is left in Redis for
// good, whatever a replica does. This package adds nothing to what it is
// given and keeps nothing in Redis of its own.
//
// # Bounds
//
//   - Each operation takes at most [Options.Timeout], 200 ms by default,
//     however long its context allows: past it, it returns an error and
//     the caller carries on as a replica on its own. The Store keeps the
//     bound whatever the client's options. Give it a client with
//     ContextTimeoutEnabled: true, which ends each command at its
//     deadline; with go-redis's default, false, the Store runs each
//     command in a goroutine of its own (some microseconds more per
//     operation) and, at the deadline, leaves it to go on until the
//     client's own ReadTimeout (5 s by default) ends it.
//   - Each operation is one round trip: Get is GET, Set is SET with an
//     expiry, Add is SET NX with an expiry, Delete is DEL or, given a
//     value, one Lua script that compares and deletes (EVALSHA, EVAL the
//     first time), so that only the holder of a claim gives it back.
//   - Times to live are rounded up to whole milliseconds, Redis's unit; one
//     of zero or less is refused, unsent, since Redis would keep the value
//     for good.
//   - Redis's own bounds (maxmemory, its eviction policy) are the
//     operator's: with a policy that evicts, volatile-ttl loses the entries
//     closest to expiring first, and a lost entry costs one more request to
//     LivePerson, never a failed one.
//
// # Logs
//
// With [Options.Logger] set, the Store logs once per change of state, not
// per failure: "redisstore: redis unreachable" at WARN, with the keys op
// (get, set, add or delete) and error (the client's error, whole), when an
// operation fails after the last one succeeded; "redisstore: redis
// reachable again" at INFO, with the key down (how long it was), when one
// succeeds after failures. [Store.Up] reads the same state. No record
// carries a key or a value.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/lpconnect/appjwt/store"
	"github.com/redis/go-redis/v9"
)

// DefaultTimeout bounds each operation of a Store whose Options name no
// Timeout: a few round trips on a slow network, short enough that a
// webhook delivery or a token refresh waiting on a Redis that is down
// still answers well within LivePerson's timeouts.
const DefaultTimeout = 200 * time.Millisecond

// Options tunes a Store. The zero value is ready to use.
type Options struct {
	// Timeout bounds each operation, however long its context allows.
	// Zero or less: DefaultTimeout, 200 ms.
	Timeout time.Duration

	// Logger receives a record each time Redis goes from answering to not
	// answering (WARN) and back (INFO); see the package documentation.
	// Nil: nothing is logged.
	Logger *slog.Logger
}

// Store is a [store.Store] on Redis. Its methods are safe for concurrent
// use; each returns within its Options' Timeout, with an error prefixed
// "redisstore: " and naming the operation when Redis did not answer or
// refused. A key that holds no value is no error.
type Store struct {
	client  redis.UniversalClient
	timeout time.Duration
	logger  *slog.Logger
	// guard is whether an operation runs in a goroutine of its own, for a
	// client that may not stop at its context's deadline.
	guard bool

	mu        sync.Mutex
	down      bool      // whether the last operation to change the state failed
	downSince time.Time // when it did, if down
	gen       uint64    // counts changes of state
}

var _ store.Store = (*Store)(nil)

// compareAndDelete deletes KEYS[1] only if it holds ARGV[1]: one step, so
// that a claim that expired and was taken by another replica in between is
// not deleted by its former holder.
var compareAndDelete = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// New returns a Store over client, which it uses and does not close.
func New(client redis.UniversalClient, opts Options) *Store {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	return &Store{client: client, timeout: opts.Timeout, logger: opts.Logger, guard: !stopsAtDeadline(client)}
}

// stopsAtDeadline reports whether client is one of go-redis's, with
// ContextTimeoutEnabled: one that ends a command at its context's
// deadline, so that an operation needs no goroutine of its own to keep the
// Store's bound.
func stopsAtDeadline(client redis.UniversalClient) bool {
	switch c := client.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled
	}
	return false
}

// Get implements [store.Store]: GET.
func (s *Store) Get(ctx context.Context, key string) ([]byte, bool, error) {
	value, err := run(s, ctx, "get", func(ctx context.Context) ([]byte, error) {
		return s.client.Get(ctx, key).Bytes()
	})
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	return value, err == nil, err
}

// Set implements [store.Store]: SET with an expiry.
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	ttl, err := roundTTL("set", ttl)
	if err != nil {
		return err
	}
	_, err = run(s, ctx, "set", func(ctx context.Context) (string, error) {
		return s.client.Set(ctx, key, value, ttl).Result()
	})
	return err
}

// Add implements [store.Store]: SET NX with an expiry.
func (s *Store) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	ttl, err := roundTTL("add", ttl)
	if err != nil {
		return false, err
	}
	return run(s, ctx, "add", func(ctx context.Context) (bool, error) {
		return s.client.SetNX(ctx, key, value, ttl).Result()
	})
}

// Delete implements [store.Store]: DEL for a nil value, else a Lua script
// that deletes key only if it holds value.
func (s *Store) Delete(ctx context.Context, key string, value []byte) (bool, error) {
	n, err := run(s, ctx, "delete", func(ctx context.Context) (int64, error) {
		if value == nil {
			return s.client.Del(ctx, key).Result()
		}
		return compareAndDelete.Run(ctx, s.client, []string{key}, value).Int64()
	})
	return n > 0, err
}

// Up reports whether Redis answered the last operation that changed the
// Store's state: false from a failure until the next success. A new Store
// is up. Operations that their caller gave up on do not count, nor those
// that started before the last change and ended after it.
func (s *Store) Up() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.down
}

// run runs op under the Store's timeout and records whether Redis
// answered. With s.guard, op runs in a goroutine of its own, which the
// Store leaves to the client's own timeouts at the deadline.
func run[T any](s *Store, ctx context.Context, name string, op func(context.Context) (T, error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, fmt.Errorf("redisstore: %s: %w", name, err)
	}
	s.mu.Lock()
	gen := s.gen
	s.mu.Unlock()

	opCtx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	type result struct {
		value T
		err   error
	}
	var r result
	if s.guard {
		done := make(chan result, 1)
		go func() {
			v, err := op(opCtx)
			done <- result{v, err}
		}()
		select {
		case r = <-done:
		case <-opCtx.Done():
			r.err = opCtx.Err()
		}
	} else {
		r.value, r.err = op(opCtx)
	}

	switch err := r.err; {
	case err == nil || errors.Is(err, redis.Nil):
		s.record(ctx, gen, name, nil)
		return r.value, err
	case ctx.Err() != nil:
		// The caller gave up: this says nothing of Redis.
		return zero, fmt.Errorf("redisstore: %s: %w", name, ctx.Err())
	case errors.Is(err, context.DeadlineExceeded):
		err = fmt.Errorf("redisstore: %s: no answer within %v: %w", name, s.timeout, err)
		s.record(ctx, gen, name, err)
		return zero, err
	default:
		err = fmt.Errorf("redisstore: %s: %w", name, err)
		s.record(ctx, gen, name, err)
		return zero, err
	}
}

// record changes the Store's state to what an operation that started at
// generation gen found, err or not, and logs the change; an operation that
// started before the last change changes nothing, so that a slow answer
// from before an outage does not end it.
func (s *Store) record(ctx context.Context, gen uint64, name string, err error) {
	failed := err != nil
	s.mu.Lock()
	if s.down == failed || s.gen != gen {
		s.mu.Unlock()
		return
	}
	now := time.Now()
	since := s.downSince
	s.down, s.downSince = failed, now
	s.gen++
	s.mu.Unlock()

	if s.logger == nil {
		return
	}
	if failed {
		s.logger.LogAttrs(ctx, slog.LevelWarn, "redisstore: redis unreachable",
			slog.String("op", name), slog.String("error", err.Error()))
		return
	}
	s.logger.LogAttrs(ctx, slog.LevelInfo, "redisstore: redis reachable again",
		slog.Duration("down", now.Sub(since)))
}

// roundTTL returns ttl rounded up to whole milliseconds, the unit of
// Redis's PX, or an error for one of zero or less, which Redis would take
// as no expiry at all.
func roundTTL(name string, ttl time.Duration) (time.Duration, error) {
	if ttl <= 0 {
		return 0, fmt.Errorf("redisstore: %s: time to live %v, want one above zero", name, ttl)
	}
	return (ttl + time.Millisecond - 1).Truncate(time.Millisecond), nil
}
