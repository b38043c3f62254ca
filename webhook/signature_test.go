package webhook

import (
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
)

func TestParseSignature(t *testing.T) {
	sha1Hex := strings.Repeat("0f", 20)
	sha256B64 := "xcF8VakxqTEyCxiQTwStupGCz3NC4FFTqXifBmmIRBM="
	tests := []struct {
		value string
		alg   algorithm // "" for a value that does not parse
	}{
		{"sha1=12DcfY3NhieG0uMlGlNX/SHWBeQ=", algSHA1},
		{"sha256=" + sha256B64, algSHA256},
		{"sha1=" + sha1Hex, algSHA1},
		{"sha1=" + strings.ToUpper(sha1Hex), algSHA1},
		{"Sha256=" + sha256B64, algSHA256},
		{"sha256=" + strings.Repeat("aB", 32), algSHA256},
		{"", ""},
		{"=", ""},
		{"sha1", ""},
		{"sha1=", ""},
		{"sha1=12DcfY3NhieG0uMlGlNX/SHWBeQ", ""}, // padding dropped
		{"sha1=12DcfY3NhieG0uMlGlNX/SHWBeR=", ""},  // non-zero unused bits
		{"sha1=12DcfY3NhieG0uMlGlNX/SHWBe==", ""},  // 19 bytes, padded to 28
		{"sha1=12DcfY3NhieG0uMlGlNX-SHWBeQ=", ""},  // URL alphabet
		{"sha1=12DcfY3Nhi\nG0uMlGlNX/SHWBeQ=", ""}, // a newline, which base64 skips
		{"sha1=" + sha1Hex[:39] + "g", ""},
		{"sha1=" + sha1Hex + "0", ""},
		{"sha1 =" + sha1Hex, ""},
		{" sha1=" + sha1Hex, ""},
		{"sha1=" + sha1Hex + " ", ""},
		{"sha256=12DcfY3NhieG0uMlGlNX/SHWBeQ=", ""}, // a SHA-1 MAC
		{"sha1=" + sha256B64, ""},                   // a SHA-256 MAC
		{"sha512=" + sha256B64, ""},
		{"sha1=sha1=" + sha1Hex, ""},
	}
	for _, tt := range tests {
		s, ok := parseSignature(tt.value)
		if ok != (tt.alg != "") || ok && s.alg != tt.alg {
			t.Errorf("parseSignature(%q) = %q, %t; want %q, %t", tt.value, s.alg, ok, tt.alg, tt.alg != "")
		}
	}
}

// FuzzParseSignature checks that parseSignature never panics, and that
// what it accepts is a scheme and the one encoding of a MAC of the
// scheme's size: encoding the MAC again gives back the value (up to the
// case of the scheme and of hex digits).
func FuzzParseSignature(f *testing.F) {
	// The seed corpus is in testdata/fuzz/FuzzParseSignature.
	f.Fuzz(func(t *testing.T, v string) {
		s, ok := parseSignature(v)
		if !ok {
			return
		}
		scheme, enc, _ := strings.Cut(v, "=")
		if !strings.EqualFold(scheme, string(s.alg)) {
			t.Fatalf("parseSignature(%q): algorithm %q", v, s.alg)
		}
		mac := s.mac()
		if len(mac) != s.alg.size() {
			t.Fatalf("parseSignature(%q): MAC of %d bytes", v, len(mac))
		}
		if b64 := base64.StdEncoding.EncodeToString(mac); enc != b64 && !strings.EqualFold(enc, hex.EncodeToString(mac)) {
			t.Fatalf("parseSignature(%q): MAC %x encodes as neither %q nor its hex", v, mac, b64)
		}
	})
}
