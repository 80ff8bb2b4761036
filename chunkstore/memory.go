package chunkstore

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Memory is an in-memory Store for tests. It implements Store, Deleter,
// Lister, Stater and Toucher, is safe for concurrent use, and copies data in on Put
// and out on Get so callers may reuse their buffers. Memory does not check
// that data hashes to id on Put; Get reports ErrCorrupt if it does not.
type Memory struct {
	mu     sync.Mutex
	chunks map[ID]memChunk
	bytes  int64
	now    func() time.Time
}

type memChunk struct {
	data    []byte
	modTime time.Time
}

var (
	_ Store      = (*Memory)(nil)
	_ Deleter    = (*Memory)(nil)
	_ Lister     = (*Memory)(nil)
	_ Stater     = (*Memory)(nil)
	_ Toucher    = (*Memory)(nil)
	_ LazyPutter = (*Memory)(nil)
)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{chunks: make(map[ID]memChunk), now: time.Now}
}

// Put implements Store.
func (m *Memory) Put(ctx context.Context, id ID, data []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory put %s: %w", id, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if c, ok := m.chunks[id]; ok {
		c.modTime = now
		m.chunks[id] = c
		return nil
	}
	m.chunks[id] = memChunk{data: append([]byte{}, data...), modTime: now}
	m.bytes += int64(len(data))
	return nil
}

// PutLazy implements LazyPutter; memory has nothing to sync, so it is Put.
func (m *Memory) PutLazy(ctx context.Context, id ID, data []byte) error { return m.Put(ctx, id, data) }

// Sync implements LazyPutter; it has nothing to do.
func (m *Memory) Sync(ctx context.Context) error { return ctx.Err() }

// Get implements Store.
func (m *Memory) Get(ctx context.Context, id ID) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory get %s: %w", id, err)
	}
	m.mu.Lock()
	c, ok := m.chunks[id]
	m.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("memory get %s: %w", id, ErrNotFound)
	}
	if Sum(c.data) != id {
		return nil, fmt.Errorf("memory get %s: %w", id, ErrCorrupt)
	}
	return append([]byte{}, c.data...), nil
}

// Has implements Store.
func (m *Memory) Has(ctx context.Context, id ID) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("memory has %s: %w", id, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.chunks[id]
	return ok, nil
}

// Touch implements Toucher.
func (m *Memory) Touch(ctx context.Context, id ID) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("memory touch %s: %w", id, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.chunks[id]
	if ok {
		c.modTime = m.now()
		m.chunks[id] = c
	}
	return ok, nil
}

// Delete implements Deleter.
func (m *Memory) Delete(ctx context.Context, id ID, before time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("memory delete %s: %w", id, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.chunks[id]
	if !ok || !c.modTime.Before(before) {
		return false, nil
	}
	delete(m.chunks, id)
	m.bytes -= int64(len(c.data))
	return true, nil
}

// List implements Lister. fn is called without the store's lock held, on a
// snapshot taken when List starts.
func (m *Memory) List(ctx context.Context, fn func(id ID, modTime time.Time) error) error {
	type entry struct {
		id ID
		t  time.Time
	}
	m.mu.Lock()
	entries := make([]entry, 0, len(m.chunks))
	for id, c := range m.chunks {
		entries = append(entries, entry{id, c.modTime})
	}
	m.mu.Unlock()
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("memory list: %w", err)
		}
		if err := fn(e.id, e.t); err != nil {
			return err
		}
	}
	return nil
}

// MemoryCapacity is the nominal Capacity a Memory store reports from Stat;
// Available is MemoryCapacity less the bytes held.
const MemoryCapacity = 1 << 40

// Stat implements Stater.
func (m *Memory) Stat(ctx context.Context) (Usage, error) {
	if err := ctx.Err(); err != nil {
		return Usage{}, fmt.Errorf("memory stat: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	u := Usage{Chunks: int64(len(m.chunks)), Bytes: m.bytes, Capacity: MemoryCapacity}
	if m.bytes < MemoryCapacity {
		u.Available = uint64(MemoryCapacity - m.bytes)
	}
	return u, nil
}

// Corrupt replaces the stored bytes of id with data without changing its
// ID, so tests can check that readers detect corruption. It reports whether
// id was present.
func (m *Memory) Corrupt(id ID, data []byte) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.chunks[id]
	if !ok {
		return false
	}
	m.bytes += int64(len(data)) - int64(len(c.data))
	c.data = append([]byte{}, data...)
	m.chunks[id] = c
	return true
}
