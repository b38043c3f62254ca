package consumerjws

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// Formatting, logging or writing a Cache as JSON shows a summary, never
// an ext_consumer_id or a token, whatever the verb and wherever it sits.
func TestFormatShowsNoConsumer(t *testing.T) {
	c := fakeCache(&fakeIdP{}, 0)
	const id = "john_doe_42"
	jws, err := c.Token(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	const summary = `consumerjws.Cache{account: "le1", consumers: 1, fetching: 0}`
	const jsonSummary = `{"account":"le1","consumers":1,"fetching":0}`
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d", "%10v"} {
		if got := fmt.Sprintf(verb, c); got != summary {
			t.Errorf("%s: %q, want %q", verb, got, summary)
		}
	}
	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("m", "cache", c)
	slog.New(slog.NewJSONHandler(&js, nil)).Info("m", "cache", c)
	asJSON, err := json.Marshal(struct{ Cache *Cache }{c})
	if err != nil {
		t.Fatal(err)
	}
	texts := map[string]string{
		"%+v in a struct":      fmt.Sprintf("%+v", struct{ Cache *Cache }{c}),
		"%#v of a Transport":   fmt.Sprintf("%#v", &Transport{Cache: c}),
		"%v of a Transport":    fmt.Sprintf("%v", Transport{Cache: c}),
		"slog TextHandler":     text.String(),
		"slog JSONHandler":     js.String(),
		"JSON in a struct":     string(asJSON),
		"%v of a nil Cache":    fmt.Sprintf("%v", (*Cache)(nil)),
		"JSON of a nil Cache":  func() string { b, _ := json.Marshal((*Cache)(nil)); return string(b) }(),
		"slog of a nil Cache":  (*Cache)(nil).LogValue().String(),
		"the summary, as JSON": func() string { b, _ := json.Marshal(c); return string(b) }(),
	}
	for name, got := range texts {
		if strings.Contains(got, id) || strings.Contains(got, jws) || strings.Contains(got, jwsPad[:32]) {
			t.Errorf("%s shows the consumer or the ConsumerJWS: %s", name, got)
		}
	}
	if got := texts["the summary, as JSON"]; got != jsonSummary {
		t.Errorf("JSON: %s, want %s", got, jsonSummary)
	}
	if got, want := text.String(), "cache.account=le1 cache.consumers=1 cache.fetching=0"; !strings.Contains(got, want) {
		t.Errorf("slog: %s, want %s in it", got, want)
	}
}
