package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"time"

	"shoal/chunkstore"
	"shoal/wire"
)

// casyncBackend is what one end of casync's chunk protocol serves: the
// chunk service serves whole chunks, erasure-coded across the cluster
// (coord.go); the shard service serves this node's own shards.
type casyncBackend struct {
	what string // "chunk" or "shard", for logs and errors
	// get returns the bytes of id; chunkstore.ErrNotFound or ErrCorrupt
	// are answered MISSING.
	get func(ctx context.Context, id chunkstore.ID) ([]byte, error)
	// has reports whether id is stored already, so that a push need not
	// send it, and keeps it from being collected meanwhile.
	has func(ctx context.Context, id chunkstore.ID) (bool, error)
	// put stores id durably.
	put func(ctx context.Context, id chunkstore.ID, data []byte) error
	// verify says pushed bytes must hash to their id.
	verify bool
	// gate admits the reads of REQUESTs, those with HIGH_PRIORITY first.
	gate *readGate
	// grants says the service takes SHARD_REQUESTs, which read this
	// node's shards with a member's grant.
	grants bool
}

// chunkBackend serves whole chunks to mounts and other clients.
func (n *Node) chunkBackend() *casyncBackend {
	return &casyncBackend{what: "chunk", get: n.loadChunk, has: n.chunkPlaced, put: n.storeChunk, verify: true, gate: n.chunkGate, grants: true}
}

// shardBackend serves this node's shards to its peers.
func (n *Node) shardBackend() *casyncBackend {
	return &casyncBackend{what: "shard", get: n.store.Get, has: n.store.Touch, put: n.store.Put, gate: n.shardGate}
}

// serveShards authenticates a shard stream as servePeer does, then serves
// it like a chunk stream, with shard keys for ids.
func (n *Node) serveShards(st *wire.Stream, remote string) {
	if err := n.peerAccept(st); err != nil {
		n.log.Warn("shard stream refused", "peer", remote, "err", err)
		return
	}
	n.serveCasync(st, remote, n.shardBackend())
}

// serveChunks serves a chunk stream (see serveCasync).
func (n *Node) serveChunks(st *wire.Stream, remote string) {
	n.serveCasync(st, remote, n.chunkBackend())
}

// serveCasync speaks casync's chunk protocol on one stream (PROTOCOL.md,
// "Chunk service"): both sides say HELLO; then any number of pulls
// (REQUEST → CHUNK or MISSING per id) and pushes (INDEX… INDEX_EOF → the
// node REQUESTs the ids it lacks → CHUNK or MISSING each → GOODBYE once all
// are durable) until the client says GOODBYE or closes the stream.
func (n *Node) serveCasync(st *wire.Stream, remote string, b *casyncBackend) {
	ctx := context.Background()
	abort := func(err error) {
		n.log.Warn(b.what+" stream aborted", "peer", remote, "err", err)
		wire.WriteCasync(st, &wire.Abort{Errno: uint64(errnoOf(err)), Reason: err.Error()})
	}
	m, err := wire.ReadCasync(st)
	if err != nil {
		if !errors.Is(err, io.EOF) {
			n.log.Warn(b.what+" stream", "peer", remote, "err", err)
		}
		return
	}
	if _, ok := m.(*wire.Hello); !ok {
		abort(fmt.Errorf("%s stream: first message is %T, want HELLO: %w", b.what, m, syscall.EPROTO))
		return
	}
	if err := wire.WriteCasync(st, &wire.Hello{Features: wire.CasyncReadableStore | wire.CasyncWritableStore}); err != nil {
		return
	}
	var index []byte // INDEX payloads up to INDEX_EOF
	for {
		m, err := wire.ReadCasync(st)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				n.log.Warn(b.what+" stream", "peer", remote, "err", err)
			}
			return
		}
		switch m := m.(type) {
		case *wire.Request:
			rctx, bg, flags := readContext(ctx, m.Flags)
			for _, id := range m.IDs {
				if m.Flags&wire.CasyncRequestDirect != 0 && b.grants {
					if sh, ok := n.shardsFor(id); ok {
						if wire.WriteCasync(st, sh) != nil {
							return
						}
						chunkOps.WithLabelValues("redirected").Inc()
						continue
					}
				}
				if !n.serveRead(rctx, st, b, bg, flags, id, abort) {
					return
				}
			}
		case *wire.ShardRequest:
			// A client that is no member reads one shard with a member's
			// grant (grant.go); only the chunk service takes these.
			if !b.grants {
				abort(fmt.Errorf("%s stream: unexpected SHARD_REQUEST: %w", b.what, syscall.EPROTO))
				return
			}
			key, err := n.checkGrant(m)
			if err != nil {
				abort(fmt.Errorf("%s stream: %w", b.what, err))
				return
			}
			rctx, bg, flags := readContext(ctx, m.Flags)
			if !n.serveRead(rctx, st, n.shardBackend(), bg, flags, key, abort) {
				return
			}
		case *wire.Index:
			if len(index)+len(m.Data) > maxIndexBytes {
				abort(fmt.Errorf("%s stream: index over %d bytes: %w", b.what, maxIndexBytes, syscall.E2BIG))
				return
			}
			index = append(index, m.Data...)
		case *wire.IndexEOF:
			entries, err := wire.DecodeIndex(index)
			if err != nil {
				abort(fmt.Errorf("%s stream: %w: %w", b.what, err, syscall.EPROTO))
				return
			}
			if err := n.receivePush(ctx, st, b, entries); err != nil {
				abort(err)
				return
			}
			index = nil
		case *wire.Goodbye:
			return
		case *wire.Abort:
			n.log.Warn("client aborted "+b.what+" stream", "peer", remote, "errno", m.Errno, "reason", m.Reason)
			return
		default:
			abort(fmt.Errorf("%s stream: unexpected %T: %w", b.what, m, syscall.EPROTO))
			return
		}
	}
}

