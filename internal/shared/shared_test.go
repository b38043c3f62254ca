package shared

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lpconnect/appjwt/store"
)

// A sealed value opens under its key and the secret it was sealed with,
// and under nothing else.
func TestSeal(t *testing.T) {
	k := NewKeys("s3cret", "123")
	sealed := k.seal("a", []byte("token"))
	if strings.Contains(string(sealed), "token") {
		t.Fatal("the sealed value holds the plain text")
	}
	if plain, err := k.open("a", sealed); err != nil || string(plain) != "token" {
		t.Errorf("open = %q, %v; want the token", plain, err)
	}
	for name, open := range map[string]func() ([]byte, error){
		"another key":    func() ([]byte, error) { return k.open("b", sealed) },
		"another secret": func() ([]byte, error) { return NewKeys("other", "123").open("a", sealed) },
		"truncated":      func() ([]byte, error) { return k.open("a", sealed[:5]) },
	} {
		if _, err := open(); err == nil {
			t.Errorf("%s: opened, want an error", name)
		}
	}
}

// The keys of one account share a hash tag, whatever the kind; they name
// neither account nor name in clear.
func TestSlotKeys(t *testing.T) {
	k := NewKeys("s3cret", "123456")
	a := k.Slot(nil, "appjwt", "client", time.Second, time.Now)
	b := k.Slot(nil, "consumerjws", "john", time.Second, time.Now)
	c := NewKeys("s3cret", "654321").Slot(nil, "appjwt", "client", time.Second, time.Now)
	tag := func(key string) string { return key[strings.Index(key, "{"):strings.Index(key, "}")] }
	if tag(a.value) != tag(b.lease) || tag(a.value) == tag(c.value) {
		t.Errorf("tags %s, %s, %s: want the first two alike, the third not", a.value, b.lease, c.value)
	}
	for _, key := range []string{a.value, a.lease, a.backoff, a.floor, b.value} {
		if strings.Contains(key, "123456") || strings.Contains(key, "client") || strings.Contains(key, "john") {
			t.Errorf("key %q names what it is for in clear", key)
		}
	}
}

// One Obtain fetches under the lease; another, while the lease is held,
// waits for its value; after a failure, the next backs off.
func TestObtain(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory(0)
	s := NewKeys("s3cret", "1").Slot(st, "appjwt", "c", time.Second, time.Now)
	takeAll := func([]byte) bool { return true }
	fetches := 0
	fetch := func(context.Context) Fetched { fetches++; return Fetched{Plain: []byte("v1"), TTL: time.Minute} }
	g, err := s.Obtain(ctx, takeAll, fetch)
	if err != nil || string(g.Plain) != "v1" || g.Shared || g.Sealed == nil {
		t.Fatalf("first Obtain: %+v, %v; want v1, fetched and stored", g, err)
	}
	g, err = s.Obtain(ctx, takeAll, fetch)
	if err != nil || string(g.Plain) != "v1" || !g.Shared || fetches != 1 {
		t.Errorf("second Obtain: %+v, %v after %d fetches; want v1 from the store, 1 fetch", g, err, fetches)
	}
	s.Drop(ctx, g.Sealed, time.Minute)
	boom := errors.New("boom")
	if _, err := s.Obtain(ctx, takeAll, func(context.Context) Fetched { return Fetched{Err: boom, RetryIn: time.Minute} }); err != boom {
		t.Fatalf("a failed fetch: %v, want boom", err)
	}
	var be *BackoffError
	if _, err := s.Obtain(ctx, takeAll, fetch); !errors.As(err, &be) || fetches != 1 {
		t.Errorf("after a failure: %v, %d fetches; want a BackoffError, no fetch", err, fetches)
	}
}

// A fetch that fails because its context ended, as a source's does when
// it is closed mid-fetch, still releases the lease, and backs no one off:
// another replica fetches at once rather than waiting out the lease's
// TTL or a backoff for a failure that was not LivePerson's.
func TestObtainReleasesLeaseWhenContextEnds(t *testing.T) {
	st := store.NewMemory(0)
	keys := NewKeys("s3cret", "1")
	a := keys.Slot(ctxStore{st}, "appjwt", "c", time.Hour, time.Now)
	ctx, cancel := context.WithCancel(context.Background())
	_, err := a.Obtain(ctx, func([]byte) bool { return true }, func(ctx context.Context) Fetched {
		cancel()
		return Fetched{Err: ctx.Err(), RetryIn: time.Minute}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Obtain = %v, want context.Canceled", err)
	}
	if _, held, err := st.Get(context.Background(), a.lease); err != nil || held {
		t.Errorf("lease held = %v (%v) after the fetch ended, want released", held, err)
	}
	b := keys.Slot(ctxStore{st}, "appjwt", "c", time.Hour, time.Now)
	fetched := false
	g, err := b.Obtain(context.Background(), func([]byte) bool { return true }, func(context.Context) Fetched {
		fetched = true
		return Fetched{Plain: []byte("v1"), TTL: time.Minute}
	})
	if err != nil || !fetched || string(g.Plain) != "v1" {
		t.Errorf("another replica's Obtain: %q, %v, fetched %v; want v1 fetched at once", g.Plain, err, fetched)
	}
}

// ctxStore refuses a call whose context has ended, as a network store
// does.
type ctxStore struct{ store.Store }

func (s ctxStore) Delete(ctx context.Context, key string, value []byte) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	return s.Store.Delete(ctx, key, value)
}
