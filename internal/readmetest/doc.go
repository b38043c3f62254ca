// Package readmetest holds the test that compiles and vets the Go blocks
// of README.md and of docs/*.md, as a reader who pastes them would.
package readmetest
