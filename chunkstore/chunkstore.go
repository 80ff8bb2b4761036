package chunkstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"syscall"
	"time"
)

// ID is the SHA-256 of a chunk's plain contents. IDs are comparable and may
// be used as map keys. The zero ID names no chunk.
type ID [32]byte

// Sum returns the ID of data.
func Sum(data []byte) ID { return ID(sha256.Sum256(data)) }

// String returns the ID as 64 lower-case hex digits.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is the zero ID.
func (id ID) IsZero() bool { return id == ID{} }

// ParseID parses 64 hex digits as an ID.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*len(id) {
		return id, fmt.Errorf("parse chunk id %q: want %d hex digits", s, 2*len(id))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("parse chunk id %q: %w", s, err)
	}
	return id, nil
}

var (
	// ErrNotFound means the store holds no chunk with the requested ID.
	ErrNotFound = errors.New("chunk not found")
	// ErrCorrupt means the stored bytes do not hash to their ID (or cannot be
	// decoded). The chunk must not be served; a scrub may repair it.
	ErrCorrupt = errors.New("chunk corrupt")
	// ErrNoSpace means the disk under the store is full. It wraps
	// syscall.ENOSPC so errors.Is(err, syscall.ENOSPC) holds.
	ErrNoSpace = fmt.Errorf("chunk store full: %w", syscall.ENOSPC)
)

// A Store holds immutable chunks keyed by their ID. Safe for concurrent use.
type Store interface {
	// Put stores data under id. Storing a chunk already present is not an
	// error; it refreshes the chunk's modification time (see Deleter). Put
	// returns only once the chunk is durable. The caller keeps ownership of
	// data. An error wrapping ErrNoSpace means the disk is full; nothing
	// already stored is harmed.
	Put(ctx context.Context, id ID, data []byte) error
	// Get returns the chunk's plain bytes; the error wraps ErrNotFound if it
	// is absent and ErrCorrupt if the stored bytes do not hash to id. The
	// caller owns the returned slice.
	Get(ctx context.Context, id ID) ([]byte, error)
	// Has reports whether the store holds id (without verifying it).
	Has(ctx context.Context, id ID) (bool, error)
}

// A Deleter is a Store that can remove chunks. The garbage collector uses it.
type Deleter interface {
	// Delete removes id if its last Put happened before the given time, and
	// reports whether it removed it. A Put racing with Delete either
	// happens-before it (and so is older) or keeps the chunk. Deleting an
	// absent chunk returns false and no error.
	Delete(ctx context.Context, id ID, before time.Time) (bool, error)
}

// A Lister is a Store that can enumerate its chunks.
type Lister interface {
	// List calls fn for every chunk held, with the time of its last Put, in
	// no particular order. If fn returns an error, List stops and returns it.
	List(ctx context.Context, fn func(id ID, modTime time.Time) error) error
}

// Usage is what a store holds and what room is left on its disk.
type Usage struct {
	Chunks    int64  // number of chunks held
	Bytes     int64  // bytes the chunks take on disk
	Capacity  uint64 // size of the file system under the store, in bytes
	Available uint64 // bytes still free for the store on that file system
}

// A Stater is a Store that can report its usage.
type Stater interface {
	Stat(ctx context.Context) (Usage, error)
}

// A Toucher is a Store that can refresh a chunk's modification time without
// rewriting it: a pusher that finds a chunk already present touches it, so a
// concurrent Delete with an earlier cut-off keeps it.
type Toucher interface {
	// Touch refreshes id's modification time and reports whether the chunk
	// is present. It is atomic with respect to Delete.
	Touch(ctx context.Context, id ID) (bool, error)
}

// A LazyPutter is a Store that can store a chunk before it is durable and
// make many such chunks durable at once. A node uses it for the chunks that
// commits carry inline: the Raft log entry holding them is already durable,
// so the chunk files need to be only by the time a snapshot lets that entry
// go.
type LazyPutter interface {
	// PutLazy stores data under id as Put does, but may return before the
	// chunk is durable: a crash may lose it until the next Sync returns.
	PutLazy(ctx context.Context, id ID, data []byte) error
	// Sync makes every chunk stored by PutLazy before the call durable.
	Sync(ctx context.Context) error
}
