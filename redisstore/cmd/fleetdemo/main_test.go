package main

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// The demo tells what the issue promises, with the numbers it promises,
// through Redis killed and back.
func TestRun(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("no redis-server on PATH, and CI=true: .ci/run installs Debian's redis-server")
		}
		t.Skip("no redis-server on PATH (apt-get install redis-server)")
	}
	var out strings.Builder
	if err := run("", 3, &out); err != nil {
		t.Fatalf("run: %v; output:\n%s", err, &out)
	}
	for _, want := range []string{
		`Sentinel requests: 1 `,
		`ConsumerJWSs the idp issued: 100 for 300 lookups`,
		`messages processed: 10 \(`,
		`: 1 new Sentinel request\(s\)`,
		`Redis down: 10 new consumers: (1\d|2\d|30) ConsumerJWSs issued, no call failed`,
		`Redis back: 10 new consumers: 10 ConsumerJWSs issued`,
	} {
		if !regexp.MustCompile(want).MatchString(out.String()) {
			t.Errorf("the demo's output has no line matching %q:\n%s", want, &out)
		}
	}
}
