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
// (read-ahead and readers meet here). Cached bytes are immutable: callers
// must not modify what get returns.
//
// A chunk's memory is reused once nobody needs it: get hands out a
// reference that the reader gives back with release, and when the last
// holder (the cache itself, until the entry is evicted) lets go, a
// block-sized buffer returns to bufs, from which the store's Gets take
// their memory again. A process streaming a large file through the cache
// thus keeps using the same pages instead of having the Go heap grow and
// the kernel zero fresh ones (ops/bench/FINDINGS.md).
// Safe for concurrent use.
type chunkCache struct {
	store Chunks
	bufs  *chunkstore.Buffers // where evicted chunks' memory goes
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

// cacheEntry is one chunk's contents and who holds them.
type cacheEntry struct {
	id   chunkstore.ID
	data []byte
	// refs counts the holders of data: the cache while the entry is in
	// it, and each reader between get and release. Guarded by
	// chunkCache.mu.
	refs int
}

// fetch is one Get in progress, in chunkCache.inflight until it ends:
// under chunkCache.mu it leaves the map as e or err is set, just before
// done is closed.
type fetch struct {
	done    chan struct{}
	e       *cacheEntry
	err     error
	waiters int // gets waiting on done; each is given a reference to e
}

func newChunkCache(store Chunks, bufs *chunkstore.Buffers, max int64, log *slog.Logger, bg func() (context.Context, context.CancelFunc)) *chunkCache {
	v, ok := store.(VerifyingChunks)
	return &chunkCache{
		store:    store,
		bufs:     bufs,
		trusted:  ok && v.VerifiesGets(),
		max:      max,
		log:      log,
		bg:       bg,
		lru:      list.New(),
		entries:  make(map[chunkstore.ID]*list.Element),
		inflight: make(map[chunkstore.ID]*fetch),
	}
}

// cached reports whether chunk id is in the cache.
func (c *chunkCache) cached(id chunkstore.ID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.entries[id]
	return ok
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
	c.settle(&cacheEntry{id: id, data: data})
}

// settle puts e in the cache, evicting the least recently used entries
// beyond the bound, unless it is too large or id is cached already; an
// entry that ends up with no holder at all gives its memory back at once.
// Called with c.mu held.
func (c *chunkCache) settle(e *cacheEntry) {
	if el, ok := c.entries[e.id]; ok {
		c.lru.MoveToFront(el)
	} else if int64(len(e.data)) <= c.max {
		e.refs++
		c.entries[e.id] = c.lru.PushFront(e)
		c.bytes += int64(len(e.data))
		for c.bytes > c.max {
			back := c.lru.Back()
			ce := back.Value.(*cacheEntry)
			c.lru.Remove(back)
			delete(c.entries, ce.id)
			c.bytes -= int64(len(ce.data))
			c.releaseLocked(ce)
		}
	}
	if e.refs == 0 {
		c.recycle(e)
	}
}

// get returns chunk id, from the cache or else from the store, held for
// the caller, who must release it once done with its data. Bytes from the
// store are verified against id before anyone sees them (by the store
// itself if it is a VerifyingChunks that says so, else here): a mismatch
// is an error wrapping chunkstore.ErrCorrupt, logged with the chunk's id.
// The fetch itself runs under a background context (so that one caller
// giving up does not fail the others sharing it); ctx bounds only this
// caller's wait.
func (c *chunkCache) get(ctx context.Context, id chunkstore.ID) (*cacheEntry, error) {
	c.mu.Lock()
	if el, ok := c.entries[id]; ok {
		c.lru.MoveToFront(el)
		e := el.Value.(*cacheEntry)
		e.refs++
		c.mu.Unlock()
		cacheLookups.WithLabelValues("hit").Inc()
		return e, nil
	}
	cacheLookups.WithLabelValues("miss").Inc()
	f := c.startLocked(id, 0, false)
	f.waiters++
	c.mu.Unlock()
	select {
	case <-f.done:
		return f.e, f.err
	case <-ctx.Done():
		c.mu.Lock()
		if c.inflight[id] == f { // still fetching
			f.waiters--
		} else if f.e != nil {
			c.releaseLocked(f.e) // the reference run gave this caller
		}
		c.mu.Unlock()
		return nil, fmt.Errorf("read chunk %s: %w", id, ctx.Err())
	}
}

// release gives back a reference get returned. Each must be released
// exactly once; the data must not be used afterwards.
func (c *chunkCache) release(e *cacheEntry) {
	c.mu.Lock()
	c.releaseLocked(e)
	c.mu.Unlock()
}

func (c *chunkCache) releaseLocked(e *cacheEntry) {
	if e.refs--; e.refs == 0 {
		c.recycle(e)
	}
}

// recycle gives the memory of e, which nobody holds, to the free list.
func (c *chunkCache) recycle(e *cacheEntry) {
	c.bufs.Put(e.data)
	e.data = nil
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
		c.bufs.Put(data)
	}
	if err != nil {
		c.log.Error("shoal fs: chunk read failed", "chunk", id.String(), "err", err)
		f.err = fmt.Errorf("read chunk %s: %w", id, err)
	}
	c.mu.Lock()
	delete(c.inflight, id)
	if err == nil {
		f.e = &cacheEntry{id: id, data: data, refs: f.waiters}
		c.settle(f.e)
	}
	c.mu.Unlock()
	close(f.done)
}
