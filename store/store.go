// Package store is what the replicas of a connector share: a small
// key-value interface, [Store], that webhook de-duplication, the AppJWT
// source, the ConsumerJWS cache and the brands of a connector use, when
// their Config names one, so that a fleet of replicas processes each
// webhook once and costs LivePerson the load of one replica.
//
// [Memory] is the in-process implementation: one replica's state, as
// without a Store. The module github.com/lpconnect/appjwt/redisstore holds
// one on Redis, in a module of its own, so that this one needs no Redis
// client.
package store

import (
	"context"
	"time"
)

// Store holds values under keys, each for a time to live, for the
// replicas of a connector. Its methods are safe for concurrent use and
// give up once ctx is done. An error means the Store could not be asked:
// callers carry on as a replica on its own does, and ask again later.
//
// What callers put in a Store is theirs to keep safe: this module's
// packages put no token or consumer id in it in clear (they encrypt
// values under a key derived from the installation's secret, and name
// keys by a keyed hash).
type Store interface {
	// Get returns the value under key, and whether there is one.
	Get(ctx context.Context, key string) (value []byte, ok bool, err error)
	// Set puts value under key for ttl, replacing any value there.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Add puts value under key for ttl if key holds none, and reports
	// whether it did: a claim, or a lease, that one replica gets.
	Add(ctx context.Context, key string, value []byte, ttl time.Duration) (added bool, err error)
	// Delete removes key's value if it is value, or whatever it is if
	// value is nil, and reports whether it removed one: a claim or a
	// lease is given back only by its holder.
	Delete(ctx context.Context, key string, value []byte) (deleted bool, err error)
}
