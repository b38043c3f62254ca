package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Store's contract, as Memory keeps it: Add only where nothing is, Delete
// only of the value given, values out of reach once their time is up.
func TestMemory(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	m := NewMemory(3)
	m.now = func() time.Time { return now }
	steps := []struct {
		name string
		do   func() (any, error)
		want any
	}{
		{"get nothing", func() (any, error) { _, ok, err := m.Get(ctx, "a"); return ok, err }, false},
		{"add", func() (any, error) { return m.Add(ctx, "a", []byte("1"), time.Minute) }, true},
		{"add again", func() (any, error) { return m.Add(ctx, "a", []byte("2"), time.Minute) }, false},
		{"get", func() (any, error) { v, _, err := m.Get(ctx, "a"); return string(v), err }, "1"},
		{"delete another value", func() (any, error) { return m.Delete(ctx, "a", []byte("2")) }, false},
		{"delete its value", func() (any, error) { return m.Delete(ctx, "a", []byte("1")) }, true},
		{"add after delete", func() (any, error) { return m.Add(ctx, "a", []byte("3"), time.Minute) }, true},
		{"set over it", func() (any, error) { return nil, m.Set(ctx, "a", []byte("4"), time.Second) }, nil},
		{"expired", func() (any, error) {
			now = now.Add(time.Second)
			_, ok, err := m.Get(ctx, "a")
			return ok, err
		}, false},
		{"add once expired", func() (any, error) { return m.Add(ctx, "a", []byte("5"), time.Minute) }, true},
		{"delete whatever", func() (any, error) { return m.Delete(ctx, "a", nil) }, true},
	}
	for _, st := range steps {
		got, err := st.do()
		if err != nil || got != st.want {
			t.Fatalf("%s: %v, %v; want %v", st.name, got, err, st.want)
		}
	}
}

// Beyond its bound, the key that expires first goes first.
func TestMemoryBound(t *testing.T) {
	ctx := context.Background()
	m := NewMemory(3)
	for i, ttl := range []time.Duration{time.Hour, time.Minute, 2 * time.Hour, 3 * time.Hour} {
		m.Set(ctx, fmt.Sprint(i), []byte("v"), ttl)
	}
	if got := len(m.entries); got != 3 {
		t.Errorf("%d keys, want the bound, 3", got)
	}
	for key, want := range map[string]bool{"0": true, "1": false, "2": true, "3": true} {
		if _, ok, _ := m.Get(ctx, key); ok != want {
			t.Errorf("key %s held: %v, want %v", key, ok, want)
		}
	}
	// A value handed out is the caller's.
	v, _, _ := m.Get(ctx, "0")
	v[0] = 'x'
	if again, _, _ := m.Get(ctx, "0"); string(again) != "v" {
		t.Errorf("changing what Get returned changed the store: %q", again)
	}
}
