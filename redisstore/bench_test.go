package redisstore

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/lpconnect/appjwt/redisstore/internal/redistest"
	"github.com/lpconnect/appjwt/store"
)

// BenchmarkStore times each operation on a loopback Redis beside
// store.Memory, one caller at a time, and reports its median and 99th
// percentile (p50-ns, p99-ns). "claim" is what de-duplication costs a
// delivery: Add, then Delete of the value added. The time.Now around each
// operation adds some tens of nanoseconds to Memory's figures.
func BenchmarkStore(b *testing.B) {
	srv := redistest.Start(b)
	stores := []struct {
		name string
		s    store.Store
	}{
		{"memory", store.NewMemory(0)},
		{"redis", New(newClient(b, srv, true), Options{})},
		// A client without ContextTimeoutEnabled: each operation in a
		// goroutine of its own.
		{"redis-guarded", New(newClient(b, srv, false), Options{})},
	}
	ctx := context.Background()
	value := make([]byte, 200) // an encrypted token's order of size
	ops := []struct {
		name string
		op   func(s store.Store, i int) error
	}{
		{"get", func(s store.Store, _ int) error { _, _, err := s.Get(ctx, "{bench}get"); return err }},
		{"set", func(s store.Store, _ int) error { return s.Set(ctx, "{bench}set", value, time.Hour) }},
		{"add", func(s store.Store, i int) error {
			_, err := s.Add(ctx, "{bench}add"+strconv.Itoa(i), value, time.Minute)
			return err
		}},
		{"claim", func(s store.Store, i int) error {
			key := "{bench}claim" + strconv.Itoa(i)
			if _, err := s.Add(ctx, key, value[:16], time.Minute); err != nil {
				return err
			}
			_, err := s.Delete(ctx, key, value[:16])
			return err
		}},
	}
	for _, st := range stores {
		if err := st.s.Set(ctx, "{bench}get", value, time.Hour); err != nil {
			b.Fatal(err)
		}
		for _, o := range ops {
			b.Run(st.name+"/"+o.name, func(b *testing.B) {
				b.ReportAllocs()
				var took []time.Duration
				for i := 0; b.Loop(); i++ {
					start := time.Now()
					if err := o.op(st.s, i); err != nil {
						b.Fatal(err)
					}
					took = append(took, time.Since(start))
				}
				slices.Sort(took)
				b.ReportMetric(float64(took[len(took)/2]), "p50-ns")
				b.ReportMetric(float64(took[len(took)*99/100]), "p99-ns")
			})
		}
	}
}
