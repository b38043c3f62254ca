package redisstore_test

import (
	"log/slog"

	"github.com/lpconnect/appjwt/redisstore"
	"github.com/redis/go-redis/v9"
)

// One client and one Store for every package of a connector: their
// Config's Store field takes it (docs/fleet.md). A single address gives a
// single-server client; MasterName, a Sentinel-managed one; several
// addresses, a Cluster client.
func ExampleNew() {
	client := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs: []string{"localhost:6379"},
		// Ends each command at the Store's deadline, 200 ms by default.
		ContextTimeoutEnabled: true,
	})
	defer client.Close()
	st := redisstore.New(client, redisstore.Options{Logger: slog.Default()})
	_ = st // appjwt.Config.Store, consumerjws.Config.Store, ...
}
