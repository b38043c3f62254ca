package lifecycle

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// The floor between drops is RejectFloor after one, doubling with each
// drop since, up to the limit, or RejectFloor if the limit is less.
func TestFloorDoubles(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		limit  time.Duration
		floors []time.Duration // between one drop and the next
	}{
		{time.Hour, []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second}},
		{15 * time.Second, []time.Duration{5 * time.Second, 10 * time.Second, 15 * time.Second, 15 * time.Second}},
		{time.Second, []time.Duration{RejectFloor, RejectFloor, RejectFloor}},
	} {
		var f Floor
		var r Rejections
		at := now
		if dropped, again := f.Drop(&r, at, "/p", tt.limit); !dropped || again || !f.Rejecting() {
			t.Errorf("limit %v: the first rejection: dropped %v, again %v, rejecting %v; want a drop, the first", tt.limit, dropped, again, f.Rejecting())
		}
		for i, floor := range tt.floors {
			if dropped, again := f.Drop(&r, at.Add(floor-1), "/p", tt.limit); dropped || !again {
				t.Errorf("limit %v, drop %d: dropped %v (again %v) %v after the last, want no drop before %v", tt.limit, i+2, dropped, again, floor-1, floor)
			}
			at = at.Add(floor)
			if dropped, again := f.Drop(&r, at, "/p", tt.limit); !dropped || !again {
				t.Errorf("limit %v, drop %d: dropped %v (again %v) %v after the last, want a drop", tt.limit, i+2, dropped, again, floor)
			}
		}
	}
}

// An acceptance on the path the drops came from, or on any if that is
// unknown, ends them: the next rejection drops at once, as a first. One on
// another path does not.
func TestFloorAccept(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		droppedOn, acceptedOn string
		ends                  bool
	}{
		{"/a", "/a", true},
		{"", "/b", true},
		{"/a", "/b", false},
	} {
		var f Floor
		var r Rejections
		f.Drop(&r, now, tt.droppedOn, time.Hour)
		f.Accept(&r, tt.acceptedOn)
		dropped, again := f.Drop(&r, now.Add(time.Second), tt.droppedOn, time.Hour)
		if !f.Rejecting() || dropped != tt.ends || again == tt.ends {
			t.Errorf("dropped on %q, accepted on %q: a rejection 1 s on dropped %v, again %v, rejecting %v; want drops ended: %v", tt.droppedOn, tt.acceptedOn, dropped, again, f.Rejecting(), tt.ends)
		}
	}
}

// Rejecting counts the credentials under drops, each once, whatever ends
// their drops, however often.
func TestFloorForget(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	var f Floor
	var a, b Rejections
	f.Drop(&a, now, "/a", time.Hour)
	f.Drop(&a, now.Add(RejectFloor), "/a", time.Hour)
	f.Drop(&b, now, "", time.Hour)
	steps := []struct {
		name string
		do   func()
		want bool
	}{
		{"forget a", func() { f.Forget(&a) }, true},
		{"forget a again", func() { f.Forget(&a) }, true},
		{"accept b", func() { f.Accept(&b, "/x") }, false},
		{"forget b", func() { f.Forget(&b) }, false},
		{"drop a anew", func() { f.Drop(&a, now, "/a", time.Hour) }, true},
		{"forget a", func() { f.Forget(&a) }, false},
	}
	for _, st := range steps {
		st.do()
		if got := f.Rejecting(); got != st.want {
			t.Errorf("after %s: Rejecting() = %v, want %v", st.name, got, st.want)
		}
	}
	if a != (Rejections{}) {
		t.Errorf("forgotten drops: %+v, want none", a)
	}
}

// Every waiter of a flight gets its outcome; one whose context ends first
// gets an error saying what it awaited, and leaves the flight to the rest.
func TestFlight(t *testing.T) {
	f := NewFlight[int]()
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if v, err := f.Wait(gone, "waiting for a token"); v != 0 || !errors.Is(err, context.Canceled) || err.Error() != "waiting for a token: context canceled" {
		t.Errorf("a waiter whose context ended: %v, %v; want 0 and an error naming what it awaited", v, err)
	}
	select {
	case <-f.Done():
		t.Fatal("Done closed before End")
	default:
	}
	boom := errors.New("boom")
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if v, err := f.Wait(context.Background(), "waiting"); v != 7 || err != boom {
				t.Errorf("Wait() = %v, %v; want 7, boom", v, err)
			}
		})
	}
	f.End(7, boom)
	wg.Wait()
	<-f.Done()
}
