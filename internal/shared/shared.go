// Package shared is how the AppJWT source and the ConsumerJWS cache share
// their tokens through a [store.Store], so that a fleet of replicas costs
// LivePerson the load of one: a replica at a refresh point takes the
// value another stored, or takes a lease and fetches while the others
// wait for its value; a failed fetch backs the fleet off; a rejected
// value is deleted for every replica.
//
// Nothing in the store is usable by someone who can read the store alone:
// values are sealed with AES-256-GCM under a key derived from the
// installation's client secret, bound to their key, and keys are keyed
// hashes, naming no account, client or consumer in clear. A store that
// fails or hangs costs each call at most [CallTimeout], after which the
// caller carries on alone, as it does without a store.
package shared

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"time"

	"github.com/lpconnect/appjwt/store"
)

// The bounds of a store's use.
const (
	// CallTimeout bounds each call to the store: a store on loopback or a
	// LAN answers in milliseconds, and a refresh waits no longer than this
	// before it carries on without the store.
	CallTimeout = 500 * time.Millisecond
	// firstPoll is how soon a replica that finds another's lease looks
	// again for that replica's value; it doubles up to maxPoll, until the
	// lease ends.
	firstPoll = 100 * time.Millisecond
	maxPoll   = 2 * time.Second
)

// The HKDF info strings: each derived key names its purpose.
const (
	infoSeal = "github.com/lpconnect/appjwt store v1: AES-256-GCM key of the values"
	infoName = "github.com/lpconnect/appjwt store v1: HMAC-SHA256 key of the key names"
)

// Keys seal the values and name the keys of one installation, derived
// from its client secret. It is safe for concurrent use.
type Keys struct {
	aead cipher.AEAD
	mac  []byte
	tag  string // "{...}": the Redis Cluster hash tag of the account's keys
}

// NewKeys derives the keys of the installation whose client secret is
// secret, for account.
func NewKeys(secret, account string) *Keys {
	// Neither fails: HKDF-SHA256 gives up to 8,160 bytes, and AES takes a
	// 32-byte key, which GCM takes with its standard nonce.
	sk, _ := hkdf.Key(sha256.New, []byte(secret), nil, infoSeal, 32)
	mk, _ := hkdf.Key(sha256.New, []byte(secret), nil, infoName, 32)
	block, _ := aes.NewCipher(sk)
	aead, _ := cipher.NewGCM(block)
	k := &Keys{aead: aead, mac: mk}
	k.tag = "{" + k.hash("account", account)[:16] + "}"
	return k
}

// hash is the keyed hash of name in kind, in hex.
func (k *Keys) hash(kind, name string) string {
	m := hmac.New(sha256.New, k.mac)
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write([]byte(name))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// seal encrypts plain for key: the value opens under that key only.
func (k *Keys) seal(key string, plain []byte) []byte {
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plain)+k.aead.Overhead())
	rand.Read(nonce) // never fails (crypto/rand's documentation)
	return k.aead.Seal(nonce, nonce, plain, []byte(key))
}

// open decrypts what seal made for key.
func (k *Keys) open(key string, sealed []byte) ([]byte, error) {
	n := k.aead.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("sealed value too short")
	}
	return k.aead.Open(nil, sealed[:n], sealed[n:], []byte(key))
}

// Slot is one shared value, such as an installation's AppJWT or a
// consumer's ConsumerJWS, with the keys that go with it: its lease, the
// fleet's backoff after a failed fetch, and its rejection floor. Its keys
// share the account's hash tag. It is safe for concurrent use.
type Slot struct {
	st                           store.Store
	keys                         *Keys
	value, lease, backoff, floor string
	leaseTTL                     time.Duration
	now                          func() time.Time
}

// Slot returns the slot of name in kind (such as "appjwt" or
// "consumerjws") in st. A lease lasts leaseTTL, the longest a fetch takes;
// now is the clock.
func (k *Keys) Slot(st store.Store, kind, name string, leaseTTL time.Duration, now func() time.Time) *Slot {
	base := "lpconnect:" + k.tag + ":" + kind + ":" + k.hash(kind, name)
	return &Slot{st: st, keys: k, value: base, lease: base + ":lease", backoff: base + ":backoff", floor: base + ":floor", leaseTTL: leaseTTL, now: now}
}

// Fetched is what a fetch got: the value to share, for TTL; or, if Err,
// how long the fleet backs off, RetryIn (zero: it does not).
type Fetched struct {
	Plain   []byte
	TTL     time.Duration
	Err     error
	RetryIn time.Duration
}

// Got is the value [Slot.Obtain] obtained.
type Got struct {
	Plain  []byte
	Sealed []byte // as the store holds it, for Drop; nil if it does not
	Shared bool   // another replica fetched it
}

// BackoffError is the error of an Obtain while the fleet backs off after
// another replica's fetch failed.
type BackoffError struct{ Until time.Time }

func (e *BackoffError) Error() string {
	return "a fetch by another replica failed; the replicas back off until " + e.Until.UTC().Format("2006-01-02T15:04:05.000Z")
}

