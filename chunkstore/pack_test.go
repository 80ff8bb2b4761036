package chunkstore_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"shoal/chunkstore"
	"shoal/chunkstore/storetest"
)

// packFiles returns the pack files of d, oldest first.
func packFiles(t *testing.T, d *chunkstore.Disk) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(d.Dir(), "packs", "*.pack"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// chunkFiles counts the chunk files of d (chunks kept outside packs).
func chunkFiles(t *testing.T, d *chunkstore.Disk) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(filepath.Join(d.Dir(), "chunks"), func(path string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			if _, perr := chunkstore.ParseID(e.Name()); perr == nil {
				n++
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// putLazy stores chunks of the given sizes with PutLazy and returns them.
func putLazy(t *testing.T, d *chunkstore.Disk, seed uint64, sizes ...int) [][]byte {
	t.Helper()
	var out [][]byte
	for i, n := range sizes {
		data, id := storetest.Chunk(seed+uint64(i), n)
		if err := d.PutLazy(context.Background(), id, data); err != nil {
			t.Fatalf("PutLazy(%s, %d bytes): %v", id, n, err)
		}
		out = append(out, data)
	}
	return out
}

// syncClose makes what d holds durable and closes it.
func syncClose(t *testing.T, d *chunkstore.Disk) {
	t.Helper()
	if err := d.Sync(context.Background()); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// checkChunks checks that d returns each of chunks, byte for byte.
func checkChunks(t *testing.T, d *chunkstore.Disk, chunks ...[]byte) {
	t.Helper()
	for _, data := range chunks {
		id := chunkstore.Sum(data)
		got, err := d.Get(context.Background(), id)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("Get(%s): got %d bytes, %v; want the %d put", id, len(got), err, len(data))
		}
	}
}

// checkGone checks that d no longer has any of chunks.
func checkGone(t *testing.T, d *chunkstore.Disk, chunks ...[]byte) {
	t.Helper()
	for _, data := range chunks {
		id := chunkstore.Sum(data)
		if has, err := d.Has(context.Background(), id); has || err != nil {
			t.Errorf("Has(%s): got %v, %v; want false, nil", id, has, err)
		}
		if _, err := d.Get(context.Background(), id); !errors.Is(err, chunkstore.ErrNotFound) {
			t.Errorf("Get(%s): got error %v, want ErrNotFound", id, err)
		}
	}
}

// TestPacksSurviveReopen stores small chunks lazily, syncs and reopens the
// store: every chunk reads back, Has, List and Stat count them, and only
// the chunk over MaxPackedChunk got a file of its own.
func TestPacksSurviveReopen(t *testing.T) {
	for _, compress := range []bool{false, true} {
		dir := t.TempDir()
		opts := chunkstore.DiskOptions{Compress: compress}
		d := openDisk(t, dir, opts)
		sizes := []int{1, 100, 4096, 10000, chunkstore.MaxPackedChunk, chunkstore.MaxPackedChunk + 1}
		chunks := putLazy(t, d, 10, sizes...)
		syncClose(t, d)

		d = openDisk(t, dir, opts)
		checkChunks(t, d, chunks...)
		if n := chunkFiles(t, d); n != 1 {
			t.Errorf("compress=%v: got %d chunk files, want 1 (the chunk over MaxPackedChunk)", compress, n)
		}
		listed := map[chunkstore.ID]bool{}
		err := d.List(context.Background(), func(id chunkstore.ID, _ time.Time) error {
			listed[id] = true
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, data := range chunks {
			if !listed[chunkstore.Sum(data)] {
				t.Errorf("compress=%v: List misses chunk of %d bytes", compress, len(data))
			}
		}
		u, err := d.Stat(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if u.Chunks != int64(len(chunks)) || len(listed) != len(chunks) {
			t.Errorf("compress=%v: Stat counts %d chunks, List %d; want %d", compress, u.Chunks, len(listed), len(chunks))
		}
	}
}

// TestPackTornTail cuts the last record of a pack short, as a crash during
// an append leaves it: reopening drops that record, keeps the others and
// cuts the pack back, so the next append starts clean.
func TestPackTornTail(t *testing.T) {
	dir := t.TempDir()
	d := openDisk(t, dir, chunkstore.DiskOptions{})
	chunks := putLazy(t, d, 20, 3000, 3000, 3000)
	syncClose(t, d)
	packs := packFiles(t, d)
	if len(packs) != 1 {
		t.Fatalf("got packs %v, want one", packs)
	}
	info, err := os.Stat(packs[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(packs[0], info.Size()-10); err != nil {
		t.Fatal(err)
	}

	d = openDisk(t, dir, chunkstore.DiskOptions{})
	checkChunks(t, d, chunks[:2]...)
	checkGone(t, d, chunks[2])
	if info, err := os.Stat(packs[0]); err != nil || info.Size() != 2*(56+32+3000) {
		t.Fatalf("pack after reopen: %v, %v; want it cut to its two whole records", info.Size(), err)
	}
	putLazy(t, d, 22, 3000)
	syncClose(t, d)
	d = openDisk(t, dir, chunkstore.DiskOptions{})
	checkChunks(t, d, chunks...)
}

// flipByte inverts one byte of file path at off.
func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestPackDamagedRecord damages one record in the middle of a pack: Get of
// it fails with ErrCorrupt, its neighbours read back, a new PutLazy stores
// it afresh, and a reopened store skips the damaged record and keeps the
// rest.
func TestPackDamagedRecord(t *testing.T) {
	for _, verified := range []bool{false, true} {
		dir := t.TempDir()
		opts := chunkstore.DiskOptions{VerifiedPuts: verified}
		d := openDisk(t, dir, opts)
		chunks := putLazy(t, d, 30, 2000, 2000, 2000)
		if err := d.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		pack := packFiles(t, d)[0]
		// The body of the second record, past its header and the chunk
		// header.
		flipByte(t, pack, (56+32+2000)+56+32+500)

		id := chunkstore.Sum(chunks[1])
		if got, err := d.Get(context.Background(), id); !errors.Is(err, chunkstore.ErrCorrupt) || got != nil {
			t.Fatalf("verified=%v: Get of damaged record: got %d bytes, %v; want ErrCorrupt", verified, len(got), err)
		}
		checkGone(t, d, chunks[1])
		checkChunks(t, d, chunks[0], chunks[2])
		putLazy(t, d, 31, 2000)
		checkChunks(t, d, chunks...)
		syncClose(t, d)

		// Reopened, the store skips the damaged record, holding the
		// chunk put again after it.
		d = openDisk(t, dir, opts)
		checkChunks(t, d, chunks...)
		flipByte(t, pack, (56+32+2000)+10) // the damaged record's header too
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		d = openDisk(t, dir, opts)
		checkChunks(t, d, chunks...)
	}
}

// TestPackCompaction deletes most of the chunks of several packs: the
// oldest packs are compacted away, and what is left reads back after a
// reopen while the deleted chunks stay deleted.
func TestPackCompaction(t *testing.T) {
	chunkstore.SetPackRollForTest(t, 64<<10)
	dir := t.TempDir()
	d := openDisk(t, dir, chunkstore.DiskOptions{})
	sizes := make([]int, 100)
	for i := range sizes {
		sizes[i] = 4000
	}
	chunks := putLazy(t, d, 100, sizes...)
	if err := d.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := len(packFiles(t, d))
	if before < 5 {
		t.Fatalf("100 chunks of 4000 bytes in packs of 64 KiB: got %d packs, want at least 5", before)
	}
	var kept, deleted [][]byte
	for i, data := range chunks {
		if i%10 != 0 {
			deleted = append(deleted, data)
			continue
		}
		kept = append(kept, data)
	}
	later := time.Now().Add(time.Minute)
	for _, data := range deleted {
		if ok, err := d.Delete(context.Background(), chunkstore.Sum(data), later); !ok || err != nil {
			t.Fatalf("Delete: got %v, %v; want true, nil", ok, err)
		}
	}
	after := len(packFiles(t, d))
	if after >= before-2 {
		t.Errorf("after deleting 90%% of the chunks: %d packs, had %d; want the old ones compacted", after, before)
	}
	checkChunks(t, d, kept...)
	checkGone(t, d, deleted...)
	syncClose(t, d)

	d = openDisk(t, dir, chunkstore.DiskOptions{})
	checkChunks(t, d, kept...)
	checkGone(t, d, deleted...)
	u, err := d.Stat(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if u.Chunks != int64(len(kept)) {
		t.Errorf("Stat after reopen: %d chunks, want %d", u.Chunks, len(kept))
	}
}

// TestPackDiskFull fills a small file system through PutLazy: the put
// that does not fit fails with ErrNoSpace and ENOSPC, the chunks before it
// read back, and deleting makes room again.
func TestPackDiskFull(t *testing.T) {
	ctx := context.Background()
	dir := mountTmpfs(t, "3m")
	store := filepath.Join(dir, "store")
	d := openDisk(t, store, chunkstore.DiskOptions{})
	var stored [][]byte
	var full error
	for i := range 100 {
		data, id := storetest.Chunk(uint64(500+i), 60<<10)
		if err := d.PutLazy(ctx, id, data); err != nil {
			full = err
			break
		}
		stored = append(stored, data)
	}
	if !errors.Is(full, chunkstore.ErrNoSpace) || !errors.Is(full, syscall.ENOSPC) {
		t.Fatalf("PutLazy on a full disk: got error %v, want ErrNoSpace and ENOSPC", full)
	}
	if len(stored) == 0 {
		t.Fatal("no PutLazy succeeded before the disk filled")
	}
	checkChunks(t, d, stored...)
	// Deleting on a full disk works, and makes room.
	later := time.Now().Add(time.Minute)
	for _, data := range stored[:len(stored)/2] {
		if ok, err := d.Delete(ctx, chunkstore.Sum(data), later); !ok || err != nil {
			t.Fatalf("Delete on a full disk: got %v, %v; want true, nil", ok, err)
		}
	}
	checkGone(t, d, stored[:len(stored)/2]...)
	syncClose(t, d)
	d = openDisk(t, store, chunkstore.DiskOptions{})
	checkChunks(t, d, stored[len(stored)/2:]...)
}

// TestPackTouchSurvivesReopen checks that a chunk written again (a touch,
// kept in memory until Sync) is not deleted by a sweep that started
// before it, even after a reopen.
func TestPackTouchSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d := openDisk(t, dir, chunkstore.DiskOptions{})
	chunks := putLazy(t, d, 40, 1000, 1000)
	syncClose(t, d)
	time.Sleep(20 * time.Millisecond)
	cutoff := time.Now()
	time.Sleep(20 * time.Millisecond)

	d = openDisk(t, dir, chunkstore.DiskOptions{})
	putLazy(t, d, 40, 1000) // the first chunk again
	syncClose(t, d)

	d = openDisk(t, dir, chunkstore.DiskOptions{})
	if ok, err := d.Delete(ctx, chunkstore.Sum(chunks[0]), cutoff); ok || err != nil {
		t.Errorf("Delete of a chunk written after the cutoff: got %v, %v; want false, nil", ok, err)
	}
	if ok, err := d.Delete(ctx, chunkstore.Sum(chunks[1]), cutoff); !ok || err != nil {
		t.Errorf("Delete of a chunk written before the cutoff: got %v, %v; want true, nil", ok, err)
	}
	checkChunks(t, d, chunks[0])
	checkGone(t, d, chunks[1])
}
