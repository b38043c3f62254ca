package webhook

import (
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/lpconnect/appjwt/secret"
	"github.com/lpconnect/appjwt/store"
)

// notification4KiB is an agent's message of 4 KiB, body and all.
var notification4KiB = func() string {
	pad := 4096 - len(agentMessage)
	s := strings.Replace(agentMessage, "Hello from the Agent", "Hello from the Agent"+strings.Repeat("x", pad), 1)
	if len(s) != 4096 {
		panic(len(s))
	}
	return s
}()

// BenchmarkVerify verifies a 4 KiB notification with each algorithm and
// encoding, through a fixed secret and through Config.Secrets; and the
// whole Handler, whose allocations are the body's buffer and the reader
// that gives it to next.
func BenchmarkVerify(b *testing.B) {
	body := []byte(notification4KiB)
	for _, tt := range []struct {
		name string
		alg  algorithm
		enc  macEncoding
	}{
		{"sha1-base64", algSHA1, base64MAC},
		{"sha1-hex", algSHA1, hexMAC},
		{"sha256-base64", algSHA256, base64MAC},
		{"sha256-hex", algSHA256, hexMAC},
	} {
		h := lpHeader(notification4KiB, testSecret)
		h.Set(HeaderSignature, signWith(tt.alg, tt.enc, testSecret, body))
		b.Run(tt.name, func(b *testing.B) {
			v := newTestVerifier(b)
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if err := v.Verify(h, body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("sha1-base64-Secrets", func(b *testing.B) {
		v, err := Config{Secrets: func(string, string) (secret.String, bool) { return testSecret, true }}.NewVerifier()
		if err != nil {
			b.Fatal(err)
		}
		h := lpHeader(notification4KiB, testSecret)
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if err := v.Verify(h, body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Handler", func(b *testing.B) {
		handler := newTestVerifier(b).Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		r, err := http.NewRequest(http.MethodPost, "https://connector.example/lp", nil)
		if err != nil {
			b.Fatal(err)
		}
		r.Header = lpHeader(notification4KiB, testSecret)
		var sent rewindBody
		w := &nopWriter{h: http.Header{}}
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			sent.Reset(notification4KiB)
			r.Body, r.ContentLength = &sent, int64(len(body))
			handler.ServeHTTP(w, r)
			if w.status != 0 {
				b.Fatal(w.status)
			}
		}
	})
}

// rewindBody is a request body the benchmark sends again and again.
type rewindBody struct{ strings.Reader }

func (*rewindBody) Close() error { return nil }

// nopWriter is an http.ResponseWriter that keeps only the status.
type nopWriter struct {
	h      http.Header
	status int
}

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nopWriter) WriteHeader(status int)      { w.status = status }

// BenchmarkDedup measures Seen for a key that is there (hit) and for a new
// one (miss), in a Dedup full to its default bound, where each new key
// pushes out the oldest; and a miss in a Dedup with room.
func BenchmarkDedup(b *testing.B) {
	const dialogs = 1000
	ids := make([]string, dialogs)
	for i := range ids {
		ids[i] = fmt.Sprintf("5491244f-e462-4c63-bf4e-%012d", i)
	}
	full := func() *Dedup {
		d := NewDedup(0, 0)
		for i := range defaultMaxEntries {
			d.Seen(ids[i%dialogs], int64(i/dialogs))
		}
		return d
	}
	b.Run("hit", func(b *testing.B) {
		d := full()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			k := i % defaultMaxEntries
			if !d.Seen(ids[k%dialogs], int64(k/dialogs)) {
				b.Fatal("miss")
			}
		}
	})
	b.Run("miss-full", func(b *testing.B) {
		d := full()
		b.ReportAllocs()
		for i := defaultMaxEntries; b.Loop(); i++ {
			if d.Seen(ids[i%dialogs], int64(i/dialogs)) {
				b.Fatal("hit")
			}
		}
	})
	b.Run("miss-room", func(b *testing.B) {
		d := NewDedup(0, 1<<30)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if d.Seen(ids[i%dialogs], int64(i/dialogs)) {
				b.Fatal("hit")
			}
		}
	})
}

// BenchmarkDedupStore measures a delivery's cost with a Store: Seen and
// Done of a new event (Add, then Set), and Seen of a copy (Add that finds
// the key), on store.Memory, beside "memory", Seen of a new event in
// NewDedup's Dedup with room. A Redis Store adds its round trips.
func BenchmarkDedupStore(b *testing.B) {
	const dialogs = 1000
	ids := make([]string, dialogs)
	for i := range ids {
		ids[i] = fmt.Sprintf("5491244f-e462-4c63-bf4e-%012d", i)
	}
	shared := func(b *testing.B) *Dedup {
		d, err := DedupConfig{Store: store.NewMemory(1 << 30)}.NewDedup()
		if err != nil {
			b.Fatal(err)
		}
		return d
	}
	b.Run("seen-done", func(b *testing.B) {
		d := shared(b)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			id, seq := ids[i%dialogs], int64(i/dialogs)
			if d.Seen(id, seq) {
				b.Fatal("hit")
			}
			d.Done(id, seq)
		}
	})
	b.Run("copy", func(b *testing.B) {
		d := shared(b)
		for i := range defaultMaxEntries {
			d.Done(ids[i%dialogs], int64(i/dialogs))
		}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			k := i % defaultMaxEntries
			if !d.Seen(ids[k%dialogs], int64(k/dialogs)) {
				b.Fatal("miss")
			}
		}
	})
	b.Run("memory", func(b *testing.B) {
		d := NewDedup(0, 1<<30)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if d.Seen(ids[i%dialogs], int64(i/dialogs)) {
				b.Fatal("hit")
			}
		}
	})
}

// BenchmarkDedupMemory reports the heap a Dedup full to its default bound
// takes per key: 100,000 keys over 10,000 dialogs. "B/entry" counts the
// Dedup's own memory, the dialog IDs being shared and the caller's;
// "B/entry-own-id" counts a 36-byte dialog ID of its own with each key, as
// when each comes from a notification decoded apart.
func BenchmarkDedupMemory(b *testing.B) {
	const dialogs = 10000
	ids := make([]string, dialogs)
	for i := range ids {
		ids[i] = fmt.Sprintf("5491244f-e462-4c63-bf4e-%012d", i)
	}
	fill := func(own bool) float64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		d := NewDedup(0, 0)
		for i := range defaultMaxEntries {
			id := ids[i%dialogs]
			if own {
				id = strings.Clone(id)
			}
			d.Seen(id, int64(i/dialogs))
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(d)
		return float64(after.HeapAlloc-before.HeapAlloc) / defaultMaxEntries
	}
	b.ReportAllocs()
	var shared, own float64
	for b.Loop() {
		shared, own = fill(false), fill(true)
	}
	b.ReportMetric(shared, "B/entry")
	b.ReportMetric(own, "B/entry-own-id")
}
