// Package fs is shoal's FUSE file system: it serves a mount point from two
// services, metadata (the Metadata interface, which cluster.Client and
// cluster.Local implement) and chunks (the Chunks interface, which any
// chunkstore.Store implements). It is built on go-fuse's fs API; New makes
// the file system and Mount serves it:
//
//	root := fs.New(client, client, fs.Options{})
//	server, err := fs.Mount("/mnt/shoal", root, fs.MountOptions{})
//	...
//	server.Unmount()
//	root.Sync(ctx) // what the mount still holds: see dirchanges.go
//
// fs never imports the wire package: it names metadata ops through
// constants mirrored in ops.go (checked against wire by a test).
//
// # Names and attributes
//
// Every go-fuse inode is keyed by its metadata inode number
// (StableAttr.Ino). Lookup, Getattr, Setattr, Create, Mkdir, Mknod,
// Symlink, Link, Unlink, Rmdir, Rename (with RENAME_NOREPLACE and
// RENAME_EXCHANGE), Readdir, Readlink, Statfs and the xattr calls are each
// one metadata request. The kernel checks permissions (the mount uses
// default_permissions); fs stores the mode the kernel sends, owns new
// entries by the caller's uid and gid, and follows Linux for setgid
// directories (new entries take the directory's group; new directories
// are setgid too). The kernel caches names and attributes for
// Options.EntryTimeout and Options.AttrTimeout (one second by default).
// A change to a directory makes the kernel ask for its attributes again;
// the answer to the change carries them, so fs answers that Getattr itself
// within AttrTimeout (dirattr.go). Likewise the lookup the kernel sends
// before every create is answered ENOENT by fs itself when the directory
// was made or listed by this mount less than AttrTimeout ago and the name
// is not among those it knows (dirnames.go); a directory it knows nothing
// of is listed once it has asked metadata about 8 absent names in it.
// What it knows is kept by inode number, so it outlives the kernel
// forgetting the directory's node.
// A directory handle fetches the directory's entries once, at its first
// read, each with its inode's attributes (cluster.ReadDirAttrs), and
// answers the kernel's READDIRPLUS from them: "ls -l", "find" or "rm -r"
// learn every entry's attributes with the listing instead of looking each
// name up. A chmod, chown or utimens of a directory is answered at once
// and sent, together with the others of the next Options.DirAttrDelay
// (5 ms), as one request, or sooner when something depends on it: a
// request naming the directory, a rmdir or rename, an fsync of the
// directory, unmount (Root.Sync) (dirchanges.go). The unlink or rename of
// a file not open in the mount, and the rmdir of a directory known empty,
// are answered at once and sent in the background; the requests that could tell wait for it, and so do fsync of
// a directory and unmount (held.go).
//
// # Block layout
//
// A regular file is a sequence of fixed-size blocks (the metadata's block
// size, 4 MiB by default). Block i holds bytes [i*bs, (i+1)*bs) and is
// stored as one chunk, named by the SHA-256 of its bytes; the layout
// records each present block's chunk and length. Absent blocks (holes) and
// bytes past a block's length read as zeros, so sparse files cost nothing.
//
// # Writes: write-back, commit on close and fsync
//
// All handles of an inode share one state (file.go). A write only copies
// into in-memory block buffers: no metadata round trip per write. A write
// to part of a block that already holds data first loads the block (read-
// modify-write). When a sequential writer fills a block, the block is
// sealed and uploaded in the background (Options.Uploads, 8, uploads at
// once for the whole mount) while writing goes on; random writes stay in memory
// until flush. Once the mount holds more than Options.DirtyBytes (512 MiB)
// of unsaved blocks, all files together, a writer seals its file's blocks
// and waits for their uploads.
//
// Flush (each close(2)) and Fsync seal what is dirty, wait for all
// uploads, then send one OpCommit with the new size, the changed blocks
// and the mtime; only then do they return. Blocks of at most
// Options.InlineBytes (64 KiB) are not uploaded at all: their chunks travel
// inside the commit (wire.Block's Data), so a small file's data and
// metadata become durable in one Raft entry. A chmod, chown or utimens of a
// file with unsaved writes is not sent on its own either: it is kept and
// folded into the next commit (Getattr shows it at once), which is what
// makes cp -a's "create, write, set times, set mode, close" cost two
// metadata round trips per file rather than five. That is the durability
// contract: once close or fsync returns, the data is stored and the
// metadata committed. A commit answered with EAGAIN (a chunk it names was
// being garbage collected) stores the chunks again and is retried. An
// upload error is sticky: every later write, flush and fsync of the file
// returns it (ENOSPC and EDQUOT pass through, anything else is EIO), so
// data is never lost silently. Truncation (and any setattr of an open
// file) first commits the local writes, then goes to metadata.
//
// Reads see unsaved and uploaded-but-uncommitted data; Getattr reports
// the local size and mtime of a file with uncommitted writes.
//
// # Deferred creates
//
// A regular file created through the mount is not created in metadata at
// once (pending.go): fs numbers it from a range of inode numbers reserved
// with OpAllocInodes (1024 at a time), answers the kernel, and sends the
// create inside the file's first commit, so create, write and close of a
// small file are one Raft entry. Until that commit the file is pending: it
// exists only in this mount. Other mounts see it at its first close or
// fsync, as they see its data (close-to-open consistency); a request of
// this mount that needs the file to exist in metadata first creates it on
// its own: a lookup, unlink or rename of its name, a readdir, rmdir or
// fsync of its directory, a link to it, an xattr change. Getattr and
// getxattr of a pending file are answered locally. The parent directory's
// mtime moves when the create reaches metadata. The first create of a
// mount goes to metadata at once, to learn the block size; so does every
// create with Options.SyncCreate.
//
// # Reads: layout cache, chunk cache, read-ahead
//
// An open file caches its committed layout; it is fetched at the first
// read or write after open (close-to-open consistency with other mounts)
// and updated locally by each commit. Chunks come through one LRU cache
// bounded by Options.CacheBytes (256 MiB); concurrent fetches of one chunk
// share a single Get. Every fetched chunk is hashed and compared with its
// ID before use — by the cache, or by the store itself if it is a
// VerifyingChunks (cluster.Client checks every chunk it receives), so that
// no chunk is hashed twice: a mismatch (or a store's ErrCorrupt) is EIO
// and an error log line naming the chunk; wrong bytes never reach a
// reader. A read that
// continues the previous one starts fetching the next Options.ReadAhead
// blocks (8) in the background, several at once, no more than a quarter
// of the cache holds (else they would be evicted before they are read,
// and fetched again). Readers hold the chunks
// they use (a FUSE read answered from a cached chunk until its reply is
// written); an evicted chunk nobody holds gives its buffer back to
// Options.Buffers, which the store's Gets should allocate from, so that a
// streaming reader reuses the same memory.
//
// # Unlinked open files
//
// When an unlink or rename removes an inode's last name, metadata keeps
// the inode as an orphan; fs sends OpDrop at once if the file is not open,
// else at its last release, so an open file stays readable until closed.
//
// # Errors and interrupts
//
// toErrno is the only place errors become errnos: errors wrapping a
// syscall.Errno pass it through, everything else is EIO with a log line.
// Requests ignore kernel interrupts (Go programs interrupt their own
// syscalls constantly with SIGURG) and are bounded by Options.OpTimeout
// instead, so a write or commit is never abandoned half-way.
package fs
