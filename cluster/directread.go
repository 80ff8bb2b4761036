package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"shoal/chunkstore"
	"shoal/wire"
)

// holderDownFor is how long Get reads the chunks with a data shard on a
// holder that failed a direct read, other than by lacking the shard,
// through the node instead.
const holderDownFor = 10 * time.Second

// readDirect reads the chunk sh describes from the holders of its data
// shards, each shard's bytes going from the connection into its place in
// the chunk's buffer, and returns the chunk. ok false means the caller
// reads the chunk through the node, which fetches parity for missing
// shards and reports lost ones: a data shard has no holder, or its holder
// failed to serve it (now or lately).
//
// The shards are checked as the node's own reads of them are: each
// holder checks its shard's file against the CRC-32C stored with it and
// sends it with another for the way (REQUEST's CHECKSUM flag). The
// chunk's SHA-256 was checked when it was stored, before it was split.
func (c *Client) readDirect(ctx context.Context, sh *wire.Shards) (data []byte, ok bool) {
	id := chunkstore.ID(sh.ID)
	scheme := chunkstore.Scheme{Data: int(sh.Data), Parity: int(sh.Parity)}
	if scheme.Validate() != nil {
		return nil, false
	}
	holders := make([]*Client, scheme.Data)
	for i := range holders {
		addr := sh.Holders[i]
		if addr == "" || c.holderDown(addr) {
			return nil, false
		}
		holders[i] = c.holder(addr)
	}
	want := scheme.ShardSize(int(sh.Size))
	buf := c.cfg.Buffers.Get(want * scheme.Data)
	errs := make([]error, scheme.Data)
	var wg sync.WaitGroup
	for i, h := range holders {
		wg.Go(func() {
			req := &wire.ShardRequest{Flags: readFlags(ctx), Expires: sh.Expires, Chunk: sh.ID,
				Data: sh.Data, Parity: sh.Parity, Index: uint8(i), Grant: sh.Grant}
			errs[i] = h.readShard(ctx, req, buf[i*want:(i+1)*want:(i+1)*want])
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for i, err := range errs {
			// A holder that lacks its shard (or found it corrupt) serves
			// its other shards still; one that failed otherwise is
			// passed over for a while.
			if err == nil || errors.Is(err, chunkstore.ErrNotFound) || ctx.Err() != nil {
				continue
			}
			if !c.holderDown(sh.Holders[i]) {
				c.log.Warn("shard holder failed a direct read; reading its chunks through the node for a while",
					"holder", sh.Holders[i], "for", holderDownFor, "err", err)
			}
			c.holdersDown.Store(sh.Holders[i], time.Now().Add(holderDownFor))
		}
		c.log.Debug("direct read failed, reading through the node", "chunk", id.String(), "err", err)
		c.cfg.Buffers.Put(buf)
		directReads.WithLabelValues("fallback").Inc()
		return nil, false
	}
	directReads.WithLabelValues("direct").Inc()
	return c.cfg.Buffers.Fit(buf[:sh.Size]), true
}

// holderDown reports whether the holder at addr failed a direct read
// lately.
func (c *Client) holderDown(addr string) bool {
	v, ok := c.holdersDown.Load(addr)
	return ok && time.Now().Before(v.(time.Time))
}

// learnVia finds, for each address the client was given that no member
// advertises, the member that answers there, so that shards held by that
// member are read at the given address. A mount on the host of a
// docker-compose cluster is given the ports published on the host, while
// the nodes advertise names that only resolve on the compose network.
func (c *Client) learnVia(ctx context.Context, given []string, members []NodeInfo) {
	advertised := map[string]bool{}
	for _, m := range members {
		advertised[m.Addr] = true
	}
	var wg sync.WaitGroup
	for _, a := range given {
		if advertised[a] {
			continue
		}
		wg.Go(func() {
			st, err := StatusAt(ctx, a, 5*time.Second, c.log)
			if err != nil || st.Addr == "" || st.Addr == a {
				return
			}
			c.log.Info("reading shards of a member at the address given for it", "member", st.ID, "advertises", st.Addr, "given", a)
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.via == nil {
				c.via = map[string]string{}
			}
			c.via[st.Addr] = a
		})
	}
	wg.Wait()
}

// holder returns the (lazily dialling) client of the holder at addr, or
// at the address given for it (learnVia).
func (c *Client) holder(addr string) *Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h := c.holders[addr]; h != nil {
		return h
	}
	dial := addr
	if a, ok := c.via[addr]; ok {
		dial = a
	}
	h := newClient(dial, ClientConfig{Pin: true, Logger: c.log, RetryFor: holderRetryFor, OpTimeout: holderTimeout, Buffers: c.cfg.Buffers})
	if c.closed {
		h.Close()
		return h
	}
	if c.holders == nil {
		c.holders = map[string]*Client{}
	}
	c.holders[addr] = h
	return h
}

// holderRetryFor is how long a direct read retries a holder that cannot
// be reached before the chunk is read through the node, and holderTimeout
// how long one shard read from it may take: less than the node's own
// (shardTimeout), as the node is asked next.
const (
	holderRetryFor = 500 * time.Millisecond
	holderTimeout  = 5 * time.Second
)

// readShard reads the shard req asks for into into, which must be the
// shard's size.
func (c *Client) readShard(ctx context.Context, req *wire.ShardRequest, into []byte) error {
	key := chunkstore.ShardKey(req.Chunk, chunkstore.Scheme{Data: int(req.Data), Parity: int(req.Parity)}, int(req.Index))
	what := fmt.Sprintf("read shard %d of chunk %s", req.Index, chunkstore.ID(req.Chunk))
	return c.retry(ctx, what, c.cfg.OpTimeout, func(ctx context.Context) error {
		reply, inBody, err := c.pull(ctx, what, req, key, into)
		if err != nil {
			return err
		}
		m := reply.(*wire.Chunk) // pull takes SHARDS only in answer to a REQUEST
		if !inBody {
			// A small shard comes through the stream's buffer.
			copy(into, m.Data)
			c.cfg.Buffers.Put(m.Data)
		}
		switch {
		case len(m.Data) != len(into):
			return fmt.Errorf("%s from %s: %d bytes, want %d: %w", what, c.node(), len(m.Data), len(into), chunkstore.ErrCorrupt)
		case m.Flags&wire.CasyncChunkCRC32C == 0:
			return fmt.Errorf("%s from %s: sent without a CRC-32C: %w", what, c.node(), chunkstore.ErrCorrupt)
		}
		return nil
	})
}
