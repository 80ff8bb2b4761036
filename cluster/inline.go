package cluster

// This file holds what the metadata side does with inline chunks: small
// chunks that a commit carries in its blocks' Data (wire.Block) instead of
// the client pushing them on the chunk service first. One Raft entry then
// makes a small file's data and metadata durable together, and every
// replica stores the chunk when it applies the entry.

import (
	"context"
	"fmt"
	"syscall"

	"shoal/chunkstore"
	"shoal/wire"
)

// checkInline verifies the inline chunks of a commit's blocks: each within
// wire.MaxInlineChunk, all within wire.MaxInlineCommit, each hashing to its
// block's ID and long enough for its block's Len. A violation wraps EINVAL.
func checkInline(blocks []Block) error {
	total := 0
	for _, b := range blocks {
		if b.Data == nil {
			continue
		}
		id := chunkstore.ID(b.ID)
		total += len(b.Data)
		switch {
		case len(b.Data) > wire.MaxInlineChunk:
			return fmt.Errorf("commit: inline chunk %s of %d bytes, over %d: %w", id, len(b.Data), wire.MaxInlineChunk, syscall.EINVAL)
		case total > wire.MaxInlineCommit:
			return fmt.Errorf("commit: inline chunks over %d bytes: %w", wire.MaxInlineCommit, syscall.EINVAL)
		case uint64(b.Len) > uint64(len(b.Data)):
			return fmt.Errorf("commit: block %d uses %d bytes of inline chunk %s of %d: %w", b.Index, b.Len, id, len(b.Data), syscall.EINVAL)
		case chunkstore.Sum(b.Data) != id:
			return fmt.Errorf("commit: inline chunk of block %d does not hash to %s: %w", b.Index, id, syscall.EINVAL)
		}
	}
	return nil
}

// storeInline stores the inline chunks of blocks with put, which is a
// store's Put, or a LazyPutter's PutLazy where the Raft log already keeps
// the chunk durable.
func storeInline(ctx context.Context, put func(context.Context, chunkstore.ID, []byte) error, blocks []Block) error {
	for _, b := range blocks {
		if b.Data == nil {
			continue
		}
		if err := put(ctx, chunkstore.ID(b.ID), b.Data); err != nil {
			return fmt.Errorf("commit: store inline chunk of block %d: %w", b.Index, err)
		}
	}
	return nil
}
