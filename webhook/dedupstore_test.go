package webhook

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lpconnect/appjwt/store"
)

// fleetOf returns n Dedups over s, as n replicas make them.
func fleetOf(t *testing.T, s store.Store, n int, conf DedupConfig) []*Dedup {
	t.Helper()
	conf.Store = s
	out := make([]*Dedup, n)
	for i := range out {
		d, err := conf.NewDedup()
		if err != nil {
			t.Fatal(err)
		}
		out[i] = d
	}
	return out
}

// Three replicas get every copy of the same events at once, in their own
// orders: each event is processed once, by one of them.
func TestDedupFleetConcurrent(t *testing.T) {
	const events, copies = 500, 3
	fleet := fleetOf(t, store.NewMemory(0), 3, DedupConfig{})
	var processed [events]atomic.Int32
	var wg sync.WaitGroup
	for r, d := range fleet {
		for c := range copies {
			wg.Go(func() {
				for i := range events {
					k := (i + (r*copies+c)*events/9) % events // each starts elsewhere
					dialog := fmt.Sprint("dialog-", k%7)
					if !d.Seen(dialog, int64(k)) {
						processed[k].Add(1)
						d.Done(dialog, int64(k))
					}
				}
			})
		}
	}
	wg.Wait()
	for k := range processed {
		if n := processed[k].Load(); n != 1 {
			t.Errorf("event %d processed %d times, want 1", k, n)
		}
	}
	for i, d := range fleet {
		if st := d.State(); st != (DedupState{}) {
			t.Errorf("replica %d: State %+v, want zero", i, st)
		}
	}
}

// A replica that claims an event and dies (no Done, no Forget) loses
// nothing: a copy within the claim time is dropped, LivePerson's retry,
// 2 s after the failure at the soonest, finds the claim ended and is
// processed by another; once Done, every copy is dropped until the
// retention ends.
func TestDedupFleetReplicaDies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const retention = time.Minute
		fleet := fleetOf(t, store.NewMemory(0), 3, DedupConfig{Retention: retention})
		a, b, c := fleet[0], fleet[1], fleet[2]
		steps := []struct {
			after time.Duration // since the step before
			d     *Dedup
			want  bool // Seen
			done  bool // then Done
		}{
			{0, a, false, false},                                 // a claims, and dies
			{defaultClaimTime / 2, b, true, false},               // a copy, while a's claim holds
			{2*time.Second - defaultClaimTime/2, c, false, true}, // the retry
			{0, b, true, false},
			{retention - time.Nanosecond, a, true, false},
			{time.Nanosecond, b, false, false}, // the retention is over
		}
		for i, s := range steps {
			time.Sleep(s.after)
			if got := s.d.Seen("d", 1); got != s.want {
				t.Errorf("step %d: Seen = %t, want %t", i, got, s.want)
			}
			if s.done {
				s.d.Done("d", 1)
			}
		}
	})
}

// Forget gives the claim back, only the holder's: the retry of an event
// that could not be queued is processed at once, by any replica; another
// replica's Forget, or a Forget after Done, changes nothing.
func TestDedupFleetForget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fleet := fleetOf(t, store.NewMemory(0), 2, DedupConfig{ClaimTime: 10 * time.Second})
		a, b := fleet[0], fleet[1]
		check := func(step string, d *Dedup, want bool) {
			t.Helper()
			if got := d.Seen("d", 1); got != want {
				t.Errorf("%s: Seen = %t, want %t", step, got, want)
			}
		}
		check("a claims", a, false)
		b.Forget("d", 1)
		check("after b's Forget, not b's claim", b, true)
		a.Forget("d", 1)
		check("after a's Forget", b, false)
		b.Done("d", 1)
		b.Forget("d", 1)
		time.Sleep(time.Minute)
		check("after Done, then Forget", a, true)
	})
}

// failing is a Store that fails while down is set, after delay, as one
// whose own timeout ends its calls; it counts the calls.
type failing struct {
	store.Store
	down  atomic.Bool
	delay time.Duration
	calls atomic.Int64
}

var errDown = errors.New("store: connection refused")

func (f *failing) fail() error {
	f.calls.Add(1)
	if !f.down.Load() {
		return nil
	}
	time.Sleep(f.delay)
	return errDown
}

func (f *failing) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if err := f.fail(); err != nil {
		return nil, false, err
	}
	return f.Store.Get(ctx, key)
}

func (f *failing) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.Store.Set(ctx, key, value, ttl)
}

func (f *failing) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := f.fail(); err != nil {
		return false, err
	}
	return f.Store.Add(ctx, key, value, ttl)
}

