package store

import (
	"bytes"
	"container/heap"
	"context"
	"sync"
	"time"
)

// defaultMaxEntries bounds a Memory that NewMemory is given no bound for.
const defaultMaxEntries = 100000

// Memory is a [Store] in this process's memory: the state of one replica,
// which is what the packages of this module keep when their Config names
// no Store. It holds at most its bound of keys: beyond it, the key whose
// time to live ends first goes first. Its methods never fail.
type Memory struct {
	max int
	now func() time.Time

	mu      sync.Mutex
	entries map[string]*entry
	expiry  expiryHeap // the entries, the soonest to expire first
}

type entry struct {
	key   string
	value []byte
	until time.Time
	index int // in expiry
}

// NewMemory returns a Memory of at most maxEntries keys; zero or less:
// 100,000.
func NewMemory(maxEntries int) *Memory {
	if maxEntries <= 0 {
		maxEntries = defaultMaxEntries
	}
	return &Memory{max: maxEntries, now: time.Now, entries: map[string]*entry{}}
}

// Get implements [Store].
func (m *Memory) Get(_ context.Context, key string) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.live(key)
	if e == nil {
		return nil, false, nil
	}
	return bytes.Clone(e.value), true, nil
}

// Set implements [Store].
func (m *Memory) Set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.put(key, value, ttl)
	return nil
}

// Add implements [Store].
func (m *Memory) Add(_ context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.live(key) != nil {
		return false, nil
	}
	m.put(key, value, ttl)
	return true, nil
}

// Delete implements [Store].
func (m *Memory) Delete(_ context.Context, key string, value []byte) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.live(key)
	if e == nil || value != nil && !bytes.Equal(e.value, value) {
		return false, nil
	}
	m.remove(e)
	return true, nil
}

// live returns key's entry, if it has not expired; an expired one is
// dropped. m.mu must be held.
func (m *Memory) live(key string) *entry {
	e := m.entries[key]
	if e != nil && !m.now().Before(e.until) {
		m.remove(e)
		return nil
	}
	return e
}

// put stores value under key for ttl, dropping expired entries and then,
// beyond the bound, those that expire first. m.mu must be held.
func (m *Memory) put(key string, value []byte, ttl time.Duration) {
	now := m.now()
	if e := m.entries[key]; e != nil {
		e.value, e.until = bytes.Clone(value), now.Add(ttl)
		heap.Fix(&m.expiry, e.index)
		return
	}
	for len(m.expiry) > 0 && (!now.Before(m.expiry[0].until) || len(m.entries) >= m.max) {
		m.remove(m.expiry[0])
	}
	e := &entry{key: key, value: bytes.Clone(value), until: now.Add(ttl)}
	m.entries[key] = e
	heap.Push(&m.expiry, e)
}

func (m *Memory) remove(e *entry) {
	heap.Remove(&m.expiry, e.index)
	delete(m.entries, e.key)
}

// expiryHeap orders entries by when they expire.
type expiryHeap []*entry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].until.Before(h[j].until) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i]; h[i].index, h[j].index = i, j }
func (h *expiryHeap) Push(x any)        { e := x.(*entry); e.index = len(*h); *h = append(*h, e) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
