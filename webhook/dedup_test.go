package webhook

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestDedupWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const window = 10 * time.Second
		d := NewDedup(window, 0)
		steps := []struct {
			after time.Duration // since the step before
			seq   int64
			want  bool
		}{
			{0, 1, false},
			{0, 1, true},
			{time.Nanosecond, 2, false},
			{window - 2*time.Nanosecond, 1, true}, // 1's window not over
			{time.Nanosecond, 1, false},           // over: seen anew, from now
			{0, 2, true},                          // 2's window not over
			{time.Nanosecond, 2, false},
			{window - 2*time.Nanosecond, 1, true},
			{time.Nanosecond, 1, false},
		}
		for i, s := range steps {
			time.Sleep(s.after)
			if got := d.Seen("d", s.seq); got != s.want {
				t.Errorf("step %d: Seen(d, %d) = %t, want %t", i, s.seq, got, s.want)
			}
		}
		if got := remembered(d); got != 2 {
			t.Errorf("Len = %d, want 2", got)
		}
		time.Sleep(window)
		if got := remembered(d); got != 0 {
			t.Errorf("Len a window later = %d, want 0", got)
		}
	})
}

// The key is the pair: the same sequence in another dialog is another
// event.
func TestDedupKey(t *testing.T) {
	d := NewDedup(0, 0)
	for _, k := range []struct {
		dialog string
		seq    int64
	}{{"a", 1}, {"b", 1}, {"a", 2}, {"", 1}} {
		if d.Seen(k.dialog, k.seq) {
			t.Errorf("Seen(%q, %d) = true on first sight", k.dialog, k.seq)
		}
	}
}

func TestDedupMaxEntries(t *testing.T) {
	d := NewDedup(time.Hour, 3)
	for i := range 4 {
		d.Seen("d", int64(i))
	}
	if got := remembered(d); got != 3 {
		t.Errorf("Len = %d, want 3", got)
	}
	for _, tt := range []struct {
		seq  int64
		want bool
	}{{3, true}, {2, true}, {1, true}, {0, false}} {
		if got := d.Seen("d", tt.seq); got != tt.want {
			t.Errorf("Seen(d, %d) = %t, want %t", tt.seq, got, tt.want)
		}
	}
	if got := d.Seen("d", 1); got {
		t.Error("Seen(d, 1) = true after 0 came back and pushed it out")
	}
}

func TestDedupForget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const window = 10 * time.Second
		d := NewDedup(window, 0)
		d.Seen("d", 1)
		d.Forget("d", 1)
		time.Sleep(window / 2)
		if d.Seen("d", 1) {
			t.Error("Seen after Forget = true")
		}
		// The first sighting's window ends: the second stays.
		time.Sleep(window / 2)
		if !d.Seen("d", 1) {
			t.Error("Seen half a window after the second sighting = false")
		}
		time.Sleep(window / 2)
		if d.Seen("d", 1) {
			t.Error("Seen a window after the second sighting = true")
		}
		d.Forget("d", 99) // unknown: nothing happens
	})
}

// A steady flow near the bound, where keys both expire and are pushed out
// while the ring wraps around and grows: every key stays seen for its
// window, and the count stays within the bound.
func TestDedupSteadyFlow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			window = 10 * time.Second
			every  = 100 * time.Millisecond // 100 keys a window
			max    = 100
		)
		d := NewDedup(window, max)
		for i := range 1000 {
			if d.Seen("d", int64(i)) {
				t.Fatalf("step %d: new key seen", i)
			}
			if i >= 50 && !d.Seen("d", int64(i-50)) {
				t.Fatalf("step %d: key %d, half a window old, not seen", i, i-50)
			}
			if got, want := remembered(d), min(i+1, max); got != want {
				t.Fatalf("step %d: Len = %d, want %d", i, got, want)
			}
			time.Sleep(every)
		}
		if d.Seen("d", 0) {
			t.Error("key 0, long expired, seen")
		}
	})
}

func TestNewDedupDefaults(t *testing.T) {
	for _, args := range []struct {
		window time.Duration
		max    int
	}{{0, 0}, {-time.Second, -1}} {
		d := NewDedup(args.window, args.max)
		if d.window != defaultWindow || d.max != defaultMaxEntries {
			t.Errorf("NewDedup(%v, %d): window %v, max %d; want %v, %d", args.window, args.max, d.window, d.max, defaultWindow, defaultMaxEntries)
		}
	}
}

// Concurrent callers: each key is new to exactly one of them.
func TestDedupConcurrent(t *testing.T) {
	const callers, keys = 8, 2000
	d := NewDedup(0, keys)
	var firsts [keys]atomic.Int32
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for i := range keys {
				k := (i + c*keys/callers) % keys // callers start apart, and meet
				if !d.Seen(fmt.Sprint("dialog-", k%7), int64(k)) {
					firsts[k].Add(1)
				}
			}
		})
	}
	wg.Wait()
	for k := range firsts {
		if n := firsts[k].Load(); n != 1 {
			t.Errorf("key %d new to %d callers, want 1", k, n)
		}
	}
}

// Concurrent deliveries of the same notifications to a verifying handler
// that drops duplicates: each event is processed once.
func TestDuplicateDeliveriesDropped(t *testing.T) {
	v := newTestVerifier(t)
	dedup := NewDedup(0, 0)
	var mu sync.Mutex
	processed := map[string]int{}
	srv := httptest.NewServer(v.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Error(err)
			return
		}
		n, err := Parse(body)
		if err != nil {
			t.Error(err)
			return
		}
		for _, e := range n.Events {
			if !e.HasSequence || dedup.Seen(e.DialogID, e.Sequence) {
				continue
			}
			mu.Lock()
			processed[fmt.Sprint(e.DialogID, "/", e.Sequence)]++
			mu.Unlock()
		}
	})))
	defer srv.Close()

	bodies := []string{consumerMessage, agentRead, agentMessage, agentCard}
	const copies = 10 // deliveries of each, at once
	var wg sync.WaitGroup
	for range copies {
		for _, body := range bodies {
			wg.Go(func() {
				req, err := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				req.Header = lpHeader(body, testSecret)
				resp, err := srv.Client().Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("delivery answered %s", resp.Status)
				}
			})
		}
	}
	wg.Wait()
	want := map[string]int{dialog + "/0": 1, dialog + "/1": 1, dialog + "/2": 1, dialog + "/5": 1}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(processed) != fmt.Sprint(want) {
		t.Errorf("processed %v, want %v", processed, want)
	}
}

// remembered returns how many keys d remembers now.
func remembered(d *Dedup) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expire(time.Since(d.start))
	return len(d.seen)
}
