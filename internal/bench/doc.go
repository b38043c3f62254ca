// Package bench holds the benchmarks that compare appjwt's public API with
// what a user would otherwise pick, x/oauth2's clientcredentials and a
// hand-rolled source, as a user's code would call them.
// docs/benchmarks.md has the command and the results.
package bench
