package fs

import (
	"container/list"
	"context"
	"fmt"
	"log/slog"
	"sync"

	"shoal/chunkstore"
)

// chunkCache is a byte-bounded LRU cache of verified chunk contents in front
// of a Chunks store. Concurrent fetches of one chunk share a single Get
// (read-ahead and readers meet here). Cached slices are immutable: callers
// must not modify what get returns. Safe for concurrent use.
type chunkCache struct {
	store Chunks
	// trusted is set when store checks every chunk it returns
	// (VerifyingChunks), so run need not hash it again.
	trusted bool
	max     int64
	log     *slog.Logger
	bg      func() (context.Context, context.CancelFunc) // context of a fetch

	mu       sync.Mutex
	bytes    int64
	lru      *list.List // of *cacheEntry, most recently used at the front
	entries  map[chunkstore.ID]*list.Element
	inflight map[chunkstore.ID]*fetch
}

type cacheEntry struct {
	id   chunkstore.ID
	data []byte
}

// fetch is one Get in progress; done is closed once data or err is set.
type fetch struct {
	done chan struct{}
	data []byte
	err  error
}

func newChunkCache(store Chunks, max int64, log *slog.Logger, bg func() (context.Context, context.CancelFunc)) *chunkCache {
	v, ok := store.(VerifyingChunks)
	return &chunkCache{
		store:    store,
		trusted:  ok && v.VerifiesGets(),
		max:      max,
		log:      log,
		bg:       bg,
		lru:      list.New(),
		entries:  make(map[chunkstore.ID]*list.Element),
		inflight: make(map[chunkstore.ID]*fetch),
	}
}

// lookup returns the cached chunk id, if present, marking it recently used.
func (c *chunkCache) lookup(id chunkstore.ID) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[id]; ok {
		c.lru.MoveToFront(e)
		return e.Value.(*cacheEntry).data, true
	}
	return nil, false
}

// start begins fetching id in the background unless it is cached or being
// fetched, or (if limit > 0) limit fetches are already running. It is how
// read-ahead and multi-block reads overlap their fetches. A speculative
// fetch (read-ahead: no reader asked for the chunk yet) is made with a
// chunkstore.Background context, so the nodes serve it after the reads
// someone waits on.
func (c *chunkCache) start(id chunkstore.ID, limit int, speculative bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.startLocked(id, limit, speculative)
}

func (c *chunkCache) startLocked(id chunkstore.ID, limit int, speculative bool) *fetch {
	if _, ok := c.entries[id]; ok {
		return nil
	}
	if f, ok := c.inflight[id]; ok {
		return f
	}
	if limit > 0 && len(c.inflight) >= limit {
		return nil
	}
	f := &fetch{done: make(chan struct{})}
	c.inflight[id] = f
	go c.run(id, f, speculative)
	return f
}

// add caches data as the contents of id. The caller gives up data: it must
// hold the chunk's exact bytes and never change again.
func (c *chunkCache) add(id chunkstore.ID, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.addLocked(id, data)
}

func (c *chunkCache) addLocked(id chunkstore.ID, data []byte) {
	if int64(len(data)) > c.max {
		return
	}
	if e, ok := c.entries[id]; ok {
		c.lru.MoveToFront(e)
		return
	}
	c.entries[id] = c.lru.PushFront(&cacheEntry{id: id, data: data})
	c.bytes += int64(len(data))
	for c.bytes > c.max {
		back := c.lru.Back()
		ce := back.Value.(*cacheEntry)
		c.lru.Remove(back)
		delete(c.entries, ce.id)
		c.bytes -= int64(len(ce.data))
	}
}

// get returns the contents of chunk id, from the cache or else from the
// store. Bytes from the store are verified against id before anyone sees
// them (by the store itself if it is a VerifyingChunks that says so, else
// here): a mismatch is an error wrapping chunkstore.ErrCorrupt, logged with
// the chunk's id. The fetch itself runs under a background context (so
// that one caller giving up does not fail the others sharing it); ctx
// bounds only this caller's wait.
func (c *chunkCache) get(ctx context.Context, id chunkstore.ID) ([]byte, error) {
	c.mu.Lock()
	if e, ok := c.entries[id]; ok {
		c.lru.MoveToFront(e)
		c.mu.Unlock()
		cacheLookups.WithLabelValues("hit").Inc()
		return e.Value.(*cacheEntry).data, nil
	}
	cacheLookups.WithLabelValues("miss").Inc()
	f := c.startLocked(id, 0, false)
	c.mu.Unlock()
	select {
	case <-f.done:
		return f.data, f.err
	case <-ctx.Done():
		return nil, fmt.Errorf("read chunk %s: %w", id, ctx.Err())
	}
}

func (c *chunkCache) run(id chunkstore.ID, f *fetch, speculative bool) {
	ctx, cancel := c.bg()
	if speculative {
		ctx = chunkstore.Background(ctx)
	}
	data, err := c.store.Get(ctx, id)
	cancel()
	chunkBytes.WithLabelValues("down").Add(float64(len(data)))
	if err == nil && !c.trusted && chunkstore.Sum(data) != id {
		err = fmt.Errorf("read chunk %s: contents do not match id: %w", id, chunkstore.ErrCorrupt)
	}
	if err != nil {
		c.log.Error("shoal fs: chunk read failed", "chunk", id.String(), "err", err)
		f.err = fmt.Errorf("read chunk %s: %w", id, err)
	} else {
		f.data = data
	}
	c.mu.Lock()
	delete(c.inflight, id)
	if err == nil {
		c.addLocked(id, data)
	}
	c.mu.Unlock()
	close(f.done)
}
