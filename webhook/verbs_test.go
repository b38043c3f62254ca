package webhook_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/lpconnect/appjwt/internal/testkit"
	"github.com/lpconnect/appjwt/webhook"
)

// verbSecret is a client secret no fmt output may show.
const verbSecret = "s3cret-of-the-app"

// Every fmt verb, with any flags, shows a Config with its secret redacted,
// but the two the Config docs name, for which fmt calls no method and
// prints the value raw: %p of a value that is no pointer, map, slice,
// channel or func, and %w of anything but an error.
func TestConfigEveryVerb(t *testing.T) {
	cfg := webhook.Config{AccountID: "le1", ClientID: "client-1", ClientSecret: verbSecret}
	tests := []struct {
		name string
		v    any
		want []string
	}{
		{"Config", cfg, []string{"p", "w"}},
		{"*Config", &cfg, []string{"w"}},
		{"struct holding one", struct{ C webhook.Config }{cfg}, []string{"p", "w"}},
		{"slice of one", []webhook.Config{cfg}, []string{"w"}},
		{"struct holding a *Config", struct{ C *webhook.Config }{&cfg}, nil},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, testkit.VerbsShowing(verbSecret, tt.v)); diff != "" {
			t.Errorf("%s: verbs that show the secret (-want +got):\n%s", tt.name, diff)
		}
	}
}
