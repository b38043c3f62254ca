package webhook_test

import (
	"testing"

	"github.com/lpconnect/appjwt/internal/fleettest"
	"github.com/lpconnect/appjwt/store"
)

// Three replicas over one store.Memory get the stand-in's deliveries, with
// duplicates, retries and reordering, and replicas that die while
// processing: each of the agent's messages is processed exactly once, and
// every delivery is answered 200 in the end. redisstore runs the same over
// a real Redis.
func TestFleetProcessesEachEventOnce(t *testing.T) {
	fleettest.WebhooksFromTheStandIn(t, store.NewMemory(0))
}
