package consumerjws

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
)

// BenchmarkCachedToken compares Token for a cached consumer with the
// floor: a lookup in a map guarded by a mutex, as both hold 1,000
// consumers.
func BenchmarkCachedToken(b *testing.B) {
	const consumers = 1000
	ids := make([]string, consumers)
	for i := range ids {
		ids[i] = fmt.Sprint("consumer-", i)
	}
	b.Run("consumerjws", func(b *testing.B) {
		c := fakeCache(&fakeIdP{}, 0)
		ctx := context.Background()
		for _, id := range ids {
			if _, err := c.Token(ctx, id); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			if _, err := c.Token(ctx, ids[i%consumers]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("mutexmap", func(b *testing.B) {
		var mu sync.Mutex
		m := map[string]string{}
		for _, id := range ids {
			m[id] = "jws-of-" + id
		}
		get := func(id string) (string, bool) {
			mu.Lock()
			defer mu.Unlock()
			jws, ok := m[id]
			return jws, ok
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			if _, ok := get(ids[i%consumers]); !ok {
				b.Fatal("missing")
			}
		}
	})
}

// BenchmarkMemoryPerConsumer reports the heap a cached consumer takes,
// with a ConsumerJWS of LivePerson's size (about 560 bytes), and the
// Cache's own share of it, without the ConsumerJWS.
func BenchmarkMemoryPerConsumer(b *testing.B) {
	const consumers = 10000
	ids := make([]string, consumers)
	for i := range ids {
		ids[i] = fmt.Sprintf("consumer-%08d", i) // ids are the caller's, allocated before
	}
	b.ReportAllocs()
	var perConsumer, jwsLen float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c := fakeCache(&fakeIdP{}, consumers)
		for _, id := range ids {
			jws, err := c.Token(context.Background(), id)
			if err != nil {
				b.Fatal(err)
			}
			jwsLen = float64(len(jws))
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perConsumer = float64(after.HeapAlloc-before.HeapAlloc) / consumers
		runtime.KeepAlive(c)
	}
	b.ReportMetric(perConsumer, "B/consumer")
	b.ReportMetric(perConsumer-jwsLen, "B/consumer-without-jws")
}