func (f *failing) Delete(ctx context.Context, key string, value []byte) (bool, error) {
	if err := f.fail(); err != nil {
		return false, err
	}
	return f.Store.Delete(ctx, key, value)
}

// A Store that fails, after its timeout: each replica processes each
// event as it would alone (once, whatever the copies it gets), every call
// waits the Store's timeout and no more, and State tells; once the Store
// is back, the fleet shares it again.
func TestDedupFleetStoreDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 300 * time.Millisecond
		s := &failing{Store: store.NewMemory(0), delay: timeout}
		s.down.Store(true)
		fleet := fleetOf(t, s, 3, DedupConfig{})
		start := time.Now()
		processed := map[int64]int{}
		for _, seq := range []int64{1, 2, 1, 3, 2, 1} {
			for _, d := range fleet {
				called := time.Now()
				if !d.Seen("d", seq) {
					processed[seq]++
					d.Done("d", seq)
				}
				if waited := time.Since(called); waited > 2*timeout {
					t.Errorf("Seen and Done took %v, want at most 2 x the store's %v", waited, timeout)
				}
			}
		}
		if diff := cmp.Diff(map[int64]int{1: 3, 2: 3, 3: 3}, processed); diff != "" {
			t.Errorf("processed, store down (-want +got):\n%s", diff)
		}
		if got := s.calls.Load(); got != 18+9 {
			t.Errorf("%d Store calls, want one per Seen and Done, 27", got)
		}
		st := fleet[0].State()
		if st.Failures != 9 || !errors.Is(st.LastError, errDown) || st.LastErrorAt.Before(start) {
			t.Errorf("State: %+v; want 9 failures in a row (6 Seen, 3 Done), the store's error, and its time", st)
		}

		s.down.Store(false)
		if fleet[0].Seen("d", 4) {
			t.Error("event 4: seen, first copy, store back")
		}
		fleet[0].Done("d", 4)
		for i, d := range fleet {
			if !d.Seen("d", 4) {
				t.Errorf("replica %d: event 4 not seen, store back", i)
			}
			if st := d.State(); st.Failures != 0 || !errors.Is(st.LastError, errDown) {
				t.Errorf("replica %d: State %+v once back; want no failures, the last error kept", i, st)
			}
		}
	})
}

// A Store with no timeout of its own that hangs until its context ends
// holds each call 500 ms, Dedup's own bound, and no longer; the replica
// then decides alone.
func TestDedupStoreHangs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := fleetOf(t, hanging{store.NewMemory(0)}, 1, DedupConfig{})[0]
		for _, tt := range []struct {
			name string
			call func()
		}{
			{"Seen", func() {
				if d.Seen("d", 1) {
					t.Error("Seen: true for the first copy")
				}
			}},
			{"Done", func() { d.Done("d", 1) }},
			{"Forget", func() { d.Forget("d", 1) }},
		} {
			start := time.Now()
			tt.call()
			if got, want := time.Since(start), 500*time.Millisecond; got != want {
				t.Errorf("%s took %v, want %v", tt.name, got, want)
			}
		}
		if got := d.State().Failures; got != 3 {
			t.Errorf("State: %d failures, want 3", got)
		}
	})
}

// hanging is a Store whose writes wait for their context to end.
type hanging struct{ store.Store }

func (hanging) Add(ctx context.Context, _ string, _ []byte, _ time.Duration) (bool, error) {
	<-ctx.Done()
	return false, ctx.Err()
}

func (hanging) Set(ctx context.Context, _ string, _ []byte, _ time.Duration) error {
	<-ctx.Done()
	return ctx.Err()
}

func (hanging) Delete(ctx context.Context, _ string, _ []byte) (bool, error) {
	<-ctx.Done()
	return false, ctx.Err()
}

// Two connectors sharing a Store each process an event once when their
// Namespaces differ; with one Namespace, a fleet, they process it once
// between them.
func TestDedupNamespace(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{{"app1", "app2", 2}, {"app1", "app1", 1}, {"", "", 1}} {
		st := store.NewMemory(0)
		processed := 0
		for _, ns := range []string{tt.a, tt.b} {
			d := fleetOf(t, st, 1, DedupConfig{Namespace: ns})[0]
			if !d.Seen("dialog", 7) {
				processed++
				d.Done("dialog", 7)
			}
		}
		if processed != tt.want {
			t.Errorf("namespaces %q and %q: processed %d times, want %d", tt.a, tt.b, processed, tt.want)
		}
	}
}

