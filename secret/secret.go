// Package secret holds credentials that never show. A [String] formatted
// with package fmt, written as JSON or text, or logged with log/slog shows
// "[REDACTED]", alone or in a struct, such as appjwt.Config and
// webhook.Config, which hold their client secrets as one.
package secret

import (
	"fmt"
	"io"
	"log/slog"
)

// Redacted is what a non-empty [String] shows.
const Redacted = "[REDACTED]"

// String is a secret, such as an app installation's client secret. Its
// value is string(s), for the code that sends it; everything else sees
// [Redacted], or "" for an empty String, so that a missing secret shows as
// missing. fmt calls its methods for every verb, in a struct too, with
// two exceptions, out of any method's reach, where fmt prints a struct
// that holds one raw: in an unexported field; and with a verb fmt rejects
// for the struct or a pointer to one in it, such as %p of a struct value,
// %w of one that is no error, or %s of a struct holding a *appjwt.Config,
// whose complaint ("%!p(...)") shows the fields as they are. go vet
// reports the second. Reading a String from
// JSON or text takes the value as it is: a [Redacted] read back from a log
// is one to refuse, as [String.IsRedacted] tells.
type String string

// String returns [Redacted], or "" if s is empty.
func (s String) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// Format implements [fmt.Formatter]: every verb, %x and %q included,
// formats s.String(), never the value.
func (s String) Format(f fmt.State, verb rune) {
	switch verb {
	case 'q', 'v':
		if verb == 'q' || f.Flag('#') {
			fmt.Fprintf(f, "%q", s.String())
			return
		}
	}
	io.WriteString(f, s.String())
}

// MarshalText implements [encoding.TextMarshaler], which encoding/json
// uses too: s is written as s.String().
func (s String) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue implements [slog.LogValuer]: s is logged as s.String().
func (s String) LogValue() slog.Value { return slog.StringValue(s.String()) }

// IsRedacted reports whether s is [Redacted]: a String read back from
// what this package wrote, not a secret.
func (s String) IsRedacted() bool { return s == Redacted }