// readContext returns the context, the background mark and the CHUNK
// flags for serving a REQUEST or SHARD_REQUEST with flags: without
// HIGH_PRIORITY no user waits on the read, so it queues behind those that
// have it, here and on the nodes it reads shards from.
func readContext(ctx context.Context, flags uint64) (rctx context.Context, bg bool, chunkFlags uint64) {
	if flags&wire.CasyncRequestChecksum != 0 {
		chunkFlags = wire.CasyncChunkCRC32C
	}
	if flags&wire.CasyncRequestHighPrio == 0 {
		return chunkstore.Background(ctx), true, chunkFlags
	}
	return ctx, false, chunkFlags
}

// serveRead answers a read of id from b: CHUNK with flags, or MISSING if
// b lacks it or found it corrupt. It returns false if the stream is over:
// broken, or aborted with abort on another error.
func (n *Node) serveRead(ctx context.Context, st *wire.Stream, b *casyncBackend, bg bool, flags uint64, id [32]byte, abort func(error)) bool {
	if err := b.gate.acquire(ctx, bg); err != nil {
		return false
	}
	data, err := b.get(ctx, chunkstore.ID(id))
	b.gate.release()
	switch {
	case err == nil:
		chunkOps.WithLabelValues("served").Inc()
		chunkBytes.WithLabelValues("out").Add(float64(len(data)))
		err = wire.WriteCasync(st, &wire.Chunk{Flags: flags, ID: id, Data: data})
		// Sent (WriteCasync returns once the connection is done with the
		// bytes), and get's result is the caller's alone.
		n.bufs.Put(data)
	case errors.Is(err, chunkstore.ErrNotFound):
		chunkOps.WithLabelValues("missing").Inc()
		err = wire.WriteCasync(st, &wire.Missing{ID: id})
	case errors.Is(err, chunkstore.ErrCorrupt):
		chunkOps.WithLabelValues("corrupt").Inc()
		n.log.Error("corrupt "+b.what+" on disk", b.what, chunkstore.ID(id).String(), "err", err)
		err = wire.WriteCasync(st, &wire.Missing{ID: id})
	default:
		abort(err)
		return false
	}
	return err == nil
}

// maxIndexBytes bounds one pushed index (about 100,000 chunks).
const maxIndexBytes = 4 << 20

// receivePush requests the pushed ids the backend lacks, stores each one
// that arrives (after checking it hashes to its id, if the backend says
// so), and says GOODBYE once all of them are durable.
func (n *Node) receivePush(ctx context.Context, st *wire.Stream, b *casyncBackend, index []wire.IndexEntry) error {
	var want [][32]byte
	size := map[[32]byte]uint64{}
	for _, e := range index {
		if _, dup := size[e.ID]; dup {
			continue
		}
		ok, err := b.has(ctx, chunkstore.ID(e.ID))
		if err != nil {
			return err
		}
		if ok {
			chunkOps.WithLabelValues("deduplicated").Inc()
			continue
		}
		size[e.ID] = e.Size
		want = append(want, e.ID)
	}
	if len(want) == 0 {
		// casync never sends an empty REQUEST; GOODBYE says all is there.
		return wire.WriteCasync(st, &wire.Goodbye{})
	}
	if err := wire.WriteCasync(st, &wire.Request{IDs: want}); err != nil {
		return err
	}
	var buf []byte // the latest CHUNK's memory, from n.bufs
	alloc := func(size int) []byte {
		buf = n.bufs.Get(size)
		return buf
	}
	for range want {
		m, err := wire.ReadCasyncAlloc(st, alloc)
		if err != nil {
			return fmt.Errorf("receive pushed %s: %w", b.what, err)
		}
		switch m := m.(type) {
		case *wire.Chunk:
			plainLen, ok := size[m.ID]
			if !ok {
				return fmt.Errorf("received %s %s that was not requested: %w", b.what, chunkstore.ID(m.ID), syscall.EPROTO)
			}
			data := m.Data
			if m.Flags&wire.CasyncChunkCompressed != 0 {
				if data, err = chunkstore.Decompress(nil, m.Data, int(plainLen)); err != nil {
					return fmt.Errorf("received %s %s: %w: %w", b.what, chunkstore.ID(m.ID), err, syscall.EPROTO)
				}
			}
			// The store trusts this check (DiskOptions.VerifiedPuts); shards
			// come from members, which checked the chunk they split.
			if b.verify && chunkstore.Sum(data) != m.ID {
				return fmt.Errorf("received %s %s does not match its id: %w", b.what, chunkstore.ID(m.ID), syscall.EBADMSG)
			}
			start := time.Now()
			if err := b.put(ctx, m.ID, data); err != nil {
				return err
			}
			storeSeconds.WithLabelValues(b.what).Observe(time.Since(start).Seconds())
			// Stored (or copied into shards, stored too): nothing refers
			// to the received bytes any more.
			n.bufs.Put(buf)
			chunkOps.WithLabelValues("stored").Inc()
			chunkBytes.WithLabelValues("in").Add(float64(len(data)))
		case *wire.Missing:
			// The client no longer has it; nothing to store.
		case *wire.Abort:
			return fmt.Errorf("client aborted push: %s: %w", m.Reason, syscall.Errno(m.Errno))
		default:
			return fmt.Errorf("push: unexpected %T: %w", m, syscall.EPROTO)
		}
	}
	return wire.WriteCasync(st, &wire.Goodbye{})
}
