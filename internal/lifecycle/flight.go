package lifecycle

import (
	"context"
	"fmt"
)

// Flight is one fetch of a value that any number of callers wait for: the
// caches run one per credential (or host) at a time, and a caller that
// gives up waiting leaves it running for the others.
type Flight[T any] struct {
	done chan struct{}
	val  T
	err  error
}

// NewFlight returns a flight that has not ended.
func NewFlight[T any]() *Flight[T] {
	return &Flight[T]{done: make(chan struct{})}
}

// End sets the flight's outcome and releases its waiters. It is called
// once, by the fetch.
func (f *Flight[T]) End(v T, err error) {
	f.val, f.err = v, err
	close(f.done)
}

// Done is closed once the flight has ended.
func (f *Flight[T]) Done() <-chan struct{} { return f.done }

// Wait returns the flight's outcome once it has ended, or, if ctx is done
// first, an error that says what was awaited and wraps ctx's.
func (f *Flight[T]) Wait(ctx context.Context, awaited string) (T, error) {
	select {
	case <-f.done:
		return f.val, f.err
	case <-ctx.Done():
		var zero T
		return zero, fmt.Errorf("%s: %w", awaited, ctx.Err())
	}
}
