// Package e2e holds end-to-end tests that need more than the root module
// may depend on: a real browser, driven with chromedp, against the agent
// console of cmd/appjwttest. It is a module of its own so that the root
// module keeps to golang.org/x/oauth2 and go-cmp.
//
// The tests look for Chromium as chromium, chromium-browser or
// google-chrome on $PATH, or at $CHROMIUM. Without one they skip, unless
// $CI is "true", where they fail: CI installs Debian's chromium package.
package e2e
