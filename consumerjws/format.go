package consumerjws

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
)

// LogValue implements [slog.LogValuer]: a Cache logs as a summary, its
// account, the consumers it holds and the fetches it runs, never an
// ext_consumer_id (which often names a person) or a token. It takes the
// Cache's lock for a moment, and waits for no fetch.
func (c *Cache) LogValue() slog.Value {
	s := c.summary()
	return slog.GroupValue(slog.String("account", s.Account), slog.Int("consumers", s.Consumers), slog.Int("fetching", s.Fetching))
}

// Format implements [fmt.Formatter]: every verb, %#v included, shows the
// summary of [Cache.LogValue], such as
//
//	consumerjws.Cache{account: "le12345678", consumers: 2, fetching: 0}
func (c *Cache) Format(f fmt.State, _ rune) {
	if c == nil {
		io.WriteString(f, "<nil>")
		return
	}
	s := c.summary()
	fmt.Fprintf(f, "consumerjws.Cache{account: %q, consumers: %d, fetching: %d}", s.Account, s.Consumers, s.Fetching)
}

// MarshalJSON implements [json.Marshaler]: a Cache written as JSON is the
// summary of [Cache.LogValue], such as
// {"account":"le12345678","consumers":2,"fetching":0}.
func (c *Cache) MarshalJSON() ([]byte, error) {
	return json.Marshal(c.summary())
}

// summary is what a Cache shows of itself.
type summary struct {
	Account   string `json:"account"`
	Consumers int    `json:"consumers"`
	Fetching  int    `json:"fetching"`
}

func (c *Cache) summary() summary {
	if c == nil {
		return summary{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return summary{Account: c.conf.AccountID, Consumers: len(c.m), Fetching: len(c.flights)}
}