// Obtain returns the value the store holds, if take takes it (it is newer
// than the caller's, and not one it dropped); else it takes the slot's
// lease and returns what fetch gets, stored for the others; while another
// replica holds the lease, it waits for that replica's value, looking
// again after 0.1 s, doubling up to 2 s, until the lease ends. While the
// fleet backs off, it returns a *BackoffError. If the store fails, it
// fetches alone, and asks the store nothing more.
func (s *Slot) Obtain(ctx context.Context, take func(plain []byte) bool, fetch func(context.Context) Fetched) (Got, error) {
	id := make([]byte, 16)
	rand.Read(id)
	wait, deadline := firstPoll, s.now().Add(s.leaseTTL+firstPoll)
	for {
		if g, ok, err := s.taken(ctx, take); err != nil || ok {
			if err != nil {
				return s.alone(ctx, fetch)
			}
			return g, nil
		}
		until, ok, err := s.backingOff(ctx)
		switch {
		case err != nil:
			return s.alone(ctx, fetch)
		case ok:
			return Got{}, &BackoffError{Until: until}
		}
		added, err := s.call(ctx, func(ctx context.Context) (bool, error) { return s.st.Add(ctx, s.lease, id, s.leaseTTL) })
		switch {
		case err != nil:
			return s.alone(ctx, fetch)
		case added:
			return s.leased(ctx, id, take, fetch)
		case !s.now().Before(deadline): // a lease that outlives its TTL: the store's clock is off
			return s.alone(ctx, fetch)
		}
		t := time.NewTimer(min(wait, deadline.Sub(s.now())))
		select {
		case <-ctx.Done():
			t.Stop()
			return Got{}, ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, maxPoll)
	}
}

// taken returns the value stored, if take takes it. A value that does not
// open (sealed under another secret, or tampered with) is none.
func (s *Slot) taken(ctx context.Context, take func([]byte) bool) (Got, bool, error) {
	var sealed []byte
	ok, err := s.call(ctx, func(ctx context.Context) (ok bool, err error) {
		sealed, ok, err = s.st.Get(ctx, s.value)
		return ok, err
	})
	if err != nil || !ok {
		return Got{}, false, err
	}
	plain, err := s.keys.open(s.value, sealed)
	if err != nil || !take(plain) {
		return Got{}, false, nil
	}
	return Got{Plain: plain, Sealed: sealed, Shared: true}, true, nil
}

// backingOff returns until when the fleet backs off, if it does.
func (s *Slot) backingOff(ctx context.Context) (time.Time, bool, error) {
	var sealed []byte
	ok, err := s.call(ctx, func(ctx context.Context) (ok bool, err error) {
		sealed, ok, err = s.st.Get(ctx, s.backoff)
		return ok, err
	})
	if err != nil || !ok {
		return time.Time{}, false, err
	}
	plain, err := s.keys.open(s.backoff, sealed)
	if err != nil || len(plain) != 8 {
		return time.Time{}, false, nil
	}
	until := time.Unix(0, int64(binary.BigEndian.Uint64(plain)))
	return until, s.now().Before(until), nil
}

// leased fetches under the lease id, unless the value came meanwhile, and
// stores what it got, or the fleet's backoff unless ctx ended. Those
// writes and the lease's release outlive ctx by at most CallTimeout each:
// a replica whose context ends mid-fetch must not leave the others
// waiting for the lease's TTL.
func (s *Slot) leased(ctx context.Context, id []byte, take func([]byte) bool, fetch func(context.Context) Fetched) (Got, error) {
	after := context.WithoutCancel(ctx)
	// The lease's holder before it may have stored its value between the
	// look and the lease.
	g, ok, err := s.taken(ctx, take)
	if err != nil || ok {
		s.release(after, id)
		if err != nil {
			return s.alone(ctx, fetch)
		}
		return g, nil
	}
	f := fetch(ctx)
	if f.Err != nil {
		// A fetch cut short by this replica's own end (its context) says
		// nothing of LivePerson: the others must not back off for it.
		if f.RetryIn > 0 && ctx.Err() == nil {
			until := binary.BigEndian.AppendUint64(nil, uint64(s.now().Add(f.RetryIn).UnixNano()))
			s.set(after, s.backoff, s.keys.seal(s.backoff, until), f.RetryIn)
		}
		s.release(after, id)
		return Got{}, f.Err
	}
	sealed := s.keys.seal(s.value, f.Plain)
	if err := s.set(after, s.value, sealed, f.TTL); err != nil {
		return Got{Plain: f.Plain}, nil // the lease ends with its TTL
	}
	s.release(after, id)
	return Got{Plain: f.Plain, Sealed: sealed}, nil
}

// alone fetches without the store, which failed.
func (s *Slot) alone(ctx context.Context, fetch func(context.Context) Fetched) (Got, error) {
	f := fetch(ctx)
	return Got{Plain: f.Plain}, f.Err
}

// Drop deletes sealed, a value a replica took from the slot or stored in
// it and that the API rejected, if the store holds it still, so that no
// replica takes it again; at most once per floor, the fleet's rejection
// floor.
func (s *Slot) Drop(ctx context.Context, sealed []byte, floor time.Duration) {
	if sealed == nil {
		return
	}
	added, err := s.call(ctx, func(ctx context.Context) (bool, error) { return s.st.Add(ctx, s.floor, []byte{1}, floor) })
	if err == nil && added {
		s.call(ctx, func(ctx context.Context) (bool, error) { return s.st.Delete(ctx, s.value, sealed) })
	}
}

func (s *Slot) set(ctx context.Context, key string, sealed []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return nil
	}
	_, err := s.call(ctx, func(ctx context.Context) (bool, error) { return true, s.st.Set(ctx, key, sealed, ttl) })
	return err
}

func (s *Slot) release(ctx context.Context, id []byte) {
	s.call(ctx, func(ctx context.Context) (bool, error) { return s.st.Delete(ctx, s.lease, id) })
}

func (s *Slot) call(ctx context.Context, do func(context.Context) (bool, error)) (bool, error) {
	return Call(ctx, do)
}

// Call makes one call to a store, under a context that ends after
// CallTimeout; an answer after that is a failure, whatever the store
// says, so that a slow store is left for the caller's own memory.
func Call(ctx context.Context, do func(context.Context) (bool, error)) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	ok, err := do(ctx)
	if err == nil {
		err = ctx.Err() // a store that answers after its deadline failed
	}
	return ok, err
}
