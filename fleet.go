package appjwt

import (
	"context"
	"encoding/json"
	"time"

	"github.com/lpconnect/appjwt/internal/lifecycle"
	"github.com/lpconnect/appjwt/internal/sentinel"
	"github.com/lpconnect/appjwt/internal/shared"
	"golang.org/x/oauth2"
)

// newSlot returns the Store slot of c's tokens, or nil if c names no
// Store or cannot fetch. The slot's lease lasts FetchTimeout, the longest
// a fetch takes.
func newSlot(c *Config, now func() time.Time) *shared.Slot {
	if c.Store == nil || c.validate() != nil {
		return nil
	}
	keys := shared.NewKeys(string(c.ClientSecret), c.AccountID)
	return keys.Slot(c.Store, "appjwt", c.ClientID+"\x00"+c.TokenAPI.String(), c.fetchTimeout(), now)
}

// storedToken is a token as the Store holds it, sealed: all of it that
// the source and [Transport] use. A token taken from the Store has no
// Extra fields but the one that names its API.
type storedToken struct {
	AccessToken string        `json:"a"`
	Expiry      time.Time     `json:"e"`
	Life        time.Duration `json:"l"` // its lifetime when it came
	API         string        `json:"v"`
}

// obtain gets a new token: from Sentinel, without a Store; with one, the
// token another replica stored, or one fetched under the slot's lease and
// stored for the others, or, while the replicas back off after a failed
// fetch, that failure.
func (c *tokenCache) obtain() fetched {
	if c.slot == nil {
		return c.config().fetch(c.ctx, c.domain, c.retry)
	}
	c.mu.Lock()
	held, dropped, failures := c.tok, c.dropped, c.failures.N
	c.mu.Unlock()
	var r fetched
	got, err := c.slot.Obtain(c.ctx, func(plain []byte) bool {
		return c.takes(plain, held, dropped)
	}, func(ctx context.Context) shared.Fetched {
		r = c.config().fetch(ctx, c.domain, c.retry)
		if r.err != nil {
			return shared.Fetched{Err: r.err, RetryIn: c.backoff.Delay(failures + 1)}
		}
		api, _ := r.tok.Extra(sentinel.APIField).(string)
		plain, _ := json.Marshal(storedToken{AccessToken: r.tok.AccessToken, Expiry: r.tok.Expiry, Life: r.tok.Expiry.Sub(c.now()), API: api})
		return shared.Fetched{Plain: plain, TTL: r.tok.Expiry.Sub(c.now())}
	})
	if err != nil {
		if be, ok := err.(*shared.BackoffError); ok {
			r.err, r.retryAt = prefixed(be), be.Until
		} else if r.err == nil {
			r.err = prefixed(err) // the source's context ended while it waited
		}
		return r
	}
	if got.Shared {
		var st storedToken
		json.Unmarshal(got.Plain, &st) // takes parsed it
		r.tok = (&oauth2.Token{AccessToken: st.AccessToken, TokenType: "Bearer", Expiry: st.Expiry}).WithExtra(map[string]any{sentinel.APIField: st.API})
		r.host = "the Store"
	}
	r.sealed = got.Sealed
	return r
}

// takes reports whether the source takes a token it found in the Store:
// one that expires after held, the source's (nil if none), was not
// dropped by the source, and is not due for a refresh itself.
func (c *tokenCache) takes(plain []byte, held *oauth2.Token, dropped string) bool {
	var st storedToken
	if json.Unmarshal(plain, &st) != nil || st.AccessToken == "" || st.AccessToken == dropped {
		return false
	}
	if held != nil && (st.AccessToken == held.AccessToken || !st.Expiry.After(held.Expiry)) {
		return false
	}
	return st.Expiry.Sub(c.now()) > min(c.conf.earlyExpiry(), st.Life/2)
}

// dropShared deletes the current token from the Store, in the background,
// when the source drops it after a rejection: no replica takes it from
// the Store again. The replicas' floor between such deletions is
// [lifecycle.RejectFloor]. c.mu must be held.
func (c *tokenCache) dropShared(tok *oauth2.Token) {
	sealed := c.sealed
	c.dropped, c.sealed = tok.AccessToken, nil
	if c.slot != nil && sealed != nil {
		go c.slot.Drop(c.ctx, sealed, lifecycle.RejectFloor)
	}
}
