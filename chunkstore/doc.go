// Package chunkstore owns shoal's unit of data, the chunk: its ID (the
// SHA-256 of its plain bytes), its compression, its erasure coding into
// shards, and a node's durable store of chunks and shards.
//
// The central types are ID and the Store interface (chunkstore.go). Extra
// abilities are separate interfaces found by type assertion: a Deleter for
// the garbage collector, a Lister for scrub and repair, a Stater for
// placement and df, a Toucher for pushers that find a chunk present. Two stores live here: Memory, for tests elsewhere, and
// Disk, a node's on-disk store. Package storetest is the conformance suite
// every Store implementation runs.
//
// Erasure coding (Scheme) is not a Store: its shards are not keyed by the
// chunk's own ID. It sits above stores; callers Split a chunk into shards,
// store each shard under its ShardKey (derived from the chunk's ID, the
// scheme and the shard's index) on its node, record the layout in
// metadata, and Join whichever shards they can fetch back, checking the
// chunk's ID on the result. A Disk store keeps a shard like any chunk,
// CRC-checked; it cannot check the key against the bytes.
//
// Compress and Decompress wrap zstd (SpeedFastest) with shared, concurrency
// safe codecs. Compress keeps the result only when it saves at least one
// eighth, and probes a 24 KiB sample of large inputs first so that
// incompressible data costs little. Decompress never produces more than the
// plain length it is told, so a hostile frame cannot blow up memory.
//
// Chunk bytes move through memory in large buffers. NewBuffer allocates
// them advised as huge-page memory, and Buffers keeps them for reuse by
// size class, so that a process streaming chunks neither zeroes nor
// faults in fresh pages for each one (buffer.go). A Disk reads into
// DiskOptions.Buffers; SplitInto and JoinInto let erasure coding use them.
//
// # On-disk format
//
// This section is normative: a Disk store reads and writes exactly this
// format, and a change to it bumps the format version.
//
// A store is a directory laid out as:
//
//	DIR/SHOAL-CHUNKSTORE        marker: "shoal chunkstore\nformat 1\n"
//	DIR/chunks/00/ … chunks/ff/  256 fan-out directories
//	DIR/chunks/ab/abcdef…        one file per chunk, named by the 64 lower-case
//	                             hex digits of its ID, in the directory named
//	                             by the first two
//	DIR/packs/0000002a.pack      packs: the small chunks PutLazy stored, many
//	                             to a file (see "Packs"), numbered in hex
//	                             from 1, oldest first
//	DIR/quarantine/ID.NANOS      chunk files found corrupt, set aside by Get
//	                             for an operator; never read by the store
//
// Files whose names start with ".tmp-" are temporary files of writes in
// progress; OpenDisk removes any it finds (they belong to a write that
// never completed). Other names are ignored. OpenDisk creates the
// directory, marker and fan-out directories when the directory is missing
// or empty (apart from lost+found); it refuses a non-empty directory
// without the marker, or with a marker of other content, with ErrNotStore.
// OpenDisk holds an exclusive flock(2) on the marker file while the store
// is open, so two processes never share a store.
//
// A chunk file is a 32-byte header followed by the payload. All integers
// are little-endian:
//
//	offset size field
//	     0    4 magic, the ASCII bytes "SHCK"
//	     4    1 format version, 1
//	     5    1 flags: bit 0 set means the payload is one zstd frame of
//	            the plain bytes; bit 0 clear means the payload is the plain
//	            bytes; bits 1-7 must be zero
//	     6    2 reserved, must be zero
//	     8    8 plain length: length of the chunk's plain bytes, at most
//	            MaxDecompressed (64 MiB); equals the payload length when
//	            bit 0 of flags is clear
//	    16    8 payload length: the number of bytes after the header; the
//	            file is exactly 32 + payload length bytes long
//	    24    4 CRC-32C (Castagnoli) of the payload
//	    28    4 CRC-32C (Castagnoli) of header bytes 0 to 27
//
// A reader checks, in order: the file is at least 32 bytes; the magic; the
// header CRC; the version; the flags and reserved bytes; the lengths; the
// payload CRC; decompression to exactly the plain length; and finally that
// the SHA-256 of the plain bytes equals the ID in the file name. Any
// failure is ErrCorrupt: the chunk is never served. The CRCs find damage
// cheaply and say where it is; the SHA-256 alone is what guarantees the
// bytes. A store opened with DiskOptions.VerifiedPuts (a node, which checks
// the SHA-256 of every chunk pushed to it before storing it) skips that last
// step on read and relies on the CRCs for damage on disk; the client that
// reads the chunk checks the SHA-256 itself. A writer compresses only when that saves at least one eighth of
// the plain length (DiskOptions.Compress).
//
// # Durability
//
// Put returns only once the chunk is durable. It writes the header and
// payload to a new temporary file ".tmp-*" in the chunk's fan-out
// directory, sets the file's mtime to the time of the Put, fsyncs the
// file, renames it to its final name, and fsyncs the fan-out directory. A
// payload of 256 KiB or more is written with O_DIRECT, padded with zeros
// to a whole number of 4 KiB blocks and then truncated to its length, all
// before the fsync; a file system that refuses O_DIRECT gets an ordinary
// write. A crash at any point leaves either no chunk file (and maybe a temporary
// file that the next OpenDisk removes) or a complete one: a chunk file is
// never partly written. A Put of a chunk already present does not rewrite
// it: it sets the file's mtime to now and fsyncs the file, as Touch does. Put does not
// check that data hashes to id; a wrong id is caught by every Get.
//
// Get reads a chunk file of 256 KiB or more with O_DIRECT too, into one
// aligned buffer, so that a node serving large chunks does not fill its
// page cache with bytes the mounts cache themselves; it checks the CRC-32C
// as for any read.
//
// PutLazy (LazyPutter) appends a chunk of at most MaxPackedChunk plain
// bytes to a pack (see "Packs") without an fsync. A larger one it writes
// to a chunk file the same way as Put but skips both fsyncs and remembers
// the ID. Sync fsyncs the packs appended to (and the packs directory
// when a pack was created), then makes every file so remembered durable
// with one syncfs(2) of the store's file system (where syncfs is missing
// or a seccomp filter denies it, by fsyncing each file and then its
// fan-out directory), so that thousands of lazily written chunks cost one
// flush. A
// node uses it for chunks that commits carry inline, whose durable copy
// until then is the Raft log entry; a durable Put of a chunk still waiting
// for Sync fsyncs its directory too.
//
// A full file system (ENOSPC or EDQUOT from write, fsync or rename) makes
// Put remove its temporary file and return an error wrapping ErrNoSpace
// (which wraps syscall.ENOSPC) and the system error; chunks already stored
// are untouched. DiskOptions.ReserveBytes makes Put refuse, with the same
// error, a chunk that would leave less than that much space free.
//
// # Packs
//
// A chunk file costs a chunk an inode, a directory entry, a rename and a
// time stamp, several times the CPU of writing a few KiB; a node storing
// the inline chunks of thousands of small-file commits a second spent a
// third of its time on them. So PutLazy keeps small chunks in packs:
// append-only files of records, each a 56-byte header and a body:
//
//	offset size field
//	     0    4 magic, the ASCII bytes "SHPK"
//	     4    1 kind: 1 put, 2 touch, 3 delete
//	     5    3 reserved, must be zero
//	     8   32 the chunk's ID
//	    40    8 time the chunk was written (put, touch), Unix nanoseconds
//	    48    4 body length: for a put, the chunk file's length (32 to
//	            32 + MaxPackedChunk*9/8); zero for a touch or a delete
//	    52    4 CRC-32C (Castagnoli) of header bytes 0 to 51 and the body
//
// A put record's body is the chunk exactly as a chunk file holds it
// (header and payload), read and checked the same way. Records are only
// ever appended, to the newest pack; past 64 MiB a new pack is started.
// OpenDisk reads every pack in order into an in-memory index of each
// chunk's latest put: a later put replaces an earlier one, a touch
// raises its time, a delete removes it. A record that fails its checks is
// skipped by looking for the next intact one a byte further on; at the
// end of the newest pack, where a crash during an append leaves a torn
// record, the pack is cut back to its last intact record. A put record
// that Get finds damaged gets a delete record (the chunk is gone, as a
// quarantined file is), so a later Put stores it afresh.
//
// Putting a chunk a pack holds only raises its time in the index; Sync
// writes a touch record for each such chunk before it fsyncs the packs.
// A crash before then loses the touch, which a node survives because it
// calls Sync before it drops the Raft log entries whose replay would
// touch the chunk again.
//
// Delete of a packed chunk appends a delete record; on a full disk, where
// even that fails, the chunk leaves the index all the same, and a crash
// may bring back an unreferenced chunk for the next collection. Once the
// put records still indexed fill less than half of all the packs, or of
// the oldest pack, the oldest pack (never the newest) is compacted: its
// live chunks are appended again to the newest pack with their times,
// the packs are made durable, and the old pack is removed. Only the
// oldest pack is compacted, so the delete records it drops can have no
// older put left to bring back.
//
// # Garbage collection
//
// A chunk file's mtime is the time of its last Put. Delete(id, before)
// removes the chunk only if that time is strictly before before. It does
// not fsync the directory: a removal that a crash undoes brings back a
// complete chunk file that nothing references (chunk and shard files are
// named after what they hold), which the next collection removes again,
// so a sweep of thousands of chunks costs no fsync. Put, Touch and Delete
// of one ID serialise on a striped lock, so a Put racing with a Delete
// either lands first and is older than the collector's cut-off (and is
// deleted, as it would have been), or its refreshed mtime keeps the
// chunk. The collector therefore takes its cut-off time before it marks
// live chunks, and any chunk written or re-Put after that survives the
// sweep. Times come from the node's clock; a file system that does not
// keep nanosecond mtimes gets Put times rounded up to the next second,
// which only ever keeps chunks longer.
package chunkstore