// Keys hold no dialog ID in clear, are short, tell the pieces of the key
// apart, and share a Redis Cluster hash tag per dialog.
func TestDedupStoreKey(t *testing.T) {
	const dialog = "5491244f-e462-4c63-bf4e-6a4f5c1e9a31"
	k := storeKey("", dialog, 42)
	if strings.Contains(k, dialog) || strings.Contains(k, "5491244f") {
		t.Errorf("key %q shows the dialog ID", k)
	}
	if len(k) > 40 || !strings.HasPrefix(k, "appjwt:wh:{") {
		t.Errorf("key %q: want at most 40 bytes, prefixed appjwt:wh:{", k)
	}
	tag := func(k string) string { return k[strings.Index(k, "{"):strings.Index(k, "}")] }
	if tag(k) != tag(storeKey("", dialog, 43)) {
		t.Errorf("keys %q and %q of one dialog: not one hash tag", k, storeKey("", dialog, 43))
	}
	keys := map[string]bool{}
	for _, pair := range []struct {
		ns, dialog string
		seq        int64
	}{{"", dialog, 42}, {"", dialog, 4}, {"", dialog + "2", 4}, {"", "le1\x00" + dialog, 42}, {"", "le2\x00" + dialog, 42}, {"", "", 0}, {"app1", dialog, 42}, {"app2", dialog, 42},
		// brands' dialog is account NUL dialog: no Namespace makes it another's.
		{"123", "d", 7}, {"", "123\x00d", 7}, {"a\x00b", "c", 7}, {"a", "b\x00c", 7}} {
		keys[storeKey(pair.ns, pair.dialog, pair.seq)] = true
	}
	if len(keys) != 12 {
		t.Errorf("12 keys, %d distinct", len(keys))
	}
}

func TestDedupConfigBounds(t *testing.T) {
	s := store.NewMemory(0)
	for _, tt := range []struct {
		conf DedupConfig
		want string // "" for no error
	}{
		{DedupConfig{Store: s}, ""},
		{DedupConfig{Store: s, Retention: 259200 * time.Second, ClaimTime: 30 * time.Second}, ""},
		{DedupConfig{Store: s, Retention: 2 * time.Second, ClaimTime: time.Millisecond}, ""},
		{DedupConfig{}, "webhook: DedupConfig.Store is nil"},
		{DedupConfig{Store: s, Retention: 259201 * time.Second}, "webhook: DedupConfig.Retention 72h0m1s is not between 2s and 72h0m0s"},
		{DedupConfig{Store: s, Retention: time.Second}, "webhook: DedupConfig.Retention 1s is not between 2s and 72h0m0s"},
		{DedupConfig{Store: s, Retention: -time.Hour}, "webhook: DedupConfig.Retention -1h0m0s is not between 2s and 72h0m0s"},
		{DedupConfig{Store: s, ClaimTime: 31 * time.Second}, "webhook: DedupConfig.ClaimTime 31s is not between 0 and 30s"},
		{DedupConfig{Store: s, ClaimTime: -time.Second}, "webhook: DedupConfig.ClaimTime -1s is not between 0 and 30s"},
		{DedupConfig{Store: s, Retention: 3 * time.Second, ClaimTime: 3 * time.Second}, "webhook: DedupConfig.ClaimTime 3s is not shorter than Retention 3s"},
	} {
		d, err := tt.conf.NewDedup()
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("NewDedup(%+v): error %q, want %q", tt.conf, got, tt.want)
		}
		if err == nil && tt.conf.Retention != 0 && (d.retention != tt.conf.Retention || d.claimTime != tt.conf.ClaimTime) {
			t.Errorf("NewDedup(%+v): retention %v, claim time %v", tt.conf, d.retention, d.claimTime)
		}
	}
	d, _ := DedupConfig{Store: s}.NewDedup()
	if d.retention != defaultRetention || d.claimTime != defaultClaimTime {
		t.Errorf("zero values: retention %v, claim time %v; want %v, %v", d.retention, d.claimTime, defaultRetention, defaultClaimTime)
	}
}

// Without a Store, Done does nothing and State is zero: Seen's window
// alone decides.
func TestDedupDoneInMemory(t *testing.T) {
	d := NewDedup(0, 0)
	d.Done("d", 1)
	if d.Seen("d", 1) {
		t.Error("Seen after Done alone = true")
	}
	d.Done("d", 1)
	if !d.Seen("d", 1) {
		t.Error("Seen again = false")
	}
	if st := d.State(); st != (DedupState{}) {
		t.Errorf("State %+v, want zero", st)
	}
}
