package brands

import (
	"errors"
	"sort"
	"time"

	"github.com/lpconnect/appjwt"
	"github.com/lpconnect/appjwt/secret"
	"github.com/lpconnect/appjwt/webhook"
)

// webhookLookupWait bounds how long a notification for a brand not held
// waits for its lookup: LivePerson gives an endpoint 5 s to answer.
const webhookLookupWait = 3 * time.Second

// NewVerifier returns a webhook Verifier for every brand: c's settings,
// with the secrets of each account's installation, both while its secret
// is rotated, and only for notifications whose client id is the
// installation's. A notification for an account not held waits for its
// lookup, at most 3 s; one for an account the lookup does not know, or
// failed to find within the last 30 s, is refused at once (401). c must
// not set ClientSecret, Secrets or PreviousSecrets.
func (c *Cache) NewVerifier(conf webhook.Config) (*webhook.Verifier, error) {
	if conf.ClientSecret != "" || conf.Secrets != nil || conf.PreviousSecrets != nil {
		return nil, errors.New("brands: NewVerifier's webhook.Config sets a secret: the Cache supplies them")
	}
	conf.Secrets = func(account, client string) (secret.String, bool) {
		inst := c.installation(account, client)
		if inst == nil {
			return "", false
		}
		return inst.ClientSecret, true
	}
	conf.PreviousSecrets = func(account, client string) (secret.String, bool) {
		inst := c.installation(account, client)
		if inst == nil || inst.PreviousSecret == "" {
			return "", false
		}
		return inst.PreviousSecret, true
	}
	return conf.NewVerifier()
}

// installation returns account's installation if its client id is
// client, looking it up if need be.
func (c *Cache) installation(account, client string) *Installation {
	b, err := c.getFor(c.ctx, account, true)
	if err != nil {
		return nil
	}
	inst := b.inst.Load()
	if inst.ClientID != client {
		return nil
	}
	return inst
}

// Seen is [webhook.Dedup.Seen] with the account in the key, for the
// notifications of every brand: it reports whether (account, dialogID,
// sequence) was seen within the last 10 minutes, and if not remembers it.
// It remembers at most 100,000 keys, across all brands. With
// [Config.Store], the replicas share what they saw: Seen claims the key
// for 1 s, and [Cache.Done] records it for an hour.
func (c *Cache) Seen(account, dialogID string, sequence int64) bool {
	return c.dedup.Seen(dedupKey(account, dialogID), sequence)
}

// Done is [webhook.Dedup.Done] with the account in the key: it records
// the event processed, for every replica; without [Config.Store] it does
// nothing.
func (c *Cache) Done(account, dialogID string, sequence int64) {
	c.dedup.Done(dedupKey(account, dialogID), sequence)
}

// Forget is [webhook.Dedup.Forget] with the account in the key.
func (c *Cache) Forget(account, dialogID string, sequence int64) {
	c.dedup.Forget(dedupKey(account, dialogID), sequence)
}

// dedupKey is the dialog of the Dedup's key: account ids hold no NUL.
func dedupKey(account, dialogID string) string {
	return account + "\x00" + dialogID
}

// Health is a snapshot of one brand, for a readiness or metrics endpoint.
type Health struct {
	// Account is the brand's account id.
	Account string
	// Held: the brand's installation was found, and the brand is held.
	Held bool
	// State is the State of the brand's AppJWT source; zero unless Held.
	State appjwt.State
	// LookupError is the last lookup's error, if it failed: of a held
	// brand, its last re-lookup's; else a failed first lookup that is
	// still remembered (not one of an account the lookup does not know).
	LookupError error
	// LookedUpAt is when the installation was last found, or the failed
	// lookup ended.
	LookedUpAt time.Time
}

// Health returns a snapshot of every brand held and every failed first
// lookup remembered, by account. It waits for no fetch or lookup. Like
// [appjwt.Source.State], it counts as a call for each brand's token (a
// source with none starts a fetch), but not as a use of the brand: idle
// brands are dropped all the same.
func (c *Cache) Health() []Health {
	c.mu.RLock()
	held := make([]*brand, 0, len(c.brands))
	for _, b := range c.brands {
		held = append(held, b)
	}
	var out []Health
	for a, m := range c.misses {
		if !errors.Is(m.err, ErrUnknownBrand) {
			out = append(out, Health{Account: a, LookupError: m.err, LookedUpAt: m.at})
		}
	}
	c.mu.RUnlock()
	for _, b := range held {
		b.mu.Lock()
		h := Health{Account: b.account, Held: true, LookupError: b.lookupErr, LookedUpAt: b.lookedUpAt}
		b.mu.Unlock()
		cr := b.cur.Load()
		h.State = cr.src.State()
		if invalidClient(h.State.LastError) {
			go b.rotate(b.ctx, cr) // a readiness check alone recovers the brand
		}
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Account < out[j].Account })
	return out
}
