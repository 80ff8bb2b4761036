package fs

import (
	"context"
	"errors"
	"log/slog"
	"syscall"

	"shoal/chunkstore"
)

// toErrno translates an error from the metadata service or a chunk store
// into the errno a file system call returns; it is the only place fs maps
// errors. Errors wrapping a syscall.Errno (ENOENT, EEXIST, ENOSPC, EDQUOT
// from metadata, chunkstore.ErrNoSpace from a full store...) pass it
// through; a canceled context is EINTR. Corrupt or missing chunks, deadlines, lost connections and
// anything unknown become EIO, logged with op so that the cause is not lost.
func toErrno(log *slog.Logger, op string, err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	switch {
	case errors.Is(err, chunkstore.ErrCorrupt), errors.Is(err, chunkstore.ErrNotFound):
		log.Error("shoal fs: bad chunk", "op", op, "err", err)
	case errors.Is(err, context.Canceled):
		return syscall.EINTR
	case errors.Is(err, context.DeadlineExceeded):
		log.Warn("shoal fs: timed out", "op", op, "err", err)
	default:
		log.Error("shoal fs: unexpected error", "op", op, "err", err)
	}
	return syscall.EIO
}
