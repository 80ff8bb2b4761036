package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"

	"shoal/chunkstore"
	"shoal/wire"
)

// serveChunks speaks casync's chunk protocol on one stream (PROTOCOL.md,
// "Chunk service"): both sides say HELLO; then any number of pulls
// (REQUEST → CHUNK or MISSING per id) and pushes (INDEX… INDEX_EOF → the
// node REQUESTs the ids it lacks → CHUNK or MISSING each → GOODBYE once all
// are durable) until the client says GOODBYE or closes the stream.
func (n *Node) serveChunks(st *wire.Stream, remote string) {
	ctx := context.Background()
	abort := func(err error) {
		n.log.Warn("chunk stream aborted", "peer", remote, "err", err)
		wire.WriteCasync(st, &wire.Abort{Errno: uint64(errnoOf(err)), Reason: err.Error()})
	}
	m, err := wire.ReadCasync(st)
	if err != nil {
		if !errors.Is(err, io.EOF) {
			n.log.Warn("chunk stream", "peer", remote, "err", err)
		}
		return
	}
	if _, ok := m.(*wire.Hello); !ok {
		abort(fmt.Errorf("chunk stream: first message is %T, want HELLO: %w", m, syscall.EPROTO))
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
				n.log.Warn("chunk stream", "peer", remote, "err", err)
			}
			return
		}
		switch m := m.(type) {
		case *wire.Request:
			for _, id := range m.IDs {
				data, err := n.store.Get(ctx, chunkstore.ID(id))
				switch {
				case err == nil:
					chunkOps.WithLabelValues("served").Inc()
					chunkBytes.WithLabelValues("out").Add(float64(len(data)))
					err = wire.WriteCasync(st, &wire.Chunk{ID: id, Data: data})
				case errors.Is(err, chunkstore.ErrNotFound):
					chunkOps.WithLabelValues("missing").Inc()
					err = wire.WriteCasync(st, &wire.Missing{ID: id})
				case errors.Is(err, chunkstore.ErrCorrupt):
					chunkOps.WithLabelValues("corrupt").Inc()
					n.log.Error("corrupt chunk on disk", "chunk", chunkstore.ID(id).String(), "err", err)
					err = wire.WriteCasync(st, &wire.Missing{ID: id})
				default:
					abort(err)
					return
				}
				if err != nil {
					return
				}
			}
		case *wire.Index:
			if len(index)+len(m.Data) > maxIndexBytes {
				abort(fmt.Errorf("chunk stream: index over %d bytes: %w", maxIndexBytes, syscall.E2BIG))
				return
			}
			index = append(index, m.Data...)
		case *wire.IndexEOF:
			entries, err := wire.DecodeIndex(index)
			if err != nil {
				abort(fmt.Errorf("chunk stream: %w: %w", err, syscall.EPROTO))
				return
			}
			if err := n.receivePush(ctx, st, entries); err != nil {
				abort(err)
				return
			}
			index = nil
		case *wire.Goodbye:
			return
		case *wire.Abort:
			n.log.Warn("client aborted chunk stream", "peer", remote, "errno", m.Errno, "reason", m.Reason)
			return
		default:
			abort(fmt.Errorf("chunk stream: unexpected %T: %w", m, syscall.EPROTO))
			return
		}
	}
}

// maxIndexBytes bounds one pushed index (about 100,000 chunks).
const maxIndexBytes = 4 << 20

// receivePush requests the pushed chunks the store lacks, stores each one
// that arrives after checking it hashes to its id, and says GOODBYE once all
// of them are durable.
func (n *Node) receivePush(ctx context.Context, st *wire.Stream, index []wire.IndexEntry) error {
	var want [][32]byte
	size := map[[32]byte]uint64{}
	for _, e := range index {
		if _, dup := size[e.ID]; dup {
			continue
		}
		// Touch refreshes a present chunk's time, so a collection racing
		// with this push keeps it (chunkstore.Deleter).
		ok, err := n.store.Touch(ctx, chunkstore.ID(e.ID))
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
	for range want {
		m, err := wire.ReadCasync(st)
		if err != nil {
			return fmt.Errorf("receive pushed chunk: %w", err)
		}
		switch m := m.(type) {
		case *wire.Chunk:
			plainLen, ok := size[m.ID]
			if !ok {
				return fmt.Errorf("received chunk %s that was not requested: %w", chunkstore.ID(m.ID), syscall.EPROTO)
			}
			data := m.Data
			if m.Flags&wire.CasyncChunkCompressed != 0 {
				if data, err = chunkstore.Decompress(nil, m.Data, int(plainLen)); err != nil {
					return fmt.Errorf("received chunk %s: %w: %w", chunkstore.ID(m.ID), err, syscall.EPROTO)
				}
			}
			// The store trusts this check (DiskOptions.VerifiedPuts).
			if chunkstore.Sum(data) != m.ID {
				return fmt.Errorf("received chunk %s does not match its id: %w", chunkstore.ID(m.ID), syscall.EBADMSG)
			}
			if err := n.store.Put(ctx, m.ID, data); err != nil {
				return err
			}
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
